"""The append-only, hash-chained journal.

Row bytes (what is hashed) are the canonical JSON of the object
``{"kind": K, "payload": P, "seq": N, "ts": T}``: keys sorted, no whitespace, UTF-8, every
decimal a string. ``hash = SHA-256(bytes.fromhex(prev_hash) || row bytes)``, hex; the first
row's prev_hash is 64 zeros. The digest of a journal is ``SEQ:HASH`` of its last row.

Appends are buffered and written with one executemany when the transaction commits; the
hashes are computed as events are appended, so the chain costs one SHA-256 per row.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apsw

from vanta_box.core.canonical import dumps

GENESIS = "0" * 64
_sha256 = hashlib.sha256
_str_dumps = json.JSONEncoder(ensure_ascii=False).encode


@functools.lru_cache(maxsize=256)
def _quoted(text: str) -> str:
    return _str_dumps(text)


def row_bytes(seq: int, ts: str, kind: str, payload_json: str) -> bytes:
    return (
        '{"kind":' + _quoted(kind) + ',"payload":' + payload_json + ',"seq":' + str(seq)
        + ',"ts":' + _quoted(ts) + "}"
    ).encode()


def chain(prev_hash: str, seq: int, ts: str, kind: str, payload_json: str) -> str:
    return _sha256(bytes.fromhex(prev_hash) + row_bytes(seq, ts, kind, payload_json)).hexdigest()


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    ts: str
    kind: str
    payload_json: str

    @property
    def payload(self) -> Any:
        return json.loads(self.payload_json)


@dataclass(frozen=True, slots=True)
class Digest:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


JournalRow = tuple[int, str, str, str, str, str]  # seq, ts, kind, payload, prev_hash, hash


class Journal:
    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._pending: list[JournalRow] = []
        # When set, flush() also hands every written row to it (replay compares them).
        self.sink: list[JournalRow] | None = None
        # Replay: the rows the original journal holds from seq `_expect_base` on.
        self._expect: list[JournalRow] | None = None
        self._expect_base = 0
        self._trust = False
        self._pending_matched = 0
        self.matched = 0
        self.reload()

    def reload(self) -> None:
        """Start again from the head the database holds (after a rollback)."""
        self._pending.clear()
        self._pending_matched = 0
        row = self.conn.execute(
            "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self.seq: int = int(row[0]) if row else 0
        self.hash: str = str(row[1]) if row else GENESIS
        self._prev = bytes.fromhex(self.hash)
        sink = self.sink
        if sink and sink[-1][0] > self.seq:  # flushed within a transaction rolled back
            keep = len(sink)
            while keep and sink[keep - 1][0] > self.seq:
                keep -= 1
            self.matched -= sum(1 for r in sink[keep:] if self._original(r[0]) == r)
            del sink[keep:]

    def _original(self, seq: int) -> JournalRow | None:
        expect = self._expect
        i = seq - self._expect_base
        return expect[i] if expect is not None and 0 <= i < len(expect) else None

    def expect(self, rows: list[JournalRow], *, trust: bool) -> None:
        """Replay: the original rows this command's appends should reproduce. ``matched``
        then counts flushed rows equal to the original row at their seq. With ``trust``
        (the original chain is known to be intact) a row whose seq, time, kind, payload
        and prev_hash equal the original's takes its hash instead of hashing again: the
        same SHA-256 of the same bytes."""
        self._expect = rows
        self._expect_base = rows[0][0] if rows else 0
        self._trust = trust
        self.matched = 0

    def ends_at(self, seq: int) -> bool:
        """Replay: the original command's rows end at ``seq``."""
        expect = self._expect
        return expect is not None and self._expect_base + len(expect) - 1 == seq

    def append(self, ts: str, kind: str, payload: dict[str, Any]) -> int:
        """Add an event at the head; returns its seq. Written at the next flush()."""
        return self.append_raw(ts, kind, dumps(payload))

    def append_raw(self, ts: str, kind: str, payload_json: str) -> int:
        """Append an event whose canonical payload text is already known."""
        seq = self.seq + 1
        expect = self._expect
        if expect is not None:
            i = seq - self._expect_base
            original = expect[i] if 0 <= i < len(expect) else None
            if (self._trust and original is not None and original[3] == payload_json
                    and original[0] == seq and original[2] == kind and original[1] == ts
                    and original[4] == self.hash):
                self._pending.append(original)
                self._pending_matched += 1
                self.seq, self.hash = seq, original[5]
                self._prev = b""  # computed again only if a later row needs it
                return seq
        prev = self._prev or bytes.fromhex(self.hash)
        digest = _sha256(prev + row_bytes(seq, ts, kind, payload_json)).digest()
        row = (seq, ts, kind, payload_json, self.hash, digest.hex())
        self._pending.append(row)
        if expect is not None and original == row:
            self._pending_matched += 1
        self.seq, self.hash, self._prev = seq, row[5], digest
        return seq

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            copy = getattr(self.conn, "copy_original_journal", None)
            if (copy is not None and self._pending_matched == len(rows)
                    and copy(rows[0][0], rows[-1][0])):
                pass  # replay's write-behind copies rows equal to the original's from it
            else:
                self.conn.executemany(
                    "INSERT INTO journal (seq, ts, kind, payload, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if self.sink is not None:
                self.sink.extend(rows)
            self.matched += self._pending_matched
            self._pending_matched = 0

    def digest(self) -> Digest:
        return Digest(self.seq, self.hash)


def head(conn: apsw.Connection) -> Digest:
    row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    return Digest(int(row[0]), str(row[1])) if row else Digest(0, GENESIS)


def events(conn: apsw.Connection, after: int = 0, kinds: tuple[str, ...] = ()) -> Iterator[Event]:
    if kinds:
        marks = ",".join("?" * len(kinds))
        cursor = conn.execute(
            f"SELECT seq, ts, kind, payload FROM journal WHERE seq > ? AND kind IN ({marks})"
            " ORDER BY seq",
            (after, *kinds),
        )
    else:
        cursor = conn.execute(
            "SELECT seq, ts, kind, payload FROM journal WHERE seq > ? ORDER BY seq", (after,)
        )
    for seq, ts, kind, payload in cursor:
        yield Event(seq, ts, kind, payload)


def count(conn: apsw.Connection) -> int:
    return head(conn).seq
