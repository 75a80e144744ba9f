"""Capital-aligned fees (SPEC §4 Fees). Pure.

Per follower and period (a UTC calendar month):
    net  = realized_P - L                       (L: loss carried forward, starts at 0)
    perf = perf_share * net, L' = 0             if net > 0
    perf = 0,                L' = -net          otherwise
    flat = flat_usd * active_days / days_in_period  (a day paused whole is not active)
    fee_due = perf | flat | max(perf, flat)     by fee type
Fee amounts are rounded to cents, half-up; PnL and the carry stay exact.

SPEC §9 adds, per agreement:
    basis "equity_hwm": perf = perf_share * max(0, P_end - H), H' = max(H, P_end)
        (P = equity - net contributions at the period's close, H starts at 0; no carry)
    management fee: management_pct * sum of E_close over the active days / 365, rounded
        once for the period, added to fee_due as its own leg
The high-water mark is tracked on the realized basis too (H' = max(H, P_end)), unused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from vanta_box.core.money import ZERO, round_cents


@dataclass(frozen=True, slots=True)
class FeeInputs:
    fee_type: str
    perf_share: Decimal
    flat_usd: Decimal
    realized_pnl: Decimal
    carry_in: Decimal
    active_days: int
    days_in_period: int
    basis: str = "realized"        # realized | equity_hwm
    profit_end: Decimal = ZERO     # P at the period's close
    hwm_in: Decimal = ZERO         # H before the period
    management_pct: Decimal = ZERO  # annual
    mgmt_base: Decimal = ZERO      # sum of E_close over the active days


@dataclass(frozen=True, slots=True)
class FeeResult:
    net: Decimal
    perf_fee: Decimal
    flat_fee: Decimal
    carry_out: Decimal
    fee_due: Decimal
    leg: str  # which leg the fee is: performance | flat | none
    hwm_out: Decimal = ZERO
    mgmt_fee: Decimal = ZERO


YEAR_DAYS = 365  # ACT/365


def compute_fee(i: FeeInputs) -> FeeResult:
    if i.basis == "equity_hwm":
        net = i.profit_end - i.hwm_in
        perf, carry_out = (round_cents(i.perf_share * net) if net > 0 else ZERO), ZERO
    else:
        net = i.realized_pnl - i.carry_in
        if net > 0:
            perf, carry_out = round_cents(i.perf_share * net), ZERO
        else:
            perf, carry_out = ZERO, -net
    hwm_out = max(i.hwm_in, i.profit_end)
    mgmt = round_cents(i.management_pct * i.mgmt_base / YEAR_DAYS)
    flat = round_cents(i.flat_usd * i.active_days / i.days_in_period)
    if i.fee_type == "performance":
        due, leg = perf, "performance"
    elif i.fee_type == "flat":
        due, leg = flat, "flat"
    else:
        due, leg = (perf, "performance") if perf >= flat else (flat, "flat")
    if due == 0:
        leg = "none"
    return FeeResult(net, perf, flat, carry_out, due + mgmt, leg, hwm_out, mgmt)


def active_days(onboarded: date, removed: date | None, first: date, last: date,
                paused: Sequence[tuple[date, date]] = ()) -> int:
    """Days d in [first, last] with onboarded <= d, not removed before d, and not in one of
    the ``paused`` ranges (first and last day of a run of days paused from start to end)."""
    start = max(first, onboarded)
    end = last if removed is None else min(last, removed)
    days = max(0, (end - start).days + 1)
    for p_first, p_last in paused:
        lo, hi = max(start, p_first), min(end, p_last)
        days -= max(0, (hi - lo).days + 1)
    return days


def active_day_list(onboarded: date, removed: date | None, first: date, last: date,
                    paused: Sequence[tuple[date, date]] = ()) -> list[date]:
    """The active days themselves (``active_days`` counts them)."""
    start = max(first, onboarded)
    end = last if removed is None else min(last, removed)
    out, day = [], start
    while day <= end:
        if not any(p_first <= day <= p_last for p_first, p_last in paused):
            out.append(day)
        day += timedelta(days=1)
    return out


def paused_days(changes: Sequence[tuple[int, str]], day_us: int,
                to_date: Callable[[int], date]) -> list[tuple[date, date]]:
    """The runs of whole UTC days a follower was paused, from its (moment, status) changes:
    paused at p and active again at r (never, if not resumed; a removal does not resume)
    covers the days that start at or after p and end at or before r."""
    out, since = [], None
    for at, status in [*changes, (None, "end")]:
        if status == "paused" and since is None:
            since = at
        elif status in ("active", "end") and since is not None:
            first_day = -(-since // day_us)  # the first whole day in the pause
            last_day = None if at is None else at // day_us - 1
            if last_day is None:
                out.append((to_date(first_day * day_us), date.max))
            elif last_day >= first_day:
                out.append((to_date(first_day * day_us), to_date(last_day * day_us)))
            since = None
    return out


def month_days(first: date) -> list[date]:
    out, day = [], first
    while day.month == first.month:
        out.append(day)
        day += timedelta(days=1)
    return out
