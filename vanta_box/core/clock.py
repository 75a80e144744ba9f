"""The clock is injected: the only place in the package that reads the wall clock.

Commands take ``--at``; without it they run on the system clock. Everything below the CLI
receives a moment (int microseconds) and never asks for the time itself, so a replay of the
journal is deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from vanta_box.core.timeutil import from_datetime


class Clock(Protocol):
    def now(self) -> int: ...


class SystemClock:
    def now(self) -> int:
        # Whole seconds: timestamps a user types back (`--at`) stay short and exact.
        return from_datetime(datetime.now(UTC).replace(microsecond=0))


class FixedClock:
    def __init__(self, moment: int) -> None:
        self.moment = moment

    def now(self) -> int:
        return self.moment
