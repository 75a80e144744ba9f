"""Bounded memory: a cycle holds the books of one batch of accounts at a time, and staging
hands its journal rows to SQLite in chunks inside its one transaction. None of it shows in
the bytes: batch sizes change no byte of the file, and a cycle killed at any commit
boundary (a transaction that had flushed rows and was then rolled back, in replay, too)
still verifies and resumes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    INSTRUMENTS,
    T0,
    T1,
    T2,
    Home,
    manager_packet,
    prices_csv,
    signals,
    vault_def,
)
from vanta_box.service import cycle, execute

SMALL = {"JOURNAL_CHUNK": 2, "BATCH_ACCOUNTS": 2, "BATCH_ORDERS": 4}
_MAIN = ("import sys; import vanta_box.service.execute as e; import vanta_box.service.cycle"
         " as c; c.JOURNAL_CHUNK = 2; c.BATCH_ACCOUNTS = e.BATCH_ACCOUNTS = 2;"
         " e.BATCH_ORDERS = 4; from vanta_box.cli import main;"
         " sys.argv = ['vanta', *sys.argv[1:]]; main()")


def two_vaults(root: Path) -> Home:
    """Vaults V and W, each with a manager and three followers, prices at T0 and T1."""
    root.parent.mkdir(parents=True, exist_ok=True)
    home = Home(root)
    home.ok("init")
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def("V"),
                                                                 vault_def("W")]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", INSTRUMENTS), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("AAA", T0, "100"), ("BBB", T0, "50"), ("BTC", T0, "20000"),
         ("AAA", T1, "103"), ("BBB", T1, "48.5"), ("BTC", T1, "20500"),
         ("AAA", T2, "99"), ("BBB", T2, "51"), ("BTC", T2, "20100")])), "--at", T0)
    for vault_id, as_of, scores in (
            ("V", T0, [("AAA", "0.4", None), ("BBB", "0.3", None), ("BTC", "0.3", None)]),
            ("W", T0, [("AAA", "0.2", "a"), ("BTC", "0.5", None)]),
            ("V", T1, [("AAA", "0.1", None), ("BBB", "0.6", None), ("BTC", "0.2", "b")])):
        home.ok("signals", "ingest", home.write(f"s{vault_id}.json",
                                                signals(vault_id, as_of, scores)), "--at", T0)
    packets = []
    for vault_id in ("V", "W"):
        packets.append(home.write(f"m{vault_id}.json",
                                  manager_packet(f"M{vault_id}", vault_id)))
        for n in range(3):
            packets.append(home.write(f"{vault_id}{n}.json", {
                "packet_version": 1, "account_id": f"{vault_id}F{n}", "role": "follower",
                "vault_id": vault_id,
                "broker": {"kind": "paper", "starting_cash": str(20000 + 7000 * n)}}))
    home.ok("onboard", *packets, "--at", T0)
    return home


def test_batch_sizes_change_no_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {}
    for name, small in (("default", False), ("small", True)):
        if small:
            for constant, value in SMALL.items():
                for module in (cycle, execute):
                    if hasattr(module, constant):
                        monkeypatch.setattr(module, constant, value)
        home = two_vaults(tmp_path / name / "home")
        home.ok("cycle", "run", "--at", T1)
        home.ok("cycle", "run", "--stage-only", "--at", T2)
        home.ok("queue", "execute", "--at", T2)
        files[name] = (home.db_bytes(), home.memory("portfolio.json"),
                       (home.root / "memory" / "trade_log.jsonl").read_bytes())
    assert files["small"] == files["default"]


def vanta(root: Path, *args: str, crash_after: int | None = None
          ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VANTA_TEST_CRASH_AFTER_COMMIT"}
    if crash_after is not None:
        env["VANTA_TEST_CRASH_AFTER_COMMIT"] = str(crash_after)
    return subprocess.run([sys.executable, "-c", _MAIN, "--home", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def end_state(root: Path) -> dict[str, Any]:
    assert vanta(root, "emit", "--at", T2).returncode == 0
    return {name: json.loads((root / "memory" / name).read_text())["accounts"]
            for name in ("portfolio.json", "pnl_summary.json")}


def test_a_cycle_of_two_vaults_killed_at_every_commit_verifies_and_resumes(
        tmp_path: Path) -> None:
    base = two_vaults(tmp_path / "base").root
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    assert vanta(clean, "cycle", "run", "--at", T1).returncode == 0
    expected = end_state(clean)
    n = 0
    while True:
        n += 1
        root = tmp_path / f"killed{n}"
        shutil.copytree(base, root)
        killed = vanta(root, "cycle", "run", "--at", T1, crash_after=n)
        if killed.returncode != 137:  # the cycle made fewer commits: every one was tried
            assert killed.returncode == 0, killed.stderr
            break
        check = vanta(root, "audit", "verify")  # replay stops where the original did
        assert check.returncode == 0, f"killed after commit {n}: {check.stdout}"
        resumed = vanta(root, "cycle", "run", "--at", T1)
        assert resumed.returncode in (0, 1), resumed.stderr
        assert vanta(root, "audit", "verify").returncode == 0
        assert end_state(root) == expected, f"killed after commit {n}"
    assert n > 6  # staging, batches and the end of both vaults' cycles
