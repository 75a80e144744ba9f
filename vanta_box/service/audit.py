"""Audit of a database file: schema, hash chain, published digests, deterministic replay.

Everything here reads the file through ``db.open_readonly`` (no byte of it, its WAL or its
-shm changes) and needs nothing else: no home, no keystore, no network.

Triggers alone are not tamper evidence (whoever holds the file can drop them, edit them
through ``PRAGMA writable_schema``, or overwrite a row with ``INSERT OR REPLACE``):
  * the schema is compared with the one the migrations produce, object by object;
  * the chain is recomputed row by row from the documented canonical encoding, so an
    edited, inserted, deleted or replaced row is named;
  * a digest published earlier (``SEQ:HASH``) proves the history up to it was not
    rewritten, even by someone who re-hashed the whole chain after an edit;
  * replay re-runs every command and compares the journal and every projection.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vanta_box.core.errors import InputError
from vanta_box.service import replay as replay_module
from vanta_box.service.replay import ReplayReport, replay
from vanta_box.store import db
from vanta_box.store.journal import GENESIS, Digest, row_bytes

DIGEST_PATTERN = re.compile(r"^(\d+):([0-9a-f]{64})$")


def parse_digest(text: str) -> Digest:
    match = DIGEST_PATTERN.match(text.strip().lower())
    if not match:
        raise InputError(f"not a digest: {text!r} (expected SEQ:HEX, e.g. 1842:3fa4…, as printed "
                         "by `vanta audit digest`)", field="--digest")
    if int(match.group(1)) < 1:
        raise InputError(f"not a digest: {text!r} (journal rows start at 1)", field="--digest")
    return Digest(int(match.group(1)), match.group(2))


@dataclass
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class VerifyReport:
    rows: int = 0
    head: Digest = field(default_factory=lambda: Digest(0, GENESIS))
    schema: list[Problem] = field(default_factory=list)
    chain: list[Problem] = field(default_factory=list)
    digests: list[tuple[str, str]] = field(default_factory=list)  # (digest, verdict)
    replay: ReplayReport | None = None
    chain_seconds: float = 0.0  # timing, not money
    replay_seconds: float = 0.0  # timing, not money

    @property
    def ok(self) -> bool:
        replay_ok = self.replay is None or self.replay.identical
        return (not self.schema and not self.chain and replay_ok
                and all(v == "ok" for _d, v in self.digests))


def check_schema(conn: db.Connection) -> list[Problem]:
    """Compare every table, index and trigger with what the migrations create."""
    problems = []
    expected = {(t, n): (tb, s) for t, n, tb, s in db.expected_schema()}
    actual = {(t, n): (tb, s) for t, n, tb, s in db.schema_of(conn)}
    for key in sorted(expected.keys() - actual.keys()):
        problems.append(Problem(f"{key[0]} {key[1]}", "missing (dropped?)"))
    for key in sorted(actual.keys() - expected.keys()):
        problems.append(Problem(f"{key[0]} {key[1]}", "not created by any migration"))
    for key in sorted(expected.keys() & actual.keys()):
        if expected[key] != actual[key]:
            problems.append(Problem(f"{key[0]} {key[1]}",
                                    "definition differs from the migration (edited?)"))
    recorded = {v: (n, s) for v, n, s in conn.execute(
        "SELECT version, name, sha256 FROM schema_migrations")} if (
        "table", "schema_migrations") in actual else {}
    for m in db.migrations():
        if recorded.get(m.version) != (m.name, m.sha256):
            problems.append(Problem(f"migration {m.name}",
                                    "not recorded as applied with this file's checksum"))
    return problems


# A journal this long has its chain checked in two halves at once (a forked process takes
# the second): each row only needs the stored hash of the row before it.
PARALLEL_CHAIN_ROWS = 200_000


@dataclass
class _Checked:
    """One range of the journal, checked."""

    rows: int = 0
    problem: Problem | None = None
    head: Digest | None = None
    verdicts: dict[int, str] = field(default_factory=dict)  # digest seq -> verdict


def check_chain(conn: db.Connection, digests: list[Digest], report: VerifyReport) -> None:
    """Recompute the chain; name the first broken row; check each digest against it."""
    wanted = {d.seq: d.hash for d in digests}
    found = conn.execute("SELECT max(seq), count(*) FROM journal").fetchone()
    top, count = (found[0] or 0, found[1]) if found else (0, 0)
    parts: list[_Checked]
    boundary = None
    if count >= PARALLEL_CHAIN_ROWS and conn.filename and replay_module.helpers_pay():
        boundary = conn.execute("SELECT seq, hash FROM journal WHERE seq <= ?"
                                " ORDER BY seq DESC LIMIT 1", (top // 2,)).fetchone()
    if boundary is None:
        parts = [_check_range(conn, None, None, 0, GENESIS, wanted)]
    else:
        mid_seq, mid_hash = int(boundary[0]), str(boundary[1])
        second = _InChild(conn.filename, mid_seq, mid_hash, wanted)
        try:
            first = _check_range(conn, None, mid_seq, 0, GENESIS, wanted)
        finally:
            found_second = second.result()
        parts = [first, found_second or _check_range(conn, mid_seq, None, mid_seq,
                                                     mid_hash, wanted)]
    verdicts: dict[int, str] = {}
    for part in parts:
        if part.problem is not None and not report.chain:
            report.chain.append(part.problem)
        report.rows += part.rows
        if part.head is not None:
            report.head = part.head
        verdicts.update(part.verdicts)
    for d in digests:
        verdict = verdicts.get(d.seq, f"FAILED: the journal ends at row {report.head.seq}, "
                                      "before the digest (rows were removed)")
        report.digests.append((str(d), verdict))


class ChainWalker:
    """The chain check, one row at a time, in seq order: what ``_check_range`` runs over
    SQL rows, and replay's source job over the rows it reads anyway."""

    def __init__(self, expected_after: int = 0, prev_hex: str = GENESIS,
                 wanted: dict[int, str] | None = None) -> None:
        self.out = _Checked()
        self._prev = bytes.fromhex(prev_hex)
        self._prev_hex = prev_hex
        self._expected = expected_after + 1
        self._wanted = wanted or {}

    def step(self, row: tuple[int, str, str, str, str, str]) -> None:
        seq, ts, kind, payload, prev_hash, stored = row
        out = self.out
        if out.problem is None:
            if seq != self._expected:
                out.problem = Problem(
                    f"journal row {self._expected}",
                    f"missing: the next row is {seq} (rows were deleted)")
            elif prev_hash != self._prev_hex:
                out.problem = Problem(
                    f"journal row {seq} ({kind} at {ts})",
                    "prev_hash does not link to the row before (inserted, replaced or "
                    "re-chained)")
            elif _sha256(self._prev + row_bytes(seq, ts, kind, payload)).hexdigest() != stored:
                out.problem = Problem(
                    f"journal row {seq} ({kind} at {ts})",
                    "content does not match its hash (edited after it was written)")
        if seq in self._wanted:
            out.verdicts[seq] = "ok" if stored == self._wanted[seq] else (
                "FAILED: the journal's row at this seq has another hash (history rewritten)")
        try:
            self._prev = bytes.fromhex(stored)
        except (TypeError, ValueError):  # not hex: this row was already named above
            self._prev = b""
        self._prev_hex = stored
        self._expected = seq + 1
        out.rows += 1

    def result(self) -> _Checked:
        if self.out.rows:
            self.out.head = Digest(self._expected - 1, self._prev_hex)
        return self.out


