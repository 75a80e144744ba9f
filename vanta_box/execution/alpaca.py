"""Alpaca accounts through alpaca-py's ``TradingClient`` (SPEC §8).

The client does the authentication, the URLs (``url_override`` from the packet's
``base_url``) and the HTTP; this module keeps Alpaca's shapes at the border:
  * bodies are read raw (``RESTClient.get/post/delete``): alpaca-py's strict enums reject
    documented values and its models parse increments as floats, so every field is read
    leniently here and every number becomes a ``Decimal`` once (``_dec``);
  * quantities are posted as canonical decimal strings, never as alpaca-py's floats;
  * symbols are vanta's (``BTC/USD``); Alpaca names crypto positions ``BTCUSD``;
  * errors are classified by vanta's table (``classify``: status, code, message), retried
    with capped exponential backoff on the injected clock, honouring
    ``X-Ratelimit-Reset``; alpaca-py's own retry (3 s sleeps, POSTs included) is off;
  * secrets never leave the client: no log line or error message carries a header.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

import requests

from vanta_box.core.money import ZERO, D
from vanta_box.domain.orders import Status
from vanta_box.execution.venue import (
    Bucket,
    ClientOrderId,
    ErrorKind,
    LiveOrder,
    OrderReport,
    Retries,
    Rules,
    Snapshot,
    Trade,
    TradeId,
    VenueError,
    VenueOrderId,
)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
REQUEST_TIMEOUT = 10.0  # seconds, not money
US = 1_000_000

# Raw Alpaca status -> vanta's (wire README: terminal are filled, canceled, expired,
# replaced, rejected; ccxt's "canceling" and done_for_day -> open are not terminal).
_STATUS = {
    "new": Status.ACCEPTED, "accepted": Status.ACCEPTED, "pending_new": Status.ACCEPTED,
    "accepted_for_bidding": Status.ACCEPTED, "held": Status.ACCEPTED,
    "suspended": Status.ACCEPTED, "stopped": Status.ACCEPTED,
    "pending_replace": Status.ACCEPTED, "done_for_day": Status.ACCEPTED,
    "calculated": Status.ACCEPTED,
    "partially_filled": Status.PARTIALLY_FILLED, "filled": Status.FILLED,
    "pending_cancel": Status.PENDING_CANCEL, "canceled": Status.CANCELED,
    "replaced": Status.CANCELED, "expired": Status.EXPIRED, "rejected": Status.REJECTED,
}
_WORKING = {Status.ACCEPTED, Status.PARTIALLY_FILLED, Status.PENDING_CANCEL}


def _dec(value: Any, what: str) -> Decimal:
    """A vendor number (Alpaca sends strings; a stray JSON number is read by its shortest
    text) as an exact Decimal."""
    if isinstance(value, float):  # the vendor's JSON number: its shortest round-trip text
        value = repr(value)
    try:
        return D(value)
    except ValueError:
        raise VenueError("transient", f"alpaca sent {what} = {value!r}, not a number") from None


def classify(status: int | None, code: int | None, message: str, *, sent: bool
             ) -> ErrorKind:
    """vanta's table of Alpaca's answers. ``sent``: the request may have been acted on (a
    POST that timed out or got a 5xx has an unknown outcome)."""
    text = message.lower()
    if status in (401,) or (status == 403 and ("not authorized" in text or "forbidden" in text
                                              or code == 40110000)):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status == 422 and "client_order_id must be unique" in text:
        return "duplicate_id"
    if status == 404:
        return "not_found"
    if status is None or status >= 500:
        return "unknown" if sent else "transient"
    return "reject"  # 400, 403 insufficient buying power / qty, 422 invalid: the venue's words


class AlpacaVenue:
    kind = "alpaca"

    def __init__(self, key_id: str, secret_key: str, *, paper: bool = True,
                 base_url: str | None = None, symbols: frozenset[str] = frozenset(),
                 sleep: Callable[[float], None], now: Callable[[], int],
                 precise: Callable[[], int] | None = None,
                 max_tries: int = 6, max_wait: float = 120.0) -> None:  # seconds, not money
        from alpaca.trading.client import TradingClient

        self._client = TradingClient(key_id, secret_key, paper=paper,
                                     url_override=base_url or None)
        self._client._retry = 0  # retries are ours (below)
        session = self._client._session
        setattr(session, "request",  # noqa: B010 - a method replaced: every call times out
                functools.partial(session.request, timeout=REQUEST_TIMEOUT))
        self._compact = {s.replace("/", ""): s for s in symbols}
        self._retries = Retries(sleep, now, max_tries, max_wait)
        self._url = base_url or (PAPER_URL if paper else LIVE_URL)
        # 200 requests a minute per account: 3/s and a burst of 20 never exceed it
        self._bucket = Bucket(3.0, 20.0, precise or now, sleep)

    # ------------------------------------------------------------ HTTP, classified

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        def ask() -> Any:
            self._bucket.take()
            return getattr(self._client, method)(path, data)

        return self._retries.run(ask, functools.partial(self._error, sent=method == "post"))

    def _error(self, exc: Exception, *, sent: bool) -> VenueError:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        body = getattr(exc, "_error", None) or ""
        code, message = None, type(exc).__name__
        match = re.search(r'"code"\s*:\s*(\d+)', body)
        if match:
            code = int(match.group(1))
        found = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', body)
        if found:
            message = found.group(1)
        elif status is None:
            message = f"{type(exc).__name__} (no answer from the venue)"
        kind = classify(status, code, message, sent=sent)
        retry_at = None
        headers = getattr(response, "headers", None) or {}
        reset = headers.get("X-Ratelimit-Reset") if hasattr(headers, "get") else None
        if reset and str(reset).isdigit():
            retry_at = int(reset) * US
        return VenueError(kind, f"alpaca {status or '-'}: {message}", status=status,
                          retry_at=retry_at, timed_out=isinstance(exc, requests.Timeout))

    # ------------------------------------------------------------ the five questions

    def submit(self, order: LiveOrder) -> OrderReport:
        asset = self._asset(order.symbol)
        crypto = asset.get("class") == "crypto"
        body = {"symbol": order.symbol, "qty": _text(order.qty), "side": order.side,
                "type": "market", "time_in_force": "gtc" if crypto else "day",
                "client_order_id": order.client_order_id}
        return self._report(self._call("post", "/orders", body))

    def cancel(self, report: OrderReport, symbol: str = "") -> OrderReport | None:
        if report.venue_order_id is None:
            return self.order(report.client_order_id)
        try:
            self._call("delete", f"/orders/{report.venue_order_id}")
        except VenueError as exc:
            if exc.kind != "reject":  # 422: not cancelable any more (filled, canceled)
                raise
        return self.order(report.client_order_id)

    def order(self, client_order_id: str, symbol: str = "") -> OrderReport | None:
        try:
            body = self._call("get", "/orders:by_client_order_id",
                              {"client_order_id": client_order_id})
        except VenueError as exc:
            if exc.kind == "not_found":
                return None
            raise
        return self._report(body)

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        """Executions (FILL) and crypto fees (CFEE: Alpaca reports them nowhere else) after
        the cursor, in the venue's order, one listing of both."""
        return activities(lambda params: self._call("get", "/account/activities", params),
                          cursor, self._symbol)

    def snapshot(self) -> Snapshot:
        account = self._call("get", "/account") or {}
        positions = {}
        for row in self._call("get", "/positions") or []:
            symbol = self._symbol(str(row.get("symbol")))
            qty = _dec(row.get("qty"), "qty")
            if str(row.get("side", "long")) == "short" and qty > 0:
                qty = -qty
            positions[symbol] = qty
        equity = account.get("equity")
        return Snapshot(_dec(account.get("cash"), "cash"), positions,
                        None if equity is None else _dec(equity, "equity"))

    def rules(self, symbol: str) -> Rules:
        asset = self._asset(symbol)
        if asset.get("class") == "crypto":
            step = _dec(asset.get("min_trade_increment") or "0.000000001", "increment")
            minimum = _dec(asset.get("min_order_size") or "0", "min_order_size")
            usd = symbol.endswith("/USD")
            return Rules(step, Decimal(10) if usd else ZERO, minimum)
        if asset.get("fractionable"):
            return Rules(Decimal("0.000000001"), Decimal(1), ZERO)
        return Rules(Decimal(1), ZERO, Decimal(1))  # whole shares only

    def account_status(self) -> str:
        """The account's status as Alpaca says it (onboarding checks the keys with it)."""
        body = self._call("get", "/account")
        return str(body.get("status") or "") if isinstance(body, dict) else ""

    # ------------------------------------------------------------ bodies -> vanta

    # An asset is the venue's, not an account's: read once per venue and process.
    _assets: ClassVar[dict[tuple[str, str], dict[str, Any]]] = {}

    def _asset(self, symbol: str) -> dict[str, Any]:
        key = (self._url, symbol)
        if key not in self._assets:
            body = self._call("get", f"/assets/{symbol.replace('/', '')}")
            self._assets[key] = body if isinstance(body, dict) else {}
        return self._assets[key]

    def _symbol(self, venue_symbol: str) -> str:
        return self._compact.get(venue_symbol, venue_symbol)

    def _report(self, body: Any) -> OrderReport:
        if not isinstance(body, dict):
            raise VenueError("transient", "alpaca sent an order that is not an object")
        raw = str(body.get("status") or "")
        status = _STATUS.get(raw, Status.ACCEPTED)  # an unknown status: still working
        avg = body.get("filled_avg_price")
        return OrderReport(ClientOrderId(str(body.get("client_order_id"))),
                           VenueOrderId(str(body.get("id"))), status, raw,
                           _dec(body.get("filled_qty") or "0", "filled_qty"),
                           None if avg in (None, "") else _dec(avg, "filled_avg_price"),
                           body.get("updated_at"))

