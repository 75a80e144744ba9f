"""The Merkle tree of the journal against a reference written here from RFC 6962 alone:
roots, audit paths and consistency proofs for every size hypothesis picks, and forged
proofs rejected."""

from __future__ import annotations

import hashlib

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
