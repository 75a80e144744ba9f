"""SPEC §4 Mirroring through the CLI: every mode, caps, personas, skips (hand-worked)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tests.conftest import T0, T1, Home, signals, vault_def


def follower(account_id: str, cash: str, mode: str = "proportional", multiplier: str = "1",
             prefs: list[str] | None = None, **caps: str) -> dict[str, Any]:
    packet: dict[str, Any] = {
        "packet_version": 1, "account_id": account_id, "role": "follower", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": cash},
        "mirroring": {"mode": mode, "multiplier": multiplier, **caps},
        "fee_agreement": {"type": "performance_or_flat", "perf_share": "0.20",
                          "flat_usd": "2000"}}
    if prefs is not None:
        packet["persona_prefs"] = prefs
    return packet


def holdings(home: Home, account_id: str) -> dict[str, D]:
    return {p["symbol"]: D(p["qty"]) for p in home.account(account_id)["positions"]}


def skips(home: Home) -> dict[str, str]:
    return {line["account_id"]: line["reason"] for line in home.trade_log()
            if line["kind"] == "skip" and line.get("symbol") is None and line["account_id"]}


@pytest.fixture
def mirrored(setup_vault) -> Home:  # type: ignore[no-untyped-def]
    vault = vault_def(mirroring={"min_account_equity": "5000"})
    home: Home = setup_vault(vault, cash="1000000", prices=[
        ("AAA", T0, "100"), ("BBB", T0, "40"), ("BTC", T0, "30000"),
        ("AAA", T1, "100"), ("BBB", T1, "40"), ("BTC", T1, "30000")])
    packets = [
        follower("F1", "10000"),
        follower("F2", "20000", multiplier="0.5"),
        follower("F3", "100000", mode="capped", cap_usd="20000", max_position_pct="0.25",
                 max_order_notional="3000"),
        follower("F4", "10000", mode="shadow"),
        follower("F5", "3000"),
        follower("F6", "10000", prefs=["b"]),
        follower("F7", "10000"),
    ]
    home.ok("onboard", *[home.write(f"{p['account_id']}.json", p) for p in packets], "--at", T0)
    home.ok("onboard", home.write("F8.json", follower("F8", "10000")), "--at", T1)
    home.ok("follower", "pause", "F7", "--at", T0)
    # a: AAA 0.5; b: BBB 0.3; everyone: BTC 0.2 -> all personas AAA 0.5, BBB 0.3, BTC 0.2
    home.ok("signals", "ingest", home.write("s.json", signals("V", T0, [
        ("AAA", "0.5", "a"), ("BBB", "0.3", "b"), ("BTC", "0.2", None)])))
    home.ok("cycle", "run", "--at", T0)
    return home


def test_proportional_followers_floor_to_whole_shares_and_crypto_steps(mirrored: Home) -> None:
    # S = 10000 * 1: AAA 5000/100 = 50; BBB 3000/40 = 75; BTC 2000/30000 = 0.0666.. -> 0.0666
    expected = {"AAA": D("50"), "BBB": D("75"), "BTC": D("0.0666")}
    assert holdings(mirrored, "F1") == expected
    # S = 20000 * 0.5 = 10000: the same targets
    assert holdings(mirrored, "F2") == expected
    # cash: 10000 - 5000 - 3000 - 0.0666 * 30000 (1998) = 2
    assert D(mirrored.account("F1")["cash"]) == D("2")


def test_capped_follower_caps_sizing_position_and_order_notional(mirrored: Home) -> None:
    # S = min(100000 * 1, 20000) = 20000; w capped at 0.25: AAA 0.25, BBB 0.25, BTC 0.2
    # targets AAA 50, BBB 125, BTC 0.1333; each order capped at 3000 of notional:
    #   AAA floor(3000/100) = 30; BBB floor(3000/40) = 75; BTC floor(3000/30000) = 0.1
    assert holdings(mirrored, "F3") == {"AAA": D("30"), "BBB": D("75"), "BTC": D("0.1")}
    capped = {line["symbol"]: line["capped_from"] for line in mirrored.trade_log()
              if line["kind"] == "child_order" and line["account_id"] == "F3"}
    assert capped == {"AAA": "50", "BBB": "125", "BTC": "0.1333"}


def test_shadow_follower_is_booked_at_marks_and_never_sent(mirrored: Home) -> None:
    f4 = mirrored.account("F4")
    assert f4["mode"] == "shadow"
    assert holdings(mirrored, "F4") == {"AAA": D("50"), "BBB": D("75"), "BTC": D("0.0666")}
    assert D(f4["cash"]) == D("2")
    lines = [line for line in mirrored.trade_log() if line["account_id"] == "F4"]
    assert {line["kind"] for line in lines} == {"child_order", "fill"}
    assert all(line["status"] == "shadow" for line in lines if line["kind"] == "child_order")
    # booked by the shadow venue (never a broker): no `submitted`, the fill says so
    assert all(line.get("shadow") is True and line["venue"] == "shadow"
               for line in lines if line["kind"] == "fill")


def test_persona_prefs_exclude_other_personas_signals(mirrored: Home) -> None:
    # persona b: BBB 0.3 and BTC 0.2 (untagged) -> BBB 0.6, BTC 0.4 of S = 10000
    # BBB 6000/40 = 150; BTC 4000/30000 = 0.1333
    assert holdings(mirrored, "F6") == {"BBB": D("150"), "BTC": D("0.1333")}
    alloc = mirrored.memory("vault_allocation.json")["vaults"][0]["persona_allocations"]
    assert alloc == [{"cash_weight": "0", "personas": ["b"],
                      "weights": {"BBB": "0.6", "BTC": "0.4"}}]


def test_skips_are_journaled_with_their_reason(mirrored: Home) -> None:
    assert skips(mirrored) == {"F5": "below_min_equity", "F7": "paused", "F8": "not_onboarded"}
    assert holdings(mirrored, "F5") == {} and holdings(mirrored, "F7") == {}
    f5 = next(line for line in mirrored.trade_log() if line.get("account_id") == "F5")
    assert (f5["equity"], f5["min_account_equity"]) == ("3000", "5000")


def test_child_orders_link_to_the_vault_cycle_with_deterministic_ids(mirrored: Home) -> None:
    from vanta_box.core.ids import client_order_id

    children = [line for line in mirrored.trade_log() if line["kind"] == "child_order"]
    intents = {line["order_id"] for line in mirrored.trade_log() if line["kind"] == "intent"}
    assert children and all(c["parent_id"] in intents for c in children)
    for c in children:
        assert c["parent_id"] == f"V@{T0}/{c['symbol']}"
        assert c["client_order_id"] == client_order_id(f"V@{T0}", c["account_id"], c["symbol"])
    assert len({c["client_order_id"] for c in children}) == len(children)


def test_portfolio_lists_every_follower(mirrored: Home) -> None:
    doc = mirrored.memory("portfolio.json")
    modes = {a["account_id"]: (a["role"], a["mode"], a["status"]) for a in doc["accounts"]}
    assert modes["M"] == ("manager", "master", "active")
    assert modes["F3"] == ("follower", "capped", "active")
    assert modes["F4"] == ("follower", "shadow", "active")
    assert modes["F7"] == ("follower", "proportional", "paused")


def test_next_cycle_picks_up_resumed_and_late_followers_and_stays_put(mirrored: Home) -> None:
    mirrored.ok("follower", "resume", "F7", "--at", T1)
    mirrored.ok("follower", "remove", "F2", "--at", T1)
    mirrored.ok("cycle", "run", "--at", T1)
    assert holdings(mirrored, "F7") == {"AAA": D("50"), "BBB": D("75"), "BTC": D("0.0666")}
    assert holdings(mirrored, "F8") == holdings(mirrored, "F7")
    t1_orders = {line["account_id"] for line in mirrored.trade_log()
                 if line["kind"] == "child_order" and line["ts"] == T1}
    # F1 already at target (same prices and signals); F2 removed: no more mirroring;
    # F3's orders were cut by max_order_notional, so it keeps converging:
    # AAA 30 -> 50 (2000 notional), BBB 75 -> 125 (2000), BTC 0.1 -> 0.1333 (999)
    assert t1_orders == {"F3", "F7", "F8"}
    assert holdings(mirrored, "F3") == {"AAA": D("50"), "BBB": D("125"), "BTC": D("0.1333")}
    assert mirrored.account("F2")["status"] == "removed"
    assert holdings(mirrored, "F2")  # history and holdings stay


def test_follower_list_and_bad_transitions(mirrored: Home) -> None:
    listed = mirrored.ok("follower", "list").out
    assert "F3\tV\tcapped\tactive\tpaper" in listed
    assert mirrored.vanta("follower", "pause", "F7", "--at", T1).code == 1  # already paused
    assert mirrored.vanta("follower", "pause", "M").code == 2  # the manager is no follower
    assert mirrored.vanta("follower", "remove", "NOPE").code == 2


def test_manual_trade_drift_is_brought_back_next_cycle(mirrored: Home) -> None:
    # F1 sells 20 AAA by hand at the paper venue after the T0 cycle...
    mirrored.ok("paper", "trade", "F1", "AAA", "20", "--side", "sell",
                "--at", "2026-11-01T12:00:00Z")
    assert holdings(mirrored, "F1")["AAA"] == D("30")
    external = [line for line in mirrored.trade_log() if line.get("external")]
    assert [(e["account_id"], e["side"], e["qty"], e["price"]) for e in external] == [
        ("F1", "sell", "20", "100")]
    # ...cash 2 + 2000 = 2002; the T1 cycle (same prices, signals) buys the 20 back
    mirrored.ok("cycle", "run", "--at", T1)
    assert holdings(mirrored, "F1") == {"AAA": D("50"), "BBB": D("75"), "BTC": D("0.0666")}
    assert mirrored.vanta("paper", "trade", "F1", "AAA", "1000", "--side", "sell").code == 1
    assert mirrored.vanta("paper", "trade", "F1", "ZZZ", "1", "--side", "buy").code == 2


def test_stage_only_keeps_shadow_orders_with_the_others(mirrored: Home) -> None:
    # new signals at T1, staged only: the shadow book must not move before the others
    mirrored.ok("signals", "ingest", mirrored.write("s1.json", signals("V", T1, [
        ("AAA", "1", None)])))
    mirrored.ok("cycle", "run", "--stage-only", "--at", T1)
    assert holdings(mirrored, "F4") == {"AAA": D("50"), "BBB": D("75"), "BTC": D("0.0666")}
    queued = {o["account_id"] for o in mirrored.memory("autotrade_queue.json")["orders"]}
    assert "F4" in queued and "F1" in queued
    mirrored.ok("queue", "execute", "--at", T1)
    # F1 and its shadow twin F4 end alike: 100 AAA (10000 / 100), nothing else
    assert holdings(mirrored, "F4") == holdings(mirrored, "F1") == {"AAA": D("100")}


def test_default_personas_follow_the_vault_and_backdating_is_refused(mirrored: Home) -> None:
    # the vault drops persona b: F1 (all personas by default) follows; F6 (only b) is
    # skipped with a reason instead of selling everything
    mirrored.ok("vault", "import", mirrored.write("v.json", {"vaults": [
        vault_def(personas=["a"], mirroring={"min_account_equity": "5000"})]}), "--at", T1)
    mirrored.ok("signals", "ingest", mirrored.write("s1.json", signals("V", T1, [
        ("AAA", "0.5", "a")])))
    mirrored.ok("cycle", "run", "--at", T1)
    assert holdings(mirrored, "F1") == {"AAA": D("100")}
    assert skips(mirrored)["F6"] == "no_personas"
    assert holdings(mirrored, "F6") == {"BBB": D("150"), "BTC": D("0.1333")}
    late = mirrored.vanta("follower", "remove", "F1", "--at", "2026-10-15T00:00:00Z")
    assert late.code == 1 and "later" in late.err


def test_two_manual_trades_at_the_same_time(mirrored: Home) -> None:
    at = "2026-11-01T12:00:00Z"
    mirrored.ok("paper", "trade", "F1", "AAA", "1", "--side", "sell", "--at", at)
    mirrored.ok("paper", "trade", "F1", "AAA", "1", "--side", "sell", "--at", at)
    assert holdings(mirrored, "F1")["AAA"] == D("48")
