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
  * replay re-runs every command and compares the journal and every projection;
  * SQLite's own integrity check reads every page (a damaged page of a table nothing reads
    is found too), and every command row must be canonical JSON (no float).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vanta_box.core.canonical import dumps as canonical_dumps
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
    heads: list[tuple[str, str]] = field(default_factory=list)  # (head, verdict)
    merkle: list[Problem] | None = None  # stored tree nodes the rows do not make
    replay: ReplayReport | None = None
    integrity: list[str] | None = None  # SQLite's integrity check: [] when it says ok
    payloads: list[Problem] = field(default_factory=list)  # the first non-canonical row
    versions: set[str] = field(default_factory=set)  # vanta-box versions of the commands
    wal: str = ""  # how a WAL beside the file was treated ("" when there is none)
    chain_seconds: float = 0.0  # timing, not money
    replay_seconds: float = 0.0  # timing, not money

    @property
    def ok(self) -> bool:
        replay_ok = self.replay is None or self.replay.identical
        return (not self.schema and not self.chain and replay_ok and not self.payloads
                and not self.integrity and all(v == "ok" for _d, v in self.digests)
                and not self.merkle and all(v.startswith("ok") for _h, v in self.heads))


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
    if ("table", "schema_migrations") in actual:
        problems += _check_migrations(conn)
    return problems


def _check_migrations(conn: db.Connection) -> list[Problem]:
    """The migrations recorded as applied must be exactly this version's, no more."""
    problems = []
    known = {m.version: m for m in db.migrations()}
    recorded: dict[object, tuple[object, object]] = {}
    for version, name, sha in conn.execute(
            "SELECT version, name, sha256 FROM schema_migrations ORDER BY version"):
        recorded[version] = (name, sha)
        if version not in known:
            problems.append(Problem(f"migration row ({version!r}, {name!r})",
                                    "recorded as applied, but no migration has that version"))
    for m in known.values():
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
    payload: Problem | None = None  # the first row whose payload is not canonical
    versions: set[str] = field(default_factory=set)


def command_kinds() -> frozenset[str]:
    """The kinds of the journal's command (input) rows."""
    from vanta_box.service.engine import HANDLERS

    replay_module.load_handlers()
    return frozenset(HANDLERS)


