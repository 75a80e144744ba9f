"""What every command shares: the home, --at, opening the engine, writing state files."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from decimal import Decimal

    from vanta_box.home import Home
    from vanta_box.service.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    home_option: str | None = None


def home_of(ctx: click.Context, override: str | None = None) -> Home:
    from vanta_box import home

    state = ctx.find_object(State)
    return home.resolve(override or (state.home_option if state else None))


_ALLOW_FUTURE = "vanta.allow_future"
FUTURE_SLACK_US = 24 * 3600 * 1_000_000  # SPEC §6: --at at most 24 hours after the clock


def _remember_allow_future(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    ctx.meta[_ALLOW_FUTURE] = value


def at_option(fn: F) -> F:
    """``--at TS`` and its companion ``--allow-future`` (read back by ``parse_at``)."""
    fn = click.option(
        "--allow-future", is_flag=True, expose_value=False, callback=_remember_allow_future,
        help="Accept an --at more than 24 hours after the machine's clock (simulations).",
    )(fn)
    return click.option(
        "--at", "at", metavar="TS", default=None,
        help="Logical time of the command (UTC ISO-8601, e.g. 2026-11-03T00:00:00Z); "
             "default: now.",
    )(fn)


def home_option(fn: F) -> F:
    return click.option("--home", "home_override", metavar="DIR", default=None,
                        help="Home directory (overrides the global --home).")(fn)


def parse_at(at: str | None) -> int:
    """The command's logical time: --at (years 1970 to 9999), else the machine's clock.

    In a command declared with ``at_option``, an --at more than 24 hours after the clock is
    refused unless --allow-future is given: a mistyped year would otherwise date a cycle in
    the future and freeze its vault (nothing may be dated before a vault's last cycle).
    """
    from vanta_box.core.clock import SystemClock
    from vanta_box.core.errors import InputError
    from vanta_box.core.timeutil import TimeError, fmt_ts, parse_input_ts

    now = SystemClock().now()
    if at is None:
        return now
    try:
        ts = parse_input_ts(at)
    except TimeError as exc:
        raise InputError(str(exc), field="--at") from None
    ctx = click.get_current_context(silent=True)
    # a command without at_option (report's own --at only values positions) has no rule
    allowed = ctx is None or ctx.meta.get(_ALLOW_FUTURE, True)
    if ts > now + FUTURE_SLACK_US and not allowed:
        raise InputError(f"{fmt_ts(ts)} is more than 24 hours after the machine's clock "
                         f"({fmt_ts(now)}); pass --allow-future to simulate a future time",
                         field="--at")
    return ts


def parse_decimal(text: str, option: str) -> Decimal:
    """A decimal option or argument, within the input bounds of SPEC §6."""
    from vanta_box.core.errors import InputError
    from vanta_box.core.money import MoneyError, parse_bounded

    try:
        return parse_bounded(text)
    except MoneyError as exc:
        raise InputError(str(exc), field=option) from None


def progress(message: str) -> None:
    """Progress of long work: on a terminal only (silent in pipes and CI)."""
    from vanta_box.cli.console import progress as shown

    shown(message)


@contextmanager
def engine(ctx: click.Context, *, home_override: str | None = None,
           lock: bool = True) -> Iterator[tuple[Engine, Home]]:
    """Open the home's database (migrating it), under the home's lock. Under the lock,
    temporary files left by a killed process are removed first."""
    from vanta_box import home as homes
    from vanta_box.service.engine import Engine
    from vanta_box.service.venues import LiveVenues
    from vanta_box.store import db

    target = homes.require(home_of(ctx, home_override))
    with homes.locked(target) if lock else _nothing():
        if lock:
            _remove_stale_temps(target)
        conn: db.Connection | None = None
        start: int | None = None
        try:
            conn = db.connect(target.db_path)
            db.migrate(conn)
            start = _head_seq(conn)
            from vanta_box.keystore import Keystore

            venues = LiveVenues(Keystore(target.keystore_path))
            eng = Engine(conn, venues, progress=progress)
            if lock:
                _catch_up_state(eng, target)
            yield eng, target
        except (db.FullError, db.DiskIOError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _NO_SPACE:
                raise
            end = _head_seq(conn) if conn is not None and start is not None else start
            raise _disk_full(exc, start, end) from None
        finally:
            if conn is not None:
                conn.close()


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def _head_seq(conn: Any) -> int:
    from vanta_box.store import journal

    return journal.head(conn).seq


def _disk_full(exc: BaseException, start: int | None, end: int | None) -> Exception:
    from vanta_box.core.errors import OutputError, Refused

    if start is None or end == start:
        return Refused(f"the disk is full ({exc}): nothing was changed; free some space and "
                       "run the command again")
    return OutputError(f"the disk is full ({exc}) after journal rows {start + 1}..{end} "
                       "committed: the command stopped there; free some space and run it "
                       "again (an interrupted cycle resumes where it stopped)")


def _catch_up_state(eng: Engine, target: Home) -> None:
    """State files left behind by an earlier command (a full disk, a kill between its
    commit and its files) are written again before this command runs."""
    from vanta_box.core.timeutil import parse_ts
    from vanta_box.reports.emit import written_for
    from vanta_box.reports.html import last_event_time
    from vanta_box.store import journal

    head = journal.head(eng.conn)
    if head.seq == 0 or written_for(target.memory) == str(head):
        return
    last = last_event_time(eng.conn)
    assert last is not None
    write_state(eng, target, parse_ts(last))


def _remove_stale_temps(target: Home) -> None:
    from vanta_box.reports.files import remove_stale_temps

    try:
        remove_stale_temps([target.memory, target.reports])
        remove_stale_temps([target.root], names=("keystore",))
    except OSError:
        pass  # cleaning up is best effort: the command itself must still run


# Outputs a committed command could not write (SPEC §6, exit 3): reported by `main` once
# the command has said what it did.
OUTPUT_FAILURES: list[str] = []


def output_failed(eng: Engine, what: str, exc: OSError) -> None:
    from vanta_box.store import journal

    head = journal.head(eng.conn)
    OUTPUT_FAILURES.append(
        f"committed (journal at {head.seq}:{head.hash[:16]}…), but {what} could not be "
        f"written: {exc.strerror or exc}; the next command writes them again")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def write_state(eng: Engine, target: Home, as_of: int) -> None:
    """The state files of SPEC §3 as of ``as_of``; a failure to write them (a full disk)
    does not undo the command that committed: it is reported, exit 3."""
    from vanta_box.reports.emit import emit

    try:
        emit(eng.conn, target.memory, as_of)
    except OSError as exc:
        output_failed(eng, f"the state files in {target.memory}", exc)


def echo_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
