"""Same inputs and --at times -> byte-identical state files and journal hashes."""

from __future__ import annotations

from pathlib import Path

from vanta_box import home as homes
from vanta_box.service import demo


def test_two_homes_fed_the_same_inputs_are_byte_identical(tmp_path: Path) -> None:
    a = demo.run(homes.resolve(tmp_path / "a"), lambda _line: None)
    b = demo.run(homes.resolve(tmp_path / "deeper" / "b"), lambda _line: None)
    assert a.digest == b.digest
    names = sorted(p.name for p in (tmp_path / "a" / "memory").iterdir())
    assert "portfolio.json" in names and "trade_log.jsonl" in names
    for name in names:
        left = (tmp_path / "a" / "memory" / name).read_bytes()
        right = (tmp_path / "deeper" / "b" / "memory" / name).read_bytes()
        assert left == right, name


def test_demo_refuses_a_home_it_did_not_make(tmp_path: Path) -> None:
    import pytest

    from vanta_box.core.errors import Refused

    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(Refused):
        demo.run(homes.resolve(target), lambda _line: None)
    assert (target / "notes.txt").read_text() == "mine"
    # a previous demo home is rebuilt from scratch
    again = tmp_path / "demo"
    first = demo.run(homes.resolve(again), lambda _line: None)
    second = demo.run(homes.resolve(again), lambda _line: None)
    assert first.digest == second.digest
