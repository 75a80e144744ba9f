"""API packets: each invalid packet is one clear error, exit 2, nothing stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import T0, Home

GOOD: dict[str, Any] = {
    "packet_version": 1, "account_id": "F1042", "role": "follower", "vault_id": "V",
    "broker": {"kind": "paper", "starting_cash": "250000"},
    "persona_prefs": ["a"],
    "mirroring": {"mode": "proportional", "multiplier": "1", "cap_usd": None,
                  "max_order_notional": None, "max_position_pct": None},
    "fee_agreement": {"type": "performance_or_flat", "perf_share": "0.20", "flat_usd": "2000"},
    "accepted_at": "2026-11-01T00:00:00Z",
}


def variant(path: str, value: Any) -> dict[str, Any]:
    packet = copy.deepcopy(GOOD)
    node = packet
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return packet


CASES = [
    ("vault_id", "NOPE", "vault_id", "unknown vault"),
    ("persona_prefs", ["a", "zzz"], "persona_prefs[1]", "not one of"),
    ("mirroring.mode", "leveraged", "mirroring.mode", "proportional"),
    ("fee_agreement.perf_share", "1.2", "fee_agreement.perf_share", "between 0 and 1"),
    ("fee_agreement.perf_share", "-0.1", "fee_agreement.perf_share", "between 0 and 1"),
    ("fee_agreement.flat_usd", "-5", "fee_agreement.flat_usd", "negative"),
    ("broker.starting_cash", "-1", "broker.starting_cash", "negative"),
    ("mirroring.cap_usd", "-100", "mirroring.cap_usd", "negative"),
    ("mirroring.multiplier", "0", "mirroring.multiplier", "greater than 0"),
    ("broker", {"kind": "alpaca", "key_id": "x"}, "broker.secret_key", "required"),
    ("broker", {"kind": "ccxt", "exchange": "binance", "secret": "s"}, "broker.api_key",
     "required"),
    ("broker", {"kind": "ibkr"}, "broker.kind", "unknown broker kind"),
    ("broker.starting_cash", KeyError, "broker.starting_cash", "required"),
    ("packet_version", 2, "packet_version", "unsupported"),
    ("role", "admin", "role", "manager"),
    ("account_id", "bad id!", "account_id", "pattern"),
    ("fee_agreement", {"type": "performance"}, "fee_agreement", "needs perf_share"),
    ("fee_agreement", {"type": "flat"}, "fee_agreement", "needs flat_usd"),
    ("fee_agreement", {"type": "performance_or_flat", "flat_usd": "1"}, "fee_agreement",
     "needs perf_share"),
    ("persona_prefs", [], "persona_prefs", "name at least one persona"),
    ("broker", {"kind": "alpaca", "key_id": "k", "secret_key": " "}, "broker.secret_key",
     "must not be empty"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), CASES,
                         ids=[f"{c[0]}={c[1]}" for c in CASES])
def test_invalid_packet(setup_vault, path: str, value: Any, field: str, message: str) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    file = home.write("packet.json", variant(path, value))
    before = home.db_bytes()
    result = home.vanta("onboard", file, "--at", T0)
    assert result.code == 2, result
    line = result.err.strip()
    assert "\n" not in line and file in line and field in line and message in line, line
    assert home.db_bytes() == before


def test_duplicate_account_id_and_all_or_nothing_batches(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    home.ok("onboard", home.write("p.json", GOOD), "--at", T0)
    before = home.db_bytes()
    again = home.vanta("onboard", home.write("p.json", GOOD), "--at", T0)
    assert again.code == 2 and "already onboarded" in again.err
    other = variant("account_id", "F2")
    bad = variant("account_id", "F3")
    bad["mirroring"]["mode"] = "nope"
    batch = home.vanta("onboard", home.write("f2.json", other), home.write("f3.json", bad))
    assert batch.code == 2 and "f3.json" in batch.err
    twice = home.vanta("onboard", home.write("f2.json", other), home.write("f2b.json", other))
    assert twice.code == 2 and "also in" in twice.err
    assert home.db_bytes() == before


def test_defaults_from_the_vault_and_the_packet_time(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    packet = variant("fee_agreement", KeyError)
    del packet["persona_prefs"]
    del packet["mirroring"]
    packet["accepted_at"] = "2026-11-05T12:00:00Z"
    home.ok("onboard", home.write("p.json", packet))  # no --at: accepted_at is the time
    listed = home.ok("follower", "list").out
    assert "F1042\tV\tproportional\tactive\tpaper\tonboarded 2026-11-05T12:00:00Z" in listed


def test_warning_for_caps_outside_capped_mode(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    packet = variant("mirroring.max_order_notional", "500")
    result = home.ok("onboard", home.write("p.json", packet), "--at", T0)
    assert "only applies in mode capped" in result.err
