"""What every command shares: the home, --at, opening the engine, writing state files."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
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


def at_option(fn: F) -> F:
    return click.option(
        "--at", "at", metavar="TS", default=None,
        help="Logical time of the command (UTC ISO-8601, e.g. 2026-11-03T00:00:00Z); "
             "default: now.",
    )(fn)


def home_option(fn: F) -> F:
    return click.option("--home", "home_override", metavar="DIR", default=None,
                        help="Home directory (overrides the global --home).")(fn)


def parse_at(at: str | None) -> int:
    from vanta_box.core.clock import SystemClock
    from vanta_box.core.timeutil import TimeError, parse_ts

    if at is None:
        return SystemClock().now()
    from vanta_box.core.errors import InputError

    try:
        return parse_ts(at)
    except TimeError as exc:
        raise InputError(str(exc), field="--at") from None


def progress(message: str) -> None:
    click.echo(f"  … {message}", err=True)


@contextmanager
def engine(ctx: click.Context, *, home_override: str | None = None,
           lock: bool = True) -> Iterator[tuple[Engine, Home]]:
    """Open the home's database (migrating it), under the home's lock."""
    from vanta_box import home as homes
    from vanta_box.service.engine import Engine
    from vanta_box.service.venues import LiveVenues
    from vanta_box.store import db

    target = homes.require(home_of(ctx, home_override))
    with homes.locked(target) if lock else _nothing():
        conn = db.connect(target.db_path)
        try:
            db.migrate(conn)
            yield Engine(conn, LiveVenues(), progress=progress), target
        finally:
            conn.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def write_state(eng: Engine, target: Home, as_of: int) -> None:
    from vanta_box.reports.emit import emit

    emit(eng.conn, target.memory, as_of)


def echo_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
