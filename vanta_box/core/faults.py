"""Deterministic crash points for tests of crash safety.

``VANTA_TEST_CRASH_AFTER_COMMIT=N`` makes the process die (``os._exit(137)``, as after
``kill -9``) right after its N-th committed transaction; ``VANTA_TEST_CRASH_AFTER_SEND=N``
right after the N-th order a live venue answered, before its answer is recorded. Tests use
them to stop a command at every boundary in turn, without sleeps; nothing else reads them.
"""

from __future__ import annotations

import os
import threading

_counts = {"VANTA_TEST_CRASH_AFTER_COMMIT": 0, "VANTA_TEST_CRASH_AFTER_SEND": 0}
_lock = threading.Lock()  # orders are sent from the venues' worker threads


def _point(name: str) -> None:
    limit = os.environ.get(name)
    if not limit:
        return
    with _lock:
        _counts[name] += 1
        if _counts[name] >= int(limit):
            os._exit(137)


def committed() -> None:
    """Called after each committed transaction of a command."""
    _point("VANTA_TEST_CRASH_AFTER_COMMIT")


def sent() -> None:
    """Called when a live venue has answered an order, before the answer is recorded."""
    _point("VANTA_TEST_CRASH_AFTER_SEND")
