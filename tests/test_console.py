"""A console people read: money to the cent with thousands separators, weights and rates
as percentages, quantities to their lot step; --json and the state files keep the exact
values; progress on a terminal only; warnings where the outcome is predictable."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import T0, T1, T2, Home, manager_packet, signals, vault_def
from vanta_box.cli import console


def test_money_percentages_quantities_and_prices() -> None:
    assert console.money(Decimal("395462.688504550672")) == "395,462.69"
    assert console.money("1234567.005") == "1,234,567.01"  # half-up, like the fees
    assert console.money("-0.004") == "0.00" and console.money("-1250.5") == "-1,250.50"
    assert console.money(None) == "-"
    assert console.pct("0.2") == "20%" and console.pct("0.125") == "12.5%"
    assert console.pct(Decimal(1) / Decimal(12)) == "8.33%"  # a 60-digit weight
    assert console.pct("0") == "0%"
    assert console.qty("1200", "1") == "1,200" and console.qty("0.1", "0.0001") == "0.1000"
    assert console.qty("0.123456789", "1") == "0.123456789"  # finer than its step: exact
    assert console.price("183.3516") == "183.35" and console.price("0.0523") == "0.0523"
    assert console.signed("5") == "+5.00" and console.signed("-5") == "-5.00"


DECIMALS = re.compile(r"\d\.(\d+)")


def at_most_cents(text: str) -> list[str]:
    """Numbers with more than two decimals (none may be money on the console)."""
    return [m.group(0) for m in DECIMALS.finditer(text) if len(m.group(1)) > 2]


@pytest.fixture
def inexact(setup_vault: Any) -> Home:
    """Prices and slippage that make equity and cash long decimals."""
    prices = [("AAA", T0, "123.456789"), ("BBB", T0, "77.7777"),
              ("AAA", T1, "124.987654"), ("BBB", T1, "76.54321"),
              ("AAA", T2, "125.1"), ("BBB", T2, "75.3")]
    home: Home = setup_vault(vault_def(paper={"slippage_bps": "3", "commission_bps": "7"}),
                             prices=prices)
    home.ok("onboard", home.write("f.json", {
        "packet_version": 1, "account_id": "F", "role": "follower", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "54321.987"},
        "fee_agreement": {"type": "performance_or_flat", "perf_share": "0.2",
                          "flat_usd": "1234.5"}}), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "0.7", None), ("BBB", "0.3", None)])), "--at", T0)
    return home


def test_every_human_output_shows_money_to_the_cent(inexact: Home) -> None:
    home = inexact
    outputs = [home.ok("run", "--once", "--at", T0).out,
               home.ok("cycle", "run", "--at", T1).out,
               home.ok("fees", "run", "--period", "2026-11", "--at", "2026-12-01T00:00:00Z",
                       ).out]
    outputs += [home.ok(*cmd).out for cmd in (
        ["status"], ["statement", "F", "--period", "2026-11"], ["fees", "list"],
        ["follower", "list"], ["vault", "list"], ["queue", "show"], ["alerts", "--all"])]
    for out in outputs:
        assert at_most_cents(out) == [], out
    status = home.ok("status").out
    assert re.search(r"equity\s+\d{1,3}(,\d{3})+\.\d\d cash", status)
    # the exact values are in --json and in the state files, unrounded
    exact = json.loads(home.ok("status", "--json").out)
    portfolio = home.memory("portfolio.json")
    assert exact["accounts"] == portfolio["accounts"]
    assert [a for a in exact["accounts"] if len(a["equity"].partition(".")[2]) > 2]
    statement = json.loads(home.ok("statement", "F", "--period", "2026-11", "--json").out)
    assert any(len(f["price"].partition(".")[2]) > 2 for f in statement["fills"])
    fees = json.loads(home.ok("fees", "list", "--json").out)
    assert fees["total"]["outstanding"] == fees["entries"][0]["fee_due"]
    assert json.loads(home.ok("follower", "list", "--json").out)["followers"][0][
        "mirroring"]["multiplier"] == "1"
    assert "outstanding" in home.ok("fees", "list").out


def test_progress_only_on_a_terminal(inexact: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    home = inexact
    home.ok("cycle", "run", "--at", T0)
    verify = home.ok("audit", "verify")
    assert "…" not in verify.err  # a pipe: silent

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    monkeypatch.setattr("sys.stderr", shown)
    console.progress("chain checked")
    assert shown.getvalue() == "  … chain checked\n"


def test_onboarding_warns_of_predictable_outcomes(setup_vault: Any) -> None:
    home: Home = setup_vault()
    twice = {"packet_version": 1, "account_id": "F2", "role": "follower", "vault_id": "V",
             "broker": {"kind": "paper", "starting_cash": "1000"},
             "mirroring": {"mode": "proportional", "multiplier": "2"}}
    uncapped = {"packet_version": 1, "account_id": "FC", "role": "follower", "vault_id": "V",
                "broker": {"kind": "paper", "starting_cash": "1000"},
                "mirroring": {"mode": "capped"}}
    done = home.ok("onboard", home.write("a.json", twice), home.write("b.json", uncapped),
                   "--at", T0)
    assert "F2: multiplier 2 on a cash account" in done.err and "200%" in done.err
    assert "insufficient_cash" in done.err
    assert "FC: mode capped with no cap at all" in done.err
    # a shadow follower trades nothing: no warning for it
    shadow = {**twice, "account_id": "FS", "mirroring": {"mode": "shadow", "multiplier": "2"}}
    assert "multiplier" not in home.ok("onboard", home.write("c.json", shadow),
                                       "--at", T0).err


def test_statements_warn_of_periods_outside_the_followers_life(setup_vault: Any) -> None:
    home: Home = setup_vault(prices=[("AAA", T0, "100")])
    home.ok("onboard", home.write("f.json", {
        "packet_version": 1, "account_id": "F", "role": "follower", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "1000"},
        "fee_agreement": {"type": "flat", "flat_usd": "300"}}), "--at", T0)
    before = home.ok("statement", "F", "--period", "2026-10")
    assert "F was not onboarded in 2026-10" in before.err
    # a period not started at the journal's last event: no day elapsed, no flat fee due
    future = home.ok("statement", "F", "--period", "2026-12", "--json")
    doc = json.loads(future.out)
    assert (doc["fee"]["flat_fee"], doc["fee"]["fee_due"], doc["fee"]["elapsed_days"]) == (
        "0.00", "0.00", 0)
    assert "no day of 2026-12 has elapsed" in future.err
    assert "2026-12 has not started" in future.err
    # the month in progress: the flat fee of the days elapsed so far (Nov 1 is not over)
    home.ok("cycle", "run", "--at", T2)  # the journal's last event: Nov 3
    current = json.loads(home.ok("statement", "F", "--period", "2026-11", "--json").out)
    assert (current["fee"]["active_days"], current["fee"]["flat_fee"]) == (2, "20.00")
    assert "2 of 30 days elapsed" in current["fee"]["status"]
    home.ok("follower", "remove", "F", "--at", T2)
    after = home.ok("statement", "F", "--period", "2026-12")
    assert "F was removed at 2026-11-03T00:00:00Z, before 2026-12" in after.err


def test_the_manager_packet_has_no_multiplier_warning(home: Home) -> None:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    assert home.ok("onboard", home.write("m.json", manager_packet()), "--at", T0).err == ""
