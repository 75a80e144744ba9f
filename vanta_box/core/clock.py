"""The clock is injected: the only place in the package that reads the wall clock.

Commands take ``--at``; without it they run on the system clock. Everything below the CLI
receives a moment (int microseconds) and never asks for the time itself, so a replay of the
journal is deterministic.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

from vanta_box.core.timeutil import from_datetime


class Clock(Protocol):
    def now(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...  # seconds, not money


class SystemClock:
    def now(self) -> int:
        # Whole seconds: timestamps a user types back (`--at`) stay short and exact.
        return from_datetime(datetime.now(UTC).replace(microsecond=0))

    def sleep(self, seconds: float) -> None:  # seconds, not money
        time.sleep(max(0.0, seconds))

    def precise(self) -> int:
        """Now, to the microsecond (deadlines of waits; never written anywhere)."""
        return from_datetime(datetime.now(UTC))


class FixedClock:
    """A clock for tests and replay: time moves only when someone sleeps."""

    def __init__(self, moment: int) -> None:
        self.moment = moment

    def now(self) -> int:
        return self.moment

    def precise(self) -> int:
        return self.moment

    def sleep(self, seconds: float) -> None:  # seconds, not money
        self.moment += int(seconds * 1_000_000)
