"""Fee runs, reversals and payments (SPEC §4 Fees): the revenue engine.

A fee run bills, for one calendar month, every non-shadow follower with an active day in
it and no live entry for it yet. An entry is *live* until a reversal names it; a reversed
follower-period can be billed again (the correction flow: reverse, fix, run again). The
loss carried into a period is the ``carry_out`` of the follower's latest live entry before
it, so entries are reversed last-first and billed in period order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from vanta_box.core.errors import InputError, Refused
from vanta_box.core.money import ZERO, D, fmt, fmt_cents
from vanta_box.core.timeutil import (
    DAY_US,
    TimeError,
    day_of,
    days_in_month,
    fmt_ts,
    parse_period,
    to_datetime,
)
from vanta_box.domain.fees import FeeInputs, FeeResult, active_days, compute_fee, paused_days
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.store import repo
from vanta_box.store.db import Connection


def period_bounds(period: str) -> tuple[int, int]:
    try:
        return parse_period(period)
    except TimeError as exc:
        raise InputError(str(exc), field="--period") from None


def period_dates(period: str) -> tuple[date, date, int]:
    start, end = period_bounds(period)
    first = to_datetime(start).date()
    last = to_datetime(end).date() - timedelta(days=1)
    return first, last, days_in_month(first.year, first.month)


def account_active_days(conn: Connection, acct: repo.AccountRow, period: str) -> int:
    """SPEC §4: days of the period the follower was onboarded, not removed before, and not
    paused for the whole day."""
    first, last, _days = period_dates(period)
    removed = day_of(acct.removed_at) if acct.removed_at is not None else None
    changes = repo.status_changes(conn, acct.account_id) if acct.role == "follower" else []
    paused = paused_days(changes, DAY_US, day_of)
    return active_days(day_of(acct.onboarded_at), removed, first, last, paused)


def months_between(acct: repo.AccountRow, period: str) -> list[str]:
    """The months from the account's onboarding month up to, not including, ``period``."""
    out, month = [], day_of(acct.onboarded_at).replace(day=1)
    while (label := f"{month.year:04d}-{month.month:02d}") < period:
        out.append(label)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def unbilled_periods(conn: Connection, up_to: str) -> list[str]:
    """Ended months up to ``up_to`` in which some non-shadow follower was active and has no
    live entry, oldest first (what the scheduler bills)."""
    out: set[str] = set()
    for acct in repo.accounts(conn):
        if acct.role != "follower" or acct.mode == "shadow":
            continue
        billed = {e.period for e in live_entries(conn, acct.account_id)}
        for month in [*months_between(acct, up_to), up_to]:
            if month not in billed and account_active_days(conn, acct, month) > 0:
                out.add(month)
    return sorted(out)


def realized_in(conn: Connection, account_id: str, start: int, end: int) -> Decimal:
    return sum((D(row[7]) for row in repo.fills(conn, account_id, start, end)), ZERO)


def live_entries(conn: Connection, account_id: str) -> list[repo.FeeEntryRow]:
    """The account's fee entries not reversed, oldest first."""
    entries = repo.fee_entries(conn, account_id)
    reversed_ids = {e.reverses for e in entries if e.kind == "reversal"}
    return [e for e in entries if e.kind == "fee" and e.entry_id not in reversed_ids]


def terms(acct: repo.AccountRow) -> tuple[str, Decimal, Decimal]:
    fee = acct.fee_agreement or {"type": "performance", "perf_share": "0", "flat_usd": "0"}
    return fee["type"], D(fee.get("perf_share") or "0"), D(fee.get("flat_usd") or "0")


@dataclass(frozen=True, slots=True)
class Assessment:
    """A follower's fee for a period, with everything needed to recompute it by hand."""

    account: repo.AccountRow
    period: str
    inputs: FeeInputs
    result: FeeResult


