"""The cyclic garbage collector, relaxed while a command runs.

A cycle of thousands of followers allocates millions of short-lived tuples. CPython's
default thresholds then run full collections over every live object again and again
(~15 % of a large cycle or replay), although the engine's data creates no reference
cycles worth collecting mid-command. While a command runs, objects that existed before it
are frozen (never scanned) and the young generation is collected less often; the previous
settings come back afterwards. Reference counting still frees almost everything at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

RELAXED = (50_000, 50, 1_000)


@contextmanager
def relaxed() -> Iterator[None]:
    previous = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(*RELAXED)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if not frozen:
            gc.unfreeze()
