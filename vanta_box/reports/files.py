"""Atomic file writes: a temporary file in the same directory, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A temporary file next to ``path`` that replaces it, synced, if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    with _replacing(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def append_atomic(path: Path, keep_bytes: int, lines: Iterable[str]) -> None:
    """Replace ``path`` by its first ``keep_bytes`` bytes followed by ``lines``, atomically."""
    with _replacing(path) as handle:
        if keep_bytes and path.exists():
            with path.open("rb") as old:
                remaining = keep_bytes
                while remaining > 0:
                    chunk = old.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    handle.write(chunk)
                    remaining -= len(chunk)
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= 10000:
                handle.write("".join(buffer).encode())
                buffer.clear()
        handle.write("".join(buffer).encode())


def last_line(path: Path) -> tuple[bytes, int] | None:
    """The last complete (newline-terminated) line of a file and the byte offset just
    after it; a partial line left by a crash is ignored."""
    if not path.exists():
        return None
    size = path.stat().st_size
    with path.open("rb") as handle:
        pos, data = size, b""
        while True:
            step = min(1 << 16, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
            last_nl = data.rfind(b"\n")
            if last_nl >= 0:
                prev_nl = data.rfind(b"\n", 0, last_nl)
                if prev_nl >= 0 or pos == 0:
                    return data[prev_nl + 1 : last_nl], pos + last_nl + 1
            if pos == 0:
                return None
