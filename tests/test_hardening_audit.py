"""Holes found from outside (issue 9), each closed with a regression test on a real database
edited with the plain sqlite3 module:

* reports from a hostile file: page names made from its ids safely, nothing written outside
  --out, every page computed before the first is written, extreme moments handled;
* a WAL beside the file: named, not read unless --with-wal, never copied beyond a bound, a
  directory in its place a clear message;
* verify: the applied migrations exactly the known ones, another vanta_version said, every
  command payload canonical JSON (no float), SQLite's integrity check, a BLOB where text
  belongs reported at its row.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_vanta
from vanta_box import home as homes
from vanta_box.service import demo
from vanta_box.store import db as store_db

TRIGGERS = ("journal_no_update", "journal_no_delete", "journal_append_at_head")


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hardening") / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    return root / "vanta.db"


@pytest.fixture
def copy(original: Path, tmp_path: Path) -> Path:
    target = tmp_path / "auditor" / "vanta.db"
    target.parent.mkdir()
    shutil.copyfile(original, target)
    return target


def sql(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def one(path: Path, query: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
    conn = sqlite3.connect(path)
    try:
        row: tuple[object, ...] = conn.execute(query, params).fetchone()
        return row
    finally:
        conn.close()


def rechain(conn: sqlite3.Connection) -> None:
    """Re-hash every row over its stored text, as the README says (a forger's own code)."""
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    prev = "0" * 64
    for seq, ts, kind, payload in conn.execute(
            "SELECT seq, ts, kind, payload FROM journal ORDER BY seq").fetchall():
        text = ('{"kind":' + json.dumps(kind, ensure_ascii=False) + ',"payload":' + payload
                + ',"seq":' + str(seq) + ',"ts":' + json.dumps(ts, ensure_ascii=False) + "}")
        new = hashlib.sha256(bytes.fromhex(prev) + text.encode()).hexdigest()
        conn.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?",
                     (prev, new, seq))
        prev = new


def restore_triggers(path: Path) -> None:
    ddl = [text.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)
           for kind, _name, table, text in store_db.expected_schema()
           if kind == "trigger" and table == "journal"]
    sql(path, *ddl)


def forge(path: Path, seq: int, payload: str) -> None:
    """Row ``seq`` given ``payload``, the chain re-hashed, the triggers put back, and the
    stored Merkle tree (a cache of the rows' hashes, which verify recomputes) dropped, as
    a forger would: the file is consistent again."""
    conn = sqlite3.connect(path)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    conn.execute("UPDATE journal SET payload = ? WHERE seq = ?", (payload, seq))
    rechain(conn)
    conn.execute("DELETE FROM merkle_nodes")
    conn.commit()
    conn.close()
    restore_triggers(path)


def vanta(*args: str) -> tuple[int, str]:
    result = run_vanta(*args)
    text = result.out + result.err
    assert "internal error" not in text and "Traceback" not in text, text
    return result.code, text


def verify(path: Path, *extra: str) -> tuple[int, str]:
    return vanta("audit", "verify", "--db", str(path), *extra)


def digest(path: Path, *extra: str) -> str:
    result = run_vanta("audit", "digest", "--db", str(path), *extra)
    assert result.code == 0, result.err
    return result.out.strip()


def files_of(path: Path) -> dict[str, bytes | None]:
    return {suffix: Path(str(path) + suffix).read_bytes()
            if Path(str(path) + suffix).exists() else None for suffix in ("", "-wal", "-shm")}


# --- 3. reports from a hostile file -------------------------------------------------------

HOSTILE_IDS = ["../../../../victim", "/tmp/absolute", "..", "f1002", "F1002/../x", "CON",
               "a\\b", "x" * 300, "Zürich", ""]


def test_page_names_are_safe_and_unique_case_insensitively() -> None:
    from vanta_box.reports.html import follower_page, page_stem, vault_page

    ids: list[object] = [*HOSTILE_IDS, "F1002", "M_CORE", "V_CORE", b"F1002", "b'F1002'",
                         "F1002.html", "con", "Con"]
    stems = [page_stem(i) for i in ids]
    assert len({s.lower() for s in stems}) == len(ids)  # unique even on a case-blind disk
    for stem in stems:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", stem), stem
        assert ".." not in stem and not stem.startswith(".") and "/" not in stem
        assert stem.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
    assert page_stem("F1002") == "F1002" and page_stem("V_CORE") == "V_CORE"  # as before
    assert follower_page("F1001") == "followers/F1001.html"
    assert vault_page("V_CORE") == "vault_V_CORE.html"
    assert page_stem("../../../../victim") == page_stem("../../../../victim")  # stable


