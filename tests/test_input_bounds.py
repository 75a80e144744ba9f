"""SPEC §6 input bounds and the future --at rule, through the real command line.

Every refusal below: exit 2, one line naming the file (or flag), the field and the problem,
and nothing changed (the database and the state files are byte-identical afterwards).
Bounds: a decimal has at most 38 significant digits and an absolute value that is 0 or
between 1e-18 and 1e15 (prices > 0, lot steps >= 1e-12); JSON nests at most 64 deep;
timestamps lie in the years 1970 to 9999; durations are at most 100 years.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import (
    INSTRUMENTS,
    T0,
    T1,
    Home,
    manager_packet,
    prices_csv,
    signals,
    vault_def,
)
from vanta_box.cli import cli
from vanta_box.core.money import MoneyError, bounded, fmt
from vanta_box.core.timeutil import TimeError, parse_duration, parse_input_ts, parse_period
from vanta_box.inputs.common import nesting_depth

HUGE = "1e9999999"
LONG_INT = "7" * 5000  # Python's json refuses ints of more than 4300 digits
HUNDRED_DIGITS = "1" * 100
THIRTY_EIGHT_DIGITS = "123456789012345." + "6" * 23  # 38 significant digits, below 1e15
FOLLOWER = {"packet_version": 1, "account_id": "F", "role": "follower", "vault_id": "V",
            "broker": {"kind": "paper", "starting_cash": "1000"}}


@pytest.fixture
def ready(setup_vault):  # type: ignore[no-untyped-def]
    return setup_vault(prices=[("AAA", T0, "10"), ("BTC", T0, "40000")])


def snapshot(home: Home) -> tuple[bytes, dict[str, bytes]]:
    memory = home.root / "memory"
    files = {p.name: p.read_bytes() for p in sorted(memory.iterdir()) if p.is_file()}
    return home.db_bytes(), files


def refused(home: Home, args: list[str], *needles: str) -> str:
    """Run a command that must be refused as bad input; return its one line."""
    before = snapshot(home)
    result = home.vanta(*args)
    line = result.err.strip()
    assert result.code == 2, (result.code, line)
    assert line.startswith("error: ") and "\n" not in line, line
    assert "internal error" not in line and len(line) < 300, line
    for needle in needles:
        assert needle in line, line
    assert result.out == ""
    assert snapshot(home) == before
    return line


def raw_file(home: Home, name: str, text: str) -> str:
    path = home.inputs / name
    path.write_text(text)
    return str(path)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ---------------------------------------------------------------- JSON shape


def test_a_5000_digit_integer_names_its_field(home: Home) -> None:
    text = json.dumps([{**INSTRUMENTS[0], "lot_step": "X"}]).replace('"X"', LONG_INT)
    path = raw_file(home, "i.json", text)
    refused(home, ["instruments", "import", path], path, "[0].lot_step",
            "5000 significant digits")
    packet = json.dumps({**manager_packet(), "packet_version": 0}).replace(
        '"packet_version": 0', f'"packet_version": {LONG_INT}')
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    path = raw_file(home, "m.json", packet)
    refused(home, ["onboard", path, "--at", T0], path, "packet_version")


def test_100000_deep_nesting_is_refused_without_a_recursion_error(home: Home) -> None:
    path = raw_file(home, "deep.json", '{"vaults": ' + nested(100_000) + "}")
    refused(home, ["vault", "import", path], path, "nested deeper than 64")
    unbalanced = raw_file(home, "open.json", "[" * 100_000)
    refused(home, ["vault", "import", unbalanced], unbalanced, "nested deeper than 64")


def test_nesting_of_64_is_read_and_65_is_refused(home: Home) -> None:
    # the file object, the vaults list and the vault object are three levels
    def vault_file(label_depth: int) -> str:
        body = json.dumps({"vaults": [vault_def(label="X")]})
        return body.replace('"X"', nested(label_depth))

    at_64 = raw_file(home, "v64.json", vault_file(61))
    line = refused(home, ["vault", "import", at_64], at_64, "vaults[0].label")
    assert "nested" not in line
    at_65 = raw_file(home, "v65.json", vault_file(62))
    refused(home, ["vault", "import", at_65], at_65, "nested deeper than 64")
    # brackets inside strings are text, not nesting
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def(label="[" * 500)]}))


def test_nesting_depth_counts_levels_not_brackets_in_strings() -> None:
    assert nesting_depth('{"a": [1, {"b": []}], "c": "[[[["}') == 4
    assert nesting_depth("[]" * 1000) == 1
    assert nesting_depth("7") == 0
    assert nesting_depth(nested(64)) == 64
    assert nesting_depth(nested(1_000_000)) == 65  # counted up to the limit + 1
    assert nesting_depth('"\\"[[[" [[]]') == 2
    assert nesting_depth('["a[", "]b", "", "é[{", "\\\\", ["\\u005b"]]') == 2
    assert nesting_depth('["[" , "", "x"]') == 1


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


_TEXT = st.text(alphabet='[]{}"\\ aé\n', max_size=6)
_JSON = st.recursive(st.none() | st.integers() | _TEXT,
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=25)


@given(_JSON, st.booleans())
def test_nesting_depth_agrees_with_the_parsed_value(value: object, ascii_only: bool) -> None:
    assert nesting_depth(json.dumps(value, ensure_ascii=ascii_only)) == depth_of(value)


def test_json_nan_and_infinity_are_refused(ready: Home) -> None:
    text = json.dumps([{"symbol": "AAA", "ts": T1, "price": "X"}])
    for constant in ("NaN", "Infinity", "-Infinity"):
        path = raw_file(ready, "p.json", text.replace('"X"', constant))
        refused(ready, ["prices", "ingest", path, "--at", T1], path, "[0].price", "finite")


# ---------------------------------------------------------------- decimals in files


@pytest.mark.parametrize(("price", "problem"), [
    (HUGE, "between 1e-18 and 1e15"),
    (HUNDRED_DIGITS, "100 significant digits"),
    ("1e-999999", "between 1e-18 and 1e15"),
    ("1000000000000000.1", "between 1e-18 and 1e15"),
    ("1e-19", "between 1e-18 and 1e15"),
])
def test_prices_out_of_bounds_in_csv_and_json(ready: Home, price: str, problem: str) -> None:
    path = ready.write("p.csv", prices_csv([("AAA", T1, "11"), ("BTC", T1, price)]))
    refused(ready, ["prices", "ingest", path, "--at", T1], path, "line 3.price", problem)
    text = json.dumps([{"symbol": "AAA", "ts": T1, "price": "X"}])
    for value in (price, f'"{price}"'):  # a JSON number and a JSON string
        path = raw_file(ready, "p.json", text.replace('"X"', value))
        refused(ready, ["prices", "ingest", path, "--at", T1], path, "[0].price", problem)


def test_a_csv_field_beyond_the_csv_modules_limit(ready: Home) -> None:
    path = ready.write("p.csv", prices_csv([("AAA", T1, "1" * 200_000)]))
    refused(ready, ["prices", "ingest", path, "--at", T1], path, "line 2", "not CSV")


def test_twenty_tiny_prices_cannot_grow_the_database(ready: Home) -> None:
    db = ready.root / "vanta.db"
    size = db.stat().st_size
    rows = [("AAA", f"2026-11-0{1 + i % 9}T{i:02d}:00:00Z", "1e-999999") for i in range(20)]
    path = ready.write("p.csv", prices_csv(rows))
    refused(ready, ["prices", "ingest", path, "--at", T1], path, "line 2.price")
    assert db.stat().st_size == size


def test_lot_steps(home: Home) -> None:
    for step, problem in (("1e-70", "between 1e-18 and 1e15"), ("1e-13", "at least 1e-12"),
                          ("0", "greater than 0")):
        path = home.write("i.json", [{**INSTRUMENTS[0], "lot_step": step}])
        refused(home, ["instruments", "import", path], path, "[0].lot_step", problem)
    home.ok("instruments", "import",
            home.write("i.json", [{**INSTRUMENTS[0], "lot_step": "1e-12"}]))


def test_starting_cash_in_a_packet(home: Home) -> None:
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    for cash in ("1e999999", HUNDRED_DIGITS, "1000000000000001"):
        path = home.write("m.json", manager_packet(cash=cash))
        refused(home, ["onboard", path, "--at", T0], path, "broker.starting_cash")
    text = json.dumps(manager_packet(cash="X")).replace('"X"', "1e999999")
    path = raw_file(home, "m.json", text)
    refused(home, ["onboard", path, "--at", T0], path, "broker.starting_cash",
            "between 1e-18 and 1e15")
    home.ok("onboard", home.write("m.json", manager_packet(cash="1e15")), "--at", T0)


def test_packet_mirroring_and_fee_decimals(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault()
    follower = FOLLOWER
    for section, key in (("mirroring", "multiplier"), ("mirroring", "cap_usd"),
                         ("fee_agreement", "flat_usd")):
        extra = {"type": "flat", "flat_usd": HUGE} if section == "fee_agreement" else {key: HUGE}
        path = home.write("f.json", {**follower, section: extra})
        refused(home, ["onboard", path, "--at", T0], path, f"{section}.{key}")


def test_a_score_of_1e_minus_999999(ready: Home) -> None:
    path = ready.write("s.json", signals("V", T1, [("AAA", "1e-999999", None)]))
    refused(ready, ["signals", "ingest", path, "--at", T1], path, "scores[0].score",
            "between 1e-18 and 1e15")
    ready.ok("signals", "ingest", ready.write("s.json", signals("V", T1, [
        ("AAA", "1e-18", None), ("BTC", "0e-9999999", None)])), "--at", T1)


def test_vault_decimals_and_schedule(home: Home) -> None:
    for section, key, value in (("rebalance", "min_order_notional", HUGE),
                                ("mirroring", "min_account_equity", HUNDRED_DIGITS),
                                ("risk", "cash_buffer", "1e-999999")):
        vault = vault_def()
        vault[section] = {**vault.get(section, {}), key: value}
        path = home.write("v.json", {"vaults": [vault]})
        refused(home, ["vault", "import", path], path, f"vaults[0].{section}.{key}")
    path = home.write("v.json", {"vaults": [vault_def(schedule={"every": "99999999999999w"})]})
    refused(home, ["vault", "import", path], path, "vaults[0].schedule.every", "100 years")


def test_bounded_values_keep_a_short_canonical_text(home: Home) -> None:
    vault = vault_def(rebalance={"min_order_notional": "1E+15", "drift_band": "1E-18"},
                      mirroring={"min_account_equity": THIRTY_EIGHT_DIGITS})
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault]}))
    doc = home.memory("vault.json")["vaults"][0]
    assert doc["rebalance"] == {"min_order_notional": "1000000000000000",
                                "drift_band": "0.000000000000000001"}
    assert doc["mirroring"]["min_account_equity"] == THIRTY_EIGHT_DIGITS


# ---------------------------------------------------------------- timestamps


def test_year_1_timestamps_in_files(ready: Home) -> None:
    path = ready.write("p.csv", prices_csv([("AAA", "0001-01-01T00:00:00Z", "11")]))
    refused(ready, ["prices", "ingest", path, "--at", T1], path, "line 2.ts", "1970 and 9999")
    path = ready.write("s.json", signals("V", "0001-01-01T00:00:00Z", [("AAA", "1", None)]))
    refused(ready, ["signals", "ingest", path, "--at", T1], path, "as_of", "1970 and 9999")
    path = ready.write("f.json", {**FOLLOWER, "accepted_at": "0001-01-01T00:00:00Z"})
    refused(ready, ["onboard", path], path, "accepted_at", "1970 and 9999")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_year_1_and_beyond_9999_in_at(ready: Home, at: str) -> None:
    for args in (["cycle", "run"], ["status"], ["follower", "pause", "M"],
                 ["overlay", "set", "V", "--flip", "--ttl", "1d"]):
        refused(ready, [*args, "--at", at, "--allow-future"], "--at", "1970 and 9999")


def test_the_bounds_of_a_timestamp_are_accepted(ready: Home) -> None:
    ready.ok("status", "--at", "1970-01-01T00:00:00Z")
    ready.ok("status", "--at", "9999-12-31T23:59:59Z", "--allow-future")
    assert parse_input_ts("1970-01-01") == 0
    with pytest.raises(TimeError):
        parse_input_ts("10000-01-01T00:00:00Z")


# ---------------------------------------------------------------- durations and periods


def test_ttl_beyond_100_years_or_past_the_year_9999(ready: Home) -> None:
    for ttl in ("99999999999999w", "5280w", "36526d", "9" * 5000 + "s"):
        refused(ready, ["overlay", "set", "V", "--flip", "--ttl", ttl, "--at", T1],
                "--ttl", "100 years")
    refused(ready, ["overlay", "set", "V", "--flip", "--ttl", "52w", "--at",
                    "9999-06-01T00:00:00Z", "--allow-future"], "--ttl", "9999")
    ready.ok("overlay", "set", "V", "--flip", "--ttl", "36525d", "--at", T1)


def test_duration_bounds() -> None:
    assert parse_duration("36525d") == 36525 * 86400 * 10**6
    for text in ("36525d1s", "0" * 30 + "1s1" + "0" * 20 + "w"):
        with pytest.raises(TimeError, match="100 years"):
            parse_duration(text)


@pytest.mark.parametrize("period", ["9999-12", "0001-01", "1969-12"])
def test_periods_beyond_the_bounds(ready: Home, period: str) -> None:
    ready.ok("onboard", ready.write("f.json", FOLLOWER), "--at", T0)
    refused(ready, ["fees", "run", "--period", period, "--at", T1], "--period")
    refused(ready, ["fees", "list", "--period", period], "--period")
    refused(ready, ["statement", "F", "--period", period], "--period")


def test_the_last_period_is_9999_11() -> None:
    start, end = parse_period("9999-11")
    assert end == parse_input_ts("9999-12-01T00:00:00Z") and start < end
    with pytest.raises(TimeError, match="9999-11"):
        parse_period("9999-12")


# ---------------------------------------------------------------- decimal options


def test_decimal_options_and_arguments(ready: Home) -> None:
    refused(ready, ["paper", "trade", "M", "AAA", "1e999999", "--side", "buy", "--at", T1],
            "QTY", "between 1e-18 and 1e15")
    refused(ready, ["paper", "trade", "M", "AAA", HUNDRED_DIGITS, "--side", "buy", "--at", T1],
            "QTY", "100 significant digits")
    refused(ready, ["paper", "trade", "M", "AAA", "1", "--side", "buy", "--price", HUGE,
                    "--at", T1], "--price", "between 1e-18 and 1e15")
    refused(ready, ["fees", "paid", "M/2026-11/1", "--ref", "r", "--amount", "1e999999",
                    "--at", T1], "--amount", "between 1e-18 and 1e15")
    refused(ready, ["overlay", "set", "V", "--boost", "a=1e999999", "--ttl", "1d", "--at", T1],
            "--boost", "between 1e-18 and 1e15")
    refused(ready, ["overlay", "set", "V", "--boost", "a=" + HUNDRED_DIGITS, "--ttl", "1d",
                    "--at", T1], "--boost", "100 significant digits")


def test_money_bounds() -> None:
    for good in ("0", "-0", "0.00", "1e15", "-1e15", "1e-18", THIRTY_EIGHT_DIGITS,
                 "0e-9999999"):
        assert fmt(bounded(Decimal(good))) in ("0", "1000000000000000", "-1000000000000000",
                                               "0.000000000000000001", THIRTY_EIGHT_DIGITS)
    assert str(bounded(Decimal("0.00"))) == "0.00"  # an ordinary zero is kept as written
    for bad in (HUGE, "-" + HUGE, "1e-999999", "1e-19", "1000000000000000.5", "9" * 39,
                THIRTY_EIGHT_DIGITS + "1"):
        with pytest.raises(MoneyError):
            bounded(Decimal(bad))


# ---------------------------------------------------------------- the future rule


def machine_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_mistyped_future_at_is_refused_and_cannot_freeze_the_vault(ready: Home) -> None:
    ready.ok("onboard", ready.write("f.json", FOLLOWER), "--at", T0)
    ready.ok("signals", "ingest", ready.write("s.json", signals("V", T0, [("AAA", "1", None)])),
             "--at", T0)
    line = refused(ready, ["cycle", "run", "--at", "2062-11-02T00:00:00Z"], "--at",
                   "2062-11-02T00:00:00Z", "24 hours", "--allow-future")
    assert "machine's clock" in line
    # the vault is not frozen: what comes next still works at its own (past) time
    ready.ok("follower", "pause", "F", "--at", T1)
    ready.ok("follower", "resume", "F", "--at", T1)
    ready.ok("cycle", "run", "--at", T1)


def test_allow_future_is_for_simulations(ready: Home) -> None:
    ready.ok("cycle", "run", "--at", "2062-11-02T00:00:00Z", "--allow-future")
    assert ready.memory("vault_allocation.json")["as_of"] == "2062-11-02T00:00:00Z"


def test_the_24_hour_margin(ready: Home) -> None:
    now = machine_now()
    ready.ok("status", "--at", stamp(now + timedelta(hours=23)))
    refused(ready, ["status", "--at", stamp(now + timedelta(hours=25))], "--at", "24 hours")
    refused(ready, ["emit", "--at", stamp(now + timedelta(days=400))], "--at", "24 hours")
    ready.ok("status", "--at", stamp(now + timedelta(hours=25)), "--allow-future")


def leaves(group: click.Group) -> list[click.Command]:
    out: list[click.Command] = []
    for command in group.commands.values():
        out += leaves(command) if isinstance(command, click.Group) else [command]
    return out


def test_every_command_with_at_takes_allow_future() -> None:
    def opts(command: click.Command) -> set[str]:
        return {o for p in command.params for o in getattr(p, "opts", ())}

    # `report --at` only chooses the time to value positions at: it records nothing
    with_at = [c for c in leaves(cli) if "--at" in opts(c) and c.name != "report"]
    assert len(with_at) >= 15
    assert [c.name for c in with_at if "--allow-future" not in opts(c)] == []


def test_help_mentions_allow_future() -> None:
    from tests.conftest import run_vanta

    out = " ".join(run_vanta("cycle", "run", "--help").out.split())
    assert "--allow-future" in out and "24 hours" in out
