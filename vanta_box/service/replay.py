"""Deterministic replay: re-run every command of a journal into a fresh database.

The journal's inputs are its command events and the venues' answers (the ``fill`` and
``reject`` events that name a ``venue``). Replay feeds the commands, in order, to the
same handlers that ran them live; when a handler sends an order, the answer is taken from
the original journal (venues are never asked again). If the original command stopped
before an order was answered (a crash), the replayed command stops at the same point.

Replay compares the two journals row by row as it goes (the first divergence is named)
and then every projection table (SQLite proves a table identical; a table that is not is
compared row by row to name the first differing row). What keeps it fast without proving
less is described in ``replay()`` and in the README ("Audit").
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta_box.core import gctune
from vanta_box.core.models import Execution, Instrument, Vault
from vanta_box.core.timeutil import parse_ts
from vanta_box.execution.paper import AccountBook, InstantTrades, instant_answer
from vanta_box.execution.venue import LiveOrder, OrderReport, Rules, Snapshot
from vanta_box.service import engine as engine_module
from vanta_box.service.engine import Command, Engine, ReplayInterrupted
from vanta_box.service.execute import FILL_EVENT, execution_from_payload
from vanta_box.service.live import Tape
from vanta_box.store import db, writebehind
from vanta_box.store.journal import JournalRow
from vanta_box.store.journal import head as journal_head
from vanta_box.store.repo import AccountRow

# Handlers register themselves on import.
_HANDLER_MODULES = ("setup", "accounts", "cycle", "queue", "paper", "fees", "schedule",
                    "sync", "flows", "collect", "proofs")

# merkle_nodes: a cache derived from the journal alone (extended when a head or a proof
# is asked, so the rebuilt file has fewer of them); verify recomputes every stored node.
# audit_keys is compared: replay re-records each key from its audit.key command.
EXCLUDED_TABLES = {"journal", "schema_migrations", "merkle_nodes"}


def load_handlers() -> None:
    import importlib

    for name in _HANDLER_MODULES:
        importlib.import_module(f"vanta_box.service.{name}")


class ReplayBroker(InstantTrades):
    """An instant venue of the journal: its answers are the original run's (the venues
    are never asked again), in the live venues' protocol."""

    def __init__(self, venues: ReplayVenues, kind: str) -> None:
        super().__init__()
        self.venues = venues
        self.kind = kind  # as the venue it stands for

    def submit(self, order: LiveOrder) -> OrderReport:
        answer = self.venues.answers.pop(order.client_order_id, None)
        if answer is None:
            raise ReplayInterrupted(order.client_order_id)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, Execution):
            outcome = answer.qty, answer.price, answer.commission, answer.reject_reason, \
                answer.note
        else:  # a plain fill (may raise if tampered)
            qty, price, commission, requested = answer
            outcome = Decimal(qty), Decimal(price), Decimal(commission), None, None
            Decimal(requested)  # parsed as ever: a tampered text is refused here too
        return self.answered(instant_answer(order, outcome))

    def cancel(self, report: OrderReport, symbol: str) -> OrderReport | None:
        return None

    def order(self, client_order_id: str, symbol: str) -> OrderReport | None:
        return None

    def snapshot(self) -> Snapshot:
        raise NotImplementedError("replay never asks an instant venue for its books")

    def rules(self, symbol: str) -> Rules:
        raise NotImplementedError("replay never asks an instant venue for its rules")