def _hostile(copy: Path) -> dict[str, str]:
    """Account and vault ids of the copy replaced by hostile ones; returns old -> new."""
    renames = {"F1001": "../../../../victim", "F1003": "f1002", "F1004": "/tmp/absolute",
               "F1005": ".."}
    statements = [f"UPDATE accounts SET account_id = '{new}' WHERE account_id = '{old}'"
                  for old, new in renames.items()]
    statements.append("UPDATE vaults SET vault_id = '../../vault' WHERE vault_id = 'V_CORE'")
    sql(copy, *statements)
    return renames


def test_a_report_of_hostile_ids_writes_only_inside_out_and_links_its_own_names(
        copy: Path, tmp_path: Path) -> None:
    _hostile(copy)
    out = tmp_path / "deep" / "er" / "out"
    victim = tmp_path / "victim.html"
    victim.write_text("precious")
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    code, text = vanta("report", "--db", str(copy), "--out", str(out))
    assert code == 0, text
    assert victim.read_text() == "precious"
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert written and all(p.resolve().is_relative_to(out.resolve()) for p in written)
    names = [p.relative_to(out).as_posix() for p in written]
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert ".." not in name.split("/") and re.fullmatch(r"(followers/)?[A-Za-z0-9_.-]+",
                                                            name), name
    index = (out / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', index)
    followers = [link for link in links if link.startswith("followers/")]
    assert len(followers) == 6 and all((out / link).is_file() for link in links), links
    assert any(link.startswith("vault_") for link in links)


def test_a_link_inside_out_that_leads_outside_is_refused_and_nothing_is_written(
        copy: Path, tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "followers").symlink_to(elsewhere, target_is_directory=True)
    code, text = vanta("report", "--db", str(copy), "--out", str(out))
    assert code == 2 and "outside" in text, text
    assert list(elsewhere.iterdir()) == [] and not (out / "index.html").exists()


def test_a_report_at_the_end_of_9999_is_made(copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = vanta("report", "--db", str(copy), "--out", str(out), "--at",
                       "9999-12-31T23:59:59Z")
    assert code == 0, text
    page = (out / "followers" / "F1001.html").read_text()
    assert "as of 9999-12-31T23:59:59Z" in page
    # the months of the file's life, not 95,000 of them
    assert page.count('<h2 id="statement-') == 2


def test_a_report_that_cannot_be_made_exits_2_and_writes_nothing(copy: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert vanta("report", "--db", str(copy), "--out", str(out))[0] == 0
    pages = {p: p.read_bytes() for p in out.rglob("*.html")}
    # a price dated at the end of 9999: every follower's statements would run to it
    sql(copy, "UPDATE prices SET ts = 253402300799000000 WHERE (symbol, ts) ="
              " (SELECT symbol, ts FROM prices ORDER BY ts DESC LIMIT 1)")
    at = "9999-12-31T23:59:59Z"
    result = run_vanta("report", "--db", str(copy), "--out", str(out), "--at", at)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "monthly statements" in lines[0], result.err
    assert "internal error" not in result.err
    assert {p: p.read_bytes() for p in out.rglob("*.html")} == pages  # nothing rewritten


# --- 4. a WAL beside the file -------------------------------------------------------------

def _planted_wal(original: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy whose -wal holds a consistently re-chained forgery (the triggers put back);
    returns (the copy, the digest of its main file)."""
    work = tmp_path / "forger"
    work.mkdir()
    base = work / "vanta.db"
    shutil.copyfile(original, base)
    honest = digest(base)
    writer = sqlite3.connect(base)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    rechain_after = writer.execute("SELECT seq, payload FROM journal WHERE kind = 'vault.import'"
                                   ).fetchone()
    for name in TRIGGERS:
        writer.execute(f"DROP TRIGGER {name}")
    writer.execute("UPDATE journal SET payload = ? WHERE seq = ?",
                   (rechain_after[1].replace("Core", "Forged"), rechain_after[0]))
    rechain(writer)
    writer.execute("UPDATE vaults SET config = replace(config, 'Core', 'Forged')")
    for kind, _name, table, text in store_db.expected_schema():
        if kind == "trigger" and table == "journal":
            writer.execute(text)
    writer.commit()
    victim = tmp_path / "handed" / "vanta.db"
    victim.parent.mkdir()
    shutil.copyfile(base, victim)
    shutil.copyfile(str(base) + "-wal", str(victim) + "-wal")  # the writer never closed
    writer.close()
    return victim, honest


def test_a_planted_wal_is_named_and_only_read_with_with_wal(original: Path,
                                                            tmp_path: Path) -> None:
    victim, honest = _planted_wal(original, tmp_path)
    before = files_of(victim)
    result = run_vanta("audit", "digest", "--db", str(victim))
    assert result.code == 0 and result.out.strip() == honest  # the main file's own digest
    assert "WAL" in result.err and "--with-wal" in result.err
    forged = digest(victim, "--with-wal")
    assert forged != honest
    code, text = verify(victim, "--no-replay", "--digest", honest)
    assert code == 0, text
    verdict = text.split("verdict: ", 1)[1].splitlines()[0]
    assert verdict.startswith("OK") and "main file alone" in verdict and "WAL" in verdict
    code, text = verify(victim, "--no-replay", "--with-wal", "--digest", honest)
    verdict = text.split("verdict: ", 1)[1].splitlines()[0]
    assert code == 1 and "history rewritten" in text and "with its WAL" in verdict
    code, text = vanta("replay", "--db", str(victim))
    assert code == 0 and "WAL" in text
    assert files_of(victim) == before  # no byte of the file or its WAL, and no -shm


def test_opened_immutable_sqlite_ignores_a_wal_and_writes_nothing(original: Path,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    shutil.copyfile(original, path)
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE only_in_the_wal (x)")
    writer.commit()
    pending = files_of(path)
    assert pending["-wal"]
    query = "SELECT count(*) FROM sqlite_master WHERE name = 'only_in_the_wal'"
    with store_db.open_readonly(path, with_wal=False) as conn:
        assert conn.execute(query).fetchall() == [(0,)]
        again = store_db.open_again_readonly(conn.filename)  # a helper sees the same
        assert again.execute(query).fetchall() == [(0,)]
        again.close()
    with store_db.open_readonly(path, with_wal=True) as conn:
        assert conn.execute(query).fetchall() == [(1,)]
        again = store_db.open_again_readonly(conn.filename)
        assert again.execute(query).fetchall() == [(1,)]
        again.close()
    assert files_of(path) == pending
    writer.close()


def test_verify_reads_a_pending_wal_only_with_with_wal_and_changes_no_byte(copy: Path) -> None:
    writer = sqlite3.connect(copy)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
    writer.commit()
    pending = files_of(copy)
    code, text = verify(copy)
    assert code == 0 and "scratch" not in text and "was not read" in text, text
    code, text = verify(copy, "--with-wal")
    after = files_of(copy)
    writer.close()
    assert after == pending
    assert code == 1 and "table scratch: not created by any migration" in text


def test_a_huge_sparse_wal_is_refused_not_copied(copy: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    assert hasattr(store_db, "wal_limit")  # (today's code would copy all 4 GB)
    private = tmp_path / "tmpdir"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    wal = Path(str(copy) + "-wal")
    with wal.open("wb") as handle:
        handle.truncate(4 << 30)  # sparse: no block is written
    for args in (["audit", "digest"], ["audit", "verify", "--no-replay"], ["replay"]):
        result = run_vanta(*args, "--db", str(copy), "--with-wal")
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and "4,294,967,296 bytes" in lines[0], args
        assert list(private.iterdir()) == []
    code, text = verify(copy, "--no-replay")
    assert code == 0 and "4,294,967,296 bytes" in text and "was not read" in text


def test_a_directory_named_like_the_wal_is_a_clear_message(copy: Path) -> None:
    Path(str(copy) + "-wal").mkdir()
    for args in (["audit", "digest"], ["audit", "verify", "--no-replay"], ["replay"]):
        code, text = vanta(*args, "--db", str(copy))
        assert code == 0 and "not a regular file" in text, (args, text)
        result = run_vanta(*args, "--db", str(copy), "--with-wal")
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and "not a regular file" in lines[0]


# --- 5. verify's gaps ---------------------------------------------------------------------

def test_an_extra_migration_row_fails_verify(copy: Path) -> None:
    (top,) = one(copy, "SELECT max(version) FROM schema_migrations")
    assert isinstance(top, int)
    sql(copy, f"INSERT INTO schema_migrations VALUES ({top + 1}, '{top + 1:03d}_evil', 'ab')")
    code, text = verify(copy, "--no-replay")
    assert code == 1 and f"migration row ({top + 1}, '{top + 1:03d}_evil')" in text, text


def test_another_vanta_version_is_said_by_verify_and_replay(copy: Path) -> None:
    from vanta_box import __version__

    seq, payload = one(copy, "SELECT seq, payload FROM journal WHERE kind = 'signals.ingest'"
                             " ORDER BY seq LIMIT 1")
    assert isinstance(seq, int) and isinstance(payload, str)
    doc = json.loads(payload)
    doc["vanta_version"] = "0.0.1"
    forge(copy, seq, json.dumps(doc, sort_keys=True, separators=(",", ":"),
                                ensure_ascii=False))
    note = f"written by vanta-box 0.0.1; this is {__version__}"
    for extra in ((), ("--no-replay",)):
        code, text = verify(copy, *extra)
        assert code == 0 and note in text, text
    code, text = vanta("replay", "--db", str(copy))
    assert code == 0 and note in text, text


def _command_row(path: Path) -> tuple[int, dict[str, object]]:
    seq, payload = one(path, "SELECT seq, payload FROM journal WHERE kind = 'signals.ingest'"
                             " ORDER BY seq LIMIT 1")
    assert isinstance(seq, int) and isinstance(payload, str)
    return seq, json.loads(payload)


CANONICAL = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}


@pytest.mark.parametrize("edit", ["float", "exponent", "nan", "unsorted", "spaces",
                                  "escaped", "duplicate"])
def test_a_non_canonical_command_payload_is_named(copy: Path, edit: str) -> None:
    seq, doc = _command_row(copy)
    text = json.dumps(doc, **CANONICAL)  # type: ignore[arg-type]
    payload = {
        "float": text[:-1] + ',"zz":1.5}',
        "exponent": text[:-1] + ',"zz":1e3}',
        "nan": text[:-1] + ',"zz":NaN}',
        "unsorted": '{"zz":"1",' + text[1:],
        "spaces": json.dumps(doc, sort_keys=True),
        "escaped": text.replace('"vanta_version"', '"vanta\\u005fversion"'),
        "duplicate": text[:-1] + f',"{sorted(doc)[-1]}":"again"}}',
    }[edit]
    forge(copy, seq, payload)
    for extra in (("--no-replay",), ()):
        code, out = verify(copy, *extra)
        assert code == 1 and "journal payloads: NOT canonical" in out, out
        assert f"first bad row: journal row {seq} (signals.ingest at" in out
    if edit in ("float", "exponent", "nan"):
        assert "fraction or an exponent" in out


def test_a_float_in_a_decision_row_is_named_by_verify(copy: Path) -> None:
    seq, payload = one(copy, "SELECT seq, payload FROM journal WHERE kind = 'fill'"
                             " ORDER BY seq LIMIT 1")
    assert isinstance(seq, int) and isinstance(payload, str)
    forge(copy, seq, payload[:-1] + ',"zz":0.5}')
    code, out = verify(copy)
    assert code == 1 and f"first bad row: journal row {seq} (fill at" in out, out
    assert "fraction or an exponent" in out


def test_parse_canonical_accepts_only_the_canonical_text() -> None:
    from vanta_box.service.audit import parse_canonical

    good = ['{}', '{"a":"1","b":{"c":[1,-2,"x"]}}', '{"k":"Zürich \\" \\\\ \\n"}',
            '{"a":0,"b":true,"c":null}']
    bad = ['{"b":"1","a":"2"}', '{"a": "1"}', '{"a":1.0}', '{"a":-0}', '{"a":1E2}', "[]",
           '"x"', '{"a":"\\u00fc"}', '{"a":"1"} ', "{", '{"a":"1","a":"1"}', b'{}', 12, None,
           '{"a":Infinity}']
    assert [parse_canonical(g)[0] for g in good] == [None] * len(good)
    assert all(parse_canonical(b)[0] is not None for b in bad)


def _empty_table_root(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        for name, root in conn.execute("SELECT name, rootpage FROM sqlite_master"
                                       " WHERE type = 'table' AND rootpage > 0"):
            if conn.execute(f'SELECT count(*) FROM "{name}"').fetchone() == (0,):
                return int(root)
    finally:
        conn.close()
    raise AssertionError("the demo has no empty table")


def _damage_page(path: Path, page: int) -> None:
    (size,) = one(path, "PRAGMA page_size")
    assert isinstance(size, int)
    with path.open("r+b") as handle:  # the page's first freeblock points into nowhere
        handle.seek((page - 1) * size + 1)
        handle.write((100).to_bytes(2, "big"))


@pytest.mark.parametrize("pragma", ["integrity_check", "quick_check"])
def test_sqlite_finds_a_damaged_page_of_an_empty_table(copy: Path, pragma: str) -> None:
    _damage_page(copy, _empty_table_root(copy))
    with store_db.open_readonly(copy) as conn:
        found = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
        assert found != ["ok"] and "corruption" in found[0]


def test_a_damaged_page_of_an_empty_table_fails_verify(copy: Path) -> None:
    page = _empty_table_root(copy)
    _damage_page(copy, page)
    for extra in (("--no-replay",), ()):
        code, out = verify(copy, *extra)
        assert code == 1 and "SQLite integrity check: 1 problem(s)" in out, out
        assert f"page {page}" in out


def _blob(copy: Path, column: str, seq: int) -> None:
    """Row ``seq`` holds a BLOB in ``column`` of the STRICT journal: the table made
    non-STRICT through writable_schema for the update, then made STRICT again."""
    (ddl,) = one(copy, "SELECT sql FROM sqlite_master WHERE name = 'journal'")
    assert isinstance(ddl, str)
    sql(copy, "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = replace(sql, ') STRICT', ')') WHERE name = 'journal'")
    sql(copy, "DROP TRIGGER journal_no_update",
        f"UPDATE journal SET {column} = CAST({column} AS BLOB) WHERE seq = {seq}")
    sql(copy, "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = ? WHERE name = 'journal'", params=(ddl,))
    restore_triggers(copy)
    assert one(copy, f"SELECT typeof({column}) FROM journal WHERE seq = ?", (seq,)) == ("blob",)


@pytest.mark.parametrize(("column", "kind"), [("payload", "fill"), ("payload", "cycle.run"),
                                              ("ts", "fill"), ("hash", "order")])
def test_a_blob_where_text_belongs_is_a_problem_at_its_row(copy: Path, column: str,
                                                           kind: str) -> None:
    (seq,) = one(copy, "SELECT seq FROM journal WHERE kind = ? ORDER BY seq LIMIT 1 OFFSET 2",
                 (kind,))
    assert isinstance(seq, int)
    _blob(copy, column, seq)
    code, out = verify(copy)
    assert code == 1, out
    assert "non-TEXT value in journal" in out  # SQLite's own check names the column
    assert re.search(rf"first bad row: journal row {seq}\b", out), out
    code, out = vanta("replay", "--db", str(copy))
    assert code == 1 and "NOT identical" in out, out


def test_verify_of_a_big_file_checks_integrity_and_chain_in_helpers(
        copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked integrity check and chain halves say what one process says."""
    from vanta_box.service import audit
    from vanta_box.service import replay as replay_module

    _damage_page(copy, _empty_table_root(copy))
    seq, doc = _command_row(copy)
    forge(copy, seq, json.dumps({**doc, "zz": 2.5}, **CANONICAL))  # type: ignore[arg-type]
    alone = audit.verify(copy, [], with_replay=False)
    monkeypatch.setattr(audit, "INTEGRITY_IN_CHILD_BYTES", 0)
    monkeypatch.setattr(audit, "PARALLEL_CHAIN_ROWS", 10)
    monkeypatch.setattr(replay_module, "helpers_pay", lambda: replay_module.CAN_FORK)
    forked = audit.verify(copy, [], with_replay=False)
    assert alone.integrity and forked.integrity == alone.integrity
    assert alone.payloads and forked.payloads == alone.payloads
    assert forked.versions == alone.versions and forked.rows == alone.rows
    assert os.getpid() == os.getpid()  # (the helpers ended; nothing else to check)


def _report_reads_wal_only_when_asked() -> bool:
    from vanta_box.cli import cli

    return any("--with-wal" in getattr(p, "opts", ()) for p in cli.commands["report"].params)


@pytest.mark.skipif(not _report_reads_wal_only_when_asked(),
                    reason="needs `vanta report --with-wal` (vanta_box/cli/outputs.py)")
def test_a_report_of_a_file_with_a_planted_wal_shows_the_main_file(original: Path,
                                                                    tmp_path: Path) -> None:
    victim, _honest = _planted_wal(original, tmp_path)
    before = files_of(victim)
    out, with_wal = tmp_path / "out", tmp_path / "with-wal"
    code, text = vanta("report", "--db", str(victim), "--out", str(out))
    assert code == 0 and "was not read" in text, text
    assert "Forged" not in (out / "index.html").read_text()
    code, text = vanta("report", "--db", str(victim), "--out", str(with_wal), "--with-wal")
    assert code == 0 and "with its WAL" in text, text
    assert "Forged" in (with_wal / "index.html").read_text()
    assert files_of(victim) == before
    Path(str(victim) + "-wal").unlink()
    Path(str(victim) + "-wal").mkdir()
    result = run_vanta("report", "--db", str(victim), "--out", str(out), "--with-wal")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
