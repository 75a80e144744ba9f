"""Project rules that a reviewer would otherwise have to remember."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vanta_box"


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_wall_clock_is_read_only_by_the_clock() -> None:
    pattern = re.compile(r"datetime\.now|datetime\.utcnow|time\.time\(|date\.today|"
                         r"random\.|uuid\.uuid4")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in sources() if p.name != "clock.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


def test_no_binary_float_in_the_money_path() -> None:
    pattern = re.compile(r"\bfloat\(|parse_float=float|: float\b|-> float\b")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in sources()
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "not money" not in line]
    assert offenders == []


def test_only_the_store_imports_apsw() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in sources()
                 if "store" not in p.parts and re.search(r"^\s*(import|from) apsw", p.read_text(),
                                                         re.M)]
    assert offenders == []


def test_sql_binds_every_value() -> None:
    pattern = re.compile(r"random\(\)|datetime\('now'|CURRENT_TIMESTAMP|strftime\('%s', 'now'",
                         re.I)
    files = [*sorted((ROOT / "sql").glob("*.sql")), *sources()]
    def code(p: Path) -> str:  # comments may name what they forbid
        marker = "--" if p.suffix == ".sql" else "#"
        return "\n".join(line.split(marker)[0] for line in p.read_text().splitlines())

    offenders = [str(p.relative_to(ROOT)) for p in files if pattern.search(code(p))]
    assert offenders == []


def test_stages_do_no_io() -> None:
    pattern = re.compile(r"^\s*(import|from) (vanta_box\.(store|service|execution|cli)|apsw|os|"
                         r"pathlib)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in sorted((PACKAGE / "domain").glob("*.py"))
                 if pattern.search(p.read_text())]
    assert offenders == []


def test_help_is_fast_and_does_not_import_heavy_modules() -> None:
    code = ("import sys; from vanta_box.cli import cli; "
            "heavy = [m for m in ('pydantic', 'apsw', 'ccxt', 'alpaca', 'cryptography', "
            "'apprise', 'stripe', 'requests') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_lint_and_types_are_clean(tool: str) -> None:
    exe = Path(sys.executable).parent / tool
    if not exe.exists():
        found = shutil.which(tool)
        if found is None:
            pytest.fail(f"{tool} is not installed (it is in the dev extra)")
        exe = Path(found)
    args = [str(exe), "check", "vanta_box"] if tool == "ruff" else [str(exe)]
    result = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
