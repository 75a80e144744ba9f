"""Bad input: one clear line naming file, field and problem; exit 2; nothing changed."""

from __future__ import annotations

import json

import pytest

from tests.conftest import INSTRUMENTS, T0, T1, Home, manager_packet, prices_csv, signals, vault_def


@pytest.fixture
def ready(setup_vault):  # type: ignore[no-untyped-def]
    return setup_vault(prices=[("AAA", T0, "10"), ("BTC", T0, "40000")])


def assert_refused_unchanged(home: Home, args: list[str], *needles: str) -> None:
    before = home.db_bytes()
    result = home.vanta(*args)
    assert result.code == 2, result
    line = result.err.strip()
    assert line.count("\n") == 0, line
    for needle in needles:
        assert needle in line, line
    assert home.db_bytes() == before


def test_unknown_symbol_in_signals(ready: Home) -> None:
    path = ready.write("sig.json", signals("V", T1, [("AAA", "0.5", "a"), ("NOPE", "0.2", None)]))
    assert_refused_unchanged(ready, ["signals", "ingest", path, "--at", T1],
                             path, "scores[1].symbol", "unknown symbol 'NOPE'")


@pytest.mark.parametrize("price", ["0", "-3.5", "abc"])
def test_price_zero_negative_or_not_a_number(ready: Home, price: str) -> None:
    path = ready.write("p.csv", prices_csv([("AAA", T1, "11"), ("AAA", T0, price)]))
    assert_refused_unchanged(ready, ["prices", "ingest", path, "--at", T1], path, "line 3",
                             "price")


def test_malformed_timestamp_in_file_and_in_at(ready: Home) -> None:
    path = ready.write("p.csv", prices_csv([("AAA", "2026-13-45T00:00:00Z", "11")]))
    assert_refused_unchanged(ready, ["prices", "ingest", path, "--at", T1], path, "line 2.ts",
                             "not a timestamp")
    sig = ready.write("sig.json", signals("V", "yesterday", [("AAA", "0.5", None)]))
    assert_refused_unchanged(ready, ["signals", "ingest", sig], sig, "as_of")
    good = ready.write("p.csv", prices_csv([("AAA", T1, "11")]))
    assert_refused_unchanged(ready, ["prices", "ingest", good, "--at", "2026-11-31"], "--at")


def test_vault_file_missing_vault_id(home: Home) -> None:
    vault = vault_def()
    del vault["vault_id"]
    path = home.write("vault.json", {"vaults": [vault]})
    assert_refused_unchanged(home, ["vault", "import", path, "--at", T0], path,
                             "vaults[0].vault_id", "required")


def test_vault_file_misspelt_key_and_bad_range(home: Home) -> None:
    path = home.write("vault.json", {"vaults": [vault_def(risk={"max_drawdwn": "0.1"})]})
    assert_refused_unchanged(home, ["vault", "import", path], "vaults[0].risk.max_drawdwn",
                             "unknown field")
    path = home.write("vault.json", {"vaults": [vault_def(risk={"max_drawdown": "1.5"})]})
    assert_refused_unchanged(home, ["vault", "import", path], "vaults[0].risk.max_drawdown",
                             "between 0 and 1")


def test_negative_starting_cash(home: Home) -> None:
    home.ok("vault", "import", home.write("vault.json", {"vaults": [vault_def()]}), "--at", T0)
    path = home.write("m.json", manager_packet(cash="-1"))
    assert_refused_unchanged(home, ["onboard", path, "--at", T0], path,
                             "broker.starting_cash", "must not be negative")


def test_second_manager_and_duplicate_account(ready: Home) -> None:
    assert_refused_unchanged(ready, ["onboard", ready.write("m.json", manager_packet()), "--at",
                                     T0], "already onboarded")
    assert_refused_unchanged(ready, ["onboard", ready.write(
        "m2.json", manager_packet(account_id="M2")), "--at", T0], "already has a manager")


def test_unknown_vault_and_invalid_json(ready: Home) -> None:
    path = ready.write("sig.json", signals("NOPE", T1, [("AAA", "0.5", None)]))
    assert_refused_unchanged(ready, ["signals", "ingest", path], "unknown vault 'NOPE'")
    broken = ready.write("broken.json", '{"vaults": [')
    assert_refused_unchanged(ready, ["vault", "import", broken], broken, "invalid JSON")
    assert_refused_unchanged(ready, ["vault", "import", "/no/such/file.json"], "no such file")


def test_score_out_of_range_and_unknown_persona(ready: Home) -> None:
    path = ready.write("sig.json", signals("V", T1, [("AAA", "1.5", None)]))
    assert_refused_unchanged(ready, ["signals", "ingest", path], "scores[0].score", "-1 and 1")
    path = ready.write("sig.json", signals("V", T1, [("AAA", "0.5", "zzz")]))
    assert_refused_unchanged(ready, ["signals", "ingest", path], "scores[0].persona")


def test_float_like_numbers_are_read_exactly(home: Home) -> None:
    # JSON numbers are accepted and parsed as exact decimals (never binary floats)
    vault = vault_def(risk={"max_single_pos_pct": 0.1, "cash_buffer": 0.05})
    home.ok("vault", "import", home.write("vault.json", json.dumps({"vaults": [vault]})))
    doc = home.memory("vault.json")
    assert doc["vaults"][0]["risk"]["max_single_pos_pct"] == "0.1"
    assert doc["vaults"][0]["risk"]["cash_buffer"] == "0.05"


def test_missing_home_suggests_init(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_vanta

    result = run_vanta("--home", str(tmp_path / "nowhere"), "status")
    assert result.code == 2
    assert "vanta init" in result.err
    assert not (tmp_path / "nowhere").exists()


def test_instruments_duplicate_symbol(home: Home) -> None:
    path = home.write("i.json", [*INSTRUMENTS, INSTRUMENTS[0]])
    assert_refused_unchanged(home, ["instruments", "import", path], "appears twice")


def test_a_csv_with_a_byte_order_mark(ready: Home) -> None:
    path = ready.write("bom.csv", "\ufeff" + prices_csv([("AAA", T1, "11")]))
    ready.ok("prices", "ingest", path, "--at", T1)