def activities(ask: Callable[[dict[str, Any]], Any], cursor: str | None,
               symbol_of: Callable[[str], str]) -> tuple[list[Trade], str | None]:
    """``GET /v2/account/activities?activity_types=FILL,CFEE`` after ``cursor`` (the last
    activity id seen), every page (the venue pages by 100, oldest first)."""
    out: list[Trade] = []
    while True:
        params: dict[str, Any] = {"activity_types": "FILL,CFEE", "direction": "asc",
                                  "page_size": 100}
        if cursor:
            params["page_token"] = cursor
        page = ask(params) or []
        for row in page:
            found = activity(row, symbol_of)
            if found is not None:
                out.append(found)
            cursor = str(row.get("id"))
        if len(page) < 100:
            return out, cursor


def activity(row: dict[str, Any], symbol_of: Callable[[str], str]) -> Trade | None:
    """A FILL as an execution; a CFEE as a fee with no execution (qty 0, no order: Alpaca
    does not say which fill it belongs to): a coin fee (``qty`` < 0) is taken from the
    coin received, a USD fee (``net_amount`` < 0) from the cash."""
    kind = str(row.get("activity_type") or "FILL")
    symbol = symbol_of(str(row.get("symbol")))
    if kind == "CFEE":
        coin = -_dec(row.get("qty") or "0", "qty")
        usd = -_dec(row.get("net_amount") or "0", "net_amount")
        base, _, quote = symbol.partition("/")
        fee, currency = (coin, base) if coin else (usd, quote or "USD")
        when = row.get("created_at") or row.get("transaction_time") or f"{row.get('date')}"
        return Trade(TradeId(str(row.get("id"))), None, symbol, "sell", ZERO,
                     _dec(row.get("price") or "0", "price"), fee, currency, str(when))
    if kind != "FILL":
        return None
    side = "sell" if str(row.get("side", "")).startswith("sell") else "buy"
    venue_order = row.get("order_id")
    return Trade(TradeId(str(row.get("id"))),
                 None if venue_order is None else VenueOrderId(str(venue_order)),
                 symbol, side,  # type: ignore[arg-type]
                 _dec(row.get("qty"), "qty"), _dec(row.get("price"), "price"), ZERO, None,
                 str(row.get("transaction_time")))


def _text(qty: Decimal) -> str:
    """A quantity as Alpaca takes it: at most 9 decimals, toward zero, no exponent."""
    return format(qty.quantize(Decimal("0.000000001"), rounding=ROUND_DOWN).normalize(), "f")
