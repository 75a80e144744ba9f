"""Shared fixtures: a home, the CLI in-process, and writers for input files."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from vanta_box.cli import main

# Tests never assert on time: no per-example deadline (a busy 2-core CI machine would make
# the maths look flaky), and print the seed that found a failure.
settings.register_profile("vanta", deadline=None, print_blob=True)
settings.load_profile("vanta")


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_vanta(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the `vanta` entry point in-process; returns exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["vanta", *args]
    code = 0
    patch = pytest.MonkeyPatch()
    for key, value in (env or {}).items():
        patch.setenv(key, value)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        patch.undo()
    return Result(code, out.getvalue(), err.getvalue())


class Home:
    """A test home plus helpers to write inputs and run commands against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root.parent / "inputs"
        self.inputs.mkdir(exist_ok=True)
        self._n = 0

    def vanta(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return run_vanta("--home", str(self.root), *args, env=env)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self.vanta(*args, env=env)
        assert result.code == 0, f"vanta {' '.join(args)} -> {result.code}\n{result.err}"
        return result

    def write(self, name: str, content: Any) -> str:
        self._n += 1
        path = self.inputs / f"{self._n:03d}_{name}"
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content, indent=1))
        return str(path)

    def memory(self, name: str) -> Any:
        return json.loads((self.root / "memory" / name).read_text())

    def trade_log(self) -> list[dict[str, Any]]:
        path = self.root / "memory" / "trade_log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def db_bytes(self) -> bytes:
        import apsw

        conn = apsw.Connection(str(self.root / "vanta.db"))
        try:
            rows = []
            for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                rows.append(repr(list(conn.execute(f"SELECT * FROM {name}"))))
            return "\n".join(rows).encode()
        finally:
            conn.close()

    def account(self, account_id: str) -> dict[str, Any]:
        doc = self.memory("portfolio.json")
        return next(a for a in doc["accounts"] if a["account_id"] == account_id)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    h.ok("init")
    yield h


def vault_def(vault_id: str = "V", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vault_id": vault_id, "label": "Test vault", "base_currency": "USD",
        "crypto_enabled": True, "fiat_enabled": True, "personas": ["a", "b"],
        "risk": {"max_single_pos_pct": "1"},
        "rebalance": {"min_order_notional": "1"},
        "mirroring": {"mode": "proportional", "min_account_equity": "0",
                      "fee": {"type": "performance", "perf_share": "0.2", "flat_usd": "0"}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


INSTRUMENTS = [
    {"symbol": "AAA", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BBB", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "CCC", "asset_class": "equity", "lot_step": "1", "min_notional": "1"},
    {"symbol": "BTC", "asset_class": "crypto", "lot_step": "0.0001", "min_notional": "10"},
]


def manager_packet(account_id: str = "M", vault_id: str = "V", cash: str = "100000",
                   **broker: str) -> dict[str, Any]:
    return {"packet_version": 1, "account_id": account_id, "role": "manager",
            "vault_id": vault_id, "broker": {"kind": "paper", "starting_cash": cash, **broker}}


def prices_csv(rows: list[tuple[str, str, str]]) -> str:
    return "symbol,ts,price\n" + "".join(f"{s},{t},{p}\n" for s, t, p in rows)


def signals(vault_id: str, as_of: str, scores: list[tuple[str, str, str | None]]
            ) -> dict[str, Any]:
    return {"vault_id": vault_id, "as_of": as_of, "scores": [
        {"symbol": s, "score": sc, **({"persona": p} if p else {})} for s, sc, p in scores]}


T0 = "2026-11-01T00:00:00Z"
T1 = "2026-11-02T00:00:00Z"
T2 = "2026-11-03T00:00:00Z"
T3 = "2026-11-04T00:00:00Z"


@pytest.fixture
def setup_vault(home: Home) -> Callable[..., Home]:
    """A vault V with a manager M and the INSTRUMENTS; returns the home."""

    def make(vault: dict[str, Any] | None = None, cash: str = "100000",
             prices: list[tuple[str, str, str]] | None = None, **broker: str) -> Home:
        home.ok("vault", "import", home.write("vault.json", {"vaults": [vault or vault_def()]}),
                "--at", T0)
        home.ok("instruments", "import", home.write("instruments.json", INSTRUMENTS), "--at", T0)
        if prices:
            home.ok("prices", "ingest", home.write("prices.csv", prices_csv(prices)), "--at", T0)
        home.ok("onboard", home.write("m.json", manager_packet(cash=cash, **broker)), "--at", T0)
        return home

    return make
