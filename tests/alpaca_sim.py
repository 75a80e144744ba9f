"""A loopback Alpaca Trading API (`/v2`) for tests: the real wire format, a test-driven venue.

Bodies copy the keys and JSON types of the spec's examples (../shared/wire/alpaca): numbers
as strings, null where Alpaca sends null, Go RFC3339Nano timestamps (UTC, trailing zeros
dropped; orders to the nanosecond, activities to the microsecond). Errors are Alpaca's
`{"code", "message"}`, which alpaca-py's `APIError` parses; `ERR_*` say where each comes from.

    with AlpacaSim() as sim:
        sim.add_account("KEY", "SECRET", cash="1000")
        sim.set_price("AAA", "10")
        client = TradingClient("KEY", "SECRET", paper=True, url_override=sim.base_url)

Deterministic: ids are uuid5 of counters; bodies use a simulated clock (`T0`, one tick per
event, `advance_clock`); only the rate-limit window reads `clock` (wall time by default).
Fills: each GET of orders or activities advances that account's open orders one step of their
plan (`partial_steps`, `plan_next`); `fill_on_submit` runs the whole plan inside the POST.
Only market orders are simulated; other spec routes answer 501 (never a real Alpaca answer).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

Q = dict[str, str]  # query parameters (last value wins)
Answer = tuple[int, Any]  # HTTP status, JSON body (None: no body)
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NY = ZoneInfo("America/New_York")  # activity ids start with New York local time
_NS = uuid.UUID("5d0a4b52-7a1e-4c1b-9a55-3f0c2a9e8b10")  # namespace of the sim's uuid5 ids
_TICK = 1_234_567_891  # simulated ns per event
TERMINAL = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})  # wire README
TIFS = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
NANO = Decimal("0.000000001")

# Error answers (status, code, message) and their sources.
ERR_AUTH = (401, 40110000, "request is not authorized")  # alpaca-py#519 (a real APIError)
ERR_BUYING_POWER = (403, 40310000, "insufficient buying power")  # alpaca-py#225; + bp, cost
ERR_QTY = (403, 40310000, "insufficient qty available for order (requested: {r}, available: {a})")
#   ^ Alpaca-API#111, a real body with available/existing_qty/held_for_orders/related_orders
# The spec has no duplicate-id answer: the message is quoted in alpaca-py#260, 422 + 40010001
# as commonly reported (the spec's POST 422 is "Input parameters are not recognized").
ERR_DUPLICATE = (422, 40010001, "client_order_id must be unique")
ERR_NOT_CANCELABLE = (422, 42210000, 'order is already in "{s}" state')  # trading-signals#1079
ERR_BAD_ORDER_ID = (422, 40010001, "order_id is missing")  # Alpaca-API#135 (a non-uuid id)
ERR_NO_POSITION = (404, 40410000, "position does not exist")  # Alpaca-API#215
ERR_BODY = (400, 40010000, "failed to decode request body")  # the spec's tokenization example
# ASSUMED wording (no source found; codes follow Alpaca's status-prefixed scheme):
ERR_ORDER_NOT_FOUND = (404, 40410000, "order not found")
ERR_ASSET_NOT_FOUND = (404, 40410000, "asset not found")
ERR_ROUTE = (404, 40410000, "endpoint not found")
ERR_RATE = (429, 42910000, "rate limit exceeded")  # message as in alpaca-trade-api-csharp#416
ERR_INTERNAL = (500, 50010000, "internal server error occurred")
ERR_COST_MIN = (403, 40310000, "cost basis must be >= 1")  # fractional/notional equity < $1
ERR_INVALID = 422, 40010001  # + a message naming the field, in the style of ERR_BAD_ORDER_ID
ERR_SIM = 501, 50110000  # not simulated


class Fail(Exception):
    """An error answer: HTTP status, Alpaca code, message, extra body keys."""

    def __init__(self, err: tuple[int, int, str], **extra: Any) -> None:
        super().__init__(err[2])
        self.status, self.code, self.message, self.extra = err[0], err[1], err[2], extra

    def body(self) -> dict[str, Any]:
        return dict(sorted({**self.extra, "code": self.code, "message": self.message}.items()))


def invalid(message: str) -> Fail:
    return Fail((*ERR_INVALID, message))


def num(d: Decimal) -> str:
    """Alpaca's number string: plain notation, no exponent, no trailing zeros."""
    s = format(d.normalize(), "f")
    return "0" if s == "-0" else s


def dec(v: Any, name: str) -> Decimal:
    """A number sent as string, int or float (alpaca-py posts floats); at most 9 decimals."""
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise invalid(f"invalid {name}") from None
    if not d.is_finite() or int(d.as_tuple().exponent) < -9:
        raise invalid(f"{name} is limited to 9 decimal places")
    return d


