"""The embedded paper venue (SPEC §4 Paper broker).

A market order fills completely at mark * (1 + slippage) for buys, mark * (1 - slippage)
for sells, commission = notional * commission_bps / 10^4. Cash may not go below zero: a
buy that does not fit is reduced to what fits, floored to the lot step (and the execution
says so); reduced below the order's minimum notional, it is rejected (never dust). The
paper venue's books are the account's books, so a client_order_id already executed for the
account is refused.
"""

from __future__ import annotations

from decimal import Decimal

from vanta_box.core.models import Execution, PaperTerms
from vanta_box.core.money import BPS, ZERO, fmt
from vanta_box.execution.broker import AccountBook, DuplicateOrder, OrderRequest


def paper_execute(
    request: OrderRequest,
    cash: Decimal,
    held: Decimal,
    terms: PaperTerms,
    allow_short: bool,
) -> Execution:
    qty = request.qty
    step = request.lot_step
    if request.side == "buy":
        price = request.mark * (BPS + terms.slippage_bps) / BPS
        unit_outlay = price * (BPS + terms.commission_bps) / BPS
        note = None
        if qty * unit_outlay > cash:
            fits = ((cash // (unit_outlay * step)) * step) if cash > 0 else ZERO
            note = f"reduced from {fmt(qty)} to {fmt(fits)} to fit cash {fmt(cash)}"
            qty = fits
        if qty <= 0 or (note is not None and qty * price < request.min_notional):
            if note is not None and qty > 0:
                note += f": notional below the minimum {fmt(request.min_notional)}"
            return Execution(ZERO, price, ZERO, request.qty, reject_reason="insufficient_cash",
                             note=note)
    else:
        price = request.mark * (BPS - terms.slippage_bps) / BPS
        note = None
        if not allow_short and qty > held:
            note = f"reduced from {fmt(qty)} to {fmt(held)}: no short selling"
            qty = max(held, ZERO)
        if qty <= 0:
            return Execution(ZERO, price, ZERO, request.qty, reject_reason="nothing_to_sell",
                             note=note)
    commission = qty * price * terms.commission_bps / BPS
    return Execution(qty, price, commission, request.qty, note=note)


class PaperBroker:
    kind = "paper"
    # Its books are ours: an order and its fill are one transaction, and its answer needs
    # no `submitted` event of its own (the fill says which venue answered, at which mark).
    instant = True

    def __init__(self, terms: PaperTerms, allow_short: bool = False) -> None:
        self.terms = terms
        self.allow_short = allow_short

    def submit(self, request: OrderRequest, book: AccountBook) -> Execution:
        if request.client_order_id in book.executed_ids:
            raise DuplicateOrder(request.client_order_id)
        return paper_execute(request, book.cash, book.held(request.symbol), self.terms,
                             self.allow_short)

    def lookup(self, client_order_id: str, book: AccountBook) -> Execution | None:
        # The paper venue's book is ours: whatever it executed is already recorded.
        return None


class ShadowVenue(PaperBroker):
    """A shadow follower's book: fills at the mark, no slippage, no commission, and nothing
    is ever sent anywhere (SPEC §4 Mirroring, shadow)."""

    kind = "shadow"

    def __init__(self, allow_short: bool = False) -> None:
        super().__init__(PaperTerms(), allow_short)
