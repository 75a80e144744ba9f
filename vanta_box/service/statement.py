"""A follower's statement for one period: PnL and fees side by side, every fill.

Balances at a moment are rebuilt from the account's starting cash, its fills and its
capital flows (deposits and withdrawals, SPEC §9: cash moves through nothing else), so a
statement for any past period reads the same however much happened since. Equity is valued
just before the period starts and just before it ends: the closing equity of one month is
the opening equity of the next, and

    closing - opening = realized PnL + change of unrealized PnL + net flows of the period.

A period not over at ``as_of`` (the journal's last event) is a *preview*: its flat fee
counts the days elapsed so far, so a period with no elapsed day shows no flat fee due.
What is predictable is said in ``warnings``: a period before the follower was onboarded,
after it was removed, or not started yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError
from vanta_box.core.money import ZERO, D, fmt, fmt_cents
from vanta_box.core.timeutil import DAY_US, day_of, fmt_ts, parse_ts
from vanta_box.domain.fees import active_days, compute_fee, paused_days
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.service import collect, fees, performance
from vanta_box.store import journal, repo
from vanta_box.store.db import Connection


@dataclass
class Snapshot:
    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)

    def valued(self, conn: Connection, at: int) -> tuple[Decimal, Decimal]:
        """(equity, unrealized PnL) at the marks of ``at``."""
        held = {s: p for s, p in self.positions.items() if p.qty}
        marks = repo.marks_at(conn, at, held)
        equity, unrealized = self.cash, ZERO
        for symbol, p in held.items():
            mark = marks.get(symbol, p.last_price)
            equity += p.qty * mark
            unrealized += p.unrealized(mark)
        return equity, unrealized


def _snapshot(acct: repo.AccountRow, fills: list[tuple[Any, ...]], before: int,
              flows: Sequence[repo.FlowRow] = ()) -> Snapshot:
    snap = Snapshot(acct.starting_cash)
    snap.cash += sum((f.amount for f in flows if f.at < before), ZERO)  # never PnL
    for _fid, _oid, symbol, side, qty, price, commission, _r, at, _seq, _sh in fills:
        if at >= before:
            break
        q, p, c = D(qty), D(price), D(commission)
        position = snap.positions.get(symbol, Position.empty())
        snap.positions[symbol], _realized = apply_fill(position, side, q, p, c)
        snap.cash += -q * p - c if side == "buy" else q * p - c
    return snap


def _as_of(conn: Connection) -> int | None:
    row = conn.execute("SELECT ts FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return parse_ts(row[0]) if row else None


def build(conn: Connection, account_id: str, period: str,
          as_of: int | None = None) -> dict[str, Any]:
    """The statement of ``account_id`` for ``period``, as known at ``as_of`` (default:
    the journal's last event)."""
    acct = repo.account(conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}")
    if acct.role != "follower":
        raise InputError(f"{account_id} is the manager account of {acct.vault_id}: statements "
                         "are for followers")
    start, end = fees.period_bounds(period)
    known = as_of if as_of is not None else _as_of(conn)
    fills = repo.fills(conn, account_id)
    flows = repo.flows(conn, account_id)
    opening_at = max(start, acct.onboarded_at)
    opened = acct.onboarded_at < end
    open_snap = _snapshot(acct, fills, opening_at, flows)
    close_snap = _snapshot(acct, fills, end, flows)
    opening, unrealized_open = open_snap.valued(conn, opening_at - 1)
    closing, unrealized_close = close_snap.valued(conn, end - 1)
    in_period = [f for f in fills if start <= f[8] < end]
    realized = sum((D(f[7]) for f in in_period), ZERO)
    commissions = sum((D(f[6]) for f in in_period), ZERO)
    shadow = acct.mode == "shadow"
    doc: dict[str, Any] = {
        "account_id": acct.account_id, "vault_id": acct.vault_id, "mode": acct.mode,
        "status": acct.status, "period": period, "period_start": fmt_ts(start),
        "period_end": fmt_ts(end), "shadow": shadow,
        "onboarded_at": fmt_ts(acct.onboarded_at),
        "opening_equity": fmt(opening if opened else ZERO),
        "closing_equity": fmt(closing if opened else ZERO),
        "realized_pnl": fmt(realized), "commissions": fmt(commissions),
        "unrealized_pnl_open": fmt(unrealized_open), "unrealized_pnl_close": fmt(unrealized_close),
        "unrealized_pnl_change": fmt(unrealized_close - unrealized_open),
        # ``seq``: the journal row of each fill, fee entry and payment (what `--json`
        # proves, service.proofs.attach)
        "fills": [{"ts": fmt_ts(at), "order_id": oid, "symbol": symbol, "side": side,
                   "qty": qty, "price": price, "commission": commission, "realized_pnl": r,
                   "external": oid.startswith("external/"), "seq": seq}
                  for _fid, oid, symbol, side, qty, price, commission, r, at, seq, _sh
                  in in_period],
        **_flow_part(conn, acct, flows, opening_at, end, opening if opened else ZERO,
                     closing if opened else ZERO),
        "digest": str(journal.head(conn)),
        "as_of": None if known is None else fmt_ts(known),
    }
    doc["fee"], doc["ledger"] = _fee_part(conn, acct, period, shadow, known)
    doc["warnings"] = _warnings(acct, period, start, end, known, doc["fee"])
    # The vault's weights against the follower's at each cycle of the period, and why.
    doc["tracking"] = performance.tracking_doc(conn, acct, start, end,
                                               known if known is not None else end)
    return doc


def _warnings(acct: repo.AccountRow, period: str, start: int, end: int, known: int | None,
              fee: dict[str, Any]) -> list[str]:
    out = []
    who = acct.account_id
    if acct.onboarded_at >= end:
        out.append(f"{who} was not onboarded in {period} (onboarded "
                   f"{fmt_ts(acct.onboarded_at)}): nothing of this statement is {who}'s")
    elif acct.removed_at is not None and acct.removed_at <= start:
        out.append(f"{who} was removed at {fmt_ts(acct.removed_at)}, before {period}: "
                   "nothing happened in it")
    if known is not None and known <= start:
        out.append(f"{period} has not started at the journal's last event "
                   f"({fmt_ts(known)}): nothing is known of it yet")
    if fee.get("elapsed_days") == 0 and fee["flat_usd"] != "0":
        out.append(f"no day of {period} has elapsed (as of "
                   f"{fmt_ts(known or start)}): the preview shows no flat fee due yet")
    return out


def _elapsed(acct: repo.AccountRow, conn: Connection, period: str, known: int
             ) -> tuple[int, int]:
    """(days of ``period`` elapsed at ``known``, of them the active ones)."""
    first, last, _days = fees.period_dates(period)
    cutoff = day_of(known) - timedelta(days=1)  # the last whole day before ``known``
    last = min(last, cutoff)
    if last < first:
        return 0, 0
    removed = day_of(acct.removed_at) if acct.removed_at is not None else None
    paused = paused_days(repo.status_changes(conn, acct.account_id), DAY_US, day_of)
    return (last - first).days + 1, active_days(day_of(acct.onboarded_at), removed, first,
                                                last, paused)


def _fee_part(conn: Connection, acct: repo.AccountRow, period: str, shadow: bool,
              known: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    entries = repo.fee_entries(conn, acct.account_id, period)
    live = [e for e in fees.live_entries(conn, acct.account_id) if e.period == period]
    if shadow:
        a = fees.shadow_assessment(conn, acct, period)
        status = "shadow: not billed (what the follower would have owed)"
    elif live:
        a = fees.entry_assessment(acct, live[0])
        status = f"billed (entry {live[0].entry_id})"
    elif not fees.kind_matches(acct, period):
        a = fees.assess(conn, acct, period)
        by = "quarter" if fees.terms(acct).quarterly else "month"
        status = f"not a fee period of {acct.account_id}, billed by {by} (preview)"
    else:
        a = fees.assess(conn, acct, period)
        status = "not billed yet (preview)"
    elapsed = None
    _start, end = fees.period_bounds(period)
    if not live and known is not None and known < end:
        # A preview of a period not over: the flat (and management) fee of the days
        # elapsed so far.
        elapsed, active = _elapsed(acct, conn, period, known)
        first, _last, _days = fees.period_dates(period)
        base = ZERO
        if a.inputs.management_pct:
            base = fees.valuation(conn, acct, period, fees.terms(acct),
                                  last_day=first + timedelta(days=elapsed - 1))[1]
        inputs = replace(a.inputs, active_days=active, mgmt_base=base)
        a = fees.Assessment(acct, period, inputs, compute_fee(inputs))
        status = (f"{status[:-1]}: {elapsed} of {inputs.days_in_period} days elapsed)"
                  if status.endswith(")") else
                  f"{status} ({elapsed} of {inputs.days_in_period} days elapsed)")
    fee: dict[str, Any] = fees.ledger_line(live[0].entry_id if live else "", "fee", a)
    fee["entry_id"] = fee["entry_id"] or None
    fee["status"] = status
    if elapsed is not None:
        fee["elapsed_days"] = elapsed
    fee["derivation"] = fees.derivation(a)
    rows, due, paid = [], ZERO, ZERO
    for e in entries:
        payments = repo.fee_payments(conn, e.entry_id)
        seqs = repo.fee_payment_seqs(conn, e.entry_id)
        paid_here = sum((amount for _p, amount, _r, _a in payments), ZERO)
        due += e.fee_due
        paid += paid_here
        rows.append({"entry_id": e.entry_id, "kind": e.kind, "fee_due": fmt_cents(e.fee_due),
                     "reverses": e.reverses, "reason": e.reason, "ts": fmt_ts(e.at),
                     "seq": e.seq,
                     "payments": [{"payment_id": p, "amount": fmt_cents(amount), "ref": ref,
                                   "ts": fmt_ts(at), "seq": seqs[p]}
                                  for p, amount, ref, at in payments],
                     "invoice": collect.amounts(conn, e.entry_id)})
    ledger = {"entries": rows, "due": fmt_cents(due), "paid": fmt_cents(paid),
              "outstanding": fmt_cents(due - paid)}
    return fee, ledger


def _flow_part(conn: Connection, acct: repo.AccountRow, flows: list[repo.FlowRow],
               opening_at: int, end: int, opening: Decimal, closing: Decimal
               ) -> dict[str, Any]:
    """The period's flows, net contributions and profit at its close, and its
    time-weighted return (SPEC §9): the chain of the sub-periods between flows, from the
    opening equity to the closing one, each flow valued at the marks of its time."""
    from vanta_box.domain.flows import chain, quantize_return
    from vanta_box.service.flows import MarkCache, timeline, value_at

    inside = [f for f in flows if opening_at <= f.at < end]
    marks = MarkCache(conn)
    cuts = []
    if inside:
        t = timeline(conn, acct, since=inside[0].at, flows=flows)
        cuts = [(value_at(t, (f.at, f.seq), marks)[0], f.amount) for f in inside]
    contributions = acct.starting_cash + sum((f.amount for f in flows if f.at < end), ZERO)
    return {
        "flows": [{"ts": fmt_ts(f.at), "kind": f.kind, "amount": fmt(f.amount),
                   "source": f.source, "ref": f.ref} for f in inside],
        "net_flows": fmt(sum((f.amount for f in inside), ZERO)),
        "contributions_close": fmt(contributions),
        "profit_close": fmt(closing - contributions),
        "twr": fmt(quantize_return(chain(opening, cuts, closing))),
    }
