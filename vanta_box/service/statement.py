"""A follower's statement for one period: PnL and fees side by side, every fill.

Balances at a moment are rebuilt from the account's starting cash and its fills (all cash
moves through fills), so a statement for any past period reads the same however much
happened since. Equity is valued just before the period starts and just before it ends:
the closing equity of one month is the opening equity of the next, and

    closing - opening = realized PnL of the period + change of unrealized PnL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError
from vanta_box.core.money import ZERO, D, fmt, fmt_cents
from vanta_box.core.timeutil import fmt_ts
from vanta_box.domain.fees import FeeInputs, compute_fee
from vanta_box.domain.pnl import Position, apply_fill
from vanta_box.service import fees
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


def _snapshot(acct: repo.AccountRow, fills: list[tuple[Any, ...]], before: int) -> Snapshot:
    snap = Snapshot(acct.starting_cash)
    for _fid, _oid, symbol, side, qty, price, commission, _r, at, _seq, _sh in fills:
        if at >= before:
            break
        q, p, c = D(qty), D(price), D(commission)
        position = snap.positions.get(symbol, Position.empty())
        snap.positions[symbol], _realized = apply_fill(position, side, q, p, c)
        snap.cash += -q * p - c if side == "buy" else q * p - c
    return snap


def build(conn: Connection, account_id: str, period: str) -> dict[str, Any]:
    acct = repo.account(conn, account_id)
    if acct is None:
        raise InputError(f"unknown account {account_id!r}")
    if acct.role != "follower":
        raise InputError(f"{account_id} is the manager account of {acct.vault_id}: statements "
                         "are for followers")
    start, end = fees.period_bounds(period)
    fills = repo.fills(conn, account_id)
    opening_at = max(start, acct.onboarded_at)
    opened = acct.onboarded_at < end
    open_snap = _snapshot(acct, fills, opening_at)
    close_snap = _snapshot(acct, fills, end)
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
        "fills": [{"ts": fmt_ts(at), "order_id": oid, "symbol": symbol, "side": side,
                   "qty": qty, "price": price, "commission": commission, "realized_pnl": r,
                   "external": oid.startswith("external/")}
                  for _fid, oid, symbol, side, qty, price, commission, r, at, _s, _sh
                  in in_period],
        "digest": str(journal.head(conn)),
    }
    doc["fee"], doc["ledger"] = _fee_part(conn, acct, period, shadow)
    return doc


def _fee_part(conn: Connection, acct: repo.AccountRow, period: str, shadow: bool
              ) -> tuple[dict[str, Any], dict[str, Any]]:
    entries = repo.fee_entries(conn, acct.account_id, period)
    live = [e for e in fees.live_entries(conn, acct.account_id) if e.period == period]
    if shadow:
        a = fees.shadow_assessment(conn, acct, period)
        status = "shadow: not billed (what the follower would have owed)"
    elif live:
        e = live[0]
        inputs = FeeInputs(e.fee_type, e.perf_share, e.flat_usd, e.realized_pnl,
                           e.carry_in, e.active_days, e.days_in_period)
        a = fees.Assessment(acct, period, inputs, compute_fee(inputs))
        status = f"billed (entry {e.entry_id})"
    else:
        a = fees.assess(conn, acct, period)
        status = "not billed yet (preview)"
    fee: dict[str, Any] = fees.ledger_line(live[0].entry_id if live else "", "fee", a)
    fee["entry_id"] = fee["entry_id"] or None
    fee["status"] = status
    fee["derivation"] = fees.derivation(a)
    rows, due, paid = [], ZERO, ZERO
    for e in entries:
        payments = repo.fee_payments(conn, e.entry_id)
        paid_here = sum((amount for _p, amount, _r, _a in payments), ZERO)
        due += e.fee_due
        paid += paid_here
        rows.append({"entry_id": e.entry_id, "kind": e.kind, "fee_due": fmt_cents(e.fee_due),
                     "reverses": e.reverses, "reason": e.reason, "ts": fmt_ts(e.at),
                     "payments": [{"payment_id": p, "amount": fmt_cents(amount), "ref": ref,
                                   "ts": fmt_ts(at)} for p, amount, ref, at in payments]})
    ledger = {"entries": rows, "due": fmt_cents(due), "paid": fmt_cents(paid),
              "outstanding": fmt_cents(due - paid)}
    return fee, ledger


def render_text(doc: dict[str, Any]) -> str:
    """The statement as a terminal page."""
    fee, ledger = doc["fee"], doc["ledger"]
    head = "SHADOW statement (nothing was traded or billed)" if doc["shadow"] else "Statement"
    lines = [
        f"{head}: {doc['account_id']} ({doc['mode']}) in vault {doc['vault_id']}, "
        f"period {doc['period']}",
        f"  {doc['period_start']} .. {doc['period_end']} (exclusive)",
        "",
        "PnL                                   Fees",
        f"  opening equity  {doc['opening_equity']:>20}    fee type     {fee['fee_type']}",
        f"  closing equity  {doc['closing_equity']:>20}    realized     "
        f"{fmt_cents(D(fee['realized_pnl']))}",
        f"  realized PnL    {doc['realized_pnl']:>20}    carry in     "
        f"{fmt_cents(D(fee['carry_in']))}",
        f"  unrealized chg  {doc['unrealized_pnl_change']:>20}    performance  {fee['perf_fee']}",
        f"  commissions     {doc['commissions']:>20}    flat         {fee['flat_fee']} "
        f"({fee['active_days']}/{fee['days_in_period']} days)",
        f"  {'':34}    fee due      {fee['fee_due']}",
        f"  {'':34}    carry out    {fmt_cents(D(fee['carry_out']))}",
        "",
        f"fee: {fee['status']}",
        f"  {fee['derivation']}",
        f"ledger: due {ledger['due']}, paid {ledger['paid']}, "
        f"outstanding {ledger['outstanding']}",
    ]
    for e in ledger["entries"]:
        lines.append(f"  {e['ts']} {e['kind']:<9} {e['entry_id']}  {e['fee_due']}"
                     + (f"  ({e['reason']})" if e["reason"] else ""))
        for p in e["payments"]:
            lines.append(f"      paid {p['amount']} on {p['ts']} ref {p['ref']}")
    lines += ["", f"fills ({len(doc['fills'])}):"]
    for f in doc["fills"]:
        lines.append(f"  {f['ts']} {f['side']:<4} {f['qty']:>12} {f['symbol']:<10} @ "
                     f"{f['price']:<14} commission {f['commission']:<12} realized "
                     f"{f['realized_pnl']}" + ("  (by hand)" if f["external"] else ""))
    lines.append(f"\ndigest {doc['digest']}")
    return "\n".join(lines)