def assess(conn: Connection, acct: repo.AccountRow, period: str,
           carry_in: Decimal | None = None) -> Assessment:
    start, end = period_bounds(period)
    _first, _last, days = period_dates(period)
    if carry_in is None:
        earlier = [e for e in live_entries(conn, acct.account_id) if e.period < period]
        carry_in = earlier[-1].carry_out if earlier else ZERO
    fee_type, perf_share, flat_usd = terms(acct)
    inputs = FeeInputs(fee_type, perf_share, flat_usd,
                       realized_in(conn, acct.account_id, start, end), carry_in,
                       account_active_days(conn, acct, period), days)
    return Assessment(acct, period, inputs, compute_fee(inputs))


def shadow_assessment(conn: Connection, acct: repo.AccountRow, period: str) -> Assessment:
    """What a shadow follower would owe: its own carry chain since onboarding."""
    month = day_of(acct.onboarded_at).replace(day=1)
    carry = ZERO
    while True:
        label = f"{month.year:04d}-{month.month:02d}"
        if label >= period:
            return assess(conn, acct, period, carry)
        carry = assess(conn, acct, label, carry).result.carry_out
        month = (month + timedelta(days=32)).replace(day=1)


def derivation(a: Assessment) -> str:
    """The fee in words: which leg applied and why."""
    i, r = a.inputs, a.result
    text = [f"realized {fmt_cents(i.realized_pnl)} - carried loss {fmt_cents(i.carry_in)} = "
            f"net {fmt_cents(r.net)}"]
    if r.net > 0:
        text.append(f"performance {fmt(i.perf_share * 100)}% x {fmt_cents(r.net)} = "
                    f"{fmt_cents(r.perf_fee)}; nothing carried forward")
    else:
        text.append(f"no performance fee; loss carried forward {fmt_cents(r.carry_out)}")
    text.append(f"flat {fmt_cents(i.flat_usd)} x {i.active_days}/{i.days_in_period} days = "
                f"{fmt_cents(r.flat_fee)}")
    if i.fee_type == "performance_or_flat":
        text.append(f"performance_or_flat: max({fmt_cents(r.perf_fee)}, "
                    f"{fmt_cents(r.flat_fee)}) = {fmt_cents(r.fee_due)} ({r.leg} leg)")
    else:
        text.append(f"{i.fee_type}: fee {fmt_cents(r.fee_due)}")
    return "; ".join(text)


