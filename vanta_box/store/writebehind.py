"""Write-behind for replay: the append-only tables are written by a second process.

A replay spends a fifth of its time in SQLite inserting rows into ``journal``, ``orders``
and ``fills``, which the handlers write but almost never read back. Replay therefore runs
its handlers on a connection whose main database is in memory and holds every other
table; the file being rebuilt is attached to it (as ``w``) and written by a child process:

  * an INSERT into one of those tables is buffered with the transaction that made it, and
    handed to the writer when that transaction commits (a rollback drops it);
  * any other statement naming one of them is a read: it waits until the writer has
    committed everything handed to it, then reads the attached file (SQLite resolves a
    table missing from ``main`` in the attached database);
  * at the end the writer closes and the small tables are copied into the file.

The file is scratch until complete, like any replay output. A read of rows its own
transaction has not committed yet, or any failure of the writer, cannot be served in this
mode: ``Fallback`` is raised and the caller replays again without it.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import shutil
import tempfile
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, BinaryIO

import apsw

from vanta_box.store import db

DIVERTED = ("journal", "orders", "fills")
COMPARED_BY_WRITER = ("fills",)  # with the original, at the end (see finish)
# What is diverted: one INSERT ... VALUES (...) statement into one of those tables (the
# store's own, with or without ON CONFLICT). Any other statement naming them runs here,
# after the writer has caught up (and never after this transaction's own diverted rows).
_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(?:journal|orders|fills)\s*\([^()]*\)\s*VALUES\s*\(",
                     re.IGNORECASE)
_NAMES = re.compile(r"\b(?:journal|orders|fills)\b", re.IGNORECASE)
_SELECT = re.compile(r"\bSELECT\b", re.IGNORECASE)
_SYNC, _CLOSE, _OK, _NO_COPY = b"SYNC", b"CLOSE", b"OK", b"OK NO COPY"
_COPY_JOURNAL = ("INSERT INTO main.journal (seq, ts, kind, payload, prev_hash, hash)"
                 " SELECT seq, ts, kind, payload, prev_hash, hash FROM original.journal"
                 " WHERE seq BETWEEN ? AND ? ORDER BY seq")
BUSY_MS = 30_000  # both sides share the file: never fail on a lock held for a moment


class Fallback(BaseException):
    """This replay cannot go on with a write-behind; replay again without one.

    A BaseException so that the handlers' and replay's own ``except Exception`` (a
    tampered input may make a handler fail) let it through."""


def _diverted(sql: str) -> bool:
    return bool(_INSERT.match(sql)) and ";" not in sql and not _SELECT.search(sql)


class WriteBehindConnection(apsw.Connection):
    """See the module docstring. Created by ``open_write_behind``."""

    _active = False

    def setup(self, pipe: Pipe, process: Any, spool: str, has_original: bool) -> None:
        self._has_original = has_original
        self._pipe = pipe
        self._process = process
        self._spool = spool
        self._spooled = 0
        self._levels: list[list[tuple[str, list[Any]]]] = []
        self._active = True

    # -- the apsw methods the store and the engine use ------------------------------------

    def execute(self, statements: str, bindings: Any = None, **kwargs: Any) -> Any:
        if self._active:
            control = _CONTROL.get(statements)
            if control is not None:
                return control(self)
            if _NAMES.search(statements):
                if _diverted(statements):
                    self._divert(statements, [bindings])
                    return None
                self._before_read()
        return super().execute(statements, bindings, **kwargs)

    def executemany(self, statements: str, sequenceofbindings: Any, **kwargs: Any) -> Any:
        if self._active and _NAMES.search(statements):
            if _diverted(statements):
                # The store hands over lists it never touches again: kept as they are.
                rows = (sequenceofbindings if type(sequenceofbindings) is list
                        else list(sequenceofbindings))
                self._divert(statements, rows)
                return None
            self._before_read()
        return super().executemany(statements, sequenceofbindings, **kwargs)

    # -- transactions ---------------------------------------------------------------------

    def _begin(self) -> None:
        super().execute("BEGIN")  # not IMMEDIATE: that would lock the attached file too
        self._levels = [[]]

    def _savepoint(self) -> None:
        super().execute("SAVEPOINT step")
        self._levels.append([])

    def _release(self) -> None:
        super().execute("RELEASE step")
        top = self._levels.pop()
        if self._levels:
            self._levels[-1].extend(top)
        else:
            self._send(top)

    def _rollback_to(self) -> None:
        super().execute("ROLLBACK TO step; RELEASE step")
        self._levels.pop()

    def _commit(self) -> None:
        super().execute("COMMIT")
        done = [item for level in self._levels for item in level]
        self._levels = []
        self._send(done)

    def _rollback(self) -> None:
        super().execute("ROLLBACK")
        self._levels = []

    # -- the writer -----------------------------------------------------------------------

    def _divert(self, sql: str, rows: list[Any]) -> None:
        if not rows:
            return
        if self._levels:
            self._levels[-1].append((sql, rows))
        else:
            self._send([(sql, rows)])

    def copy_original_journal(self, first: int, last: int) -> bool:
        """Journal rows ``first``..``last`` equal the original file's: the writer copies
        them from there (in order with the other inserts of the transaction). False when
        the writer has no original file to copy from."""
        if not (self._active and self._has_original):
            return False
        self._divert(_COPY_JOURNAL, [(first, last)])
        return True

    def _send(self, batch: list[tuple[str, list[Any]]]) -> None:
        """Hand a committed batch to the writer: through a spool file, so that the parent
        never waits for the writer to drain a pipe (only its name goes through the pipe).
        A batch that cannot be handed over would be lost: the whole replay falls back."""
        if not batch:
            return
        self._spooled += 1
        path = os.path.join(self._spool, str(self._spooled))
        try:
            with open(path, "wb") as f:
                _dump(batch, f)
            self._pipe.send_bytes(os.fsencode(path))
        except (OSError, ValueError, pickle.PicklingError) as exc:
            raise self._broken(f"could not hand rows to the writer: {exc}") from exc

    def _broken(self, why: str) -> Fallback:
        self._active = False
        return Fallback(why)

    def _ask(self, message: bytes) -> bytes:
        try:
            self._pipe.send_bytes(message)
            return self._pipe.recv_bytes()
        except (OSError, EOFError) as exc:
            raise self._broken(f"the writer is gone ({type(exc).__name__})") from exc

    def _before_read(self) -> None:
        if any(self._levels):
            raise self._broken("a transaction reads rows it has not committed yet")
        self.sync()

    def sync(self) -> None:
        """Wait until the writer has committed everything handed to it."""
        answer = self._ask(_SYNC)
        if answer != _OK:
            raise self._broken(answer.decode(errors="replace"))

    def finish(self, compare: list[str]) -> list[str]:
        """Copy every other table into the attached file and close the writer. While this
        process goes on, the writer checks the foreign keys of its share of ``compare``
        (``COMPARED_BY_WRITER``) and, when it has the original attached, compares them
        with it: the tables it compares are returned, its verdict comes from
        ``writer_verdict``."""
        self.sync()  # the writer is idle from here on: this process may write the file
        self._active = False
        tables = [name for (name,) in super().execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY rowid")]
        super().execute("PRAGMA foreign_keys = OFF")  # a copy of rows already checked
        super().execute("BEGIN")
        for name in tables:
            super().execute(f'INSERT INTO w."{name}" SELECT * FROM main."{name}"')
        super().execute("COMMIT")
        super().execute("PRAGMA foreign_keys = ON")
        mine = [t for t in compare if t in COMPARED_BY_WRITER]
        try:
            self._pipe.send_bytes(_CLOSE + b" " + pickle.dumps(mine))
        except OSError as exc:
            raise Fallback(f"the writer is gone ({type(exc).__name__})") from exc
        # The writer inserted orders and fills before their parent rows were in the file
        # (foreign keys off there): checked now, as a plain replay would have (the writer
        # checks its share meanwhile).
        for table in ("orders", "fills"):
            if table not in mine and super().execute(
                    f"PRAGMA w.foreign_key_check({table})").fetchone():
                raise Fallback(f"{table} rows without their parent rows")
        return mine if self._has_original else []

    def writer_verdict(self) -> set[str]:
        """After ``finish``: the tables the writer found identical to the original's.
        Raises Fallback if it failed, or found orders or fills without their parent rows
        (the writer inserted them with foreign keys off: a plain replay would have failed
        there)."""
        try:
            answer = self._pipe.recv_bytes()
        except (OSError, EOFError) as exc:
            raise Fallback(f"the writer is gone ({type(exc).__name__})") from exc
        finally:
            self._process.join()
            shutil.rmtree(self._spool, ignore_errors=True)
        error, same = pickle.loads(answer)
        if error:
            raise Fallback(error)
        found: set[str] = same
        return found

    def abandon(self) -> None:
        self._active = False
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._pipe.close()
        shutil.rmtree(self._spool, ignore_errors=True)


def _dump(value: Any, out: BinaryIO) -> None:
    """Pickle without the memo: rows are flat tuples of str/int/None, shared by nothing,
    and the memo's bookkeeping would triple the cost."""
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(value)