def check_chain(conn: db.Connection, digests: list[Digest], report: VerifyReport, *,
                payloads: bool = False) -> None:
    """Recompute the chain; name the first broken row; check each digest against it. With
    ``payloads``, also the canonical form of the payloads (``ChainWalker``)."""
    wanted = {d.seq: d.hash for d in digests}
    commands = command_kinds() if payloads else None
    found = conn.execute("SELECT max(seq), count(*) FROM journal").fetchone()
    top, count = (found[0] or 0, found[1]) if found else (0, 0)
    boundary = None
    if count >= PARALLEL_CHAIN_ROWS and conn.filename and replay_module.helpers_pay():
        boundary = conn.execute("SELECT seq, hash FROM journal WHERE seq <= ?"
                                " ORDER BY seq DESC LIMIT 1", (top // 2,)).fetchone()
    if boundary is None:
        parts = [_check_range(conn, None, None, 0, GENESIS, wanted, commands)]
    else:
        mid_seq, mid_hash = int(boundary[0]), str(boundary[1])
        second = _Forked(_check_file_range, conn.filename, mid_seq, mid_hash, wanted, commands)
        try:
            first = _check_range(conn, None, mid_seq, 0, GENESIS, wanted, commands)
        finally:
            found_second: _Checked | None = second.result()
        parts = [first, found_second or _check_range(conn, mid_seq, None, mid_seq,
                                                     mid_hash, wanted, commands)]
    _gather(parts, digests, report)


def _gather(parts: list[_Checked], digests: list[Digest], report: VerifyReport) -> None:
    verdicts: dict[int, str] = {}
    for part in parts:
        if part.problem is not None and not report.chain:
            report.chain.append(part.problem)
        if part.payload is not None and not report.payloads:
            report.payloads.append(part.payload)
        report.versions |= part.versions
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
    SQL rows, and replay's source job over the rows it reads anyway.

    Given the kinds of the command rows (``commands``) it also checks payloads: every
    command row, and any row holding a backslash or a space, is parsed and must be
    canonical JSON without a float. Every other row (a decision: orders, fills...) is
    made again by replay and compared byte for byte, which a non-canonical one fails;
    parsing them all here would double the cost of the chain."""

    def __init__(self, expected_after: int = 0, prev_hex: str = GENESIS,
                 wanted: dict[int, str] | None = None,
                 commands: frozenset[str] | None = None) -> None:
        self.out = _Checked()
        self._prev = bytes.fromhex(prev_hex)
        self._prev_hex = prev_hex
        self._expected = expected_after + 1
        self._wanted = wanted or {}
        self._commands = commands

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
            else:
                self._hashed(row)
        commands = self._commands
        if commands is not None and (kind in commands or payload.__class__ is not str
                                     or "\\" in payload or " " in payload):
            self._payload(row, kind in commands)
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

    def _hashed(self, row: tuple[int, str, str, str, str, str]) -> None:
        seq, ts, kind, payload, _prev_hash, stored = row
        try:
            same = _sha256(self._prev + row_bytes(seq, ts, kind, payload)).hexdigest() == stored
        except TypeError:  # a BLOB (or a number) where the journal holds text
            self.out.problem = Problem(f"journal row {seq}", _not_text(row))
            return
        if not same:
            self.out.problem = Problem(
                f"journal row {seq} ({kind} at {ts})",
                "content does not match its hash (edited after it was written)")

    def _payload(self, row: tuple[int, str, str, str, str, str], command: bool) -> None:
        seq, ts, kind, payload = row[:4]
        problem, value = parse_canonical(payload)
        if command and isinstance(value, dict):
            self.out.versions.add(str(value.get("vanta_version", "unknown")))
        if problem is not None and self.out.payload is None:
            self.out.payload = Problem(f"journal row {seq} ({kind} at {ts})", problem)

    def result(self) -> _Checked:
        if self.out.rows:
            self.out.head = Digest(self._expected - 1, self._prev_hex)
        return self.out


_sha256 = hashlib.sha256
_COLUMNS = ("seq", "ts", "kind", "payload", "prev_hash", "hash")


def _not_text(row: tuple[object, ...]) -> str:
    odd = [f"{name} is {_sql_type(value)}" for name, value in zip(_COLUMNS, row, strict=True)
           if name != "seq" and not isinstance(value, str)]
    return ", ".join(odd) + " (the journal holds text: written outside vanta-box)"


def _sql_type(value: object) -> str:
    if isinstance(value, bytes):
        return "a BLOB"
    if value is None:
        return "NULL"
    return "a number" if isinstance(value, int | float) else type(value).__name__


class _FloatFound(Exception):
    pass


def _refuse_float(_text: str) -> object:
    raise _FloatFound


def parse_canonical(payload: object) -> tuple[str | None, object]:
    """(why ``payload`` is not the canonical JSON text of an object without floats, or
    None; its value when it is JSON)."""
    if not isinstance(payload, str):
        return f"the payload is {_sql_type(payload)}, not JSON text", None
    try:
        value = json.loads(payload, parse_float=_refuse_float, parse_constant=_refuse_float)
    except _FloatFound:
        return ("the payload holds a number with a fraction or an exponent (a float: "
                "decimals are written as strings)"), None
    except (ValueError, RecursionError):
        return "the payload is not JSON", None
    try:
        same = isinstance(value, dict) and canonical_dumps(value) == payload
    except (ValueError, RecursionError):
        same = False
    if same:
        return None, value
    return ("the payload is not canonical JSON (an object, keys sorted, no whitespace, "
            "characters unescaped)"), value


def _check_range(conn: db.Connection, after: int | None, upto: int | None,
                 expected_after: int, prev_hex: str, wanted: dict[int, str],
                 commands: frozenset[str] | None = None) -> _Checked:
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
    walker = ChainWalker(expected_after, prev_hex, wanted, commands)
    step = walker.step
    for row in conn.execute(sql + " ORDER BY seq", tuple(args)):
        step(row)
    return walker.result()


def _check_file_range(filename: str, after: int, after_hash: str, wanted: dict[int, str],
                      commands: frozenset[str] | None) -> _Checked:
    """``_check_range`` of the rows after ``after``, on the file opened again."""
    return _check_range(db.open_again_readonly(filename), after, None, after, after_hash,
                        wanted, commands)


class _Forked:
    """``target(*args)`` in a forked process; ``result()`` is its value, or None if the
    process failed (the caller then does the work itself)."""

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._pipe, theirs = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_forked,
                                        args=(target, args, theirs, self._pipe),
                                        name="vanta-verify", daemon=True)
        self._process.start()
        theirs.close()

    def result(self) -> Any:
        import pickle

        try:
            found = pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError):
            found = None
        self._process.join()
        self._pipe.close()
        return found


def _run_forked(target: Callable[..., Any], args: tuple[Any, ...], pipe: Any,
                parents: Any) -> None:
    import os
    import pickle

    parents.close()  # only the parent reads: if it goes away, sending fails and this ends
    try:
        found = target(*args)
    except Exception:
        found = None
    pipe.send_bytes(pickle.dumps(found))
    os._exit(0)


# SQLite's own check of every page, index and STRICT type; names this many problems at
# most. On a file this big it runs in a forked process while the chain is checked.
INTEGRITY_PROBLEMS = 10
INTEGRITY_IN_CHILD_BYTES = 32 * 1024 * 1024


def integrity_problems(conn: db.Connection) -> list[str]:
    """``PRAGMA integrity_check``'s findings ([] when it says ok)."""
    try:
        found = [str(r[0]) for r in conn.execute(
            f"PRAGMA integrity_check({INTEGRITY_PROBLEMS})")]
    except db.SQLError as exc:  # so damaged that SQLite stops reading
        return [f"{type(exc).__name__}: {exc}"]
    lines = [line for text in found for line in text.splitlines()
             if line and not line.startswith("*** in database")]
    return [] if lines == ["ok"] else lines


def _integrity_of_file(filename: str) -> list[str]:
    return integrity_problems(db.open_again_readonly(filename))


def _start_integrity(conn: db.Connection) -> Callable[[], list[str]]:
    """The integrity check, started; call the result to wait for its findings."""
    size = db.file_size(Path(conn.filename)) if conn.filename else 0
    if size < INTEGRITY_IN_CHILD_BYTES or not replay_module.helpers_pay():
        found = integrity_problems(conn)
        return lambda: found
    child = _Forked(_integrity_of_file, conn.filename)

    def finish() -> list[str]:
        result: list[str] | None = child.result()
        return result if result is not None else integrity_problems(conn)

    return finish


def verify(path: Path, digests: list[Digest], *, with_replay: bool = True,
           with_wal: bool = False, heads: list[tuple[str, dict[str, Any]]] | None = None,
           progress: Callable[[str], None] = lambda _m: None) -> VerifyReport:
    """Verify the file: the main file alone unless ``with_wal`` (``db.open_readonly``).
    ``heads``: (what to call it, a signed tree head published earlier)."""
    report = VerifyReport(wal=db.wal_note(path, with_wal))
    with db.open_readonly(path, with_wal=with_wal) as conn:
        integrity = _start_integrity(conn)
        try:
            report.schema = check_schema(conn)
            if not any(p.where.startswith("table journal") for p in report.schema):
                _timed_chain(conn, digests, report, progress)
                if not any(p.where.startswith("table merkle_nodes") for p in report.schema):
                    report.merkle = check_merkle(conn)
                report.heads = check_heads(conn, heads or [])
        finally:
            report.integrity = integrity()
        if with_replay and not report.schema:
            _replayed(conn, report, progress)
    return report


MERKLE_PROBLEMS = 5  # stored nodes named at most


def check_merkle(conn: db.Connection) -> list[Problem]:
    """Every stored node of the journal's Merkle tree recomputed from the rows: a node the
    rows do not make is named (the tree was edited, or the rows under it were)."""
    from vanta_box.store import merkle as stored

    if conn.execute("SELECT 1 FROM merkle_nodes LIMIT 1").fetchone() is None:
        return []  # nothing stored (no head asked yet): nothing the rows could contradict
    wrong = stored.mismatches(conn)
    return [Problem(f"merkle node (level {level}, index {index})",
                    f"not what journal rows {(index << level) + 1}.."
                    f"{(index + 1) << level} make (the stored tree or those rows were "
                    "edited, or rows removed)") for level, index in wrong[:MERKLE_PROBLEMS]]


def check_heads(conn: db.Connection, heads: list[tuple[str, dict[str, Any]]]
                ) -> list[tuple[str, str]]:
    """Each published head: its signature, and the journal's first ``tree_size`` rows must
    make its root (computed from the rows alone, like a digest)."""
    if not heads:
        return []
    from vanta_box.service import proofs
    from vanta_box.store import merkle as stored

    signed = {label: proofs.check_head(h) for label, h in heads}
    sizes = {int(h["tree_size"]) for label, h in heads if signed[label] is None}
    roots = stored.roots_at(conn, sizes)
    found = conn.execute("SELECT count(*) FROM journal").fetchone()
    count = int(found[0]) if found else 0
    out = []
    for label, h in heads:
        if signed[label] is not None:
            out.append((label, f"FAILED: {signed[label]}"))
            continue
        size = int(h["tree_size"])
        if size not in roots:
            out.append((label, f"FAILED: the journal has {count} rows, fewer than the "
                               f"head's {size} (rows were removed)"))
        elif roots[size].hex() != h["root_hash"]:
            out.append((label, f"FAILED: the journal's first {size} rows make another root "
                               "(history rewritten)"))
        else:
            out.append((label, f"ok (the journal's first {size:,} rows make its root; "
                               f"signed by {h['public_key'][:16]}…)"))
    return out


def _timed_chain(conn: db.Connection, digests: list[Digest], report: VerifyReport,
                 progress: Callable[[str], None]) -> None:
    import time

    start = time.perf_counter()
    check_chain(conn, digests, report, payloads=True)
    report.chain_seconds = time.perf_counter() - start
    progress(f"chain of {report.rows:,} rows checked in {report.chain_seconds:.2f} s")


def _replayed(conn: db.Connection, report: VerifyReport,
              progress: Callable[[str], None]) -> None:
    import time

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vanta-verify-") as tmp:
        found = replay(conn, Path(tmp) / "replayed.db", progress,
                       chain_intact=not report.chain)
    report.replay, report.replay_seconds = found, time.perf_counter() - start
    report.versions |= found.versions
    if found.journal_divergence is not None and not report.payloads:
        # a decision row is checked by being made again: say so when it is not canonical
        seq = found.journal_divergence.seq
        for _seq, ts, kind, payload in conn.execute(
                "SELECT seq, ts, kind, payload FROM journal WHERE seq = ?", (seq,)):
            problem, _value = parse_canonical(payload)
            if problem is not None:
                report.payloads.append(Problem(f"journal row {seq} ({kind} at {ts})", problem))


def describe(report: VerifyReport) -> list[str]:
    """The report in lines: what held, then the first problem of each kind."""
    lines = [f"journal: {report.rows:,} rows, head {report.head}"]
    if report.integrity is not None:
        lines.append("SQLite integrity check: " + (
            "ok" if not report.integrity else f"{len(report.integrity)} problem(s)"))
        lines += [f"  {line}" for line in report.integrity[:5]]
    lines.append("schema and triggers: " + ("match the migrations" if not report.schema else
                                           f"{len(report.schema)} problem(s)"))
    lines += [f"  {p}" for p in report.schema]
    if report.rows or not report.schema:
        lines.append("hash chain: " + ("intact" if not report.chain else "BROKEN"))
        lines += [f"  first bad row: {p}" for p in report.chain]
        lines.append("journal payloads: " + ("canonical JSON" if not report.payloads
                                             else "NOT canonical"))
        lines += [f"  first bad row: {p}" for p in report.payloads]
    for digest, verdict in report.digests:
        lines.append(f"digest {digest}: {verdict}")
    if report.merkle is not None:
        lines.append("merkle tree: " + ("stored nodes match the rows" if not report.merkle
                                        else "stored nodes do NOT match the rows"))
        lines += [f"  {p}" for p in report.merkle]
    for head, verdict in report.heads:
        lines.append(f"head {head}: {verdict}")
    if report.replay is not None:
        lines += _describe_replay(report.replay)
    note = replay_module.version_note(report.versions)
    if note:
        lines.append(note)
    verdict = "OK" if report.ok else "FAILED"
    lines.append(f"verdict: {verdict} ({report.wal})" if report.wal else f"verdict: {verdict}")
    return lines


def _describe_replay(r: ReplayReport) -> list[str]:
    if r.identical:
        return [f"replay: identical ({r.commands:,} commands, {r.events:,} events, "
                f"{len(r.tables)} projection tables)"]
    lines = ["replay: DIFFERS"]
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
    return lines


def export(conn: db.Connection, out: Path, secrets: list[str] | list[str | bytes]) -> int:
    """Write a clean copy for an auditor (``VACUUM INTO``: no free pages, no WAL), then scan
    every byte of it for each secret (the keystore's, the signing key's text and bytes);
    refuse (and delete the copy) on any hit.
    Returns the size of the copy."""
    from vanta_box.core.errors import Refused

    if out.exists():
        raise InputError(f"{out} already exists: choose a new file", field="--out")
    conn.execute("VACUUM INTO ?", (str(out),))
    data = out.read_bytes()
    leaked = [s for s in secrets if s and (s.encode() if isinstance(s, str) else s) in data]
    if leaked:
        out.unlink()
        raise Refused(f"the export contained {len(leaked)} secret(s): refused and "
                      "deleted (this is a bug: please report it)")
    return len(data)
