"""The cyclic garbage collector, paused while a command runs.

A cycle of thousands of followers allocates millions of short-lived tuples, and keeps
hundreds of thousands alive until it ends (orders, fills, books). CPython's collector
then scans every live object again and again (~15 % of a large cycle or replay), although
the engine's data creates no reference cycles worth collecting mid-command: reference
counting frees it. The collector is paused for the command and resumed afterwards (the
little cyclic garbage a command may leave, e.g. a caught exception's frames, is collected
then, as usual).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
