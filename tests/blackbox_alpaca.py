"""An independent loopback Alpaca Trading API (/v2) server for black-box tests.

Written from ../shared/wire/alpaca/trading-api.json and its examples only (not from
vanta's own simulator). Numbers are strings in every body; every body carries all keys of
the matching example. Orders are market orders that move on their own clock: each GET by
the account advances every open order of it by one step, accepted -> new ->
partially_filled (seeded random pieces) ... -> filled, unless ``hold`` is set.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

D = Decimal
Q9 = D("0.000000001")


def s(x: Decimal) -> str:
    """Alpaca-style decimal text (no exponent)."""
    t = format(x.normalize(), "f")
    return t


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@dataclass
class Asset:
    symbol: str  # as Alpaca names it in orders: AAPL, BTC/USD
    asset_class: str  # us_equity | crypto
    price: Decimal  # the venue's own fill price
    fractionable: bool = True
    min_order_size: str | None = None
    min_trade_increment: str | None = None
    price_increment: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def position_symbol(self) -> str:
        return self.symbol.replace("/", "")


@dataclass
class Order:
    body: dict[str, Any]
    pieces: list[Decimal]  # quantities still to fill, in order
    key: str
    step: int = 0
    race: bool = False


@dataclass
class Account:
    key_id: str
    secret: str
    cash: Decimal
    positions: dict[str, Decimal] = field(default_factory=dict)  # position symbol -> qty
    cost: dict[str, Decimal] = field(default_factory=dict)  # position symbol -> cost basis
    orders: list[Order] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    rng: random.Random = field(default_factory=random.Random)
    minute_hits: list[float] = field(default_factory=list)


class AlpacaBlackbox:
    CRYPTO_FEE = D("0.0025")  # 25 bps taker, tier 1

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.assets: dict[str, Asset] = {}
        self.log: list[dict[str, Any]] = []  # every request
        self.hold = False  # orders do not advance
        self.storm = 0  # the next N requests answer 429
        self.storm_paths: tuple[str, ...] = ()  # only these path prefixes (empty: all)
        self.fail_after_create = 0  # the next N order POSTs create, then answer 500
        self.post_event = threading.Event()  # set at the first order POST
        self.post_delay = 0.0  # seconds to sleep after a POST is handled (kill window)
        self.clock = datetime.now(UTC).replace(microsecond=0)
        self.slow_posts = 0  # the next N order POSTs answer after slow_delay seconds
        self.slow_delay = 12.0
        self.pieces_max = 3  # an order fills in 1..pieces_max pieces
        self.cfee_delay: timedelta | None = None  # CFEE activities appear this much later
        self.cancel_race = False
        self.raced = 0
        self.old_fill_symbols = False  # FILL activities name crypto BTCUSD (old symbology)  # DELETE -> pending_cancel, then the venue fills it anyway  # noqa: E501
        self._act_n = 0
        self.unknown: list[str] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ---- set-up -----------------------------------------------------------------------
    def add_account(self, key_id: str, secret: str, cash: str) -> Account:
        acct = Account(key_id, secret, D(cash))
        acct.rng = random.Random(f"{self.seed}/{key_id}")
        self.accounts[key_id] = acct
        return acct

    def add_asset(self, asset: Asset) -> None:
        self.assets[asset.symbol] = asset

    def set_clock(self, t: datetime) -> None:
        with self.lock:
            self.clock = t

    def now(self) -> datetime:
        self.clock += timedelta(milliseconds=7)
        return self.clock

    def find_asset(self, sym: str) -> Asset | None:
        sym = unquote(sym)
        if sym in self.assets:
            return self.assets[sym]
        for a in self.assets.values():
            if sym in (a.position_symbol, a.id):
                return a
        return None

    # ---- hand-made changes ------------------------------------------------------------
    def hand_adjust(self, key_id: str, symbol: str, delta: str) -> None:
        """A position changed outside any order (e.g. a journal of shares): JNLS."""
        with self.lock:
            acct = self.accounts[key_id]
            a = self.find_asset(symbol)
            assert a is not None
            ps = a.position_symbol
            old = acct.positions.get(ps, D(0))
            new = old + D(delta)
            if old:
                acct.cost[ps] = acct.cost[ps] * new / old
            else:
                acct.cost[ps] = new * a.price
            acct.positions[ps] = new
            if not new:
                del acct.positions[ps]
                del acct.cost[ps]
            self._activity(acct, {"activity_type": "JNLS", "activity_sub_type": None,
                                  "net_amount": "0", "qty": s(D(delta)), "symbol": ps,
                                  "per_share_amount": None, "currency": "USD",
                                  "status": "executed"}, nontrade=True)

    def seed_position(self, key_id: str, symbol: str, qty: str, price: str) -> None:
        """A position the account held before it was onboarded."""
        a = self.find_asset(symbol)
        assert a is not None
        acct = self.accounts[key_id]
        acct.positions[a.position_symbol] = D(qty)
        acct.cost[a.position_symbol] = D(qty) * D(price)

    def deposit(self, key_id: str, amount: str) -> None:
        with self.lock:
            acct = self.accounts[key_id]
            acct.cash += D(amount)
            self._activity(acct, {"activity_type": "CSD", "activity_sub_type": None,
                                  "net_amount": s(D(amount)), "qty": None, "symbol": None,
                                  "per_share_amount": None, "currency": "USD",
                                  "status": "executed",
                                  "description": "ACH deposit"}, nontrade=True)

    # ---- model ------------------------------------------------------------------------
    def _activity(self, acct: Account, body: dict[str, Any], nontrade: bool = False,
                  delay: timedelta | None = None) -> None:
        t = self.now()
        if delay is not None:
            t = t + delay
        self._act_n += 1
        aid = t.strftime("%Y%m%d%H%M%S") + f"{t.microsecond // 1000:03d}" + "::" + str(
            uuid.UUID(int=acct.rng.getrandbits(128)))
        body = dict(body)
        body["id"] = aid
        if nontrade:
            body["date"] = t.strftime("%Y-%m-%d")
            body["created_at"] = iso(t)
        else:
            body["transaction_time"] = iso(t)
        body["_t"] = t
        acct.activities.append(body)

    def equity(self, acct: Account) -> Decimal:
        mv = D(0)
        for ps, q in acct.positions.items():
            a = self.find_asset(ps)
            assert a is not None
            mv += q * a.price
        return acct.cash + mv

    def _split(self, acct: Account, qty: Decimal, inc: Decimal) -> list[Decimal]:
        n = acct.rng.randint(1, self.pieces_max)
        if n == 1 or qty <= inc * n:
            return [qty]
        units = int(qty / inc)
        cuts = sorted(acct.rng.sample(range(1, units), n - 1))
        pieces, prev = [], 0
        for c in [*cuts, units]:
            pieces.append(inc * (c - prev))
            prev = c
        rest = qty - sum(pieces)
        pieces[-1] += rest
        return pieces

    def _advance(self, acct: Account) -> None:
        if self.hold:
            return
        for o in acct.orders:
            b = o.body
            if b["status"] in ("filled", "canceled", "expired", "rejected", "replaced"):
                continue
            o.step += 1
            if o.race:  # the cancel came too late: the rest fills
                rest = D(b["qty"]) - D(b["filled_qty"])
                o.pieces = []
                o.race = False
                self.raced += 1
                if rest > 0:
                    self._fill(acct, o, rest)
                continue
            if b["status"] == "accepted":
                b["status"] = "new"
                b["updated_at"] = iso(self.now())
                continue
            if not o.pieces:
                continue
            piece = o.pieces.pop(0)
            self._fill(acct, o, piece)

    def _fill(self, acct: Account, o: Order, piece: Decimal) -> None:
        b = o.body
        a = self.find_asset(b["symbol"])
        assert a is not None
        # the venue's own price moves by a cent between pieces
        price = a.price + D("0.01") * len([x for x in acct.activities
                                           if x.get("order_id") == b["id"]])
        filled = D(b["filled_qty"]) + piece
        prev_avg = D(b["filled_avg_price"] or "0")
        avg = (prev_avg * D(b["filled_qty"]) + price * piece) / filled
        b["filled_qty"] = s(filled)
        b["filled_avg_price"] = s(avg.quantize(D("0.0000000001")))
        leaves = D(b["qty"]) - filled
        t = self.now()
        b["status"] = "filled" if leaves == 0 else "partially_filled"
        if leaves == 0:
            b["filled_at"] = iso(t)
        b["updated_at"] = iso(t)
        ps = a.position_symbol
        notional = piece * price
        held = acct.positions.get(ps, D(0))
        if b["side"] == "buy":
            acct.cash -= notional
            acct.positions[ps] = held + piece
            acct.cost[ps] = acct.cost.get(ps, D(0)) + notional
        else:
            acct.cash += notional
            new = held - piece
            if held:
                acct.cost[ps] = acct.cost.get(ps, D(0)) * new / held
            acct.positions[ps] = new
        self._activity(acct, {"activity_type": "FILL", "cum_qty": s(filled),
                              "leaves_qty": s(leaves), "order_id": b["id"],
                              "order_status": b["status"], "price": s(price),
                              "qty": s(piece), "side": b["side"],
                              "symbol": ps if self.old_fill_symbols else b["symbol"],
                              "type": "fill" if leaves == 0 else "partial_fill"})
        if a.asset_class == "crypto":
            # Alpaca charges crypto fees apart (CFEE): a buy pays in the coin, a sell in USD.
            if b["side"] == "buy":
                fee = (piece * self.CRYPTO_FEE).quantize(Q9, ROUND_DOWN)
                acct.positions[ps] -= fee
                self._activity(acct, {"activity_type": "CFEE", "activity_sub_type": None,
                                      "net_amount": "0", "qty": s(-fee), "symbol": ps,
                                      "price": s(price), "per_share_amount": None,
                                      "currency": "USD", "status": "executed",
                                      "description": "Coin Pair Transaction Fee (Non USD)",
                                      "order_id": b["id"]}, nontrade=True,
                               delay=self.cfee_delay)
            else:
                fee = (notional * self.CRYPTO_FEE).quantize(D("0.01"), ROUND_DOWN)
                acct.cash -= fee
                self._activity(acct, {"activity_type": "CFEE", "activity_sub_type": None,
                                      "net_amount": s(-fee), "qty": None, "symbol": ps,
                                      "price": s(price), "per_share_amount": None,
                                      "currency": "USD", "status": "executed",
                                      "description": "Coin Pair Transaction Fee (USD)",
                                      "order_id": b["id"]}, nontrade=True,
                               delay=self.cfee_delay)
        if acct.positions.get(ps) == 0:
            del acct.positions[ps]
            acct.cost.pop(ps, None)

    def step(self, key_id: str, n: int = 1) -> None:
        """Advance the account's open orders by n steps even while held."""
        with self.lock:
            hold, self.hold = self.hold, False
            try:
                for _ in range(n):
                    self._advance(self.accounts[key_id])
            finally:
                self.hold = hold

    def executions(self, key_id: str) -> list[dict[str, Any]]:
        return [x for x in self.accounts[key_id].activities if x["activity_type"] == "FILL"]

    def fees(self, key_id: str) -> list[dict[str, Any]]:
        return [x for x in self.accounts[key_id].activities if x["activity_type"] == "CFEE"]

    def order_posts(self, key_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.log if r["method"] == "POST" and r["path"] == "/v2/orders"
                and (key_id is None or r["key"] == key_id)]

    # ---- bodies -----------------------------------------------------------------------
    def account_body(self, acct: Account) -> dict[str, Any]:
        eq = self.equity(acct)
        lmv = eq - acct.cash
        return {
            "account_blocked": False, "account_number": "PA" + acct.id[:10].upper(),
            "accrued_fees": "0", "admin_configurations": {}, "balance_asof": self.clock.strftime("%Y-%m-%d"),  # noqa: E501
            "bod_dtbp": "0", "buying_power": s(acct.cash), "cash": s(acct.cash),
            "created_at": "2023-01-01T18:20:20.272275Z", "crypto_status": "ACTIVE",
            "crypto_tier": 1, "currency": "USD", "daytrade_count": 0,
            "daytrading_buying_power": "0", "effective_buying_power": s(acct.cash),
            "equity": s(eq), "id": acct.id, "initial_margin": "0",
            "intraday_adjustments": "0", "last_equity": s(eq), "last_maintenance_margin": "0",
            "long_market_value": s(lmv), "maintenance_margin": "0", "multiplier": "1",
            "non_marginable_buying_power": s(acct.cash), "options_buying_power": s(acct.cash),
            "options_trading_level": 0, "pattern_day_trader": False,
            "pending_reg_taf_fees": "0", "pending_transfer_in": "0",
            "portfolio_value": s(eq), "position_market_value": s(lmv),
            "regt_buying_power": s(acct.cash), "short_market_value": "0",
            "shorting_enabled": False, "sma": "0", "status": "ACTIVE",
            "trade_suspended_by_user": False, "trading_blocked": False,
            "transfers_blocked": False, "user_configurations": None,
        }

    def position_body(self, acct: Account, ps: str) -> dict[str, Any]:
        a = self.find_asset(ps)
        assert a is not None
        q = acct.positions[ps]
        cost = acct.cost.get(ps, D(0))
        mv = q * a.price
        avg = cost / q if q else D(0)
        return {
            "asset_class": a.asset_class, "asset_id": a.id,
            "asset_marginable": a.asset_class == "us_equity",
            "avg_entry_price": s(avg.quantize(D("0.0001"))), "change_today": "0",
            "cost_basis": s(cost.quantize(D("0.0001"))), "current_price": s(a.price),
            "exchange": "CRYPTO" if a.asset_class == "crypto" else "NASDAQ",
            "lastday_price": s(a.price), "market_value": s(mv.quantize(D("0.0001"))),
            "qty": s(q), "qty_available": s(q), "side": "long", "symbol": ps,
            "unrealized_intraday_pl": "0", "unrealized_intraday_plpc": "0",
            "unrealized_pl": s((mv - cost).quantize(D("0.0001"))),
            "unrealized_plpc": "0",
        }

    def asset_body(self, a: Asset) -> dict[str, Any]:
        b: dict[str, Any] = {
            "id": a.id, "class": a.asset_class,
            "exchange": "CRYPTO" if a.asset_class == "crypto" else "NASDAQ",
            "symbol": a.symbol, "name": a.symbol, "status": "active", "tradable": True,
            "marginable": a.asset_class == "us_equity", "shortable": False,
            "easy_to_borrow": False, "fractionable": a.fractionable,
            "maintenance_margin_requirement": 100, "margin_requirement_long": "100",
            "margin_requirement_short": "100", "attributes": [],
        }
        if a.asset_class == "crypto":
            b["min_order_size"] = a.min_order_size
            b["min_trade_increment"] = a.min_trade_increment
            b["price_increment"] = a.price_increment
        return b

    def public_order(self, o: Order) -> dict[str, Any]:
        return dict(o.body)

    # ---- request handling -------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        key = headers.get("APCA-API-KEY-ID")
        sec = headers.get("APCA-API-SECRET-KEY")
        with self.lock:
            entry: dict[str, Any] = {"method": method, "path": path, "query": q, "key": key,
                                     "t": time.monotonic(), "wall": time.time()}
            try:
                entry["body"] = json.loads(body) if body else None
            except ValueError:
                entry["body"] = body.decode("latin-1")
            self.log.append(entry)
            acct = self.accounts.get(key or "")
            if acct is None or acct.secret != sec:
                entry["answer"] = 401
                return 401, {}, {"code": 40110000, "message": "request is not authorized"}
            # rate limit: 200 requests / minute per account, and storms on demand
            nowm = time.monotonic()
            acct.minute_hits = [h for h in acct.minute_hits if nowm - h < 60]
            reset = str(int(time.time()) + 1)
            storm = self.storm > 0 and (not self.storm_paths or any(
                path.startswith(p) for p in self.storm_paths))
            if storm or len(acct.minute_hits) >= 200:
                if storm:
                    self.storm -= 1
                entry["answer"] = 429
                entry["reset"] = int(reset)
                return 429, {"X-Ratelimit-Limit": "200", "X-Ratelimit-Remaining": "0",
                             "X-Ratelimit-Reset": reset}, {
                    "code": 42910000, "message": "rate limit exceeded"}
            acct.minute_hits.append(nowm)
            rl = {"X-Ratelimit-Limit": "200",
                  "X-Ratelimit-Remaining": str(200 - len(acct.minute_hits)),
                  "X-Ratelimit-Reset": reset}
            if method == "GET":
                self._advance(acct)
            code, out = self._route(acct, method, path, q, entry["body"])
            entry["answer"] = code
            return code, rl, out

    def _route(self, acct: Account, method: str, path: str, q: dict[str, str],
               body: Any) -> tuple[int, Any]:
        nf = {"code": 40410000, "message": "resource not found"}
        if path == "/v2/account" and method == "GET":
            return 200, self.account_body(acct)
        if path == "/v2/positions" and method == "GET":
            return 200, [self.position_body(acct, ps) for ps in sorted(acct.positions)]
        if path.startswith("/v2/positions/") and method == "GET":
            a = self.find_asset(path[len("/v2/positions/"):])
            if a is None or a.position_symbol not in acct.positions:
                return 404, {"code": 40410000, "message": "position does not exist"}
            return 200, self.position_body(acct, a.position_symbol)
        if path.startswith("/v2/assets/") and method == "GET":
            a = self.find_asset(path[len("/v2/assets/"):])
            if a is None:
                return 404, {"code": 40410000, "message": "asset not found"}
            return 200, self.asset_body(a)
        if path == "/v2/orders" and method == "POST":
            return self._create(acct, body)
        if path == "/v2/orders" and method == "GET":
            return self._list_orders(acct, q)
        if path == "/v2/orders" and method == "DELETE":
            out = []
            for o in acct.orders:
                if o.body["status"] not in ("filled", "canceled", "expired", "rejected",
                                            "pending_cancel"):
                    self._cancel(o)
                    out.append({"id": o.body["id"], "status": 200})
            return 207, out
        if path == "/v2/orders:by_client_order_id" and method == "GET":
            cid = q.get("client_order_id", "")
            for o in acct.orders:
                if o.body["client_order_id"] == cid:
                    return 200, self.public_order(o)
            return 404, {"code": 40410000, "message": "order not found"}
        if path.startswith("/v2/orders/"):
            oid = path[len("/v2/orders/"):]
            order = next((o for o in acct.orders if o.body["id"] == oid), None)
            if order is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if method == "GET":
                return 200, self.public_order(order)
            if method == "DELETE":
                if order.body["status"] in ("filled", "canceled", "expired", "rejected",
                                            "pending_cancel"):
                    return 422, {"code": 42210000, "message": "order is not cancelable"}
                self._cancel(order)
                return 204, None
        if path.startswith("/v2/account/activities") and method == "GET":
            return self._activities(acct, path, q)
        self.unknown.append(f"{method} {path}")
        return 404, nf

    def _cancel(self, o: Order) -> None:
        t = iso(self.now())
        if self.cancel_race:
            o.body["status"] = "pending_cancel"
            o.body["updated_at"] = t
            o.race = True
            return
        o.body["status"] = "canceled"
        o.body["canceled_at"] = t
        o.body["updated_at"] = t
        o.pieces = []

    def _create(self, acct: Account, body: Any) -> tuple[int, Any]:
        def bad(msg: str, code: int = 40010000) -> tuple[int, Any]:
            return 422, {"code": code, "message": msg}

        if not isinstance(body, dict):
            return bad("invalid body")
        sym = body.get("symbol")
        a = self.find_asset(sym) if isinstance(sym, str) else None
        if a is None:
            return bad(f"asset \"{sym}\" not found")
        side = body.get("side")
        if side not in ("buy", "sell"):
            return bad("invalid side")
        if body.get("type", body.get("order_type")) != "market":
            return bad("this test venue expects market orders")
        tif = body.get("time_in_force")
        if a.asset_class == "crypto":
            if tif not in ("gtc", "ioc"):
                return bad("invalid crypto time_in_force")
        elif tif not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            return bad("invalid time_in_force")
        if ("qty" in body and body["qty"] is not None) == (
                "notional" in body and body["notional"] is not None):
            return bad("qty or notional is required, not both")
        raw = body.get("qty")
        if raw is None:
            return bad("this test venue expects qty")
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            return bad("qty is invalid")
        try:
            qty = D(str(raw))
        except Exception:
            return bad("qty is invalid")
        if not qty.is_finite() or qty <= 0:
            return bad("qty must be > 0")
        if isinstance(raw, float):
            # a float posted by a client is recorded; it is what alpaca-py would do
            body["_float_qty"] = True
        if -qty.as_tuple().exponent > 9:  # type: ignore[operator]
            return bad("qty must be in increments of 0.000000001")
        if a.asset_class == "us_equity":
            if qty != qty.to_integral_value():
                if not a.fractionable:
                    return bad("fractional orders are not supported for this asset", 40310000)
                if tif != "day":
                    return bad("fractional orders must be DAY orders")
                if qty * a.price < 1:
                    return 403, {"code": 40310000, "message": "cost basis must be >= 1"}
        else:
            inc = D(a.min_trade_increment or "0.000000001")
            if qty % inc != 0:
                return bad(f"qty must be in increments of {a.min_trade_increment}")
            if a.min_order_size and qty < D(a.min_order_size):
                return 403, {"code": 40310000,
                             "message": f"qty must be >= {a.min_order_size}"}
            if qty * a.price < 10:
                return 403, {"code": 40310000, "message": "cost basis must be >= minimal amount of order 10"}  # noqa: E501
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(cid, str) or len(cid) > 128:
            return bad("client_order_id must be no more than 128 characters")
        if any(o.body["client_order_id"] == cid for o in acct.orders):
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        ps = a.position_symbol
        if side == "buy":
            working = sum((D(o.body["qty"]) - D(o.body["filled_qty"])) * a2.price
                          for o in acct.orders
                          if o.body["side"] == "buy" and o.body["status"] in (
                              "accepted", "new", "partially_filled")
                          for a2 in [self.find_asset(o.body["symbol"])] if a2)
            cost = qty * a.price  # a crypto buy pays its fee in the coin
            if cost + working > acct.cash:
                return 403, {"code": 40310000, "message": "insufficient buying power"}
        else:
            held = acct.positions.get(ps, D(0))
            pending = sum(D(o.body["qty"]) - D(o.body["filled_qty"]) for o in acct.orders
                          if o.body["side"] == "sell" and o.body["symbol"] == a.symbol
                          and o.body["status"] in ("accepted", "new", "partially_filled"))
            if qty > held - pending:
                return 403, {"code": 40310000,
                             "message": f"insufficient qty available for order (requested: {s(qty)}, available: {s(held - pending)})"}  # noqa: E501
        t = iso(self.now())
        ob = {
            "asset_class": a.asset_class, "asset_id": a.id, "canceled_at": None,
            "client_order_id": cid, "created_at": t, "expired_at": None,
            "extended_hours": False, "failed_at": None, "filled_at": None,
            "filled_avg_price": None, "filled_qty": "0", "hwm": None,
            "id": str(uuid.UUID(int=acct.rng.getrandbits(128))), "legs": None,
            "limit_price": None, "notional": None, "order_class": "", "order_type": "market",
            "qty": s(qty), "replaced_at": None, "replaced_by": None, "replaces": None,
            "side": side, "source": None, "status": "accepted", "stop_price": None,
            "submitted_at": t, "subtag": None, "symbol": a.symbol, "time_in_force": tif,
            "trail_percent": None, "trail_price": None, "type": "market", "updated_at": t,
        }
        inc = D(a.min_trade_increment or "1") if a.asset_class == "crypto" else (
            D(1) if qty == qty.to_integral_value() else Q9)
        order = Order(ob, self._split(acct, qty, inc), acct.key_id)
        acct.orders.append(order)
        self.post_event.set()
        if self.fail_after_create > 0:
            self.fail_after_create -= 1
            return 500, {"code": 50010000, "message": "internal server error"}
        return 200, self.public_order(order)

    def _list_orders(self, acct: Account, q: dict[str, str]) -> tuple[int, Any]:
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            return 422, {"code": 40010000, "message": "invalid status"}
        try:
            limit = int(q.get("limit", "50"))
        except ValueError:
            return 422, {"code": 40010000, "message": "invalid limit"}
        if limit < 1 or limit > 500:
            return 422, {"code": 40010000, "message": "limit must be <= 500"}
        direction = q.get("direction", "desc")
        out = []
        for o in acct.orders:
            st = o.body["status"]
            is_open = st not in ("filled", "canceled", "expired", "rejected", "replaced")
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            sub = o.body["submitted_at"]
            if "after" in q and not sub > _norm(q["after"]):
                continue
            if "until" in q and not sub < _norm(q["until"]):
                continue
            if "symbols" in q:
                want = set(q["symbols"].split(","))
                if o.body["symbol"] not in want and o.body["symbol"].replace("/", "") not in want:
                    continue
            if "side" in q and o.body["side"] != q["side"]:
                continue
            out.append(self.public_order(o))
        out.sort(key=lambda b: b["submitted_at"], reverse=direction == "desc")
        return 200, out[:limit]

    def _activities(self, acct: Account, path: str, q: dict[str, str]) -> tuple[int, Any]:
        rest = path[len("/v2/account/activities"):].strip("/")
        if rest:
            types = {rest}
        elif "activity_types" in q:
            types = set(q["activity_types"].split(","))
        else:
            types = None
        try:
            size = int(q.get("page_size", "100"))
        except ValueError:
            return 422, {"code": 40010000, "message": "invalid page_size"}
        if size < 1 or size > 100:
            return 422, {"code": 40010000, "message": "page_size must be between 1 and 100"}
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            return 422, {"code": 40010000, "message": "invalid direction"}
        rows = [x for x in acct.activities if x["_t"] <= self.clock + timedelta(seconds=5)]
        rows = [x for x in rows if types is None or x["activity_type"] in types
                or ("TRANS" in types and x["activity_type"] in ("CSD", "CSW"))]
        if "after" in q:
            after = _parse(q["after"])
            rows = [x for x in rows if x["_t"] > after]
        if "until" in q:
            until = _parse(q["until"])
            rows = [x for x in rows if x["_t"] < until]
        rows.sort(key=lambda x: x["id"], reverse=direction == "desc")
        if "page_token" in q:
            tok = q["page_token"]
            rows = [x for x in rows if (x["id"] > tok if direction == "asc" else x["id"] < tok)]
        page = rows[:size]
        return 200, [{k: v for k, v in x.items() if not k.startswith("_")} for x in page]

    # ---- server -----------------------------------------------------------------------
    def start(self) -> str:
        sim = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _go(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                code, hdrs, out = sim.handle(self.command, self.path, self.headers, body)
                data = b"" if out is None else json.dumps(out).encode()
                if self.command == "POST" and sim.post_delay:
                    time.sleep(sim.post_delay)  # the order exists; its answer is late
                elif self.command == "POST" and sim.slow_posts > 0:
                    sim.slow_posts -= 1
                    time.sleep(sim.slow_delay)
                self.send_response(code)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                if out is not None:
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = _go

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _parse(v: str) -> datetime:
    v = v.strip()
    if len(v) == 10:
        return datetime.fromisoformat(v).replace(tzinfo=UTC)
    return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC)


def _norm(v: str) -> str:
    return iso(_parse(v))
