"""Cycles with followers on Alpaca (through the real alpaca-py client, pointed at the
loopback server of tests/alpaca_sim.py): one order per (cycle, account, symbol) whatever
the venue does, positions and fills equal to the venue's, reconciliation, replay offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.alpaca_sim import AlpacaSim
from tests.conftest import Home, prices_csv, run_vanta, signals, vault_def
from vanta_box.core.timeutil import parse_ts
from vanta_box.service import venues

T0 = "2026-11-02T00:00:00Z"
T1 = "2026-11-03T00:00:00Z"
T2 = "2026-11-04T00:00:00Z"
PASS = {"VANTA_PASSPHRASE": "a long passphrase for the live tests"}
KEYS = {"F1": ("PKF1LIVEKEY0000000001", "f1-secret-9c2f47e1d5b8a6c3e0f1d2c3b4a59687"),
        "F2": ("PKF2LIVEKEY0000000002", "f2-secret-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d")}
INSTRUMENTS = [
    {"symbol": "AAA", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BBB", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BTC/USD", "asset_class": "crypto", "lot_step": "0.0001", "min_notional": "10"},
]


class FakeClock:
    """The venues' clock in these tests, shared with the server: a wait (a rate limit's
    reset, a poll interval) moves time on at once instead of sleeping."""

    def __init__(self) -> None:
        self.moment = parse_ts("2026-11-03T00:00:00Z")

    def now(self) -> int:
        return self.moment - self.moment % 1_000_000

    def precise(self) -> int:
        return self.moment

    def sleep(self, seconds: float) -> None:  # seconds, not money
        self.moment += int(seconds * 1_000_000)

    def seconds(self) -> float:  # the server's time.time(), not money
        return self.moment / 1_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(venues, "SystemClock", lambda: fake)
    return fake


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[AlpacaSim]:
    with AlpacaSim(clock=clock.seconds) as server:
        for key_id, secret in KEYS.values():
            server.add_account(key_id, secret, cash="10000")
        server.set_price("AAA", "100")
        server.set_price("BBB", "50")
        server.set_price("BTC/USD", "20000")
        yield server


def packet(account_id: str, base_url: str) -> dict[str, Any]:
    key_id, secret = KEYS[account_id]
    return {"packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "alpaca", "key_id": key_id,
                                        "secret_key": secret, "paper": True,
                                        "base_url": base_url},
            "fee_agreement": {"type": "flat", "flat_usd": "100"}}


@pytest.fixture
def live(home: Home, sim: AlpacaSim) -> Home:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", INSTRUMENTS), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("AAA", T0, "100"), ("BBB", T0, "50"), ("BTC/USD", T0, "20000")])), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "0.4", None), ("BBB", "0.3", None), ("BTC/USD", "0.3", None)])),
        "--at", T0)
    home.ok("onboard", home.write("m.json", {
        "packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "100000"}}),
        *(home.write(f"{a}.json", packet(a, sim.base_url)) for a in KEYS), "--at", T0,
        env=PASS)
    return home


def venue_positions(sim: AlpacaSim, account_id: str) -> dict[str, D]:
    key = KEYS[account_id][0]
    return {s: sim.position_qty(key, s) for s in ("AAA", "BBB", "BTC/USD")
            if sim.position_qty(key, s)}


def our_positions(home: Home, account_id: str) -> dict[str, D]:
    return {p["symbol"]: D(p["qty"]) for p in home.account(account_id)["positions"]}


def test_a_cycle_trades_alpaca_followers_once_each_and_matches_the_venue(
        live: Home, sim: AlpacaSim) -> None:
    sim.partial_steps = 2  # each order fills in two executions, over two polls
    result = live.ok("cycle", "run", "--at", T1, env=PASS)
    assert "done" in result.out
    for account_id in KEYS:
        # sized from the venue's cash (10000, a deposit to vanta: no PnL) at vanta's marks:
        # AAA 4000/100 = 40, BBB 3000/50 = 60, BTC 3000/20000 = 0.15
        assert venue_positions(sim, account_id) == {"AAA": D(40), "BBB": D(60),
                                                    "BTC/USD": D("0.15")}
        assert our_positions(live, account_id) == venue_positions(sim, account_id)
        assert D(live.account(account_id)["cash"]) == sim.cash(KEYS[account_id][0])
    posts = [r for r in sim.requests if r.method == "POST"]
    coids = [r.body["client_order_id"] for r in posts]
    assert len(coids) == len(set(coids)) == 6 and all(c.startswith("vb-") for c in coids)
    fills = [f for f in live.trade_log() if f["kind"] == "fill" and f.get("venue") == "alpaca"]
    assert len(fills) == 12  # two executions per order
    pnl = {a["account_id"]: a for a in live.memory("pnl_summary.json")["accounts"]}
    assert D(pnl["F1"]["realized_pnl"]) == 0  # the deposit is not PnL


def test_rate_limits_and_a_5xx_after_create_never_make_a_second_order(
        live: Home, sim: AlpacaSim) -> None:
    sim.fill_on_submit = True
    sim.rate_limit(3)
    sim.fail_after_create(2)
    live.ok("cycle", "run", "--at", T1, env=PASS)
    for account_id in KEYS:
        assert our_positions(live, account_id) == venue_positions(sim, account_id)
    orders = [o for acct in sim.accounts.values() for o in acct.orders]
    assert len(orders) == 6
    assert len({o.client_order_id for o in orders}) == 6


def test_a_position_changed_at_the_venue_is_a_discrepancy_corrected_next_cycle(
        live: Home, sim: AlpacaSim) -> None:
    sim.fill_on_submit = True
    live.ok("cycle", "run", "--at", T1, env=PASS)
    key = KEYS["F1"][0]
    sim.set_position(key, "AAA", "45", "100")  # bought 5 by hand at the venue
    sim.deposit(KEYS["F2"][0], "500")
    live.ok("cycle", "run", "--at", T2, env=PASS)
    events = _journal(live)
    (discrepancy,) = [e for e in events if e["kind"] == "discrepancy"]
    assert (discrepancy["symbol"], discrepancy["ours"], discrepancy["venue"]) == ("AAA", "40",
                                                                                 "45")
    flows = [e for e in events if e["kind"] == "flow" and e["account_id"] == "F2"]
    assert [f["amount"] for f in flows][-1] == "500"
    assert our_positions(live, "F1") == venue_positions(sim, "F1")
    assert our_positions(live, "F2") == venue_positions(sim, "F2")


def test_replay_and_verify_pass_offline_with_the_venue_gone(live: Home, sim: AlpacaSim,
                                                            tmp_path: Path) -> None:
    sim.partial_steps = 2
    live.ok("cycle", "run", "--at", T1, env=PASS)
    sim.stop()
    verdict = run_vanta("audit", "verify", "--db", str(live.root / "vanta.db"))
    assert verdict.code == 0, verdict.out + verdict.err
    assert "replay: identical" in verdict.out


def test_secrets_never_leave_the_keystore(live: Home, sim: AlpacaSim) -> None:
    sim.partial_steps = 2
    live.ok("cycle", "run", "--at", T1, env=PASS)
    live.ok("report")
    for path in live.root.rglob("*"):
        if path.is_file() and path.name != "keystore":
            data = path.read_bytes()
            for key_id, secret in KEYS.values():
                assert secret.encode() not in data, path
                assert key_id.encode() not in data, path


def _journal(home: Home) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(home.root / "vanta.db") as conn:
        return [{**json.loads(p), "kind": k} for k, p in
                conn.execute("SELECT kind, payload FROM journal ORDER BY seq")]


def _killed(home: Home, *args: str, after_send: int) -> int:
    import os
    import subprocess
    import sys

    env = {**os.environ, **PASS, "VANTA_TEST_CRASH_AFTER_SEND": str(after_send)}
    done = subprocess.run([sys.executable, "-m", "vanta_box", "--home", str(home.root), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode


@pytest.mark.parametrize("after_send", [1, 2, 3, 4, 6])
def test_killed_between_an_order_and_its_answer_the_resume_adopts_it(
        live: Home, sim: AlpacaSim, after_send: int) -> None:
    sim.fill_on_submit = True
    assert _killed(live, "cycle", "run", "--at", T1, after_send=after_send) == 137
    assert live.vanta("audit", "verify").code == 0  # an honest interrupted home verifies
    live.ok("cycle", "run", "--at", T1, env=PASS)  # the resumption
    assert live.vanta("audit", "verify").code == 0
    for account_id in KEYS:
        assert our_positions(live, account_id) == venue_positions(sim, account_id)
    for coid in {r.body["client_order_id"] for r in sim.requests if r.method == "POST"}:
        assert len(sim.order_posts(coid)) == 1, coid  # adopted, never sent again
    assert len(sim.order_posts()) == 6


def test_partial_fills_arrive_over_two_commands(live: Home, sim: AlpacaSim) -> None:
    sim.partial_steps = 3  # a third of each order per look at the venue
    live.ok("cycle", "run", "--at", T1, "--settle-timeout", "0", env=PASS)
    queue = live.memory("autotrade_queue.json")["orders"]
    assert queue and {o["status"] for o in queue} <= {"accepted", "partially_filled"}
    fills_after_cycle = len(_venue_fills(live))
    syncs = 0
    while (done := live.vanta("orders", "sync", "--at", T1, env=PASS)).code == 0:
        syncs += 1
        assert syncs < 10
    assert "nothing to sync" in done.err
    assert syncs >= 1 and len(_venue_fills(live)) > fills_after_cycle
    for account_id in KEYS:
        assert our_positions(live, account_id) == venue_positions(sim, account_id)
    fills = _venue_fills(live)
    venue_fills = [a for acct in sim.accounts.values() for _t, _s, a in acct.activities
                   if a["activity_type"] == "FILL"]
    assert sorted((f["fill_id"], D(f["qty"]), D(f["price"])) for f in fills) == sorted(
        (a["id"], D(a["qty"]), D(a["price"])) for a in venue_fills)
    assert live.vanta("audit", "verify").code == 0


def _venue_fills(home: Home) -> list[dict[str, Any]]:
    return [f for f in home.trade_log() if f["kind"] == "fill" and f.get("venue") == "alpaca"]


def test_vanta_reconcile_journals_what_the_venue_changed(live: Home, sim: AlpacaSim) -> None:
    sim.fill_on_submit = True
    live.ok("cycle", "run", "--at", T1, env=PASS)
    sim.set_position(KEYS["F1"][0], "BBB", "55", "50")  # 5 gone at the venue
    sim.deposit(KEYS["F1"][0], "250")  # and 250 more cash: as if sold by hand at 50
    out = live.ok("reconcile", "--account", "F1", "--at", T2, env=PASS).out
    assert "reconciled 1 live account" in out
    events = _journal(live)
    (discrepancy,) = [e for e in events if e["kind"] == "discrepancy"]
    # 5 BBB sold at the mark 50 by someone else: realized FIFO (cost 50): 0
    assert (discrepancy["symbol"], discrepancy["ours"], discrepancy["venue"],
            discrepancy["realized_pnl"]) == ("BBB", "60", "55", "0")
    # at the venue: 5 BBB gone and 250 more cash; adopting the sale at the mark
    # (5 x 50 = 250) explains that cash, so there is no new flow
    flows = [e for e in events if e["kind"] == "flow" and e["account_id"] == "F1"]
    assert [f["amount"] for f in flows] == ["10000"]  # only the first funding
    assert our_positions(live, "F1") == venue_positions(sim, "F1")
    assert D(live.account("F1")["cash"]) == sim.cash(KEYS["F1"][0])
    refused = live.vanta("reconcile", "--account", "M", "--at", T2, env=PASS)
    assert refused.code == 2 and "only live venues" in refused.err
    assert live.vanta("orders", "sync", "--at", T2, env=PASS).code == 1  # nothing working


def test_crypto_fees_reported_apart_as_cfee_are_booked_once(live: Home, sim: AlpacaSim) -> None:
    sim.fill_on_submit = True
    sim.crypto_fee_rate = D("0.0025")  # a buy pays in the coin, a sell in USD
    live.ok("cycle", "run", "--at", T1, env=PASS)
    live.ok("reconcile", "--at", T2, env=PASS)  # asks the activities again: nothing twice
    for account_id in KEYS:
        assert our_positions(live, account_id) == venue_positions(sim, account_id)
        assert D(live.account(account_id)["cash"]) == sim.cash(KEYS[account_id][0])
    events = _journal(live)
    fees = [e for e in events if e["kind"] == "venue.fee"]
    # 0.15 BTC bought: 0.000375 BTC of fee each, taken from the coin received
    assert [(f["account_id"], f["fee"], f["fee_currency"]) for f in fees] == [
        ("F1", "0.000375", "BTC"), ("F2", "0.000375", "BTC")]
    assert not [e for e in events if e["kind"] == "discrepancy"]


def test_keys_refused_by_the_venue_are_a_critical_alert_and_exit_4(
        live: Home, sim: AlpacaSim) -> None:
    """A 401 is `venue_error:auth`: the account is skipped (never retried blindly), the
    others trade, `vanta run --once` exits 4 and `vanta alerts` names the account."""
    sim.fill_on_submit = True
    sim.accounts[KEYS["F1"][0]].secret = "revoked-at-the-venue"
    run = live.vanta("run", "--once", "--at", T1, env=PASS)
    assert run.code == 4, run.out + run.err
    assert our_positions(live, "F1") == {} and venue_positions(sim, "F1") == {}
    assert our_positions(live, "F2") == venue_positions(sim, "F2") != {}
    doc = json.loads(live.ok("alerts", "--json", env=PASS).out)
    (auth,) = [a for a in doc["alerts"] if a["kind"] == "venue.error"]
    assert (auth["account_id"], auth["severity"], auth["state"]) == ("F1", "critical", "open")
    assert KEYS["F1"][1] not in run.out + run.err + json.dumps(doc)


def test_a_new_accounts_funding_is_no_alert_but_a_later_deposit_is(
        live: Home, sim: AlpacaSim) -> None:
    sim.fill_on_submit = True
    live.ok("cycle", "run", "--at", T1, env=PASS)  # the first reconciliation: 10000 each
    doc = json.loads(live.ok("alerts", "--json", "--all").out)
    assert [a for a in doc["alerts"] if a["kind"] == "flow"] == []
    sim.deposit(KEYS["F2"][0], "500")
    live.ok("cycle", "run", "--at", T2, env=PASS)
    doc = json.loads(live.ok("alerts", "--json").out)
    (flow,) = [a for a in doc["alerts"] if a["kind"] == "flow"]
    assert (flow["account_id"], flow["detail"]["net"]) == ("F2", "500")
    opening = [e for e in _journal(live) if e["kind"] == "flow" and e.get("opening")]
    assert sorted(e["account_id"] for e in opening) == ["F1", "F2"]
