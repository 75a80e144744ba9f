"""The engine runs commands. A command is an input event; its handler turns it, with the
current projections, into decision events and projection changes.

The same handler runs live (the CLI built the command from a file or flags) and in replay
(the command is read back from the journal), which is what makes replay a proof: given the
same inputs the handlers must write the same journal, byte for byte.

The command event itself is journaled by the first transaction of its handler, so a
command that is refused before it changes anything leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from vanta_box.core import faults, gctune
from vanta_box.core.canonical import dumps, loads
from vanta_box.core.errors import InputError
from vanta_box.core.models import Instrument, Vault
from vanta_box.core.timeutil import fmt_ts
from vanta_box.execution.paper import AccountBook
from vanta_box.execution.venue import LiveVenue
from vanta_box.store import db
from vanta_box.store.journal import Journal
from vanta_box.store.repo import AccountRow


@dataclass(frozen=True, slots=True)
class Command:
    kind: str
    ts: int
    payload: dict[str, Any]

    @staticmethod
    def make(kind: str, ts: int, payload: dict[str, Any]) -> Command:
        """Normalise the payload to exactly what the journal will hold (JSON types only),
        stamped with the version that ran it: replay under another version may decide
        differently, and the auditor is then told so."""
        from vanta_box import __version__

        return Command(kind, ts, loads(dumps({**payload, "vanta_version": __version__})))


class Venues(Protocol):
    """Chooses the instant venue of an account over its book (paper and shadow, or the
    journal during replay)."""

    def instant_for(self, account: AccountRow, vault: Vault, book: AccountBook,
                    marks: Mapping[str, Decimal],
                    instruments: Mapping[str, Instrument]) -> LiveVenue: ...


class ReplayInterrupted(BaseException):
    """Replay: the original command stopped here (a crash), so the replayed one stops too.

    A BaseException so that no handler's ``except Exception`` can swallow it."""


Handler = Callable[["Engine", Command], Any]
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


@dataclass
class Engine:
    conn: db.Connection
    venues: Venues
    journal: Journal = field(init=False)
    progress: Callable[[str], None] = field(default=lambda _msg: None)
    # Venues' answers not journaled yet: the next transaction journals them first, before
    # anything derived from them (service.live).
    answers: list[dict[str, Any]] = field(default_factory=list)
    _command: Command | None = field(default=None, init=False)
    _recorded: bool = field(default=False, init=False)
    _ts_key: int = field(default=-1, init=False)
    _ts_text: str = field(default="", init=False)
    _depth: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(self.conn)

    def run(self, command: Command) -> Any:
        handler = HANDLERS.get(command.kind)
        if handler is None:
            raise InputError(f"unknown command kind {command.kind!r}")
        self._command, self._recorded = command, False
        try:
            with gctune.paused():
                return handler(self, command)
        finally:
            self._command = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run several commands in one transaction: all of them land, or none does."""
        if self._depth:
            raise RuntimeError("batches do not nest")
        self.conn.execute("BEGIN IMMEDIATE")
        start = self.journal.seq
        self._depth += 1
        try:
            yield
            self._check_interrupted(start)
            self.journal.flush()
        except BaseException:
            self.conn.execute("ROLLBACK")
            self.journal.reload()
            raise
        finally:
            self._depth -= 1
        self._commit("COMMIT")
        faults.committed()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One transaction (a savepoint inside a batch); the pending command event is
        journaled at its start."""
        begin, commit, rollback = (
            ("SAVEPOINT step", "RELEASE step", "ROLLBACK TO step; RELEASE step")
            if self._depth else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"))
        self.conn.execute(begin)
        recorded_before = self._recorded
        start = self.journal.seq
        answers = self.answers
        try:
            if self._command is not None and not self._recorded:
                cmd = self._command
                self.journal.append(fmt_ts(cmd.ts), cmd.kind, cmd.payload)
                self._recorded = True
            if answers and self._command is not None:
                ts = fmt_ts(self._command.ts)
                for answer in answers:
                    self.journal.append(ts, "venue.answer", answer)
                self.answers = []
            yield
            if not self._depth:
                self._check_interrupted(start)
            self.journal.flush()
        except BaseException:
            self.conn.execute(rollback)
            self.journal.reload()
            self._recorded = recorded_before
            if answers and not self.answers:
                self.answers = answers  # not journaled after all
            raise
        if self._depth:
            self.conn.execute(commit)
            return
        try:
            self._commit(commit)
        except BaseException:
            self._recorded = recorded_before
            if answers and not self.answers:
                self.answers = answers
            raise
        faults.committed()

    def _commit(self, commit: str) -> None:
        """COMMIT; if it fails (a full disk), the transaction is rolled back, so that what
        the journal holds is exactly what committed."""
        try:
            self.conn.execute(commit)
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.journal.reload()
            raise

    def _check_interrupted(self, start: int) -> None:
        """Replay: a transaction that begins where the original command's rows end, and
        appends more, is one the original never committed (it was killed at that commit
        boundary): the replayed command stops there too, this transaction rolled back."""
        if self.journal.ends_at(start) and self.journal.seq > start:
            raise ReplayInterrupted(f"the original command stopped after seq {start}")

    def record_rendered(self, ts: int, kind: str, payload_json: str) -> int:
        """Journal a decision event whose canonical payload text is already rendered."""
        if ts != self._ts_key:
            self._ts_key, self._ts_text = ts, fmt_ts(ts)
        return self.journal.append_raw(self._ts_text, kind, payload_json)

    def record(self, ts: int, kind: str, payload: dict[str, Any]) -> int:
        """Journal a decision event at ``ts`` (``record_rendered`` for the hot events
        rendered from a ``core.canonical.Template``)."""
        if ts != self._ts_key:
            self._ts_key, self._ts_text = ts, fmt_ts(ts)
        return self.journal.append(self._ts_text, kind, payload)
