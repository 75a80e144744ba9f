"""Fee runs, reversals and payments (SPEC §4 Fees, §9 bases): the revenue engine.

A fee run bills, for one calendar month (or quarter, ``YYYY-Qn``), every non-shadow
follower billed by such periods with an active day in it and no live entry for it yet; a
removal bills the follower's last, partial period at once (early exit). An entry is
*live* until a reversal names it; a reversed follower-period can be billed again (the
correction flow: reverse, fix, run again). The loss carried into a period (and the
high-water mark of an equity_hwm agreement) is the ``carry_out`` (``hwm_out``) of the
follower's latest live entry before it, so entries are reversed last-first and billed in
period order.
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
    day_start,
    fmt_ts,
    is_quarter,
    parse_period,
    period_label,
    to_datetime,
)
from vanta_box.domain.fees import (
    FeeInputs,
    FeeResult,
    active_day_list,
    active_days,
    compute_fee,
    paused_days,
)
from vanta_box.domain.flows import LAST_SEQ, Key
from vanta_box.service import flows
from vanta_box.service.engine import Command, Engine, handles
from vanta_box.service.flows import MarkCache
from vanta_box.store import repo
from vanta_box.store.db import Connection


def period_bounds(period: str) -> tuple[int, int]:
    try:
        return parse_period(period)
    except TimeError as exc:
        raise InputError(str(exc), field="--period") from None


def period_dates(period: str) -> tuple[date, date, int]:
    """First and last day of a month or quarter, and its number of days."""
    start, end = period_bounds(period)
    first = to_datetime(start).date()
    last = to_datetime(end).date() - timedelta(days=1)
    return first, last, (last - first).days + 1


def _paused(conn: Connection, acct: repo.AccountRow) -> list[tuple[date, date]]:
    changes = repo.status_changes(conn, acct.account_id) if acct.role == "follower" else []
    return paused_days(changes, DAY_US, day_of)


def account_active_days(conn: Connection, acct: repo.AccountRow, period: str) -> int:
    """SPEC §4: days of the period the follower was onboarded, not removed before, and not
    paused for the whole day."""
    first, last, _days = period_dates(period)
    removed = day_of(acct.removed_at) if acct.removed_at is not None else None
    return active_days(day_of(acct.onboarded_at), removed, first, last, _paused(conn, acct))


def account_active_day_list(conn: Connection, acct: repo.AccountRow, period: str
                            ) -> list[date]:
    first, last, _days = period_dates(period)
    removed = day_of(acct.removed_at) if acct.removed_at is not None else None
    return active_day_list(day_of(acct.onboarded_at), removed, first, last,
                           _paused(conn, acct))


@dataclass(frozen=True, slots=True)
class Terms:
    """A fee agreement with the SPEC §9 defaults filled in."""

    fee_type: str
    perf_share: Decimal
    flat_usd: Decimal
    basis: str = "realized"
    management_pct: Decimal = ZERO
    quarterly: bool = False


def terms(acct: repo.AccountRow) -> Terms:
    fee = acct.fee_agreement or {"type": "performance", "perf_share": "0", "flat_usd": "0"}
    return Terms(fee["type"], D(fee.get("perf_share") or "0"), D(fee.get("flat_usd") or "0"),
                 fee.get("basis") or "realized", D(fee.get("management_pct") or "0"),
                 fee.get("period") == "quarter")


def kind_matches(acct: repo.AccountRow, period: str) -> bool:
    """A follower is billed by month or by quarter (its agreement's ``period``)."""
    return terms(acct).quarterly == is_quarter(period)


def periods_between(acct: repo.AccountRow, period: str) -> list[str]:
    """The follower's fee periods (months or quarters) from its onboarding's up to, not
    including, ``period``."""
    quarterly = terms(acct).quarterly
    out, at = [], acct.onboarded_at
    while (label := period_label(at, quarterly)) < period:
        out.append(label)
        at = parse_period(label)[1]
    return out


months_between = periods_between  # the name before quarters (SPEC §9)


def unbilled_periods(conn: Connection, up_to: str) -> list[str]:
    """Periods ended by the end of month ``up_to`` in which some non-shadow follower was
    active and has no live entry, by when they end (what the scheduler bills)."""
    limit = period_bounds(up_to)[1]
    out: set[str] = set()
    for acct in repo.accounts(conn):
        if acct.role != "follower" or acct.mode == "shadow":
            continue
        billed = {e.period for e in live_entries(conn, acct.account_id)}
        label = period_label(acct.onboarded_at, terms(acct).quarterly)
        while parse_period(label)[1] <= limit:
            if label not in billed and account_active_days(conn, acct, label) > 0:
                out.add(label)
            label = period_label(parse_period(label)[1], terms(acct).quarterly)
    return sorted(out, key=lambda p: (parse_period(p)[1], p))


def realized_in(conn: Connection, account_id: str, start: int, end: int) -> Decimal:
    return sum((D(row[7]) for row in repo.fills(conn, account_id, start, end)), ZERO)


def live_entries(conn: Connection, account_id: str) -> list[repo.FeeEntryRow]:
    """The account's fee entries not reversed, oldest first."""
    entries = repo.fee_entries(conn, account_id)
    reversed_ids = {e.reverses for e in entries if e.kind == "reversal"}
    return [e for e in entries if e.kind == "fee" and e.entry_id not in reversed_ids]


@dataclass(frozen=True, slots=True)
class Assessment:
    """A follower's fee for a period, with everything needed to recompute it by hand."""

    account: repo.AccountRow
    period: str
    inputs: FeeInputs
    result: FeeResult
    close_at: int | None = None  # when P was taken: the period's end, or the removal


def close_point(acct: repo.AccountRow, period: str) -> tuple[Key, int]:
    """Where a period closes for the follower: its end (the state before it, the marks at
    it), or, for a follower removed inside it, the removal (early exit: every move up to
    it, the marks at it)."""
    start, end = period_bounds(period)
    if acct.removed_at is not None and start <= acct.removed_at < end:
        return (acct.removed_at, LAST_SEQ), acct.removed_at
    return (end, 0), end


def valuation(conn: Connection, acct: repo.AccountRow, period: str, t: Terms,
              marks: MarkCache | None = None, last_day: date | None = None
              ) -> tuple[Decimal, Decimal, int]:
    """(P at the period's close, sum of E_close over its active days (SPEC §9 management
    fee: each day's equity at the next 00:00 UTC, at that moment's marks; the removal
    closes the last day of an early exit), the close moment)."""
    marks = marks or MarkCache(conn)
    start, _end = period_bounds(period)
    key, close_at = close_point(acct, period)
    tl = flows.timeline(conn, acct, since=start)
    equity, contributions = flows.value_at(tl, key, marks)
    base = ZERO
    if t.management_pct:
        for day in account_active_day_list(conn, acct, period):
            if last_day is not None and day > last_day:
                break  # a preview: the days elapsed so far
            midnight = day_start(day + timedelta(days=1))
            point: Key = (midnight, 0) if midnight <= close_at else key
            base += flows.value_at(tl, point, marks, min(midnight, close_at))[0]
    return equity - contributions, base, close_at


def previous_legs(conn: Connection, acct: repo.AccountRow, period: str
                  ) -> tuple[Decimal, Decimal]:
    """(loss carried, high-water mark) into ``period``: the latest live entry's before."""
    earlier = [e for e in live_entries(conn, acct.account_id) if e.period < period]
    return (earlier[-1].carry_out, earlier[-1].hwm_out) if earlier else (ZERO, ZERO)


def assess(conn: Connection, acct: repo.AccountRow, period: str,
           carry_in: Decimal | None = None, hwm_in: Decimal | None = None,
           marks: MarkCache | None = None) -> Assessment:
    start, end = period_bounds(period)
    _first, _last, days = period_dates(period)
    carry, hwm = previous_legs(conn, acct, period)
    carry_in = carry if carry_in is None else carry_in
    hwm_in = hwm if hwm_in is None else hwm_in
    t = terms(acct)
    profit_end, base, close_at = valuation(conn, acct, period, t, marks)
    inputs = FeeInputs(t.fee_type, t.perf_share, t.flat_usd,
                       realized_in(conn, acct.account_id, start, end),
                       ZERO if t.basis == "equity_hwm" else carry_in,
                       account_active_days(conn, acct, period), days, t.basis, profit_end,
                       hwm_in, t.management_pct, base)
    return Assessment(acct, period, inputs, compute_fee(inputs), close_at)


def entry_assessment(acct: repo.AccountRow, e: repo.FeeEntryRow) -> Assessment:
    """An entry's assessment again, from what it recorded."""
    inputs = FeeInputs(e.fee_type, e.perf_share, e.flat_usd, e.realized_pnl, e.carry_in,
                       e.active_days, e.days_in_period, e.basis,
                       e.profit_end if e.profit_end is not None else ZERO, e.hwm_in,
                       e.management_pct, e.mgmt_base)
    return Assessment(acct, e.period, inputs, compute_fee(inputs))


def shadow_assessment(conn: Connection, acct: repo.AccountRow, period: str) -> Assessment:
    """What a shadow follower would owe: its own carry and high-water chain since
    onboarding."""
    carry = hwm = ZERO
    for label in periods_between(acct, period):
        r = assess(conn, acct, label, carry, hwm).result
        carry, hwm = r.carry_out, r.hwm_out
    return assess(conn, acct, period, carry, hwm)


def derivation(a: Assessment) -> str:
    """The fee in words: which leg applied and why."""
    i, r = a.inputs, a.result
    if i.basis == "equity_hwm":
        text = [f"equity basis: profit at the close {fmt_cents(i.profit_end)} (equity - net "
                f"contributions) - high-water mark {fmt_cents(i.hwm_in)} = "
                f"{fmt_cents(r.net)}"]
        if r.net > 0:
            text.append(f"performance {fmt(i.perf_share * 100)}% x {fmt_cents(r.net)} = "
                        f"{fmt_cents(r.perf_fee)}; high-water mark now "
                        f"{fmt_cents(r.hwm_out)}")
        else:
            text.append("no performance fee (no profit above the high-water mark, no "
                        f"loss carried); high-water mark stays {fmt_cents(r.hwm_out)}")
    else:
        text = [f"realized {fmt_cents(i.realized_pnl)} - carried loss "
                f"{fmt_cents(i.carry_in)} = net {fmt_cents(r.net)}"]
        if r.net > 0:
            text.append(f"performance {fmt(i.perf_share * 100)}% x {fmt_cents(r.net)} = "
                        f"{fmt_cents(r.perf_fee)}; nothing carried forward")
        else:
            text.append(f"no performance fee; loss carried forward {fmt_cents(r.carry_out)}")
    text.append(f"flat {fmt_cents(i.flat_usd)} x {i.active_days}/{i.days_in_period} days = "
                f"{fmt_cents(r.flat_fee)}")
    legs = r.fee_due - r.mgmt_fee
    if i.fee_type == "performance_or_flat":
        text.append(f"performance_or_flat: max({fmt_cents(r.perf_fee)}, "
                    f"{fmt_cents(r.flat_fee)}) = {fmt_cents(legs)} ({r.leg} leg)")
    else:
        text.append(f"{i.fee_type}: fee {fmt_cents(legs)}")
    if i.management_pct:
        text.append(f"management {fmt(i.management_pct * 100)}% a year x "
                    f"{fmt_cents(i.mgmt_base)} (equity at each of {i.active_days} active "
                    f"days' close) / 365 = {fmt_cents(r.mgmt_fee)}, added: fee due "
                    f"{fmt_cents(r.fee_due)}")
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
        # SPEC §9
        "basis": i.basis, "profit_end": fmt(i.profit_end), "hwm_in": fmt(i.hwm_in),
        "hwm_out": fmt(r.hwm_out), "management_pct": fmt(i.management_pct),
        "mgmt_base": fmt(i.mgmt_base), "mgmt_fee": fmt_cents(sign * r.mgmt_fee),
    }
    if a.close_at is not None and a.close_at != end:
        line["closed_at"] = fmt_ts(a.close_at)  # early exit: billed at the removal
    return {**line, **(extra or {})}