_sha256 = hashlib.sha256


def _check_range(conn: db.Connection, after: int | None, upto: int | None,
                 expected_after: int, prev_hex: str, wanted: dict[int, str]) -> _Checked:
    """Rows with ``after < seq <= upto`` (None: unbounded); the row before the range has
    seq ``expected_after`` and hash ``prev_hex``."""
    sql = "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal"
    where = []
    args: list[int] = []
    if after is not None:
        where.append("seq > ?")
        args.append(after)
    if upto is not None:
        where.append("seq <= ?")
        args.append(upto)
    if where:
        sql += " WHERE " + " AND ".join(where)
    walker = ChainWalker(expected_after, prev_hex, wanted)
    step = walker.step
    for row in conn.execute(sql + " ORDER BY seq", tuple(args)):
        step(row)
    return walker.result()


class _InChild:
    """``_check_range`` of the rows after ``after``, in a forked process."""

    def __init__(self, filename: str, after: int, after_hash: str,
                 wanted: dict[int, str]) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._pipe, theirs = context.Pipe(duplex=False)
        self._process = context.Process(target=_check_in_child,
                                        args=(filename, after, after_hash, wanted, theirs,
                                              self._pipe),
                                        name="vanta-verify-chain", daemon=True)
        self._process.start()
        theirs.close()

    def result(self) -> _Checked | None:
        """The checked range, or None if the process failed (the caller checks it)."""
        import pickle

        try:
            found: _Checked | None = pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError):
            found = None
        self._process.join()
        self._pipe.close()
        return found


