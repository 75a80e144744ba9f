"""Performance figures of an account over time, from the database alone: equity at each
cycle of its vault, returns per period (time-weighted, ``domain.returns``), drawdown, and a
follower's tracking ledger (its weights against the vault's at every cycle, and why they
differ).

An account's balances at a moment are rebuilt from its starting cash and its fills (all
cash moves through fills until capital flows exist), as the statement does. Equity *at* a
cycle is taken as SPEC §4 takes the vault's NAV: the fills before the cycle, at the
cycle's marks; weights *after* a cycle's execution count the cycle's own fills too.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vanta_box.core.money import ZERO, D, fmt, round_cents
from vanta_box.core.timeutil import fmt_ts
from vanta_box.domain import returns
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.store import repo
from vanta_box.store.db import Connection

# A gap smaller than this (a hundredth of a percent) is shown without a cause.
GAP_SHOWN = Decimal("0.0001")

TRACKING_DEFINITION = (
    "At each cycle, a symbol's gap is the vault's target weight minus the follower's "
    "weight after the cycle's execution (at the cycle's marks); the cycle's gap is "
    "sqrt(sum of squared gaps); the period's tracking error is the root-mean-square of "
    "its cycles' gaps.")


class Marks:
    """What every follower of a vault shares: the marks of every instrument at a moment
    (they are all valued at the same cycle times), and each cycle's allocations."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cache: dict[int, dict[str, Decimal]] = {}
        self.allocations: dict[str, dict[tuple[str, ...], dict[str, Decimal]]] = {}

    def allocations_of(self, cycle_id: str) -> dict[tuple[str, ...], dict[str, Decimal]]:
        found = self.allocations.get(cycle_id)
        if found is None:
            if len(self.allocations) > 4096:
                self.allocations.clear()
            found = self.allocations[cycle_id] = {
                tuple(p): {s: D(w) for s, w in weights.items()}
                for p, weights, _cash in repo.allocations(self.conn, cycle_id)}
        return found

    def at(self, moment: int) -> dict[str, Decimal]:
        found = self.cache.get(moment)
        if found is None:
            if len(self.cache) > 4096:
                self.cache.clear()
            found = self.cache[moment] = repo.marks_at(self.conn, moment)
        return found


@dataclass
class Replay:
    """An account's cash and positions, advanced fill by fill in time order."""

    cash: Decimal
    fills: Sequence[tuple[Any, ...]]
    positions: dict[str, Position] = field(default_factory=dict)
    done: int = 0

    def advance(self, before: int) -> None:
        """Apply every fill with a time before ``before`` not applied yet."""
        while self.done < len(self.fills) and self.fills[self.done][8] < before:
            _fid, _oid, symbol, side, qty, price, commission, *_rest = self.fills[self.done]
            q, p, c = D(qty), D(price), D(commission)
            held = self.positions.get(symbol, Position.empty())
            self.positions[symbol], _realized = apply_fill(held, side, q, p, c)
            self.cash += -q * p - c if side == "buy" else q * p - c
            self.done += 1

    def values(self, marks: dict[str, Decimal]) -> tuple[Decimal, dict[str, Decimal]]:
        """(equity, market value per symbol held) at ``marks`` (a symbol without a mark
        at its last fill price, as the books do)."""
        held = {}
        for symbol, p in sorted(self.positions.items()):
            if p.qty:
                held[symbol] = p.qty * marks.get(symbol, p.last_price)
        return self.cash + sum(held.values(), ZERO), held


def replay(conn: Connection, acct: repo.AccountRow) -> Replay:
    return Replay(acct.starting_cash, repo.fills(conn, acct.account_id))


@dataclass(frozen=True)
class CyclePoint:
    cycle_id: str
    at: int
    vault_status: str
    nav: Decimal | None
    peak_nav: Decimal | None
    first_seq: int