def _row(line: dict[str, Any], at: int, seq: int) -> repo.FeeEntryRow:
    return repo.FeeEntryRow(
        line["entry_id"], line["kind"], line["user_id"], line["vault_id"], line["period"],
        line["fee_type"], D(line["perf_share"]), D(line["flat_usd"]), D(line["realized_pnl"]),
        D(line["carry_in"]), D(line["net"]), D(line["perf_fee"]), D(line["flat_fee"]),
        D(line["carry_out"]), line["active_days"], line["days_in_period"], D(line["fee_due"]),
        line.get("reverses"), line.get("reason"), at, seq, line["basis"],
        D(line["profit_end"]), D(line["hwm_in"]), D(line["hwm_out"]),
        D(line["management_pct"]), D(line["mgmt_base"]), D(line["mgmt_fee"]))


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
    todo: list[repo.AccountRow] = []
    billed: list[str] = []
    for acct in repo.accounts(eng.conn):
        if acct.role != "follower" or acct.mode == "shadow" or not kind_matches(acct, period):
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
        missing = [m for m in periods_between(acct, period)
                   if m not in billed_periods and account_active_days(eng.conn, acct, m) > 0]
        if missing:
            raise Refused(f"{acct.account_id} is not billed for {missing[0]} yet: the loss "
                          f"carried (or the high-water mark) into {period} depends on it "
                          f"(run `vanta fees run --period {missing[0]}` first)")
        todo.append(acct)
    if not todo:
        raise Refused(f"period {period} is already billed ({len(billed)} follower(s)): "
                      "nothing changed" if billed else
                      f"no follower was active in {period}: nothing to bill")
    marks = MarkCache(eng.conn)
    with eng.tx():
        return [bill(eng, cmd.ts, assess(eng.conn, acct, period, marks=marks))
                for acct in todo]


