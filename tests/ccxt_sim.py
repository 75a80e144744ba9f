"""Loopback Coinbase Exchange and Alpaca (crypto) servers that speak what ccxt 4.5.90 sends.

Two test-driven venues on 127.0.0.1 (ephemeral port, a ThreadingHTTPServer in a daemon
thread, HTTP/1.1 keep-alive) for the real `ccxt.coinbaseexchange` and `ccxt.alpaca`:

    with CoinbaseSim(products=("BTC-USD",)) as cb, AlpacaCcxtSim(assets=("BTC/USD",)) as al:
        cb.add_account("KEY", CoinbaseSim.new_secret(1), passphrase="pp", cash="1000")
        cb.set_price("BTC/USD", "50000")
        ex = point_at(ccxt.coinbaseexchange({"apiKey": "KEY", "secret": ..., "password": "pp",
                                             "enableRateLimit": False}), cb.base_url)

Point ccxt at a sim with `point_at` (it replaces scheme and host of every URL of
`exchange.urls['api']`, after `set_sandbox_mode` if that is used: sandbox mode swaps the URLs).
Alpaca's three hosts (trader, market data, broker) all land on the one sim.

Shared behaviour (both classes; per account = per API key):
- Market orders only (other types answer 501, never a real answer). An order is accepted
  unfilled; each GET of that account's orders or fills/activities ("a poll") advances every
  open order one step of its plan: `fill_parts` equal parts (0: never fills), or the fractions
  given to `plan_next`. Each part is its own execution with its own trade id, at the price set
  by `set_price` at that moment. `fill_on_submit` runs the whole plan inside the POST;
  `auto_advance = False` leaves stepping to `step()`.
- Fees: `fee_rate` per account, in the currency `fee_currency` says (each class documents what
  the venue really does). Cash and positions move with every execution and fee.
- `set_position`, `deposit`: changes made at the venue by hand.
- Faults: `rate_limit(n)` (next n requests 429 with the venue's headers), `fail_after_create`
  (the order is created, then a 5xx), `hang_after_create` (created, then no answer),
  `set_down("hang")` (no answer: the handler waits `hang_seconds` or until `set_up()`, past any
  client timeout), `set_down("refuse")` (the port is closed; kept-alive connections are dropped),
  `latency` (seconds slept before each request), `reject_next` (a business reject).
- `requests`: every request (method, path, query, JSON body, key, status), secrets masked;
  `order_posts(client_id)` counts order submissions.
- Thread-safe (one lock around the state; sleeps and hangs outside it); a deep listen backlog
  and keep-alive serve many concurrent clients. `record = False` stops keeping requests.

Deterministic: ids are uuid5 of counters, bodies use a simulated clock (`T0`, one tick per event,
`advance_clock`); only rate-limit windows and Coinbase's signature time window read wall time.
`ASSUMED` marks error wordings for which no source was found.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NY = ZoneInfo("America/New_York")  # Alpaca activity ids and dates use New York time
_NS = uuid.UUID("0c6b2a55-41d3-4f7e-8a21-9b5d3c7e1f08")  # namespace of the sims' uuid5 ids
_TICK = 1_234_567_891  # simulated ns per event
ZERO = Decimal(0)
NANO = Decimal("0.000000001")
WIRE_MARKETS = Path(__file__).resolve().parents[2] / "shared" / "wire" / "ccxt" / "markets"
_URL_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]+")


# ---------------------------------------------------------------- helpers
def point_at(exchange: Any, base_url: str) -> Any:
    """Replace scheme and host of every URL in `exchange.urls['api']` (nested dicts, lists or
    strings, `{hostname}` templates included) with `base_url`; paths are kept. Returns it."""

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return _URL_HOST.sub(base_url.rstrip("/"), v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    exchange.urls["api"] = walk(exchange.urls["api"])
    return exchange


def wire_market_rows(exchange_id: str) -> dict[str, dict[str, Any]]:
    """The raw venue rows (`info`) of ccxt's static markets file, by unified symbol ({} when
    ../shared is absent)."""
    path = WIRE_MARKETS / f"{exchange_id}.json"
    if not path.exists():
        return {}
    return {s: m["info"] for s, m in json.loads(path.read_text()).items()}


def uid(kind: str, n: object) -> str:
    return str(uuid.uuid5(_NS, f"{kind}-{n}"))


def plain(d: Decimal) -> str:
    """A number string in plain notation without trailing zeros (Alpaca's style)."""
    s = format(d.normalize(), "f")
    return "0" if s in ("-0", "0") else s


def fixed(d: Decimal, places: int) -> str:
    """At least `places` decimals (Coinbase's "0.01000000"); more digits are kept, not rounded."""
    r = d.quantize(Decimal(1).scaleb(-places))
    return format(r if r == d else d, "f")


def ts(ns: int | None, digits: int = 9) -> str | None:
    if ns is None:
        return None
    sec, frac = divmod(ns, 10**9)
    base = (_EPOCH + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}"[:digits].rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def parse_time(s: str) -> int | None:
    """RFC 3339 (any fraction, Z or an offset) or YYYY-MM-DD, to ns since the epoch."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?)?", s)
    if not m:
        return None
    day, clock, frac, zone = m.groups()
    dt = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{'' if zone in (None, 'Z') else zone}")
    whole = (dt.replace(tzinfo=dt.tzinfo or UTC) - _EPOCH) // timedelta(seconds=1)
    return whole * 10**9 + int(((frac or "") + "0" * 9)[:9])


def _ny(ns: int) -> datetime:
    return (_EPOCH + timedelta(microseconds=ns // 1000)).astimezone(_NY)


def _dec(v: Any) -> Decimal | None:
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _even(parts: int) -> list[Decimal]:
    return [Decimal(i) / parts for i in range(1, parts + 1)] if parts > 0 else []


class Fail(Exception):
    """An error answer: HTTP status, JSON body, extra headers."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


class _Hang(Exception):
    """The request was applied; answer nothing (the client times out)."""


# ---------------------------------------------------------------- venue state
@dataclass
class Market:
    symbol: str  # unified: "BTC/USD"
    id: str  # the venue's: "BTC-USD" (Coinbase), "BTC/USD" (Alpaca)
    base: str
    quote: str
    step: Decimal  # quantity increment
    tick: Decimal  # price increment
    min_qty: Decimal  # 0: none
    min_cost: Decimal  # 0: none
    row: dict[str, Any]  # the venue's raw row, answered as is
    asset_id: str = ""


@dataclass
class Order:
    n: int
    id: str
    key: str
    market: Market
    side: str
    client_id: str | None
    created_ns: int
    target: Decimal  # the base quantity to fill
    size: Decimal | None  # as sent (Coinbase `size`, Alpaca `qty`)
    funds: Decimal | None  # as sent (Coinbase `funds`, Alpaca `notional`)
    plan: list[Decimal]  # cumulative fractions of `target` still to execute, one per step
    tif: str = "gtc"
    state: str = "pending"  # pending -> working -> partial -> filled | canceled
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fees: Decimal = ZERO  # fees charged in the quote currency
    updated_ns: int = 0
    done_ns: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state in ("pending", "working", "partial")


@dataclass
class Fill:
    trade_id: int
    order: Order
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    ns: int
    posted: bool = False  # the fee has been charged (Alpaca may post fees at end of day)


@dataclass
class Account:
    key: str
    secret: str
    passphrase: str | None
    n: int
    created_ns: int
    balances: dict[str, Decimal] = field(default_factory=dict)  # currency -> total held
    basis: dict[str, Decimal] = field(default_factory=dict)  # average entry price (quote units)
    orders: list[Order] = field(default_factory=list)
    by_client: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    activities: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # Alpaca
    plans: list[list[Decimal]] = field(default_factory=list)
    fill_parts: int = 1
    fee_rate: Decimal = ZERO
    fee_currency: str = "quote"
    fee_posting: str = "immediate"
    window: tuple[float, int] = (float("-inf"), 0)  # Alpaca's per-minute window
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # Coinbase's


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, str]  # last value wins; `raw_query` has them all
    raw_query: str
    body: Any  # the parsed JSON (None: no body)
    key: str | None
    headers: dict[str, str]  # lower-cased names, secrets and signatures masked
    status: int = 0  # 0: no answer


@dataclass
class _Ctx:
    acct: Account | None
    q: dict[str, str]
    qm: dict[str, list[str]]
    body: Any


