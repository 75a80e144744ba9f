"""SPEC §9 through the CLI, worked by hand: capital flows, the equity high-water-mark
basis, the management fee (ACT/365), quarterly periods and the early exit at removal.

One cycle, on Jan 1 2027, buys AAA at 100 with half of each account's equity
(max_single_pos_pct 0.5); nothing trades after it. AAA's marks (newest price at or before
a moment): Jan 1 100 · Jan 15 12:00 110 · Feb 10 12:00 90 · Feb 20 12:00 130 ·
Mar 15 12:00 125. A management_pct of 0.0365 accrues 0.0365 / 365 = 0.0001 of the
equity at each active day's close (the next 00:00 UTC).

  H  10000, equity_hwm, performance 20 %, management 0.0365, monthly; 50 AAA, cash 5000;
     deposit 1000 on Jan 20 12:00, withdrawal 2000 on Feb 25 06:00
  R  10000, realized, performance 20 %, monthly (the basis of §4, keys unchanged)
  Q  20000, equity_hwm, performance_or_flat 20 % / flat 300, quarterly; 100 AAA
  X  10000, equity_hwm, performance 20 %, management 0.0365, quarterly; removed on
     Feb 22 12:00 (early exit)
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.conftest import Home, signals, vault_def

PRICES = [("2027-01-01T00:00:00Z", "100"), ("2027-01-15T12:00:00Z", "110"),
          ("2027-02-10T12:00:00Z", "90"), ("2027-02-20T12:00:00Z", "130"),
          ("2027-03-15T12:00:00Z", "125")]
HWM = {"type": "performance", "perf_share": "0.2", "basis": "equity_hwm"}
MGMT = "0.0365"


def packet(account_id: str, cash: str, fee: dict[str, str]) -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account_id, "role": "follower", "vault_id": "V",
            "broker": {"kind": "paper", "starting_cash": cash}, "fee_agreement": fee}


def ledger(home: Home) -> list[dict[str, Any]]:
    path = home.root / "memory" / "fee_ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def entry(home: Home, account: str, period: str) -> dict[str, Any]:
    return [e for e in ledger(home) if e["user_id"] == account and e["period"] == period
            and e["kind"] == "fee"][-1]


def ok(home: Home, *args: str) -> str:
    return home.ok(*args, "--allow-future").out


@pytest.fixture
def q1(setup_vault) -> Home:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(vault_def(risk={"max_single_pos_pct": "0.5"}),
                             prices=[("AAA", t, p) for t, p in PRICES])
    ok(home, "onboard",
       home.write("h.json", packet("H", "10000", {**HWM, "management_pct": MGMT})),
       home.write("r.json", packet("R", "10000", {"type": "performance", "perf_share": "0.2"})),
       home.write("q.json", packet("Q", "20000", {
           "type": "performance_or_flat", "perf_share": "0.2", "flat_usd": "300",
           "basis": "equity_hwm", "period": "quarter"})),
       home.write("x.json", packet("X", "10000", {**HWM, "management_pct": MGMT,
                                                  "period": "quarter"})),
       "--at", "2027-01-01T00:00:00Z")
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", "2027-01-01T00:00:00Z", [("AAA", "1", None)])))
    ok(home, "cycle", "run", "--at", "2027-01-01T00:00:00Z")
    ok(home, "flow", "record", "H", "--deposit", "1000", "--ref", "wire 1",
       "--at", "2027-01-20T12:00:00Z")
    ok(home, "fees", "run", "--period", "2027-01", "--at", "2027-02-01T00:00:00Z")
    home.removal = ok(home, "follower", "remove", "X", "--at", "2027-02-22T12:00:00Z")  # type: ignore[attr-defined]
    ok(home, "flow", "record", "H", "--withdrawal", "2000", "--at", "2027-02-25T06:00:00Z")
    ok(home, "fees", "run", "--period", "2027-02", "--at", "2027-03-01T00:00:00Z")
    ok(home, "fees", "run", "--period", "2027-03", "--at", "2027-04-01T00:00:00Z")
    ok(home, "fees", "run", "--period", "2027-Q1", "--at", "2027-04-01T00:00:00Z")
    return home


def test_equity_hwm_with_flows_and_a_management_fee(q1: Home) -> None:
    jan = entry(q1, "H", "2027-01")
    # Feb 1: cash 5000 + 1000, 50 x 110 -> E 11500, C 11000, P 500 > H 0: 20 % x 500
    assert (jan["basis"], jan["profit_end"], jan["hwm_in"], jan["hwm_out"], jan["perf_fee"]) \
        == ("equity_hwm", "500", "0", "500", "100.00")
    # E_close: Jan 1-14 10000 (14 d), Jan 15-19 10500 (5 d), Jan 20-31 11500 (12 d)
    assert D(jan["mgmt_base"]) == 14 * 10000 + 5 * 10500 + 12 * 11500 == 330500
    assert (jan["mgmt_fee"], jan["fee_due"], jan["carry_in"], jan["carry_out"]) == (
        "33.05", "133.05", "0", "0")
    feb = entry(q1, "H", "2027-02")
    # Mar 1: cash 4000, 50 x 130 -> E 10500, C 9000, P 1500: 20 % x (1500 - 500)
    assert (feb["profit_end"], feb["hwm_in"], feb["hwm_out"], feb["perf_fee"]) == (
        "1500", "500", "1500", "200.00")
    # Feb 1-9 11500, 10-19 10500, 20-24 12500, 25-28 10500 (after the withdrawal)
    assert D(feb["mgmt_base"]) == 9 * 11500 + 10 * 10500 + 5 * 12500 + 4 * 10500
    assert (feb["mgmt_fee"], feb["fee_due"]) == ("31.30", "231.30")
    mar = entry(q1, "H", "2027-03")
    # Apr 1: 4000 + 50 x 125 = 10250, P 1250 < H 1500: no performance fee, H stays
    assert (mar["profit_end"], mar["perf_fee"], mar["hwm_out"]) == ("1250", "0.00", "1500")
    # 14 x 10500 + 17 x 10250 = 321250 -> 32.125 -> 32.13 (half up)
    assert (mar["mgmt_base"], mar["mgmt_fee"], mar["fee_due"]) == ("321250", "32.13", "32.13")


def test_the_realized_basis_keeps_its_keys_and_gains_the_new_ones(q1: Home) -> None:
    r = entry(q1, "R", "2027-01")
    assert {k: r[k] for k in ("fee_type", "perf_share", "flat_usd", "realized_pnl", "fee_due",
                              "perf_fee", "flat_fee", "carry_in", "carry_out", "active_days",
                              "days_in_period", "net", "leg")} == {
        "fee_type": "performance", "perf_share": "0.2", "flat_usd": "0", "realized_pnl": "0",
        "fee_due": "0.00", "perf_fee": "0.00", "flat_fee": "0.00", "carry_in": "0",
        "carry_out": "0", "active_days": 31, "days_in_period": 31, "net": "0", "leg": "none"}
    # P is tracked on every basis (5000 + 50 x 110 - 10000), billed on none here
    assert (r["basis"], r["mgmt_fee"], r["profit_end"], r["hwm_out"]) == (
        "realized", "0.00", "500", "500")


def test_a_quarter_is_one_period_and_months_do_not_bill_it(q1: Home) -> None:
    assert not [e for e in ledger(q1) if e["user_id"] == "Q" and "Q" not in e["period"]]
    q = entry(q1, "Q", "2027-Q1")
    # Apr 1: 10000 + 100 x 125 = 22500, P 2500: 20 % = 500 > flat 300 x 90/90
    assert (q["period_start"], q["period_end"], q["days_in_period"], q["active_days"]) == (
        "2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z", 90, 90)
    assert (q["profit_end"], q["perf_fee"], q["flat_fee"], q["fee_due"], q["leg"]) == (
        "2500", "500.00", "300.00", "500.00", "performance")
    again = q1.vanta("fees", "run", "--period", "2027-Q1", "--at", "2027-04-02T00:00:00Z",
                     "--allow-future")
    assert again.code == 1 and "already billed" in again.err


def test_a_removed_follower_is_billed_at_its_removal(q1: Home) -> None:
    x = entry(q1, "X", "2027-Q1")
    assert "billed at its removal: X/2027-Q1/1" in q1.removal  # type: ignore[attr-defined]
    # at the removal (Feb 22 12:00): 5000 + 50 x 130 = 11500, P 1500 -> 300
    assert (x["closed_at"], x["profit_end"], x["perf_fee"]) == (
        "2027-02-22T12:00:00Z", "1500", "300.00")
    # Jan 1-14 10000, Jan 15-Feb 9 10500 (26 d), Feb 10-19 9500, Feb 20-21 11500, and the
    # removal day closes at the removal: 11500
    assert D(x["mgmt_base"]) == 14 * 10000 + 26 * 10500 + 10 * 9500 + 2 * 11500 + 11500
    assert (x["active_days"], x["days_in_period"], x["mgmt_fee"], x["fee_due"]) == (
        53, 90, "54.25", "354.25")
    assert not [e for e in ledger(q1) if e["user_id"] == "X" and e["period"] != "2027-Q1"]


def test_pnl_summary_has_contributions_profit_and_time_weighted_returns(q1: Home) -> None:
    q1.ok("emit", "--at", "2027-04-01T00:00:00Z", "--allow-future")
    rows = {a["account_id"]: a for a in q1.memory("pnl_summary.json")["accounts"]}
    h = rows["H"]
    assert (h["contributions"], h["equity"], h["profit"]) == ("9000", "10250", "1250")
    assert h["realized_pnl"] == "0"  # a flow is never PnL
    # 10000 -> 10500 (before the deposit, at 110); 11500 -> 12500 (before the withdrawal,
    # at 130); 10500 -> 10250
    twr = D(10500) / 10000 * D(12500) / 11500 * D(10250) / 10500 - 1
    assert D(h["twr_inception"]) == twr.quantize(D("1e-12"))
    assert h["twr_period"] == "0"  # April has just begun
    # no flow: the plain return
    assert D(rows["Q"]["twr_inception"]) == (D(22500) / 20000 - 1).quantize(D("1e-12"))


def test_statements_show_flows_and_still_reconcile(q1: Home) -> None:
    doc = json.loads(q1.ok("statement", "H", "--period", "2027-02", "--json").out)
    assert [(f["kind"], f["amount"]) for f in doc["flows"]] == [("withdrawal", "-2000")]
    closing, opening = D(doc["closing_equity"]), D(doc["opening_equity"])
    assert closing - opening == (D(doc["realized_pnl"]) + D(doc["unrealized_pnl_change"])
                                 + D(doc["net_flows"]))
    assert "high-water mark 500.00" in doc["fee"]["derivation"]
    assert "management 3.65% a year" in doc["fee"]["derivation"]
    assert q1.vanta("audit", "verify").code == 0


def test_reversing_an_equity_entry_restores_the_high_water_mark(q1: Home) -> None:
    for entry_id in ("H/2027-03/1", "H/2027-02/1"):
        ok(q1, "fees", "reverse", entry_id, "--reason", "check", "--at", "2027-04-02T00:00:00Z")
    rev = next(e for e in ledger(q1) if e["entry_id"] == "H/2027-02/1/reversal")
    assert (rev["hwm_in"], rev["hwm_out"], rev["fee_due"], rev["mgmt_fee"]) == (
        "1500", "500", "-231.30", "-31.30")
    ok(q1, "fees", "run", "--period", "2027-02", "--at", "2027-04-03T00:00:00Z")
    again = entry(q1, "H", "2027-02")
    assert (again["entry_id"], again["hwm_in"], again["fee_due"]) == (
        "H/2027-02/2", "500", "231.30")


def test_whatif_recomputes_the_history_under_every_agreement_and_changes_nothing(
        q1: Home) -> None:
    before = q1.db_bytes()
    doc = json.loads(q1.ok("fees", "whatif", "H", "--json").out)
    by_name = {v["name"]: v for v in doc["variants"]}
    own = by_name["equity_hwm/performance/month/mgmt"]
    assert own["actual"] and [p["fee_due"] for p in own["periods"]] == [
        "133.05", "231.30", "32.13"]  # what the ledger billed
    # by quarter: one close, Apr 1: P 1250 -> 20 % = 250; the same management days
    assert by_name["equity_hwm/performance/quarter"]["total"] == "250.00"
    assert by_name["equity_hwm/performance/quarter/mgmt"]["mgmt_total"] == "96.48"
    # the realized basis: nothing was sold, no performance fee
    assert by_name["realized/performance/month"]["total"] == "0.00"
    assert len(doc["variants"]) == 20
    assert q1.db_bytes() == before
    text = q1.ok("fees", "whatif", "X", "--from", "2027-01", "--to", "2027-03").out
    assert "* equity_hwm/performance/quarter/mgmt" in text and "354.25" in text
    assert q1.vanta("fees", "whatif", "NOPE").code == 2
    assert q1.vanta("fees", "whatif", "M").code == 2


def test_flow_record_refusals_and_bad_input(q1: Home) -> None:
    def code(*args: str) -> int:
        return q1.vanta("flow", "record", *args, "--allow-future").code

    at = ("--at", "2027-04-05T00:00:00Z")
    assert code("H", "--withdrawal", "4000.01", *at) == 1  # H holds 4000 cash
    assert code("H", "--deposit", "1", "--withdrawal", "1", *at) == 2
    assert code("H", *at) == 2
    assert code("H", "--deposit", "0", *at) == 2
    assert code("H", "--deposit", "-5", *at) == 2
    assert code("H", "--deposit", "abc", *at) == 2
    assert code("NOPE", "--deposit", "5", *at) == 2
    # before V's last cycle, and inside a period already billed to H
    ok(q1, "cycle", "run", "--at", "2027-04-02T00:00:00Z")
    assert code("H", "--deposit", "5", "--at", "2027-04-01T12:00:00Z") == 1
    assert code("H", "--deposit", "5", "--at", "2027-03-20T00:00:00Z") == 1
    assert code("H", "--withdrawal", "4000", *at) == 0


def test_fee_agreement_options_are_validated(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    for bad in ({"basis": "equity"}, {"period": "year"}, {"management_pct": "1.5"},
                {"management_pct": "-0.01"}, {"hwm": "0"}):
        result = home.vanta("onboard", home.write("p.json", packet("P", "1000", {
            "type": "performance", "perf_share": "0.2", **bad})), "--at", "2026-11-01T00:00:00Z")
        assert result.code == 2, (bad, result.err)
        assert "fee_agreement" in result.err