def cycle_points(conn: Connection, vault_id: str, as_of: int) -> list[CyclePoint]:
    return [CyclePoint(c, at, status, None if nav is None else D(nav),
                       None if peak is None else D(peak), seq)
            for c, at, status, nav, peak, seq in conn.execute(
                "SELECT cycle_id, at, vault_status, nav, peak_nav, first_seq FROM cycles"
                " WHERE vault_id = ? AND at <= ? ORDER BY at", (vault_id, as_of))]


def halts(conn: Connection, vault_id: str) -> dict[str, dict[str, Any]]:
    """The cycles at which the vault's drawdown guard halted it, with the event."""
    found = {}
    pattern = "%" + _like(json.dumps(vault_id)) + "%"
    for (payload,) in conn.execute(
            "SELECT payload FROM journal WHERE kind = 'vault.halted' AND payload LIKE ?"
            " ESCAPE '\\' ORDER BY seq", (pattern,)):
        event = json.loads(payload)
        if event.get("vault_id") == vault_id:
            found[str(event.get("cycle_id"))] = event
    return found


def equity_at_cycles(conn: Connection, acct: repo.AccountRow, points: Sequence[CyclePoint],
                     marks: Marks) -> list[Decimal]:
    """The account's equity at each cycle (fills before it, at its marks)."""
    book = replay(conn, acct)
    out = []
    for p in points:
        book.advance(p.at)
        out.append(book.values(marks.at(p.at))[0])
    return out


def period_returns(opening_closing: Iterable[tuple[str, Decimal, Decimal]]
                   ) -> list[dict[str, Any]]:
    """Per period (name, opening equity, closing equity): its TWR, with the starting cash
    as the only contribution until capital flows exist (no flows are passed)."""
    out = []
    for period, opening, closing in opening_closing:
        r = returns.time_weighted_return(opening, closing)
        out.append({"period": period, "opening": opening, "closing": closing,
                    "pnl": closing - opening, "twr": r})
    return out


def boundary_equity(conn: Connection, acct: repo.AccountRow, moments: Sequence[int],
                    marks: Marks) -> list[Decimal]:
    """Equity just before each of ``moments`` (ascending): fills before it, the marks of
    the moment before (the statement's opening and closing equity)."""
    book = replay(conn, acct)
    out = []
    for m in moments:
        book.advance(m)
        out.append(book.values(marks.at(m - 1))[0])
    return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- tracking


def _pct(value: Decimal) -> str:
    return f"{round_cents(value * 100):,.2f} %"


def _money(value: str | None) -> str:
    return "—" if value is None else f"{round_cents(D(value)):,.2f}"


_ACCOUNT_SKIPS = {
    "paused": "paused: the follower is not mirrored",
    "not_onboarded": "not onboarded yet at the cycle",
    "no_personas": "persona preferences match none of the vault's personas: not mirrored",
}
_SYMBOL_SKIPS = {
    "below_min_notional": "order below the minimum notional (not sent)",
    "within_drift_band": "within the drift band (no order)",
    "no_mark": "no mark for the symbol (no order)",
    "halted_no_buys": "vault halted: no buys",
}


def _account_cause(event: dict[str, Any]) -> str:
    reason = str(event.get("reason"))
    if reason == "below_min_equity":
        return (f"below minimum equity: {_money(event.get('equity'))} < "
                f"{_money(event.get('min_account_equity'))}, not mirrored")
    if reason == "maintenance":
        return "maintenance overlay: no orders"
    if reason == "no_signals":
        return "no signals: no orders"
    if reason.startswith("venue_error") or reason.startswith("venue_unavailable"):
        return f"venue not reachable ({reason}): skipped"
    return _ACCOUNT_SKIPS.get(reason, reason.replace("_", " "))


@dataclass
class _CycleEvents:
    account: dict[str, Any] | None = None   # an account-level skip
    skips: dict[str, str] = field(default_factory=dict)      # symbol -> reason
    rejects: dict[str, str] = field(default_factory=dict)    # symbol -> words
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> child order


