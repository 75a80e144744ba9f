"""The figures of the report pages: returns, drawdown, tracking error, charts, the halt
banner, the tracking ledger's causes, fee totals; numbers written out as SPEC gives them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import T0, T1, T2, T3, Home, signals, vault_def
from vanta_box.domain.returns import (
    Flow,
    chain,
    cycle_gap,
    drawdowns,
    max_drawdown,
    time_weighted_return,
    tracking_error,
)
from vanta_box.reports import charts

D = Decimal


# ---------------------------------------------------------------- pure maths


def test_twr_without_flows_is_the_growth_of_the_starting_cash() -> None:
    assert time_weighted_return(D("250000"), D("262500")) == D("0.05")
    assert time_weighted_return(D("0"), D("10")) is None  # nothing invested


def test_twr_chains_the_sub_periods_between_flows_so_a_deposit_is_no_gain() -> None:
    # 100 grows to 110 (+10 %), then 50 is deposited (160), which grows to 176 (+10 %).
    assert time_weighted_return(D("100"), D("176"), [Flow(D("110"), D("50"))]) == D("0.21")
    # a withdrawal of everything, then a new deposit: the empty stretch is skipped
    assert time_weighted_return(D("100"), D("55"), [Flow(D("120"), D("-120")),
                                                    Flow(D("0"), D("50"))]) == D("0.32")


def test_chain_and_drawdown() -> None:
    assert chain([D("0.1"), None, D("-0.1")]) == D("-0.01")
    assert chain([None]) is None
    peaks, dds = drawdowns([D("100"), D("120"), D("90"), D("130")])
    assert peaks == [D("100"), D("120"), D("120"), D("130")]
    assert dds == [D("0"), D("0"), D("0.25"), D("0")]
    assert max_drawdown([D("100"), D("120"), D("90"), D("130")]) == D("0.25")


def test_tracking_error_is_the_rms_of_the_cycles_gap_norms() -> None:
    assert cycle_gap([D("0.3"), D("-0.4")]) == D("0.5")
    assert tracking_error([D("0.5"), D("0.1")]) == D("0.13").sqrt()
    assert tracking_error([]) is None


def test_charts_are_exact_escaped_and_deterministic() -> None:
    def make() -> str:
        chart = charts.Chart("c<1>", "NAV <b>", "a & b", ["d1", "d2", "d3"],
                             lambda v: f"{v:,.2f}")
        return str(charts.line_chart(chart, [
            charts.Series("peak", [D("100"), D("120"), D("120")], "#000", dashed=True),
            charts.Series("nav", [D("100"), D("120"), D("90.123456789")], "#111")],
            band=(0, 1), markers=[charts.Marker(2, "halt")]))
    svg = make()
    assert svg == make()
    assert "<b>" not in svg and "NAV &lt;b&gt;" in svg and "a &amp; b" in svg
    assert "<title" in svg and "<desc" in svg and 'role="img"' in svg
    assert "<script" not in svg and "<details>" in svg  # the data as a table
    coordinates = re.findall(r'[xy][12]?="(-?[0-9.]+)"', svg)
    assert coordinates and all(re.fullmatch(r"-?\d+(\.\d)?", c) for c in coordinates)
    assert "90.12" in svg  # the table shows the value itself
    assert charts.nice_ticks(D("0"), D("97")) == [D(0), D(20), D(40), D(60), D(80), D(100)]


# ---------------------------------------------------------------- a halted vault


T4 = "2026-11-05T00:00:00Z"


def follower(account: str, cash: str, multiplier: str) -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account, "role": "follower", "vault_id": "V",
            "broker": {"kind": "paper", "starting_cash": cash},
            "mirroring": {"mode": "proportional", "multiplier": multiplier},
            "fee_agreement": {"type": "flat", "perf_share": "0", "flat_usd": "300"}}


def halted_home(setup_vault: Any) -> Home:
    """A 5 % drawdown guard over AAA and BBB (half each); the manager has 100,000 and buys
    500 of each at 100. Follower F has 10,000 at multiplier 2: its AAA (100 shares) takes
    all its cash and its BBB buy is rejected (insufficient_cash). AAA falls to 80 at T2:
    NAV 90,000, 10 % below the peak, and the vault halts. G (20,000, multiplier 1)
    follows exactly."""
    prices = [(s, t, "100") for s in ("AAA", "BBB") for t in (T0, T1)]
    prices += [("AAA", t, "80") for t in (T2, T3)] + [("BBB", t, "100") for t in (T2, T3)]
    home: Home = setup_vault(vault_def(risk={"max_drawdown": "0.05"}), prices=prices)
    home.ok("onboard", home.write("f.json", follower("F", "10000", "2")), "--at", T0)
    home.ok("onboard", home.write("g.json", follower("G", "20000", "1")), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "1", None), ("BBB", "1", None)])), "--at", T0)
    for at in (T0, T1, T2, T3):
        home.ok("cycle", "run", "--at", at)
    home.ok("overlay", "set", "V", "--maintenance", "--ttl", "2d", "--at", T3)
    home.ok("report", "--at", "2026-11-04T06:30:00Z")
    return home


def test_vault_page_of_a_halted_vault(setup_vault: Any) -> None:
    home = halted_home(setup_vault)
    page = (home.root / "reports" / "vault_V.html").read_text()
    assert "Halted by the drawdown guard" in page
    assert "<code>vanta vault resume V</code>" in page
    assert "<code>vanta vault resume V --reset-peak</code>" in page
    assert "NAV 90,000.00 fell below 95,000.00" in page
    assert re.search(r'<svg class="chart" id="nav-V"[^>]*>.*>halt</text>', page, re.S)
    # max drawdown 10 %, and the return since inception 90,000 / 100,000 - 1
    assert re.search(r"max drawdown</div><div class=\"v\">10.00 %", page)
    assert re.search(r"return since inception \(TWR\)</div><div class=\"v\">-10.00 %", page)
    # the master's positions: 500 AAA at 100 marked 80, 500 BBB at 100
    assert re.search(r"<td>AAA</td><td class=\"num\">500</td><td class=\"num\">100.00</td>"
                     r"<td class=\"num\">80.00</td>\s*<td class=\"num\">40,000.00</td>"
                     r"<td class=\"num neg\">-10,000.00</td><td class=\"num\">44.44 %</td>"
                     r"<td class=\"num\">50.00 %</td>", page)
    # the maintenance overlay set at T3 for 2 days, seen 6 h 30 min later
    assert "<td>1 d 17 h 30 min</td>" in page


def test_tracking_ledger_names_the_reject_the_multiplier_and_the_halt(setup_vault: Any
                                                                      ) -> None:
    home = halted_home(setup_vault)
    doc = json.loads(home.ok("statement", "F", "--period", "2026-11", "--json").out)
    tracking = doc["tracking"]
    assert [c["at"] for c in tracking["cycles"]] == [T0, T1, T2, T3]
    first = tracking["cycles"][0]
    lines = {x["symbol"]: x for x in first["symbols"]}
    # F holds 100 AAA (all its 10,000) and no BBB: gaps -0.5 and 0.5, norm sqrt(0.5)
    assert (lines["AAA"]["weight"], lines["AAA"]["gap"]) == ("1", "-0.5")
    assert (lines["BBB"]["weight"], lines["BBB"]["gap"]) == ("0", "0.5")
    assert D(first["gap"]) == D("0.5").sqrt()
    assert "rejected: insufficient cash" in lines["BBB"]["cause"]
    assert "multiplier" in lines["AAA"]["cause"]
    halted = {x["symbol"]: x for x in tracking["cycles"][2]["symbols"]}
    assert "vault halted by its drawdown guard: no buys" in halted["BBB"]["cause"]
    gaps = [D(c["gap"]) for c in tracking["cycles"]]
    assert D(tracking["tracking_error"]) == (sum(g * g for g in gaps) / 4).sqrt()
    g = json.loads(home.ok("statement", "G", "--period", "2026-11", "--json").out)
    assert D(g["tracking"]["cycles"][0]["gap"]) == 0  # 100 AAA and 100 BBB of 20,000
    page = (home.root / "reports" / "followers" / "F.html").read_text()
    assert "rejected: insufficient cash" in page
    assert '<svg class="chart" id="eq-F"' in page and '<svg class="chart" id="fdd-F"' in page


def test_follower_pages_hold_no_other_account(setup_vault: Any) -> None:
    home = halted_home(setup_vault)
    reports = home.root / "reports"
    ids = {"M", "F", "G"}
    for name in ("F", "G"):
        page = (reports / "followers" / f"{name}.html").read_text()
        words = set(re.findall(r"[A-Za-z0-9_]+", re.sub(r"<[^>]+>", " ", page)))
        assert not (ids - {name}) & words, name


def test_fee_ledger_totals_per_period(setup_vault: Any) -> None:
    home = halted_home(setup_vault)
    home.ok("fees", "run", "--period", "2026-11", "--at", "2026-12-01T00:00:00Z",
            "--allow-future")
    home.ok("report", "--at", "2026-12-01T00:00:00Z")
    page = (home.root / "reports" / "fees.html").read_text()
    # F and G: flat 300 each for 30 active days of 30
    total = re.search(r'<tr class="total"><td>all periods</td><td class="num">2</td>.*?</tr>',
                      page, re.S)
    assert total and "600.00" in total.group(0)


def test_the_demo_follower_pages_scan_clean(tmp_path: Path) -> None:
    from vanta_box import home as homes
    from vanta_box.service import demo

    root = tmp_path / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    portfolio = json.loads((root / "memory" / "portfolio.json").read_text())
    ids = {a["account_id"] for a in portfolio["accounts"]}
    for page in (root / "reports" / "followers").glob("*.html"):
        text = page.read_text()
        assert not [other for other in ids - {page.stem} if other in text], page.name


def test_a_prefetched_ledger_is_the_one_read_alone(tmp_path: Path) -> None:
    """The report reads the journal once for a batch of followers; a statement reads it
    for one follower: the ledgers are the same (the demo has a paused follower, one below
    the minimum equity, persona preferences, caps, a manual trade and a maintenance
    overlay)."""
    from vanta_box import home as homes
    from vanta_box.reports.html import last_moment
    from vanta_box.service import demo, performance
    from vanta_box.store import repo
    from vanta_box.store.db import open_readonly

    root = tmp_path / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    with open_readonly(root / "vanta.db") as conn:
        followers = [a for a in repo.accounts(conn) if a.role == "follower"]
        as_of = last_moment(conn)
        alone = [performance.tracking_ledger(conn, a, as_of) for a in followers]
        with performance.prefetched(conn, followers[1:4], performance.Marks(conn)):
            batched = [performance.tracking_ledger(conn, a, as_of) for a in followers]
    assert alone == batched
    causes = {x["cause"] for ledger in alone for c in ledger for x in c["symbols"]}
    text = " | ".join(c for c in causes if c)
    for expected in ("paused", "below minimum equity", "persona preferences",
                     "max_position_pct cap", "max_order_notional cap",
                     "maintenance overlay", "lot rounding"):
        assert expected in text, expected


def test_a_manual_trade_the_drift_band_keeps_is_named(setup_vault: Any) -> None:
    """G follows AAA and BBB exactly (100 of each of 20,000); 5 AAA sold by hand leave it
    at 47.5 %, within the vault's 10 % drift band, so the next cycle keeps them sold."""
    prices = [(s, t, "100") for s in ("AAA", "BBB", "CCC") for t in (T0, T1)]
    home: Home = setup_vault(vault_def(rebalance={"drift_band": "0.1"}), prices=prices)
    home.ok("onboard", home.write("g.json", follower("G", "20000", "1")), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "1", None), ("BBB", "1", None)])), "--at", T0)
    home.ok("cycle", "run", "--at", T0)
    home.ok("paper", "trade", "G", "AAA", "5", "--side", "sell", "--at", "2026-11-01T12:00:00Z")
    home.ok("cycle", "run", "--at", T1)
    doc = json.loads(home.ok("statement", "G", "--period", "2026-11", "--json").out)
    last = {x["symbol"]: x for x in doc["tracking"]["cycles"][-1]["symbols"]}
    assert (last["AAA"]["vault_weight"], last["AAA"]["weight"]) == ("0.5", "0.475")
    assert "within the drift band" in last["AAA"]["cause"]
    assert "manual trade at 2026-11-01T12:00:00Z" in last["AAA"]["cause"]
    assert last["BBB"]["cause"] is None
