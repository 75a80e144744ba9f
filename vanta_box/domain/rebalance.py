"""Rebalance diff: target weights + holdings -> orders (SPEC §4 Rebalance diff). Pure.

Every comparison is exact: a weight is a pair num/den, so ``w * S / mark`` is floored to the
lot step with one exact integer division, and the drift band is checked by
cross-multiplying instead of dividing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from vanta_box.core.models import Instrument, OrderPlan, Skip, Weight
from vanta_box.core.money import ZERO

_NO_WEIGHT = Weight(ZERO, Decimal(1))


@dataclass(frozen=True, slots=True)
class Sizing:
    """How one account turns weights into quantities."""

    sizing_equity: Decimal
    min_order_notional: Decimal
    drift_band: Decimal = ZERO
    max_order_notional: Decimal | None = None
    allow_buys: bool = True


def target_qty(weight: Weight, sizing_equity: Decimal, mark: Decimal, step: Decimal) -> Decimal:
    """floor_to_step(w * S / mark, step), toward zero, exactly."""
    if sizing_equity <= 0:
        return ZERO
    return ((weight.num * sizing_equity) // (weight.den * mark * step)) * step


def within_drift_band(
    held: Decimal, mark: Decimal, weight: Weight, sizing_equity: Decimal, band: Decimal
) -> bool:
    """|held*mark/S - num/den| < band, cross-multiplied (S > 0, den > 0)."""
    if band <= 0 or sizing_equity <= 0:
        return False
    gap = abs(held * mark * weight.den - weight.num * sizing_equity)
    return gap < band * sizing_equity * weight.den


def diff(
    held: Mapping[str, Decimal],
    weights: Mapping[str, Weight],
    marks: Mapping[str, Decimal],
    instruments: Mapping[str, Instrument],
    sizing: Sizing,
) -> tuple[list[OrderPlan], list[Skip]]:
    """Orders that move ``held`` to the targets of ``weights``; sells first, then buys.

    Every symbol allocated or held is considered; held but not allocated means target 0.
    """
    sells: list[OrderPlan] = []
    buys: list[OrderPlan] = []
    skips: list[Skip] = []
    for symbol in sorted(set(weights) | {s for s, q in held.items() if q != 0}):
        have = held.get(symbol, ZERO)
        weight = weights.get(symbol, _NO_WEIGHT)
        mark = marks.get(symbol)
        instrument = instruments.get(symbol)
        if mark is None or mark <= 0 or instrument is None:
            skips.append(Skip(symbol, "no_mark", {"held": have}))
            continue
        target = target_qty(weight, sizing.sizing_equity, mark, instrument.lot_step)
        delta = target - have
        if delta == 0:
            continue
        side: str = "buy" if delta > 0 else "sell"
        qty = abs(delta)
        capped_from = None
        cap = sizing.max_order_notional
        if cap is not None and qty * mark > cap:
            capped_from = qty
            qty = (cap // (mark * instrument.lot_step)) * instrument.lot_step
        floor = max(sizing.min_order_notional, instrument.min_notional)
        reason = ("below_min_notional" if qty == 0 or qty * mark < floor else
                  "within_drift_band" if within_drift_band(
                      have, mark, weight, sizing.sizing_equity, sizing.drift_band) else
                  "halted_no_buys" if side == "buy" and not sizing.allow_buys else None)
        if reason is not None:
            skips.append(Skip(symbol, reason, {"held": have, "target": target, "mark": mark,
                                               "qty": qty}))
            continue
        plan = OrderPlan(symbol, "buy" if side == "buy" else "sell", qty, mark, have, target,
                         capped_from)
        (buys if side == "buy" else sells).append(plan)
    return sells + buys, skips
