"""The journal's Merkle tree, kept in ``merkle_nodes`` (SPEC §10).

Perfect subtrees of 16 leaves and more are stored once their leaves exist; smaller ones
are recomputed from the journal's row hashes (at most 16 rows, one range read). Extending
the tree after new rows costs O(1) hashes per row, amortized (O(log n) nodes per 16 rows),
and nothing on the path that appends rows: a command that wants a head or a proof extends
it first (``extend``), in its own small transaction.
"""

from __future__ import annotations

import apsw

from vanta_box.domain import merkle

LOW = 4  # nodes are stored from this level up
BLOCK = 1 << LOW
CHUNK = 1 << 16  # journal rows read at a time while extending


def journal_size(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM journal").fetchone()
    return int(row[0] or 0) if row else 0


def leaf_of(row_hash: object) -> bytes:
    """The leaf of a row's stored hash. A hash that is not hex text (a tampered file: the
    chain check names the row) still makes a leaf, one no real row makes, so the nodes
    above it fail and nothing crashes."""
    try:
        return merkle.leaf_hash(bytes.fromhex(row_hash))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return merkle.leaf_hash(b"not a row hash: " + repr(row_hash).encode())


def _leaves(conn: apsw.Connection, start: int, n: int) -> list[bytes]:
    """Leaf hashes of leaves start .. start+n-1 (journal rows start+1 .. start+n)."""
    return [leaf_of(h) for (h,) in conn.execute(
        "SELECT hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq", (start, start + n))]


def _perfect(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class JournalTree:
    """The tree of a database's journal, read through its stored nodes."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.size = journal_size(conn)

    def covered(self) -> int:
        """Leaves covered by stored level-4 nodes (a multiple of 16)."""
        row = self.conn.execute("SELECT max(idx) FROM merkle_nodes WHERE level = ?",
                                (LOW,)).fetchone()
        return 0 if row is None or row[0] is None else (int(row[0]) + 1) * BLOCK

    def extend(self) -> int:
        """Store the nodes the journal's rows complete since the last extension (the
        caller holds a write transaction); returns how many rows were read."""
        start = self.covered()
        end = self.size // BLOCK * BLOCK
        fresh: dict[tuple[int, int], bytes] = {}
        rows: list[tuple[int, int, bytes]] = []
        at = start
        while at < end:
            n = min(CHUNK, end - at)
            leaves = _leaves(self.conn, at, n)
            for b in range(0, n, BLOCK):
                block = (at + b) // BLOCK
                fresh[(LOW, block)] = _perfect(leaves[b:b + BLOCK])
                rows.append((LOW, block, fresh[(LOW, block)]))
                for level, index in merkle.completed(block + 1):
                    key = (LOW + level, index)
                    fresh[key] = merkle.node_hash(self._node(LOW + level - 1, 2 * index, fresh),
                                                  self._node(LOW + level - 1, 2 * index + 1,
                                                             fresh))
                    rows.append((*key, fresh[key]))
            # OR IGNORE: a node is a function of the rows, so one another process stored
            # meanwhile is the same bytes
            self.conn.executemany("INSERT OR IGNORE INTO merkle_nodes (level, idx, hash)"
                                  " VALUES (?, ?, ?)", rows)
            rows.clear()
            fresh = {k: v for k, v in fresh.items() if k[0] > LOW}  # the upper frontier
            at += n
        return end - start

    def extend_if_writable(self) -> None:
        """Extend the stored tree in its own short transaction when this connection can
        write; a read-only file (an auditor's copy) or a busy one is read as it is (the
        missing nodes are computed from the rows, and not kept)."""
        if self.size // BLOCK * BLOCK <= self.covered():
            return
        try:
            with self.conn:
                self.extend()
        except (apsw.ReadOnlyError, apsw.BusyError, apsw.CantOpenError):
            pass

    def _node(self, level: int, index: int, fresh: dict[tuple[int, int], bytes]) -> bytes:
        found = fresh.get((level, index))
        return found if found is not None else self._stored(level, index)

    def _stored(self, level: int, index: int) -> bytes:
        row = self.conn.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?",
                                (level, index)).fetchone()
        if row is None:
            raise LookupError(f"merkle node ({level}, {index}) is not stored")
        return bytes(row[0])

    def subtree(self, level: int, index: int) -> bytes:
        """The hash of the 2^level leaves from index × 2^level (all of them exist)."""
        if level < LOW:
            return _perfect(_leaves(self.conn, index << level, 1 << level))
        try:
            return self._stored(level, index)
        except LookupError:  # not extended that far: from its halves
            return merkle.node_hash(self.subtree(level - 1, 2 * index),
                                    self.subtree(level - 1, 2 * index + 1))

    def cached(self) -> merkle.Subtree:
        """``subtree`` reading each node once, and each block of 16 rows once for all the
        small subtrees in it: many proofs at once (a statement's) share most nodes."""
        nodes: dict[tuple[int, int], bytes] = {}
        blocks: dict[int, list[bytes]] = {}

        def subtree(level: int, index: int) -> bytes:
            found = nodes.get((level, index))
            if found is not None:
                return found
            if level < LOW:
                first = index << level
                block = first >> LOW
                leaves = blocks.get(block)
                if leaves is None:
                    leaves = blocks[block] = _leaves(self.conn, block * BLOCK,
                                                     min(BLOCK, self.size - block * BLOCK))
                at = first - block * BLOCK
                found = _perfect(leaves[at:at + (1 << level)])
            else:
                found = self.subtree(level, index)
            nodes[(level, index)] = found
            return found

        return subtree

    def root(self, size: int | None = None) -> bytes:
        return merkle.root(self.subtree, self.size if size is None else size)


def mismatches(conn: apsw.Connection) -> list[tuple[int, int]]:
    """The stored nodes that the journal's rows do not make (verify): every node is
    recomputed from the rows, streaming (a frontier of O(log n) hashes in memory)."""
    wrong: list[tuple[int, int]] = []
    frontier: dict[tuple[int, int], bytes] = {}
    block: list[bytes] = []
    blocks = 0

    def check(key: tuple[int, int], value: bytes) -> None:
        found = _lookup(conn, key)
        if found is not None and found != value:
            wrong.append(key)

    for (h,) in conn.execute("SELECT hash FROM journal ORDER BY seq"):
        block.append(leaf_of(h))
        if len(block) < BLOCK:
            continue
        frontier[(LOW, blocks)] = _perfect(block)
        check((LOW, blocks), frontier[(LOW, blocks)])
        block = []
        blocks += 1
        for level, index in merkle.completed(blocks):
            key = (LOW + level, index)
            frontier[key] = merkle.node_hash(frontier.pop((LOW + level - 1, 2 * index)),
                                             frontier.pop((LOW + level - 1, 2 * index + 1)))
            check(key, frontier[key])
    # nodes of subtrees the journal does not have (rows gone?)
    wrong += [(int(a), int(b)) for a, b in conn.execute(
        "SELECT level, idx FROM merkle_nodes WHERE (idx + 1) << level > ? ORDER BY level, idx",
        (blocks * BLOCK,))]
    return wrong


def _lookup(conn: apsw.Connection, key: tuple[int, int]) -> bytes | None:
    row = conn.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?",
                       key).fetchone()
    return None if row is None else bytes(row[0])


def roots_at(conn: apsw.Connection, sizes: set[int]) -> dict[int, bytes]:
    """MTH of the first n rows for each n in ``sizes`` that the journal has, computed
    from the rows alone (no stored node is trusted: verify). One stream over the rows
    with a frontier of O(log n) perfect subtrees: the root at n is their fold, right to
    left."""
    wanted = {n for n in sizes if n > 0}
    found: dict[int, bytes] = {}
    if not wanted:
        return found
    top = max(wanted)
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    rows = conn.execute("SELECT hash FROM journal ORDER BY seq LIMIT ?", (top,))
    for n, (h,) in enumerate(rows, start=1):
        node, level = leaf_of(h), 0
        while stack and stack[-1][0] == level:
            node = merkle.node_hash(stack.pop()[1], node)
            level += 1
        stack.append((level, node))
        if n in wanted:
            r = stack[-1][1]
            for _level, left in reversed(stack[:-1]):
                r = merkle.node_hash(left, r)
            found[n] = r
    return found
