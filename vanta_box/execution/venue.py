"""The live venue protocol (SPEC §8): five small questions, answered in exact, typed values.

An adapter (``execution.alpaca``) converts the vendor's shapes once, at this border:
floats and strings become ``Decimal``, vendor statuses become ``domain.orders.Status``,
vendor errors become a ``VenueError`` of one of a few kinds, classified by vanta's own
table (status, code, message), never by the client library's exception class.

Every answer is journaled as a ``venue.answer`` event (``as_payload``) before anything is
derived from it, so replay reads the answers back (``from_payload``) and never asks again.
"""

from __future__ import annotations

from collections.abc import Callable
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
                 retry_at: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_at = retry_at  # µs: the venue's reset time, when it gave one
        self.timed_out = timed_out  # no answer within the request's timeout


class OrderReport(NamedTuple):
    """What the venue says of one order."""

    client_order_id: ClientOrderId
    venue_order_id: VenueOrderId | None
    status: Status
    raw_status: str
    filled_qty: Decimal
    avg_price: Decimal | None
    venue_ts: str | None  # the venue's own time text, as sent
    # An instant venue's own words (paper, shadow; never journaled by the live adapters):
    # why it rejected the order (``insufficient_cash``…), what it changed (a reduced qty).
    reason: str | None = None
    note: str | None = None


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

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None: ...

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        """None: the venue has no order with this client order id."""
        ...

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        """Executions after ``cursor`` (oldest first) and the cursor after them."""
        ...

    def snapshot(self) -> Snapshot: ...

    def rules(self, symbol: str) -> Rules: ...


class Bucket:
    """A token bucket on the injected clock: at most ``burst + rate × T`` requests in any
    ``T`` seconds (Alpaca: 3/s with a burst of 20 keeps any minute within its 200)."""

    def __init__(self, rate: float, burst: float,  # requests per second: not money
                 now: Callable[[], int], sleep: Callable[[float], None]) -> None:
        self._rate, self._burst = rate, burst
        self._now, self._sleep = now, sleep
        self._tokens, self._at = burst, now()

    def take(self) -> None:
        moment = self._now()
        self._tokens = min(self._burst, self._tokens + (moment - self._at) / 1e6 * self._rate)
        self._at = moment
        if self._tokens < 1:
            self._sleep((1 - self._tokens) / self._rate)
            self._tokens, self._at = 1.0, max(self._now(), moment)
        self._tokens -= 1


TRANSIENT_WAIT = 4.0  # seconds of retries after 5xx or connection errors; not money
US = 1_000_000


class Retries(NamedTuple):
    """How an adapter asks again: capped exponential backoff on the injected clock,
    honouring the venue's reset time, bounded in tries and in time."""

    sleep: Callable[[float], None]
    now: Callable[[], int]
    max_tries: int = 6
    max_wait: float = 120.0  # seconds, not money

    def run(self, ask: Callable[[], Any], error_of: Callable[[Exception], VenueError]) -> Any:
        """``ask()``; a failure is classified by ``error_of`` and asked again while it is a
        rate limit or transient. A request with no answer within its timeout is not asked
        again (``VenueError.timed_out``): that would cost as much once more."""
        waited = 0.0
        for attempt in range(self.max_tries):
            try:
                return ask()
            except Exception as exc:  # the client library's errors, whatever their class
                error = error_of(exc)
            if error.kind not in ("rate_limit", "transient") or attempt + 1 == self.max_tries:
                raise error
            if error.timed_out or (error.kind == "transient" and waited >= TRANSIENT_WAIT):
                raise error  # an unreachable venue delays its account a few seconds only
            pause = min(8.0, 0.25 * 2 ** attempt)  # seconds, not money
            if error.retry_at is not None:  # the venue's reset, up to half a minute a try
                pause = min(30.0, max(pause, (error.retry_at - self.now()) / US))
            if waited + pause > self.max_wait:
                raise error
            self.sleep(pause)
            waited += pause
        raise AssertionError("unreachable")


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
