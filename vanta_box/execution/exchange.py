"""Crypto exchanges through ccxt (SPEC §8): any ccxt exchange id, tested on
``coinbaseexchange`` and ccxt's ``alpaca``.

ccxt signs, builds URLs and parses; this module keeps each venue's shapes at the border:
  * only the exchange's own module is imported (``load_exchange``): ``import ccxt`` loads
    every exchange (~0.4 s, ~75 MB), one module costs a fraction of it;
  * numbers are read as strings (``exchange.number = str``) and become ``Decimal`` once;
  * statuses come from the venue's raw status (ccxt's unified ``open`` hides
    ``canceling`` and Alpaca's ``done_for_day``), by vanta's table per exchange;
  * errors are classified from the HTTP status and body ccxt received (vanta's table),
    never from ccxt's exception class (it calls Alpaca's "insufficient buying power" a
    retryable network error); retries are ours, on the injected clock, and so is the
    rate limit (a token bucket per account at ccxt's ``rateLimit``);
  * the client order id goes where each venue wants it (``client_oid``, a UUID, on
    coinbaseexchange; ``client_order_id`` on alpaca); an order is found by client id
    where the venue can (``GET /orders/client:{id}``), else by listing open and closed
    orders;
  * ccxt's DEBUG log (request headers, i.e. keys) is silenced.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

from vanta_box.core.money import ZERO, D
from vanta_box.domain.orders import Status
from vanta_box.execution.alpaca import _STATUS as ALPACA_STATUS
from vanta_box.execution.alpaca import activities
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

REQUEST_TIMEOUT_MS = 10_000
PAGE = 100  # executions asked per page
_UUID_SPACE = uuid.UUID("5c1f3a7e-9b2d-4e8f-a6c0-7d3b2e1f0a95")

logging.getLogger("ccxt").setLevel(logging.INFO)  # its DEBUG lines carry request headers


def known_exchange(exchange_id: str) -> bool:
    """Whether the installed ccxt has an exchange of this id (nothing of it imported)."""
    if not exchange_id.isidentifier() or exchange_id.startswith("_") or exchange_id in (
            "base", "abstract", "static_dependencies", "async_support", "pro", "test"):
        return False
    if "ccxt" not in sys.modules:
        spec = importlib.util.find_spec("ccxt")
        if spec is None:
            return False
        # the package without its __init__ (which imports every exchange)
        sys.modules["ccxt"] = importlib.util.module_from_spec(spec)
    return importlib.util.find_spec(f"ccxt.{exchange_id}") is not None


def load_exchange(exchange_id: str) -> type[Any]:
    """The ccxt class of ``exchange_id``, importing only its module (unless the whole of
    ccxt is loaded already). ValueError for an id ccxt does not have."""
    if not known_exchange(exchange_id):
        raise ValueError(f"{exchange_id!r} is not a ccxt exchange id")
    module = importlib.import_module(f"ccxt.{exchange_id}")
    cls = getattr(module, exchange_id, None)
    if not isinstance(cls, type) or not hasattr(cls, "create_order"):
        raise ValueError(f"{exchange_id!r} is not a ccxt exchange id")
    return cls


def point_at(exchange: Any, base_url: str) -> None:
    """Replace scheme and host of every API URL with ``base_url`` (SPEC §8)."""
    target = base_url.rstrip("/")

    def swap(value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            parts = urlsplit(value)
            return target + value[len(f"{parts.scheme}://{parts.netloc}"):]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    exchange.urls["api"] = swap(exchange.urls["api"])


# Coinbase answers bad keys with a 400 and these words (ccxt: AuthenticationError)
_AUTH_WORDS = ("invalid api key", "invalid signature", "invalid passphrase",
               "invalid api-key")


def classify(status: int | None, message: str, *, sent: bool, answered: bool) -> ErrorKind:
    """vanta's table of what an exchange answered. ``sent``: a request that may have been
    acted on (an order); ``answered``: an HTTP answer came (else: ccxt refused before
    sending, a reject in ccxt's words, or no answer at all)."""
    text = message.lower()
    if not answered:
        return "unknown" if sent else "transient"
    if status is None:
        return "reject"  # ccxt's own check before sending (amount precision, arguments)
    if status == 401 or (status == 403 and "insufficient" not in text
                         and "buying power" not in text) or (
            status == 400 and any(w in text for w in _AUTH_WORDS)):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status in (400, 409, 422) and ("client_order_id must be unique" in text
                                      or "duplicate" in text or "already exists" in text):
        return "duplicate_id"
    if status == 404:
        return "not_found"
    if status >= 500:
        return "unknown" if sent else "transient"
    return "reject"  # 400, 403 insufficient funds / buying power, 422: the venue's words


def _dec(value: Any, what: str) -> Decimal:
    if isinstance(value, float):  # a stray JSON number: its shortest round-trip text
        value = repr(value)
    try:
        return D(value)
    except ValueError:
        raise VenueError("transient", f"the exchange sent {what} = {value!r}, not a number"
                         ) from None


def _status(exchange_id: str, order: dict[str, Any], filled: Decimal) -> tuple[Status, str]:
    """(vanta's status, the venue's raw status) of a ccxt order."""
    info = order.get("info") or {}
    raw = str(info.get("status") or order.get("status") or "")
    if exchange_id == "alpaca":
        return ALPACA_STATUS.get(raw, Status.ACCEPTED), raw
    if exchange_id == "coinbaseexchange":
        reason = str(info.get("done_reason") or "")
        if raw == "done":
            return (Status.CANCELED if reason == "canceled" else Status.FILLED), raw
        if raw in ("canceled", "rejected"):
            return Status(raw), raw
        if raw == "canceling":
            return Status.PENDING_CANCEL, raw
    unified = str(order.get("status") or "open")
    mapped = {"closed": Status.FILLED, "canceled": Status.CANCELED,
              "expired": Status.EXPIRED, "rejected": Status.REJECTED}.get(unified)
    if mapped is not None:
        return mapped, raw
    return (Status.PARTIALLY_FILLED if filled else Status.ACCEPTED), raw


class ExchangeVenue:
    kind = "ccxt"

    def __init__(self, exchange_id: str, api_key: str, secret: str, password: str | None = None,
                 *, sandbox: bool = True, base_url: str | None = None,
                 symbols: frozenset[str] = frozenset(), sleep: Callable[[float], None],
                 now: Callable[[], int], precise: Callable[[], int] | None = None,
                 max_tries: int = 6, max_wait: float = 120.0,  # seconds, not money
                 markets: dict[str, Any] | None = None) -> None:
        cls = load_exchange(exchange_id)
        config: dict[str, Any] = {"apiKey": api_key, "secret": secret,
                                  "enableRateLimit": False, "timeout": REQUEST_TIMEOUT_MS}
        if password:
            config["password"] = password
        x = cls(config)
        x.number = str  # exact: every unified number as the venue's text
        if sandbox and not base_url:
            x.set_sandbox_mode(True)
        if base_url:
            point_at(x, base_url)
        self.exchange_id = exchange_id
        self._x = x
        self._url = base_url or str(x.urls.get("api"))
        self._symbols = symbols
        self._snapshot = markets  # the packet's markets: never fetched then
        self._watch: set[str] = set()  # symbols whose executions are asked
        self._retries = Retries(sleep, now, max_tries, max_wait)
        rate = 1000.0 / float(x.rateLimit or 100)  # requests per second, not money
        self._bucket = Bucket(rate, 1.0, precise or now, sleep)
        self._answer: tuple[int, Any, str] | None = None
        self._asked = 0
        original = x.on_rest_response
        fetch = x.fetch

        def heard(code: int, reason: str, url: str, method: str, headers: Any, body: str,
                  *rest: Any) -> Any:
            self._answer = (code, headers, body or "")
            return original(code, reason, url, method, headers, body, *rest)

        def asking(*args: Any, **kwargs: Any) -> Any:
            self._bucket.take()
            self._asked += 1
            return fetch(*args, **kwargs)

        x.on_rest_response = heard
        x.fetch = asking

    # ------------------------------------------------------------ ccxt, classified

    def _call(self, method: str, *args: Any, sent: bool = False) -> Any:
        def ask() -> Any:
            self._answer, self._asked = None, 0
            return getattr(self._x, method)(*args)

        return self._retries.run(ask, lambda exc: self._error(exc, sent=sent))

    def _error(self, exc: Exception, *, sent: bool) -> VenueError:
        answered = self._answer is not None or self._asked == 0
        status, headers, body = self._answer or (None, {}, "")
        message = _message(body) or (str(exc) if self._asked == 0 else
                                     f"{type(exc).__name__} (no answer from the venue)")
        kind = classify(status, message, sent=sent and self._asked > 0, answered=answered)
        retry_at = None
        reset = headers.get("X-Ratelimit-Reset") if hasattr(headers, "get") else None
        if reset and str(reset).isdigit():
            retry_at = int(reset) * 1_000_000  # µs
        return VenueError(kind, f"{self.exchange_id} {status or '-'}: {message[:300]}",
                          status=status, retry_at=retry_at,
                          timed_out=type(exc).__name__ == "RequestTimeout")

    # ------------------------------------------------------------ the five questions

    def submit(self, order: LiveOrder) -> OrderReport:
        self._markets()
        self._watch.add(order.symbol)
        params = self._client_id_param(order.client_order_id)
        body = self._call("create_order", order.symbol, "market", order.side,
                          _text(order.qty), None, params, sent=True)
        return self._report(body, order.client_order_id)

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None:
        if report.venue_order_id is not None:
            try:
                self._call("cancel_order", report.venue_order_id, symbol)
            except VenueError as exc:
                if exc.kind not in ("reject", "not_found"):  # not cancelable any more
                    raise
        return self.order(report.client_order_id, symbol)

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        self._markets()
        self._watch.add(symbol)
        if self.exchange_id == "coinbaseexchange":  # GET /orders/client:{client_oid}
            try:
                body = self._call("fetch_order", None, symbol,
                                  self._client_id_param(client_order_id))
            except VenueError as exc:
                if exc.kind == "not_found":
                    return None
                raise
            return self._report(body, client_order_id)
        wanted = self._venue_client_id(client_order_id)
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            for found in self._call(method, symbol) or []:
                if str(found.get("clientOrderId")) == wanted:
                    return self._report(found, client_order_id)
        return None

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        """Executions per symbol since the cursor ({symbol: last time seen, ms}). Trades
        at the cursor's own millisecond come again; they are booked once by trade id."""
        if self.exchange_id == "alpaca":  # ccxt reads FILL only: its trades carry no fee
            return activities(self._alpaca_activities, cursor, self._alpaca_symbol)
        since: dict[str, int] = json.loads(cursor) if cursor else {}
        for symbol in self._watch:
            since.setdefault(symbol, 0)
        out: list[Trade] = []
        seen: set[str] = set()
        for symbol in sorted(since):
            for _page in range(50):
                rows = self._call("fetch_my_trades", symbol, since[symbol] or None, PAGE) or []
                fresh = [r for r in rows if str(r.get("id")) not in seen]
                for row in fresh:
                    seen.add(str(row.get("id")))
                    out.append(self._trade(row, symbol))
                    since[symbol] = max(since[symbol], int(row.get("timestamp") or 0))
                if len(rows) < PAGE or not fresh:
                    break
        out.sort(key=lambda t: (t.venue_ts, t.trade_id))
        return out, json.dumps(since, sort_keys=True, separators=(",", ":"))

    def _alpaca_activities(self, params: dict[str, Any]) -> Any:
        return self._call("traderPrivateGetV2AccountActivities", params)

    def _alpaca_symbol(self, venue_symbol: str) -> str:
        compact = venue_symbol.replace("/", "")
        return next((s for s in self._symbols if s.replace("/", "") == compact), venue_symbol)

    def snapshot(self) -> Snapshot:
        self._markets()
        balance = self._call("fetch_balance") or {}
        quote = self._quote()
        cash = _dec((balance.get(quote) or {}).get("total") or "0", "cash")
        positions = {}
        for symbol in sorted(self._symbols):
            market = self._x.markets.get(symbol)
            if market is None:
                continue
            held = (balance.get(market["base"]) or {}).get("total")
            if held not in (None, "", "0"):
                qty = _dec(held, "balance")
                if qty:
                    positions[symbol] = qty
        return Snapshot(cash, positions, None)

    def rules(self, symbol: str) -> Rules:
        markets = self._markets()
        market = markets.get(symbol)
        if market is None:
            raise VenueError("reject", f"{self.exchange_id} has no market {symbol}")
        precision = (market.get("precision") or {}).get("amount")
        limits = market.get("limits") or {}
        step = _dec(precision, "precision") if precision not in (None, "") else Decimal(
            "0.00000001")
        from ccxt.base.decimal_to_precision import DECIMAL_PLACES

        if self._x.precisionMode == DECIMAL_PLACES:  # a number of digits, not a step
            step = Decimal(1).scaleb(-int(step))
        minimum = (limits.get("amount") or {}).get("min")
        cost = (limits.get("cost") or {}).get("min")
        return Rules(step, ZERO if cost in (None, "") else _dec(cost, "cost.min"),
                     ZERO if minimum in (None, "") else _dec(minimum, "amount.min"))

    def account_status(self) -> str:
        """Onboarding checks the keys by reading the balance (ccxt has no account status)."""
        if self._snapshot is not None:  # else ccxt loads the markets it needs for this
            self._markets()
        self._call("fetch_balance")
        return ""

    # ------------------------------------------------------------ venue shapes -> vanta

    # Markets are the venue's, not an account's: read once per venue and process.
    _market_cache: ClassVar[dict[str, dict[str, Any]]] = {}

    def _markets(self) -> dict[str, Any]:
        if self._x.markets:
            return dict(self._x.markets)
        cached = self._market_cache.get(self._url)
        if self._snapshot is not None:  # every market of it: ccxt loads none of its own
            cached = self._snapshot
        elif cached is None:
            loaded = self._call("load_markets") or {}
            cached = {s: m for s, m in loaded.items() if s in self._symbols}
            self._market_cache[self._url] = cached
        self._x.set_markets(list(cached.values()))
        return cached

    def _quote(self) -> str:
        quotes = {m["quote"] for m in self._markets().values()}
        return "USD" if "USD" in quotes or not quotes else sorted(quotes)[0]

    def _venue_client_id(self, client_order_id: str) -> str:
        if self.exchange_id == "coinbaseexchange":  # a UUID, derived from ours
            return str(uuid.uuid5(_UUID_SPACE, client_order_id))
        return client_order_id

    def _client_id_param(self, client_order_id: str) -> dict[str, str]:
        if self.exchange_id == "coinbaseexchange":
            return {"client_oid": self._venue_client_id(client_order_id)}
        return {"clientOrderId": client_order_id}

    def _report(self, order: Any, client_order_id: str) -> OrderReport:
        if not isinstance(order, dict):
            raise VenueError("transient", f"{self.exchange_id} sent an order that is not an "
                             "object")
        filled = _dec(order.get("filled") or "0", "filled")
        status, raw = _status(self.exchange_id, order, filled)
        average = order.get("average")
        avg: Decimal | None
        if average in (None, "") and filled and order.get("cost") not in (None, ""):
            avg = _dec(order["cost"], "cost") / filled
        else:
            avg = None if average in (None, "") else _dec(average, "average")
        venue_id = order.get("id")
        info = order.get("info") or {}
        return OrderReport(ClientOrderId(client_order_id),
                           None if venue_id is None else VenueOrderId(str(venue_id)), status,
                           raw, filled, avg, info.get("updated_at") or order.get("datetime"))

    def _trade(self, row: dict[str, Any], symbol: str) -> Trade:
        fee = row.get("fee") or {}
        cost = fee.get("cost")
        venue_order = row.get("order")
        side = "sell" if str(row.get("side", "")).startswith("sell") else "buy"
        return Trade(TradeId(str(row.get("id"))),
                     None if venue_order is None else VenueOrderId(str(venue_order)),
                     str(row.get("symbol") or symbol), side,  # type: ignore[arg-type]
                     _dec(row.get("amount"), "amount"), _dec(row.get("price"), "price"),
                     ZERO if cost in (None, "") else _dec(cost, "fee"),
                     fee.get("currency") if cost not in (None, "") else None,
                     str(row.get("datetime")))


def _message(body: str) -> str:
    """The venue's words from an error body (JSON ``message`` when there is one)."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(parsed, dict):
        for key in ("message", "error", "msg"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return body[:300]


def _text(qty: Decimal) -> str:
    return format(qty.normalize(), "f")
