"""The live venue protocol (SPEC §8): five small questions, answered in exact, typed values.

An adapter (``execution.alpaca``) converts the vendor's shapes once, at this border:
floats and strings become ``Decimal``, vendor statuses become ``domain.orders.Status``,
vendor errors become a ``VenueError`` of one of a few kinds, classified by vanta's own
table (status, code, message), never by the client library's exception class.

Every answer is journaled as a ``venue.answer`` event (``as_payload``) before anything is
derived from it, so replay reads the answers back (``from_payload``) and never asks again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, NamedTuple, NewType, Protocol

from vanta_box.core.models import Side
from vanta_box.core.money import D, fmt
from vanta_box.domain.orders import Status

# Three ids not to be confused: ours (deterministic, `vb-…`), the venue's for an order, and
# the venue's for one execution of it (several per order when it fills in parts).
ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)
TradeId = NewType("TradeId", str)

ErrorKind = Literal["auth", "rate_limit", "transient", "reject", "not_found", "unknown",
                    "duplicate_id"]


class VenueError(Exception):
    """A venue's failure, classified. ``reject``: a business refusal (the venue's words,
    never retried); ``rate_limit`` and ``transient``: retried with backoff; ``auth``: the
    account is skipped for the cycle; ``unknown``: the outcome of a request already sent is
    not known, and ``duplicate_id``: the venue already has this client order id (both:
    looked up by client order id and adopted, never sent again)."""

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None,
                 retry_at: int | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_at = retry_at  # µs: the venue's reset time, when it gave one


class OrderReport(NamedTuple):
    """What the venue says of one order."""

    client_order_id: ClientOrderId
    venue_order_id: VenueOrderId | None
    status: Status
    raw_status: str
    filled_qty: Decimal
    avg_price: Decimal | None
    venue_ts: str | None  # the venue's own time text, as sent


class Trade(NamedTuple):
    """One execution, by the venue's trade id."""

    trade_id: TradeId
    venue_order_id: VenueOrderId | None
    symbol: str  # vanta's symbol
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None  # None: the quote currency
    venue_ts: str


class Snapshot(NamedTuple):
    cash: Decimal
    positions: dict[str, Decimal]  # vanta's symbols
    equity: Decimal | None


class Rules(NamedTuple):
    """How the venue takes orders of a symbol."""

    qty_step: Decimal  # quantities go to this precision, toward zero
    min_notional: Decimal
    min_qty: Decimal


class LiveOrder(NamedTuple):
    client_order_id: ClientOrderId
    symbol: str
    side: Side
    qty: Decimal


class LiveVenue(Protocol):
    kind: str

    def submit(self, order: LiveOrder) -> OrderReport: ...

    def cancel(self, report: OrderReport) -> OrderReport | None: ...

    def order(self, client_order_id: str) -> OrderReport | None:
        """None: the venue has no order with this client order id."""
        ...

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        """Executions after ``cursor`` (oldest first) and the cursor after them."""
        ...

    def snapshot(self) -> Snapshot: ...

    def rules(self, symbol: str) -> Rules: ...


# ---------------------------------------------------------------- the journal's form


def report_payload(r: OrderReport) -> dict[str, Any]:
    return {"client_order_id": r.client_order_id, "venue_order_id": r.venue_order_id,
            "status": str(r.status), "raw_status": r.raw_status,
            "filled_qty": fmt(r.filled_qty),
            "avg_price": None if r.avg_price is None else fmt(r.avg_price),
            "venue_ts": r.venue_ts}


def report_from(p: dict[str, Any]) -> OrderReport:
    return OrderReport(p["client_order_id"], p["venue_order_id"], Status(p["status"]),
                       p["raw_status"], D(p["filled_qty"]),
                       None if p["avg_price"] is None else D(p["avg_price"]), p["venue_ts"])


def trade_payload(t: Trade) -> dict[str, Any]:
    return {"trade_id": t.trade_id, "venue_order_id": t.venue_order_id, "symbol": t.symbol,
            "side": t.side, "qty": fmt(t.qty), "price": fmt(t.price), "fee": fmt(t.fee),
            "fee_currency": t.fee_currency, "venue_ts": t.venue_ts}


def trade_from(p: dict[str, Any]) -> Trade:
    return Trade(p["trade_id"], p["venue_order_id"], p["symbol"], p["side"], D(p["qty"]),
                 D(p["price"]), D(p["fee"]), p["fee_currency"], p["venue_ts"])


def snapshot_payload(s: Snapshot) -> dict[str, Any]:
    return {"cash": fmt(s.cash), "positions": {k: fmt(v) for k, v in s.positions.items()},
            "equity": None if s.equity is None else fmt(s.equity)}


def snapshot_from(p: dict[str, Any]) -> Snapshot:
    return Snapshot(D(p["cash"]), {k: D(v) for k, v in p["positions"].items()},
                    None if p["equity"] is None else D(p["equity"]))


def rules_payload(r: Rules) -> dict[str, Any]:
    return {"qty_step": fmt(r.qty_step), "min_notional": fmt(r.min_notional),
            "min_qty": fmt(r.min_qty)}


def rules_from(p: dict[str, Any]) -> Rules:
    return Rules(D(p["qty_step"]), D(p["min_notional"]), D(p["min_qty"]))


def error_payload(e: VenueError) -> dict[str, Any]:
    return {"kind": e.kind, "message": e.message, "status": e.status}


def error_from(p: dict[str, Any]) -> VenueError:
    return VenueError(p["kind"], p["message"], status=p["status"])
