"""The one-file binary: build it with build/build.sh, run its demo, compare with the source.

Slow (a full PyInstaller build); skipped only when PyInstaller is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "build" / "build.sh"
BINARY = ROOT / "build" / "dist" / "vanta"


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VANTA_HOME", "VANTA_DEBUG")}
    # Build with the interpreter running the tests (the one we checked has PyInstaller).
    env["PYTHON"] = sys.executable
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.slow
def test_binary_demo_matches_source(tmp_path: Path) -> None:
    pytest.importorskip("PyInstaller", reason="PyInstaller not installed (dev extra)")

    build = _run(["bash", str(BUILD_SCRIPT)], cwd=tmp_path, timeout=15 * 60)
    assert build.returncode == 0, f"build failed:\n{build.stdout}\n{build.stderr}"
    assert build.stdout.strip().splitlines()[-1] == str(BINARY)
    assert BINARY.is_file() and os.access(BINARY, os.X_OK)

    helped = _run([str(BINARY), "--help"], cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout

    home = tmp_path / "home"
    demo = _run([str(BINARY), "demo", "--home", str(home)], cwd=tmp_path, timeout=600)
    assert demo.returncode == 0, f"binary demo failed:\n{demo.stdout}\n{demo.stderr}"
    portfolio = home / "memory" / "portfolio.json"
    assert portfolio.is_file()
    assert (home / "memory" / "trade_log.jsonl").is_file()

    status = _run([str(BINARY), "--home", str(home), "status"], cwd=tmp_path, timeout=120)
    assert status.returncode == 0, f"binary status failed:\n{status.stdout}\n{status.stderr}"

    from vanta_box import home as home_module
    from vanta_box.service import demo as demo_service

    source_home = tmp_path / "source-home"
    demo_service.run(home_module.resolve(source_home), lambda _line: None)
    expected = (source_home / "memory" / "portfolio.json").read_bytes()
    assert portfolio.read_bytes() == expected
    # templates are bundled (the demo writes the HTML reports) and the auditor's check
    # runs from the binary alone, offline, on the lone file
    assert (home / "reports" / "index.html").read_bytes() == (
        source_home / "reports" / "index.html").read_bytes()
    verify = _run([str(BINARY), "audit", "verify", "--db", str(home / "vanta.db")],
                  cwd=tmp_path, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verdict: OK" in verify.stdout
