"""FIFO lots, realized and unrealized PnL (SPEC §4 Realized PnL). Pure.

A lot is (signed qty, unit cost). A buy's commission is added to its lot's cost; a short
lot's unit cost is its proceeds per unit net of commission. Closing trades consume the
oldest lots first:

    realized = sum((sell_price - lot_cost) * qty) - sell commission      (closing longs)
    realized = sum((lot_cost - buy_price) * qty) - buy commission        (covering shorts)
    unrealized = sum((mark - lot_cost) * qty) over open lots = mark * qty - cost_basis
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from vanta_box.core.money import ZERO

Lot = tuple[Decimal, Decimal]  # (signed qty, unit cost)


class Position(NamedTuple):
    qty: Decimal
    cost_basis: Decimal
    lots: tuple[Lot, ...]
    last_price: Decimal

    @staticmethod
    def empty() -> Position:
        return Position(ZERO, ZERO, (), ZERO)

    def unrealized(self, mark: Decimal) -> Decimal:
        return mark * self.qty - self.cost_basis

    def avg_cost(self) -> Decimal:
        return self.cost_basis / self.qty if self.qty else ZERO


def apply_fill(
    position: Position, side: str, qty: Decimal, price: Decimal, commission: Decimal
) -> tuple[Position, Decimal]:
    """Apply one fill; return the new position and the realized PnL of this fill."""
    if qty <= 0:
        raise ValueError("fill quantity must be positive")
    remaining = qty if side == "buy" else -qty
    lots = list(position.lots)
    realized = ZERO
    closed = ZERO
    cost_basis = position.cost_basis
    while remaining != 0 and lots and (lots[0][0] > 0) != (remaining > 0):
        lot_qty, lot_cost = lots[0]
        take = min(abs(remaining), abs(lot_qty))
        if lot_qty > 0:  # selling out of a long lot
            realized += (price - lot_cost) * take
            cost_basis -= lot_cost * take
            lot_qty -= take
            remaining += take
        else:  # buying back a short lot
            realized += (lot_cost - price) * take
            cost_basis += lot_cost * take
            lot_qty += take
            remaining -= take
        closed += take
        if lot_qty == 0:
            lots.pop(0)
        else:
            lots[0] = (lot_qty, lot_cost)
    if closed:
        # The closing part carries its share of the commission (all of it, usually).
        realized -= commission if closed == qty else commission * closed / qty
    if remaining != 0:
        opening_commission = commission if closed == 0 else commission * abs(remaining) / qty
        per_unit = opening_commission / abs(remaining)
        unit_cost = price + per_unit if remaining > 0 else price - per_unit
        lots.append((remaining, unit_cost))
        cost_basis += remaining * unit_cost
    new_qty = position.qty + (qty if side == "buy" else -qty)
    if not lots:
        cost_basis = ZERO
    return Position(new_qty, cost_basis, tuple(lots), price), realized
