"""The fan-out over live accounts: whatever order the venues answer in (random delays, any
number of worker threads), the same answers give the same journal, byte for byte."""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Home, prices_csv, signals, vault_def
from tests.test_alpaca_live import PASS, FakeClock
from vanta_box.domain.orders import Status
from vanta_box.execution.venue import (
    ClientOrderId,
    LiveOrder,
    OrderReport,
    Rules,
    Snapshot,
    Trade,
    TradeId,
    VenueOrderId,
)
from vanta_box.service import venues

T0 = "2026-11-02T00:00:00Z"
T1 = "2026-11-03T00:00:00Z"
T2 = "2026-11-04T00:00:00Z"
ACCOUNTS = [f"F{i}" for i in range(8)]
PRICES = {"AAA": Decimal(100), "BBB": Decimal(50)}


class SlowVenue:
    """An account's venue in memory: an order is accepted, then filled in two parts over
    the next two looks; every answer comes after a random delay (real sleeps, so the
    threads finish in a different order each run). Its answers depend on its own account
    alone: ids and times are counted per account."""

    kind = "alpaca"

    def __init__(self, key: str, rng: random.Random) -> None:
        self.key, self.rng, self.lock = key, rng, threading.Lock()
        self.cash, self.held = Decimal(10000), {s: Decimal(0) for s in PRICES}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades_list: list[Trade] = []

    def _pause(self) -> None:
        with self.lock:
            delay = self.rng.random() * 0.004
        time.sleep(delay)

    def _report(self, o: dict[str, Any]) -> OrderReport:
        status = (Status.FILLED if o["filled"] == o["qty"] else
                  Status.PARTIALLY_FILLED if o["filled"] else Status.ACCEPTED)
        return OrderReport(ClientOrderId(o["coid"]), VenueOrderId(o["id"]), status,
                           str(status), o["filled"], PRICES[o["symbol"]] if o["filled"] else None,
                           f"2026-11-03T00:00:0{o['looks']}Z")

    def _step(self, o: dict[str, Any]) -> None:
        if o["filled"] == o["qty"]:
            return
        part = o["qty"] if o["looks"] else (o["qty"] / 2)
        part = min(part, o["qty"] - o["filled"])
        o["looks"] += 1
        o["filled"] += part
        sign = 1 if o["side"] == "buy" else -1
        self.held[o["symbol"]] += sign * part
        self.cash -= sign * part * PRICES[o["symbol"]]
        n = len(self.trades_list) + 1
        self.trades_list.append(Trade(TradeId(f"{self.key}-t{n}"), VenueOrderId(o["id"]),
                                      o["symbol"], o["side"], part, PRICES[o["symbol"]],
                                      Decimal(0), None, f"2026-11-03T00:00:{n:02d}Z"))

    def submit(self, order: LiveOrder) -> OrderReport:
        self._pause()
        o = {"coid": order.client_order_id, "id": f"{self.key}-o{len(self.orders) + 1}",
             "symbol": order.symbol, "side": order.side, "qty": order.qty,
             "filled": Decimal(0), "looks": 0}
        self.orders[order.client_order_id] = o
        return self._report(o)

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        self._pause()
        o = self.orders.get(client_order_id)
        if o is None:
            return None
        self._step(o)
        return self._report(o)

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None:
        return self.order(report.client_order_id, symbol)

    def trades(self, cursor: str | None) -> tuple[list[Trade], str | None]:
        self._pause()
        start = int(cursor or 0)
        return self.trades_list[start:], str(len(self.trades_list))

    def snapshot(self) -> Snapshot:
        self._pause()
        return Snapshot(self.cash, {s: q for s, q in self.held.items() if q}, None)

    def rules(self, symbol: str) -> Rules:
        self._pause()
        return Rules(Decimal(1), Decimal(1), Decimal(0))


def run_home(home: Home, monkeypatch: pytest.MonkeyPatch, seed: int, workers: int) -> str:
    rng = random.Random(seed)
    made: dict[str, SlowVenue] = {}

    def open_venue(kind: str, cfg: dict[str, Any], secrets: dict[str, str], *_: Any,
                   **__: Any) -> SlowVenue:
        key = secrets["key_id"]
        return made.setdefault(key, SlowVenue(key, random.Random(rng.random())))

    monkeypatch.setattr(venues, "open_venue", open_venue)
    monkeypatch.setenv("VANTA_VENUE_WORKERS", str(workers))
    home.ok("init")
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", [
        {"symbol": s, "asset_class": "equity", "lot_step": "1", "min_notional": "1"}
        for s in PRICES]), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [(s, t, str(p)) for s, p in PRICES.items() for t in (T0, T2)])), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "0.6", None), ("BBB", "0.4", None)])), "--at", T0)
    packets = [home.write("m.json", {
        "packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "100000"}})]
    for account_id in ACCOUNTS:
        packets.append(home.write(f"{account_id}.json", {
            "packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "alpaca", "key_id": f"PK{account_id}XXXX",
                                        "secret_key": f"secret-of-{account_id}-0123456789"},
            "fee_agreement": {"type": "flat", "flat_usd": "10"}}))
    home.ok("onboard", *packets, "--offline", "--at", T0, env=PASS)
    home.ok("cycle", "run", "--at", T1, env=PASS)
    home.ok("signals", "ingest", home.write("s2.json", signals(
        "V", T1, [("AAA", "0.2", None), ("BBB", "0.8", None)])), "--at", T1)
    home.ok("cycle", "run", "--at", T2, env=PASS)
    for account_id in ACCOUNTS:  # traded, and equal to the venue
        venue = made[f"PK{account_id}XXXX"]
        ours = {p["symbol"]: Decimal(p["qty"]) for p in home.account(account_id)["positions"]}
        assert ours == {s: q for s, q in venue.held.items() if q} and ours
    digest = home.ok("audit", "digest").out.strip()
    assert home.vanta("audit", "verify").code == 0
    return digest


@pytest.mark.parametrize("other", [(2, 3), (3, 1)])
def test_the_journal_does_not_depend_on_which_venue_answered_first(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, other: tuple[int, int]) -> None:
    fake = FakeClock()
    monkeypatch.setattr(venues, "SystemClock", lambda: fake)
    first = run_home(Home(tmp_path / "one"), monkeypatch, seed=1, workers=8)
    second = run_home(Home(tmp_path / "two"), monkeypatch, seed=other[0], workers=other[1])
    assert first == second
