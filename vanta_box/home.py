"""The home directory: vanta.db, memory/, reports/, keystore, and the lock.

Chosen by ``--home DIR``, else ``VANTA_HOME``, else the platform's user data directory.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vanta_box.core.errors import HomeMissing, Refused

HOME_ENV = "VANTA_HOME"
LOCK_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "vanta.db"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def keystore_path(self) -> Path:
        return self.root / "keystore"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    def exists(self) -> bool:
        return self.db_path.is_file()


def resolve(option: str | os.PathLike[str] | None) -> Home:
    if option:
        return Home(Path(option).expanduser())
    env = os.environ.get(HOME_ENV)
    if env:
        return Home(Path(env).expanduser())
    from platformdirs import user_data_dir

    return Home(Path(user_data_dir("vanta-box", appauthor=False)))


def require(home: Home) -> Home:
    if not home.exists():
        raise HomeMissing(
            f"no vanta home at {home.root} (vanta.db not found): create it with `vanta init`, "
            f"or point --home / {HOME_ENV} at an existing one")
    return home


@contextmanager
def locked(home: Home, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:  # seconds, not money
    """Hold the home's exclusive lock: one process trades a home at a time."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: SQLite's own locking still applies
        yield
        return
    home.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(home.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    raise Refused(f"another vanta process (pid {holder or '?'}) is working on "
                                  f"{home.root}; try again when it has finished") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