# The journal rows a tracking ledger reads: skips, rejects, cancels, and the child orders a
# cap cut (the others say nothing a fill does not).
_TRACKING_ROWS = ("SELECT seq, kind, json_extract(payload, '$.account_id'), payload FROM journal"
                  " WHERE seq >= ? {high} AND kind IN ('skip', 'reject', 'child_order', 'cancel')"
                  " AND (kind != 'child_order' OR instr(payload, '\"capped_from\"') > 0)"
                  " {only} ORDER BY seq")

Row = tuple[int, str, str]  # (seq, kind, payload text)


@dataclass
class Prefetch:
    """The tracking rows of a batch of accounts (and the vault-wide skips), read in one
    pass over the journal, and the marks shared by their ledgers: a report builds the
    ledgers of a batch of followers from this instead of reading the journal once per
    follower and statement."""

    accounts: frozenset[str]
    marks: Marks
    rows: dict[str, list[Row]]
    vault_rows: list[Row]


_PREFETCH: ContextVar[Prefetch | None] = ContextVar("vanta_tracking_prefetch", default=None)


def prefetch_batch(conn: Connection, n_accounts: int) -> int:
    """How many accounts a prefetch holds: fewer when each has many cycles and symbols, so
    the rows held stay around a million whatever the history's length."""
    (cycles,) = conn.execute("SELECT count(*) FROM cycles").fetchone() or (0,)
    (symbols,) = conn.execute("SELECT count(*) FROM instruments").fetchone() or (0,)
    return max(1, min(n_accounts, 1_000_000 // max(1, int(cycles) * max(1, int(symbols)))))


@contextmanager
def prefetched(conn: Connection, accounts: Sequence[repo.AccountRow], marks: Marks
               ) -> Iterator[None]:
    """Within the block, tracking ledgers of ``accounts`` read the rows fetched here."""
    ids = frozenset(a.account_id for a in accounts)
    first = min((a.onboarded_at for a in accounts), default=0)
    row = conn.execute("SELECT min(first_seq) FROM cycles WHERE at >= ?", (first,)).fetchone()
    low = int(row[0]) if row and row[0] is not None else 0
    rows: dict[str, list[Row]] = {i: [] for i in ids}
    vault_rows: list[Row] = []
    for seq, kind, account, payload in conn.execute(
            _TRACKING_ROWS.format(high="", only=""), (low,)):
        if account is None:
            if kind == "skip":
                vault_rows.append((seq, kind, payload))
        elif account in ids:
            rows[account].append((seq, kind, payload))
    token = _PREFETCH.set(Prefetch(ids, marks, rows, vault_rows))
    try:
        yield
    finally:
        _PREFETCH.reset(token)


def _rows(conn: Connection, account_id: str, low: int, high: int | None
          ) -> tuple[list[Row], list[Row]]:
    """(the account's tracking rows, the vault-wide skips) with seq in [low, high)."""
    found = _PREFETCH.get()
    if found is not None and account_id in found.accounts:
        def within(rows: list[Row]) -> list[Row]:
            return [r for r in rows if r[0] >= low and (high is None or r[0] < high)]
        return within(found.rows[account_id]), within(found.vault_rows)
    args: list[Any] = [low, *([high] if high is not None else [])]
    bound = "AND seq < ?" if high is not None else ""
    own = [(seq, kind, payload) for seq, kind, account, payload in conn.execute(
        _TRACKING_ROWS.format(high=bound, only="AND instr(payload, ?) > 0"),
        (*args, '"account_id":' + json.dumps(account_id))) if account == account_id]
    vault = [(seq, kind, payload) for seq, kind, account, payload in conn.execute(
        _TRACKING_ROWS.format(high=bound, only="AND kind = 'skip'"), tuple(args))
        if account is None]
    return own, vault


def _by_cycle(conn: Connection, acct: repo.AccountRow, points: Sequence[CyclePoint],
              high: int | None) -> list[_CycleEvents]:
    out = [_CycleEvents() for _ in points]
    if not points:
        return out
    starts = [p.first_seq for p in points]
    own, vault = _rows(conn, acct.account_id, starts[0], high)
    for seq, _kind, payload in vault:
        event = json.loads(payload)
        i = bisect.bisect_right(starts, seq) - 1
        if i >= 0 and event.get("vault_id") == acct.vault_id and out[i].account is None:
            out[i].account = event
    for seq, kind, payload in own:
        i = bisect.bisect_right(starts, seq) - 1
        if i < 0:
            continue
        event = json.loads(payload)
        ev = out[i]
        symbol = event.get("symbol")
        reason = str(event.get("reason"))
        if kind == "skip":
            if symbol is None and reason == "within_tolerance":
                ev.skips.update(event.get("symbols") or {})
            elif symbol is None:
                ev.account = event
            else:
                ev.skips[str(symbol)] = reason
        elif kind == "reject" and symbol is not None:
            note = event.get("note")
            ev.rejects[str(symbol)] = (f"rejected: {reason.replace('_', ' ')}"
                                       + (f" ({note})" if note else ""))
        elif kind == "child_order" and symbol is not None:
            ev.orders[str(symbol)] = event
        elif kind == "cancel" and symbol is not None:
            ev.rejects.setdefault(str(symbol), f"order cancelled ({reason})")
    return out


def tracking_ledger(conn: Connection, acct: repo.AccountRow, as_of: int,
                    start: int | None = None, end: int | None = None,
                    marks: Marks | None = None) -> list[dict[str, Any]]:
    """Per cycle of the follower's vault from its onboarding (within [start, end) when
    given, up to ``as_of``): the vault's target weight, the follower's own target (its
    personas, its caps) and its weight after execution for each symbol either side has,
    the gap, and the cause of a gap in words."""
    vault = repo.vault_row(conn, acct.vault_id)
    if vault is None:
        return []
    shared = _PREFETCH.get()
    marks = marks or (shared.marks if shared is not None else Marks(conn))
    vault_personas = list(vault.config.get("personas", []))
    prefs = acct.persona_prefs
    personas = vault_personas if prefs is None else [p for p in prefs if p in vault_personas]
    mirroring = acct.mirroring
    capped = mirroring.get("mode") == "capped"
    max_pos = mirroring.get("max_position_pct") if capped else None
    everything = cycle_points(conn, acct.vault_id, as_of)
    later = [p for p in everything if end is not None and p.at >= end]
    points = [p for p in everything if p.at >= acct.onboarded_at
              and (start is None or p.at >= start) and (end is None or p.at < end)
              and (acct.removed_at is None or p.at < acct.removed_at)]
    events = _by_cycle(conn, acct, points, later[0].first_seq if later else None)
    book = replay(conn, acct)
    manual: dict[str, list[int]] = {}
    for f in book.fills:
        if str(f[1]).startswith("external/"):
            manual.setdefault(str(f[2]), []).append(int(f[8]))
    working = {(row.cycle_id, row.symbol): row
               for row, _venue_id, _avg in repo.working_orders(conn, acct.account_id)}
    previous = max((p.at for p in everything if points and p.at < points[0].at), default=None)
    ledger = []
    for point, ev in zip(points, events, strict=True):
        book.advance(point.at + 1)
        cycle_marks = marks.at(point.at)
        equity, values = book.values(cycle_marks)
        by_personas = marks.allocations_of(point.cycle_id)
        vault_w = by_personas.get(tuple(sorted(vault_personas)), {})
        own = by_personas.get(tuple(sorted(personas)), vault_w)
        if max_pos is not None:
            own = {s: min(w, D(max_pos)) for s, w in own.items()}
        lines, gaps = [], []
        for symbol in sorted(set(vault_w) | set(own) | set(values)):
            target = vault_w.get(symbol, ZERO)
            weight = values.get(symbol, ZERO) / equity if equity > 0 else ZERO
            gap = target - weight
            gaps.append(gap)
            cause = None
            if abs(gap) >= GAP_SHOWN:
                cause = _cause(symbol, target, own.get(symbol, ZERO), weight, equity, point,
                               ev, mirroring, max_pos, working.get((point.cycle_id, symbol)),
                               [t for t in manual.get(symbol, [])
                                if (previous is None or t > previous) and t <= point.at])
            lines.append({"symbol": symbol, "vault_weight": fmt(target),
                          "target_weight": fmt(own.get(symbol, ZERO)), "weight": fmt(weight),
                          "gap": fmt(gap), "cause": cause})
        ledger.append({"cycle_id": point.cycle_id, "at": fmt_ts(point.at),
                       "vault_status": point.vault_status,
                       "skipped": None if ev.account is None else _account_cause(ev.account),
                       "gap": fmt(returns.cycle_gap(gaps)), "symbols": lines})
        previous = point.at
    return ledger


def _cause(symbol: str, target: Decimal, own: Decimal, weight: Decimal, equity: Decimal,
           point: CyclePoint,
           ev: _CycleEvents, mirroring: dict[str, Any], max_pos: str | None,
           working: repo.OrderRow | None, manual: list[int]) -> str:
    causes = []
    if ev.account is not None:
        causes.append(_account_cause(ev.account))
    else:
        if point.vault_status == "halted" and weight < target:
            causes.append("vault halted by its drawdown guard: no buys until the manager "
                          "resumes it")
        if symbol in ev.rejects:
            causes.append(ev.rejects[symbol])
        if own != target:
            if max_pos is not None and own == D(max_pos) and own < target:
                causes.append(f"max_position_pct cap: the follower's target is {_pct(own)}")
            else:
                causes.append(f"persona preferences: the follower's target is {_pct(own)}")
        if symbol in ev.skips and ev.skips[symbol] != "halted_no_buys":
            causes.append(_SYMBOL_SKIPS.get(ev.skips[symbol],
                                            ev.skips[symbol].replace("_", " ")))
        if working is not None:
            causes.append(f"order still working at the venue ({working.status}, filled "
                          f"{fmt(working.filled_qty)} of {fmt(working.qty)})")
        order = ev.orders.get(symbol)
        if order is not None and "capped_from" in order:
            causes.append(f"max_order_notional cap: order cut from {order['capped_from']} "
                          f"to {order['qty']}")
        mode = mirroring.get("mode")
        multiplier = D(mirroring.get("multiplier") or "1")
        cap = mirroring.get("cap_usd")
        if mode == "capped" and cap is not None and equity * multiplier > D(cap):
            causes.append(f"sized at most cap_usd {_money(mirroring['cap_usd'])}")
        elif multiplier != 1:
            causes.append(f"sized at {fmt(multiplier)} × equity (multiplier)")
    for at in manual:
        causes.append(f"manual trade at {fmt_ts(at)}")
    if not causes:
        causes.append("lot rounding and trading costs")
    return "; ".join(causes)


def tracking_errors(ledger: Sequence[dict[str, Any]], period_of: Any
                    ) -> dict[str, Decimal | None]:
    """Tracking error per period (``period_of``: a cycle's time text -> its period)."""
    gaps: dict[str, list[Decimal]] = {}
    for c in ledger:
        gaps.setdefault(period_of(c["at"]), []).append(D(c["gap"]))
    return {p: returns.tracking_error(g) for p, g in gaps.items()}


def tracking_doc(conn: Connection, acct: repo.AccountRow, start: int, end: int,
                 as_of: int) -> dict[str, Any]:
    """The ``tracking`` part of a follower's statement for the period [start, end)."""
    ledger = tracking_ledger(conn, acct, as_of, start, end)
    te = returns.tracking_error([D(c["gap"]) for c in ledger])
    return {"definition": TRACKING_DEFINITION, "cycles": ledger,
            "tracking_error": None if te is None else fmt(te)}
