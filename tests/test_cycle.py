"""The master account's cycle end to end through the CLI, numbers worked by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.conftest import T0, T1, T2, T3, Home, prices_csv, signals, vault_def


def fills(home: Home, account: str = "M") -> list[dict[str, str]]:
    return [line for line in home.trade_log() if line["kind"] == "fill"
            and line["account_id"] == account]


@pytest.fixture
def two_cycles(setup_vault) -> Home:  # type: ignore[no-untyped-def]
    vault = vault_def(risk={"cash_buffer": "0.1", "max_single_pos_pct": "0.5"},
                      paper={"slippage_bps": "10", "commission_bps": "5"})
    home: Home = setup_vault(vault, prices=[
        ("AAA", T0, "100"), ("BBB", T0, "50"), ("CCC", T0, "20"), ("BTC", T0, "40000"),
        ("AAA", T1, "110"), ("BBB", T1, "50"), ("CCC", T1, "20"), ("BTC", T1, "40000")])
    home.ok("signals", "ingest", home.write("s0.json", signals("V", T0, [
        ("AAA", "0.6", "a"), ("BBB", "0.3", "b"), ("CCC", "-0.2", "a"), ("BTC", "0.1", None)])))
    home.ok("cycle", "run", "--at", T0)
    return home


def test_first_cycle_allocates_caps_floors_and_fills(two_cycles: Home) -> None:
    home = two_cycles
    # sum of positive scores 0.6 + 0.3 + 0.1 = 1; investable 0.9
    # AAA 0.54 -> capped 0.5 (the 0.04 stays in cash); BBB 0.27; BTC 0.09; cash 0.14
    alloc = home.memory("vault_allocation.json")["vaults"][0]
    assert {k: D(v) for k, v in alloc["weights"].items()} == {
        "AAA": D("0.5"), "BBB": D("0.27"), "BTC": D("0.09")}
    assert D(alloc["cash_weight"]) == D("0.14")
    assert alloc["cycle_id"] == "V@2026-11-01T00:00:00Z"
    # targets: AAA 0.5*100000/100 = 500; BBB 27000/50 = 540; BTC 9000/40000 = 0.225
    # fills at mark * 1.001, commission 5 bps of notional:
    #   AAA 500 @ 100.1 = 50050, commission 25.025
    #   BBB 540 @ 50.05 = 27027, commission 13.5135
    #   BTC 0.225 @ 40040 = 9009, commission 4.5045
    got = [(f["symbol"], f["side"], D(f["qty"]), D(f["price"]), D(f["commission"]))
           for f in fills(home)]
    assert got == [("AAA", "buy", D("500"), D("100.1"), D("25.025")),
                   ("BBB", "buy", D("540"), D("50.05"), D("13.5135")),
                   ("BTC", "buy", D("0.225"), D("40040"), D("4.5045"))]
    m = home.account("M")
    # cash 100000 - 50075.025 - 27040.5135 - 9013.5045 = 13870.957
    assert D(m["cash"]) == D("13870.957")
    # equity at the cycle's marks: 13870.957 + 50000 + 27000 + 9000
    assert D(m["equity"]) == D("99870.957")
    aaa = next(p for p in m["positions"] if p["symbol"] == "AAA")
    # lot cost 100.1 + 25.025/500 = 100.15005; unrealized (100 - 100.15005) * 500
    assert D(aaa["avg_cost"]) == D("100.15005")
    assert D(aaa["unrealized_pnl"]) == D("-75.025")


def test_second_cycle_sells_first_and_realizes_fifo(two_cycles: Home) -> None:
    home = two_cycles
    home.ok("signals", "ingest", home.write("s1.json", signals("V", T1, [
        ("AAA", "0.2", "a"), ("CCC", "0.2", "b")])))
    home.ok("cycle", "run", "--at", T1)
    # NAV at the start: 13870.957 + 500*110 + 540*50 + 0.225*40000 = 104870.957
    pnl = home.memory("pnl_summary.json")
    assert D(pnl["vaults"][0]["last_cycle_nav"]) == D("104870.957")
    # weights AAA 0.45, CCC 0.45; targets AAA floor(47191.93065/110) = 429 (sell 71),
    # CCC floor(47191.93065/20) = 2359 (buy); BBB and BTC are no longer allocated: sold
    got = [(f["symbol"], f["side"], D(f["qty"])) for f in fills(home)][3:]
    assert got == [("AAA", "sell", D("71")), ("BBB", "sell", D("540")),
                   ("BTC", "sell", D("0.225")), ("CCC", "buy", D("2359"))]
    realized = [D(f["realized_pnl"]) for f in fills(home)][3:]
    # AAA: (109.89 - 100.15005) * 71 - 3.901095 = 687.635355
    # BBB: (49.95 - 50.075025) * 540 - 13.4865 = -81
    # BTC: (39960 - 40060.02) * 0.225 - 4.4955 = -27
    assert realized == [D("687.635355"), D("-81"), D("-27"), D("0")]
    m = next(a for a in pnl["accounts"] if a["account_id"] == "M")
    assert D(m["realized_pnl"]) == D("579.635355")
    # cash: 13870.957 + 7798.288905 + 26959.5135 + 8986.5045 = 57615.263905 after sells;
    # CCC 2359 @ 20.02 = 47227.18 + commission 23.61359 -> 57615.263905 - 47250.79359
    assert D(home.account("M")["cash"]) == D("10364.470315")


def test_stage_only_then_queue_execute(two_cycles: Home) -> None:
    home = two_cycles
    home.ok("signals", "ingest", home.write("s1.json", signals("V", T1, [("CCC", "1", None)])))
    home.ok("cycle", "run", "--stage-only", "--at", T1)
    queue = home.memory("autotrade_queue.json")["orders"]
    assert [(o["symbol"], o["side"], o["status"]) for o in queue] == [
        ("AAA", "sell", "staged"), ("BBB", "sell", "staged"), ("BTC", "sell", "staged"),
        ("CCC", "buy", "staged")]
    assert all(o["client_order_id"].startswith("vb-") for o in queue)
    shown = home.ok("queue", "show")
    assert "4 staged order(s)" in shown.out
    assert home.vanta("cycle", "run", "--stage-only", "--at", T1).code == 1
    home.ok("queue", "execute", "--at", T1)
    assert home.memory("autotrade_queue.json")["orders"] == []
    assert [f["symbol"] for f in fills(home)][3:] == ["AAA", "BBB", "BTC", "CCC"]
    assert home.vanta("queue", "execute", "--at", T1).code == 1


def test_cycle_cannot_run_twice_or_backwards(two_cycles: Home) -> None:
    home = two_cycles
    again = home.vanta("cycle", "run", "--at", T0)
    assert again.code == 1 and "already ran" in again.err
    assert home.vanta("cycle", "run", "--at", "2026-10-01T00:00:00Z").code == 1


def test_client_order_ids_are_deterministic_and_refused_twice_by_paper() -> None:
    from vanta_box.core.ids import client_order_id
    from vanta_box.core.models import Instrument, PaperTerms
    from vanta_box.execution.paper import PaperVenue
    from vanta_box.execution.venue import LiveOrder, VenueError

    coid = client_order_id("V@2026-11-01T00:00:00Z", "M", "AAA")
    assert coid == client_order_id("V@2026-11-01T00:00:00Z", "M", "AAA")
    assert coid != client_order_id("V@2026-11-02T00:00:00Z", "M", "AAA")
    assert len(coid) <= 36

    class Book:
        account_id, cash, executed_ids = "M", D("1000"), {coid}

        def held(self, symbol: str) -> D:
            return D(0)

        def symbols(self) -> list[str]:
            return []

    venue = PaperVenue(Book(), {"AAA": D("10")}, {"AAA": Instrument("AAA", "equity")}, D(0),
                       PaperTerms())
    with pytest.raises(VenueError) as refused:
        venue.submit(LiveOrder(coid, "AAA", "buy", D("1")))  # type: ignore[arg-type]
    assert refused.value.kind == "duplicate_id"


def _guard_home(setup_vault, on_drawdown: str) -> Home:  # type: ignore[no-untyped-def]
    vault = vault_def(risk={"max_drawdown": "0.1", "on_drawdown": on_drawdown})
    home: Home = setup_vault(vault, cash="1000", prices=[
        ("AAA", T0, "100"), ("BBB", T0, "10"), ("AAA", T1, "85"), ("BBB", T1, "10"),
        ("AAA", T2, "85"), ("BBB", T2, "10"), ("AAA", T3, "85"), ("BBB", T3, "10")])
    home.ok("signals", "ingest", home.write("s0.json", signals("V", T0, [("AAA", "1", None)])))
    home.ok("cycle", "run", "--at", T0)  # buys 10 AAA at 100, NAV 1000 = peak
    home.ok("signals", "ingest", home.write("s1.json", signals("V", T1, [
        ("AAA", "0.5", None), ("BBB", "0.5", None)])))
    home.ok("cycle", "run", "--at", T1)  # NAV 850 < 0.9 * 1000 = 900: halted
    return home


def test_drawdown_halt_blocks_buys_but_sells_toward_target(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home = _guard_home(setup_vault, "halt")
    assert home.memory("vault_allocation.json")["vaults"][0]["status"] == "halted"
    # targets: AAA floor(0.5 * 850 / 85) = 5 -> sell 5; BBB 42 -> no buy while halted
    assert [(f["symbol"], f["side"], f["qty"]) for f in fills(home)][1:] == [("AAA", "sell", "5")]
    skips = [line for line in home.trade_log()
             if line["kind"] == "skip" and line.get("reason") == "halted_no_buys"]
    assert [s["symbol"] for s in skips] == ["BBB"]
    halted = [e for e in home.trade_log() if e["kind"] == "fill"]
    assert halted
    # resume without resetting the peak: NAV 850 is still below 900 -> halts again
    home.ok("vault", "resume", "V", "--at", T2)
    home.ok("cycle", "run", "--at", T2)
    assert home.memory("vault_allocation.json")["vaults"][0]["status"] == "halted"
    # resume with a new peak (850): the next cycle buys again
    home.ok("vault", "resume", "V", "--reset-peak", "--at", T3)
    home.ok("cycle", "run", "--at", T3)
    assert home.memory("vault_allocation.json")["vaults"][0]["status"] == "active"
    assert fills(home)[-1]["symbol"] == "BBB" and fills(home)[-1]["side"] == "buy"


def test_drawdown_liquidate_sells_everything(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home = _guard_home(setup_vault, "liquidate")
    assert [(f["symbol"], f["side"], f["qty"]) for f in fills(home)][1:] == [
        ("AAA", "sell", "10")]
    assert home.account("M")["positions"] == []
    assert D(home.account("M")["cash"]) == D("850")


def test_maintenance_overlay_stages_nothing_and_expires(two_cycles: Home) -> None:
    home = two_cycles
    home.ok("signals", "ingest", home.write("s1.json", signals("V", T1, [("CCC", "1", None)])))
    home.ok("overlay", "set", "V", "--maintenance", "--ttl", "1d", "--at", T1)
    assert home.memory("vault_overlay.json")["overlays"][0]["expires_at"] == T2
    home.ok("cycle", "run", "--at", T1)
    assert len(fills(home)) == 3
    assert home.memory("vault_allocation.json")["vaults"][0]["status"] == "maintenance"
    home.ok("prices", "ingest", home.write("p.csv", prices_csv([
        ("AAA", T2, "110"), ("BBB", T2, "50"), ("CCC", T2, "20"), ("BTC", T2, "40000")])))
    home.ok("cycle", "run", "--at", T2)  # expired at T2 (set_at <= t < expires_at)
    assert len(fills(home)) == 7
    expired = [e for e in home.trade_log() if e["kind"] == "overlay.expired"]
    assert expired == []  # not an order-lifecycle line; it is in the journal instead
    assert home.memory("vault_overlay.json")["overlays"] == []
