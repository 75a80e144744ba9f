"""What makes replay fast must not change what it proves.

* The write-behind (store/writebehind.py): the append-only tables written by a second
  process must give exactly the file a plain replay gives, including where handlers read
  those tables back (the queue, an interrupted cycle, a removal); what it cannot serve
  falls back to a plain replay rather than answer wrongly.
* Trusting the original chain (Journal.expect): a reproduced row takes the original's hash
  only while that chain is intact; a broken chain is never copied into the rebuilt file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import apsw
import pytest

from tests.conftest import run_vanta
from vanta_box import home as homes
from vanta_box.core.money import D
from vanta_box.service import demo
from vanta_box.service.replay import compare_table, projection_tables, replay
from vanta_box.store import db, writebehind


@pytest.fixture(autouse=True)
def helpers_even_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the forked helpers: use them whatever the machine's cores."""
    import vanta_box.service.replay as replay_module

    monkeypatch.setattr(replay_module, "helpers_pay", lambda: replay_module.CAN_FORK)


@pytest.fixture(scope="module")
def busy_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, then the paths that read orders, fills and the journal back: a staged
    cycle executed from the queue, a removal (dated after the last fill), a staged cycle
    superseded by the next one."""
    root = tmp_path_factory.mktemp("wb") / "home"
    demo.run(homes.resolve(root), lambda _line: None)

    def ok(*args: str) -> None:
        result = run_vanta("--home", str(root), *args)
        assert result.code == 0, (args, result.err)

    with db.open_readonly(root / "vanta.db") as conn:
        last = dict(conn.execute("SELECT symbol, price FROM prices p WHERE ts ="
                                 " (SELECT max(ts) FROM prices q WHERE q.symbol = p.symbol)"))
    lines = ["symbol,ts,price"]
    for n, (symbol, price) in enumerate(sorted(last.items())):
        for day, move in (("21", "1.12"), ("23", "0.9"), ("24", "1.05")):
            lines.append(f"{symbol},2026-11-{day}T00:00:00Z,"
                         f"{D(price) * (D(move) if n % 2 else 2 - D(move))}")
    prices = root.parent / "prices.csv"
    prices.write_text("\n".join(lines) + "\n")
    ok("prices", "ingest", str(prices), "--at", "2026-11-21T00:00:00Z")
    ok("cycle", "run", "--stage-only", "--at", "2026-11-21T00:00:00Z")
    ok("queue", "execute", "--at", "2026-11-21T00:00:00Z")
    ok("follower", "remove", "F1006", "--at", "2026-11-22T00:00:00Z")
    ok("cycle", "run", "--stage-only", "--at", "2026-11-23T00:00:00Z")
    ok("cycle", "run", "--at", "2026-11-24T00:00:00Z")
    with db.open_readonly(root / "vanta.db") as conn:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM journal WHERE ts >="
                                  " '2026-11-21T00:00:00Z' GROUP BY kind"))
    assert kinds.get("fill", 0) > 10 and kinds.get("cancel", 0) > 0, kinds
    return root / "vanta.db"


def _replay(source: Path, out: Path, *, write_behind: bool,
            chain_intact: bool | None = None) -> tuple[bool, list[str]]:
    said: list[str] = []
    with db.open_readonly(source) as conn:
        report = replay(conn, out, said.append, write_behind=write_behind,
                        chain_intact=chain_intact)
    assert report.identical, (report.journal_divergence, report.tables)
    return report.identical, said


def _same_files(a: Path, b: Path) -> None:
    with db.open_readonly(a) as x, db.open_readonly(b) as y:
        assert db.schema_of(x) == db.schema_of(y)
        for table in [*projection_tables(x), "journal"]:
            assert compare_table(x, y, table) == "identical", table


def test_write_behind_replay_equals_the_plain_one(busy_home: Path, tmp_path: Path) -> None:
    _, said = _replay(busy_home, tmp_path / "wb.db", write_behind=True)
    assert not any("again" in line for line in said), said  # no fallback was needed
    _replay(busy_home, tmp_path / "plain.db", write_behind=False)
    _same_files(tmp_path / "wb.db", tmp_path / "plain.db")
    _same_files(tmp_path / "wb.db", busy_home)
    # the rebuilt file is a complete database: it verifies on its own
    result = run_vanta("audit", "verify", "--db", str(tmp_path / "wb.db"))
    assert result.code == 0, result.out + result.err


def test_rows_hashed_again_equal_rows_whose_hash_was_taken(busy_home: Path,
                                                           tmp_path: Path) -> None:
    _, said = _replay(busy_home, tmp_path / "trusted.db", write_behind=True)
    assert not any("again" in line for line in said), said
    _replay(busy_home, tmp_path / "hashed.db", write_behind=False, chain_intact=False)
    _same_files(tmp_path / "trusted.db", tmp_path / "hashed.db")


def test_a_broken_chain_is_never_copied_into_the_rebuilt_file(busy_home: Path,
                                                             tmp_path: Path) -> None:
    copy = tmp_path / "edited.db"
    shutil.copy(busy_home, copy)
    edit = apsw.Connection(str(copy))
    for (name,) in edit.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                " AND tbl_name = 'journal'").fetchall():
        edit.execute(f"DROP TRIGGER {name}")
    seq, payload = edit.execute("SELECT seq, payload FROM journal WHERE kind = 'allocation'"
                                " ORDER BY seq LIMIT 1").fetchone()
    # a decision edited in place, hash left alone: replay reproduces the original payload,
    # so only the chain check can tell that the file's row is not what its hash says
    edit.execute("UPDATE journal SET payload = ? WHERE seq = ?",
                 (payload.replace('"cash_weight":"', '"cash_weight":"1'), seq))
    edit.close()
    said: list[str] = []
    with db.open_readonly(copy) as conn:
        report = replay(conn, tmp_path / "out.db", said.append)
    assert any("hashing every row" in line for line in said), said
    assert not report.identical
    assert report.journal_divergence is not None and report.journal_divergence.seq == seq
    from vanta_box.service.audit import VerifyReport, check_chain

    found = VerifyReport()
    with db.open_readonly(tmp_path / "out.db") as conn:
        check_chain(conn, [], found)
    assert not found.chain  # the rebuilt file's chain is its own, and intact


def test_what_the_write_behind_cannot_serve_falls_back_to_a_plain_replay(
        busy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: writebehind.WriteBehindConnection) -> None:
        raise writebehind.Fallback("refused by the test")

    monkeypatch.setattr(writebehind.WriteBehindConnection, "_before_read", refuse)
    _, said = _replay(busy_home, tmp_path / "out.db", write_behind=True)
    assert any("replaying again in one process (refused by the test)" in s for s in said)
    _same_files(tmp_path / "out.db", busy_home)


def test_a_read_of_rows_not_yet_committed_is_refused(tmp_path: Path) -> None:
    conn = writebehind.open_write_behind(tmp_path / "out.db")
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO journal (seq, ts, kind, payload, prev_hash, hash)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         [(1, "2026-01-01T00:00:00Z", "k", "{}", "0" * 64, "1" * 64)])
        with pytest.raises(writebehind.Fallback, match="not committed"):
            conn.execute("SELECT count(*) FROM journal")
        conn.execute("ROLLBACK")
        # a rolled-back insert never reaches the writer; a committed one does
        assert conn.execute("SELECT count(*) FROM journal").fetchall() == [(0,)]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO journal (seq, ts, kind, payload, prev_hash, hash)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         [(1, "2026-01-01T00:00:00Z", "k", "{}", "0" * 64, "1" * 64)])
        conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM journal").fetchall() == [(1,)]
    finally:
        conn.abandon()
        conn.close()


def test_a_writer_failure_is_a_fallback_not_a_wrong_answer(tmp_path: Path) -> None:
    conn = writebehind.open_write_behind(tmp_path / "out.db")
    row = (1, "2026-01-01T00:00:00Z", "k", "{}", "0" * 64, "1" * 64)
    try:
        for _ in range(2):  # the second insert breaks the primary key in the writer
            conn.executemany("INSERT INTO journal (seq, ts, kind, payload, prev_hash, hash)"
                             " VALUES (?, ?, ?, ?, ?, ?)", [row])
        with pytest.raises(writebehind.Fallback, match="replay writer"):
            conn.sync()
    finally:
        conn.abandon()
        conn.close()


def test_the_attached_file_is_left_alone_when_abandoned(tmp_path: Path) -> None:
    out = tmp_path / "out.db"
    conn = writebehind.open_write_behind(out)
    conn.abandon()
    conn.close()
    copy = tmp_path / "copy.db"
    shutil.copy(out, copy)
    plain = apsw.Connection(str(copy))
    assert plain.execute("SELECT count(*) FROM journal").fetchall() == [(0,)]
    plain.close()


def test_without_fork_replay_does_the_same_work_in_one_process(
        busy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vanta_box.service.replay as replay_module

    monkeypatch.setattr(replay_module, "CAN_FORK", False)
    _replay(busy_home, tmp_path / "out.db", write_behind=True)
    _same_files(tmp_path / "out.db", busy_home)


def test_the_source_job_reads_ahead_and_checks_the_chain_in_its_own_process(busy_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from vanta_box.service import audit
    from vanta_box.service.replay import SourceJob, _answers, _spans, load_handlers

    load_handlers()
    monkeypatch.setattr(audit, "PARALLEL_CHAIN_ROWS", 10)  # as for a long journal
    with db.open_readonly(busy_home) as conn:
        job = SourceJob(conn.filename, True)
        try:
            for _command, span in _spans(conn):  # the answers arrive in order, as parsed here
                assert job.next_answers() == _answers(span)
            assert job.next_answers() is None
            assert job.chain_intact() is True  # not None: the process did the work
        finally:
            job.abandon()


def _tampered(source: Path, target: Path, *statements: str) -> Path:
    shutil.copy(source, target)
    edit = apsw.Connection(str(target))
    for (name,) in edit.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                                " AND tbl_name = 'journal'").fetchall():
        edit.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        edit.execute(statement)
    edit.close()
    return target


def _fill_seq(path: Path) -> int:
    conn = apsw.Connection(str(path))
    try:
        (seq,) = conn.execute("SELECT seq FROM journal WHERE kind = 'fill' ORDER BY seq"
                              " LIMIT 1 OFFSET 5").fetchone()
        return int(seq)
    finally:
        conn.close()


@pytest.mark.parametrize("edit", [
    "UPDATE journal SET payload = '{\"venue\":' WHERE seq = {seq}",  # not JSON
    "UPDATE journal SET payload = replace(payload, '\"qty\":\"', '\"qty\":[1],\"x\":\"')"
    " WHERE seq = {seq}",  # a decimal that is a list
    "UPDATE journal SET hash = 'zz' || substr(hash, 3) WHERE seq = {seq}",  # not hex
])
def test_a_tampered_answer_or_hash_is_reported_never_a_crash(busy_home: Path, tmp_path: Path,
                                                            edit: str) -> None:
    seq = _fill_seq(busy_home)
    path = _tampered(busy_home, tmp_path / "t.db", edit.replace("{seq}", str(seq)))
    for write_behind in (True, False):
        out = tmp_path / f"out-{write_behind}.db"
        with db.open_readonly(path) as conn:
            report = replay(conn, out, lambda _m: None, write_behind=write_behind)
        assert not report.identical
        assert report.journal_divergence is not None and report.journal_divergence.seq <= seq
    result = run_vanta("audit", "verify", "--db", str(path))
    assert result.code == 1 and f"journal row {seq}" in result.out, result.out + result.err


def test_an_original_in_another_text_encoding_replays(busy_home: Path, tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "utf16.db"
    with sqlite3.connect(busy_home) as source, sqlite3.connect(path) as target:
        target.execute("PRAGMA encoding = 'UTF-16le'")
        target.executescript("\n".join(source.iterdump()))
    for write_behind in (True, False):
        _, said = _replay(path, tmp_path / f"out-{write_behind}.db", write_behind=write_behind)
        assert not any("again" in line for line in said), said


def test_rows_that_cannot_be_handed_to_the_writer_make_it_fall_back(
        busy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_dump = writebehind._dump
    calls = {"n": 0}

    def failing_dump(value: object, out: object) -> None:
        calls["n"] += 1
        if calls["n"] == 20:
            raise OSError(errno.ENOSPC, "No space left on device (simulated)")
        real_dump(value, out)  # type: ignore[arg-type]

    monkeypatch.setattr(writebehind, "_dump", failing_dump)
    _, said = _replay(busy_home, tmp_path / "out.db", write_behind=True)
    assert any("could not hand rows to the writer" in line for line in said), said
    _same_files(tmp_path / "out.db", busy_home)


def test_a_fallback_while_hashing_again_still_ends_in_a_report(
        busy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seq = _fill_seq(busy_home)
    path = _tampered(busy_home, tmp_path / "t.db",
                     f"UPDATE journal SET payload = payload || ' ' WHERE seq = {seq}")
    real = writebehind.open_write_behind
    attempts = {"n": 0}

    def second_fails(*args: object) -> writebehind.WriteBehindConnection:
        attempts["n"] += 1
        if attempts["n"] == 2:  # the attempt that hashes every row
            raise writebehind.Fallback("simulated")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(writebehind, "open_write_behind", second_fails)
    said: list[str] = []
    with db.open_readonly(path) as conn:
        report = replay(conn, tmp_path / "out.db", said.append)
    assert not report.identical and report.chain_intact is False
    assert any("hashing every row" in s for s in said)
    assert any("in one process (simulated)" in s for s in said)


def test_the_writer_ends_when_replay_goes_away(tmp_path: Path) -> None:
    conn = writebehind.open_write_behind(tmp_path / "out.db")
    process = conn._process
    conn._pipe.close()  # what the writer sees when the replaying process dies
    process.join(timeout=20)
    assert not process.is_alive()
    assert not Path(conn._spool).exists()
    conn.abandon()
    conn.close()


def test_a_projection_table_dropped_from_the_file_is_reported(busy_home: Path,
                                                              tmp_path: Path) -> None:
    path = _tampered(busy_home, tmp_path / "t.db", "DROP TABLE fee_payments")
    with db.open_readonly(path) as conn:
        report = replay(conn, tmp_path / "out.db")
    assert report.tables["fee_payments"] == "missing from the file (dropped?)"
    assert not report.identical
