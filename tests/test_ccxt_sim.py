"""The loopback ccxt venues (tests/ccxt_sim.py) driven by the real ccxt 4.5.90 —
`ccxt.coinbaseexchange` and `ccxt.alpaca`, synchronous — checked against the request shapes
and markets ccxt's own static tests record (../shared/wire/ccxt)."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest

from tests.ccxt_sim import WIRE_MARKETS, AlpacaCcxtSim, CoinbaseSim, point_at

WIRE = WIRE_MARKETS.parent  # ../shared/wire/ccxt
pytestmark = pytest.mark.skipif(not WIRE.exists(), reason="needs the shared wire data")
CB_KEY, CB_SECRET, CB_PASS = "cb-key-1", CoinbaseSim.new_secret(1), "pass-1"
AL_KEY, AL_SECRET = "PKCCXT1", "alpaca-secret-1"


# ---------------------------------------------------------------- helpers
def wire(kind: str, exchange: str) -> Any:
    return json.loads((WIRE / kind / f"{exchange}.json").read_text())


def wire_request(exchange: str, method: str, description: str) -> dict[str, Any]:
    cases = wire("request", exchange)["methods"][method]
    return next(c for c in cases if c["description"] == description)  # type: ignore[no-any-return]


def coinbase(sim: CoinbaseSim, key: str = CB_KEY, secret: str = CB_SECRET,
             password: str = CB_PASS, **config: Any) -> ccxt.coinbaseexchange:
    ex = ccxt.coinbaseexchange({"apiKey": key, "secret": secret, "password": password,
                                "enableRateLimit": False, "timeout": 5000, **config})
    ex.set_sandbox_mode(True)  # swaps urls['api']: point_at must come after it
    return point_at(ex, sim.base_url)


def alpaca(sim: AlpacaCcxtSim, key: str = AL_KEY, secret: str = AL_SECRET,
           **config: Any) -> ccxt.alpaca:
    ex = ccxt.alpaca({"apiKey": key, "secret": secret, "enableRateLimit": False,
                      "timeout": 5000, **config})
    ex.set_sandbox_mode(True)
    return point_at(ex, sim.base_url)


def cid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def cb() -> Iterator[CoinbaseSim]:
    with CoinbaseSim(products=("BTC-USD", "BTC-USDT", "ETH-USDT", "ETH-USD")) as sim:
        sim.add_account(CB_KEY, CB_SECRET, passphrase=CB_PASS, cash="10000", fee_rate="0.006")
        sim.set_price("BTC/USD", "50000")
        sim.set_price("ETH/USD", "2500")
        yield sim


@pytest.fixture
def al() -> Iterator[AlpacaCcxtSim]:
    with AlpacaCcxtSim(assets=("BTC/USD", "ETH/USD", "LTC/USD", "BTC/USDT")) as sim:
        sim.add_account(AL_KEY, AL_SECRET, cash="10000", fee_rate="0.0025")
        sim.set_price("BTC/USD", "50000")
        sim.set_price("ETH/USD", "2500")
        yield sim


# ---------------------------------------------------------------- point_at
def test_point_at_replaces_scheme_and_host_of_every_api_url() -> None:
    class Fake:
        urls: ClassVar[dict[str, Any]] = {"api": {"public": "https://api.{hostname}", "ws": "wss://ws.x.com:443/v1/feed",
                        "nested": {"a": ["https://data.{hostname}/v2", 7]}}}

    point_at(Fake, "http://127.0.0.1:9/")
    assert Fake.urls["api"] == {"public": "http://127.0.0.1:9", "ws": "http://127.0.0.1:9/v1/feed",
                                "nested": {"a": ["http://127.0.0.1:9/v2", 7]}}
    ex = point_at(ccxt.alpaca(), "http://127.0.0.1:9")
    assert set(ex.urls["api"].values()) == {"http://127.0.0.1:9"}  # broker, trader, market


# ==================================================================== Coinbase Exchange
def test_cb_load_markets_matches_the_wire_markets(cb: CoinbaseSim) -> None:
    ex = coinbase(cb)
    ex.load_markets()
    expected = wire("markets", "coinbaseexchange")
    for symbol in ("BTC/USD", "BTC/USDT", "ETH/USDT"):
        got, want = ex.markets[symbol], expected[symbol]
        assert got["id"] == want["id"] and got["info"] == want["info"]
        assert got["precision"] == want["precision"]
        assert got["limits"]["amount"] == want["limits"]["amount"]
        assert got["limits"]["cost"] == want["limits"]["cost"]
    assert ex.markets["ETH/USD"]["precision"] == {"amount": 1e-8, "price": 0.01}  # made-up row
    assert [(r.method, r.path, r.key) for r in cb.requests] == [
        ("GET", "/currencies", None), ("GET", "/products", None)]  # public: no key sent
    assert urlsplit(wire_request("coinbaseexchange", "fetchCurrencies", "fetchCurrencies")["url"]
                    ).path == "/currencies"


def test_cb_create_order_sends_the_wire_shape(cb: CoinbaseSim) -> None:
    ex = coinbase(cb)
    oid = cid()
    order = ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"client_oid": oid})
    post = cb.order_posts(oid)
    assert len(post) == 1
    want = wire_request("coinbaseexchange", "createOrder", "Spot market buy")
    assert post[0].path == urlsplit(want["url"]).path == "/orders"
    assert {**post[0].body, "client_oid": None} == {
        **json.loads(want["output"]), "product_id": "BTC-USD", "size": "0.01", "client_oid": None}
    assert post[0].body["client_oid"] == oid
    assert {"cb-access-key", "cb-access-sign", "cb-access-timestamp",
            "cb-access-passphrase"} <= set(post[0].headers)
    assert post[0].headers["cb-access-sign"] == "***"  # recorded masked
    assert (order["status"], order["clientOrderId"], order["filled"]) == ("open", oid, 0.0)
    assert order["info"]["status"] == "pending"
    # `clientOrderId` is mapped to client_oid too; a sell has the wire's sell shape
    oid2 = cid()
    cb.set_position(CB_KEY, "BTC", "0.01")
    ex.create_order("BTC/USD", "market", "sell", 0.002, None, {"clientOrderId": oid2})
    sell = json.loads(wire_request("coinbaseexchange", "createOrder", "Spot market sell")["output"])
    assert set(cb.order_posts(oid2)[0].body) == {*sell, "client_oid"}
    # a surprise: a market order given a price is sent as `funds` = amount × price, not `size`
    ex.create_order("BTC/USD", "market", "buy", 0.01, 50000, {"client_oid": cid()})
    assert cb.requests[-1].body["funds"] == "500" and "size" not in cb.requests[-1].body


def test_cb_partial_fills_over_two_polls_trades_fees_and_balance(cb: CoinbaseSim) -> None:
    cb.configure(CB_KEY, fill_parts=2)
    ex = coinbase(cb)
    oid = cid()
    order = ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"client_oid": oid})
    first = ex.fetch_order(order["id"])  # poll 1: the first execution
    assert (first["status"], first["filled"], first["info"]["status"]) == ("open", 0.005, "open")
    second = ex.fetch_order(None, None, {"clientOrderId": oid})  # poll 2, by client id
    assert cb.requests[-1].path == f"/orders/client:{oid}"
    assert (second["id"], second["status"], second["filled"]) == (order["id"], "closed", 0.01)
    assert second["fee"] == {"cost": 3.0, "currency": "USD", "rate": None}  # fill_fees
    assert second["info"]["done_reason"] == "filled"
    trades = ex.fetch_my_trades("BTC/USD")
    want = wire_request("coinbaseexchange", "fetchMyTrades", "Spot fetch my trades")
    assert (cb.requests[-1].path, cb.requests[-1].raw_query) == ("/fills", "product_id=BTC-USD")
    assert urlsplit(want["url"]).path == "/fills" and "product_id=" in urlsplit(want["url"]).query
    assert len(trades) == 2 and len({t["id"] for t in trades}) == 2
    for t in trades:
        assert (t["order"], t["amount"], t["price"], t["side"]) == (
            order["id"], 0.005, 50000, "buy")
        assert t["fee"] == {"cost": 1.5, "currency": "USD", "rate": 0.006}  # always the quote
        assert t["takerOrMaker"] == "taker" and t["info"]["liquidity"] == "T"
    balance = ex.fetch_balance()
    assert balance["USD"]["total"] == 10000 - 500 - 3 and balance["BTC"]["total"] == 0.01
    assert cb.balance(CB_KEY, "USD") == Decimal("9497")
    assert len(cb.order_posts(oid)) == 1


def test_cb_open_orders_hold_funds_cancel_and_status_filters(cb: CoinbaseSim) -> None:
    cb.configure(CB_KEY, fill_parts=0)  # never fills
    ex = coinbase(cb)
    order = ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"client_oid": cid()})
    usd = ex.fetch_balance()["USD"]
    assert (usd["used"], usd["free"]) == (503.0, 10000 - 503.0)  # cost + 0.6% fee on hold
    assert [o["id"] for o in ex.fetch_open_orders()] == [order["id"]]
    assert cb.requests[-1].raw_query == ""  # Coinbase's default: open, pending, active
    canceled = ex.cancel_order(order["id"], "BTC/USD")
    req = cb.requests[-1]
    want = wire_request("coinbaseexchange", "cancelOrder", "Cancel spot order")
    assert (req.method, req.path) == ("DELETE", f"/orders/{order['id']}")
    assert json.loads(want["output"]) == {"product_id": "XRP/USDT"}  # ccxt sends the symbol...
    assert req.body == {"product_id": "BTC/USD"}  # ...in a JSON body, as the wire file says
    # Coinbase answers the id as a JSON string; ccxt hands back the raw text, quotes included
    assert canceled["info"] == f'"{order["id"]}"' and canceled["id"] is None
    assert ex.fetch_order(order["id"])["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound, match="Order already done"):
        ex.cancel_order(order["id"])
    assert ex.fetch_open_orders() == []
    assert [o["id"] for o in ex.fetch_closed_orders()] == [order["id"]]
    assert parse_qs(cb.requests[-1].raw_query) == {"status": ["done"]}
    assert [o["id"] for o in ex.fetch_orders()] == [order["id"]]
    assert parse_qs(cb.requests[-1].raw_query) == {"status": ["all"]}
    cb.purge_canceled_unfilled = True  # "might return the status code 404"
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(order["id"])


def test_cb_fills_page_by_trade_id_with_cb_after(cb: CoinbaseSim) -> None:
    cb.add_account("cb-key-2", CB_SECRET, passphrase=CB_PASS, cash="100000")
    ex = coinbase(cb, key="cb-key-2")
    ids = [ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": cid()})["id"]
           for _ in range(5)]
    cb.step("cb-key-2")
    pages: list[list[int]] = []
    cursor = None
    while True:
        params = {} if cursor is None else {"after": cursor}
        page = ex.fetch_my_trades("BTC/USD", None, 2, params)
        if not page:
            break
        trade_ids = [int(t["id"]) for t in page]
        assert trade_ids == sorted(trade_ids)  # ccxt re-sorts each page oldest first
        cursor = ex.last_response_headers["CB-AFTER"]
        assert cursor == str(min(trade_ids))  # the venue pages newest first
        pages.append(trade_ids)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert all(min(a) > max(b) for a, b in itertools.pairwise(pages))  # older and older
    assert sorted(t for p in pages for t in p) == sorted(f.trade_id for f in cb.fills("cb-key-2"))
    assert {f.order.id for f in cb.fills("cb-key-2")} == set(ids)
    assert [t["order"] for t in ex.fetch_order_trades(ids[0])] == [ids[0]]  # GET /fills?order_id


def test_cb_429_storm_then_success_and_the_documented_burst() -> None:
    with CoinbaseSim(products=("BTC-USD",), clock=lambda: 1000.0) as sim:  # no refill
        sim.add_account(CB_KEY, CB_SECRET, passphrase=CB_PASS)
        ex = coinbase(sim)
        ex.load_markets()  # public: not counted against the key
        sim.rate_limit(2, CB_KEY)
        for _ in range(2):
            with pytest.raises(ccxt.RateLimitExceeded):
                ex.fetch_balance()
        assert sim.requests[-1].status == 429
        for _ in range(30):  # the private burst: 30 (forced 429s take no tokens)
            ex.fetch_balance()
        with pytest.raises(ccxt.RateLimitExceeded, match="Private rate limit exceeded"):
            ex.fetch_balance()
        sim.rate_limits = False
        assert ex.fetch_balance()["USD"]["total"] == 100000


def test_cb_5xx_after_create_leaves_the_order_at_the_venue(cb: CoinbaseSim) -> None:
    ex = coinbase(cb)
    oid = cid()
    cb.fail_after_create(1, status=503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"client_oid": oid})
    found = ex.fetch_order(None, None, {"client_oid": oid})
    assert found["clientOrderId"] == oid and found["amount"] == 0.01
    assert len(cb.order_posts(oid)) == 1 and len(cb.orders_with_client_id(CB_KEY, oid)) == 1


def test_cb_duplicate_and_invalid_client_oid(cb: CoinbaseSim) -> None:
    ex = coinbase(cb)
    oid = cid()
    ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": oid})
    with pytest.raises(ccxt.ExchangeError, match="duplicate client_oid") as exc:
        ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": oid})
    assert not isinstance(exc.value, ccxt.NetworkError)
    assert len(cb.orders_with_client_id(CB_KEY, oid)) == 1 and len(cb.order_posts(oid)) == 2
    cb.duplicate_client_oid = "accept"  # what Coinbase's old docs describe
    ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": oid})
    assert len(cb.orders_with_client_id(CB_KEY, oid)) == 2
    with pytest.raises(ccxt.ExchangeError, match="Invalid client_oid"):  # must be a UUID
        ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": "vb-1"})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USD", "market", "buy", 1, None, {"client_oid": cid()})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USD", "market", "sell", 1, None, {"client_oid": cid()})


def test_cb_authentication_failures(cb: CoinbaseSim) -> None:
    with pytest.raises(ccxt.AuthenticationError, match="Invalid API Key"):
        coinbase(cb, key="nobody").fetch_balance()
    assert cb.requests[-1].status == 400  # as observed; ccxt maps the message
    with pytest.raises(ccxt.AuthenticationError, match="Invalid Passphrase"):
        coinbase(cb, password="wrong").fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="invalid signature"):
        coinbase(cb, secret=CoinbaseSim.new_secret(2)).fetch_balance()
    cb.auth_status = 401
    with pytest.raises(ccxt.AuthenticationError):  # by status this time
        coinbase(cb, key="nobody").fetch_balance()
    assert cb.requests[-1].status == 401
    with pytest.raises(ccxt.OrderNotFound, match="order not found"):
        coinbase(cb).cancel_order(cid())
    assert coinbase(cb).fetch_balance()["USD"]["total"] == 10000


def test_cb_never_charges_fees_in_the_base_currency(cb: CoinbaseSim) -> None:
    with pytest.raises(ValueError, match="quote"):
        cb.configure(CB_KEY, fee_currency="base")


# ==================================================================== Alpaca
def test_al_load_markets_calls_assets_only_and_matches_the_wire(al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    ex.load_markets()
    assert [(r.method, r.path, r.query) for r in al.requests] == [
        ("GET", "/v2/assets", {"asset_class": "crypto", "status": "active"})]
    expected = wire("markets", "alpaca")
    for symbol in ("BTC/USD", "ETH/USD", "LTC/USD", "BTC/USDT"):
        got, want = ex.markets[symbol], expected[symbol]
        assert got["id"] == want["id"] and got["info"] == want["info"]
        assert got["precision"] == want["precision"]
        assert got["limits"]["amount"]["min"] == want["limits"]["amount"]["min"]
    # ccxt 4.5.90 adds a $10 floor for USD-quoted crypto (the wire file predates it)
    assert ex.markets["BTC/USD"]["limits"]["cost"]["min"] == 10
    assert ex.markets["BTC/USDT"]["limits"]["cost"]["min"] is None


def test_al_create_order_sends_the_wire_shape(al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    order = ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-a1"})
    post = al.order_posts("vb-a1")
    want = wire_request("alpaca", "createOrder", "Spot market sell")
    assert post[0].path == urlsplit(want["url"]).path == "/v2/orders"
    assert post[0].body == {**json.loads(want["output"]), "side": "buy", "client_order_id": "vb-a1"}
    assert post[0].headers["apca-api-secret-key"] == "***"
    assert (order["clientOrderId"], order["status"], order["info"]["status"]) == (
        "vb-a1", "open", "pending_new")
    al.set_position(AL_KEY, "BTC", "0.01", "40000")
    ex.create_order("BTC/USD", "market", "sell", 0.001, None, {"client_order_id": "vb-a2"})
    assert al.order_posts("vb-a2")[0].body["client_order_id"] == "vb-a2"  # raw name works too
    ex.create_order("BTC/USD", "market", "buy", 0.001)
    assert al.requests[-1].body["client_order_id"].startswith("ccxt_")  # ccxt's own default


def test_al_partial_fills_and_lookup_by_client_id(al: AlpacaCcxtSim) -> None:
    al.configure(AL_KEY, fill_parts=2)
    ex = alpaca(al)
    order = ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "vb-p1"})
    first = ex.fetch_order(order["id"])
    assert (first["status"], first["filled"], first["info"]["status"]) == (
        "open", 0.005, "partially_filled")
    assert urlsplit(wire_request("alpaca", "fetchOrder", "Fetch order")["url"]).path.startswith(
        "/v2/orders/") and al.requests[-1].path == f"/v2/orders/{order['id']}"
    second = ex.fetch_order(order["id"])
    assert (second["status"], second["filled"], second["average"]) == ("closed", 0.01, 50000)
    assert second["fee"] is None  # crypto orders carry no commission
    # ccxt's alpaca fetch_order takes venue ids only: find a client id by listing
    listed = ex.fetch_open_orders("BTC/USD") + ex.fetch_closed_orders("BTC/USD")
    assert [o["id"] for o in listed if o["clientOrderId"] == "vb-p1"] == [order["id"]]
    wanted = urlsplit(wire_request("alpaca", "fetchClosedOrders", "Spot closed orders")["url"])
    assert al.requests[-1].raw_query == wanted.query.replace("LTC%2FUSDT", "BTC%2FUSD")
    # the venue's own lookup is reachable through ccxt's generic request()
    raw = ex.request("v2/orders:by_client_order_id", ["trader", "private"], "GET",
                     {"client_order_id": "vb-p1"})
    assert raw["id"] == order["id"] and raw["filled_qty"] == "0.01"
    assert len(al.order_posts("vb-p1")) == 1


def test_al_fees_are_cfee_activities_in_the_received_asset(al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "vb-f1"})
    trades = ex.fetch_my_trades("BTC/USD")
    assert al.requests[-1].path == "/v2/account/activities/FILL"
    assert len(trades) == 1 and trades[0]["amount"] == 0.01 and trades[0]["price"] == 50000
    assert trades[0]["fee"] == {"cost": None, "currency": None}  # ccxt reads FILL only
    fees = ex.traderPrivateGetV2AccountActivitiesActivityType({"activity_type": "CFEE"})
    assert [(f["symbol"], f["qty"], f["net_amount"], f["price"]) for f in fees] == [
        ("BTCUSD", "-0.000025", "0", "50000")]  # a buy pays in the coin
    assert "order_id" not in fees[0] and fees[0]["description"].endswith("(Non USD)")
    balance = ex.fetch_balance()
    assert balance["BTC"]["total"] == 0.009975 and balance["USD"]["total"] == 9500
    ex.create_order("BTC/USD", "market", "sell", 0.005, None, {"clientOrderId": "vb-f2"})
    ex.fetch_order(al.orders(AL_KEY)[-1].id)  # a poll: it fills
    fees = ex.traderPrivateGetV2AccountActivitiesActivityType({"activity_type": "CFEE"})
    assert (fees[0]["net_amount"], fees[0]["qty"]) == ("-0.625", "0")  # a sell pays in USD
    assert al.balance(AL_KEY, "USD") == Decimal("9500") + 250 - Decimal("0.625")
    assert al.balance(AL_KEY, "BTC") == Decimal("0.004975")


def test_al_quote_fees_posted_at_end_of_day(al: AlpacaCcxtSim) -> None:
    al.configure(AL_KEY, fee_currency="quote", fee_posting="eod")
    ex = alpaca(al)
    ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "vb-e1"})
    ex.fetch_my_trades("BTC/USD")  # a poll: it fills
    cfee = {"activity_type": "CFEE"}
    assert ex.traderPrivateGetV2AccountActivitiesActivityType(cfee) == []
    assert al.balance(AL_KEY, "USD") == 9500 and al.balance(AL_KEY, "BTC") == Decimal("0.01")
    assert al.post_fees(AL_KEY) == 1
    fees = ex.traderPrivateGetV2AccountActivitiesActivityType(cfee)
    assert [(f["net_amount"], f["description"]) for f in fees] == [
        ("-1.25", "Coin Pair Transaction Fee (USD)")]
    assert ex.fetch_balance()["USD"]["total"] == 9500 - 1.25


def test_al_cancel_order(al: AlpacaCcxtSim) -> None:
    al.configure(AL_KEY, fill_parts=0)
    ex = alpaca(al)
    order = ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-c1"})
    want = wire_request("alpaca", "cancelOrder", "Cancel order")
    canceled = ex.cancel_order(order["id"])
    req = al.requests[-1]
    assert (req.method, req.path, req.status) == ("DELETE", f"/v2/orders/{order['id']}", 204)
    assert urlsplit(want["url"]).path.startswith("/v2/orders/")
    assert canceled["info"] == "" and canceled["id"] is None  # 204: ccxt parses nothing
    assert ex.fetch_order(order["id"])["status"] == "canceled"
    with pytest.raises(ccxt.BadRequest, match="already in"):
        ex.cancel_order(order["id"])


def test_al_business_rejects_and_how_ccxt_classifies_them(al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    with pytest.raises(ccxt.ExchangeNotAvailable) as exc:  # a NetworkError: "retryable"!
        ex.create_order("BTC/USD", "market", "buy", 1, None, {"clientOrderId": "vb-r1"})
    assert '"code":40310000' in str(exc.value) and "insufficient buying power" in str(exc.value)
    assert al.requests[-1].status == 403 and al.orders(AL_KEY) == []
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance for BTC"):
        ex.create_order("BTC/USD", "market", "sell", 0.01, None, {"clientOrderId": "vb-r2"})
    with pytest.raises(ccxt.InvalidOrder, match="cost basis must be >= minimal amount of order 10"):
        ex.create_order("BTC/USD", "market", "buy", 0.0001, None, {"clientOrderId": "vb-r3"})
    ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-r4"})
    with pytest.raises(ccxt.BadRequest, match="client_order_id must be unique"):
        ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-r4"})
    assert len(al.orders_with_client_id(AL_KEY, "vb-r4")) == 1
    assert al.requests[-1].status == 422


def test_al_401_is_permission_denied_in_ccxt(al: AlpacaCcxtSim) -> None:
    with pytest.raises(ccxt.PermissionDenied, match="request is not authorized") as exc:
        alpaca(al, secret="wrong").fetch_balance()
    assert type(exc.value) is ccxt.PermissionDenied  # (a subclass of AuthenticationError)
    assert al.requests[-1].status == 401


def test_al_429_storm_then_success_with_rate_headers() -> None:
    with AlpacaCcxtSim(assets=("BTC/USD",), clock=lambda: 1000.0) as sim:
        sim.add_account(AL_KEY, AL_SECRET)
        ex = alpaca(sim)
        ex.load_markets()
        sim.rate_limit(2, AL_KEY)
        for _ in range(2):
            with pytest.raises(ccxt.RateLimitExceeded):
                ex.fetch_balance()
            assert ex.last_response_headers["X-Ratelimit-Remaining"] == "0"
        assert ex.last_response_headers["X-Ratelimit-Reset"] == "1060"
        assert ex.fetch_balance()["USD"]["total"] == 100000
        assert ex.last_response_headers["X-Ratelimit-Limit"] == "200"
        sim.rate_limit_per_minute = 5  # 5 in this window so far, 429s included: the next is out
        with pytest.raises(ccxt.RateLimitExceeded):
            ex.fetch_balance()


def test_al_5xx_after_create_leaves_the_order_at_the_venue(al: AlpacaCcxtSim) -> None:
    al.configure(AL_KEY, fill_parts=0)
    ex = alpaca(al)
    al.fail_after_create(1)
    with pytest.raises(ccxt.ExchangeNotAvailable, match="internal server error"):
        ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-5"})
    listed = ex.fetch_open_orders("BTC/USD")
    assert [o["clientOrderId"] for o in listed] == ["vb-5"]
    assert len(al.order_posts("vb-5")) == 1


def test_al_hand_made_positions_and_deposits(al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    al.set_position(AL_KEY, "ETH", "2", "2000")
    al.deposit(AL_KEY, "500")
    balance = ex.fetch_balance()
    assert balance["ETH"]["total"] == 2 and balance["USD"]["total"] == 10500
    positions = balance["info"]["positions"]
    assert [(p["symbol"], p["qty"], p["market_value"], p["avg_entry_price"])
            for p in positions] == [("ETHUSD", "2", "5000", "2000")]
    assert balance["info"]["account"]["equity"] == "15500"
    csd = ex.traderPrivateGetV2AccountActivitiesActivityType({"activity_type": "CSD"})
    assert [(a["activity_type"], a["net_amount"]) for a in csd] == [("CSD", "500")]
    assert ex.fetch_ticker("ETH/USD")["last"] == 2500  # market data host, same server


def test_plans_venue_cancels_rejects_and_fill_on_submit(cb: CoinbaseSim,
                                                        al: AlpacaCcxtSim) -> None:
    ex = alpaca(al)
    al.plan_next(AL_KEY, "0.5")  # half, then it stays working
    order = ex.create_order("BTC/USD", "market", "buy", 0.01, None, {"clientOrderId": "vb-k1"})
    for _ in range(3):
        assert ex.fetch_order(order["id"])["info"]["status"] == "partially_filled"
    al.venue_cancel(order["id"])
    final = ex.fetch_order(order["id"])
    assert (final["status"], final["filled"], final["info"]["canceled_at"] is not None) == (
        "canceled", 0.005, True)
    al.reject_next("new orders are rejected by user request")
    with pytest.raises(ccxt.PermissionDenied):  # ccxt's broad match on that message
        ex.create_order("BTC/USD", "market", "buy", 0.001, None, {"clientOrderId": "vb-k2"})
    assert al.orders_with_client_id(AL_KEY, "vb-k2") == []
    cb.fill_on_submit = True
    done = coinbase(cb).create_order("BTC/USD", "market", "buy", 0.001, None, {"client_oid": cid()})
    assert (done["status"], done["filled"], done["info"]["done_reason"]) == (
        "closed", 0.001, "filled")


# ==================================================================== both venues
def _client(sim: CoinbaseSim | AlpacaCcxtSim, **config: Any) -> Any:
    return coinbase(sim, **config) if isinstance(sim, CoinbaseSim) else alpaca(sim, **config)


def _submit(ex: Any, client_id: str) -> Any:
    key = "client_oid" if isinstance(ex, ccxt.coinbaseexchange) else "clientOrderId"
    return ex.create_order("BTC/USD", "market", "buy", 0.001, None, {key: client_id})


@pytest.fixture(params=["coinbase", "alpaca"])
def venue(request: pytest.FixtureRequest, cb: CoinbaseSim,
          al: AlpacaCcxtSim) -> CoinbaseSim | AlpacaCcxtSim:
    return cb if request.param == "coinbase" else al


def test_down_hang_times_out_refuse_fails_fast_then_recovery(
        venue: CoinbaseSim | AlpacaCcxtSim) -> None:
    ex = _client(venue, timeout=300)
    ex.load_markets()
    venue.set_down("hang")
    with pytest.raises(ccxt.RequestTimeout):
        ex.fetch_balance()
    venue.set_up()
    assert ex.fetch_balance()["USD"]["total"] == 10000
    venue.set_down("refuse")
    with pytest.raises(ccxt.NetworkError) as exc:
        ex.fetch_balance()
    assert not isinstance(exc.value, ccxt.RequestTimeout | ccxt.ExchangeNotAvailable)
    with pytest.raises(ccxt.NetworkError):  # a new connection is refused too
        _client(venue, timeout=300).fetch_balance()
    venue.set_up()
    assert ex.fetch_balance()["USD"]["total"] == 10000  # same base_url again


def test_hang_after_create_times_out_but_the_order_exists(
        venue: CoinbaseSim | AlpacaCcxtSim) -> None:
    ex = _client(venue, timeout=300)
    ex.load_markets()
    client_id = cid()
    venue.hang_after_create(1)
    with pytest.raises(ccxt.RequestTimeout):
        _submit(ex, client_id)
    venue.set_up()
    assert [o.client_id for o in venue.orders(CB_KEY if isinstance(venue, CoinbaseSim)
                                              else AL_KEY)] == [client_id]
    assert len(venue.order_posts(client_id)) == 1


def test_latency_is_added_to_every_request(venue: CoinbaseSim | AlpacaCcxtSim) -> None:
    ex = _client(venue)
    ex.load_markets()
    venue.latency = 0.05
    start = time.monotonic()
    ex.fetch_balance()
    assert time.monotonic() - start >= 0.05


def test_many_concurrent_clients_one_order_per_client_id(
        venue: CoinbaseSim | AlpacaCcxtSim) -> None:
    accounts, threads = 48, 12
    keys = [f"bench-{i}" for i in range(accounts)]
    for k in keys:
        venue.add_account(k, CB_SECRET if isinstance(venue, CoinbaseSim) else AL_SECRET,
                          passphrase=CB_PASS, cash="1000", fill_parts=2)
    errors: list[BaseException] = []
    done: dict[str, str] = {}

    def work(mine: list[str]) -> None:
        try:
            ex = _client(venue)
            ex.load_markets()
            for k in mine:  # one client per thread, re-keyed per account
                ex.apiKey = k
                client_id = cid()
                order = _submit(ex, client_id)
                ex.fetch_order(order["id"])
                assert ex.fetch_order(order["id"])["status"] == "closed"
                done[client_id] = k
        except BaseException as e:  # reported below
            errors.append(e)

    pool = [threading.Thread(target=work, args=(keys[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert errors == [] and len(done) == accounts
    for client_id, k in done.items():
        assert len(venue.order_posts(client_id)) == 1
        assert len(venue.orders_with_client_id(k, client_id)) == 1
        assert venue.balance(k, "BTC") > 0
