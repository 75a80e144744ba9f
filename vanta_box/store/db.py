"""One connection factory and the migration registry.

Migrations are the files ``sql/NNN_name.sql``, applied in order, each in one transaction
together with its bookkeeping row in ``schema_migrations`` (version, name, SHA-256 of the
file). A released migration is never edited: opening a database whose recorded checksum
differs from the file is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import apsw

from vanta_box.core.errors import CheckFailed, InputError, Refused
from vanta_box.resources import sql_dir

BUSY_TIMEOUT_MS = 10_000

Connection = apsw.Connection
SQLError = apsw.Error
FullError = apsw.FullError  # SQLITE_FULL: the disk (or the database's limit) is full
DiskIOError = apsw.IOError  # SQLITE_IOERR: e.g. no room for the WAL or its index
ConstraintError = apsw.ConstraintError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    found = []
    for path in sorted(sql_dir().glob("[0-9][0-9][0-9]_*.sql")):
        found.append(Migration(int(path.name[:3]), path.stem, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 001, 002, ... without gaps: {versions}")
    return found


def connect(path: Path | str) -> apsw.Connection:
    """Open (creating if needed) a read-write database: WAL, foreign keys, busy timeout."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    # A cycle with many followers inserts into several indexes at random keys: a bigger
    # page cache (64 MiB) keeps their interior pages in memory.
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute("PRAGMA foreign_keys = ON")
    # REPLACE must not bypass DELETE triggers by accident in our own code either.
    conn.execute("PRAGMA recursive_triggers = ON")
    return conn


def connect_scratch(path: Path | str) -> apsw.Connection:
    """A database being rebuilt (replay): no durability until it is complete, so no
    fsync (a crash means rebuilding it again)."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE
                           | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -131072")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA recursive_triggers = ON")
    return conn


def connect_memory() -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA recursive_triggers = ON")
    return conn


@contextmanager
def friendly_errors(path: Path | str) -> Iterator[None]:
    """SQLite's own failures, said in words a user can act on."""
    try:
        yield
    except apsw.NotADBError:
        raise InputError(f"{path}: not a SQLite database file") from None
    except apsw.CorruptError as exc:
        raise CheckFailed(f"{path}: the database is damaged ({exc})") from None
    except apsw.CantOpenError:
        raise InputError(f"{path}: cannot open it (check the path and the permissions)"
                         ) from None


def require_journal(conn: apsw.Connection, path: Path | str) -> None:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'"
                       ).fetchone()
    if row is None:
        raise InputError(f"{path}: not a vanta-box database (it has no journal table)")


@contextmanager
def open_readonly(path: Path | str, *, with_wal: bool = True) -> Iterator[apsw.Connection]:
    """Open a database without changing a byte of it, its -wal or its -shm.

    With ``with_wal`` a WAL beside it, if any, is copied with the file to a private
    temporary directory (refused above ``wal_limit``, or when it is not a regular file)
    and the copy is read. Without it, or when there is no WAL, the main file alone is
    opened ``immutable``: SQLite takes no lock, writes nothing and does not read a WAL
    beside it. The auditor's commands read the main file alone unless --with-wal: a WAL
    found beside a file handed over is not part of it."""
    with friendly_errors(path), _open_readonly(Path(path), with_wal) as conn:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield conn


# A WAL is only copied up to this size, or twice the database file's if that is more.
WAL_COPY_MIN_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WalState:
    """What lies beside a database file as its ``-wal``."""

    path: Path
    kind: str  # "none", "empty", "wal" (a regular file with content) or "other"
    size: int = 0


def wal_beside(path: Path | str) -> WalState:
    wal = Path(str(path) + "-wal")
    try:
        found = wal.lstat()
    except FileNotFoundError:
        return WalState(wal, "none")
    except OSError:
        return WalState(wal, "other")
    if not stat.S_ISREG(found.st_mode):
        return WalState(wal, "other")
    return WalState(wal, "wal" if found.st_size else "empty", found.st_size)


def wal_note(path: Path | str, with_wal: bool) -> str:
    """What ``open_readonly(path, with_wal=...)`` reads, in words ("" when the file has no
    WAL and none was asked for)."""
    wal = wal_beside(path)
    if wal.kind == "wal" and with_wal:
        return f"read with its WAL, {wal.size:,} bytes, as --with-wal asks"
    if wal.kind == "wal":
        return (f"the main file alone: the WAL beside it ({wal.path.name}, {wal.size:,} "
                "bytes) was not read; --with-wal reads it")
    if wal.kind == "other":  # (with --with-wal, opening it is refused)
        return "" if with_wal else (f"the main file alone: {wal.path.name} beside it is "
                                    "not a regular file")
    return "the file has no WAL to read" if with_wal else ""


def wal_limit(database: Path) -> int:
    return max(WAL_COPY_MIN_LIMIT, 2 * file_size(database))


# How each file opened by ``open_readonly`` is opened again by another reader (forked
# helpers, ATTACH): the same view of it, WAL or not.
_REOPEN: dict[str, str] = {}