def _check_in_child(filename: str, after: int, after_hash: str, wanted: dict[int, str],
                    pipe: Any, parents: Any) -> None:
    import os
    import pickle

    parents.close()  # only the parent reads: if it goes away, sending fails and this ends
    try:
        found: _Checked | None = _check_range(db.open_again_readonly(filename), after, None,
                                              after, after_hash, wanted)
    except Exception:
        found = None
    pipe.send_bytes(pickle.dumps(found))
    os._exit(0)


def verify(path: Path, digests: list[Digest], *, with_replay: bool = True,
           progress: Callable[[str], None] = lambda _m: None) -> VerifyReport:
    import time

    report = VerifyReport()
    with db.open_readonly(path) as conn:
        report.schema = check_schema(conn)
        if any(p.where.startswith("table journal") for p in report.schema):
            return report
        start = time.perf_counter()
        check_chain(conn, digests, report)
        report.chain_seconds = time.perf_counter() - start
        progress(f"chain of {report.rows:,} rows checked in {report.chain_seconds:.2f} s")
        if with_replay and not report.schema:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="vanta-verify-") as tmp:
                report.replay = replay(conn, Path(tmp) / "replayed.db", progress,
                                       chain_intact=not report.chain)
            report.replay_seconds = time.perf_counter() - start
    return report


def describe(report: VerifyReport) -> list[str]:
    """The report in lines: what held, then the first problem of each kind."""
    lines = [f"journal: {report.rows:,} rows, head {report.head}"]
    lines.append("schema and triggers: " + ("match the migrations" if not report.schema else
                                           f"{len(report.schema)} problem(s)"))
    lines += [f"  {p}" for p in report.schema]
    if report.rows or not report.schema:
        lines.append("hash chain: " + ("intact" if not report.chain else "BROKEN"))
        lines += [f"  first bad row: {p}" for p in report.chain]
    for digest, verdict in report.digests:
        lines.append(f"digest {digest}: {verdict}")
    r = report.replay
    if r is not None:
        if r.identical:
            lines.append(f"replay: identical ({r.commands:,} commands, {r.events:,} events, "
                         f"{len(r.tables)} projection tables)")
        else:
            lines.append("replay: DIFFERS")
            if r.journal_divergence is not None:
                d = r.journal_divergence
                lines.append(f"  journal row {d.seq}: the file has {d.original}")
                lines.append(f"  {'':>{len(str(d.seq)) + 13}}replay made {d.replayed}")
            elif r.journal_length[0] != r.journal_length[1]:
                lines.append(f"  journal: {r.journal_length[0]} rows in the file, "
                             f"{r.journal_length[1]} replayed")
            for table, verdict in r.tables.items():
                if verdict != "identical":
                    lines.append(f"  table {table}: {verdict}")
            note = r.version_note()
            if note:
                lines.append(f"  {note}")
    lines.append("verdict: " + ("OK" if report.ok else "FAILED"))
    return lines


def export(conn: db.Connection, out: Path, secrets: list[str]) -> int:
    """Write a clean copy for an auditor (``VACUUM INTO``: no free pages, no WAL), then scan
    every byte of it for each keystore secret; refuse (and delete the copy) on any hit.
    Returns the size of the copy."""
    from vanta_box.core.errors import Refused

    if out.exists():
        raise InputError(f"{out} already exists: choose a new file", field="--out")
    conn.execute("VACUUM INTO ?", (str(out),))
    data = out.read_bytes()
    leaked = [s for s in secrets if s and s.encode() in data]
    if leaked:
        out.unlink()
        raise Refused(f"the export contained {len(leaked)} keystore secret(s): refused and "
                      "deleted (this is a bug: please report it)")
    return len(data)