def ts(ns: int | None, digits: int = 9) -> str | None:
    if ns is None:
        return None
    sec, frac = divmod(ns, 10**9)
    base = (_EPOCH + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}"[:digits].rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def parse_time(s: str, name: str) -> int:
    """RFC 3339 (any fraction, Z or an offset) or YYYY-MM-DD, to ns since the epoch."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?)?", s)
    if not m:
        raise invalid(f"invalid {name}")
    day, clock, frac, zone = m.groups()
    dt = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{'' if zone in (None, 'Z') else zone}")
    whole = (dt.replace(tzinfo=dt.tzinfo or UTC) - _EPOCH) // timedelta(seconds=1)
    return whole * 10**9 + int(((frac or "") + "0" * 9)[:9])


def ny(ns: int) -> datetime:
    return (_EPOCH + timedelta(microseconds=ns // 1000)).astimezone(_NY)


def uid(kind: str, n: object) -> str:
    return str(uuid.uuid5(_NS, f"{kind}-{n}"))


@dataclass
class Asset:
    symbol: str  # as orders name it: "AAPL", "BTC/USD"
    asset_class: str  # "us_equity" | "crypto"
    fractionable: bool = True
    exchange: str = "NASDAQ"
    min_order_size: str | None = None
    min_trade_increment: str | None = None
    price_increment: str | None = None
    id: str = field(init=False)
    compact: str = field(init=False)  # positions and the old crypto symbology: "BTCUSD"
    crypto: bool = field(init=False)

    def __post_init__(self) -> None:
        self.id, self.compact = uid("asset", self.symbol), self.symbol.replace("/", "")
        self.crypto = self.asset_class == "crypto"

    @property
    def step(self) -> Decimal:  # the quantity increment of executions
        if self.min_trade_increment:
            return Decimal(self.min_trade_increment)
        return NANO if self.fractionable else Decimal(1)

    def body(self) -> dict[str, Any]:  # keys of the real rows in ccxt's markets/alpaca.json
        c, margin = self.crypto, "100" if self.crypto else "30"
        b: dict[str, Any] = {
            "id": self.id, "class": self.asset_class, "exchange": self.exchange,
            "symbol": self.symbol, "name": self.symbol, "status": "active", "tradable": True,
            "marginable": not c, "maintenance_margin_requirement": int(margin),
            "margin_requirement_long": margin, "margin_requirement_short": margin,
            "shortable": not c, "easy_to_borrow": not c, "fractionable": self.fractionable,
            "attributes": []}
        if c:
            b |= {"min_order_size": self.min_order_size, "price_increment": self.price_increment,
                  "min_trade_increment": self.min_trade_increment}
        return b


_ORDER_NULLS = dict.fromkeys(("hwm", "legs", "limit_price", "replaced_at", "replaced_by",
                              "replaces", "source", "stop_price", "subtag", "trail_percent",
                              "trail_price"))


@dataclass
class Order:
    n: int  # submission counter (the id derives from it)
    key: str
    asset: Asset
    side: str
    tif: str
    client_order_id: str
    submitted_ns: int
    qty: Decimal | None
    notional: Decimal | None
    target: Decimal  # the quantity to fill (notional / price for a notional order)
    plan: list[Decimal]  # cumulative fractions of `target` still to execute, one per step
    status: str
    updated_ns: int
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None

    @property
    def id(self) -> str:
        return uid("order", self.n)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    def body(self) -> dict[str, Any]:  # keys of order-EquityOrderResponse.json
        avg = num((self.cost / self.filled).quantize(NANO)) if self.filled else None
        return {**_ORDER_NULLS,
                "asset_class": self.asset.asset_class, "asset_id": self.asset.id,
                "canceled_at": ts(self.canceled_ns), "client_order_id": self.client_order_id,
                "created_at": ts(self.submitted_ns + 61_503), "expired_at": ts(self.expired_ns),
                "extended_hours": False, "failed_at": ts(self.failed_ns),
                "filled_at": ts(self.filled_ns), "filled_avg_price": avg,
                "filled_qty": num(self.filled), "id": self.id,
                "notional": None if self.notional is None else num(self.notional),
                "order_class": "", "order_type": "market",
                "qty": None if self.qty is None else num(self.qty), "side": self.side,
                "status": self.status, "submitted_at": ts(self.submitted_ns),
                "symbol": self.asset.symbol, "time_in_force": self.tif, "type": "market",
                "updated_at": ts(self.updated_ns)}


@dataclass
class Account:
    key: str
    secret: str
    cash: Decimal
    n: int
    created_ns: int
    positions: dict[str, tuple[Asset, Decimal, Decimal]] = field(default_factory=dict)  # qty, avg
    orders: list[Order] = field(default_factory=list)
    activities: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # ns, seq
    window: tuple[float, int] = (float("-inf"), 0)  # rate-limit window: start, requests
    last_equity: str = "0"  # equity at the previous close: the opening cash here


@dataclass
class SimRequest:
    method: str
    path: str
    query: Q
    body: Any  # the JSON as Python parses it (alpaca-py's floats stay floats)
    raw_body: str
    headers: dict[str, str]  # lower-cased names; APCA-API-SECRET-KEY masked
    key: str | None
    status: int = 0


class AlpacaSim:
    """The server and the venue behind it. Every public method is thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rate_limit_per_minute = 200
        self.partial_steps = 1  # executions per order; 0: orders never fill
        self.fill_on_submit = False  # the whole plan runs inside POST /v2/orders
        self.auto_advance = True  # GETs of orders/activities advance open orders one step
        self.cancel_pending = False  # DELETE leaves pending_cancel; the next step cancels
        self.latency = 0.0  # seconds added to every answer, outside the lock (benchmarks)
        # crypto fees (docs.alpaca.markets/docs/crypto-fees): a buy pays in the coin, a sell
        # in USD, reported only as CFEE activities (no order id), here at once
        self.crypto_fee_rate = Decimal(0)
        self.down = False  # no answer at all: the connection is closed unanswered
        self.down_keys: set[str] = set()  # these accounts' requests hang, then close
        self.hang = 11.0  # seconds a down account's request hangs (past the client timeout)
        self.requests: list[SimRequest] = []
        self.accounts: dict[str, Account] = {}
        self.assets: dict[str, Asset] = {}
        self.prices: dict[str, Decimal] = {}
        self._lock = threading.RLock()
        self._ns = (T0 - _EPOCH) // timedelta(microseconds=1) * 1000
        self._seq = self._orders = 0
        self._plans: list[list[Decimal]] = []
        self._forced_429: list[str | None] = []  # key (None: anyone) per forced answer
        self._fail_after_create: list[int] = []
        self._reject: list[Fail] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.sim = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=f"alpaca-sim{self.base_url[16:]}")
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AlpacaSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- set-up by the test
    def add_account(self, key_id: str, secret: str, cash: str = "100000") -> Account:
        with self._lock:
            acct = Account(key_id, secret, Decimal(cash), len(self.accounts) + 1, self._tick())
            acct.last_equity = num(acct.cash)
            self.accounts[key_id] = acct
            return acct

    def add_asset(self, symbol: str, *, asset_class: str | None = None, fractionable: bool = True,
                  exchange: str | None = None, min_order_size: str | None = None,
                  min_trade_increment: str | None = None,
                  price_increment: str | None = None) -> Asset:
        """Crypto (a `/` in the symbol) gets sim-default minimums unless given."""
        c = (asset_class or ("crypto" if "/" in symbol else "us_equity")) == "crypto"
        asset = Asset(symbol, "crypto" if c else "us_equity", fractionable,
                      exchange or ("CRYPTO" if c else "NASDAQ"),
                      min_order_size or ("0.0001" if c else None),
                      min_trade_increment or ("0.000000001" if c else None),
                      price_increment or ("0.01" if c else None))
        with self._lock:
            self.assets[symbol] = asset
        return asset

    def set_price(self, symbol: str, price: str) -> None:
        """The price of the next executions of `symbol`, and the mark of its positions."""
        with self._lock:
            if self._asset(symbol) is None:
                self.add_asset(symbol)
            self.prices[self._asset(symbol).symbol] = Decimal(price)  # type: ignore[union-attr]

    def plan_next(self, *fractions: str) -> None:
        """The next order fills these fractions of its quantity, one per step. Fractions
        summing below 1 leave it working (partially_filled); no fractions: it never fills."""
        cum, plan = Decimal(0), []
        for f in fractions:
            cum += Decimal(f)
            plan.append(min(cum, Decimal(1)))
        with self._lock:
            self._plans.append(plan)

    def set_position(self, key: str, symbol: str, qty: str, avg_entry_price: str) -> None:
        """A position changed at the venue by hand (no activity, no cash); qty 0 removes it."""
        with self._lock:
            acct, asset = self.accounts[key], self._asset(symbol) or self.add_asset(symbol)
            if Decimal(qty) == 0:
                acct.positions.pop(asset.compact, None)
            else:
                acct.positions[asset.compact] = (asset, Decimal(qty), Decimal(avg_entry_price))

    def deposit(self, key: str, amount: str) -> dict[str, Any]:
        """Cash in (a CSD activity), or out when negative (CSW). Returns the activity."""
        with self._lock:
            acct, now, amt = self.accounts[key], self._activity_time(), Decimal(amount)
            acct.cash += amt
            body = {"activity_type": "CSD" if amt > 0 else "CSW", "created_at": ts(now, 6),
                    "currency": "USD", "date": ny(now).date().isoformat(),
                    "id": self._activity_id(now), "net_amount": num(amt), "status": "executed"}
            acct.activities.append((now, self._seq, body))
            return body

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._ns += int(seconds * 10**9)

    # ---------------------------------------------------------------- fault knobs
    def rate_limit(self, n: int, key: str | None = None) -> None:
        """The next n requests (of `key`, or of anyone) answer 429, Remaining 0."""
        with self._lock:
            self._forced_429 += [key] * n

    def fail_after_create(self, n: int, status: int = 500) -> None:
        """The next n order submissions create the order, then answer `status`."""
        with self._lock:
            self._fail_after_create += [status] * n

    def reject_next(self, message: str = "insufficient buying power", status: int = 403,
                    code: int = 40310000, **extra: Any) -> None:
        """The next order submission is refused with this answer (nothing is created)."""
        with self._lock:
            self._reject.append(Fail((status, code, message), **extra))

    def force_status(self, order_id: str, status: str) -> None:
        """Move an order to any status by hand (expired, rejected, done_for_day, ...)."""
        with self._lock:
            o = self._order_by_id(order_id)
            o.status, o.updated_ns = status, self._tick()
            o.plan = [] if status in TERMINAL else o.plan
            o.expired_ns = o.updated_ns if status == "expired" else o.expired_ns
            o.failed_ns = o.updated_ns if status == "rejected" else o.failed_ns

    def step(self, key: str | None = None) -> None:
        """Advance open orders one step (those of every account when `key` is None)."""
        with self._lock:
            for acct in [self.accounts[key]] if key else list(self.accounts.values()):
                self._advance(acct)

    # ---------------------------------------------------------------- inspection
    def order_posts(self, client_order_id: str | None = None) -> list[SimRequest]:
        """The POST /v2/orders requests received (for this client_order_id)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v2/orders"
                    and (client_order_id is None or (isinstance(r.body, dict)
                         and r.body.get("client_order_id") == client_order_id))]

    def cash(self, key: str) -> Decimal:
        with self._lock:
            return self.accounts[key].cash

    def position_qty(self, key: str, symbol: str) -> Decimal:
        with self._lock:
            asset = self._asset(symbol)
            pos = self.accounts[key].positions.get(asset.compact) if asset else None
            return pos[1] if pos else Decimal(0)

    # ---------------------------------------------------------------- venue mechanics
    def _tick(self) -> int:
        self._ns += _TICK
        return self._ns

    def _activity_time(self) -> int:  # activities keep microseconds only
        return self._tick() // 1000 * 1000

    def _activity_id(self, ns: int) -> str:  # "20220202135509981::<uuid>", New York time
        self._seq += 1
        return f"{ny(ns).strftime('%Y%m%d%H%M%S')}{ns // 10**6 % 1000:03d}::{uid('act', self._seq)}"

    def _asset(self, symbol: str) -> Asset | None:
        s = symbol.upper()
        return next((a for a in self.assets.values() if s in (a.symbol, a.compact, a.id)), None)

    def _order_by_id(self, order_id: str) -> Order:
        found = [o for a in self.accounts.values() for o in a.orders if o.id == order_id]
        if not found:
            raise Fail(ERR_ORDER_NOT_FOUND)
        return found[0]

    def _own_order(self, acct: Account, order_id: str) -> Order:
        try:
            uuid.UUID(order_id)
        except ValueError:
            raise Fail(ERR_BAD_ORDER_ID) from None
        o = self._order_by_id(order_id)
        if o.key != acct.key:
            raise Fail(ERR_ORDER_NOT_FOUND)
        return o

    def _held_for_sells(self, acct: Account, asset: Asset) -> tuple[Decimal, list[str]]:
        sells = [o for o in acct.orders if o.is_open and o.side == "sell" and o.asset is asset]
        return sum((o.target - o.filled for o in sells), Decimal(0)), [o.id for o in sells]

    def _buying_power(self, acct: Account) -> Decimal:  # cash less what open buys will spend
        return acct.cash - sum(((o.target - o.filled) * self.prices[o.asset.symbol]
                                for o in acct.orders if o.is_open and o.side == "buy"), Decimal(0))

    def _mark(self, asset: Asset, avg: Decimal) -> Decimal:
        return self.prices.get(asset.symbol, avg)

    def _advance(self, acct: Account) -> None:
        for o in acct.orders:
            if o.status == "pending_cancel":
                o.status, o.canceled_ns = "canceled", self._tick()
                o.updated_ns = o.canceled_ns
            elif o.is_open and o.plan:
                self._execute(acct, o, o.plan.pop(0))
            elif o.status in ("accepted", "pending_new"):
                o.status, o.updated_ns = "new", self._tick()

    def _execute(self, acct: Account, o: Order, cum_fraction: Decimal) -> None:
        cum = o.target if cum_fraction >= 1 else (o.target * cum_fraction).quantize(
            o.asset.step, rounding=ROUND_DOWN)
        qty = cum - o.filled
        if qty <= 0:  # the step rounds to nothing (whole shares): the order is working
            if o.status in ("accepted", "pending_new"):
                o.status, o.updated_ns = "new", self._tick()
            return
        price, now = self.prices[o.asset.symbol], self._activity_time()
        o.filled, o.cost, o.updated_ns = cum, o.cost + qty * price, now
        o.status = "filled" if o.filled >= o.target else "partially_filled"
        if o.status == "filled":
            o.filled_ns, o.plan = now, []
        sign = 1 if o.side == "buy" else -1
        acct.cash -= sign * qty * price
        _, held, avg = acct.positions.get(o.asset.compact, (o.asset, Decimal(0), price))
        new = held + sign * qty
        if sign > 0 and held >= 0:
            avg = ((held * avg + qty * price) / new).quantize(NANO)
        if new == 0:
            del acct.positions[o.asset.compact]
        else:
            acct.positions[o.asset.compact] = (o.asset, new, avg)
        body = {"activity_type": "FILL", "cum_qty": num(o.filled), "id": self._activity_id(now),
                "leaves_qty": num(o.target - o.filled), "order_id": o.id,
                "order_status": o.status, "price": num(price), "qty": num(qty), "side": o.side,
                "symbol": o.asset.symbol, "transaction_time": ts(now, 6),
                "type": "fill" if o.status == "filled" else "partial_fill"}
        if o.asset.crypto:
            body["swap_rate"] = "1"  # as the real crypto FILL in ccxt's response excerpt has
        acct.activities.append((now, self._seq, body))
        if o.asset.crypto and self.crypto_fee_rate:
            self._crypto_fee(acct, o, qty, price, now)

    def _crypto_fee(self, acct: Account, o: Order, qty: Decimal, price: Decimal,
                    now: int) -> None:
        coin = o.side == "buy"
        fee = (qty * self.crypto_fee_rate).quantize(o.asset.step if coin else NANO,
                                                     rounding=ROUND_DOWN)
        if fee <= 0:
            return
        if coin:
            asset, held, avg = acct.positions[o.asset.compact]
            acct.positions[o.asset.compact] = (asset, held - fee, avg)
        else:
            fee = (qty * price * self.crypto_fee_rate).quantize(NANO, rounding=ROUND_DOWN)
            acct.cash -= fee
        activity_id = self._activity_id(now)
        acct.activities.append((now, self._seq, {
            "activity_type": "CFEE", "date": ny(now).date().isoformat(),
            "description": f"Coin Pair Transaction Fee ({'Non USD' if coin else 'USD'})",
            "id": activity_id, "net_amount": "0" if coin else num(-fee),
            "price": num(price), "qty": num(-fee) if coin else "0", "status": "executed",
            "symbol": o.asset.compact}))

    # ---------------------------------------------------------------- routes
    def _get_account(self, acct: Account, q: Q, body: Any) -> Answer:
        values = [qty * self._mark(a, avg) for a, qty, avg in acct.positions.values()]
        long = sum((v for v in values if v > 0), Decimal(0))
        short = sum((v for v in values if v < 0), Decimal(0))
        bp, equity = num(self._buying_power(acct)), num(acct.cash + long + short)
        zeros = dict.fromkeys(("accrued_fees", "daytrading_buying_power", "initial_margin",
                               "intraday_adjustments", "last_maintenance_margin", "sma",
                               "maintenance_margin", "pending_reg_taf_fees",
                               "pending_transfer_in"), "0")
        flags = dict.fromkeys(("account_blocked", "pattern_day_trader", "shorting_enabled",
                               "trade_suspended_by_user", "trading_blocked",
                               "transfers_blocked"), False)
        return 200, {  # keys and types of GET_v2_account.response.json (a cash account)
            **zeros, **flags, **dict.fromkeys(("buying_power", "effective_buying_power",
                                               "non_marginable_buying_power",
                                               "options_buying_power", "regt_buying_power"), bp),
            "account_number": f"PA{acct.n:010d}", "admin_configurations": {},
            "balance_asof": ny(self._ns).date().isoformat(), "bod_dtbp": 0,
            "cash": num(acct.cash), "created_at": ts(acct.created_ns, 6),
            "crypto_status": "ACTIVE", "crypto_tier": 1, "currency": "USD", "daytrade_count": 0,
            "equity": equity, "id": uid("account", acct.n), "last_equity": acct.last_equity,
            "long_market_value": num(long), "multiplier": "1", "options_trading_level": 0,
            "portfolio_value": equity, "position_market_value": num(long - short),
            "short_market_value": num(short), "status": "ACTIVE", "user_configurations": None}

    def _position(self, acct: Account, asset: Asset, qty: Decimal, avg: Decimal) -> Any:
        price = self._mark(asset, avg)
        mv, cost = qty * price, qty * avg
        pl, held = mv - cost, self._held_for_sells(acct, asset)[0]
        plpc = num((pl / cost).quantize(Decimal("1e-16"))) if cost else "0"
        return {  # keys of Position.json's second example
            "asset_class": asset.asset_class, "asset_id": asset.id,
            "asset_marginable": not asset.crypto, "avg_entry_price": num(avg),
            "change_today": "0", "cost_basis": num(cost), "current_price": num(price),
            "exchange": asset.exchange, "lastday_price": num(price), "market_value": num(mv),
            "qty": num(qty), "qty_available": num(qty - held),
            "side": "long" if qty > 0 else "short", "symbol": asset.compact,
            "unrealized_intraday_pl": num(pl), "unrealized_intraday_plpc": plpc,
            "unrealized_pl": num(pl), "unrealized_plpc": plpc}

    def _get_positions(self, acct: Account, q: Q, body: Any) -> Answer:
        return 200, [self._position(acct, *p) for _, p in sorted(acct.positions.items())]

    def _get_position(self, acct: Account, q: Q, body: Any, symbol: str) -> Answer:
        asset = self._asset(symbol)
        if asset is None or asset.compact not in acct.positions:
            raise Fail(ERR_NO_POSITION)
        return 200, self._position(acct, *acct.positions[asset.compact])

    def _get_asset(self, acct: Account, q: Q, body: Any, symbol: str) -> Answer:
        asset = self._asset(symbol)
        if asset is None:
            raise Fail(ERR_ASSET_NOT_FOUND)
        return 200, asset.body()

    def _post_order(self, acct: Account, q: Q, body: Any) -> Answer:
        if self._reject:
            raise self._reject.pop(0)
        if not isinstance(body, dict):
            raise Fail(ERR_BODY)
        asset = self._asset(str(body.get("symbol") or ""))
        if asset is None:
            raise invalid(f"asset \"{body.get('symbol')}\" not found")
        side, tif = body.get("side"), body.get("time_in_force")
        if side not in ("buy", "sell") or tif not in TIFS:
            raise invalid("invalid side" if tif in TIFS else "invalid time_in_force")
        if body.get("type") != "market":
            raise Fail((*ERR_SIM, "sim: only market orders are simulated"))
        if (body.get("qty") is None) == (body.get("notional") is None):
            raise invalid("exactly one of qty or notional is required")
        qty = None if body.get("qty") is None else dec(body["qty"], "qty")
        notional = None if body.get("notional") is None else dec(body["notional"], "notional")
        size = qty if qty is not None else notional
        if size is None or size <= 0:
            raise invalid(f"{'qty' if qty is not None else 'notional'} must be > 0")
        coid = str(body.get("client_order_id") or uid("client-order", len(self.requests)))
        if len(coid) > 128:
            raise invalid("client_order_id must be no more than 128 characters")
        if any(o.client_order_id == coid for o in acct.orders):
            raise Fail(ERR_DUPLICATE)
        if asset.crypto and tif not in ("gtc", "ioc"):  # the spec's TimeInForce for crypto
            raise invalid("invalid crypto time_in_force")
        fractional = not asset.crypto and (qty is None or qty % 1 != 0)
        if fractional and not asset.fractionable:
            raise invalid(f"asset {asset.symbol} is not fractionable")
        if fractional and tif != "day":  # the spec: notional and fractional are day orders
            raise invalid("fractional orders must be DAY orders")
        price = self.prices.get(asset.symbol)
        if price is None:
            raise Fail((*ERR_SIM, f"sim: no price for {asset.symbol} (call set_price)"))
        target = qty if qty is not None else (size / price).quantize(asset.step, ROUND_DOWN)
        cost = notional if notional is not None else target * price
        if asset.crypto and asset.min_order_size and target < Decimal(asset.min_order_size):
            raise invalid(f"qty must be >= {asset.min_order_size}")
        if fractional and cost < 1:
            raise Fail(ERR_COST_MIN)
        if side == "buy" and cost > self._buying_power(acct):
            raise Fail(ERR_BUYING_POWER, buying_power=num(self._buying_power(acct)),
                       cost_basis=num(cost))
        held = acct.positions.get(asset.compact, (asset, Decimal(0), price))[1]
        pending, related = self._held_for_sells(acct, asset)
        if side == "sell" and target > held - pending:
            raise Fail((ERR_QTY[0], ERR_QTY[1], ERR_QTY[2].format(r=num(target),
                                                                 a=num(held - pending))),
                       available=num(held - pending), existing_qty=num(held),
                       held_for_orders=num(pending), related_orders=related,
                       symbol=asset.symbol)
        now, steps, self._orders = self._tick(), self.partial_steps, self._orders + 1
        plan = self._plans.pop(0) if self._plans else [
            Decimal(i) / steps for i in range(1, steps + 1)]
        o = Order(self._orders, acct.key, asset, side, tif, coid, now, qty, notional, target,
                  plan, "pending_new" if asset.crypto else "accepted", now + 61_503)
        acct.orders.append(o)
        while self.fill_on_submit and o.is_open and o.plan:
            self._execute(acct, o, o.plan.pop(0))
        if self._fail_after_create:
            raise Fail((self._fail_after_create.pop(0), *ERR_INTERNAL[1:]))
        return 200, o.body()

    def _list_orders(self, acct: Account, q: Q, body: Any) -> Answer:
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise invalid("invalid status")
        limit = _int(q, "limit", 50, 500)
        after = parse_time(q["after"], "after") if q.get("after") else None
        until = parse_time(q["until"], "until") if q.get("until") else None
        symbols = {s.strip().replace("/", "").upper() for s in q.get("symbols", "").split(",")}
        rows = [o for o in acct.orders
                if (status == "all" or o.is_open == (status == "open"))
                and (after is None or o.submitted_ns > after)
                and (until is None or o.submitted_ns < until)
                and (symbols == {""} or o.asset.compact in symbols)
                and q.get("side", o.side) == o.side]
        for name, sign in (("after_order_id", 1), ("before_order_id", -1)):
            if q.get(name):
                ref = self._own_order(acct, q[name]).n
                rows = [o for o in rows if (o.n - ref) * sign > 0]
        rows.sort(key=lambda o: (o.submitted_ns, o.n), reverse=_direction(q) == "desc")
        return 200, [o.body() for o in rows[:limit]]

    def _get_order(self, acct: Account, q: Q, body: Any, order_id: str) -> Answer:
        return 200, self._own_order(acct, order_id).body()

    def _get_order_by_client_id(self, acct: Account, q: Q, body: Any) -> Answer:
        if not q.get("client_order_id"):
            raise invalid("client_order_id is missing")
        for o in acct.orders:
            if o.client_order_id == q["client_order_id"]:
                return 200, o.body()
        raise Fail(ERR_ORDER_NOT_FOUND)

    def _cancel_order(self, acct: Account, q: Q, body: Any, order_id: str) -> Answer:
        o = self._own_order(acct, order_id)
        if not o.is_open or o.status == "pending_cancel":
            raise Fail((*ERR_NOT_CANCELABLE[:2], ERR_NOT_CANCELABLE[2].format(s=o.status)))
        o.updated_ns, o.plan = self._tick(), []
        if self.cancel_pending:
            o.status = "pending_cancel"
        else:
            o.status, o.canceled_ns = "canceled", o.updated_ns
        return 204, None

    def _cancel_all(self, acct: Account, q: Q, body: Any) -> Answer:
        ids = [o.id for o in acct.orders if o.is_open and o.status != "pending_cancel"]
        for order_id in ids:
            self._cancel_order(acct, q, body, order_id)
        return 207, [{"id": order_id, "status": 200} for order_id in ids]  # CanceledOrderResponse

    def _activities(self, acct: Account, q: Q, body: Any, kind: str = "") -> Answer:
        if q.get("activity_types") and q.get("category"):
            raise invalid("activity_types and category cannot be used together")
        kinds = {k.strip().upper() for k in (kind or q.get("activity_types", "")).split(",")}
        category, size = q.get("category"), _int(q, "page_size", 100, 100)
        bound = {k: parse_time(q[k], k) for k in ("after", "until", "date") if q.get(k)}
        rows = [(t, s, a) for t, s, a in acct.activities
                if (kinds == {""} or a["activity_type"] in kinds)
                and (category is None or (a["activity_type"] == "FILL")
                     == (category == "trade_activity"))
                and t > bound.get("after", t - 1) and t < bound.get("until", t + 1)
                and ny(t).date().isoformat() == q.get("date", ny(t).date().isoformat())[:10]]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=_direction(q) == "desc")
        if q.get("page_token"):  # the id of the last activity of the previous page
            at = [i for i, r in enumerate(rows) if r[2]["id"] == q["page_token"]]
            if not at:
                raise invalid("invalid page_token")
            rows = rows[at[0] + 1:]
        return 200, [a for _, _, a in rows[:size]]

    # ---------------------------------------------------------------- HTTP
    def handle(self, method: str, raw_path: str, headers: Q, raw_body: str) -> tuple[int, Q, Any]:
        """Answer one request: status, extra headers, JSON body (None: no body)."""
        url = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            parsed: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            parsed = ...
        key = headers.get("apca-api-key-id")
        shown = {k: "***" if k == "apca-api-secret-key" else v for k, v in headers.items()}
        with self._lock:
            rec = SimRequest(method, url.path, query, parsed, raw_body, shown, key)
            self.requests.append(rec)
            acct = self.accounts.get(key or "")
            extra: Q = {}
            try:
                if acct is None or headers.get("apca-api-secret-key") != acct.secret:
                    raise Fail(ERR_AUTH)
                limited, extra = self._rate_window(acct)
                if limited:
                    raise Fail(ERR_RATE)
                if parsed is ...:
                    raise Fail(ERR_BODY)
                body = json.loads(raw_body, parse_float=Decimal) if raw_body else None
                rec.status, answer = self._route(acct, method, url.path, query, body)
            except Fail as fail:
                rec.status, answer = fail.status, fail.body()
            return rec.status, extra, answer

    def _rate_window(self, acct: Account) -> tuple[bool, Q]:
        forced = next((i for i, k in enumerate(self._forced_429) if k in (None, acct.key)), None)
        if forced is not None:
            del self._forced_429[forced]
        now, (start, count) = self.clock(), acct.window
        if now - start >= 60:
            start, count = now, 0
        acct.window = (start, count + 1)
        left = 0 if forced is not None else max(0, self.rate_limit_per_minute - count - 1)
        return forced is not None or count >= self.rate_limit_per_minute, {
            "X-Ratelimit-Limit": str(self.rate_limit_per_minute),
            "X-Ratelimit-Remaining": str(left), "X-Ratelimit-Reset": str(int(start) + 60)}

    def _route(self, acct: Account, method: str, path: str, q: Q, body: Any) -> Answer:
        joined = "\x00".join(unquote(p) for p in path.split("/"))  # "%2F" stays in its segment
        known = False
        for verb, pattern, name in _ROUTES:
            m = re.fullmatch(pattern, joined)
            known = known or m is not None
            if m and verb == method:
                if self.auto_advance and name in _ADVANCING:
                    self._advance(acct)
                return getattr(self, name)(acct, q, body, *m.groups())  # type: ignore[no-any-return]
        if known or path in _UNSIMULATED:
            raise Fail((*ERR_SIM, f"sim: {method} {path} is not simulated"))
        raise Fail(ERR_ROUTE)


def _int(q: Q, name: str, default: int, maximum: int) -> int:
    raw = q.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise invalid(f"{name} must be between 1 and {maximum}")
    return int(raw)


def _direction(q: Q) -> str:
    d = q.get("direction", "desc").lower()
    if d not in ("asc", "desc"):
        raise invalid("invalid direction")
    return d


_S = "([^\x00]+)"  # one path segment (segments are joined by NUL)
_ROUTES = [
    ("GET", "\x00v2\x00account", "_get_account"),
    ("GET", "\x00v2\x00positions", "_get_positions"),
    ("GET", f"\x00v2\x00positions\x00{_S}", "_get_position"),
    ("GET", f"\x00v2\x00assets\x00{_S}", "_get_asset"),
    ("POST", "\x00v2\x00orders", "_post_order"),
    ("GET", "\x00v2\x00orders", "_list_orders"),
    ("DELETE", "\x00v2\x00orders", "_cancel_all"),
    ("GET", "\x00v2\x00orders:by_client_order_id", "_get_order_by_client_id"),
    ("GET", f"\x00v2\x00orders\x00{_S}", "_get_order"),
    ("DELETE", f"\x00v2\x00orders\x00{_S}", "_cancel_order"),
    ("GET", "\x00v2\x00account\x00activities", "_activities"),
    ("GET", f"\x00v2\x00account\x00activities\x00{_S}", "_activities"),
]
_UNSIMULATED = {"/v2/assets", "/v2/clock", "/v2/calendar", "/v2/watchlists",
                "/v2/account/configurations", "/v2/account/portfolio/history"}
_ADVANCING = {"_list_orders", "_get_order", "_get_order_by_client_id", "_activities"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients at once (bench/bench_venues.py)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-connection (the crash tests) is not the server's error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's connection serves many requests
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stall per answer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:  # the client died mid-request: it never arrived whole
            self.close_connection = True
            return
        raw = data.decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        sim: AlpacaSim = self.server.sim  # type: ignore[attr-defined]
        if sim.down or headers.get("apca-api-key-id") in sim.down_keys:
            if not sim.down:
                time.sleep(sim.hang)
            self.close_connection = True
            return
        if sim.latency:
            time.sleep(sim.latency)
        status, extra, body = sim.handle(self.command, self.path, headers, raw)
        text = "" if body is None else json.dumps(body, separators=(",", ":"), sort_keys=True)
        data = text.encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json; charset=UTF-8", **extra,
                     "Content-Length": str(len(data))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def alpaca_sim() -> Iterator[AlpacaSim]:
    """`from tests.alpaca_sim import alpaca_sim` in a test module makes this its fixture."""
    with AlpacaSim() as sim:
        yield sim