@contextmanager
def _open_readonly(source: Path, with_wal: bool) -> Iterator[apsw.Connection]:
    if not source.is_file():
        raise Refused(f"{source}: no such database file")
    wal = wal_beside(source)
    if with_wal and wal.kind == "other":
        raise InputError(f"{wal.path}: not a regular file, so not a WAL: it cannot be read "
                         "(without --with-wal the main file is read alone)", field="--with-wal")
    if with_wal and wal.kind == "wal":
        with _private_copy(source, wal) as copy:
            conn = apsw.Connection(str(copy))
            with _reopened_as(conn, "file:" + _uri_path(copy) + "?mode=ro"):
                conn.execute("PRAGMA query_only = ON")
                yield conn
        return
    uri = "file:" + _uri_path(source) + "?immutable=1"
    conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    with _reopened_as(conn, uri):
        conn.execute("PRAGMA query_only = ON")
        yield conn


@contextmanager
def _reopened_as(conn: apsw.Connection, uri: str) -> Iterator[None]:
    _REOPEN[conn.filename] = uri
    try:
        yield
    finally:
        _REOPEN.pop(conn.filename, None)
        conn.close()


@contextmanager
def _private_copy(source: Path, wal: WalState) -> Iterator[Path]:
    """The file and at most ``wal_limit`` bytes of its WAL, copied where no one else
    writes."""
    limit = wal_limit(source)
    if wal.size > limit:
        raise InputError(f"{wal.path}: {wal.size:,} bytes, more than the {limit:,} a WAL "
                         f"beside a {file_size(source):,}-byte database may have here: refused "
                         "(without --with-wal the main file is read alone)", field="--with-wal")
    with tempfile.TemporaryDirectory(prefix="vanta-ro-") as tmp:
        copy = Path(tmp) / "copy.db"
        shutil.copyfile(source, copy)
        with wal.path.open("rb") as src, open(str(copy) + "-wal", "wb") as dst:
            _copy_bytes(src, dst, wal.size)  # the size seen: a WAL growing meanwhile stops
        yield copy


def _copy_bytes(src: BinaryIO, dst: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = src.read(min(count, 1 << 20))
        if not chunk:
            return
        dst.write(chunk)
        count -= len(chunk)


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.resolve()), safe="/")


def migrate(conn: apsw.Connection) -> int:
    """Apply pending migrations; return how many were applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL) STRICT"
    )
    applied = {v: s for v, s in conn.execute("SELECT version, sha256 FROM schema_migrations")}
    count = 0
    for migration in migrations():
        recorded = applied.get(migration.version)
        if recorded is not None:
            if recorded != migration.sha256:
                raise CheckFailed(
                    f"migration {migration.name} differs from the one applied to this "
                    "database (a released migration must never be edited)"
                )
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, sha256) VALUES (?, ?, ?)",
                (migration.version, migration.name, migration.sha256),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        count += 1
    return count


def schema_of(conn: apsw.Connection) -> list[tuple[str, str, str, str]]:
    """The schema as (type, name, table, sql), for comparing a file with the migrations."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    )
    return [(t, n, tb, " ".join(s.split())) for t, n, tb, s in rows]


def expected_schema() -> list[tuple[str, str, str, str]]:
    conn = connect_memory()
    try:
        migrate(conn)
        return schema_of(conn)
    finally:
        conn.close()


@contextmanager
def transaction(conn: apsw.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def table_order(conn: apsw.Connection, table: str) -> tuple[list[str], str]:
    """A table's columns and its primary-key order (every column when it has none)."""
    info = list(conn.execute(f'PRAGMA table_info("{table}")'))
    columns = [row[1] for row in info]
    keys = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
    return columns, ", ".join(keys) if keys else ", ".join(columns)


def identical_tables(conn: apsw.Connection, schema: str, original: str,
                     tables: list[str]) -> set[str]:
    """The tables of ``schema`` that hold exactly the rows of the same tables of the
    attached ``original``, proven by SQLite in C: the same columns, the same number of
    rows and no row of one missing from the other (every table has a primary key, so rows
    are distinct; STRICT typed columns, binary collation)."""
    same = set()
    for table in tables:
        columns = [r[1] for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]
        if columns != [r[1] for r in conn.execute(
                f'PRAGMA {original}.table_info("{table}")')]:
            continue
        counts = conn.execute(f'SELECT (SELECT count(*) FROM {schema}."{table}"),'
                              f' (SELECT count(*) FROM {original}."{table}")').fetchone()
        if counts is None or counts[0] != counts[1]:
            continue
        extra = conn.execute(f'SELECT EXISTS (SELECT * FROM {schema}."{table}"'
                             f' EXCEPT SELECT * FROM {original}."{table}")').fetchone()
        if extra == (0,):
            same.add(table)
    return same


def readonly_uri(filename: str) -> str:
    """A URI opening a file this process tree already has open read-only
    (``open_readonly``'s immutable original, or its private copy with a WAL) again, with
    the same view of it. Any other file is one this process has open itself (a home's
    database): read-only, with its WAL when it has one."""
    known = _REOPEN.get(filename)
    if known:
        return known
    wal = Path(filename + "-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size > 0 else "immutable=1"
    return "file:" + _uri_path(Path(filename)) + "?" + mode


def open_again_readonly(filename: str) -> apsw.Connection:
    """Open such a file again, for another reader."""
    return apsw.Connection(readonly_uri(filename),
                           flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def file_size(path: Path) -> int:
    return os.path.getsize(path) if path.exists() else 0
