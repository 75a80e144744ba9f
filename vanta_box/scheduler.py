"""Which jobs are due at a moment: no business logic, no I/O, no clock of its own.

* a cycle per vault at each slot of its schedule (default: every day at 00:00 UTC); only
  the latest slot is due, never a backlog (old slots would trade at stale marks);
* the fee runs of ended months not billed yet, oldest first;
* overlay expiry, at each overlay's expiry time;
* before anything else, the resumption of a cycle that was interrupted (a crash between
  its commits), at its own time: it finishes what it started, as if never interrupted.
The service runs what is due (``service.schedule``); ``vanta run`` loops on the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from vanta_box.core.timeutil import DAY_US, day_start, parse_period, to_datetime


@dataclass(frozen=True, slots=True)
class Schedule:
    every: int = DAY_US  # microseconds between cycles
    offset: int = 0  # microseconds after 00:00 UTC of the epoch-aligned slot


@dataclass(frozen=True, slots=True)
class VaultClock:
    vault_id: str
    schedule: Schedule
    last_cycle_at: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Job:
    kind: str  # "resume" | "expire" | "cycle" | "fees"
    at: int
    vault_id: str | None = None
    period: str | None = None

    def describe(self) -> str:
        from vanta_box.core.timeutil import fmt_ts

        target = self.vault_id or self.period or ""
        return f"{self.kind} {target} at {fmt_ts(self.at)}".replace("  ", " ")


def latest_slot(schedule: Schedule, now: int) -> int:
    return ((now - schedule.offset) // schedule.every) * schedule.every + schedule.offset


def previous_month(now: int) -> tuple[str, int]:
    """The month that ended most recently at ``now``, and its end."""
    today = to_datetime(now).date()
    first = date(today.year, today.month, 1)
    prev = date(first.year - 1, 12, 1) if first.month == 1 else date(first.year,
                                                                       first.month - 1, 1)
    return f"{prev.year:04d}-{prev.month:02d}", day_start(first)


def due(now: int, vaults: list[VaultClock], expiries: list[int],
        unbilled: list[str], interrupted: Sequence[tuple[str, int]] = ()) -> list[Job]:
    """Jobs due at ``now``, in the order to run them (resumptions, expiry, cycles, fees).
    ``interrupted`` are (vault, time) of cycles a crash left unfinished. ``unbilled``
    are the ended months still to bill: all of them run, oldest first (the loss carried
    forward needs every month, and billing late trades nothing)."""
    jobs = [Job("resume", at, vault_id=v) for v, at in sorted(interrupted, key=lambda c: c[1])]
    jobs += [Job("expire", now)] if any(e <= now for e in expiries) else []
    for v in sorted(vaults, key=lambda v: v.vault_id):
        slot = latest_slot(v.schedule, now)
        if slot >= v.created_at and (v.last_cycle_at is None or v.last_cycle_at < slot):
            jobs.append(Job("cycle", slot, vault_id=v.vault_id))
    last_ended, _end = previous_month(now)
    # months and quarters (SPEC §9 fee periods), by when they end
    jobs += [Job("fees", now, period=p)
             for p in sorted(unbilled, key=lambda p: (parse_period(p)[1], p))
             if parse_period(p)[1] <= parse_period(last_ended)[1]]
    return jobs


def next_wake(now: int, vaults: list[VaultClock], expiries: list[int]) -> int:
    """When something could next become due."""
    candidates = [latest_slot(v.schedule, now) + v.schedule.every for v in vaults]
    candidates += [e for e in expiries if e > now]
    first_next = to_datetime(now).date()
    nxt = date(first_next.year + (first_next.month == 12), first_next.month % 12 + 1, 1)
    candidates.append(day_start(nxt))
    return min(candidates) if candidates else now + DAY_US
