"""Cycles with followers on crypto exchanges through the real ccxt client, pointed with
``base_url`` at the loopback servers of tests/ccxt_sim.py (coinbaseexchange and ccxt's
alpaca): one order per (cycle, account, symbol), positions and fills equal to the venue's,
fees, venue minimums, 429 storms, a 5xx after create, a venue down, replay offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tests.ccxt_sim import WIRE_MARKETS, AlpacaCcxtSim, CoinbaseSim
from tests.conftest import Home, prices_csv, run_vanta, signals, vault_def
from tests.test_alpaca_live import PASS, FakeClock
from vanta_box.execution.exchange import ExchangeVenue, classify, load_exchange
from vanta_box.execution.venue import Trade, TradeId, VenueOrderId
from vanta_box.service import venues
from vanta_box.service.live import received

T0 = "2026-11-02T00:00:00Z"
T1 = "2026-11-03T00:00:00Z"
T2 = "2026-11-04T00:00:00Z"
INSTRUMENTS = [
    {"symbol": "BTC/USD", "asset_class": "crypto", "lot_step": "0.00000001",
     "min_notional": "1"},
    {"symbol": "ETH/USD", "asset_class": "crypto", "lot_step": "0.00000001",
     "min_notional": "1"},
]
CB = {"C1": ("cb-key-0001", CoinbaseSim.new_secret("C1"), "pass-c1"),
      "C2": ("cb-key-0002", CoinbaseSim.new_secret("C2"), "pass-c2")}
AL = {"A1": ("PKCCXTALPACA0001", "alpaca-ccxt-secret-5f1e2d3c4b5a69788796a5b4c3d2e1f0")}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(venues, "SystemClock", lambda: fake)
    return fake


@pytest.fixture
def cb(clock: FakeClock) -> Iterator[CoinbaseSim]:
    with CoinbaseSim(products=("BTC-USD", "ETH-USD")) as sim:
        for key, secret, passphrase in CB.values():
            sim.add_account(key, secret, passphrase=passphrase, cash="10000", fee_rate="0.005",
                            fill_parts=2)  # two executions per order, over two polls
        sim.set_price("BTC/USD", "20000")
        sim.set_price("ETH/USD", "1000")
        yield sim


@pytest.fixture
def al(clock: FakeClock) -> Iterator[AlpacaCcxtSim]:
    with AlpacaCcxtSim(assets=("BTC/USD", "ETH/USD")) as sim:
        for key, secret in AL.values():
            sim.add_account(key, secret, cash="10000")
        sim.set_price("BTC/USD", "20000")
        sim.set_price("ETH/USD", "1000")
        yield sim


def cb_packet(account_id: str, base_url: str) -> dict[str, Any]:
    key, secret, passphrase = CB[account_id]
    return {"packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "ccxt", "exchange": "coinbaseexchange",
                                        "api_key": key, "secret": secret,
                                        "password": passphrase, "base_url": base_url},
            "fee_agreement": {"type": "flat", "flat_usd": "100"}}


def al_packet(account_id: str, base_url: str) -> dict[str, Any]:
    key, secret = AL[account_id]
    return {"packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "ccxt", "exchange": "alpaca", "api_key": key,
                                        "secret": secret, "base_url": base_url},
            "fee_agreement": {"type": "flat", "flat_usd": "100"}}


def setup_home(home: Home, packets: list[dict[str, Any]], *, btc: str = "0.5",
               eth: str = "0.3") -> Home:
    vault = vault_def(risk={"cash_buffer": "0.2"})  # room for the venues' fees
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", INSTRUMENTS), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("BTC/USD", T0, "20000"), ("ETH/USD", T0, "1000")])), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("BTC/USD", btc, None), ("ETH/USD", eth, None)])), "--at", T0)
    home.ok("onboard", home.write("m.json", {
        "packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "100000"}}),
        *(home.write(f"{p['account_id']}.json", p) for p in packets), "--at", T0, env=PASS)
    return home


def ours(home: Home, account_id: str) -> dict[str, D]:
    return {p["symbol"]: D(p["qty"]) for p in home.account(account_id)["positions"]}


def cb_held(sim: CoinbaseSim, account_id: str) -> dict[str, D]:
    key = CB[account_id][0]
    return {f"{c}/USD": sim.balance(key, c) for c in ("BTC", "ETH") if sim.balance(key, c)}


def journal(home: Home) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(home.root / "vanta.db") as conn:
        return [{**json.loads(p), "kind": k} for k, p in
                conn.execute("SELECT kind, payload FROM journal ORDER BY seq")]


def venue_fills(home: Home) -> list[dict[str, Any]]:
    return [f for f in home.trade_log() if f["kind"] == "fill" and f.get("venue") == "ccxt"]


def test_coinbase_followers_trade_once_each_with_fees_and_match_the_venue(
        home: Home, cb: CoinbaseSim) -> None:
    live = setup_home(home, [cb_packet(a, cb.base_url) for a in CB])
    live.ok("cycle", "run", "--at", T1, env=PASS)
    for account_id, (key, *_rest) in CB.items():
        # sized from the venue's cash 10000 at vanta's marks: BTC 5000/20000 = 0.25, ETH
        # 3000/1000 = 3; the venue's 0.5 % fees are commissions, paid from the cash left
        held = cb_held(cb, account_id)
        assert ours(live, account_id) == held == {"BTC/USD": D("0.25"), "ETH/USD": D(3)}
        assert D(live.account(account_id)["cash"]) == cb.balance(key, "USD")
        posts = cb.order_posts(key=key)
        client_ids = [r.body["client_oid"] for r in posts]
        assert len(client_ids) == len(set(client_ids)) == 2
    fills = venue_fills(live)
    venue = [f for key, *_ in CB.values() for f in cb.fills(key)]
    assert len(fills) == len(venue) == 8
    assert sorted((D(f["qty"]), D(f["price"]), D(f["commission"])) for f in fills) == sorted(
        (f.qty, f.price, f.fee) for f in venue)
    assert all(f["fee_currency"] == "USD" for f in fills)
    pnl = {a["account_id"]: a for a in live.memory("pnl_summary.json")["accounts"]}
    assert D(pnl["C1"]["realized_pnl"]) == 0  # the venue's cash is funding, not PnL
    cb.stop()
    verdict = run_vanta("audit", "verify", "--db", str(live.root / "vanta.db"))
    assert verdict.code == 0, verdict.out + verdict.err
    assert "replay: identical" in verdict.out


def test_429_storms_and_a_5xx_after_create_never_make_a_second_order(
        home: Home, cb: CoinbaseSim) -> None:
    live = setup_home(home, [cb_packet(a, cb.base_url) for a in CB])
    cb.rate_limit(4)
    cb.fail_after_create(2)
    live.ok("cycle", "run", "--at", T1, env=PASS)
    for account_id, (key, *_rest) in CB.items():
        assert ours(live, account_id) == cb_held(cb, account_id)
        assert len(cb.orders(key)) == 2
        assert len({o.client_id for o in cb.orders(key)}) == 2


def test_a_venue_down_skips_its_account_and_the_others_trade(
        home: Home, cb: CoinbaseSim) -> None:
    live = setup_home(home, [cb_packet(a, cb.base_url) for a in CB])
    cb.set_down("refuse", key=CB["C1"][0])
    live.ok("cycle", "run", "--at", T1, env=PASS)
    assert cb.orders(CB["C1"][0]) == [] and ours(live, "C1") == {}
    assert ours(live, "C2") == cb_held(cb, "C2") and ours(live, "C2")
    skips = [e for e in live.trade_log() if e["kind"] == "skip" and e["account_id"] == "C1"]
    assert skips and skips[0]["reason"].startswith("venue_error:")


def test_alpaca_through_ccxt_minimums_and_a_position_changed_by_hand(
        home: Home, al: AlpacaCcxtSim) -> None:
    key = AL["A1"][0]
    # ETH's 0.0005 x 0.8 of the vault = 4 USD: below ccxt's cost.min of 10 for USD-quoted
    # crypto
    live = setup_home(home, [al_packet("A1", al.base_url)], btc="0.9995", eth="0.0005")
    live.ok("cycle", "run", "--at", T1, env=PASS)
    rejects = [e for e in live.trade_log() if e["kind"] == "reject"
               and e["account_id"] == "A1"]
    assert [(r["symbol"], r["reason"]) for r in rejects] == [("ETH/USD",
                                                             "below_venue_minimum")]
    assert [r.body["symbol"] for r in al.order_posts(key=key)] == ["BTC/USD"]
    assert {r.body["client_order_id"] for r in al.order_posts(key=key)} == {
        e["client_order_id"] for e in venue_fills(live)}
    btc = ours(live, "A1")["BTC/USD"]
    assert btc == al.balance(key, "BTC")
    al.set_position(key, "BTC", str(btc + D("0.01")))  # bought by hand at the venue
    live.ok("reconcile", "--account", "A1", "--at", T2, env=PASS)
    (discrepancy,) = [e for e in journal(live) if e["kind"] == "discrepancy"]
    assert (D(discrepancy["ours"]), D(discrepancy["venue"])) == (btc, btc + D("0.01"))
    assert ours(live, "A1")["BTC/USD"] == al.balance(key, "BTC")


def test_secrets_of_ccxt_accounts_never_leave_the_keystore(home: Home,
                                                           cb: CoinbaseSim) -> None:
    live = setup_home(home, [cb_packet(a, cb.base_url) for a in CB])
    live.ok("cycle", "run", "--at", T1, env=PASS)
    for path in live.root.rglob("*"):
        if path.is_file() and path.name != "keystore":
            data = path.read_bytes()
            for key, secret, passphrase in CB.values():
                for value in (key, secret, passphrase):
                    assert value.encode() not in data, path


def test_an_unknown_exchange_id_is_bad_input(home: Home) -> None:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    packet = cb_packet("C1", "http://127.0.0.1:9")
    packet["broker"]["exchange"] = "nosuchexchange"
    result = home.vanta("onboard", home.write("c.json", packet), "--offline", "--at", T0,
                        env=PASS)
    assert result.code == 2 and "broker.exchange" in result.err, result.err


def test_only_the_exchange_module_is_imported() -> None:
    code = ("import sys; from vanta_box.execution.exchange import load_exchange; "
            "load_exchange('coinbaseexchange'); "
            "print(sum(1 for m in sys.modules if m.startswith('ccxt.') and "
            "m.count('.') == 1 and not m.startswith(('ccxt.base', 'ccxt.abstract', "
            "'ccxt.static'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "1"  # ccxt.coinbaseexchange alone, not ~110 exchanges


def test_errors_are_classified_by_vantas_table_not_ccxts_class() -> None:
    # ccxt raises ExchangeNotAvailable (a retryable NetworkError) for this 403
    assert classify(403, "insufficient buying power", sent=True, answered=True) == "reject"
    assert classify(401, "request is not authorized", sent=False, answered=True) == "auth"
    assert classify(400, "Invalid API Key", sent=False, answered=True) == "auth"  # Coinbase
    assert classify(400, "Insufficient funds", sent=True, answered=True) == "reject"
    assert classify(422, "client_order_id must be unique", sent=True,
                    answered=True) == "duplicate_id"
    assert classify(400, "duplicate client_oid", sent=True, answered=True) == "duplicate_id"
    assert classify(429, "rate limit exceeded", sent=True, answered=True) == "rate_limit"
    assert classify(500, "internal", sent=True, answered=True) == "unknown"
    assert classify(503, "internal", sent=False, answered=True) == "transient"
    assert classify(None, "", sent=True, answered=False) == "unknown"
    assert classify(None, "amount must be greater than", sent=False,
                    answered=True) == "reject"  # ccxt's own check, nothing sent
    with pytest.raises(ValueError):
        load_exchange("os")


def test_a_fee_in_the_base_asset_reduces_the_quantity_received() -> None:
    def trade(side: str, fee: str, currency: str | None) -> Trade:
        return Trade(TradeId("t"), VenueOrderId("o"), "BTC/USD", side,  # type: ignore[arg-type]
                     D("0.5"), D("20000"), D(fee), currency, "2026-11-03T00:00:00Z")

    assert received(trade("buy", "0.001", "BTC")) == (D("0.499"), D(0))
    assert received(trade("buy", "25", "USD")) == (D("0.5"), D("25"))
    assert received(trade("sell", "0.001", "BTC")) == (D("0.5"), D("20"))
    assert received(trade("buy", "25", None)) == (D("0.5"), D("25"))


def test_ccxt_debug_logging_never_carries_keys(cb: CoinbaseSim, clock: FakeClock,
                                              caplog: pytest.LogCaptureFixture) -> None:
    import logging

    key, secret, passphrase = CB["C1"]
    caplog.set_level(logging.DEBUG)
    venue = ExchangeVenue("coinbaseexchange", key, secret, passphrase, base_url=cb.base_url,
                          symbols=frozenset({"BTC/USD"}), sleep=clock.sleep, now=clock.now,
                          precise=clock.precise)
    venue.snapshot()
    text = json.dumps([r.getMessage() for r in caplog.records])
    assert secret not in text and passphrase not in text


def test_onboarding_reads_the_exchange_once_and_refuses_bad_keys(home: Home,
                                                                cb: CoinbaseSim) -> None:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    packet = cb_packet("C1", cb.base_url)
    packet["broker"]["secret"] = CoinbaseSim.new_secret("not C1's")
    refused = home.vanta("onboard", home.write("c.json", packet), "--at", T0, env=PASS)
    assert refused.code == 2 and "refused these keys" in refused.err, refused.err
    assert CB["C1"][1] not in refused.err + refused.out
    home.ok("onboard", home.write("c1.json", cb_packet("C1", cb.base_url)), "--at", T0,
            env=PASS)
    assert [r.path for r in cb.requests_of(CB["C1"][0])][-1] == "/accounts"


def test_alpaca_crypto_fees_in_the_coin_received_reach_the_books_once(
        home: Home, al: AlpacaCcxtSim) -> None:
    key = AL["A1"][0]
    al.configure(key, fee_rate="0.0025", fill_parts=2)  # a buy pays in the coin (CFEE)
    live = setup_home(home, [al_packet("A1", al.base_url)])
    live.ok("cycle", "run", "--at", T1, env=PASS)
    live.ok("reconcile", "--account", "A1", "--at", T2, env=PASS)
    held = {s: al.balance(key, s.split("/")[0]) for s in ("BTC/USD", "ETH/USD")}
    assert ours(live, "A1") == held
    assert D(live.account("A1")["cash"]) == al.balance(key, "USD")
    events = journal(live)
    fees = [e for e in events if e["kind"] == "venue.fee"]
    assert len(fees) == 4 and {f["fee_currency"] for f in fees} == {"BTC", "ETH"}
    # the fee leaves less of the coin than was bought: 0.25 % of it
    bought = sum(D(f["qty"]) for f in venue_fills(live) if f["symbol"] == "BTC/USD")
    assert held["BTC/USD"] == bought - sum(D(f["fee"]) for f in fees
                                           if f["fee_currency"] == "BTC")
    assert not [e for e in events if e["kind"] == "discrepancy"]


def test_a_markets_snapshot_in_the_packet_is_never_fetched(home: Home, cb: CoinbaseSim) -> None:
    """`broker.markets` (ccxt's markets, here its static file of coinbaseexchange) gives the
    lot steps and minimums offline: the venue is asked for orders and balances, never for
    /products or /currencies; the numbers are the same as with markets fetched."""
    wire = json.loads((WIRE_MARKETS / "coinbaseexchange.json").read_text())
    # the file has no ETH/USD: the same product's row, renamed (what load_markets would make)
    wire["ETH/USD"] = {**wire["BTC/USD"], "id": "ETH-USD", "symbol": "ETH/USD", "base": "ETH",
                       "baseId": "ETH", "info": {**wire["BTC/USD"]["info"], "id": "ETH-USD"}}
    packets = [{**p, "broker": {**p["broker"], "markets": wire}}
               for p in (cb_packet(a, cb.base_url) for a in CB)]
    live = setup_home(home, packets)
    live.ok("cycle", "run", "--at", T1, env=PASS)
    asked = {r.path.split("?")[0] for r in cb.requests}
    assert not asked & {"/products", "/currencies"}, asked
    for account_id in CB:
        assert ours(live, account_id) == cb_held(cb, account_id) == {
            "BTC/USD": D("0.25"), "ETH/USD": D(3)}
    wrong = {"BTC/USD": {k: v for k, v in wire["BTC/USD"].items() if k != "limits"}}
    bad = {**cb_packet("C1", cb.base_url), "account_id": "C9"}
    bad["broker"] = {**bad["broker"], "markets": wrong}
    refused = live.vanta("onboard", live.write("bad.json", bad), "--at", T1, env=PASS)
    assert refused.code == 2 and "broker.markets" in refused.err and "limits" in refused.err
