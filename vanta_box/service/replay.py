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

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vanta_box.core.models import Execution, Vault
from vanta_box.core.timeutil import parse_ts
from vanta_box.execution.broker import AccountBook, OrderRequest
from vanta_box.service import engine as engine_module
from vanta_box.service.engine import Command, Engine
from vanta_box.service.execute import execution_from_payload
from vanta_box.store import db
from vanta_box.store.journal import Event, events
from vanta_box.store.repo import AccountRow

# Handlers register themselves on import.
_HANDLER_MODULES = ("setup", "accounts", "cycle", "queue", "paper")

EXCLUDED_TABLES = {"journal", "schema_migrations"}


def load_handlers() -> None:
    import importlib

    for name in _HANDLER_MODULES:
        importlib.import_module(f"vanta_box.service.{name}")
    for extra in ("fees",):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"vanta_box.service.{extra}")


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
        return execution_from_payload(*answer)

    def lookup(self, client_order_id: str, book: AccountBook) -> Execution | None:
        return None


class ReplayVenues:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, dict[str, Any]]] = {}

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

    @property
    def identical(self) -> bool:
        return (self.journal_divergence is None
                and self.journal_length[0] == self.journal_length[1]
                and all(v == "identical" for v in self.tables.values()))


def _spans(source: db.Connection) -> Iterator[tuple[Event, list[Event]]]:
    """Each command event with the events recorded while it ran."""
    current: Event | None = None
    span: list[Event] = []
    for event in events(source):
        if event.kind in engine_module.HANDLERS:
            if current is not None:
                yield current, span
            current, span = event, []
        elif current is not None:
            span.append(event)
    if current is not None:
        yield current, span


def _answers(span: list[Event]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The venues' answers (``fill`` / ``reject`` events naming a venue) in the span."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for event in span:
        if event.kind in ("fill", "reject") and '"venue":' in event.payload_json:
            payload = json.loads(event.payload_json)
            if "venue" in payload:
                out[payload["client_order_id"]] = (event.kind, payload)
    return out


def replay(source: db.Connection, out_path: Path,
           progress: Callable[[str], None] = lambda _m: None) -> ReplayReport:
    """Rebuild ``out_path`` from ``source``'s journal and compare the two."""
    load_handlers()
    if out_path.exists():
        raise FileExistsError(out_path)
    out = db.connect(out_path)
    report = ReplayReport()
    try:
        db.migrate(out)
        venues = ReplayVenues()
        eng = Engine(out, venues)
        for n, (command_event, span) in enumerate(_spans(source), start=1):
            venues.answers = _answers(span)
            command = Command(command_event.kind, parse_ts(command_event.ts),
                              json.loads(command_event.payload_json))
            try:
                eng.run(command)
            except ReplayInterrupted:
                report.interrupted += 1
            except Exception as exc:  # the original refused nothing it journaled
                progress(f"command at seq {command_event.seq} ({command_event.kind}) raised "
                         f"{type(exc).__name__}: {exc}")
            report.commands = n
            if n % 1000 == 0:
                progress(f"replayed {n} commands")
        compare(source, out, report)
    finally:
        out.close()
    return report


def compare(source: db.Connection, out: db.Connection, report: ReplayReport) -> None:
    original = source.execute("SELECT seq, ts, kind, payload, hash FROM journal ORDER BY seq")
    replayed = out.execute("SELECT seq, ts, kind, payload, hash FROM journal ORDER BY seq")
    count_a = count_b = 0
    for a, b in _zip_longest(original, replayed):
        count_a += a is not None
        count_b += b is not None
        if report.journal_divergence is None and a != b:
            seq = (a or b)[0]
            report.journal_divergence = Divergence(
                seq, _describe(a), _describe(b))
    report.events = count_b
    report.journal_length = (count_a, count_b)
    for table in projection_tables(source):
        report.tables[table] = compare_table(source, out, table)


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
    columns = [row[1] for row in a.execute(f"PRAGMA table_info({table})")]
    columns_b = [row[1] for row in b.execute(f"PRAGMA table_info({table})")]
    if columns != columns_b:
        return f"columns differ: {columns} vs {columns_b}"
    order = ", ".join(columns)
    rows_a = a.execute(f"SELECT {order} FROM {table} ORDER BY {order}")
    rows_b = b.execute(f"SELECT {order} FROM {table} ORDER BY {order}")
    for n, (x, y) in enumerate(_zip_longest(rows_a, rows_b), start=1):
        if x != y:
            return (f"row {n} differs: in the file {_row(columns, x)}; replayed "
                    f"{_row(columns, y)}")
    return "identical"


def _row(columns: list[str], row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "(missing)"
    text = ", ".join(f"{c}={v!r}" for c, v in zip(columns, row, strict=True))
    return "{" + (text if len(text) < 400 else text[:400] + "…") + "}"
