"""Deterministic replay: re-run every command of a journal into a fresh database.

The journal's inputs are its command events and the venues' answers (the ``fill`` and
``reject`` events that name a ``venue``). Replay feeds the commands, in order, to the
same handlers that ran them live; when a handler sends an order, the answer is taken from
the original journal (venues are never asked again). If the original command stopped
before an order was answered (a crash), the replayed command stops at the same point.

Replay then compares the two journals row by row (the first divergence is named) and every
projection table row by row.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import pickle
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box.core import gctune
from vanta_box.core.models import Execution, Vault
from vanta_box.core.timeutil import parse_ts
from vanta_box.execution.broker import AccountBook, OrderRequest
from vanta_box.service import engine as engine_module
from vanta_box.service.engine import Command, Engine
from vanta_box.service.execute import FILL_EVENT, execution_from_payload
from vanta_box.store import db, writebehind
from vanta_box.store.journal import JournalRow
from vanta_box.store.journal import head as journal_head
from vanta_box.store.repo import AccountRow

# Handlers register themselves on import.
_HANDLER_MODULES = ("setup", "accounts", "cycle", "queue", "paper", "fees", "schedule")

EXCLUDED_TABLES = {"journal", "schema_migrations"}


def load_handlers() -> None:
    import importlib

    for name in _HANDLER_MODULES:
        importlib.import_module(f"vanta_box.service.{name}")


class ReplayInterrupted(Exception):
    """The original command stopped here (its answer is not in its span)."""


class ReplayBroker:
    kind = "replay"

    def __init__(self, venues: ReplayVenues, real_kind: str) -> None:
        self.venues = venues
        self.kind = real_kind

    def submit(self, request: OrderRequest, book: AccountBook) -> Execution:
        answer = self.venues.answers.pop(request.client_order_id, None)
        if answer is None:
            raise ReplayInterrupted(request.client_order_id)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def lookup(self, client_order_id: str, book: AccountBook) -> Execution | None:
        return None


class ReplayVenues:
    def __init__(self) -> None:
        self.answers: dict[str, Execution | Exception] = {}

    def broker_for(self, account: AccountRow, vault: Vault) -> ReplayBroker:
        from vanta_box.service.venues import LiveVenues

        try:
            real = LiveVenues().broker_for(account, vault).kind
        except Exception:
            real = account.broker_kind
        return ReplayBroker(self, real)


@dataclass
class Divergence:
    seq: int
    original: str
    replayed: str


@dataclass
class ReplayReport:
    commands: int = 0
    events: int = 0
    interrupted: int = 0
    journal_divergence: Divergence | None = None
    journal_length: tuple[int, int] = (0, 0)
    tables: dict[str, str] = field(default_factory=dict)  # table -> "identical" | problem
    versions: set[str] = field(default_factory=set)  # vanta-box versions that wrote the file
    chain_intact: bool | None = None  # checked here (None: the caller had verified it)

    def version_note(self) -> str | None:
        from vanta_box import __version__

        other = sorted(v for v in self.versions if v != __version__)
        if not other:
            return None
        return (f"note: this file was written by vanta-box {', '.join(other)}; this is "
                f"{__version__}: a difference may come from the version, not from tampering")

    @property
    def identical(self) -> bool:
        return (self.journal_divergence is None
                and self.journal_length[0] == self.journal_length[1]
                and all(v == "identical" for v in self.tables.values()))


Row = JournalRow  # seq, ts, kind, payload, prev_hash, hash


def _spans(source: db.Connection) -> Iterator[tuple[Row, list[Row]]]:
    """Each command event with the events recorded while it ran."""
    current: Row | None = None
    span: list[Row] = []
    for row in source.execute(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal ORDER BY seq"):
        if row[2] in engine_module.HANDLERS:
            if current is not None:
                yield current, span
            current, span = row, []
        elif current is not None:
            span.append(row)
    if current is not None:
        yield current, span


# A venue's fill as the paper and shadow venues write it (the template's keys, in order):
# matched whole, it is read without a JSON parse. Anything else goes through json.
_PLAIN_FILL = re.compile("\\{" + ",".join(
    f'"{key}":"([^"\\\\]*)"' for key in FILL_EVENT.keys) + "\\}")
_GROUP = {key: n for n, key in enumerate(FILL_EVENT.keys)}
_QTY, _PRICE, _COMMISSION, _REQUESTED, _COID = (
    _GROUP["qty"], _GROUP["price"], _GROUP["commission"], _GROUP["requested_qty"],
    _GROUP["client_order_id"])


def _answers(span: list[Row]) -> dict[str, Execution | Exception]:
    """The venues' answers (``fill`` / ``reject`` events naming a venue) in the span. An
    answer that cannot be read (a tampered file) fails the command that asks for it."""
    out: dict[str, Execution | Exception] = {}
    match = _PLAIN_FILL.fullmatch
    for _seq, _ts, kind, payload_json, _prev, _hash in span:
        plain = match(payload_json) if kind == "fill" else None
        if plain is not None:
            g = plain.groups()
            try:
                out[g[_COID]] = Execution(Decimal(g[_QTY]), Decimal(g[_PRICE]),
                                          Decimal(g[_COMMISSION]), Decimal(g[_REQUESTED]))
            except ArithmeticError as exc:
                out[g[_COID]] = exc
        elif kind in ("fill", "reject") and '"venue":' in payload_json:
            payload = json.loads(payload_json)
            if isinstance(payload, dict) and "venue" in payload:
                coid = str(payload.get("client_order_id"))
                try:
                    out[coid] = execution_from_payload(kind, payload)
                except (ArithmeticError, KeyError, TypeError) as exc:
                    out[coid] = exc
    return out


def replay(source: db.Connection, out_path: Path,
           progress: Callable[[str], None] = lambda _m: None, *,
           write_behind: bool = True, chain_intact: bool | None = None) -> ReplayReport:
    """Rebuild ``out_path`` from ``source``'s journal and compare the two.

    The rebuilt file is scratch until it is complete: no fsync, and (``write_behind``) its
    append-only tables written by a second process (``store.writebehind``). Journal rows
    are compared as they are appended. While the original chain is trusted, a reproduced
    row takes the original's hash instead of hashing it again (``Journal.expect``): pass
    ``chain_intact=True`` when the chain was just verified; with None it is verified here,
    by another process while replay runs, and replay starts again hashing every row if it
    is broken. The original's projection tables are digested by that process too.
    """
    load_handlers()
    if out_path.exists():
        raise FileExistsError(out_path)

    def remove_output() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(out_path) + suffix).unlink(missing_ok=True)

    trust = chain_intact is not False
    if write_behind:
        try:
            report = _replay(source, out_path, progress, True, trust, chain_intact is None)
        except writebehind.Fallback as exc:
            progress(f"replaying again in one process ({exc})")
            remove_output()
        else:
            if report.chain_intact is not False:
                return report
            progress("replaying again, hashing every row: the file's hash chain is broken")
            remove_output()
            return _replay(source, out_path, progress, True, False, False)
    report = _replay(source, out_path, progress, False, trust, chain_intact is None)
    if report.chain_intact is False and trust:
        progress("replaying again, hashing every row: the file's hash chain is broken")
        remove_output()
        report = _replay(source, out_path, progress, False, False, False)
    return report


def _replay(source: db.Connection, out_path: Path, progress: Callable[[str], None],
            write_behind: bool, trust: bool, check_chain: bool) -> ReplayReport:
    tables = projection_tables(source)
    source_job = (SourceJob(source.filename, tables, check_chain) if source.filename
                  else None)
    out: db.Connection
    if write_behind:
        out = writebehind.open_write_behind(out_path, source.filename or None)
    else:
        out = db.connect_scratch(out_path)
        db.migrate(out)
    report = ReplayReport()
    try:
        with gctune.paused():  # for the reading of the original too (core/gctune.py)
            source_rows = _run_commands(source, out, trust, report, progress)
        out_digests: dict[str, list[str]] = {}
        found = None
        if isinstance(out, writebehind.WriteBehindConnection):
            # The rebuilt tables are digested by three processes at once: the writer
            # (its own), the source job (done with the original by now) and this one.
            out.finish()
            if source_job is not None:
                found = source_job.result()
                source_job.digest_rebuilt(str(out_path), list(SOURCE_JOB_DIGESTS))
            out_digests = db.table_digests(out, [
                t for t in tables if t not in writebehind.PROJECTIONS
                and (found is None or t not in SOURCE_JOB_DIGESTS)])
            out_digests.update(out.writer_digests())
            if found is not None and source_job is not None:
                out_digests.update(source_job.rebuilt_digests())
        elif source_job is not None:
            found = source_job.result()
        report.events = journal_head(out).seq
        report.journal_length = (_count(source) if source_rows == 0 else source_rows,
                                 report.events)
        source_digests = found[1] if found is not None else None
        if check_chain:
            report.chain_intact = found[0] if found is not None else _chain_intact(source)
        for table in tables:
            if source_digests is not None and table in out_digests and (
                    source_digests.get(table) == out_digests[table]):
                report.tables[table] = "identical"
            else:  # row by row, to name the first difference
                report.tables[table] = compare_table(source, out, table)
    finally:
        if isinstance(out, writebehind.WriteBehindConnection):
            out.abandon()
        out.close()
        if source_job is not None:
            source_job.abandon()
    return report


def _run_commands(source: db.Connection, out: db.Connection, trust: bool,
                  report: ReplayReport, progress: Callable[[str], None]) -> int:
    """Every command of ``source`` run into ``out``; returns how many rows were read."""
    venues = ReplayVenues()
    eng = Engine(out, venues)
    written: list[JournalRow] = []
    eng.journal.sink = written
    source_rows = 0
    for n, (command_row, span) in enumerate(_spans(source), start=1):
        venues.answers = _answers(span)
        seq, ts, kind, payload, _prev, _hash = command_row
        original = [command_row, *span]
        eng.journal.expect(original, trust=trust)
        written.clear()
        try:
            command = Command(kind, parse_ts(ts), json.loads(payload))
            report.versions.add(str(command.payload.get("vanta_version", "unknown")))
            eng.run(command)
        except ReplayInterrupted:
            report.interrupted += 1
        except Exception as exc:  # a tampered input can make a handler fail
            progress(f"command at seq {seq} ({kind}) raised {type(exc).__name__}: {exc}")
        if report.journal_divergence is None and not (
                eng.journal.matched == len(written) == len(original)):
            _compare_span(original, written, report)
        source_rows += len(original)
        report.commands = n
        if n % 1000 == 0:
            progress(f"replayed {n} commands")
    return source_rows


SOURCE_JOB_DIGESTS = ("orders",)  # rebuilt tables the source job digests (see _replay)


def _chain_intact(conn: db.Connection) -> bool:
    from vanta_box.service.audit import VerifyReport, check_chain

    found = VerifyReport()
    check_chain(conn, [], found)
    return not found.chain


SourceResult = tuple[bool | None, dict[str, list[str]] | None]


class SourceJob:
    """Work on the original file done by a forked process while replay runs: its chain
    checked (when asked) and its projection tables digested (``db.table_digests``). Once
    that is done, it can digest tables of the rebuilt file too (``digest_rebuilt``)."""

    def __init__(self, filename: str, tables: list[str], check_chain: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, theirs = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_source_job, args=(filename, tables, check_chain, theirs),
            name="vanta-replay-source", daemon=True)
        self._process.start()
        theirs.close()
        self._failed = False

    def result(self) -> SourceResult | None:
        """(chain intact or None if not checked, digests), or None if the process could
        not do its work (replay then checks and compares in this process)."""
        found: SourceResult | None = self._receive()
        self._failed = found is None
        return found

    def digest_rebuilt(self, filename: str, tables: list[str]) -> None:
        """Ask for the digests of ``tables`` of ``filename`` (after ``result``)."""
        if not self._failed:
            self._pipe.send_bytes(pickle.dumps((filename, tables)))

    def rebuilt_digests(self) -> dict[str, list[str]]:
        digests: dict[str, list[str]] | None = None if self._failed else self._receive()
        return digests or {}

    def _receive(self) -> Any:
        try:
            return pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError):
            self._failed = True
            return None

    def abandon(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._pipe.close()


def _source_job(filename: str, tables: list[str], check_chain: bool, pipe: Any) -> None:
    try:
        conn = db.open_again_readonly(filename)
        intact = _chain_intact(conn) if check_chain else None
        found: SourceResult | None = (intact, db.table_digests(conn, tables))
    except Exception:
        found = None
    pipe.send_bytes(pickle.dumps(found))
    if found is not None:
        try:
            rebuilt, wanted = pickle.loads(pipe.recv_bytes())
            digests: dict[str, list[str]] | None = db.table_digests(
                db.open_again_readonly(rebuilt), wanted)
        except Exception:
            digests = None
        pipe.send_bytes(pickle.dumps(digests))
    os._exit(0)


def _compare_span(original: list[Row], written: list[Row], report: ReplayReport) -> None:
    if original == written:
        return
    for a, b_row in _zip_longest(original, written):
        if a != b_row:
            first = a if a is not None else b_row
            assert first is not None
            report.journal_divergence = Divergence(first[0], _describe(a), _describe(b_row))
            return


def _count(conn: db.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM journal").fetchone()
    return int(row[0]) if row else 0


def _describe(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "(no row)"
    return f"{row[2]} at {row[1]}: {row[3][:300]}"


def _zip_longest(a: Any, b: Any) -> Iterator[tuple[Any, Any]]:
    ia, ib = iter(a), iter(b)
    while True:
        x, y = next(ia, None), next(ib, None)
        if x is None and y is None:
            return
        yield x, y


def projection_tables(conn: db.Connection) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name") if name not in EXCLUDED_TABLES]


def compare_table(a: db.Connection, b: db.Connection, table: str) -> str:
    columns, order = db.table_order(a, table)
    columns_b, _ = db.table_order(b, table)
    if columns != columns_b:
        return f"columns differ: {columns} vs {columns_b}"
    select = ", ".join(columns)
    rows_a = a.execute(f"SELECT {select} FROM {table} ORDER BY {order}")
    rows_b = b.execute(f"SELECT {select} FROM {table} ORDER BY {order}")
    done = 0
    while True:  # chunks compared in C; row by row only where they differ
        chunk_a = list(itertools.islice(rows_a, 20000))
        chunk_b = list(itertools.islice(rows_b, 20000))
        if chunk_a != chunk_b:
            for n, (x, y) in enumerate(_zip_longest(chunk_a, chunk_b), start=done + 1):
                if x != y:
                    return f"row {n} differs: {_row_difference(columns, x, y)}"
        if not chunk_a and not chunk_b:
            return "identical"
        done += len(chunk_a)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _row_difference(columns: list[str], x: tuple[Any, ...] | None,
                    y: tuple[Any, ...] | None) -> str:
    if x is None or y is None:
        row = y if x is None else x
        assert row is not None
        where = "only in the replay" if x is None else "only in the file"
        return f"{columns[0]}={_short(row[0])} is {where}"
    changed = [f"{c}: file {_short(u)}, replayed {_short(v)}"
               for c, u, v in zip(columns, x, y, strict=True) if u != v]
    return f"{columns[0]}={_short(x[0])}: " + "; ".join(changed)
