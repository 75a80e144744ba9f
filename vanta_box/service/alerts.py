"""Alerts: what needs the manager, as a projection of the journal.

An alert is an *episode* of a condition: it opens at the first event that shows the
condition, counts the events (or the cycles) that show it again, and ends when the
condition is gone (``resolved``) — a vault resumed, a cycle of the vault without the
reject, a notification that went through. Acknowledging it (``vanta alerts ack ID``, a
journaled command) says the manager has seen it: it stays acknowledged until resolved,
and is never sent or counted as new again. The same condition after it was resolved is a
new episode, a new alert.

Everything here is read from the journal (and, for two conditions that are states rather
than events, from projections of it: orders still working at a venue, fee entries still
outstanding), so the live home, a replay and an auditor's copy give the same alerts.
Alert ids are derived from their content (kind, vault, account, key, and the journal row
that opened the episode): the same journal gives the same ids.

Kinds (severity): ``vault.halted`` (critical) · ``reject`` per account and reason ·
``discrepancy`` per account and symbol · ``flow`` (info) · ``orders.working`` per account
and cycle · ``venue.error`` (auth: critical) · ``marks.stale`` per vault ·
``overlay.expired`` (info) · ``fee.overdue`` per follower and period · ``fee.payment`` (a
processor's partial or over-payment) · ``account.skipped``
per account and reason, from ``SKIP_STREAK`` cycles in a row · ``notify.failed`` per
notification URL (by its id, never the URL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box.core.canonical import dumps
from vanta_box.core.errors import InputError, Refused
from vanta_box.core.money import ZERO, D, fmt
from vanta_box.core.timeutil import DAY_US, fmt_ts, parse_ts
from vanta_box.service import fees as fee_service
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo
from vanta_box.store.db import Connection

SEVERITIES = ("info", "warning", "critical")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
SKIP_STREAK = 3  # cycles in a row before a skipped account is an alert
FEE_OVERDUE_DAYS = 30  # days after billing before an unpaid fee is an alert
FILE = "alerts.jsonl"

# Conditions observed during cycles: resolved by cycles of the vault without them — as
# many in a row as QUIET says, so that a condition that comes and goes (rejects on the
# days a buy is needed, a flaky venue) stays one alert instead of a new one every time.
PER_CYCLE = frozenset({"reject", "account.skipped", "venue.error", "marks.stale"})
QUIET = {"reject": 3, "venue.error": 3, "account.skipped": 1, "marks.stale": 1}
# The cycles that can show a condition: a halted vault buys nothing (no insufficient_cash
# can happen), a maintenance or signal-less cycle looks at no account.
SHOWN_BY = {"reject": frozenset({"active"}),
            "account.skipped": frozenset({"active", "halted"})}
# Events that happened once: ended by an acknowledgement.
ONE_OFF = frozenset({"discrepancy", "flow", "overlay.expired", "fee.payment"})
SKIP_REASONS = ("below_min_equity", "no_personas", "arithmetic_limit")

_KINDS = ("vault.halted", "vault.resume", "cycle.done", "reject", "discrepancy", "flow",
          "venue.error", "marks.stale", "overlay.expired", "overlay.set", "alert.ack",
          "alert.notified", "fees.paid", "fees.overpaid")
# The skips worth an alert, found by SQLite in the canonical payload text: the journal
# holds one skip per follower and cycle in steady state, which are not read at all.
_SKIP_FILTER = " OR ".join(f"instr(payload, '\"reason\":\"{r}') > 0"
                           for r in (*SKIP_REASONS, "venue_"))
_QUERY = (f"SELECT seq, ts, kind, payload FROM journal WHERE kind IN "
          f"({', '.join(repr(k) for k in _KINDS)}) OR (kind = 'skip' AND ({_SKIP_FILTER}))"
          " ORDER BY seq")

Key = tuple[str, str | None, str | None, str | None]  # kind, vault, account, key


def alert_id(key: Key, first_seq: int) -> str:
    """12 hex digits of SHA-256 over the alert's identity and the row that opened it."""
    kind, vault, account, detail = key
    text = dumps([kind, vault, account, detail, first_seq])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Alert:
    alert_id: str
    kind: str
    severity: str
    vault_id: str | None
    account_id: str | None
    key: str | None
    first_seq: int
    first_at: int
    last_seq: int
    last_at: int
    count: int = 1
    state: str = "open"  # open | acknowledged | resolved
    acked_at: int | None = None
    resolved_at: int | None = None
    notified: dict[str, int] = field(default_factory=dict)  # notification URL id -> when
    detail: dict[str, Any] = field(default_factory=dict)

    def at_least(self, severity: str) -> bool:
        return RANK[self.severity] >= RANK[severity]

    @property
    def subject(self) -> str:
        return " ".join(p for p in (self.vault_id, self.account_id) if p) or "-"

    def line(self) -> dict[str, Any]:
        """The alert as JSON (alerts.jsonl, ``vanta alerts --json``): exact values."""
        return {
            "alert_id": self.alert_id, "kind": self.kind, "severity": self.severity,
            "state": self.state, "vault_id": self.vault_id, "account_id": self.account_id,
            "key": self.key, "count": self.count, "first_at": fmt_ts(self.first_at),
            "last_at": fmt_ts(self.last_at), "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "acked_at": None if self.acked_at is None else fmt_ts(self.acked_at),
            "resolved_at": None if self.resolved_at is None else fmt_ts(self.resolved_at),
            "notified": sorted(self.notified), "message": describe(self),
            "hint": hint(self), "detail": self.detail,
        }


