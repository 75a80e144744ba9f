"""Capital-aligned fees (SPEC §4 Fees). Pure.

Per follower and period (a UTC calendar month):
    net  = realized_P - L                       (L: loss carried forward, starts at 0)
    perf = perf_share * net, L' = 0             if net > 0
    perf = 0,                L' = -net          otherwise
    flat = flat_usd * active_days / days_in_period
    fee_due = perf | flat | max(perf, flat)     by fee type
Fee amounts are rounded to cents, half-up; PnL and the carry stay exact.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class FeeResult:
    net: Decimal
    perf_fee: Decimal
    flat_fee: Decimal
    carry_out: Decimal
    fee_due: Decimal
    leg: str  # which leg the fee is: performance | flat | none


def compute_fee(i: FeeInputs) -> FeeResult:
    net = i.realized_pnl - i.carry_in
    if net > 0:
        perf, carry_out = round_cents(i.perf_share * net), ZERO
    else:
        perf, carry_out = ZERO, -net
    flat = round_cents(i.flat_usd * i.active_days / i.days_in_period)
    if i.fee_type == "performance":
        due, leg = perf, "performance"
    elif i.fee_type == "flat":
        due, leg = flat, "flat"
    else:
        due, leg = (perf, "performance") if perf >= flat else (flat, "flat")
    if due == 0:
        leg = "none"
    return FeeResult(net, perf, flat, carry_out, due, leg)


def active_days(onboarded: date, removed: date | None, first: date, last: date) -> int:
    """Days d in [first, last] with onboarded <= d and not removed before d."""
    start = max(first, onboarded)
    end = last if removed is None else min(last, removed)
    return max(0, (end - start).days + 1)


def month_days(first: date) -> list[date]:
    out, day = [], first
    while day.month == first.month:
        out.append(day)
        day += timedelta(days=1)
    return out
