"""Smoke tests of the benchmark scripts: they run and print their figures. Never timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize(("script", "words"), [
    ("bench_cycle.py", ("cycles/s", "floor")),
    ("bench_mirror.py", ("child orders/s", "raw floor", "ratio")),
    ("bench_audit.py", ("rows/s", "floor", "events/s")),
    ("bench_live.py", ("orders/s", "floor", "ratio")),
    ("bench_proofs.py", ("proofs", "floor", "ratio", "µs a row")),
])
def test_benchmark_quick_runs(script: str, words: tuple[str, ...]) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), "--quick"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for word in words:
        assert word in result.stdout
