"""The Merkle tree of the journal against a reference written here from RFC 6962 alone:
roots, audit paths and consistency proofs for every size hypothesis picks, and forged
proofs rejected."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta_box.domain import merkle


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1: MTH of the leaf inputs (here, row hashes)."""
    n = len(leaves)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1: PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """RFC 6962 §2.1.2: SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def rows(n: int) -> list[bytes]:
    return [_h(f"row {i}".encode()) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_roots_and_audit_paths_match_rfc_6962(size: int, data: st.DataObject) -> None:
    leaves = rows(size)
    tree = merkle.MemoryTree(leaves)
    root = merkle.root(tree.subtree, size)
    assert root == ref_mth(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    path = merkle.inclusion_path(tree.subtree, index, size)
    assert path == ref_path(index, leaves)
    leaf = merkle.leaf_hash(leaves[index])
    assert merkle.verify_inclusion(leaf, index, size, path, root)
    # forged: another leaf, another index, a changed path, a shorter tree
    assert not merkle.verify_inclusion(merkle.leaf_hash(b"x" * 32), index, size, path, root)
    if size > 1:
        assert not merkle.verify_inclusion(leaf, (index + 1) % size, size, path, root)
        bent = [bytes(32), *path[1:]]
        assert not merkle.verify_inclusion(leaf, index, size, bent, root)
        assert not merkle.verify_inclusion(leaf, index, size, path[:-1], root)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_match_rfc_6962(new: int, data: st.DataObject) -> None:
    leaves = rows(new)
    tree = merkle.MemoryTree(leaves)
    old = data.draw(st.integers(min_value=1, max_value=new))
    proof = merkle.consistency_proof(tree.subtree, old, new)
    assert proof == ref_subproof(old, leaves, True)
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    # a rewritten prefix is not consistent with the published old head
    forged = rows(new)
    forged[0] = _h(b"rewritten")
    assert not merkle.verify_consistency(old, new, old_root, ref_mth(forged), proof)
    if old < new:
        assert not merkle.verify_consistency(old, new, ref_mth(forged[:old]), new_root, proof)
        assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])


def test_an_append_computes_only_the_subtrees_it_completes() -> None:
    assert merkle.completed(1) == []
    assert merkle.completed(2) == [(1, 0)]
    assert merkle.completed(8) == [(1, 3), (2, 1), (3, 0)]
    assert merkle.completed(12) == [(1, 5), (2, 2)]
    tree = merkle.MemoryTree(rows(1000))
    assert len(tree.nodes) < 2 * 1000
    assert merkle.root(tree.subtree, 0) == hashlib.sha256(b"").digest()


def _journal_db(tmp_path: Any, rows_count: int) -> Any:
    from vanta_box.store import db
    from vanta_box.store.journal import Journal

    conn = db.connect(tmp_path / "m.db")
    db.migrate(conn)
    journal = Journal(conn)
    with conn:
        for i in range(rows_count):
            journal.append("2026-11-02T00:00:00Z", "test", {"n": i})
        journal.flush()
    return conn


def _row_hashes(conn: Any) -> list[bytes]:
    return [bytes.fromhex(h) for (h,) in conn.execute("SELECT hash FROM journal ORDER BY seq")]


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=90), min_size=1, max_size=4))
def test_the_stored_tree_extends_in_steps_and_gives_rfc_6962_proofs(
        tmp_path_factory: Any, steps: list[int]) -> None:
    from vanta_box.store import merkle as stored
    from vanta_box.store.journal import Journal

    conn = _journal_db(tmp_path_factory.mktemp("t"), 0)
    journal = Journal(conn)
    for step in steps:  # rows appended, then the tree extended, several times
        with conn:
            for i in range(step):
                journal.append("2026-11-02T00:00:00Z", "test", {"n": i})
            journal.flush()
            tree = stored.JournalTree(conn)
            tree.extend()
        leaves = _row_hashes(conn)
        assert tree.root() == ref_mth(leaves)
        for index in {0, len(leaves) // 2, len(leaves) - 1}:
            path = merkle.inclusion_path(tree.subtree, index, tree.size)
            assert path == ref_path(index, leaves)
        assert merkle.consistency_proof(tree.subtree, 1, tree.size) == ref_subproof(
            1, leaves, True)
    assert stored.mismatches(conn) == []
    count = conn.execute("SELECT count(*) FROM merkle_nodes").fetchone()[0]
    assert count < len(_row_hashes(conn)) / 8 + 8  # levels of 16 leaves and up only


def test_verify_names_a_stored_node_the_rows_do_not_make(tmp_path: Any) -> None:
    from vanta_box.store import merkle as stored

    conn = _journal_db(tmp_path, 100)
    with conn:
        stored.JournalTree(conn).extend()
    assert stored.mismatches(conn) == []
    with conn:
        conn.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 5 AND idx = 1",
                     (bytes(32),))
        conn.execute("INSERT INTO merkle_nodes (level, idx, hash) VALUES (4, 9, ?)",
                     (bytes(32),))
    assert stored.mismatches(conn) == [(5, 1), (4, 9)]
