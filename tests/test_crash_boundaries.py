"""A command killed at any commit boundary (as by kill -9) leaves a home that verifies, and
its resumption finishes it: verified again, with the end state of an uninterrupted run.

The kill is deterministic: ``VANTA_TEST_CRASH_AFTER_COMMIT=N`` (``core/faults.py``) ends
the process with ``os._exit(137)`` right after its N-th committed transaction. Execution
batches are made small (4 orders) so that a cycle has several commit boundaries.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
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

_MAIN = ("import sys; import vanta_box.service.execute as e; e.BATCH_ORDERS = 4; "
         "from vanta_box.cli import main; sys.argv = ['vanta', *sys.argv[1:]]; main()")


def vanta(root: Path, *args: str,
          crash_after: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VANTA_TEST_CRASH_AFTER_COMMIT"}
    if crash_after is not None:
        env["VANTA_TEST_CRASH_AFTER_COMMIT"] = str(crash_after)
    return subprocess.run([sys.executable, "-c", _MAIN, "--home", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def ok(root: Path, *args: str) -> str:
    done = vanta(root, *args)
    assert done.returncode == 0, f"vanta {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done.stdout


def alerted(root: Path, *args: str) -> str:
    """``vanta run --once`` that raised a new alert: exit 4 (SPEC §6)."""
    done = vanta(root, *args)
    assert done.returncode == 4, f"vanta {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done.stdout


def verified(root: Path) -> None:
    done = vanta(root, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr


def end_state(root: Path) -> dict[str, Any]:
    """What an uninterrupted run and a resumed one must agree on."""
    ok(root, "emit", "--at", T2)
    portfolio = json.loads((root / "memory" / "portfolio.json").read_text())
    pnl = json.loads((root / "memory" / "pnl_summary.json").read_text())
    fills = [(line["account_id"], line["symbol"], line["qty"], line["price"])
             for line in map(json.loads,
                             (root / "memory" / "trade_log.jsonl").read_text().splitlines())
             if line["kind"] == "fill"]
    queue = json.loads((root / "memory" / "autotrade_queue.json").read_text())
    return {"accounts": portfolio["accounts"], "pnl": pnl["accounts"],
            "vaults": pnl["vaults"], "fills": sorted(fills), "queue": queue["orders"]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault V, its manager and four followers, prices and signals at T0."""
    root = tmp_path_factory.mktemp("base") / "home"
    home = Home(root)
    home.ok("init")
    home.ok("vault", "import", home.write("v.json", {"vaults": [vault_def()]}), "--at", T0)
    home.ok("instruments", "import", home.write("i.json", INSTRUMENTS), "--at", T0)
    home.ok("prices", "ingest", home.write("p.csv", prices_csv(
        [("AAA", T0, "100"), ("BBB", T0, "50"), ("BTC", T0, "20000")])), "--at", T0)
    home.ok("signals", "ingest", home.write("s.json", signals(
        "V", T0, [("AAA", "0.4", None), ("BBB", "0.3", None), ("BTC", "0.3", None)])),
        "--at", T0)
    packets = [home.write("m.json", manager_packet())]
    for n in range(4):
        packets.append(home.write(f"f{n}.json", {
            "packet_version": 1, "account_id": f"F{n}", "role": "follower", "vault_id": "V",
            "broker": {"kind": "paper", "starting_cash": str(10000 + 1000 * n)},
            "fee_agreement": {"type": "flat", "flat_usd": "100"}}))
    home.ok("onboard", *packets, "--at", T0)
    return root


def _copy(base: Path, to: Path) -> Path:
    shutil.copytree(base, to)
    return to


def _commits_of(base: Path, tmp_path: Path, *steps: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    """How many commits the last step makes when nothing goes wrong, and the end state."""
    clean = _copy(base, tmp_path / "clean")
    for step in steps:
        ok(clean, *step)
    n = 1
    while True:  # the smallest N at which the last step is not killed
        probe = _copy(base, tmp_path / f"probe{n}")
        for step in steps[:-1]:
            ok(probe, *step)
        if vanta(probe, *steps[-1], crash_after=n).returncode != 137:
            return n - 1, end_state(clean)
        n += 1


def _killed_at_every_boundary(base: Path, tmp_path: Path, steps: tuple[tuple[str, ...], ...],
                              resume: tuple[str, ...]) -> int:
    commits, expected = _commits_of(base, tmp_path, *steps)
    assert commits >= 3  # staging, several execution batches, the end
    for n in range(1, commits + 1):
        root = _copy(base, tmp_path / f"killed{n}")
        for step in steps[:-1]:
            ok(root, *step)
        assert vanta(root, *steps[-1], crash_after=n).returncode == 137
        verified(root)  # an honest interrupted home verifies
        done = vanta(root, *resume)
        if n == commits:  # everything had committed: nothing is left to resume
            assert done.returncode == 1, done.stderr
        else:
            assert done.returncode == 0, f"resume after commit {n}: {done.stderr}"
        verified(root)
        assert end_state(root) == expected, f"killed after commit {n}"
    return commits


def test_cycle_killed_at_every_commit_boundary_verifies_and_resumes(base: Path,
                                                                    tmp_path: Path) -> None:
    cycle = ("cycle", "run", "--at", T1)
    _killed_at_every_boundary(base, tmp_path, (cycle,), cycle)


def test_queue_execute_killed_at_every_commit_boundary(base: Path, tmp_path: Path) -> None:
    stage = ("cycle", "run", "--stage-only", "--at", T1)
    execute = ("queue", "execute", "--at", T1)
    _killed_at_every_boundary(base, tmp_path, (stage, execute), execute)


def test_queue_execute_finishes_a_cycle_whose_orders_all_settled(base: Path,
                                                                 tmp_path: Path) -> None:
    root = _copy(base, tmp_path / "home")
    ok(root, "cycle", "run", "--stage-only", "--at", T1)
    commits, _ = _commits_of(base, tmp_path, ("cycle", "run", "--stage-only", "--at", T1),
                             ("queue", "execute", "--at", T1))
    # killed after the last execution batch, before the cycle's end
    assert vanta(root, "queue", "execute", "--at", T1, crash_after=commits - 1).returncode == 137
    ok(root, "queue", "execute", "--at", T1)  # nothing left to execute: it finishes the cycle
    with sqlite3.connect(root / "vanta.db") as conn:
        assert conn.execute("SELECT status FROM cycles").fetchall() == [("done",)]
    verified(root)


def test_scheduler_resumes_an_interrupted_cycle_before_the_next_slot(base: Path,
                                                                     tmp_path: Path) -> None:
    clean = _copy(base, tmp_path / "clean")
    ok(clean, "run", "--once", "--at", T1)
    # exit 4: T2's cycle trades on marks older than a day, a new alert (marks.stale)
    assert "marks.stale" in alerted(clean, "run", "--once", "--at", T2)
    root = _copy(base, tmp_path / "home")
    assert vanta(root, "run", "--once", "--at", T1, crash_after=2).returncode == 137
    verified(root)
    out = alerted(root, "run", "--once", "--at", T2)  # the next slot: T1's cycle resumes first
    assert out.index("resume V") < out.index("cycle V")
    verified(root)
    assert end_state(root) == end_state(clean)
