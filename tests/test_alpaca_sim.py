"""The loopback Alpaca sim, driven by the real alpaca-py `TradingClient` (and raw `requests`
where alpaca-py has no method), checked against the spec's schemas and example bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import (
    AssetClass,
    AssetExchange,
    OrderSide,
    OrderStatus,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import Order, TradeActivity
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from tests.alpaca_sim import AlpacaSim

WIRE = Path(__file__).resolve().parent.parent.parent / "shared" / "wire" / "alpaca"  # ../shared
pytestmark = pytest.mark.skipif(not WIRE.exists(), reason="needs the shared wire data")
KEY, SECRET = "PKTEST1", "secret-1"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


# ---------------------------------------------------------------- helpers
def example(name: str) -> Any:
    return json.loads((WIRE / "examples" / f"{name}.json").read_text())


def spec() -> dict[str, Any]:
    return json.loads((WIRE / "trading-api.json").read_text())  # type: ignore[no-any-return]


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """A small OpenAPI 3.0 checker: $ref, type, nullable, enum, required, minLength, items,
    properties, anyOf/oneOf/allOf (enough for the Trading API's response schemas)."""
    if "$ref" in schema:
        schema = spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if value is None:
        return [] if schema.get("nullable") or "type" not in schema else [f"{path}: null"]
    for comb in ("anyOf", "oneOf"):
        if comb in schema and all(schema_errors(value, s, path) for s in schema[comb]):
            return [f"{path}: matches no {comb} branch"]
    errors = [e for s in schema.get("allOf", []) for e in schema_errors(value, s, path)]
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
             "array": list, "object": dict}
    t = schema.get("type")
    if t and (not isinstance(value, types[t]) or (t != "boolean" and isinstance(value, bool))):
        return [*errors, f"{path}: {value!r} is not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: shorter than minLength")
    if isinstance(value, dict):
        errors += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errors += schema_errors(value[k], sub, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        errors += [e for i, v in enumerate(value) for e in
                   schema_errors(v, schema["items"], f"{path}[{i}]")]
    return errors


def component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def same_shape(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Same keys as the example, and the same JSON type wherever both are non-null."""
    assert set(ours) == set(theirs), (set(ours) ^ set(theirs))
    for k, v in theirs.items():
        if v is not None and ours[k] is not None:
            assert type(ours[k]) is type(v), (k, ours[k], v)


def raw(sim: AlpacaSim, path: str, key: str = KEY, secret: str = SECRET,
        **params: Any) -> requests.Response:
    return requests.get(sim.base_url + path, params=params, timeout=5,
                        headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})


def buy(client: TradingClient, symbol: str = "AAA", coid: str | None = None,
        tif: TimeInForce = TimeInForce.DAY, side: OrderSide = OrderSide.BUY,
        **size: float) -> Order:
    req = MarketOrderRequest(symbol=symbol, side=side, time_in_force=tif,
                             client_order_id=coid, **(size or {"qty": 2}))
    order = client.submit_order(req)
    assert isinstance(order, Order)
    return order


def api_error(call: Any, *args: Any, **kwargs: Any) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.fixture
def sim() -> Iterator[AlpacaSim]:
    with AlpacaSim() as s:
        s.add_account(KEY, SECRET, cash="10000")
        s.set_price("AAA", "100.25")
        s.set_price("BTC/USD", "50000")
        yield s


@pytest.fixture
def client(sim: AlpacaSim) -> TradingClient:
    c = TradingClient(KEY, SECRET, paper=True, url_override=sim.base_url)
    c._retry_wait = 0  # alpaca-py sleeps 3 s before each retry of a 429/504
    return c


# ---------------------------------------------------------------- account, orders, positions
def test_account_parses_and_matches_the_spec(sim: AlpacaSim, client: TradingClient) -> None:
    account = client.get_account()
    assert account.cash == "10000" and account.status == "ACTIVE"  # type: ignore[union-attr]
    body = raw(sim, "/v2/account").json()
    same_shape(body, example("GET_v2_account.response"))
    assert schema_errors(body, component("Account")) == []
    assert RFC3339.fullmatch(body["created_at"])


def test_market_order_by_qty_is_accepted_as_alpaca_answers(sim: AlpacaSim,
                                                          client: TradingClient) -> None:
    order = buy(client, coid="vb-1", qty=2)
    assert order.status == OrderStatus.ACCEPTED and order.qty == "2" and order.filled_qty == "0"
    assert order.client_order_id == "vb-1" and order.notional is None
    body = raw(sim, f"/v2/orders/{order.id}").json()
    same_shape(body, example("order-EquityOrderResponse"))
    assert schema_errors(body, component("Order")) == []
    assert all(RFC3339.fullmatch(body[k]) for k in ("created_at", "submitted_at", "updated_at"))
    (post,) = sim.order_posts("vb-1")
    assert post.body["qty"] == 2.0 and isinstance(post.body["qty"], float)  # alpaca-py: floats
    assert post.body == {"symbol": "AAA", "qty": 2.0, "side": "buy", "type": "market",
                         "time_in_force": "day", "client_order_id": "vb-1"}


def test_notional_order_and_float_artifacts(sim: AlpacaSim, client: TradingClient) -> None:
    order = buy(client, coid="vb-n", notional=150.5)
    assert order.notional == "150.5" and order.qty is None
    sim.step(KEY)
    filled = client.get_order_by_client_id("vb-n")
    assert filled.status == OrderStatus.FILLED  # type: ignore[union-attr]
    assert Decimal(filled.filled_qty) == (Decimal("150.5") / Decimal("100.25")).quantize(  # type: ignore[union-attr,arg-type]
        Decimal("1e-9"), rounding="ROUND_DOWN")
    err = api_error(buy, client, "AAA", "vb-f", TimeInForce.DAY, OrderSide.BUY,
                    **{"qty": 0.1 + 0.2})  # 0.30000000000000004 on the wire
    assert err.status_code == 422 and "9 decimal places" in err.message


def test_crypto_order_position_and_asset(sim: AlpacaSim, client: TradingClient) -> None:
    sim.fill_on_submit = True
    order = buy(client, "BTC/USD", "vb-c", TimeInForce.GTC, qty=0.01)
    assert order.asset_class == AssetClass.CRYPTO and order.symbol == "BTC/USD"
    assert order.status == OrderStatus.FILLED and order.filled_avg_price == "50000"
    (pos,) = client.get_all_positions()  # type: ignore[misc]
    assert pos.symbol == "BTCUSD" and pos.qty == "0.01" and pos.exchange == AssetExchange.CRYPTO
    assert client.get_open_position("BTCUSD").market_value == "500"  # type: ignore[union-attr]
    assert api_error(client.get_open_position, "BTC/USD").status_code == 404  # unencoded "/"
    asset = raw(sim, "/v2/assets/BTC%2FUSD").json()
    assert asset["min_order_size"] == "0.0001" and asset["fractionable"] is True
    assert client.get_asset("BTCUSD").price_increment == 0.01  # type: ignore[union-attr]
    err = api_error(buy, client, "BTC/USD", "vb-c2", TimeInForce.DAY)
    assert (err.status_code, err.code) == (422, 40010001)
    fill = raw(sim, "/v2/account/activities/FILL").json()[0]
    assert fill["symbol"] == "BTC/USD" and fill["swap_rate"] == "1"


def test_order_lookups_and_filters(sim: AlpacaSim, client: TradingClient) -> None:
    sim.partial_steps = 0  # orders stay working
    first = buy(client, coid="vb-a", qty=1)
    sim.advance_clock(60)
    second = buy(client, "BTC/USD", "vb-b", TimeInForce.GTC, qty=0.001)
    assert client.get_order_by_client_id("vb-a").id == first.id  # type: ignore[union-attr]
    assert client.get_order_by_id(second.id).status == OrderStatus.NEW  # type: ignore[union-attr]
    orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in orders] == [second.id, first.id]  # type: ignore[union-attr]  # desc
    asc = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction=Sort.ASC,
                                             limit=1))
    assert [o.id for o in asc] == [first.id]  # type: ignore[union-attr]
    later = client.get_orders(GetOrdersRequest(after=first.submitted_at + timedelta(seconds=1)))
    assert [o.id for o in later] == [second.id]  # type: ignore[union-attr]
    earlier = client.get_orders(GetOrdersRequest(until=second.submitted_at))
    assert [o.id for o in earlier] == [first.id]  # type: ignore[union-attr]
    for symbols in (["BTC/USD"], ["BTCUSD"]):
        got = client.get_orders(GetOrdersRequest(symbols=symbols, side=OrderSide.BUY))
        assert [o.id for o in got] == [second.id]  # type: ignore[union-attr]
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED)) == []
    assert raw(sim, "/v2/orders", limit=501).status_code == 422
    missing = api_error(client.get_order_by_client_id, "nope")
    assert (missing.status_code, missing.code) == (404, 40410000)


def test_cancel_then_cancel_again(sim: AlpacaSim, client: TradingClient) -> None:
    sim.partial_steps = 0
    order = buy(client, coid="vb-x")
    assert client.cancel_order_by_id(order.id) is None  # 204, no body
    got = client.get_order_by_id(order.id)
    assert got.status == OrderStatus.CANCELED and got.canceled_at is not None  # type: ignore[union-attr]
    err = api_error(client.cancel_order_by_id, order.id)
    assert (err.status_code, err.code) == (422, 42210000)
    assert err.message == 'order is already in "canceled" state'
    sim.cancel_pending = True
    other = buy(client, coid="vb-y")
    client.cancel_order_by_id(other.id)
    assert [o.status for o in client.get_orders()] == []  # type: ignore[union-attr]
    sim.auto_advance = False
    third = buy(client, coid="vb-z")
    client.cancel_order_by_id(third.id)
    assert client.get_order_by_id(third.id).status == OrderStatus.PENDING_CANCEL  # type: ignore[union-attr]


def test_partial_fills_over_successive_polls(sim: AlpacaSim, client: TradingClient) -> None:
    sim.partial_steps = 2
    order = buy(client, coid="vb-p", qty=3)
    seen = [client.get_order_by_id(order.id) for _ in range(3)]
    assert [(o.status, o.filled_qty) for o in seen] == [  # type: ignore[union-attr]
        (OrderStatus.PARTIALLY_FILLED, "1.5"), (OrderStatus.FILLED, "3"),
        (OrderStatus.FILLED, "3")]
    assert seen[0].filled_at is None and seen[1].filled_at is not None  # type: ignore[union-attr]
    assert seen[1].filled_avg_price == "100.25"  # type: ignore[union-attr]
    fills = raw(sim, "/v2/account/activities/FILL", direction="asc").json()
    assert [(f["type"], f["qty"], f["cum_qty"], f["leaves_qty"]) for f in fills] == [
        ("partial_fill", "1.5", "1.5", "1.5"), ("fill", "1.5", "3", "0")]
    assert len({f["id"] for f in fills}) == 2 and all(f["order_id"] == str(order.id) for f in fills)
    same_shape(fills[1], example("TradingActivities"))
    assert schema_errors(fills, {"type": "array", "items": component("TradingActivities")}) == []
    assert all(re.fullmatch(r"\d{17}::[0-9a-f-]{36}", f["id"]) for f in fills)
    assert sim.cash(KEY) == Decimal("10000") - 3 * Decimal("100.25")
    assert client.get_account().cash == "9699.25"  # type: ignore[union-attr]
    sim.plan_next("0.25", "0.25")  # stays half filled
    half = buy(client, coid="vb-h", qty=4)
    for _ in range(3):
        client.get_order_by_id(half.id)
    assert client.get_order_by_id(half.id).filled_qty == "2"  # type: ignore[union-attr]
    positions = {p.symbol: p.qty for p in client.get_all_positions()}  # type: ignore[union-attr]
    assert positions == {"AAA": "5"}


def test_positions_parse_match_the_spec_and_can_change_by_hand(
        sim: AlpacaSim, client: TradingClient) -> None:
    sim.fill_on_submit = True
    buy(client, qty=2)
    sim.set_position(KEY, "BTC/USD", "0.5", "40000")
    sim.set_position(KEY, "ZZZ", "7", "3")  # bought elsewhere, no price: marked at entry
    body = raw(sim, "/v2/positions").json()
    assert [p["symbol"] for p in body] == ["AAA", "BTCUSD", "ZZZ"]
    same_shape(body[0], example("Position")[1])
    equity = [p for p in body if p["asset_class"] == "us_equity"]
    assert schema_errors(equity, {"type": "array", "items": component("Position")}) == []
    # The spec's position exchange enum has no "CRYPTO"; Alpaca (and alpaca-py) use it.
    assert schema_errors(body[1], component("Position")) == ["$.exchange: 'CRYPTO' not in enum"]
    btc = client.get_open_position("BTCUSD")
    assert (btc.unrealized_pl, btc.unrealized_plpc) == ("5000", "0.25")  # type: ignore[union-attr]
    sim.set_position(KEY, "BTCUSD", "0", "0")
    assert [p.symbol for p in client.get_all_positions()] == ["AAA", "ZZZ"]  # type: ignore[union-attr]
    gone = api_error(client.get_open_position, "BTCUSD")
    assert (gone.status_code, gone.code, gone.message) == (404, 40410000,
                                                           "position does not exist")


def test_deposit_shows_in_cash_and_activities(sim: AlpacaSim, client: TradingClient) -> None:
    sim.deposit(KEY, "2500.50")
    assert client.get_account().cash == "12500.5"  # type: ignore[union-attr]
    (csd,) = raw(sim, "/v2/account/activities", activity_types="CSD").json()
    assert csd["activity_type"] == "CSD" and csd["net_amount"] == "2500.5"
    assert set(csd) <= set(example("NonTradeActivities"))
    assert schema_errors(csd, component("NonTradeActivities")) == []
    sim.deposit(KEY, "-500")
    flows = raw(sim, "/v2/account/activities", category="non_trade_activity").json()
    assert [a["activity_type"] for a in flows] == ["CSW", "CSD"]
    assert raw(sim, "/v2/account/activities/FILL").json() == []
    assert raw(sim, "/v2/account/activities", date=csd["date"]).json() == flows


def test_fill_activities_page_as_the_spec_says(sim: AlpacaSim, client: TradingClient) -> None:
    sim.fill_on_submit = True
    for i in range(5):
        buy(client, coid=f"vb-{i}", qty=1)
    everything = raw(sim, "/v2/account/activities/FILL").json()
    assert len(everything) == 5
    assert raw(sim, "/v2/account/activities", activity_types="FILL").json() == everything
    pages, token = [], None
    while True:
        page = raw(sim, "/v2/account/activities/FILL", page_size=2,
                   **({"page_token": token} if token else {})).json()
        if not page:
            break
        pages.append(page)
        token = page[-1]["id"]  # the id of the last item is the next page's token
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [a for p in pages for a in p] == everything
    asc = raw(sim, "/v2/account/activities/FILL", direction="asc").json()
    assert asc == everything[::-1]
    middle = everything[2]["transaction_time"]
    assert raw(sim, "/v2/account/activities/FILL", after=middle).json() == everything[:2]
    assert raw(sim, "/v2/account/activities/FILL", until=middle).json() == everything[3:]
    assert raw(sim, "/v2/account/activities/FILL", page_size=101).status_code == 422
    with pytest.raises(Exception, match="account_id"):  # alpaca-py's model is the Broker API's
        TradeActivity(**everything[0])


# ---------------------------------------------------------------- errors and faults
def test_wrong_or_missing_keys_answer_401(sim: AlpacaSim) -> None:
    for key, secret in ((KEY, "wrong"), ("PKNOBODY", SECRET)):
        bad = TradingClient(key, secret, paper=True, url_override=sim.base_url)
        err = api_error(bad.get_account)
        assert (err.status_code, err.code, err.message) == (401, 40110000,
                                                            "request is not authorized")
    assert requests.get(sim.base_url + "/v2/account", timeout=5).status_code == 401
    assert sim.requests[0].headers["apca-api-secret-key"] == "***"
    assert all(SECRET not in json.dumps(r.headers) for r in sim.requests)


def test_429_then_success(sim: AlpacaSim, client: TradingClient) -> None:
    sim.rate_limit(1)
    hit = raw(sim, "/v2/account")
    assert hit.status_code == 429 and hit.headers["X-Ratelimit-Remaining"] == "0"
    assert int(hit.headers["X-Ratelimit-Reset"]) > 0 and hit.headers["X-Ratelimit-Limit"] == "200"
    assert hit.json()["code"] == 42910000
    sim.rate_limit(1)
    client._retry = 0  # see the 429 instead of alpaca-py's silent retry
    assert api_error(client.get_account).status_code == 429
    client._retry = 3
    sim.rate_limit(2)
    before = len(sim.requests)
    assert client.get_account().cash == "10000"  # type: ignore[union-attr]
    assert [r.status for r in sim.requests[before:]] == [429, 429, 200]


def test_rate_limit_bucket_per_account(sim: AlpacaSim) -> None:
    now = [1_000.0]
    with AlpacaSim(clock=lambda: now[0]) as small:
        small.add_account("A", "a")
        small.add_account("B", "b")
        small.rate_limit_per_minute = 3
        seen = [raw(small, "/v2/account", "A", "a") for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert [r.headers["X-Ratelimit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
        assert {r.headers["X-Ratelimit-Reset"] for r in seen} == {"1060"}
        assert raw(small, "/v2/account", "B", "b").status_code == 200  # its own bucket
        now[0] += 60
        assert raw(small, "/v2/account", "A", "a").headers["X-Ratelimit-Remaining"] == "2"
    assert raw(sim, "/v2/account").headers["X-Ratelimit-Limit"] == "200"


def test_5xx_after_create_leaves_the_order_findable(sim: AlpacaSim,
                                                    client: TradingClient) -> None:
    sim.fail_after_create(1, status=500)
    err = api_error(buy, client, "AAA", "vb-lost")
    assert err.status_code == 500
    found = client.get_order_by_client_id("vb-lost")
    assert found.client_order_id == "vb-lost" and isinstance(found.id, UUID)  # type: ignore[union-attr]
    assert len(sim.order_posts("vb-lost")) == 1


def test_alpaca_py_reposts_an_order_after_a_504(sim: AlpacaSim, client: TradingClient) -> None:
    sim.fail_after_create(1, status=504)  # alpaca-py retries 429 *and 504*, POSTs included
    err = api_error(buy, client, "AAA", "vb-504")
    assert (err.status_code, err.code) == (422, 40010001)  # the retry hit the duplicate check
    assert [r.status for r in sim.order_posts("vb-504")] == [504, 422]
    assert len(client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))) == 1  # type: ignore[arg-type]


def test_duplicate_client_order_id(sim: AlpacaSim, client: TradingClient) -> None:
    buy(client, coid="vb-dup")
    err = api_error(buy, client, "AAA", "vb-dup")
    assert (err.status_code, err.code, err.message) == (422, 40010001,
                                                        "client_order_id must be unique")
    sim.fill_on_submit = True
    sim.add_account("PKOTHER", "s2")
    other = TradingClient("PKOTHER", "s2", paper=True, url_override=sim.base_url)
    assert buy(other, coid="vb-dup").client_order_id == "vb-dup"  # unique per account
    assert client.get_all_positions() == []


def test_business_rejects(sim: AlpacaSim, client: TradingClient) -> None:
    sim.reject_next("market is closed", status=403, code=40310000)
    err = api_error(buy, client, "AAA", "vb-r")
    assert (err.status_code, err.code, err.message) == (403, 40310000, "market is closed")
    assert api_error(client.get_order_by_client_id, "vb-r").status_code == 404  # not created
    poor = api_error(buy, client, "AAA", "vb-big", TimeInForce.DAY, OrderSide.BUY, qty=100)
    assert (poor.status_code, poor.code, poor.message) == (403, 40310000,
                                                           "insufficient buying power")
    assert json.loads(str(poor))["cost_basis"] == "10025"
    short = api_error(buy, client, "AAA", "vb-s", TimeInForce.DAY, OrderSide.SELL, qty=1)
    assert short.status_code == 403 and json.loads(str(short))["available"] == "0"
    assert raw(sim, "/v2/assets/NOPE").status_code == 404
    assert api_error(buy, client, "NOPE", "vb-u").status_code == 422


def test_stop_closes_the_port() -> None:
    s = AlpacaSim()
    url = s.base_url
    assert url.startswith("http://127.0.0.1:")
    s.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/v2/account", timeout=2)


def test_cancel_all_forced_status_and_accounts_apart(sim: AlpacaSim,
                                                     client: TradingClient) -> None:
    sim.partial_steps = 0
    first, second = buy(client, coid="vb-1"), buy(client, coid="vb-2")
    sim.force_status(str(first.id), "expired")
    got = client.get_order_by_id(first.id)
    assert got.status == OrderStatus.EXPIRED and got.expired_at is not None  # type: ignore[union-attr]
    (canceled,) = client.cancel_orders()  # 207 with CanceledOrderResponse items
    assert (canceled.id, canceled.status) == (second.id, 200)  # type: ignore[union-attr]
    sim.add_account("PKOTHER", "s2")
    other = TradingClient("PKOTHER", "s2", paper=True, url_override=sim.base_url)
    assert api_error(other.get_order_by_id, first.id).status_code == 404
    assert other.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []


def test_what_the_sim_does_not_simulate_says_so(sim: AlpacaSim, client: TradingClient) -> None:
    limit = LimitOrderRequest(symbol="AAA", qty=1, side=OrderSide.BUY,
                              time_in_force=TimeInForce.DAY, limit_price=99)
    assert api_error(client.submit_order, limit).status_code == 501
    assert api_error(client.get_clock).status_code == 501
    assert raw(sim, "/v2/nowhere").status_code == 404
    assert raw(sim, "/v2/orders/not-a-uuid").json() == {"code": 40010001,
                                                        "message": "order_id is missing"}


def script(s: AlpacaSim) -> list[Any]:
    s.add_account(KEY, SECRET, cash="5000")
    s.set_price("AAA", "12.5")
    s.partial_steps = 2
    c = TradingClient(KEY, SECRET, paper=True, url_override=s.base_url)
    buy(c, coid="vb-d", qty=3)
    s.deposit(KEY, "10")
    return [raw(s, p).json() for p in ("/v2/orders", "/v2/orders", "/v2/account",
                                       "/v2/positions", "/v2/account/activities")]


def test_same_script_same_bytes() -> None:
    with AlpacaSim() as one, AlpacaSim() as two:
        assert script(one) == script(two)
