"""The embedded paper venue (SPEC §4 Paper broker).

A market order fills completely at mark * (1 + slippage) for buys, mark * (1 - slippage)
for sells, commission = notional * commission_bps / 10^4. Cash may not go below zero: a
buy that does not fit is reduced to what fits, floored to the lot step (and the execution
says so); reduced below the order's minimum notional, it is rejected (never dust). The
paper venue's books are the account's books, so a client_order_id already executed for the
account is refused.

``PaperVenue`` speaks the live venues' protocol (``execution.venue.LiveVenue``), one
object per account over its book, and is instant: its answer to ``submit`` is final (the
order filled or rejected) and its one execution is the next of ``trades``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple, Protocol

from vanta_box.core.models import Execution, Instrument, PaperTerms, Side
from vanta_box.core.money import BPS, ZERO, fmt
from vanta_box.domain.orders import Status
from vanta_box.execution.venue import LiveOrder, OrderReport, Rules, Snapshot, Trade, VenueError


class OrderRequest(NamedTuple):
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    qty: Decimal
    mark: Decimal  # the mark at execution time; the paper venue fills from it
    lot_step: Decimal
    # max(vault min_order_notional, instrument min_notional): a buy reduced to fit cash
    # below it is rejected, never filled as dust (SPEC §4 Paper broker)
    min_notional: Decimal = ZERO


class AccountBook(Protocol):
    """What the paper venue reads of the account it trades (its truth)."""

    account_id: str
    cash: Decimal
    executed_ids: set[str]

    def held(self, symbol: str) -> Decimal: ...

    def symbols(self) -> list[str]: ...


# qty, price, commission, reject reason, note
Outcome = tuple[Decimal, Decimal, Decimal, str | None, str | None]


def paper_fill(side: str, qty: Decimal, mark: Decimal, step: Decimal, min_notional: Decimal,
               cash: Decimal, held: Decimal, terms: PaperTerms, allow_short: bool) -> Outcome:
    """What the paper venue does with a market order (a plain tuple: the hot path)."""
    requested = qty
    if side == "buy":
        price = mark * (BPS + terms.slippage_bps) / BPS
        unit_outlay = price * (BPS + terms.commission_bps) / BPS
        note = None
        if qty * unit_outlay > cash:
            fits = ((cash // (unit_outlay * step)) * step) if cash > 0 else ZERO
            note = f"reduced from {fmt(qty)} to {fmt(fits)} to fit cash {fmt(cash)}"
            qty = fits
        if qty <= 0 or (note is not None and qty * price < min_notional):
            if note is not None and qty > 0:
                note += f": notional below the minimum {fmt(min_notional)}"
            return ZERO, price, ZERO, "insufficient_cash", note
    else:
        price = mark * (BPS - terms.slippage_bps) / BPS
        note = None
        if not allow_short and qty > held:
            note = f"reduced from {fmt(requested)} to {fmt(held)}: no short selling"
            qty = max(held, ZERO)
        if qty <= 0:
            return ZERO, price, ZERO, "nothing_to_sell", note
    return qty, price, qty * price * terms.commission_bps / BPS, None, note


def paper_execute(request: OrderRequest, cash: Decimal, held: Decimal, terms: PaperTerms,
                  allow_short: bool) -> Execution:
    qty, price, commission, reason, note = paper_fill(
        request.side, request.qty, request.mark, request.lot_step, request.min_notional, cash,
        held, terms, allow_short)
    return Execution(qty, price, commission, request.qty, reject_reason=reason, note=note)


_new = tuple.__new__  # a NamedTuple built without its Python-level __new__ (hot path)
FILLED, REJECTED = Status.FILLED, Status.REJECTED


def instant_answer(order: LiveOrder, outcome: Outcome) -> tuple[OrderReport, Trade | None]:
    """An instant venue's final answer to ``order``: its report and its one execution."""
    coid = order.client_order_id
    qty, price, commission, reason, note = outcome
    if reason is not None:
        return _new(OrderReport, (coid, None, REJECTED, "rejected", ZERO, None, None, reason,
                                  note)), None
    return (_new(OrderReport, (coid, None, FILLED, "filled", qty, price, None, None, note)),
            _new(Trade, (coid, None, order.symbol, order.side, qty, price, commission, None,
                         "")))


class InstantTrades:
    """An instant venue's executions in the order it made them (cursor: how many were
    read)."""

    def __init__(self) -> None:
        self._trades: list[Trade] = []

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        done = self._trades
        return done[int(cursor) if cursor else 0:], str(len(done))

    def answered(self, answer: tuple[OrderReport, Trade | None]) -> OrderReport:
        report, trade = answer
        if trade is not None:
            self._trades.append(trade)
        return report


class PaperVenue(InstantTrades):
    """One account's paper venue over its book, at the cycle's marks. Its books are ours:
    an order and its fill are one transaction, and its answer needs no `submitted` event of
    its own (the fill says which venue answered, at which mark)."""

    kind = "paper"

    def __init__(self, book: AccountBook, marks: Mapping[str, Decimal],
                 instruments: Mapping[str, Instrument], min_order_notional: Decimal,
                 terms: PaperTerms, allow_short: bool = False) -> None:
        super().__init__()
        self.book, self.marks, self.instruments = book, marks, instruments
        self.min_order_notional = min_order_notional
        self.terms, self.allow_short = terms, allow_short

    def submit(self, order: LiveOrder) -> OrderReport:
        """Raises VenueError ``duplicate_id`` for a client order id the book executed."""
        book = self.book
        if order.client_order_id in book.executed_ids:
            raise VenueError("duplicate_id",
                             f"duplicate client_order_id {order.client_order_id}")
        symbol = order.symbol
        instrument = self.instruments[symbol]
        outcome = paper_fill(order.side, order.qty, self.marks[symbol], instrument.lot_step,
                             max(self.min_order_notional, instrument.min_notional), book.cash,
                             book.held(symbol), self.terms, self.allow_short)
        return self.answered(instant_answer(order, outcome))

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None:
        return None  # nothing is ever working here

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        # The paper venue's book is ours: whatever it executed is already recorded.
        return None

    def snapshot(self) -> Snapshot:
        book = self.book
        return Snapshot(book.cash, {s: book.held(s) for s in book.symbols()}, None)

    def rules(self, symbol: str) -> Rules:
        instrument = self.instruments[symbol]
        return Rules(instrument.lot_step,
                     max(self.min_order_notional, instrument.min_notional), ZERO)


class ShadowVenue(PaperVenue):
    """A shadow follower's book: fills at the mark, no slippage, no commission, and nothing
    is ever sent anywhere (SPEC §4 Mirroring, shadow)."""

    kind = "shadow"

    def __init__(self, book: AccountBook, marks: Mapping[str, Decimal],
                 instruments: Mapping[str, Instrument], min_order_notional: Decimal,
                 allow_short: bool = False) -> None:
        super().__init__(book, marks, instruments, min_order_notional, PaperTerms(),
                         allow_short)