def bill(eng: Engine, at: int, a: Assessment) -> dict[str, Any]:
    """Journal and project one fee entry (inside the caller's transaction)."""
    n = 1 + sum(1 for e in repo.fee_entries(eng.conn, a.account.account_id, a.period)
                if e.kind == "fee")
    line = ledger_line(f"{a.account.account_id}/{a.period}/{n}", "fee", a)
    seq = eng.record(at, "fee", line)
    repo.insert_fee_entry(eng.conn, _row(line, at, seq))
    return line


def bill_early_exit(eng: Engine, acct: repo.AccountRow, at: int) -> list[dict[str, Any]]:
    """SPEC §9: a removed follower is billed at its removal for its last, partial period
    (and, first, for any ended period still unbilled: its carry and high-water mark lead
    into the last one). ``acct`` is the follower as removed; inside the removal's
    transaction."""
    if acct.mode == "shadow" or acct.role != "follower":
        return []
    quarterly = terms(acct).quarterly
    last = period_label(at, quarterly)
    billed = {e.period for e in live_entries(eng.conn, acct.account_id)}
    if any(p > last for p in billed):
        return []
    marks = MarkCache(eng.conn)
    lines = []
    for period in [*periods_between(acct, last), last]:
        if period in billed or account_active_days(eng.conn, acct, period) == 0:
            continue
        lines.append(bill(eng, at, assess(eng.conn, acct, period, marks=marks)))
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
    original = entry_assessment(acct, entry)
    # Undo: amounts negated, and the carry and the high-water mark go back to what they
    # were before the entry.
    line = ledger_line(f"{entry.entry_id}/reversal", "reversal", original, sign=-1,
                       extra={"reverses": entry.entry_id, "reason": cmd.payload["reason"],
                              "carry_in": fmt(entry.carry_out),
                              "carry_out": fmt(entry.carry_in),
                              "hwm_in": fmt(entry.hwm_out), "hwm_out": fmt(entry.hwm_in)})
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
