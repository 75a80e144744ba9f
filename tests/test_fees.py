"""SPEC §4 Fees over three months, through the CLI, worked by hand.

Price path of AAA (no slippage, no commission) and the cycles that trade it:
  Oct 01 buy at 100   Oct 20 sell at 113.425   (signal +1, then -1)
  Nov 02 buy at 100   Nov 20 sell at 95
  Dec 02 buy at 100   Dec 20 sell at 108
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.conftest import Home, signals, vault_def

STEPS = [("2026-10-01", "100", "1"), ("2026-10-20", "113.425", "-1"),
         ("2026-11-02", "100", "1"), ("2026-11-20", "95", "-1"),
         ("2026-12-02", "100", "1"), ("2026-12-20", "108", "-1")]


def ts(day: str) -> str:
    return f"{day}T00:00:00Z"


def packet(account_id: str, cash: str, fee: dict[str, str], mode: str = "proportional"
           ) -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account_id, "role": "follower", "vault_id": "V",
            "broker": {"kind": "paper", "starting_cash": cash},
            "mirroring": {"mode": mode}, "fee_agreement": fee}


HYBRID = {"type": "performance_or_flat", "perf_share": "0.20", "flat_usd": "2000"}


def ledger(home: Home) -> list[dict[str, Any]]:
    path = home.root / "memory" / "fee_ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def entry(home: Home, account: str, period: str) -> dict[str, Any]:
    """The newest fee entry of an account and period."""
    lines = [e for e in ledger(home) if e["user_id"] == account and e["period"] == period
             and e["kind"] == "fee"]
    return lines[-1]


def statement(home: Home, account: str, period: str) -> dict[str, Any]:
    out = home.ok("statement", account, "--period", period, "--json").out
    return json.loads(out)


@pytest.fixture
def quarter(setup_vault) -> Home:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(vault_def(), cash="1000000", prices=[
        ("AAA", ts(day), price) for day, price, _score in STEPS])
    home.ok("onboard",
            home.write("a.json", packet("A", "100000", HYBRID)),
            home.write("b.json", packet("B", "50000", {"type": "performance",
                                                        "perf_share": "0.25"})),
            home.write("d.json", packet("D", "30000", {"type": "performance_or_flat",
                                                        "perf_share": "0.2",
                                                        "flat_usd": "3000"})),
            home.write("e.json", packet("E", "100000", HYBRID, mode="shadow")),
            "--at", ts("2026-10-01"))
    home.ok("onboard", home.write("c.json", packet("C", "20000", {"type": "flat",
                                                                  "flat_usd": "1500"})),
            "--at", "2026-11-16T09:30:00Z")
    for day, _price, score in STEPS:
        if day == "2026-11-20":
            home.ok("follower", "remove", "D", "--at", "2026-11-10T12:00:00Z")
        home.ok("signals", "ingest", home.write("s.json", signals("V", ts(day), [
            ("AAA", score, None)])))
        home.ok("cycle", "run", "--at", ts(day), "--allow-future")
        if day in ("2026-10-20", "2026-11-20", "2026-12-20"):
            month = day[:7]
            end = {"2026-10": "2026-11-01", "2026-11": "2026-12-01", "2026-12": "2027-01-01"}
            home.ok("fees", "run", "--period", month, "--at", ts(end[month]), "--allow-future")
    return home


def test_the_sources_worked_example_and_a_profit_month(quarter: Home) -> None:
    a = entry(quarter, "A", "2026-10")
    # A bought 1000 at 100 and sold at 113.425: realized 13425; 20 % = 2685 > flat 2000
    assert {k: a[k] for k in ("user_id", "vault_id", "fee_type", "perf_share", "flat_usd",
                              "realized_pnl", "fee_due")} == {
        "user_id": "A", "vault_id": "V", "fee_type": "performance_or_flat",
        "perf_share": "0.2", "flat_usd": "2000", "realized_pnl": "13425", "fee_due": "2685.00"}
    assert (a["perf_fee"], a["flat_fee"], a["carry_in"], a["carry_out"], a["active_days"]) == (
        "2685.00", "2000.00", "0", "0", 31)


def test_loss_month_builds_the_carry_and_recovery_month_bills_only_the_net(quarter: Home
                                                                           ) -> None:
    # Nov: 113425 cash buys 1134 at 100, sold at 95: realized -5670 -> carry 5670, flat 2000
    nov = entry(quarter, "A", "2026-11")
    assert (nov["realized_pnl"], nov["perf_fee"], nov["carry_out"], nov["fee_due"]) == (
        "-5670", "0.00", "5670", "2000.00")
    # Dec: 107755 cash buys 1077, sold at 108: realized 8616; net 8616 - 5670 = 2946;
    # perf 589.20 < flat 2000
    dec = entry(quarter, "A", "2026-12")
    assert (dec["realized_pnl"], dec["carry_in"], dec["net"], dec["perf_fee"],
            dec["carry_out"], dec["fee_due"]) == ("8616", "5670", "2946", "589.20", "0",
                                                 "2000.00")


def test_performance_only_and_half_up_cents(quarter: Home) -> None:
    # B: Oct 500 x 13.425 = 6712.5 -> 0.25 x 6712.5 = 1678.125 -> 1678.13 (half up)
    # Nov 567 x -5 = -2835 -> carry 2835, fee 0; Dec 538 x 8 = 4304 - 2835 = 1469 -> 367.25
    dues = [entry(quarter, "B", p)["fee_due"] for p in ("2026-10", "2026-11", "2026-12")]
    assert dues == ["1678.13", "0.00", "367.25"]
    # carry-forward is a high-water mark: 0.25 x max(6712.5, 3877.5, 8181.5) = 2045.375
    assert abs(sum(D(d) for d in dues) - D("2045.375")) <= D("0.015")


def test_onboarded_on_the_16th_of_a_30_day_month_pays_half_the_flat_fee(quarter: Home) -> None:
    c = entry(quarter, "C", "2026-11")
    assert (c["active_days"], c["days_in_period"], c["flat_fee"], c["fee_due"]) == (
        15, 30, "750.00", "750.00")
    assert not [e for e in ledger(quarter) if e["user_id"] == "C" and e["period"] == "2026-10"]


def test_removed_follower_is_billed_to_its_removal_day(quarter: Home) -> None:
    # D removed on Nov 10: 10 of 30 days -> 3000 x 10/30 = 1000; realized 0 in Nov
    d = entry(quarter, "D", "2026-11")
    assert (d["active_days"], d["flat_fee"], d["perf_fee"], d["fee_due"]) == (
        10, "1000.00", "0.00", "1000.00")
    assert entry(quarter, "D", "2026-10")["fee_due"] == "3000.00"  # 805.50 < 3000
    assert not [e for e in ledger(quarter) if e["user_id"] == "D" and e["period"] == "2026-12"]


def test_shadow_followers_are_not_billed_but_see_what_they_would_owe(quarter: Home) -> None:
    assert not [e for e in ledger(quarter) if e["user_id"] == "E"]
    doc = statement(quarter, "E", "2026-10")
    assert doc["shadow"] is True and doc["fee"]["fee_due"] == "2685.00"
    assert doc["fee"]["status"].startswith("shadow")
    assert doc["ledger"]["due"] == "0.00"
    # its would-be carry chain: Nov loss 5670 carried into Dec, as for A
    assert statement(quarter, "E", "2026-12")["fee"]["carry_in"] == "5670"


def test_billing_twice_changes_nothing_and_unfinished_periods_are_refused(quarter: Home
                                                                          ) -> None:
    before = (quarter.root / "memory" / "fee_ledger.jsonl").read_bytes()
    again = quarter.vanta("fees", "run", "--period", "2026-11",
                          "--at", ts("2027-01-02"), "--allow-future")
    assert again.code == 1 and "already billed" in again.err
    assert (quarter.root / "memory" / "fee_ledger.jsonl").read_bytes() == before
    early = quarter.vanta("fees", "run", "--period", "2027-01",
                          "--at", ts("2027-01-15"), "--allow-future")
    assert early.code == 1 and "cannot be billed" in early.err
    assert quarter.vanta("fees", "run", "--period", "2027-13").code == 2


def test_statement_shows_pnl_and_fees_side_by_side(quarter: Home) -> None:
    doc = statement(quarter, "A", "2026-11")
    # opening = October's closing equity (113425 cash); closing 107755 cash
    assert (doc["opening_equity"], doc["closing_equity"]) == ("113425", "107755")
    assert (doc["realized_pnl"], doc["commissions"], doc["unrealized_pnl_change"]) == (
        "-5670", "0", "0")
    assert [(f["side"], f["qty"], f["price"]) for f in doc["fills"]] == [
        ("buy", "1134", "100"), ("sell", "1134", "95")]
    assert doc["fee"]["status"] == "billed (entry A/2026-11/1)"
    assert "loss carried forward 5670.00" in doc["fee"]["derivation"]
    assert "(flat leg)" in doc["fee"]["derivation"]
    assert doc["digest"].split(":")[0].isdigit()
    text = quarter.ok("statement", "A", "--period", "2026-11").out
    assert "fee due      2,000.00" in text and "B" not in text.split("fills")[1]


def test_payments_and_a_reversal_that_nets_to_zero(quarter: Home) -> None:
    quarter.ok("fees", "paid", "A/2026-12/1", "--ref", "wire 1", "--amount", "500",
               "--at", ts("2027-01-05"), "--allow-future")
    doc = statement(quarter, "A", "2026-12")
    assert (doc["ledger"]["due"], doc["ledger"]["paid"], doc["ledger"]["outstanding"]) == (
        "2000.00", "500.00", "1500.00")
    assert quarter.vanta("fees", "paid", "A/2026-12/1", "--ref", "x", "--amount", "1600",
                         "--at", ts("2027-01-06"), "--allow-future").code == 1
    # reversing an entry that a later one depends on is refused; last-first works
    refused = quarter.vanta("fees", "reverse", "A/2026-11/1", "--reason", "r",
                            "--at", ts("2027-01-06"), "--allow-future")
    assert refused.code == 1 and "A/2026-12/1" in refused.err
    quarter.ok("fees", "reverse", "A/2026-12/1", "--reason", "price corrected",
               "--at", ts("2027-01-06"), "--allow-future")
    doc = statement(quarter, "A", "2026-12")
    assert doc["ledger"]["due"] == "0.00"
    assert doc["ledger"]["outstanding"] == "-500.00"  # a credit: 500 was paid
    reversal = [e for e in ledger(quarter) if e["kind"] == "reversal"]
    assert [(e["entry_id"], e["reverses"], e["fee_due"]) for e in reversal] == [
        ("A/2026-12/1/reversal", "A/2026-12/1", "-2000.00")]
    assert quarter.vanta("fees", "reverse", "A/2026-12/1", "--reason", "again").code == 1
    # the reversed follower-period can be billed again: same inputs, a new entry
    quarter.ok("fees", "run", "--period", "2026-12", "--at", ts("2027-01-07"), "--allow-future")
    assert entry(quarter, "A", "2026-12")["entry_id"] == "A/2026-12/2"
    pnl = quarter.memory("pnl_summary.json")
    billed = {a["account_id"]: a["fees_billed"] for a in pnl["accounts"]}
    # 2685 + 2000 + (2000 - 2000 + 2000)
    assert D(billed["A"]) == D("6685")


def test_fee_tables_are_append_only(quarter: Home) -> None:
    import sqlite3

    plain = sqlite3.connect(quarter.root / "vanta.db")
    for sql in ("UPDATE fee_entries SET fee_due = '0'", "DELETE FROM fee_entries",
                "INSERT OR REPLACE INTO fee_entries SELECT * FROM fee_entries LIMIT 1"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            plain.execute(sql)
    plain.close()


def test_pnl_summary_matches_portfolio(quarter: Home) -> None:
    quarter.ok("emit", "--at", ts("2026-12-25"), "--allow-future")
    pnl = quarter.memory("pnl_summary.json")
    portfolio = quarter.memory("portfolio.json")
    equity = {a["account_id"]: a["equity"] for a in portfolio["accounts"]}
    for account in pnl["accounts"]:
        assert account["equity"] == equity[account["account_id"]]
    vault = pnl["vaults"][0]
    assert vault["nav"] == equity["M"]
    assert pnl["as_of"] == portfolio["as_of"] == ts("2026-12-25")
    # D was removed before December and still holds what it bought on Nov 2:
    # 300 x 113.425 = 34027.5 cash -> floor(34027.5 / 100) = 340
    d = next(a for a in portfolio["accounts"] if a["account_id"] == "D")
    assert d["status"] == "removed" and d["positions"][0]["qty"] == "340"


def test_a_skipped_month_must_be_billed_first(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(vault_def(), prices=[("AAA", ts("2026-10-01"), "100")])
    home.ok("onboard", home.write("a.json", packet("A", "10000", HYBRID)),
            "--at", ts("2026-10-01"))
    home.ok("fees", "run", "--period", "2026-10", "--at", ts("2026-11-01"))
    skipped = home.vanta("fees", "run", "--period", "2026-12",
                         "--at", ts("2027-01-01"), "--allow-future")
    assert skipped.code == 1 and "not billed for 2026-11" in skipped.err
    # the scheduler bills every ended month still open, oldest first
    run = home.vanta("run", "--once", "--at", ts("2027-01-01"), "--allow-future")
    # exit 4: a new alert, A's October fee still unpaid two months after it was billed
    assert run.code == 4 and "fee.overdue" in run.out, run.out + run.err
    out = run.out
    assert out.index("fees 2026-11") < out.index("fees 2026-12")
    assert [e["period"] for e in ledger(home)] == ["2026-10", "2026-11", "2026-12"]


def test_a_fee_paid_before_a_reversal_is_not_collected_again(quarter: Home) -> None:
    quarter.ok("fees", "paid", "C/2026-11/1", "--ref", "w1",
               "--at", ts("2027-01-02"), "--allow-future")
    quarter.ok("fees", "reverse", "C/2026-12/1", "--reason", "r",
               "--at", ts("2027-01-03"), "--allow-future")
    quarter.ok("fees", "reverse", "C/2026-11/1", "--reason", "r",
               "--at", ts("2027-01-03"), "--allow-future")
    quarter.ok("fees", "run", "--period", "2026-11", "--at", ts("2027-01-04"), "--allow-future")
    again = quarter.vanta("fees", "paid", "C/2026-11/2", "--ref", "w2", "--at",
                          ts("2027-01-05"), "--allow-future")
    assert again.code == 1 and "owes nothing" in again.err
    doc = statement(quarter, "C", "2026-11")
    assert (doc["ledger"]["due"], doc["ledger"]["paid"], doc["ledger"]["outstanding"]) == (
        "750.00", "750.00", "0.00")


def test_payments_in_cents_and_not_backdated(quarter: Home) -> None:
    cents = quarter.vanta("fees", "paid", "A/2026-10/1", "--ref", "x", "--amount", "0.004",
                          "--at", ts("2026-12-01"))
    assert cents.code == 2 and "whole cents" in cents.err
    early = quarter.vanta("fees", "paid", "A/2026-10/1", "--ref", "x", "--amount", "1",
                          "--at", ts("2026-10-15"))
    assert early.code == 1 and "before A/2026-10/1 was billed" in early.err
    assert quarter.vanta("fees", "list", "--period", "2026-13").code == 2
