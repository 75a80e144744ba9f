"""HTML reports: offline from a lone file, deterministic, escaped, one follower per page."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import T0, Home, run_vanta, signals, vault_def


def test_reports_from_a_lone_database_file(tmp_path: Path) -> None:
    from vanta_box import home as homes
    from vanta_box.service import demo

    root = tmp_path / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    lone = tmp_path / "auditor" / "vanta.db"
    lone.parent.mkdir()
    lone.write_bytes((root / "vanta.db").read_bytes())
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert run_vanta("report", "--db", str(lone), "--out", str(out_a)).code == 0
    assert run_vanta("report", "--db", str(lone), "--out", str(out_b)).code == 0
    pages = sorted(p.relative_to(out_a) for p in out_a.rglob("*.html"))
    assert Path("index.html") in pages and Path("followers/F1001.html") in pages
    for page in pages:  # deterministic, and the same as the demo's own
        assert (out_a / page).read_bytes() == (out_b / page).read_bytes()
        assert (out_a / page).read_bytes() == (root / "reports" / page).read_bytes()
    f1001 = (out_a / "followers" / "F1001.html").read_text()
    others = {f"F100{n}" for n in range(2, 7)} | {"M_CORE"}
    assert not [o for o in others if o in f1001]  # that follower's data only
    assert "2026-10" in f1001 and "2685" not in f1001


def test_labels_are_escaped(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(vault_def(label='<script>alert("x")</script>'),
                             prices=[("AAA", T0, "10")])
    home.ok("signals", "ingest", home.write("s.json", signals("V", T0, [("AAA", "1", None)])))
    home.ok("cycle", "run", "--at", T0)
    home.ok("report")
    html = (home.root / "reports" / "index.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert re.search(r"<td class=\"num\">100,000\.00</td>", html)  # cents for display


def test_report_with_overlays_of_every_kind(setup_vault) -> None:  # type: ignore[no-untyped-def]
    home: Home = setup_vault(prices=[("AAA", T0, "10")])
    for flag in (["--flip"], ["--maintenance"], ["--boost", "a=2"]):
        home.ok("overlay", "set", "V", *flag, "--ttl", "1d", "--at", T0)
    home.ok("report", "--at", "2026-11-01T06:00:00Z")
    html = (home.root / "reports" / "vault_V.html").read_text()
    assert html.count("<td>flip</td>") == 1 and "<td>maintenance</td>" in html
