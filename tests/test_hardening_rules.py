"""Issue 9's wrong results, each worked by hand from SPEC §4 and §6: dust fills, paused
days billed, backdated changes, ids that differ only in case."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.conftest import INSTRUMENTS, T0, T1, T2, Home, prices_csv, signals, vault_def


def follower(account_id: str, cash: str = "10000", **fee: str) -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account_id, "role": "follower",
            "vault_id": "V", "broker": {"kind": "paper", "starting_cash": cash},
            "fee_agreement": fee or {"type": "flat", "flat_usd": "3100"}}


def digest(home: Home) -> str:
    return home.ok("audit", "digest").out.strip()


def test_a_buy_reduced_below_the_minimum_notional_is_rejected_not_dust(home: Home) -> None:
    # commission 20 %: AAA 5 x 100 costs 600 of the 1000 cash; BBB's 166 x 3 (498 >= its
    # 400 minimum) costs 597.60 > 400 left, so it is reduced to floor(400 / 3.6) = 111,
    # whose notional 333 is below max(min_order_notional 1, min_notional 400): rejected.
    instruments = [{**i, "min_notional": "400"} if i["symbol"] == "BBB" else i
                   for i in INSTRUMENTS]
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def(
        paper={"commission_bps": "2000"})]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", instruments), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("AAA", T0, "100"), ("BBB", T0, "3")])), "--at", T0)
    home.ok("onboard", home.write("m.json", {
        "packet_version": 1, "account_id": "M", "role": "manager", "vault_id": "V",
        "broker": {"kind": "paper", "starting_cash": "1000"}}), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "0.5", None), ("BBB", "0.5", None)])), "--at", T0)
    home.ok("cycle", "run", "--at", T1)
    master = home.account("M")
    assert [(p["symbol"], D(p["qty"])) for p in master["positions"]] == [("AAA", D(5))]
    assert D(master["cash"]) == D(400)
    (reject,) = [line for line in home.trade_log() if line["kind"] == "reject"]
    assert reject["symbol"] == "BBB" and reject["reason"] == "insufficient_cash"
    assert "reduced from 166 to 111" in reject["note"]
    assert not [line for line in home.trade_log()
                if line["kind"] == "fill" and line["symbol"] == "BBB"]


@pytest.fixture
def october(home: Home) -> Home:
    """Vault V with a manager and followers A..D onboarded on 1 October (flat 3100 a
    month: 100 a day), and AAA priced."""
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}),
            "--at", "2026-10-01T00:00:00Z")
    home.ok("instruments", "import", home.write("i.json", INSTRUMENTS),
            "--at", "2026-10-01T00:00:00Z")
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("AAA", "2026-10-01T00:00:00Z", "100")])), "--at", "2026-10-01T00:00:00Z")
    packets = [home.write("m.json", {"packet_version": 1, "account_id": "M",
                                     "role": "manager", "vault_id": "V",
                                     "broker": {"kind": "paper", "starting_cash": "100000"}})]
    packets += [home.write(f"{a}.json", follower(a)) for a in "ABCD"]
    home.ok("onboard", *packets, "--at", "2026-10-01T00:00:00Z")
    return home


def _flat(home: Home, account: str) -> tuple[int, D]:
    lines = [json.loads(line) for line in
             (home.root / "memory" / "fee_ledger.jsonl").read_text().splitlines()]
    (entry,) = [e for e in lines if e["user_id"] == account and e["period"] == "2026-10"]
    return entry["active_days"], D(entry["flat_fee"])


def test_days_paused_whole_are_not_billed_the_flat_fee(october: Home) -> None:
    home = october
    # A: paused 10 Oct 12:00, resumed 20 Oct 00:00 -> 11..19 paused whole: 9 days
    home.ok("follower", "pause", "A", "--at", "2026-10-10T12:00:00Z")
    home.ok("follower", "resume", "A", "--at", "2026-10-20T00:00:00Z")
    # B: paused from 21 Oct 00:00, never resumed -> 21..31: 11 days
    home.ok("follower", "pause", "B", "--at", "2026-10-21T00:00:00Z")
    # C: paused and resumed inside 5 Oct -> no day paused whole
    home.ok("follower", "pause", "C", "--at", "2026-10-05T01:00:00Z")
    home.ok("follower", "resume", "C", "--at", "2026-10-05T23:00:00Z")
    # D: paused on 1 Oct at 00:00 and removed on 15 Oct: paused whole from the 1st on
    home.ok("follower", "pause", "D", "--at", "2026-10-01T00:00:00Z")
    home.ok("follower", "remove", "D", "--at", "2026-10-15T08:00:00Z")
    home.ok("fees", "run", "--period", "2026-10", "--at", "2026-11-01T00:00:00Z")
    assert _flat(home, "A") == (22, D("2200.00"))  # 3100 x 22 / 31
    assert _flat(home, "B") == (20, D("2000.00"))  # 3100 x 20 / 31
    assert _flat(home, "C") == (31, D("3100.00"))
    lines = (home.root / "memory" / "fee_ledger.jsonl").read_text()
    assert '"user_id":"D"' not in lines  # no active day: not billed at all
    # replay rebuilds the pause history from the journal
    assert home.vanta("audit", "verify").code == 0


def test_changes_dated_before_the_last_cycle_are_refused(october: Home) -> None:
    home = october
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", "2026-10-01T00:00:00Z", [("AAA", "1", None)])), "--at", "2026-10-01T00:00:00Z")
    home.ok("cycle", "run", "--at", "2026-10-05T00:00:00Z")
    before = digest(home)
    early = "2026-10-03T00:00:00Z"
    refused = [
        ("paper", "trade", "A", "AAA", "1", "--side", "buy", "--at", early),
        ("follower", "pause", "A", "--at", early),
        ("follower", "remove", "B", "--at", early),
        ("overlay", "set", "V", "--flip", "--ttl", "1d", "--at", early),
        ("onboard", home.write("e.json", follower("E")), "--at", early),
    ]
    for args in refused:
        result = home.vanta(*args)
        assert result.code == 1, (args, result.err)
        # (a follower traded by that cycle is also refused as "traded later")
        assert "before V's last cycle" in result.err or "traded later" in result.err, \
            result.err
        assert len(result.err.strip().splitlines()) == 1
    assert digest(home) == before
    # at the last cycle's time or after, the same changes are taken
    home.ok("paper", "trade", "A", "AAA", "1", "--side", "sell", "--at", "2026-10-05T00:00:00Z")
    home.ok("follower", "pause", "A", "--at", "2026-10-06T00:00:00Z")


def test_a_change_inside_a_billed_period_is_refused(october: Home) -> None:
    home = october
    home.ok("fees", "run", "--period", "2026-10", "--at", "2026-11-01T00:00:00Z")
    home.ok("fees", "paid", "A/2026-10/1", "--ref", "wire-1", "--at", "2026-11-02T00:00:00Z")
    before = digest(home)
    statement = home.ok("statement", "A", "--period", "2026-10", "--json").out
    result = home.vanta("paper", "trade", "A", "AAA", "1", "--side", "buy",
                        "--at", "2026-10-02T00:00:00Z")
    assert result.code == 1 and "already billed" in result.err, result.err
    result = home.vanta("follower", "pause", "A", "--at", "2026-10-31T00:00:00Z")
    assert result.code == 1 and "already billed" in result.err, result.err
    assert digest(home) == before
    after = home.ok("statement", "A", "--period", "2026-10", "--json").out
    assert after == statement


def test_ids_that_differ_only_in_case_are_refused(home: Home) -> None:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    result = home.vanta("vault", "import", home.write("v2.json", {"vaults": [vault_def("v")]}),
                        "--at", T0)
    assert result.code == 2 and "only in case" in result.err, result.err
    home.ok("onboard", home.write("f.json", follower("F1001")), "--at", T0)
    before = digest(home)
    result = home.vanta("onboard", home.write("g.json", follower("f1001")), "--at", T2)
    assert result.code == 2 and "only in case" in result.err, result.err
    result = home.vanta("onboard", home.write("h.json", follower("G1")),
                        home.write("i.json", follower("g1")), "--at", T2)
    assert result.code == 2 and "only in case" in result.err, result.err
    assert digest(home) == before
