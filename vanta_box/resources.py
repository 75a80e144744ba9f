"""Where bundled files live: in a source checkout, an installed wheel or a frozen binary.

The one place that knows. ``sql/`` and ``templates/`` sit at the project root in a
checkout, under ``vanta_box/_bundled/`` in a wheel, and under ``sys._MEIPASS`` in the
PyInstaller binary; the sample data is package data under ``vanta_box/sample/``.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def _root_for(name: str) -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = []
    if frozen:
        candidates.append(Path(frozen) / name)
    candidates += [_PACKAGE / "_bundled" / name, _PACKAGE.parent / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled directory {name}/ not found (looked in {candidates})")


def sql_dir() -> Path:
    return _root_for("sql")


def templates_dir() -> Path:
    return _root_for("templates")


def sample_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen and (Path(frozen) / "vanta_box" / "sample").is_dir():
        return Path(frozen) / "vanta_box" / "sample"
    return _PACKAGE / "sample"
