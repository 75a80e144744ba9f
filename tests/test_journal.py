"""The journal is append-only and hash-chained, whatever plain SQL tries."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from vanta_box.store import db
from vanta_box.store.journal import GENESIS, Journal, events, head


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = db.connect(tmp_path / "j.db")
    db.migrate(c)
    j = Journal(c)
    with db.transaction(c):
        for i in range(5):
            j.append("2026-11-01T00:00:00Z", "test", {"i": i, "amount": "1.5"})
        j.flush()
    yield c
    c.close()


def test_update_and_delete_through_plain_sql_abort(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = sqlite3.connect(tmp_path / "j.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        plain.execute("UPDATE journal SET payload = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        plain.execute("DELETE FROM journal WHERE seq = 2")
    # REPLACE deletes without firing DELETE triggers (recursive_triggers is off here):
    # the insert trigger still refuses a row that is not at the head.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        plain.execute("INSERT OR REPLACE INTO journal VALUES (2, 't', 'k', '{}', ?, ?)",
                      (GENESIS, GENESIS))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        plain.execute("INSERT INTO journal VALUES (9, 't', 'k', '{}', ?, ?)", (GENESIS, GENESIS))
    plain.close()
    assert head(conn).seq == 5


def test_hash_chain_is_reproducible_from_the_documented_encoding(conn) -> None:  # type: ignore[no-untyped-def]
    prev = GENESIS
    for seq, ts, kind, payload, prev_hash, hash_ in conn.execute(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal ORDER BY seq"):
        row = {"kind": kind, "payload": json.loads(payload), "seq": seq, "ts": ts}
        canonical = json.dumps(row, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
        assert prev_hash == prev
        assert hash_ == hashlib.sha256(bytes.fromhex(prev) + canonical).hexdigest()
        prev = hash_
    assert head(conn).hash == prev
    assert [e.payload["i"] for e in events(conn)] == [0, 1, 2, 3, 4]


def test_rollback_leaves_no_trace(conn) -> None:  # type: ignore[no-untyped-def]
    j = Journal(conn)
    before = head(conn)
    with pytest.raises(RuntimeError), db.transaction(conn):
        j.append("2026-11-01T00:00:00Z", "test", {"i": 99})
        j.flush()
        raise RuntimeError("boom")
    j.reload()
    assert head(conn) == before and j.seq == before.seq
