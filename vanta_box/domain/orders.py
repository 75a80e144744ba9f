"""The order lifecycle (SPEC §8): one transition table, and executions applied once.

    staged ─submit─► submitted ─accept─► accepted ─partial─► partially_filled ─fill─► filled
                         │                   │                      │
                         └── unknown ◄───────┘ (outcome not known: timeout, 5xx after send)

Terminal: ``filled``, ``canceled``, ``rejected``, ``expired`` (and ``shadow``, a shadow
book's order, which is never sent). Shaped after nautilus_trader's ``_ORDER_STATE_TABLE``:
what is not in the table is refused, so no answer can move an order out of a terminal
state, and an execution is applied once per venue trade id, the cumulative quantity never
decreasing and never above the order's quantity. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from vanta_box.core.money import ZERO


class Status(StrEnum):
    STAGED = "staged"
    SUBMITTED = "submitted"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SHADOW = "shadow"


TERMINAL = frozenset({Status.FILLED, Status.CANCELED, Status.REJECTED, Status.EXPIRED,
                      Status.SHADOW})
NO_EXECUTIONS = frozenset({Status.STAGED, Status.REJECTED, Status.SHADOW})
WORKING = frozenset({Status.SUBMITTED, Status.UNKNOWN, Status.ACCEPTED,
                     Status.PARTIALLY_FILLED, Status.PENDING_CANCEL})

_S = Status
_LIVE = (_S.SUBMITTED, _S.UNKNOWN, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.PENDING_CANCEL)
# (from, to) pairs a venue's answer may take an order through. A status answered again
# (accepted, then accepted) is no transition and always allowed.
_TABLE: frozenset[tuple[Status, Status]] = frozenset(
    [(_S.STAGED, _S.SUBMITTED), (_S.STAGED, _S.SHADOW), (_S.STAGED, _S.CANCELED),
     (_S.STAGED, _S.REJECTED)]  # rejected before sending (no mark, below the minimum)
    + [(_S.SUBMITTED, _S.UNKNOWN), (_S.UNKNOWN, _S.SUBMITTED)]
    + [(a, b) for a in _LIVE for b in (_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED,
                                         _S.CANCELED, _S.EXPIRED, _S.PENDING_CANCEL)
       if a != b]
    + [(a, _S.REJECTED) for a in (_S.SUBMITTED, _S.UNKNOWN, _S.ACCEPTED)]
)
# a partially filled order cannot go back to "no fill at all"
_TABLE = _TABLE - {(_S.PARTIALLY_FILLED, _S.ACCEPTED), (_S.PENDING_CANCEL, _S.ACCEPTED)}


class InvalidTransition(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    qty: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class OrderState:
    qty: Decimal
    status: Status = Status.STAGED
    filled_qty: Decimal = ZERO
    notional: Decimal = ZERO  # Σ fill qty × price, for the average price
    trade_ids: frozenset[str] = frozenset()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def remaining(self) -> Decimal:
        return ZERO if self.terminal else self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.notional / self.filled_qty if self.filled_qty else None


def can_move(current: Status, new: Status) -> bool:
    return current == new or (current, new) in _TABLE


def move(state: OrderState, new: Status) -> OrderState:
    """The order in status ``new``; InvalidTransition if the table has no such step."""
    if not can_move(state.status, new):
        raise InvalidTransition(f"{state.status} -> {new}")
    return state if state.status == new else replace(state, status=new)


def apply_fill(state: OrderState, fill: Fill) -> tuple[OrderState, bool]:
    """Apply an execution once: (new state, applied). A trade id already applied changes
    nothing; an execution that would overfill, or of an order rejected (or never sent), is
    refused. A venue may report an order filled, canceled or expired before the executions
    that filled it part-way or whole reach us: those still apply."""
    if fill.trade_id in state.trade_ids:
        return state, False
    if fill.qty <= 0:
        raise InvalidTransition(f"execution {fill.trade_id}: quantity {fill.qty} <= 0")
    filled = state.filled_qty + fill.qty
    if filled > state.qty:
        raise InvalidTransition(f"execution {fill.trade_id}: {filled} > ordered {state.qty}")
    if state.status in NO_EXECUTIONS:
        raise InvalidTransition(f"execution {fill.trade_id} of an order {state.status}")
    status = state.status
    if not state.terminal:
        status = Status.FILLED if filled == state.qty else Status.PARTIALLY_FILLED
    return replace(state, status=status, filled_qty=filled,
                   notional=state.notional + fill.qty * fill.price,
                   trade_ids=state.trade_ids | {fill.trade_id}), True
