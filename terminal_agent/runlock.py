"""One agent per data directory: an exclusive `flock` on <data_dir>/agent.lock.

The lock file holds the owner's pid so a second start (or a restore) can say who
holds it. The kernel drops the lock when the process dies, even by kill -9.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from terminal_agent.errors import AlreadyRunning

LOCK_NAME = "agent.lock"


class RunLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another loyalty agent (pid {self.holder()}) is running on {self.path.parent}; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