_CONTROL = {
    "BEGIN IMMEDIATE": WriteBehindConnection._begin,
    "SAVEPOINT step": WriteBehindConnection._savepoint,
    "RELEASE step": WriteBehindConnection._release,
    "ROLLBACK TO step; RELEASE step": WriteBehindConnection._rollback_to,
    "COMMIT": WriteBehindConnection._commit,
    "ROLLBACK": WriteBehindConnection._rollback,
}


def open_write_behind(path: Path, original: str | None = None) -> WriteBehindConnection:
    """Create ``path`` (migrated), start its writer and return the handlers' connection.
    With ``original`` (the file being replayed), journal rows equal to the original's are
    copied by the writer from that file (``copy_original_journal``) instead of being sent.
    Raises Fallback if the writer cannot start."""
    setup = db.connect_scratch(path)
    try:
        db.migrate(setup)
    finally:
        setup.close()
    spool = tempfile.mkdtemp(prefix="vanta-replay-spool-")
    ours, theirs = multiprocessing.Pipe(duplex=True)
    process = multiprocessing.get_context("fork").Process(
        target=_writer, args=(str(path), original, spool, theirs, ours),
        name="vanta-replay-writer", daemon=True)
    process.start()
    theirs.close()
    try:
        ready = ours.recv_bytes()  # the writer has opened the file: no recovery under us
    except (OSError, EOFError):
        ready = b""
    if ready not in (_OK, _NO_COPY):
        process.kill()
        process.join()
        ours.close()
        shutil.rmtree(spool, ignore_errors=True)
        raise Fallback("the replay writer did not start")
    conn = WriteBehindConnection(":memory:", flags=apsw.SQLITE_OPEN_READWRITE
                                 | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
    conn.setbusytimeout(BUSY_MS)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA recursive_triggers = ON")
    db.migrate(conn)
    for name in DIVERTED:
        conn.execute(f"DROP TABLE {name}")
    conn.execute("ATTACH DATABASE ? AS w", (str(path),))
    conn.execute("PRAGMA w.synchronous = OFF")
    conn.setup(ours, process, spool, ready == _OK and original is not None)
    return conn


def _writer(path: str, original: str | None, spool: str, pipe: Pipe, parents: Pipe) -> None:
    """The child: write each batch in its own transaction, in order. It holds only its
    own end of the pipe, so it sees the parent go away (end of file) and then exits."""
    parents.close()
    try:
        conn = db.connect_scratch(path)
        conn.setbusytimeout(BUSY_MS)
        conn.execute("PRAGMA foreign_keys = OFF")  # the parent rows arrive at the end
        conn.execute("SELECT count(*) FROM journal").fetchall()  # the WAL index exists now
        copying = original is not None
        if copying:
            try:
                conn.execute("ATTACH DATABASE ? AS original", (db.readonly_uri(str(original)),))
            except apsw.Error:  # e.g. another text encoding: the parent sends every row
                copying = False
        pipe.send_bytes(_OK if copying or original is None else _NO_COPY)
        error = b""
        while True:
            try:
                data = pipe.recv_bytes()
            except (EOFError, OSError):  # the parent is gone
                break
            if data == _SYNC:
                pipe.send_bytes(error or _OK)
                continue
            if data.startswith(_CLOSE):
                same: set[str] = set()
                if not error:
                    try:
                        mine = pickle.loads(data[len(_CLOSE) + 1:])
                        for table in mine:
                            if conn.execute(f"PRAGMA foreign_key_check({table})").fetchone():
                                error = f"{table} rows without their parent rows".encode()
                        if not error and copying:
                            same = db.identical_tables(conn, "main", "original", mine)
                    except Exception as exc:
                        error = f"replay writer: {type(exc).__name__}: {exc}".encode()
                conn.close()
                pipe.send_bytes(pickle.dumps((error.decode(errors="replace"), same)))
                break
            spooled = Path(os.fsdecode(data))
            if error:
                spooled.unlink(missing_ok=True)
                continue
            try:
                batch = pickle.loads(spooled.read_bytes())
                spooled.unlink()
                conn.execute("BEGIN")
                for sql, rows in batch:
                    conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except Exception as exc:  # reported at the next sync: the parent falls back
                error = f"replay writer: {type(exc).__name__}: {exc}".encode()
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        os._exit(0)
