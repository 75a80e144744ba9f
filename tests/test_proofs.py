"""Signed tree heads and proofs (SPEC §10) checked with no database: a head signed over RFC
6962's TreeHeadSignature, rows proved in it, forged heads and edited rows rejected, the
journal's growth proved between two heads and a rewritten journal caught."""

from __future__ import annotations

import copy
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from vanta_box.core.errors import Refused
from vanta_box.service import proofs
from vanta_box.store import db
from vanta_box.store.journal import Journal


def journal_home(tmp_path: Path, rows: int) -> tuple[Any, Journal]:
    conn = db.connect(tmp_path / "vanta.db")
    db.migrate(conn)
    journal = Journal(conn)
    grow(conn, journal, rows)
    return conn, journal


def grow(conn: Any, journal: Journal, rows: int) -> None:
    with conn:
        for i in range(rows):
            journal.append("2026-11-02T00:00:00Z", "fill", {"account_id": f"F{i % 3}",
                                                            "n": journal.seq + 1})
        journal.flush()


def test_a_head_is_signed_over_rfc_6962s_structure_and_its_rows_prove_in_it(
        tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    conn, _ = journal_home(tmp_path, 36)
    public = proofs.create_key(tmp_path, conn, 0)
    assert os.stat(tmp_path / proofs.KEY_FILE).st_mode & 0o777 == 0o600
    assert conn.execute("SELECT public_key FROM audit_keys").fetchall() == [(public,)]
    # the public key is journaled (row 37), once
    kind, payload = conn.execute("SELECT kind, payload FROM journal WHERE seq = 37").fetchone()
    assert kind == "audit.key" and public in payload
    assert proofs.create_key(tmp_path, conn, 0) == public
    head = proofs.head(tmp_path, conn)
    assert head["tree_size"] == 37 and head["public_key"] == public
    # a checker from the RFC: TreeHeadSignature = v1 (0), tree_hash (1), u64 ms, u64 size,
    # the root
    data = struct.pack(">BBQQ", 0, 1, head["timestamp_ms"], 37) + bytes.fromhex(
        head["root_hash"])
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
        bytes.fromhex(head["signature"]), data)
    assert proofs.check_head(head) is None and proofs.check_head(head, public) is None
    tree = proofs.tree(conn)
    for seq in (1, 16, 17, 36):
        row = proofs.row_proof(conn, tree, seq)
        assert proofs.check_row(row, head) is None
        edited = {**row, "payload": row["payload"].replace('"n":', '"n":1')}
        assert "does not make its hash" in str(proofs.check_row(edited, head))
        moved = {**row, "leaf_index": row["leaf_index"] + 1}
        assert proofs.check_row(moved, head) is not None
    # the same journal gives the same head (the time is its last row's)
    assert proofs.head(tmp_path, conn) == head


def test_forged_heads_are_rejected(tmp_path: Path) -> None:
    conn, _ = journal_home(tmp_path, 20)
    proofs.create_key(tmp_path, conn, 0)
    head = proofs.head(tmp_path, conn)
    for field, value in (("tree_size", head["tree_size"] + 1), ("root_hash", "00" * 32),
                         ("timestamp_ms", head["timestamp_ms"] + 1)):
        forged = {**head, field: value}
        assert proofs.check_head(forged) == "the head's signature does not verify"
    other = tmp_path / "other"
    other.mkdir()
    conn2, _ = journal_home(other, 20)
    stranger = proofs.create_key(other, conn2, 0)
    assert proofs.check_head(head, stranger) is not None  # not the manager's key
    resigned = proofs.head(other, conn2)  # a valid head, but by another key
    assert proofs.check_head(resigned, head["public_key"]) is not None
    assert proofs.check_head({"tree_size": "x"}) is not None


def test_consistency_proves_growth_and_catches_a_rewritten_journal(tmp_path: Path) -> None:
    conn, journal = journal_home(tmp_path, 22)
    proofs.create_key(tmp_path, conn, 0)  # row 23
    journal.reload()
    old = proofs.head(tmp_path, conn)
    grow(conn, journal, 41)
    new = proofs.head(tmp_path, conn)
    result = proofs.consistency(conn, old, new)
    assert result["consistent"] and result["old_size"] == 23 and result["new_size"] == 64
    # another journal of the same length, one early row different: not the old head's
    other = tmp_path / "rewritten"
    other.mkdir()
    conn2, journal2 = journal_home(other, 0)
    with conn2:
        journal2.append("2026-11-02T00:00:00Z", "fill", {"rewritten": True})
        journal2.flush()
    grow(conn2, journal2, 63)
    with pytest.raises(Refused, match="not this journal's"):
        proofs.consistency(conn2, old, copy.deepcopy(new))
    with pytest.raises(Refused):
        proofs.consistency(conn, new, old)  # a head cannot shrink