class ReplayVenues:
    """The instant venues' answers of the command being replayed (by client order id) and
    the live venues' (``venue.answer`` events, in order: ``service.live.Tape``)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.tape = Tape([])

    def instant_for(self, account: AccountRow, vault: Vault, book: AccountBook,
                    marks: Mapping[str, Decimal],
                    instruments: Mapping[str, Instrument]) -> ReplayBroker:
        from vanta_box.service.venues import instant_kind

        return ReplayBroker(self, instant_kind(account))


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
        return version_note(self.versions)

    @property
    def identical(self) -> bool:
        return (self.journal_divergence is None
                and self.journal_length[0] == self.journal_length[1]
                and all(v == "identical" for v in self.tables.values()))


def version_note(versions: set[str]) -> str | None:
    """What to tell an auditor whose vanta-box is not the one that ran the commands
    (said whether or not anything differs: the versions are part of what was verified)."""
    from vanta_box import __version__

    other = sorted(v for v in versions if v != __version__)
    if not other:
        return None
    return (f"note: this file was written by vanta-box {', '.join(other)}; this is "
            f"{__version__}: a difference may come from the version, not from tampering")


Row = JournalRow  # seq, ts, kind, payload, prev_hash, hash


def _rows(source: db.Connection) -> Iterator[Row]:
    rows: Iterator[Row] = source.execute(
        "SELECT seq, ts, kind, payload, prev_hash, hash FROM journal ORDER BY seq")
    return rows


def _spans(source: db.Connection | Iterable[Row]) -> Iterator[tuple[Row, list[Row]]]:
    """Each command event with the events recorded while it ran (of a file's journal, or
    of its rows in seq order)."""
    current: Row | None = None
    span: list[Row] = []
    rows = _rows(source) if isinstance(source, db.Connection) else source
    for row in rows:
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


# A venue's answer as replay holds it: a plain fill as its four decimal texts (qty, price,
# commission, requested qty), made into an Execution only when the order asks for it; any
# other answer already made; an unreadable one as the error it raises then.
Answer = tuple[str, str, str, str] | Execution | Exception


def _answers(span: list[Row]) -> dict[str, Answer]:
    """The venues' answers (``fill`` / ``reject`` events naming a venue) in the span."""
    out: dict[str, Answer] = {}
    match = _PLAIN_FILL.fullmatch
    for _seq, _ts, kind, payload_json, _prev, _hash in span:
        if payload_json.__class__ is not str:  # a BLOB: no answer (the command stops there)
            continue
        plain = match(payload_json) if kind == "fill" else None
        if plain is not None:
            g = plain.groups()
            out[g[_COID]] = (g[_QTY], g[_PRICE], g[_COMMISSION], g[_REQUESTED])
        elif kind in ("fill", "reject") and '"venue":' in payload_json:
            try:
                payload = json.loads(payload_json)
            except ValueError:  # not JSON: no answer (the order's command stops there)
                continue
            if isinstance(payload, dict) and "venue" in payload:
                coid = str(payload.get("client_order_id"))
                try:
                    out[coid] = execution_from_payload(kind, payload)
                except (ArithmeticError, KeyError, TypeError, ValueError) as exc:
                    out[coid] = exc
    return out


def _tape(span: list[Row]) -> list[dict[str, Any]]:
    """The live venues' answers in a command's span (a row that is not one, or not JSON,
    is no answer: the replayed command stops where it is missing)."""
    out = []
    for row in [r for r in span if r[2] == "venue.answer"]:  # rare: the loop in C first
        payload_json = row[3]
        if payload_json.__class__ is str:
            try:
                answer = json.loads(payload_json)
            except ValueError:
                continue
            if isinstance(answer, dict):
                out.append(answer)
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
    by another process while replay runs (``SourceJob``, which also reads the venues'
    answers ahead), and replay starts again hashing every row if it is broken. Forked
    helpers are used only with a second core (``helpers_pay``).
    """
    load_handlers()
    if out_path.exists():
        raise FileExistsError(out_path)
    write_behind = write_behind and helpers_pay()
    trust = chain_intact is not False
    while True:  # at most three attempts: each retry gives up one shortcut
        try:
            report = _replay(source, out_path, progress, write_behind, trust,
                             check_chain=trust and chain_intact is None)
        except writebehind.Fallback as exc:
            progress(f"replaying again in one process ({exc})")
            write_behind = False
        else:
            if not (trust and report.chain_intact is False):
                return report
            progress("replaying again, hashing every row: the file's hash chain is broken")
            trust = False
        for suffix in ("", "-wal", "-shm"):
            Path(str(out_path) + suffix).unlink(missing_ok=True)


def _replay(source: db.Connection, out_path: Path, progress: Callable[[str], None],
            write_behind: bool, trust: bool, check_chain: bool) -> ReplayReport:
    tables = projection_tables(source)
    made = {name for kind, name, _table, _sql in db.expected_schema()
            if kind == "table" and name not in EXCLUDED_TABLES and not name.startswith("sqlite_")}
    report = ReplayReport()
    if not trust:
        report.chain_intact = False  # replay hashes every row because the chain is broken
    job = (SourceJob(source.filename, check_chain) if source.filename and helpers_pay()
           else None)
    out: db.Connection | None = None
    try:
        if write_behind:
            out = writebehind.open_write_behind(out_path, source.filename or None)
            rebuilt = "w"
        else:
            out = db.connect_scratch(out_path)
            db.migrate(out)
            rebuilt = "main"
        with gctune.paused():  # for the reading of the original too (core/gctune.py)
            source_rows = _run_commands(source, out, trust, report, progress, job)
        by_writer: list[str] = []
        if isinstance(out, writebehind.WriteBehindConnection):
            by_writer = out.finish([t for t in tables if t in writebehind.COMPARED_BY_WRITER])
        report.events = journal_head(out).seq
        report.journal_length = (_count(source) if source_rows == 0 else source_rows,
                                 report.events)
        if check_chain:
            intact = job.chain_intact() if job is not None else None
            report.chain_intact = intact if intact is not None else _chain_intact(source)
        # the writer compares its own big tables meanwhile (write-behind)
        same = (identical_tables(out, rebuilt, db.readonly_uri(source.filename),
                                 [t for t in tables if t not in by_writer])
                if source.filename else set())
        if isinstance(out, writebehind.WriteBehindConnection):
            same |= out.writer_verdict()
        for table in tables:  # row by row where they differ, to name the first row
            report.tables[table] = ("identical" if table in same else
                                    "not made by replay (only in the file)"
                                    if table not in made else
                                    compare_table(source, out, table))
        for table in sorted(made - set(tables)):
            report.tables[table] = "missing from the file (dropped?)"
    finally:
        if isinstance(out, writebehind.WriteBehindConnection):
            out.abandon()
        if out is not None:
            out.close()
        if job is not None:
            job.abandon()
    return report


def identical_tables(conn: db.Connection, schema: str, original_uri: str,
                     tables: list[str]) -> set[str]:
    """``db.identical_tables`` with the original file attached for the purpose."""
    if not tables:
        return set()
    try:
        conn.execute("ATTACH DATABASE ? AS original", (original_uri,))
    except db.SQLError:  # e.g. another text encoding: compared row by row instead
        return set()
    try:
        return db.identical_tables(conn, schema, "original", tables)
    finally:
        conn.execute("DETACH DATABASE original")


def _run_commands(source: db.Connection, out: db.Connection, trust: bool,
                  report: ReplayReport, progress: Callable[[str], None],
                  job: SourceJob | None) -> int:
    """Every command of ``source`` run into ``out``; returns how many rows were read.
    The venues' answers of each command come from ``job`` when it has them."""
    venues = ReplayVenues()
    eng = Engine(out, venues)
    written: list[JournalRow] = []
    eng.journal.sink = written
    source_rows = 0
    for n, (command_row, span) in enumerate(_spans(source), start=1):
        answers = job.next_answers() if job is not None else None
        venues.answers = answers if answers is not None else _answers(span)
        venues.tape = Tape(_tape(span))
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


