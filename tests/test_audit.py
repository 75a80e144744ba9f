"""Tamper tests: a copy of a real database is edited with the plain sqlite3 module, outside
vanta's code, and `vanta audit verify` / `vanta replay` must notice."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_vanta
from vanta_box import home as homes
from vanta_box.service import demo
from vanta_box.service.audit import parse_digest

TRIGGERS = ("journal_no_update", "journal_no_delete", "journal_append_at_head")


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit") / "demo"
    demo.run(homes.resolve(root), lambda _line: None)
    return root / "vanta.db"


@pytest.fixture
def copy(original: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.db"
    shutil.copyfile(original, target)
    return target


def verify(path: Path, *digests: str, replay: bool = True) -> tuple[int, str]:
    args = ["audit", "verify", "--db", str(path)]
    for d in digests:
        args += ["--digest", d]
    if not replay:
        args.append("--no-replay")
    result = run_vanta(*args)
    return result.code, result.out + result.err


def digest(path: Path) -> str:
    return run_vanta("audit", "digest", "--db", str(path)).out.strip()


def sql(path: Path, *statements: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement, params if "?" in statement else ())
    conn.commit()
    conn.close()


def rehash(path: Path) -> None:
    """Re-chain every row with the README's encoding (an independent implementation)."""
    conn = sqlite3.connect(path)
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    prev = "0" * 64
    rows = conn.execute("SELECT seq, ts, kind, payload FROM journal ORDER BY seq").fetchall()
    for seq, ts, kind, payload in rows:
        row = {"kind": kind, "payload": json.loads(payload), "seq": seq, "ts": ts}
        data = json.dumps(row, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        new = hashlib.sha256(bytes.fromhex(prev) + data).hexdigest()
        conn.execute("UPDATE journal SET prev_hash = ?, hash = ? WHERE seq = ?",
                     (prev, new, seq))
        prev = new
    conn.commit()
    conn.close()


def restore_triggers(path: Path) -> None:
    """Put back any dropped journal trigger, exactly as the migrations define it."""
    from vanta_box.store.db import expected_schema

    ddl = [text.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)
           for kind, _name, table, text in expected_schema()
           if kind == "trigger" and table == "journal"]
    sql(path, *ddl)


def first_fill(path: Path) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    seq, payload = conn.execute(
        "SELECT seq, payload FROM journal WHERE kind = 'fill' ORDER BY seq LIMIT 1").fetchone()
    conn.close()
    return seq, payload


def test_an_untouched_demo_database_verifies(original: Path) -> None:
    code, out = verify(original, digest(original))
    assert code == 0, out
    assert "hash chain: intact" in out and "replay: identical" in out and "verdict: OK" in out


def test_fill_price_changed_after_dropping_the_triggers_names_the_row(copy: Path) -> None:
    seq, payload = first_fill(copy)
    doc = json.loads(payload)
    doc["price"] = str(float(doc["price"]) * 0.5)
    sql(copy, *(f"DROP TRIGGER {t}" for t in TRIGGERS))
    sql(copy, "UPDATE journal SET payload = ? WHERE seq = ?",
        params=(json.dumps(doc, sort_keys=True, separators=(",", ":")), seq))
    code, out = verify(copy)
    assert code == 1
    assert f"first bad row: journal row {seq} (fill at" in out
    assert "does not match its hash" in out
    assert "table journal" not in out  # ...and the dropped triggers are reported too
    assert "trigger journal_no_update: missing" in out


def test_a_row_deleted_in_the_middle_is_named(copy: Path) -> None:
    sql(copy, "DROP TRIGGER journal_no_delete", "DELETE FROM journal WHERE seq = 500")
    restore_triggers(copy)  # put the dropped trigger back: only the chain can tell
    code, out = verify(copy, replay=False)
    assert code == 1 and "journal row 500: missing: the next row is 501" in out