def ledger_line(entry_id: str, kind: str, a: Assessment, sign: int = 1,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fee_ledger.jsonl line: the source's keys plus what recomputes the entry."""
    i, r = a.inputs, a.result
    start, end = period_bounds(a.period)
    line = {
        "entry_id": entry_id, "kind": kind, "user_id": a.account.account_id,
        "vault_id": a.account.vault_id, "fee_type": i.fee_type,
        "perf_share": fmt(i.perf_share), "flat_usd": fmt(i.flat_usd),
        "realized_pnl": fmt(i.realized_pnl), "fee_due": fmt_cents(sign * r.fee_due),
        "period": a.period, "perf_fee": fmt_cents(sign * r.perf_fee),
        "flat_fee": fmt_cents(sign * r.flat_fee), "carry_in": fmt(i.carry_in),
        "carry_out": fmt(r.carry_out), "active_days": i.active_days,
        "days_in_period": i.days_in_period, "net": fmt(r.net), "leg": r.leg,
        "period_start": fmt_ts(start), "period_end": fmt_ts(end),
    }
    return {**line, **(extra or {})}


def _row(line: dict[str, Any], at: int, seq: int) -> repo.FeeEntryRow:
    return repo.FeeEntryRow(
        line["entry_id"], line["kind"], line["user_id"], line["vault_id"], line["period"],
        line["fee_type"], D(line["perf_share"]), D(line["flat_usd"]), D(line["realized_pnl"]),
        D(line["carry_in"]), D(line["net"]), D(line["perf_fee"]), D(line["flat_fee"]),
        D(line["carry_out"]), line["active_days"], line["days_in_period"], D(line["fee_due"]),
        line.get("reverses"), line.get("reason"), at, seq)


# ---------------------------------------------------------------- fees run


def fees_run_command(eng: Engine, period: str, at: int) -> Command:
    _start, end = period_bounds(period)
    if at < end:
        raise Refused(f"period {period} ends at {fmt_ts(end)}: it cannot be billed at "
                      f"{fmt_ts(at)}")
    return Command.make("fees.run", at, {"period": period})


@handles("fees.run")
def _fees_run(eng: Engine, cmd: Command) -> list[dict[str, Any]]:
    period = cmd.payload["period"]
    _start, end = period_bounds(period)
    if cmd.ts < end:
        raise Refused(f"period {period} has not ended at {fmt_ts(cmd.ts)}")
    todo: list[Assessment] = []
    billed: list[str] = []
    for acct in repo.accounts(eng.conn):
        if acct.role != "follower" or acct.mode == "shadow":
            continue
        if account_active_days(eng.conn, acct, period) == 0:
            continue
        live = live_entries(eng.conn, acct.account_id)
        if any(e.period == period for e in live):
            billed.append(acct.account_id)
            continue
        later = [e.period for e in live if e.period > period]
        if later:
            raise Refused(f"{acct.account_id} is already billed for {later[0]}: periods are "
                          f"billed in order (reverse {later[-1]} first to rebill {period})")
        billed_periods = {e.period for e in live}
        missing = [m for m in months_between(acct, period)
                   if m not in billed_periods and account_active_days(eng.conn, acct, m) > 0]
        if missing:
            raise Refused(f"{acct.account_id} is not billed for {missing[0]} yet: the loss "
                          f"carried into {period} depends on it (run `vanta fees run "
                          f"--period {missing[0]}` first)")
        todo.append(assess(eng.conn, acct, period))
    if not todo:
        raise Refused(f"period {period} is already billed ({len(billed)} follower(s)): "
                      "nothing changed" if billed else
                      f"no follower was active in {period}: nothing to bill")
    lines = []
    with eng.tx():
        for a in todo:
            n = 1 + sum(1 for e in repo.fee_entries(eng.conn, a.account.account_id, period)
                        if e.kind == "fee")
            line = ledger_line(f"{a.account.account_id}/{period}/{n}", "fee", a)
            seq = eng.record(cmd.ts, "fee", line)
            repo.insert_fee_entry(eng.conn, _row(line, cmd.ts, seq))
            lines.append(line)
    return lines


# ---------------------------------------------------------------- reversal


def _entry_for_change(conn: Connection, entry_id: str) -> repo.FeeEntryRow:
    entry = repo.fee_entry(conn, entry_id)
    if entry is None:
        raise InputError(f"unknown fee entry {entry_id!r} (see memory/fee_ledger.jsonl)")
    if entry.kind != "fee":
        raise InputError(f"{entry_id} is a reversal, not a fee entry")
    if entry not in live_entries(conn, entry.account_id):
        raise Refused(f"{entry_id} is already reversed")
    return entry


def fees_reverse_command(eng: Engine, entry_id: str, reason: str, at: int) -> Command:
    entry = _entry_for_change(eng.conn, entry_id)
    if at < entry.at:
        raise Refused(f"a reversal cannot be dated {fmt_ts(at)}, before {entry_id} was "
                      f"billed ({fmt_ts(entry.at)})")
    if not reason.strip():
        raise InputError("a reversal needs a reason", field="--reason")
    return Command.make("fees.reverse", at, {"entry_id": entry_id, "reason": reason.strip()})


@handles("fees.reverse")
def _fees_reverse(eng: Engine, cmd: Command) -> dict[str, Any]:
    entry = _entry_for_change(eng.conn, cmd.payload["entry_id"])
    later = [e.entry_id for e in live_entries(eng.conn, entry.account_id)
             if e.period > entry.period]
    if later:
        raise Refused(f"reverse the later entries of {entry.account_id} first: "
                      f"{', '.join(reversed(later))}")
    acct = repo.account(eng.conn, entry.account_id)
    assert acct is not None
    inputs = FeeInputs(entry.fee_type, entry.perf_share, entry.flat_usd, entry.realized_pnl,
                       entry.carry_in, entry.active_days, entry.days_in_period)
    original = Assessment(acct, entry.period, inputs, compute_fee(inputs))
    # Undo: amounts negated, and the carry goes back to what it was before the entry.
    line = ledger_line(f"{entry.entry_id}/reversal", "reversal", original, sign=-1,
                       extra={"reverses": entry.entry_id, "reason": cmd.payload["reason"],
                              "carry_in": fmt(entry.carry_out),
                              "carry_out": fmt(entry.carry_in)})
    with eng.tx():
        seq = eng.record(cmd.ts, "fee_reversal", line)
        repo.insert_fee_entry(eng.conn, _row(line, cmd.ts, seq))
    return line


# ---------------------------------------------------------------- payments


def paid_total(conn: Connection, entry_id: str) -> Decimal:
    return sum((amount for _p, amount, _r, _a in repo.fee_payments(conn, entry_id)), ZERO)


def outstanding(conn: Connection, account_id: str, period: str) -> Decimal:
    """What the follower still owes for a period: every entry (fees, reversals, rebills)
    net of every payment against any of them. A payment made before a reversal counts
    toward the rebilled entry, so a fee is never collected twice."""
    entries = repo.fee_entries(conn, account_id, period)
    due = sum((e.fee_due for e in entries), ZERO)
    return due - sum((paid_total(conn, e.entry_id) for e in entries), ZERO)


def _check_payment(conn: Connection, entry: repo.FeeEntryRow, amount: Decimal,
                   at: int) -> None:
    owed = outstanding(conn, entry.account_id, entry.period)
    if amount != amount.quantize(Decimal("0.01")):
        raise InputError(f"amount {fmt(amount)} is not in whole cents", field="--amount")
    if amount <= 0:
        raise InputError("amount must be greater than 0", field="--amount")
    if owed <= 0:
        raise Refused(f"{entry.account_id} owes nothing for {entry.period}")
    if amount > owed:
        raise Refused(f"{entry.account_id} owes {fmt_cents(owed)} for {entry.period}: "
                      f"{fmt_cents(amount)} is more")
    if at < entry.at:
        raise Refused(f"a payment cannot be dated {fmt_ts(at)}, before {entry.entry_id} "
                      f"was billed ({fmt_ts(entry.at)})")


def fees_paid_command(eng: Engine, entry_id: str, ref: str, amount: Decimal | None,
                      at: int, invoice: dict[str, str] | None = None) -> Command:
    """A payment of ``amount`` (default: what is outstanding). ``invoice``: the processor
    invoice it came through (service.collect), kept in the payload."""
    entry = _entry_for_change(eng.conn, entry_id)
    if not ref.strip():
        raise InputError("a payment needs a reference", field="--ref")
    if amount is None:
        amount = outstanding(eng.conn, entry.account_id, entry.period)
        if amount <= 0:
            raise Refused(f"{entry.account_id} owes nothing for {entry.period}")
    _check_payment(eng.conn, entry, amount, at)
    return Command.make("fees.paid", at, {"entry_id": entry_id, "ref": ref.strip(),
                                          "amount": fmt_cents(amount), **(invoice or {})})


@handles("fees.paid")
def _fees_paid(eng: Engine, cmd: Command) -> dict[str, Any]:
    p = cmd.payload
    entry = _entry_for_change(eng.conn, p["entry_id"])
    amount = D(p["amount"])
    _check_payment(eng.conn, entry, amount, cmd.ts)
    n = len(repo.fee_payments(eng.conn, entry.entry_id)) + 1
    with eng.tx():
        repo.insert_fee_payment(eng.conn, f"{entry.entry_id}/payment/{n}", entry.entry_id,
                                amount, p["ref"], cmd.ts, eng.journal.seq)
        if "invoice" in p:
            from vanta_box.service.collect import record_invoice_payment

            record_invoice_payment(eng, p)
    return {"entry_id": entry.entry_id, "amount": amount,
            "outstanding": outstanding(eng.conn, entry.account_id, entry.period)}