_MASKED = {"apca-api-secret-key", "cb-access-sign", "cb-access-passphrase"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # the benchmark opens many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-connection (the crash tests) is not the server's error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: ccxt's requests.Session reuses connections
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stall per answer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:  # the client died mid-request: it never arrived whole
            self.close_connection = True
            return
        raw = data.decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        sim: _Venue = self.server.sim  # type: ignore[attr-defined]
        out = sim._handle(self.command, self.path, headers, raw)
        if out is None:  # no answer: drop the connection
            self.close_connection = True
            return
        status, extra, body = out
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json; charset=utf-8", **extra,
                     "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]
        self.flush_headers()  # status line, headers and body in one write

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _Venue:
    """The server and venue mechanics both sims share. Every public method is thread-safe."""

    NAME: ClassVar[str] = "venue"
    FEE_CURRENCIES: ClassVar[frozenset[str]] = frozenset({"quote"})
    FEE_POSTINGS: ClassVar[frozenset[str]] = frozenset({"immediate"})
    DEFAULT_FEE_CURRENCY: ClassVar[str] = "quote"
    _ROUTES: ClassVar[list[tuple[str, re.Pattern[str], str, bool, bool]]] = []
    # (verb, path pattern, handler, public, a poll that advances fills)

    def __init__(self, *, clock: Callable[[], float] = time.time, latency: float = 0.0) -> None:
        self.clock = clock  # rate-limit windows only
        self.latency = latency  # seconds slept before each request is handled
        self.hang_seconds = 30.0  # how long a hung request waits (set_up() ends it sooner)
        self.record = True
        self.auto_advance = True
        self.fill_on_submit = False
        self.rate_limits = True  # the venue's documented limits (forced 429s always apply)
        self.requests: list[SimRequest] = []
        self.accounts: dict[str, Account] = {}
        self.markets: dict[str, Market] = {}
        self.prices: dict[str, Decimal] = {}
        self._lock = threading.RLock()
        self._ns = (T0 - _EPOCH) // timedelta(microseconds=1) * 1000
        self._orders = self._trades = self._seq = 0
        self._forced_429: list[str | None] = []
        self._after_create: list[tuple[str | None, int]] = []  # key, status (0: hang)
        self._reject: list[tuple[str | None, Fail]] = []
        self._posts: dict[str, list[SimRequest]] = {}  # order POSTs by client id
        self._down: tuple[str, str | None] | None = None
        self._wake = threading.Event()
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._listen()

    # ---------------------------------------------------------------- server
    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.sim = self  # type: ignore[attr-defined]
        self._port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True,
                                        name=f"{self.NAME}-sim:{self._port}")
        self._server = server
        self._thread.start()

    def _close(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        with self._lock:
            self._down = None
            self._wake.set()
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- set-up by the test
    def add_account(self, key: str, secret: str, *, passphrase: str | None = None,
                    cash: str = "100000", currency: str = "USD",
                    balances: dict[str, str] | None = None, fill_parts: int = 1,
                    fee_rate: str = "0", fee_currency: str | None = None,
                    fee_posting: str = "immediate") -> Account:
        """An account (an API key) holding `cash` of `currency` plus `balances`."""
        with self._lock:
            acct = Account(key, secret, passphrase, len(self.accounts) + 1, self._tick())
            acct.balances[currency] = Decimal(cash)
            for c, q in (balances or {}).items():
                acct.balances[c] = Decimal(q)
            acct.fee_currency = self.DEFAULT_FEE_CURRENCY
            self.accounts[key] = acct
            self.configure(key, fill_parts=fill_parts, fee_rate=fee_rate,
                           fee_currency=fee_currency, fee_posting=fee_posting)
            return acct

    def configure(self, key: str, *, fill_parts: int | None = None, fee_rate: str | None = None,
                  fee_currency: str | None = None, fee_posting: str | None = None) -> None:
        """Per-account behaviour of the next executions (None: unchanged)."""
        if fee_currency is not None:
            fee_currency = self._fee_currency(fee_currency)
        if fee_posting is not None and fee_posting not in self.FEE_POSTINGS:
            raise ValueError(f"{self.NAME}: fee_posting must be one of {sorted(self.FEE_POSTINGS)}")
        with self._lock:
            acct = self.accounts[key]
            if fill_parts is not None:
                acct.fill_parts = fill_parts
            if fee_rate is not None:
                acct.fee_rate = Decimal(fee_rate)
            if fee_currency is not None:
                acct.fee_currency = fee_currency
            if fee_posting is not None:
                acct.fee_posting = fee_posting

    def _fee_currency(self, name: str) -> str:
        if name not in self.FEE_CURRENCIES:
            raise ValueError(f"{self.NAME}: fee_currency must be one of "
                             f"{sorted(self.FEE_CURRENCIES)}")
        return name

    def plan_next(self, key: str, *fractions: str) -> None:
        """The account's next order executes these fractions of its quantity, one per poll.
        Fractions summing below 1 leave it working; no fractions: it never fills."""
        cum, plan = ZERO, []
        for f in fractions:
            cum += Decimal(f)
            plan.append(min(cum, Decimal(1)))
        with self._lock:
            self.accounts[key].plans.append(plan)

    def set_price(self, symbol: str, price: str) -> None:
        """The price of the next executions of `symbol` ("BTC/USD"), and its mark."""
        with self._lock:
            self.prices[self._market_or_fail(symbol).symbol] = Decimal(price)

    def set_position(self, key: str, asset: str, qty: str, avg_price: str | None = None) -> None:
        """Set the holding of `asset` ("BTC", or a pair's base: "BTC/USD") by hand, as a
        change made at the venue (no order, no execution, no cash)."""
        with self._lock:
            acct, code = self.accounts[key], self._asset_code(asset)
            acct.balances[code] = Decimal(qty)
            if avg_price is not None:
                acct.basis[code] = Decimal(avg_price)
            if Decimal(qty) == 0:
                acct.basis.pop(code, None)

    def deposit(self, key: str, amount: str, currency: str = "USD") -> None:
        """Money in (or out when negative), without an order."""
        with self._lock:
            acct = self.accounts[key]
            acct.balances[currency] = acct.balances.get(currency, ZERO) + Decimal(amount)
            self._on_deposit(acct, Decimal(amount), currency)

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._ns += int(seconds * 10**9)

    # ---------------------------------------------------------------- fault knobs
    def rate_limit(self, n: int, key: str | None = None) -> None:
        """The next n requests (of `key`, or of anyone) answer 429 with the venue's headers."""
        with self._lock:
            self._forced_429 += [key] * n

    def fail_after_create(self, n: int = 1, status: int = 500, key: str | None = None) -> None:
        """The next n order submissions create the order, then answer `status`."""
        with self._lock:
            self._after_create += [(key, status)] * n

    def hang_after_create(self, n: int = 1, key: str | None = None) -> None:
        """The next n order submissions create the order, then never answer."""
        with self._lock:
            self._after_create += [(key, 0)] * n

    def set_down(self, mode: str = "hang", key: str | None = None) -> None:
        """"hang": requests (of `key`, or all) get no answer until `set_up()` or `hang_seconds`.
        "refuse": the port is closed (all keys; with a key: that key's connections are
        dropped unanswered). Requests are not applied while down."""
        if mode not in ("hang", "refuse"):
            raise ValueError("mode must be 'hang' or 'refuse'")
        with self._lock:
            self._down = (mode, key)
        if mode == "refuse" and key is None:
            self._close()

    def set_up(self) -> None:
        """Back up: hung requests are released (unanswered), the port listens again."""
        with self._lock:
            self._down, wake, self._wake = None, self._wake, threading.Event()
        wake.set()
        if self._server is None:
            self._listen()

    def _pop_reject(self, key: str) -> None:
        for i, (k, fail) in enumerate(self._reject):
            if k in (None, key):
                del self._reject[i]
                raise fail

    # ---------------------------------------------------------------- fills
    def step(self, key: str | None = None) -> None:
        """Advance open orders one step (those of every account when `key` is None)."""
        with self._lock:
            for acct in [self.accounts[key]] if key else list(self.accounts.values()):
                self._advance(acct)

    def venue_cancel(self, order_id: str) -> None:
        """The venue cancels a working order by itself (what was filled stays filled)."""
        with self._lock:
            found = [o for a in self.accounts.values() for o in a.orders if o.id == order_id]
            if not found or not found[0].is_open:
                raise KeyError(f"{self.NAME}: no working order {order_id}")
            self._cancel(found[0])

    def post_fees(self, key: str | None = None) -> int:
        """Charge the fees not posted yet (fee_posting="eod"). Returns how many."""
        with self._lock:
            n = 0
            for acct in [self.accounts[key]] if key else list(self.accounts.values()):
                for f in acct.fills:
                    if not f.posted:
                        self._post_fee(acct, f)
                        n += 1
            return n

    # ---------------------------------------------------------------- inspection
    def balance(self, key: str, currency: str) -> Decimal:
        with self._lock:
            return self.accounts[key].balances.get(currency, ZERO)

    def orders(self, key: str) -> list[Order]:
        with self._lock:
            return list(self.accounts[key].orders)

    def orders_with_client_id(self, key: str, client_id: str) -> list[Order]:
        with self._lock:
            return [o for o in self.accounts[key].orders if o.client_id == client_id]

    def fills(self, key: str) -> list[Fill]:
        with self._lock:
            return list(self.accounts[key].fills)

    def requests_of(self, key: str | None) -> list[SimRequest]:
        with self._lock:
            return [r for r in self.requests if r.key == key]

    def order_posts(self, client_id: str | None = None, key: str | None = None) -> list[SimRequest]:
        """The order submissions received (with this client id / of this key), any outcome."""
        path, field_name = self._ORDER_POST
        with self._lock:
            if client_id is not None:
                return [r for r in self._posts.get(client_id, []) if key in (None, r.key)]
            return [r for r in self.requests if r.method == "POST" and r.path == path
                    and (key is None or r.key == key)
                    and (client_id is None or (isinstance(r.body, dict)
                                               and r.body.get(field_name) == client_id))]

    _ORDER_POST: ClassVar[tuple[str, str]] = ("", "")

    # ---------------------------------------------------------------- mechanics
    def _tick(self) -> int:
        self._ns += _TICK
        return self._ns

    def _tick_us(self) -> int:
        return self._tick() // 1000 * 1000

    def _asset_code(self, asset: str) -> str:
        m = self._market(asset)
        return m.base if m is not None else asset.upper()

    def _market(self, symbol: str) -> Market | None:
        s = symbol.upper()
        if s in self.markets:
            return self.markets[s]
        return next((m for m in self.markets.values()
                     if s in (m.id.upper(), m.symbol.replace("/", ""), m.asset_id)), None)

    def _market_or_fail(self, symbol: str) -> Market:
        m = self._market(symbol)
        if m is None:
            raise KeyError(f"{self.NAME}: no market {symbol!r} (add it first)")
        return m

    def _add_market(self, m: Market) -> Market:
        with self._lock:
            self.markets[m.symbol] = m
        return m

    def _holds(self, acct: Account) -> dict[str, Decimal]:
        """What open orders reserve: quote for buys (with a quote fee), base for sells."""
        held: dict[str, Decimal] = {}
        for o in acct.orders:
            if not o.is_open:
                continue
            m, rest = o.market, o.target - o.filled
            if o.side == "buy":
                rate = acct.fee_rate if self._buy_fee_in_quote(acct) else ZERO
                cost = rest * self.prices.get(m.symbol, ZERO) * (1 + rate)
                held[m.quote] = held.get(m.quote, ZERO) + cost
            else:
                held[m.base] = held.get(m.base, ZERO) + rest
        return held

    def _available(self, acct: Account, currency: str) -> Decimal:
        return acct.balances.get(currency, ZERO) - self._holds(acct).get(currency, ZERO)

    def _buy_fee_in_quote(self, acct: Account) -> bool:
        return acct.fee_currency == "quote"

    def _new_order(self, acct: Account, m: Market, side: str, client_id: str | None,
                   target: Decimal, size: Decimal | None, funds: Decimal | None,
                   tif: str = "gtc") -> Order:
        self._orders += 1
        now = self._tick()
        plan = acct.plans.pop(0) if acct.plans else _even(acct.fill_parts)
        o = Order(self._orders, uid(f"{self.NAME}-order", self._orders), acct.key, m, side,
                  client_id, now, target, size, funds, plan, tif, updated_ns=now)
        acct.orders.append(o)
        if client_id is not None:
            acct.by_client.setdefault(client_id, o)
        while self.fill_on_submit and o.is_open and o.plan:
            self._step_order(acct, o)
        for i, (k, status) in enumerate(self._after_create):
            if k in (None, acct.key):
                del self._after_create[i]
                if status == 0:
                    raise _Hang()
                raise self._internal(status)
        return o

    def _advance(self, acct: Account) -> None:
        for o in acct.orders:
            if o.is_open:
                self._step_order(acct, o)

    def _step_order(self, acct: Account, o: Order) -> None:
        if o.state == "pending":
            o.state, o.updated_ns = "working", self._tick()
        if not o.plan:
            return
        frac = o.plan.pop(0)
        cum = o.target if frac >= 1 else (o.target * frac).quantize(o.market.step, ROUND_DOWN)
        if cum - o.filled > 0:
            self._execute(acct, o, cum - o.filled)

    def _execute(self, acct: Account, o: Order, qty: Decimal) -> None:
        m = o.market
        price, now = self.prices[m.symbol], self._tick_us()
        self._trades += 1
        fee, fee_ccy = self._fee_of(acct, o, qty, price)
        f = Fill(self._trades, o, qty, price, fee, fee_ccy, now)
        o.filled, o.cost, o.updated_ns = o.filled + qty, o.cost + qty * price, now
        if fee_ccy == m.quote:
            o.fees += fee
        sign = 1 if o.side == "buy" else -1
        self._move(acct, m.base, sign * qty, price)
        self._move(acct, m.quote, -sign * qty * price)
        if o.filled >= o.target:
            o.state, o.done_ns, o.plan = "filled", now, []
        else:
            o.state = "partial"
        acct.fills.append(f)
        self._on_fill(acct, f)
        if acct.fee_posting == "immediate":
            self._post_fee(acct, f)

    def _post_fee(self, acct: Account, f: Fill) -> None:
        if f.posted:
            return
        f.posted = True
        if f.fee:
            self._move(acct, f.fee_currency, -f.fee)
            self._on_fee(acct, f)

    def _move(self, acct: Account, currency: str, delta: Decimal,
              price: Decimal | None = None) -> None:
        held = acct.balances.get(currency, ZERO)
        new = held + delta
        if price is not None and delta > 0 and held >= 0:
            avg = acct.basis.get(currency, price)
            acct.basis[currency] = ((held * avg + delta * price) / new).quantize(NANO)
        acct.balances[currency] = new
        if new == 0:
            acct.basis.pop(currency, None)

    def _cancel(self, o: Order) -> None:
        o.state, o.plan = "canceled", []
        o.updated_ns = o.done_ns = self._tick()

    def _time_q(self, c: _Ctx, name: str) -> int | None:
        if not c.q.get(name):
            return None
        t = parse_time(c.q[name])
        if t is None:  # Alpaca's wording (quoted in ccxt's alpaca exceptions table)
            raise self._fail(400, f"Invalid format for parameter {name}: error parsing "
                             f"'{c.q[name]}' as RFC3339 or 2006-01-02 time")
        return t

    # ---------------------------------------------------------------- venue hooks
    def _fee_of(self, acct: Account, o: Order, qty: Decimal, price: Decimal) -> tuple[Decimal, str]:
        return qty * price * acct.fee_rate, o.market.quote

    def _on_fill(self, acct: Account, f: Fill) -> None:
        pass

    def _on_fee(self, acct: Account, f: Fill) -> None:
        pass

    def _on_deposit(self, acct: Account, amount: Decimal, currency: str) -> None:
        pass

    def _key_of(self, headers: dict[str, str]) -> str | None:
        raise NotImplementedError

    def _auth(self, method: str, path: str, query: str, headers: dict[str, str],
              raw: str) -> Account:
        raise NotImplementedError

    def _fail(self, status: int, message: str, **extra: Any) -> Fail:
        raise NotImplementedError

    def _internal(self, status: int) -> Fail:
        raise NotImplementedError

    def _throttle(self, acct: Account | None, handler: str, forced: bool) -> dict[str, str]:
        """Headers for the answer; raises the venue's 429 when limited (or `forced`)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- HTTP
    def _handle(self, method: str, raw_path: str, headers: dict[str, str],
                raw: str) -> tuple[int, dict[str, str], Any] | None:
        """Answer one request: status, extra headers, JSON body; None: no answer."""
        if self.latency > 0:
            time.sleep(self.latency)
        url = urlsplit(raw_path)
        qm = parse_qs(url.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in qm.items()}
        key = self._key_of(headers)
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = ...
        shown = {k: "***" if k in _MASKED else v for k, v in headers.items()}
        rec = SimRequest(method, url.path, q, url.query, None if parsed is ... else parsed,
                         key, shown)
        with self._lock:
            if self.record:
                self.requests.append(rec)
                path, name = self._ORDER_POST
                if method == "POST" and url.path == path and isinstance(parsed, dict):
                    self._posts.setdefault(str(parsed.get(name)), []).append(rec)
            down, wake = self._down, self._wake
        if down is not None and down[1] in (None, key):
            if down[0] == "hang":
                wake.wait(self.hang_seconds)
            return None
        with self._lock:
            wake = self._wake
            try:
                status, extra, body = self._dispatch(method, url.path, url.query, qm, q, headers,
                                                     raw, parsed)
            except _Hang:
                status = 0
            except Fail as fail:
                status, extra, body = fail.status, fail.headers, fail.body
            rec.status = status
        if status == 0:
            wake.wait(self.hang_seconds)
            return None
        return status, extra, body

    def _dispatch(self, method: str, path: str, query: str, qm: dict[str, list[str]],
                  q: dict[str, str], headers: dict[str, str], raw: str,
                  parsed: Any) -> tuple[int, dict[str, str], Any]:
        route, known = None, False
        for verb, pattern, name, public, advancing in self._ROUTES:
            m = pattern.fullmatch(path)
            if m:
                known = True
                if verb == method:
                    route = (name, public, advancing, [unquote(g) for g in m.groups()])
                    break
        if route is None:
            raise self._fail(405 if known else 404, "endpoint not found" if not known
                             else f"method {method} not allowed")  # ASSUMED wording
        name, public, advancing, args = route
        key = self._key_of(headers)
        forced = next((i for i, k in enumerate(self._forced_429) if k in (None, key)), None)
        if forced is not None:
            del self._forced_429[forced]
        acct = None if public else self._auth(method, path, query, headers, raw)
        extra = self._throttle(acct, name, forced is not None)
        if parsed is ...:
            raise self._fail(400, "invalid json")  # ASSUMED wording
        if advancing and self.auto_advance and acct is not None:
            self._advance(acct)
        try:
            out = getattr(self, name)(_Ctx(acct, q, qm, parsed), *args)
        except Fail as fail:
            fail.headers = {**extra, **fail.headers}
            raise
        status, body, *more = out
        return status, {**extra, **(more[0] if more else {})}, body


def _route(verb: str, pattern: str, name: str, public: bool = False,
           advancing: bool = False) -> tuple[str, re.Pattern[str], str, bool, bool]:
    return verb, re.compile(pattern), name, public, advancing


_SEG = "([^/]+)"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# ==================================================================== Coinbase Exchange
class CoinbaseSim(_Venue):
    """Coinbase Exchange REST (api.exchange.coinbase.com) as ccxt's `coinbaseexchange` calls it.

    Routes: public GET /products, /products/{id}, /products/{id}/ticker, /currencies, /time
    (`load_markets` calls /currencies, then /products); private GET /accounts, POST /orders,
    GET /orders (status filters, cursor pages), GET /orders/{id}, GET /orders/client:{client_oid},
    DELETE /orders/{id}, DELETE /orders/client:{client_oid}, DELETE /orders, GET /fills.

    Authentication as Coinbase checks it: CB-ACCESS-KEY/-SIGN/-TIMESTAMP/-PASSPHRASE all required;
    the signature is base64(HMAC-SHA256(base64decode(secret), timestamp + method + path?query +
    body)) and is verified; the timestamp must be within 30 s of wall time (`check_timestamp`).
    Errors are Coinbase's `{"message": ...}`, statuses and wordings as a Coinbase Pro emulator
    recorded them from the venue (and as ccxt expects: it reads messages on 400 and 404 only):
    401 "CB-ACCESS-KEY header is required"; 400 "CB-ACCESS-SIGN header is required" (and
    -TIMESTAMP, -PASSPHRASE), "Invalid API Key", "invalid signature", "Invalid Passphrase",
    "invalid timestamp", "request timestamp expired" (`auth_status = 401` answers the three
    credential errors with 401 instead); 400 "Insufficient funds", "Invalid client_oid"
    (client_oid must be a UUID: coinbase-pro-node#345), "Invalid side x", "Product not found",
    "size is too small. Minimum size is 0.00100000", "Order already done", "Invalid order id";
    404 "NotFound" (GET), "order not found" (DELETE); 500 "Internal server error"; 429 "Private
    rate limit exceeded" (the messages ccxt's exception table knows). Coinbase documents
    no rate-limit response headers, so 429s carry none. Documented limits are enforced per API
    key (`rate_limits`): private 15 requests/s with bursts of 30, /fills 10/s with bursts of 20
    (a lazy-fill token bucket); the public limit (10/s, burst 15, per IP) only with
    `public_rate_limit = True`.

    Fees: Coinbase Exchange always charges fees in the quote currency (the fill's `fee`, the
    order's `fill_fees`); there are no base-currency fees here: `fee_currency="base"` raises.

    Duplicate client_oid: Coinbase's old docs say the client_oid is not used after the order is
    received (no de-duplication: coinbase-pro-node#352); no documented refusal was found.
    `duplicate_client_oid = "reject"` (default) answers 400 {"message": "duplicate client_oid"}
    (ASSUMED wording); "accept" creates a second order as the old docs describe.
    `purge_canceled_unfilled = True`: a canceled order without fills answers 404 (the docs: it
    "might return the status code 404").

    Pages (cursor pagination, newest first): /fills by trade_id (`after`: older, `before`: newer,
    headers CB-BEFORE/CB-AFTER = first/last trade_id), /orders by created_at (cursors are the
    created_at times). `limit` defaults to 100, at most 1000.
    """

    NAME = "coinbase"
    FEE_CURRENCIES = frozenset({"quote"})
    _ORDER_POST = ("/orders", "client_oid")
    _ROUTES: ClassVar[list[tuple[str, re.Pattern[str], str, bool, bool]]] = [
        _route("GET", "/products", "_products", public=True),
        _route("GET", f"/products/{_SEG}", "_product", public=True),
        _route("GET", f"/products/{_SEG}/ticker", "_ticker", public=True),
        _route("GET", "/currencies", "_currencies", public=True),
        _route("GET", "/time", "_time", public=True),
        _route("GET", "/accounts", "_accounts"),
        _route("GET", f"/accounts/{_SEG}", "_account"),
        _route("POST", "/orders", "_post_order"),
        _route("GET", "/orders", "_list_orders", advancing=True),
        _route("DELETE", "/orders", "_cancel_all"),
        _route("GET", "/orders/client:([^/]+)", "_get_by_client", advancing=True),
        _route("DELETE", "/orders/client:([^/]+)", "_cancel_by_client"),
        _route("GET", f"/orders/{_SEG}", "_get_order", advancing=True),
        _route("DELETE", f"/orders/{_SEG}", "_cancel_order"),
        _route("GET", "/fills", "_list_fills", advancing=True),
    ]

    def __init__(self, *, products: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 latency: float = 0.0) -> None:
        self.duplicate_client_oid = "reject"
        self.purge_canceled_unfilled = False
        self.check_timestamp = True
        self.auth_status = 400  # "Invalid API Key" etc.: 400 as observed; 401 if you prefer
        self.public_rate_limit = False
        self.currencies: dict[str, dict[str, Any]] = {}
        self._public_bucket = (0.0, float("-inf"))
        super().__init__(clock=clock, latency=latency)
        wire = wire_market_rows("coinbaseexchange")
        by_id = {row["id"]: row for row in wire.values()}
        for pid in products:
            self.add_product(pid, row=by_id.get(pid))

    @staticmethod
    def new_secret(n: object) -> str:
        """A deterministic base64 API secret (ccxt base64-decodes Coinbase secrets)."""
        return base64.b64encode(hashlib.sha512(f"cb-secret-{n}".encode()).digest()).decode()

    def add_account(self, key: str, secret: str, *, passphrase: str | None = None,
                    **kw: Any) -> Account:
        """As `_Venue.add_account`; Coinbase needs a passphrase and a base64 secret."""
        try:
            base64.b64decode(secret, validate=True)
        except binascii.Error:
            raise ValueError("Coinbase secrets are base64 (CoinbaseSim.new_secret)") from None
        return super().add_account(key, secret, passphrase=passphrase or "passphrase", **kw)

    def add_product(self, product_id: str, *, row: dict[str, Any] | None = None,
                    base_increment: str = "0.00000001", quote_increment: str = "0.01",
                    min_market_funds: str = "1") -> Market:
        """A product from its raw /products row (ccxt's markets file `info`), or one made with
        the same keys. Its currencies are added to /currencies."""
        base, quote = product_id.split("-")
        if row is None:
            row = {"id": product_id, "base_currency": base, "quote_currency": quote,
                   "quote_increment": quote_increment, "base_increment": base_increment,
                   "display_name": product_id, "min_market_funds": min_market_funds,
                   "margin_enabled": False, "post_only": False, "limit_only": False,
                   "cancel_only": False, "status": "online", "status_message": "",
                   "trading_disabled": False, "fx_stablecoin": False,
                   "max_slippage_percentage": "0.03000000", "auction_mode": False,
                   "high_bid_limit_percentage": ""}
        m = Market(f"{base}/{quote}", row["id"], base, quote, Decimal(row["base_increment"]),
                   Decimal(row["quote_increment"]), ZERO,
                   Decimal(row.get("min_market_funds") or 0), row)
        for code in (base, quote):
            self.add_currency(code)
        return self._add_market(m)

    def add_currency(self, code: str, *, row: dict[str, Any] | None = None) -> None:
        """A /currencies row (keys of the sample in ccxt's coinbaseexchange.fetch_currencies)."""
        with self._lock:
            if code in self.currencies and row is None:
                return
            fiat = code in ("USD", "EUR", "GBP")
            prec = "0.01" if fiat else "0.000001" if code in ("USDT", "USDC") else "0.00000001"
            self.currencies[code] = row or {
                "id": code, "name": code, "min_size": prec, "status": "online", "message": "",
                "max_precision": prec, "convertible_to": [],
                "details": {"type": "fiat" if fiat else "crypto", "symbol": None,
                            "network_confirmations": 0 if fiat else 2, "sort_order": 0,
                            "crypto_address_link": "", "crypto_transaction_link": "",
                            "push_payment_methods": [], "group_types": [], "display_name": None,
                            "processing_time_seconds": None, "min_withdrawal_amount": None,
                            "max_withdrawal_amount": None},
                "default_network": "" if fiat else code.lower(), "supported_networks": [],
                "display_name": code}

    # ---------------------------------------------------------------- errors, auth, limits
    def _fail(self, status: int, message: str, **extra: Any) -> Fail:
        return Fail(status, {"message": message, **extra})

    def _internal(self, status: int) -> Fail:
        return self._fail(status, "Internal server error")  # ASSUMED wording

    def reject_next(self, message: str = "Insufficient funds", status: int = 400,
                    key: str | None = None) -> None:
        """The next order submission (of `key`) is refused with this answer; nothing is made."""
        with self._lock:
            self._reject.append((key, self._fail(status, message)))

    def _key_of(self, headers: dict[str, str]) -> str | None:
        return headers.get("cb-access-key")

    def _auth(self, method: str, path: str, query: str, headers: dict[str, str],
              raw: str) -> Account:
        bad = self.auth_status
        if not headers.get("cb-access-key"):
            raise self._fail(401, "CB-ACCESS-KEY header is required")
        for h in ("cb-access-sign", "cb-access-timestamp", "cb-access-passphrase"):
            if not headers.get(h):
                raise self._fail(400, f"{h.upper()} header is required")
        acct = self.accounts.get(headers["cb-access-key"])
        if acct is None:
            raise self._fail(bad, "Invalid API Key")
        stamp = _dec(headers["cb-access-timestamp"])
        if stamp is None:
            raise self._fail(400, "invalid timestamp")
        if self.check_timestamp and abs(time.time() - float(stamp)) > 30:
            raise self._fail(400, "request timestamp expired")
        what = headers["cb-access-timestamp"] + method + path + (f"?{query}" if query else "") + raw
        mac = hmac.new(base64.b64decode(acct.secret), what.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode(), headers["cb-access-sign"]):
            raise self._fail(bad, "invalid signature")
        if headers["cb-access-passphrase"] != acct.passphrase:
            raise self._fail(bad, "Invalid Passphrase")
        return acct

    def _bucket(self, state: tuple[float, float], rate: float,
                burst: float) -> tuple[bool, tuple[float, float]]:
        tokens, last = state
        now = self.clock()
        tokens = min(burst, tokens + (now - last) * rate) if last > float("-inf") else burst
        if tokens < 1:
            return True, (tokens, now)
        return False, (tokens - 1, now)

    def _throttle(self, acct: Account | None, handler: str, forced: bool) -> dict[str, str]:
        public = acct is None
        limited = forced
        if not limited and public and self.public_rate_limit:
            limited, self._public_bucket = self._bucket(self._public_bucket, 10, 15)
        elif not limited and acct is not None and self.rate_limits:
            fills = handler == "_list_fills"
            name, rate, burst = ("fills", 10, 20) if fills else ("private", 15, 30)
            limited, acct.buckets[name] = self._bucket(
                acct.buckets.get(name, (0.0, float("-inf"))), rate, burst)
        if limited:
            raise self._fail(429, "Public rate limit exceeded" if public
                             else "Private rate limit exceeded")
        return {}

    # ---------------------------------------------------------------- bodies
    def _order_body(self, o: Order) -> dict[str, Any]:
        acct = self.accounts[o.key]
        status = {"pending": "pending", "working": "open", "partial": "open", "filled": "done",
                  "canceled": "done"}[o.state]
        b: dict[str, Any] = {
            "id": o.id, "product_id": o.market.id, "profile_id": uid("cb-profile", acct.n),
            "side": o.side, "type": "market", "post_only": False, "stp": "dc",
            "created_at": ts(o.created_ns, 6), "fill_fees": fixed(o.fees, 16),
            "filled_size": fixed(o.filled, 8), "executed_value": fixed(o.cost, 16),
            "market_type": "spot", "status": status, "settled": not o.is_open}
        if o.size is not None:
            b["size"] = fixed(o.size, 8)
        if o.funds is not None:
            net = o.funds / (1 + acct.fee_rate)
            b["funds"] = fixed(net.quantize(Decimal("1e-16")), 16)
            b["specified_funds"] = fixed(o.funds, 16)
        if o.client_id is not None:
            b["client_oid"] = o.client_id
        if not o.is_open:
            b["done_at"] = ts(o.done_ns, 6)
            b["done_reason"] = "filled" if o.state == "filled" else "canceled"
        return b

    def _fill_body(self, acct: Account, f: Fill) -> dict[str, Any]:
        m, cost = f.order.market, f.qty * f.price
        return {"created_at": ts(f.ns, 6), "trade_id": f.trade_id, "product_id": m.id,
                "order_id": f.order.id, "user_id": uuid.uuid5(_NS, f"cb-user-{acct.n}").hex[:24],
                "profile_id": uid("cb-profile", acct.n), "liquidity": "T",
                "price": fixed(f.price, 8), "size": fixed(f.qty, 8), "fee": fixed(f.fee, 16),
                "side": f.order.side, "settled": True,
                "usd_volume": fixed(cost, 16) if m.quote == "USD" else None}

    # ---------------------------------------------------------------- public routes
    def _products(self, c: _Ctx) -> tuple[int, Any]:
        return 200, [m.row for m in self.markets.values()]

    def _product(self, c: _Ctx, pid: str) -> tuple[int, Any]:
        m = self._market(pid)
        if m is None:
            raise self._fail(404, "NotFound")
        return 200, m.row

    def _ticker(self, c: _Ctx, pid: str) -> tuple[int, Any]:
        m = self._market(pid)
        if m is None:
            raise self._fail(404, "NotFound")
        p = self.prices.get(m.symbol, ZERO)
        return 200, {"ask": plain(p), "bid": plain(p), "volume": "0", "trade_id": self._trades,
                     "price": plain(p), "size": "0", "time": ts(self._ns, 6)}

    def _currencies(self, c: _Ctx) -> tuple[int, Any]:
        return 200, [self.currencies[k] for k in sorted(self.currencies)]

    def _time(self, c: _Ctx) -> tuple[int, Any]:
        return 200, {"iso": ts(self._ns, 3), "epoch": self._ns / 10**9}

    # ---------------------------------------------------------------- private routes
    def _account_rows(self, acct: Account) -> list[dict[str, Any]]:
        held = self._holds(acct)
        codes = sorted(set(self.currencies) | set(acct.balances))
        return [{"id": uid(f"cb-account-{acct.n}", c), "currency": c,
                 "balance": fixed(acct.balances.get(c, ZERO), 16),
                 "hold": fixed(held.get(c, ZERO), 16),
                 "available": fixed(acct.balances.get(c, ZERO) - held.get(c, ZERO), 16),
                 "profile_id": uid("cb-profile", acct.n), "trading_enabled": True}
                for c in codes]

    def _accounts(self, c: _Ctx) -> tuple[int, Any]:
        assert c.acct is not None
        return 200, self._account_rows(c.acct)

    def _account(self, c: _Ctx, account_id: str) -> tuple[int, Any]:
        assert c.acct is not None
        for row in self._account_rows(c.acct):
            if row["id"] == account_id:
                return 200, row
        raise self._fail(404, "NotFound")

    def _size(self, v: Any, name: str, m: Market, unit: Decimal) -> Decimal:
        d = _dec(v)
        if d is None or d <= 0:
            raise self._fail(400, f"Invalid {name}")  # ASSUMED wording
        if d % unit:
            raise self._fail(400, f"{name} is too accurate. Smallest unit is {fixed(unit, 8)}")
        return d

    def _post_order(self, c: _Ctx) -> tuple[int, Any]:
        acct, body = c.acct, c.body
        assert acct is not None
        self._pop_reject(acct.key)
        if not isinstance(body, dict):
            raise self._fail(400, "invalid json")  # ASSUMED wording
        m = self._market(str(body.get("product_id") or ""))
        if m is None or "-" not in str(body.get("product_id")):
            raise self._fail(400, "Product not found")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise self._fail(400, f"Invalid side {side}")
        if body.get("type", "limit") != "market":
            raise self._fail(501, "sim: only market orders are simulated")
        cid = body.get("client_oid")
        if cid is not None:
            if not isinstance(cid, str) or not _UUID.fullmatch(cid):
                raise self._fail(400, "Invalid client_oid")
            if cid in acct.by_client and self.duplicate_client_oid == "reject":
                raise self._fail(400, "duplicate client_oid")  # ASSUMED (see the class doc)
        if (body.get("size") is None) == (body.get("funds") is None):
            raise self._fail(400, "market orders need exactly one of size or funds")  # ASSUMED
        price = self.prices.get(m.symbol)
        if price is None:
            raise self._fail(501, f"sim: no price for {m.symbol} (call set_price)")
        size = funds = None
        if body.get("size") is not None:
            size = target = self._size(body["size"], "size", m, m.step)
        else:
            funds = self._size(body["funds"], "funds", m, m.tick)
            target = (funds / (1 + acct.fee_rate) / price).quantize(m.step, ROUND_DOWN)
        cost = target * price
        if m.min_cost and cost < m.min_cost:
            least = (m.min_cost / price).quantize(m.step, ROUND_UP)
            raise self._fail(400, f"size is too small. Minimum size is {fixed(least, 8)}")
        if side == "buy":
            need = funds if funds is not None else cost * (1 + acct.fee_rate)
            if need > self._available(acct, m.quote):
                raise self._fail(400, "Insufficient funds")
        elif target > self._available(acct, m.base):
            raise self._fail(400, "Insufficient funds")
        o = self._new_order(acct, m, side, cid, target, size, funds,
                            str(body.get("time_in_force") or "GTC"))
        return 200, self._order_body(o)

    def _own(self, acct: Account, order_id: str) -> Order:
        if not _UUID.fullmatch(order_id):
            raise self._fail(400, "Invalid order id")
        o = next((o for o in acct.orders if o.id == order_id), None)
        if o is None or (self.purge_canceled_unfilled and o.state == "canceled" and not o.filled):
            raise self._fail(404, "NotFound")
        return o

    def _by_client(self, acct: Account, cid: str) -> Order:
        o = acct.by_client.get(cid)
        if o is None or (self.purge_canceled_unfilled and o.state == "canceled" and not o.filled):
            raise self._fail(404, "NotFound")
        return o

    def _get_order(self, c: _Ctx, order_id: str) -> tuple[int, Any]:
        assert c.acct is not None
        return 200, self._order_body(self._own(c.acct, order_id))

    def _get_by_client(self, c: _Ctx, cid: str) -> tuple[int, Any]:
        assert c.acct is not None
        return 200, self._order_body(self._by_client(c.acct, cid))

    def _do_cancel(self, o: Order) -> tuple[int, Any]:
        if not o.is_open:
            raise self._fail(400, "Order already done")
        self._cancel(o)
        return 200, o.id  # Coinbase answers the canceled order's id as a JSON string

    def _cancel_order(self, c: _Ctx, order_id: str) -> tuple[int, Any]:
        assert c.acct is not None
        try:
            o = self._own(c.acct, order_id)
        except Fail as fail:
            if fail.status == 404:
                raise self._fail(404, "order not found") from None
            raise
        return self._do_cancel(o)

    def _cancel_by_client(self, c: _Ctx, cid: str) -> tuple[int, Any]:
        assert c.acct is not None
        return self._do_cancel(self._by_client(c.acct, cid))

    def _product_filter(self, c: _Ctx) -> Market | None:
        # ccxt's cancel_order/cancel_all_orders send the unified symbol ("BTC/USD") in a JSON
        # body; GETs send the product id in the query. Both are accepted.
        pid = c.q.get("product_id")
        if not pid and isinstance(c.body, dict):
            pid = c.body.get("product_id")
        if not pid:
            return None
        m = self._market(str(pid))
        if m is None:
            raise self._fail(400, "Product not found")
        return m

    def _cancel_all(self, c: _Ctx) -> tuple[int, Any]:
        assert c.acct is not None
        m = self._product_filter(c)
        done = []
        for o in c.acct.orders:
            if o.is_open and (m is None or o.market is m):
                self._cancel(o)
                done.append(o.id)
        return 200, done

    def _limit(self, c: _Ctx) -> int:
        raw = c.q.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            raise self._fail(400, "Invalid limit")  # ASSUMED wording
        return int(raw)

    def _list_orders(self, c: _Ctx) -> tuple[int, Any, dict[str, str]]:
        acct = c.acct
        assert acct is not None
        statuses = set(c.qm.get("status") or ["open", "pending", "active"])
        m, limit = self._product_filter(c), self._limit(c)
        rows = [o for o in acct.orders if (m is None or o.market is m)]
        bodies = [(o, self._order_body(o)) for o in sorted(rows, key=lambda o: -o.n)]
        bodies = [(o, b) for o, b in bodies if "all" in statuses or b["status"] in statuses]
        after, before = self._time_q(c, "after"), self._time_q(c, "before")
        start, end = self._time_q(c, "start_date"), self._time_q(c, "end_date")
        bodies = [(o, b) for o, b in bodies
                  if (after is None or o.created_ns < after)  # older than the cursor
                  and (start is None or o.created_ns >= start)
                  and (end is None or o.created_ns <= end)]
        if before is not None:  # newer than the cursor: the page just above it
            bodies = [(o, b) for o, b in bodies if o.created_ns > before][-limit:]
        page = [b for _, b in bodies[:limit]]
        heads = ({"CB-BEFORE": page[0]["created_at"], "CB-AFTER": page[-1]["created_at"]}
                 if page else {})
        return 200, page, heads

    def _list_fills(self, c: _Ctx) -> tuple[int, Any, dict[str, str]]:
        acct = c.acct
        assert acct is not None
        oid, m = c.q.get("order_id"), self._product_filter(c)
        if not oid and m is None:
            raise self._fail(400, "product_id or order_id is required")  # ASSUMED wording
        limit = self._limit(c)
        rows = sorted((f for f in acct.fills if (m is None or f.order.market is m)
                       and (not oid or f.order.id == oid)), key=lambda f: -f.trade_id)
        start, end = self._time_q(c, "start_date"), self._time_q(c, "end_date")
        rows = [f for f in rows
                if (start is None or f.ns >= start) and (end is None or f.ns <= end)]
        if c.q.get("after", "").isdigit():  # older: smaller trade ids
            rows = [f for f in rows if f.trade_id < int(c.q["after"])]
        if c.q.get("before", "").isdigit():  # newer: the page just above the cursor
            rows = [f for f in rows if f.trade_id > int(c.q["before"])][-limit:]
        page = rows[:limit]
        heads = ({"CB-BEFORE": str(page[0].trade_id), "CB-AFTER": str(page[-1].trade_id)}
                 if page else {})
        return 200, [self._fill_body(acct, f) for f in page], heads


# ==================================================================== Alpaca (crypto)
class AlpacaCcxtSim(_Venue):
    """Alpaca's Trading API for crypto as ccxt's `alpaca` calls it (all three of ccxt's hosts,
    trader / market data / broker, point at this one server).

    Routes: GET /v2/assets (`load_markets` calls `?asset_class=crypto&status=active`, nothing
    else), /v2/assets/{symbol}, /v2/account, /v2/positions (`fetch_balance` calls /v2/account
    then /v2/positions), /v2/positions/{symbol}, POST /v2/orders, GET /v2/orders (status
    open/closed/all, limit ≤ 500, after/until/direction/symbols), GET /v2/orders/{id},
    GET /v2/orders:by_client_order_id (not in ccxt's API table; reachable with
    `exchange.request(...)`), DELETE /v2/orders/{id} (204, no body), DELETE /v2/orders (207),
    GET /v2/account/activities[/{type}] (FILL, CFEE, CSD, CSW; page_size ≤ 100, page_token),
    GET /v2/clock, and public market data GET /v1beta3/crypto/{loc}/snapshots (fetch_ticker[s]).

    Bodies copy the keys and types of ../shared/wire (numbers as strings, crypto orders
    `pending_new` first, positions named "BTCUSD", a crypto FILL with `swap_rate`). Errors are
    Alpaca's {"code", "message"}: 401 40110000 "request is not authorized" (ccxt raises
    PermissionDenied), 403 40310000 "insufficient buying power" (+ buying_power, cost_basis; ccxt
    raises ExchangeNotAvailable), 403 40310000 "insufficient balance for BTC (requested: x,
    available: y)" (sells, and buys quoted in a coin), 403 40310000 "cost basis must be >= minimal
    amount of order 10" (USD-quoted buys below `min_cost_usd`), 422 40010001 "client_order_id
    must be unique", 422 42210000 "invalid crypto time_in_force", 429 42910000 "rate limit
    exceeded" with X-Ratelimit-Limit/-Remaining/-Reset (sent on every answer; 200 requests a
    minute per account, `rate_limit_per_minute`).

    Fees (docs.alpaca.markets/docs/crypto-fees): charged on what the account receives — a buy
    pays in the coin, a sell in USD — and reported only as CFEE activities
    (`GET /v2/account/activities/CFEE`), never on the order or the FILL, and without an order id:
    {"activity_type": "CFEE", "date", "description": "Coin Pair Transaction Fee (Non USD)",
    "id", "net_amount": "0", "price", "qty": "-0.000195", "status": "executed", "symbol":
    "ETHUSD"}; a USD fee has net_amount "-x" and qty "0" (ASSUMED: no real USD CFEE body found).
    `fee_currency`: "received" (default, what Alpaca does; "base" is accepted as the same — Alpaca
    never takes a sell's fee in the coin) or "quote" (every fee in USD, not an Alpaca behaviour).
    `fee_posting`: "immediate" or "eod" (Alpaca posts fees at end of day: CFEE rows and the
    balance change appear only at `post_fees()`). ccxt's fetch_my_trades reads FILL only, so its
    trades carry no fee. Base fees are quantized to the asset's increment, USD fees to 1e-9.
    """

    NAME = "alpaca"
    FEE_CURRENCIES = frozenset({"received", "quote"})
    FEE_POSTINGS = frozenset({"immediate", "eod"})
    DEFAULT_FEE_CURRENCY = "received"
    TERMINAL = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
    _ORDER_POST = ("/v2/orders", "client_order_id")
    _ROUTES: ClassVar[list[tuple[str, re.Pattern[str], str, bool, bool]]] = [
        _route("GET", "/v2/assets", "_assets"),
        _route("GET", f"/v2/assets/{_SEG}", "_asset"),
        _route("GET", "/v2/account", "_account"),
        _route("GET", "/v2/positions", "_positions"),
        _route("GET", f"/v2/positions/{_SEG}", "_position"),
        _route("POST", "/v2/orders", "_post_order"),
        _route("GET", "/v2/orders", "_list_orders", advancing=True),
        _route("DELETE", "/v2/orders", "_cancel_all"),
        _route("GET", "/v2/orders:by_client_order_id", "_get_by_client", advancing=True),
        _route("GET", f"/v2/orders/{_SEG}", "_get_order", advancing=True),
        _route("DELETE", f"/v2/orders/{_SEG}", "_cancel_order"),
        _route("GET", "/v2/account/activities", "_activities", advancing=True),
        _route("GET", f"/v2/account/activities/{_SEG}", "_activities", advancing=True),
        _route("GET", "/v2/clock", "_clock"),
        _route("GET", f"/v1beta3/crypto/{_SEG}/snapshots", "_snapshots", public=True),
    ]

    def __init__(self, *, assets: Iterable[str] = (), clock: Callable[[], float] = time.time,
                 latency: float = 0.0) -> None:
        self.rate_limit_per_minute = 200
        self.min_cost_usd = Decimal(10)  # ccxt 4.5.90's minCostUSD, "verified live"
        super().__init__(clock=clock, latency=latency)
        wire = wire_market_rows("alpaca")
        for symbol in assets:
            self.add_asset(symbol, row=wire.get(symbol))

    def _fee_currency(self, name: str) -> str:
        return super()._fee_currency("received" if name == "base" else name)

    def add_asset(self, symbol: str, *, row: dict[str, Any] | None = None,
                  min_order_size: str = "0.0001", min_trade_increment: str = "0.000000001",
                  price_increment: str = "0.01") -> Market:
        """A crypto asset ("BTC/USD") from its raw /v2/assets row (ccxt's markets file `info`),
        or one made with the same keys."""
        base, quote = symbol.split("/")
        if row is None:
            row = {"id": uid("alpaca-asset", symbol), "class": "crypto", "exchange": "CRYPTO",
                   "symbol": symbol, "name": f"{base} / {quote}", "status": "active",
                   "tradable": True, "marginable": False, "maintenance_margin_requirement": 100,
                   "margin_requirement_long": "100", "margin_requirement_short": "100",
                   "shortable": False, "easy_to_borrow": False, "fractionable": True,
                   "attributes": [], "min_order_size": min_order_size,
                   "min_trade_increment": min_trade_increment, "price_increment": price_increment}
        return self._add_market(Market(
            symbol, row["symbol"], base, quote, Decimal(row["min_trade_increment"]),
            Decimal(row["price_increment"]), Decimal(row.get("min_order_size") or 0), ZERO, row,
            row["id"]))

    # ---------------------------------------------------------------- errors, auth, limits
    def _fail(self, status: int, message: str, code: int | None = None, **extra: Any) -> Fail:
        code = code if code is not None else {401: 40110000, 403: 40310000, 404: 40410000,
                                              422: 40010001, 429: 42910000}.get(status, 40010000)
        return Fail(status, dict(sorted({**extra, "code": code, "message": message}.items())))

    def _internal(self, status: int) -> Fail:
        return self._fail(status, "internal server error occurred", code=50010000)

    def reject_next(self, message: str = "insufficient buying power", status: int = 403,
                    code: int = 40310000, key: str | None = None, **extra: Any) -> None:
        """The next order submission (of `key`) is refused with this answer; nothing is made."""
        with self._lock:
            self._reject.append((key, self._fail(status, message, code, **extra)))

    def _key_of(self, headers: dict[str, str]) -> str | None:
        return headers.get("apca-api-key-id")

    def _auth(self, method: str, path: str, query: str, headers: dict[str, str],
              raw: str) -> Account:
        acct = self.accounts.get(headers.get("apca-api-key-id") or "")
        if acct is None or headers.get("apca-api-secret-key") != acct.secret:
            raise self._fail(401, "request is not authorized")
        return acct

    def _throttle(self, acct: Account | None, handler: str, forced: bool) -> dict[str, str]:
        if acct is None:
            if forced:
                raise self._fail(429, "rate limit exceeded")
            return {}
        now, (start, count) = self.clock(), acct.window
        if now - start >= 60:
            start, count = now, 0
        acct.window = (start, count + 1)
        limit = self.rate_limit_per_minute
        limited = forced or (self.rate_limits and count >= limit)
        heads = {"X-Ratelimit-Limit": str(limit),
                 "X-Ratelimit-Remaining": "0" if limited else str(max(0, limit - count - 1)),
                 "X-Ratelimit-Reset": str(int(start) + 60)}
        if limited:
            raise Fail(429, {"code": 42910000, "message": "rate limit exceeded"}, heads)
        return heads

    # ---------------------------------------------------------------- mechanics
    def _fee_of(self, acct: Account, o: Order, qty: Decimal, price: Decimal) -> tuple[Decimal, str]:
        m = o.market
        if acct.fee_currency == "received" and o.side == "buy":
            return (qty * acct.fee_rate).quantize(m.step, ROUND_HALF_UP), m.base
        return (qty * price * acct.fee_rate).quantize(NANO, ROUND_HALF_UP), m.quote

    def _activity_id(self, ns: int, midnight: bool = False) -> str:
        self._seq += 1
        t = _ny(ns)
        stamp = t.strftime("%Y%m%d") + "000000000" if midnight else \
            f"{t.strftime('%Y%m%d%H%M%S')}{ns // 10**6 % 1000:03d}"
        return f"{stamp}::{uid('alpaca-activity', self._seq)}"

    def _on_fill(self, acct: Account, f: Fill) -> None:
        o = f.order
        status = "filled" if o.state == "filled" else "partially_filled"
        body = {"activity_type": "FILL", "cum_qty": plain(o.filled), "id": self._activity_id(f.ns),
                "leaves_qty": plain(o.target - o.filled), "order_id": o.id,
                "order_status": status, "price": plain(f.price), "qty": plain(f.qty),
                "side": o.side, "symbol": o.market.id, "transaction_time": ts(f.ns, 6),
                "type": "fill" if status == "filled" else "partial_fill", "swap_rate": "1"}
        acct.activities.append((f.ns, self._seq, body))

    def _on_fee(self, acct: Account, f: Fill) -> None:
        m, now = f.order.market, self._tick_us()
        coin = f.fee_currency != "USD"
        body = {"activity_type": "CFEE", "date": _ny(f.ns).date().isoformat(),
                "description": f"Coin Pair Transaction Fee ({'Non USD' if coin else 'USD'})",
                "id": self._activity_id(f.ns, midnight=True),
                "net_amount": "0" if coin else plain(-f.fee), "price": plain(f.price),
                "qty": plain(-f.fee) if coin else "0", "status": "executed",
                "symbol": f"{f.fee_currency if coin else m.base}USD"}
        acct.activities.append((now, self._seq, body))

    def _on_deposit(self, acct: Account, amount: Decimal, currency: str) -> None:
        now = self._tick_us()
        body = {"activity_type": "CSD" if amount > 0 else "CSW", "created_at": ts(now, 6),
                "currency": currency, "date": _ny(now).date().isoformat(),
                "id": self._activity_id(now), "net_amount": plain(amount), "status": "executed"}
        acct.activities.append((now, self._seq, body))

    def _status(self, o: Order) -> str:
        return {"pending": "pending_new", "working": "new", "partial": "partially_filled",
                "filled": "filled", "canceled": "canceled"}[o.state]

    def _mark(self, code: str, acct: Account) -> Decimal:
        m = self._market(f"{code}/USD")
        if m is not None and m.symbol in self.prices:
            return self.prices[m.symbol]
        return acct.basis.get(code, ZERO)

    # ---------------------------------------------------------------- bodies
    def _order_body(self, o: Order) -> dict[str, Any]:  # keys of order-CryptoOrderResponse.json
        avg = plain((o.cost / o.filled).quantize(NANO)) if o.filled else None
        nulls = dict.fromkeys(("expired_at", "failed_at", "hwm", "legs", "limit_price",
                               "replaced_at", "replaced_by", "replaces", "source", "stop_price",
                               "subtag", "trail_percent", "trail_price"))
        return {**nulls, "asset_class": "crypto", "asset_id": o.market.asset_id,
                "canceled_at": ts(o.done_ns) if o.state == "canceled" else None,
                "client_order_id": o.client_id, "created_at": ts(o.created_ns + 24_450),
                "extended_hours": False,
                "filled_at": ts(o.done_ns) if o.state == "filled" else None,
                "filled_avg_price": avg, "filled_qty": plain(o.filled), "id": o.id,
                "notional": None if o.funds is None else plain(o.funds), "order_class": "",
                "order_type": "market", "qty": None if o.size is None else plain(o.size),
                "side": o.side, "status": self._status(o), "submitted_at": ts(o.created_ns),
                "symbol": o.market.id, "time_in_force": o.tif, "type": "market",
                "updated_at": ts(o.updated_ns + 24_493)}

    def _position_body(self, acct: Account, code: str) -> dict[str, Any]:
        qty, avg = acct.balances[code], acct.basis.get(code, ZERO)
        price = self._mark(code, acct)
        mv, cost = qty * price, qty * avg
        pl = mv - cost
        plpc = plain((pl / cost).quantize(Decimal("1e-16"))) if cost else "0"
        m = self._market(f"{code}/USD")
        return {"asset_class": "crypto", "asset_id": m.asset_id if m else uid("alpaca-asset", code),
                "asset_marginable": False, "avg_entry_price": plain(avg), "change_today": "0",
                "cost_basis": plain(cost), "current_price": plain(price), "exchange": "CRYPTO",
                "lastday_price": plain(price), "market_value": plain(mv), "qty": plain(qty),
                "qty_available": plain(qty - self._holds(acct).get(code, ZERO)),
                "side": "long" if qty > 0 else "short", "symbol": f"{code}USD",
                "unrealized_intraday_pl": plain(pl), "unrealized_intraday_plpc": plpc,
                "unrealized_pl": plain(pl), "unrealized_plpc": plpc}

    def _coins(self, acct: Account) -> list[str]:
        return sorted(c for c, q in acct.balances.items() if c != "USD" and q != 0)

    # ---------------------------------------------------------------- routes
    def _assets(self, c: _Ctx) -> tuple[int, Any]:
        cls, status = c.q.get("asset_class"), c.q.get("status")
        return 200, [m.row for m in self.markets.values()
                     if cls in (None, "", m.row.get("class"))
                     and status in (None, "", m.row.get("status"))]

    def _asset(self, c: _Ctx, symbol: str) -> tuple[int, Any]:
        m = self._market(symbol)
        if m is None:
            raise self._fail(404, "asset not found")  # ASSUMED wording
        return 200, m.row

    def _account(self, c: _Ctx) -> tuple[int, Any]:
        acct = c.acct
        assert acct is not None
        long = sum((acct.balances[k] * self._mark(k, acct) for k in self._coins(acct)), ZERO)
        cash = acct.balances.get("USD", ZERO)
        bp, equity = plain(cash - self._holds(acct).get("USD", ZERO)), plain(cash + long)
        zeros = dict.fromkeys(("accrued_fees", "daytrading_buying_power", "initial_margin",
                               "intraday_adjustments", "last_maintenance_margin",
                               "maintenance_margin", "pending_reg_taf_fees",
                               "pending_transfer_in", "short_market_value", "sma"), "0")
        flags = dict.fromkeys(("account_blocked", "pattern_day_trader", "shorting_enabled",
                               "trade_suspended_by_user", "trading_blocked",
                               "transfers_blocked"), False)
        return 200, {  # keys and types of GET_v2_account.response.json (a cash account)
            **zeros, **flags, **dict.fromkeys(("buying_power", "effective_buying_power",
                                               "non_marginable_buying_power",
                                               "options_buying_power", "regt_buying_power"), bp),
            "account_number": f"PA{acct.n:010d}", "admin_configurations": {},
            "balance_asof": _ny(self._ns).date().isoformat(), "bod_dtbp": 0, "cash": plain(cash),
            "created_at": ts(acct.created_ns, 6), "crypto_status": "ACTIVE", "crypto_tier": 1,
            "currency": "USD", "daytrade_count": 0, "equity": equity,
            "id": uid("alpaca-account", acct.n), "last_equity": equity, "long_market_value":
            plain(long), "multiplier": "1", "options_trading_level": 0, "portfolio_value": equity,
            "position_market_value": plain(long), "status": "ACTIVE",
            "user_configurations": None}

    def _positions(self, c: _Ctx) -> tuple[int, Any]:
        assert c.acct is not None
        return 200, [self._position_body(c.acct, k) for k in self._coins(c.acct)]

    def _position(self, c: _Ctx, symbol: str) -> tuple[int, Any]:
        acct = c.acct
        assert acct is not None
        code = self._asset_code(symbol)
        if code.endswith("USD") and code not in acct.balances:
            code = code[:-3]
        if code not in self._coins(acct):
            raise self._fail(404, "position does not exist", code=40410000)
        return 200, self._position_body(acct, code)

    def _post_order(self, c: _Ctx) -> tuple[int, Any]:
        acct, body = c.acct, c.body
        assert acct is not None
        self._pop_reject(acct.key)
        if not isinstance(body, dict):
            raise self._fail(400, "failed to decode request body", code=40010000)
        m = self._market(str(body.get("symbol") or ""))
        if m is None:
            raise self._fail(422, f"asset \"{body.get('symbol')}\" not found")  # ASSUMED wording
        side, tif = body.get("side"), str(body.get("time_in_force") or "")
        if side not in ("buy", "sell"):
            raise self._fail(422, "invalid side")  # ASSUMED wording
        if body.get("type") != "market":
            raise self._fail(501, "sim: only market orders are simulated", code=50110000)
        if tif not in ("gtc", "ioc"):
            raise self._fail(422, "invalid crypto time_in_force", code=42210000)
        if (body.get("qty") is None) == (body.get("notional") is None):
            raise self._fail(422, "exactly one of qty or notional is required")  # ASSUMED
        size = None if body.get("qty") is None else _dec(body["qty"])
        funds = None if body.get("notional") is None else _dec(body["notional"])
        amount = size if body.get("qty") is not None else funds
        if amount is None or amount <= 0:
            raise self._fail(422, "qty must be > 0")  # ASSUMED wording
        if size is not None and size % m.step:
            raise self._fail(422, f"qty must be a multiple of {plain(m.step)}")  # ASSUMED
        cid = str(body.get("client_order_id") or uid("alpaca-client-order", self._orders + 1))
        if len(cid) > 128:
            raise self._fail(422, "client_order_id must be no more than 128 characters")
        if cid in acct.by_client:
            raise self._fail(422, "client_order_id must be unique")
        price = self.prices.get(m.symbol)
        if price is None:
            raise self._fail(501, f"sim: no price for {m.symbol} (call set_price)", code=50110000)
        target = size if size is not None else (amount / price).quantize(m.step, ROUND_DOWN)
        cost = funds if funds is not None else target * price
        if m.min_qty and target < m.min_qty:
            raise self._fail(422, f"qty must be >= {plain(m.min_qty)}")  # ASSUMED wording
        if side == "buy" and m.quote == "USD" and self.min_cost_usd and cost < self.min_cost_usd:
            raise self._fail(403, "cost basis must be >= minimal amount of order "
                             f"{plain(self.min_cost_usd)}")
        if side == "buy":
            need = cost * (1 + acct.fee_rate) if self._buy_fee_in_quote(acct) else cost
            have = self._available(acct, m.quote)
            if need > have and m.quote == "USD":
                raise self._fail(403, "insufficient buying power", buying_power=plain(have),
                                 cost_basis=plain(cost))
            if need > have:
                raise self._fail(403, f"insufficient balance for {m.quote} (requested: "
                                 f"{plain(need)}, available: {plain(have)})", available=plain(have),
                                 balance=plain(acct.balances.get(m.quote, ZERO)), symbol=m.quote)
        else:
            have = self._available(acct, m.base)
            if target > have:
                raise self._fail(403, f"insufficient balance for {m.base} (requested: "
                                 f"{plain(target)}, available: {plain(have)})",
                                 available=plain(have),
                                 balance=plain(acct.balances.get(m.base, ZERO)), symbol=m.base)
        o = self._new_order(acct, m, side, cid, target, size, funds, tif)
        return 200, self._order_body(o)

    def _own(self, acct: Account, order_id: str) -> Order:
        if not _UUID.fullmatch(order_id):
            raise self._fail(422, "order_id is missing")  # Alpaca-API#135 (a non-uuid id)
        o = next((o for o in acct.orders if o.id == order_id), None)
        if o is None:
            raise self._fail(404, "order not found", code=40410000)  # ASSUMED wording
        return o

    def _list_orders(self, c: _Ctx) -> tuple[int, Any]:
        acct = c.acct
        assert acct is not None
        status = c.q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise self._fail(422, "invalid status")  # ASSUMED wording
        limit = c.q.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 500:
            raise self._fail(422, "limit must be between 1 and 500")  # ASSUMED wording
        after, until = self._time_q(c, "after"), self._time_q(c, "until")
        wanted = [s.strip() for s in c.q.get("symbols", "").split(",") if s.strip()]
        symbols = {m.symbol for m in map(self._market, wanted) if m is not None}
        rows = [o for o in acct.orders
                if (status == "all" or o.is_open == (status == "open"))
                and (not wanted or o.market.symbol in symbols)
                and (after is None or o.created_ns > after)
                and (until is None or o.created_ns < until)
                and c.q.get("side", o.side) == o.side]
        rows.sort(key=lambda o: o.n, reverse=c.q.get("direction", "desc").lower() != "asc")
        return 200, [self._order_body(o) for o in rows[:int(limit)]]

    def _get_order(self, c: _Ctx, order_id: str) -> tuple[int, Any]:
        assert c.acct is not None
        return 200, self._order_body(self._own(c.acct, order_id))

    def _get_by_client(self, c: _Ctx) -> tuple[int, Any]:
        assert c.acct is not None
        if not c.q.get("client_order_id"):
            raise self._fail(422, "client_order_id is missing")  # ASSUMED wording
        o = c.acct.by_client.get(c.q["client_order_id"])
        if o is None:
            raise self._fail(404, "order not found", code=40410000)  # ASSUMED wording
        return 200, self._order_body(o)

    def _cancel_order(self, c: _Ctx, order_id: str) -> tuple[int, Any]:
        assert c.acct is not None
        o = self._own(c.acct, order_id)
        if not o.is_open:
            raise self._fail(422, f'order is already in "{self._status(o)}" state', code=42210000)
        self._cancel(o)
        return 204, None

    def _cancel_all(self, c: _Ctx) -> tuple[int, Any]:
        assert c.acct is not None
        ids = [o.id for o in c.acct.orders if o.is_open]
        for o in c.acct.orders:
            if o.is_open:
                self._cancel(o)
        return 207, [{"id": i, "status": 200} for i in ids]  # CanceledOrderResponse.json

    def _activities(self, c: _Ctx, kind: str = "") -> tuple[int, Any]:
        acct = c.acct
        assert acct is not None
        asked = (kind or c.q.get("activity_types", "")).split(",")
        kinds = {k.strip().upper() for k in asked} - {""}
        size = c.q.get("page_size", "100")
        if not size.isdigit() or not 1 <= int(size) <= 100:
            raise self._fail(422, "page_size must be between 1 and 100")  # ASSUMED wording
        after, until = self._time_q(c, "after"), self._time_q(c, "until")
        rows = [(t, s, a) for t, s, a in acct.activities
                if (not kinds or a["activity_type"] in kinds)
                and (after is None or t > after) and (until is None or t < until)]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=c.q.get("direction", "desc").lower() != "asc")
        if c.q.get("page_token"):  # the id of the last activity of the previous page
            at = [i for i, r in enumerate(rows) if r[2]["id"] == c.q["page_token"]]
            if not at:
                raise self._fail(422, "invalid page_token")  # ASSUMED wording
            rows = rows[at[0] + 1:]
        return 200, [a for _, _, a in rows[:int(size)]]

    def _clock(self, c: _Ctx) -> tuple[int, Any]:
        now = _ny(self._ns)
        return 200, {"timestamp": now.isoformat(timespec="microseconds"), "is_open": True,
                     "next_open": (now + timedelta(days=1)).replace(hour=9, minute=30, second=0,
                                                                    microsecond=0).isoformat(),
                     "next_close": now.replace(hour=16, minute=0, second=0,
                                               microsecond=0).isoformat()}

    def _snapshots(self, c: _Ctx, loc: str) -> tuple[int, Any]:
        out: dict[str, Any] = {}
        t = ts(self._ns)
        for s in c.q.get("symbols", "").split(","):
            m = self._market(s.strip()) if s.strip() else None
            if m is None or m.symbol not in self.prices:
                continue
            p = float(self.prices[m.symbol])
            bar = {"c": p, "h": p, "l": p, "n": 0, "o": p, "t": t, "v": 0, "vw": p}
            out[m.id] = {"dailyBar": bar,
                         "latestQuote": {"ap": p, "as": 0, "bp": p, "bs": 0, "t": t},
                         "latestTrade": {"i": self._trades, "p": p, "s": 0, "t": t, "tks": "B"},
                         "minuteBar": bar, "prevDailyBar": bar}
        return 200, {"snapshots": out}


@pytest.fixture
def coinbase_sim() -> Iterator[CoinbaseSim]:
    """`from tests.ccxt_sim import coinbase_sim` in a test module makes this its fixture."""
    with CoinbaseSim() as sim:
        yield sim


@pytest.fixture
def alpaca_ccxt_sim() -> Iterator[AlpacaCcxtSim]:
    with AlpacaCcxtSim() as sim:
        yield sim