def test_a_consistent_rewrite_passes_alone_but_fails_against_an_earlier_digest(
        copy: Path, tmp_path: Path) -> None:
    published = digest(copy)
    # the forger edits an early input (the vault's label), re-chains the journal, and lets
    # vanta rebuild every projection from it: a fully self-consistent file
    conn = sqlite3.connect(copy)
    seq, payload = conn.execute(
        "SELECT seq, payload FROM journal WHERE kind = 'vault.import'").fetchone()
    conn.close()
    edited = payload.replace("Core Discretionary", "Core Discretionary (amended)")
    sql(copy, *(f"DROP TRIGGER {t}" for t in TRIGGERS))
    sql(copy, "UPDATE journal SET payload = ? WHERE seq = ?", params=(edited, seq))
    rehash(copy)
    forged = tmp_path / "forged.db"
    assert run_vanta("replay", "--db", str(copy), "--out", str(forged)).code == 1
    code, out = verify(forged)
    assert code == 0, out  # the chain and the projections are consistent...
    code, out = verify(forged, published)
    assert code == 1  # ...but not with what was published before the edit
    assert f"digest {published}: FAILED" in out and "history rewritten" in out


def test_an_edit_rechained_without_fixing_projections_fails_replay(copy: Path) -> None:
    seq, payload = first_fill(copy)
    doc = json.loads(payload)
    doc["price"] = "1"
    sql(copy, *(f"DROP TRIGGER {t}" for t in TRIGGERS))
    sql(copy, "UPDATE journal SET payload = ? WHERE seq = ?",
        params=(json.dumps(doc, sort_keys=True, separators=(",", ":")), seq))
    rehash(copy)
    restore_triggers(copy)
    code, out = verify(copy)
    assert code == 1 and "hash chain: intact" in out and "replay: DIFFERS" in out


def test_truncated_history_fails_against_a_later_digest(copy: Path) -> None:
    published = digest(copy)
    head = int(published.split(":")[0])
    sql(copy, "DROP TRIGGER journal_no_delete",
        f"DELETE FROM journal WHERE seq > {head - 10}")
    restore_triggers(copy)
    code, out = verify(copy, published, replay=False)
    assert code == 1 and f"journal ends at row {head - 10}" in out


def test_a_dropped_or_neutered_trigger_is_reported(copy: Path, tmp_path: Path) -> None:
    sql(copy, "DROP TRIGGER journal_no_update")
    code, out = verify(copy, replay=False)
    assert code == 1 and "trigger journal_no_update: missing" in out
    other = tmp_path / "neutered.db"
    shutil.copyfile(copy.parent / "copy.db", other)
    restore_triggers(other)
    # neuter a trigger through writable_schema: the same name, a harmless body
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = replace(sql, 'RAISE(ABORT', 'coalesce(0') "
                 "WHERE name = 'journal_no_delete'")
    conn.commit()
    conn.close()
    code, out = verify(other, replay=False)
    assert code == 1 and "trigger journal_no_delete: definition differs" in out


def test_insert_or_replace_overwriting_a_row_is_caught(copy: Path) -> None:
    # REPLACE does not fire DELETE triggers; the insert trigger refuses it while it
    # exists, so the forger drops it first: the chain still names the row
    sql(copy, "DROP TRIGGER journal_append_at_head")
    sql(copy, "INSERT OR REPLACE INTO journal SELECT seq, ts, kind, "
              "replace(payload, '\"qty\":', '\"qty\":\"0\",\"was\":'), prev_hash, hash "
              "FROM journal WHERE seq = 300")
    code, out = verify(copy, replay=False)
    assert code == 1 and "journal row 300" in out


def test_a_projection_edited_without_the_journal_is_caught_by_replay(copy: Path) -> None:
    sql(copy, "UPDATE accounts SET cash = '999999999' WHERE account_id = 'F1001'")
    code, out = verify(copy)
    assert code == 1 and "hash chain: intact" in out
    assert "table accounts: row" in out and "999999999" in out
    result = run_vanta("replay", "--db", str(copy))
    assert result.code == 1 and "accounts: row" in result.out and "NOT identical" in result.out


def _files(path: Path) -> dict[str, bytes | None]:
    return {suffix: Path(str(path) + suffix).read_bytes()
            if Path(str(path) + suffix).exists() else None for suffix in ("", "-wal", "-shm")}


