"""A deterministic crash point for tests of crash safety.

``VANTA_TEST_CRASH_AFTER_COMMIT=N`` makes the process die (``os._exit(137)``, as after
``kill -9``) right after its N-th committed transaction. Tests use it to stop a command at
every commit boundary in turn, without sleeps; nothing else reads it.
"""

from __future__ import annotations

import os

_ENV = "VANTA_TEST_CRASH_AFTER_COMMIT"
_commits = [0]


def committed() -> None:
    """Called after each committed transaction of a command."""
    limit = os.environ.get(_ENV)
    if not limit:
        return
    _commits[0] += 1
    if _commits[0] >= int(limit):
        os._exit(137)
