"""Atomic file writes: a temporary file in the same directory, fsync, rename.

A temporary file is named ``.NAME-PID-XXXXXXXX``: one left behind by a killed process (its
PID gone) is removed by the next command that holds the home's lock
(``remove_stale_temps``)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_TEMP = re.compile(r"^\..+-(\d+)-[a-z0-9_]{8}$")
_OLD_TEMP = re.compile(r"^\..+-[a-z0-9_]{8}$")  # made before the PID was in the name


@contextmanager
def replacing(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A temporary file next to ``path`` that replaces it, synced, if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-{os.getpid()}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    with replacing(path, mode) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process has no write in flight while it cleans up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directories: Iterable[Path], names: Iterable[str] = ()) -> list[Path]:
    """Remove the temporary files that killed writers left in ``directories`` (searched
    recursively); ``names`` limits the search to temporaries of those file names."""
    wanted = tuple(f".{n}-" for n in names)
    removed = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in directory.rglob(".*"):
            name = path.name
            if wanted and not name.startswith(wanted):
                continue
            match = _TEMP.match(name)
            stale = (not _alive(int(match.group(1))) if match
                     else _OLD_TEMP.match(name) is not None)
            if stale and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def append_atomic(path: Path, keep_bytes: int, lines: Iterable[str]) -> None:
    """Replace ``path`` by its first ``keep_bytes`` bytes followed by ``lines``, atomically."""
    with replacing(path) as handle:
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