# ---------------------------------------------------------------- the projection


def _severity(kind: str, key: str | None) -> str:
    if kind == "vault.halted" or (kind == "venue.error" and key == "auth"):
        return "critical"
    if kind in ("flow", "overlay.expired"):
        return "info"
    return "warning"


class _Fold:
    """The journal's events, in order, into alerts."""

    def __init__(self, vault_of: dict[str, str]) -> None:
        self.vault_of = vault_of
        self.alerts: dict[str, Alert] = {}
        self.open: dict[Key, Alert] = {}
        self.by_vault: dict[str, dict[Key, Alert]] = {}  # open per-cycle episodes
        self.seen: dict[str, set[Key]] = {}  # per vault: observed since its last cycle
        self.quiet: dict[Key, int] = {}  # cycles in a row without the condition
        self.late_acks: dict[str, int] = {}  # ids of state alerts (computed afterwards)
        self.late_notified: dict[str, dict[str, int]] = {}

    def observe(self, key: Key, seq: int, ts: int, *, each_event: bool) -> tuple[Alert, bool]:
        """The alert of ``key``'s open episode, opened if needed; True when ``ts`` is a new
        moment for it (a new cycle)."""
        a = self.open.get(key)
        new_moment = True
        if a is None:
            kind, vault, account, detail = key
            a = Alert(alert_id(key, seq), kind, _severity(kind, detail), vault, account,
                      detail, seq, ts, seq, ts)
            self.open[key] = a
            self.alerts[a.alert_id] = a
            if vault is not None and kind in (*PER_CYCLE, "vault.halted"):
                self.by_vault.setdefault(vault, {})[key] = a
        else:
            new_moment = ts != a.last_at
            if each_event or new_moment:
                a.count += 1
            a.last_seq, a.last_at = seq, ts
        if key[1] is not None and key[0] in PER_CYCLE:
            self.seen.setdefault(key[1], set()).add(key)
        return a, new_moment

    def close(self, key: Key, ts: int) -> None:
        a = self.open.pop(key, None)
        if a is None:
            return
        if a.vault_id is not None:
            self.by_vault.get(a.vault_id, {}).pop(key, None)
        if a.kind == "account.skipped" and a.count < SKIP_STREAK:
            del self.alerts[a.alert_id]  # a short streak never was an alert
            return
        a.state, a.resolved_at = "resolved", ts

    def cycle_done(self, vault: str, status: str | None, seq: int, ts: int) -> None:
        seen = self.seen.pop(vault, set())
        for key, a in list(self.by_vault.get(vault, {}).items()):
            if a.kind == "vault.halted":
                if ts != a.last_at:
                    a.count += 1
                    a.last_seq, a.last_at = seq, ts
            elif key in seen:
                self.quiet.pop(key, None)
            elif a.kind in SHOWN_BY and status not in SHOWN_BY[a.kind]:
                continue  # this cycle could not show it
            else:
                quiet = self.quiet.get(key, 0) + 1
                if quiet >= QUIET[a.kind]:
                    self.quiet.pop(key, None)
                    self.close(key, ts)
                else:
                    self.quiet[key] = quiet

    def account_key(self, kind: str, account: str, detail: str | None) -> Key:
        return (kind, self.vault_of.get(account), account, detail)

    def event(self, seq: int, ts: int, kind: str, p: dict[str, Any]) -> None:
        handler = _EVENTS.get(kind)
        if handler is not None:
            handler(self, seq, ts, p)

    # ------------------------------------------------------------ per kind

    def _halted(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        a, _new = self.observe(("vault.halted", p["vault_id"], None, None), seq, ts,
                               each_event=False)
        a.detail = {k: p.get(k) for k in ("cycle_id", "nav", "peak_nav", "threshold",
                                          "max_drawdown", "on_drawdown")}

    def _resume(self, _seq: int, ts: int, p: dict[str, Any]) -> None:
        self.close(("vault.halted", p.get("vault_id"), None, None), ts)

    def _cycle(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        if "superseded_by" not in p and p.get("vault_id") is not None:
            self.cycle_done(p["vault_id"], p.get("vault_status"), seq, ts)

    def _reject(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        account = p.get("account_id")
        if not account:
            return
        a, new_moment = self.observe(self.account_key("reject", account, p.get("reason")),
                                     seq, ts, each_event=True)
        d = a.detail
        symbols = set(d.get("symbols", []))
        symbols.add(p.get("symbol"))
        d["symbols"] = sorted(s for s in symbols if s)
        d["cycles"] = d.get("cycles", 0) + (1 if new_moment else 0)
        if p.get("note"):
            d["note"] = p["note"]

    def _skip(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        account, reason = p.get("account_id"), str(p.get("reason"))
        if not account:
            return
        if reason.startswith("venue_error:"):
            a, _new = self.observe(self.account_key("venue.error", account,
                                                    reason.split(":", 1)[1]),
                                   seq, ts, each_event=False)
            a.detail.setdefault("call", "snapshot")
            a.detail["skipped"] = True
            return
        if reason in SKIP_REASONS or reason.startswith("venue_unavailable:"):
            a, _new = self.observe(self.account_key("account.skipped", account, reason),
                                   seq, ts, each_event=False)
            a.detail = {k: p[k] for k in ("equity", "min_account_equity", "persona_prefs",
                                          "vault_personas", "note") if k in p}

    def _venue_error(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        if p.get("kind") != "auth" or not p.get("account_id"):
            return  # transient errors are retried and looked up: what fails shows as a skip
        a, _new = self.observe(self.account_key("venue.error", p["account_id"], "auth"),
                               seq, ts, each_event=False)
        a.detail.update({"call": p.get("call"), "message": p.get("message")})

    def _discrepancy(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        a, _new = self.observe(self.account_key("discrepancy", p["account_id"], p["symbol"]),
                               seq, ts, each_event=True)
        a.detail = {k: p.get(k) for k in ("symbol", "ours", "venue", "mark", "cause",
                                          "realized_pnl")}

    def _flow(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        if p.get("opening"):
            return  # a live account's funding, seen at its first reconciliation
        a, _new = self.observe(self.account_key("flow", p["account_id"], None), seq, ts,
                               each_event=True)
        net = D(a.detail.get("net", "0")) + D(p["amount"])
        a.detail = {"net": fmt(net), "last_amount": p["amount"], "last_kind": p.get("kind")}

    def _payment(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        """A processor's payment that is not the amount owed (partial, or more)."""
        flag = p.get("flag") or ("overpaid" if "received" in p and "amount" not in p else None)
        if not flag:
            return
        account = str(p["entry_id"]).split("/", 1)[0]
        a, _new = self.observe(self.account_key("fee.payment", account, flag), seq, ts,
                               each_event=True)
        a.detail = {"entry_id": p["entry_id"], "via": p.get("via") or p.get("processor"),
                    "invoice": p.get("invoice") or p.get("ref"), "received": p.get("received"),
                    "applied": p.get("amount", "0.00")}

    def _stale(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        a, _new = self.observe(("marks.stale", p["vault_id"], None, None), seq, ts,
                               each_event=False)
        a.detail = {"symbols": p.get("symbols", {}), "max_age": p.get("max_age")}

    @staticmethod
    def _overlay_key(p: dict[str, Any]) -> Key:
        persona = p.get("persona") or ""
        return ("overlay.expired", p["vault_id"], None,
                p["kind"] + (f":{persona}" if persona else ""))

    def _expired(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        a, _new = self.observe(self._overlay_key(p), seq, ts, each_event=True)
        a.detail = {k: p.get(k) for k in ("kind", "persona", "set_at", "expires_at")}

    def _overlay_set(self, _seq: int, ts: int, p: dict[str, Any]) -> None:
        self.close(self._overlay_key(p), ts)  # set again: the manager knows

    def _ack(self, _seq: int, ts: int, p: dict[str, Any]) -> None:
        target = str(p.get("alert_id"))
        a = self.alerts.get(target)
        if a is None:
            self.late_acks[target] = ts
            return
        a.acked_at = ts
        if a.state == "open":
            a.state = "acknowledged"
        key = (a.kind, a.vault_id, a.account_id, a.key)
        if a.kind in ONE_OFF and self.open.get(key) is a:
            self.close(key, ts)  # seen and done: the next one is a new alert

    def _notified(self, seq: int, ts: int, p: dict[str, Any]) -> None:
        for d in p.get("deliveries", []):
            url = str(d.get("url_id"))
            if d.get("ok"):
                for target in d.get("alert_ids", []):
                    a = self.alerts.get(target)
                    if a is not None:
                        a.notified.setdefault(url, ts)
                    else:
                        self.late_notified.setdefault(target, {}).setdefault(url, ts)
                self.close(("notify.failed", None, None, url), ts)
                self.close(("notify.failed", None, None, "keystore"), ts)  # URLs read again
            else:
                a, _new = self.observe(("notify.failed", None, None, url), seq, ts,
                                       each_event=True)
                a.detail = {"url_id": url, "error": d.get("error"), "tries": d.get("tries"),
                            "alert_ids": list(d.get("alert_ids", []))}


_EVENTS: dict[str, Callable[[_Fold, int, int, dict[str, Any]], None]] = {
    "vault.halted": _Fold._halted, "vault.resume": _Fold._resume, "cycle.done": _Fold._cycle,
    "reject": _Fold._reject, "skip": _Fold._skip, "venue.error": _Fold._venue_error,
    "discrepancy": _Fold._discrepancy, "flow": _Fold._flow, "marks.stale": _Fold._stale,
    "overlay.expired": _Fold._expired, "overlay.set": _Fold._overlay_set,
    "alert.ack": _Fold._ack, "alert.notified": _Fold._notified,
    "fees.paid": _Fold._payment, "fees.overpaid": _Fold._payment,
}


def _rows(conn: Connection) -> Iterator[tuple[int, int, str, dict[str, Any]]]:
    cached: dict[str, int] = {}
    for seq, ts, kind, payload in conn.execute(_QUERY):
        if payload.__class__ is not str:
            continue  # not ours to judge: verify names such a row
        try:
            p = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(p, dict):
            continue
        moment = cached.get(ts)
        if moment is None:
            moment = cached[ts] = parse_ts(ts)
        yield seq, moment, kind, p


def compute(conn: Connection, now: int) -> list[Alert]:
    """Every alert, open or not, in the order they were raised; ``now`` dates the
    conditions that come with time (a fee outstanding for too long)."""
    accounts = repo.accounts(conn)
    fold = _Fold({a.account_id: a.vault_id for a in accounts})
    for seq, ts, kind, p in _rows(conn):
        try:
            fold.event(seq, ts, kind, p)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue  # a payload not of the shape this version writes: no alert from it
    found = [a for a in fold.alerts.values()
             if not (a.kind == "account.skipped" and a.count < SKIP_STREAK)]
    found += _working_orders(conn, fold.vault_of)
    found += _overdue_fees(conn, accounts, now)
    for a in found:
        if a.alert_id in fold.late_acks:
            a.acked_at, a.state = fold.late_acks[a.alert_id], "acknowledged"
        for url, at in fold.late_notified.get(a.alert_id, {}).items():
            a.notified.setdefault(url, at)
    return sorted(found, key=lambda a: (a.first_seq, a.alert_id))


def _working_orders(conn: Connection, vault_of: dict[str, str]) -> list[Alert]:
    """Orders a cycle left working at a live venue after its settle timeout: every order
    still working between commands is one (a command waits for its own)."""
    groups: dict[tuple[str, str], list[tuple[repo.OrderRow, str | None]]] = {}
    for row, venue_id, _avg in repo.working_orders(conn):
        groups.setdefault((row.account_id, row.cycle_id), []).append((row, venue_id))
    out = []
    for (account, cycle_id), rows in sorted(groups.items()):
        c = repo.cycle(conn, cycle_id)
        first_seq, at = (c.first_seq, c.at) if c is not None else (0, 0)
        key: Key = ("orders.working", vault_of.get(account), account, cycle_id)
        updated = [r[0] for r in conn.execute(
            "SELECT max(updated_at) FROM orders WHERE account_id = ? AND order_id >= ? AND"
            " order_id < ?", (account, f"{cycle_id}/", f"{cycle_id}0"))]
        last = max(at, updated[0] or at) if updated else at
        out.append(Alert(
            alert_id(key, first_seq), "orders.working", "warning", key[1], account, cycle_id,
            first_seq, at, first_seq, last, count=len(rows),
            detail={"cycle_id": cycle_id, "orders": [
                {"order_id": r.order_id, "symbol": r.symbol, "side": r.side,
                 "qty": fmt(r.qty), "filled_qty": fmt(r.filled_qty), "status": r.status,
                 "venue_order_id": venue_id} for r, venue_id in rows]}))
    return out


def _overdue_fees(conn: Connection, accounts: list[repo.AccountRow], now: int
                  ) -> list[Alert]:
    out = []
    entries: dict[str, list[repo.FeeEntryRow]] = {}
    for e in repo.fee_entries(conn):
        entries.setdefault(e.account_id, []).append(e)
    for acct in accounts:
        mine = entries.get(acct.account_id)
        if not mine:
            continue
        reversed_ids = {e.reverses for e in mine if e.kind == "reversal"}
        for e in mine:
            if e.kind != "fee" or e.entry_id in reversed_ids:
                continue
            due_since = e.at + FEE_OVERDUE_DAYS * DAY_US
            if due_since > now:
                continue
            owed = fee_service.outstanding(conn, acct.account_id, e.period)
            if owed <= 0:
                continue
            key: Key = ("fee.overdue", acct.vault_id, acct.account_id, e.period)
            out.append(Alert(
                alert_id(key, e.seq), "fee.overdue", "warning", acct.vault_id,
                acct.account_id, e.period, e.seq, due_since, e.seq, now,
                detail={"entry_id": e.entry_id, "period": e.period, "outstanding": fmt(owed),
                        "billed_at": fmt_ts(e.at), "days": (now - e.at) // DAY_US}))
    return out


# ---------------------------------------------------------------- reading them


def unresolved(alerts: Iterable[Alert]) -> list[Alert]:
    return [a for a in alerts if a.state != "resolved"]


def listing_order(alerts: Iterable[Alert]) -> list[Alert]:
    """Open first, then acknowledged, then resolved; the most severe first; oldest first."""
    states = {"open": 0, "acknowledged": 1, "resolved": 2}
    return sorted(alerts, key=lambda a: (states[a.state], -RANK[a.severity], a.first_seq,
                                         a.alert_id))


def raised(before: set[str], after: Iterable[Alert], severity: str = "warning") -> list[Alert]:
    """Alerts open now that were not there before, of ``severity`` or above."""
    return [a for a in after if a.alert_id not in before and a.state == "open"
            and a.at_least(severity)]


def find(conn: Connection, wanted: str, now: int) -> Alert:
    """An alert by its id (or a unique prefix of at least 4 digits)."""
    text = wanted.strip().lower()
    if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        raise InputError(f"not an alert id: {wanted[:40]!r} (12 hex digits, as `vanta "
                         "alerts` shows them)", field="ID")
    matches = [a for a in compute(conn, now) if a.alert_id.startswith(text)]
    if not matches:
        raise InputError(f"no alert {text} (see `vanta alerts --all`)", field="ID")
    if len(matches) > 1:
        raise InputError(f"{text} is the start of {len(matches)} alert ids: give more digits",
                         field="ID")
    return matches[0]


def write_file(conn: Connection, memory: Path, as_of: int) -> Path:
    """memory/alerts.jsonl: every alert, one JSON line each, in the order raised."""
    from vanta_box.reports.files import write_atomic

    path = memory / FILE
    write_atomic(path, "".join(dumps(a.line()) + "\n" for a in compute(conn, as_of)))
    return path


# ---------------------------------------------------------------- commands


def ack_command(eng: Engine, wanted: str, at: int) -> Command:
    a = find(eng.conn, wanted, at)
    _check_ack(a, at)
    return Command.make("alert.ack", at, {"alert_id": a.alert_id})


def _check_ack(a: Alert, at: int) -> None:
    if a.state == "acknowledged":
        raise Refused(f"alert {a.alert_id} was acknowledged at {fmt_ts(a.acked_at or 0)}")
    if a.state == "resolved":
        raise Refused(f"alert {a.alert_id} is resolved already "
                      f"({fmt_ts(a.resolved_at or a.last_at)})")
    if at < a.first_at:
        raise Refused(f"alert {a.alert_id} was raised at {fmt_ts(a.first_at)}: it cannot be "
                      f"acknowledged at {fmt_ts(at)}, before (give --at)")


@handles("alert.ack")
def _alert_ack(eng: Engine, cmd: Command) -> Alert:
    a = find(eng.conn, cmd.payload["alert_id"], cmd.ts)
    _check_ack(a, cmd.ts)
    with eng.tx():
        pass  # the command event is the acknowledgement
    a.state, a.acked_at = "acknowledged", cmd.ts
    return a


def notified_command(at: int, deliveries: list[dict[str, Any]]) -> Command:
    """What was sent where: ``{"url_id", "alert_ids", "ok", "tries", "error"}`` per
    notification URL (its id: a hash, never the URL, which holds tokens)."""
    return Command.make("alert.notified", at, {"deliveries": deliveries})


@handles("alert.notified")
def _alert_notified(eng: Engine, cmd: Command) -> int:
    with eng.tx():
        pass  # an input, like a venue's answer: the notifications happened
    return len(cmd.payload["deliveries"])


# ---------------------------------------------------------------- in words


def _exact_pct(value: Decimal) -> str:
    return f"{fmt(value * 100)}%"


@dataclass(frozen=True)
class Style:
    """How amounts read in a description: exact in files, rounded on the console."""

    money: Callable[[Decimal], str] = fmt
    pct: Callable[[Decimal], str] = _exact_pct
    number: Callable[[int], str] = str


EXACT = Style()


def _d(value: Any) -> Decimal:
    return D(value) if value is not None else ZERO


def describe(a: Alert, style: Style = EXACT) -> str:
    """The alert in one line."""
    d, m, n = a.detail, style.money, style.number
    who = a.account_id or a.vault_id or "-"
    if a.kind == "vault.halted":
        action = "liquidating" if d.get("on_drawdown") == "liquidate" else "no buys"
        return (f"{a.vault_id} halted by its drawdown guard ({action}): NAV "
                f"{m(_d(d.get('nav')))} below {m(_d(d.get('threshold')))}, "
                f"{style.pct(_d(d.get('max_drawdown')))} under the peak "
                f"{m(_d(d.get('peak_nav')))}; {n(a.count)} cycle(s) halted")
    if a.kind == "reject":
        symbols = ", ".join(d.get("symbols", [])[:5]) + (
            "…" if len(d.get("symbols", [])) > 5 else "")
        return (f"{who}: {n(a.count)} {a.key} reject(s) over {n(d.get('cycles', 1))} "
                f"cycle(s) ({symbols})")
    if a.kind == "discrepancy":
        return (f"{who} {a.key}: vanta held {d.get('ours')}, the venue {d.get('venue')}; "
                f"the venue's quantity was adopted at {m(_d(d.get('mark')))}"
                + (f" ({n(a.count)} times)" if a.count > 1 else ""))
    if a.kind == "flow":
        return (f"{who}: {n(a.count)} capital flow(s) found by reconciliation, net "
                f"{m(_d(d.get('net')))}")
    if a.kind == "orders.working":
        return (f"{who}: {n(a.count)} order(s) of {a.key} still working at the venue after "
                "the settle timeout")
    if a.kind == "venue.error":
        if a.key == "auth":
            return f"{who}: the venue refuses the account's keys (auth); the account is skipped"
        return (f"{who}: the venue could not be read ({a.key}); the account was skipped "
                f"in {n(a.count)} cycle(s)")
    if a.kind == "marks.stale":
        symbols = ", ".join(sorted(d.get("symbols", {}))[:8])
        return f"{a.vault_id} traded on stale or missing marks in {n(a.count)} cycle(s): {symbols}"
    if a.kind == "overlay.expired":
        return (f"{a.vault_id}: overlay {a.key} expired at {d.get('expires_at')}"
                + (f" ({n(a.count)} times)" if a.count > 1 else ""))
    if a.kind == "fee.overdue":
        return (f"{who} owes {m(_d(d.get('outstanding')))} for {a.key}, billed "
                f"{d.get('billed_at')} ({n(int(d.get('days', 0)))} days ago)")
    if a.kind == "fee.payment":
        return (f"{who}: {d.get('via')} invoice {d.get('invoice')} of {d.get('entry_id')} "
                f"received {m(_d(d.get('received')))} in all, {a.key}; "
                f"{m(_d(d.get('applied')))} recorded as paid")
    if a.kind == "account.skipped":
        extra = ""
        if a.key == "below_min_equity":
            extra = (f": equity {m(_d(d.get('equity')))} below the minimum "
                     f"{m(_d(d.get('min_account_equity')))}")
        return f"{who} skipped {n(a.count)} cycles in a row ({a.key}){extra}"
    if a.kind == "notify.failed":
        return (f"notifications to {a.key} failed {n(a.count)} time(s)"
                + (f" ({d['error']})" if d.get("error") else ""))
    return f"{a.kind} {who}"


def hint(a: Alert) -> str:
    """What to do about it."""
    v, acct = a.vault_id or "VAULT", a.account_id or "ACCOUNT"
    if a.kind == "vault.halted":
        return (f"no account of {v} buys until it is resumed: check the strategy, then "
                f"`vanta vault resume {v}` (--reset-peak restarts the guard's peak at the "
                "last NAV; without it the vault halts again while NAV stays below the limit)")
    if a.kind == "reject":
        return {
            "insufficient_cash": (f"{acct}'s buys do not fit its cash: a multiplier above 1 "
                                  "on a cash account cannot be filled; lower it, add cash, or "
                                  "pause the follower"),
            "no_mark": "price the symbols before the cycle: `vanta prices ingest FILE`",
            "venue_reject": f"the venue refused the orders (see detail.note): check {acct} "
                            "at its venue (buying power, permissions, market hours)",
        }.get(str(a.key), f"see the reject lines of {acct} in memory/trade_log.jsonl")
    if a.kind == "discrepancy":
        return (f"a trade outside vanta-box changed {acct}'s position: check the account at "
                "its venue, then acknowledge (`vanta alerts ack ID`)")
    if a.kind == "flow":
        return ("a deposit or withdrawal at the venue (never PnL): confirm it with the "
                "follower, then acknowledge")
    if a.kind == "orders.working":
        return ("`vanta orders sync` asks the venue again; the next cycle cancels them "
                "(superseded); a slow venue may need a longer --settle-timeout")
    if a.kind == "venue.error":
        if a.key == "auth":
            return (f"{acct}'s API keys were refused (revoked or expired?): every cycle skips "
                    "it until the keys work again")
        return "check the venue's status and the network: the next cycle tries again"
    if a.kind == "marks.stale":
        return "ingest fresh prices before the cycle: `vanta prices ingest FILE`"
    if a.kind == "overlay.expired":
        return (f"set it again if it should still be in force (`vanta overlay set {v} ...`), "
                "else acknowledge")
    if a.kind == "fee.overdue":
        entry = a.detail.get("entry_id", "ENTRY")
        return (f"record the payment with `vanta fees paid {entry} --ref TEXT`, or reverse "
                f"the entry (`vanta fees reverse {entry} --reason TEXT`)")
    if a.kind == "fee.payment":
        if a.key == "partial":
            return (f"{acct} paid part of the invoice: the rest stays outstanding (`vanta fees "
                    "list --outstanding`); `vanta fees collect --sync` records what follows")
        return (f"{acct} paid more than was owed: only what was owed is recorded; refund "
                "the rest at the processor, then acknowledge")
    if a.kind == "account.skipped":
        if a.key == "below_min_equity":
            return (f"{acct} is not mirrored while its equity is below the vault's "
                    "mirroring.min_account_equity: the follower adds funds, or the vault "
                    "lowers its minimum")
        if a.key == "no_personas":
            return (f"none of {acct}'s persona_prefs is a persona of {v} any more: remove "
                    "the follower, or give the vault its persona back")
        if str(a.key).startswith("venue_unavailable:"):
            return f"this build does not trade {str(a.key).split(':', 1)[1]} accounts yet"
        return f"see the skip lines of {acct} in memory/trade_log.jsonl"
    if a.kind == "notify.failed":
        return ("check the URL (`vanta notify list`, `vanta notify test`); alerts not sent "
                "are sent by the next `vanta run`")
    return "see `vanta alerts --json`"