def _chain_intact(conn: db.Connection) -> bool:
    from vanta_box.service.audit import VerifyReport, check_chain

    found = VerifyReport()
    check_chain(conn, [], found)
    return not found.chain


# The write-behind and the chain check run in forked processes; without fork (not Linux
# or macOS) replay does the same work in one process.
CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


def helpers_pay() -> bool:
    """Forked helpers only pay with a second core to run on: on one core the same work in
    one process is faster (1M-row bench: 34.8k events/s alone, 30.2k with helpers)."""
    if not CAN_FORK:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores >= 2


class SourceJob:
    """Work on the original file done by a forked process while replay runs: it reads the
    journal ahead of replay and hands over each command's venue answers, parsed; then it
    checks the hash chain (when asked). If it fails, replay does that work itself."""

    def __init__(self, filename: str, check_chain: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, theirs = context.Pipe(duplex=False)
        self._process = context.Process(target=_source_job,
                                        args=(filename, check_chain, theirs, self._pipe),
                                        name="vanta-replay-source", daemon=True)
        self._process.start()
        theirs.close()
        self._spans_done = False

    def next_answers(self) -> dict[str, Answer] | None:
        """The answers of the next command span, in journal order (None: do it yourself)."""
        if self._spans_done:
            return None
        data = self._receive()
        if data is None or data == _SPANS_DONE:
            self._spans_done = True
            return None
        answers: dict[str, Answer] = pickle.loads(data)
        return answers

    def chain_intact(self) -> bool | None:
        """Intact or not; None if the process could not tell (replay then checks)."""
        while not self._spans_done:  # answers replay did not ask for (it stopped early)
            self.next_answers()
        data = self._receive()
        intact: bool | None = pickle.loads(data) if data is not None else None
        return intact

    def _receive(self) -> bytes | None:
        try:
            return self._pipe.recv_bytes()
        except (EOFError, OSError):
            return None

    def abandon(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._pipe.close()


_SPANS_DONE = b"SPANS DONE"


def _walked(rows: Iterator[Row], step: Callable[[Row], None]) -> Iterator[Row]:
    for row in rows:
        step(row)
        yield row


def _source_job(filename: str, check_chain: bool, pipe: Any, parents: Any) -> None:
    parents.close()  # only the parent reads: if it goes away, sending fails and this ends
    from vanta_box.service.audit import ChainWalker

    try:
        rows = _rows(db.open_again_readonly(filename))
        walker = ChainWalker() if check_chain else None
        if walker is not None:  # the chain is checked on the rows read for the answers
            rows = _walked(rows, walker.step)
        for _command, span in _spans(rows):
            pipe.send_bytes(pickle.dumps(_answers(span), protocol=pickle.HIGHEST_PROTOCOL))
        pipe.send_bytes(_SPANS_DONE)
        intact = walker.result().problem is None if walker is not None else None
        pipe.send_bytes(pickle.dumps(intact))
    except Exception:  # the parent sees the pipe close and does the rest itself
        pass
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
    payload = row[3] if isinstance(row[3], str) else f"{row[3]!r} (not text)"
    return f"{row[2]} at {row[1]}: {payload[:300]}"


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
