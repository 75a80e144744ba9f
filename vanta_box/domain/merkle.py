"""The journal as a Merkle tree (SPEC §10; RFC 6962 hashing, RFC 9162 verification).

    leaf = SHA-256(0x00 ‖ row hash)        node = SHA-256(0x01 ‖ left ‖ right)

A tree is read through its *perfect subtrees*: ``subtree(level, index)`` is the hash of
the 2^level leaves from ``index × 2^level`` on, which never changes once those leaves
exist. Every hash RFC 6962 asks for (the root, an audit path, a consistency proof) is a
fold of such subtrees, so a store keeps them (``store.merkle``) and an append costs
O(log n) new hashes. Verification needs no tree at all: a follower checks a proof with
the leaf, the path and the signed root. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Subtree = Callable[[int, int], bytes]  # (level, index) -> the perfect subtree's hash
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(row_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + row_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(subtree: Subtree, start: int, n: int) -> bytes:
    """MTH(D[start:start+n]) for a range RFC 6962's recursion reaches (start is a multiple
    of the largest power of two in n)."""
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return subtree(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(range_hash(subtree, start, k), range_hash(subtree, start + k, n - k))


def root(subtree: Subtree, size: int) -> bytes:
    return range_hash(subtree, 0, size)


def inclusion_path(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 §2.1.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = _split(n)
        if m < k:
            path.append(range_hash(subtree, start + k, n - k))
            n = k
        else:
            path.append(range_hash(subtree, start, k))
            start, m, n = start + k, m - k, n - k
    path.reverse()
    return path


def consistency_proof(subtree: Subtree, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 6962 §2.1.2."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    proof: list[bytes] = []
    start, m, n, whole = 0, old, new, True
    while m != n:
        k = _split(n)
        if m <= k:
            proof.append(range_hash(subtree, start + k, n - k))
            n = k
        else:
            proof.append(range_hash(subtree, start, k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        proof.append(range_hash(subtree, start, m))
    proof.reverse()
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size``
    whose root is ``expected_root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == expected_root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: the tree of ``new`` leaves extends the tree of ``old``."""
    if old <= 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    items = list(proof)
    if old & (old - 1) == 0:  # an exact power of two: its root starts the proof
        items.insert(0, old_root)
    if not items:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = items[0]
    for c in items[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def completed(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level ≥ 1, index) that leaf number ``size`` (counted from 1)
    completes, lowest first: what an append must compute and keep."""
    out = []
    level = 1
    while size % (1 << level) == 0:
        out.append((level, size // (1 << level) - 1))
        level += 1
    return out


class MemoryTree:
    """A tree held in memory (tests, and the checker of a statement's own leaves)."""

    def __init__(self, row_hashes: Sequence[bytes] = ()) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        for h in row_hashes:
            self.append(h)

    def append(self, row_hash: bytes) -> None:
        self.nodes[(0, self.size)] = leaf_hash(row_hash)
        self.size += 1
        for level, index in completed(self.size):
            self.nodes[(level, index)] = node_hash(self.nodes[(level - 1, 2 * index)],
                                                   self.nodes[(level - 1, 2 * index + 1)])

    def subtree(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]
