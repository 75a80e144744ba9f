"""Smoke test of the cycle benchmark script: it runs and prints its table. Never timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_cycle.py"


def test_bench_cycle_quick_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cycles/s" in result.stdout
    assert "floor" in result.stdout
