"""Marks that are missing or stale at a moment (SPEC §4: the mark of a symbol at t is its
newest price with ts <= t). A mark older than the vault's schedule interval is stale:
trading or valuing on it deserves a word to the manager."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vanta_box.core.timeutil import fmt_ts, parse_duration
from vanta_box.store import repo
from vanta_box.store.db import Connection


@dataclass(frozen=True, slots=True)
class MarkProblem:
    symbol: str
    newest: int | None  # time of the newest price at or before the moment; None: none

    def describe(self) -> str:
        if self.newest is None:
            return f"{self.symbol} (no price yet)"
        return f"{self.symbol} (newest price {fmt_ts(self.newest)})"


def interval(vault_config: dict[str, object]) -> int:
    schedule = vault_config.get("schedule")
    every = schedule.get("every") if isinstance(schedule, dict) else None
    return parse_duration(str(every or "1d"))


def price_times(conn: Connection, at: int, symbols: Iterable[str]) -> dict[str, int]:
    """The time of each symbol's newest price at or before ``at`` (absent: none)."""
    times: dict[str, int] = {}
    repo.marks_at(conn, at, symbols, times)
    return times


def problems(newest: dict[str, int], at: int, symbols: Iterable[str],
             max_age: int) -> list[MarkProblem]:
    """Symbols with no price at or before ``at`` (none in ``newest``, the times of their
    newest prices), or whose newest is older than ``max_age`` µs, in symbol order."""
    out = []
    for symbol in sorted(set(symbols)):
        ts = newest.get(symbol)
        if ts is None or at - ts > max_age:
            out.append(MarkProblem(symbol, ts))
    return out


def summary(found: list[MarkProblem], max_age: int) -> str:
    from vanta_box.core.timeutil import US

    missing = [p.symbol for p in found if p.newest is None]
    stale = [p.describe() for p in found if p.newest is not None]
    parts = []
    if stale:
        hours = max_age // (3600 * US)
        parts.append(f"stale marks (older than {hours}h): {', '.join(stale)}")
    if missing:
        parts.append(f"no mark for {', '.join(missing)} (valued at the last fill price)")
    return "; ".join(parts)