def test_verify_changes_no_byte_of_the_file_its_wal_or_shm(copy: Path) -> None:
    before = _files(copy)
    assert verify(copy)[0] == 0
    assert _files(copy) == before
    # a file with a pending WAL (a writer that has not checkpointed): still untouched
    writer = sqlite3.connect(copy)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
    writer.commit()
    pending = _files(copy)
    assert pending["-wal"]
    result = run_vanta("audit", "verify", "--db", str(copy), "--with-wal")
    code, out = result.code, result.out + result.err
    after = _files(copy)
    writer.close()
    assert after == pending  # verify read a private copy of the file and its WAL
    assert code == 1 and "table scratch: not created by any migration" in out


def test_the_digest_is_the_same_in_two_homes_fed_the_same_inputs(tmp_path: Path,
                                                                  original: Path) -> None:
    other = tmp_path / "elsewhere"
    demo.run(homes.resolve(other), lambda _line: None)
    assert digest(other / "vanta.db") == digest(original)


def test_export_is_clean_and_scanned(tmp_path: Path, original: Path) -> None:
    home = original.parent
    out = tmp_path / "export.db"
    result = run_vanta("--home", str(home), "audit", "export", "--out", str(out))
    assert result.code == 0, result.err
    assert out.exists() and not Path(str(out) + "-wal").exists()
    assert digest(out) == digest(original)
    assert verify(out)[0] == 0
    assert run_vanta("--home", str(home), "audit", "export", "--out", str(out)).code == 2


def test_not_a_database_and_bad_digests_are_clear_errors(tmp_path: Path, original: Path
                                                         ) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    for args in (["audit", "verify", "--db", str(junk)], ["audit", "digest", "--db", str(junk)],
                 ["replay", "--db", str(junk)]):
        result = run_vanta(*args)
        assert result.code == 2 and "not a SQLite database" in result.err, args
    other = tmp_path / "other.db"
    sql(other, "CREATE TABLE x (a)")
    assert "not a vanta-box database" in run_vanta("audit", "digest", "--db", str(other)).err
    zero = run_vanta("audit", "verify", "--db", str(original), "--digest", "0:" + "0" * 64)
    assert zero.code == 2 and "start at 1" in zero.err
    nodir = run_vanta("replay", "--db", str(original), "--out", "/no/such/dir/x.db")
    assert nodir.code == 2 and "no such directory" in nodir.err


@pytest.mark.parametrize("tamper", ["none", "delete-early", "delete-late", "edit-early",
                                    "edit-late", "truncate"])
def test_the_chain_checked_in_two_halves_says_what_one_pass_says(
        copy: Path, tamper: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from vanta_box.service import audit
    from vanta_box.store import db as store_db

    rows = sqlite3.connect(copy).execute("SELECT max(seq) FROM journal").fetchone()[0]
    early, late = rows // 4, rows * 3 // 4
    digests = [parse_digest(digest(copy))]  # the head, before the edit
    conn = sqlite3.connect(copy)
    for seq in (early, late + 1, rows // 2):  # digests on both sides of the middle
        digests.append(parse_digest(f"{seq}:" + conn.execute(
            "SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()[0]))
    conn.close()
    drop = tuple(f"DROP TRIGGER {t}" for t in TRIGGERS)
    if tamper.startswith("delete"):
        sql(copy, *drop, f"DELETE FROM journal WHERE seq = {early if 'early' in tamper else late}")
    elif tamper.startswith("edit"):
        sql(copy, *drop, "UPDATE journal SET payload = payload || ' ' WHERE seq = "
            f"{early if 'early' in tamper else late}")
    elif tamper == "truncate":
        sql(copy, *drop, f"DELETE FROM journal WHERE seq > {late}")

    def checked() -> audit.VerifyReport:
        report = audit.VerifyReport()
        with store_db.open_readonly(copy) as conn:
            audit.check_chain(conn, digests, report)
        return report

    one_pass = checked()
    monkeypatch.setattr(audit, "PARALLEL_CHAIN_ROWS", 10)
    halves = checked()
    assert (halves.rows, halves.head, halves.chain, halves.digests) == (
        one_pass.rows, one_pass.head, one_pass.chain, one_pass.digests)
    assert (tamper == "none") == (not one_pass.chain and tamper != "truncate")
