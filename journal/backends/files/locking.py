"""The cross-process writer lock of one session.

Each session has its own lock file under ``locks/``, separate from its data (locking the data
file would tie the lock to a file that compaction or deletion replaces). The lock is
``filelock``'s native primitive (``flock`` on Unix) applied to a descriptor we keep open:
opening, creating and closing a lock file on every append costs more than the append itself,
so a :class:`SessionLock` opens its file once and only locks and unlocks it afterwards.

Not protected against: file systems without working ``flock`` (some network file systems), and
processes that write to the journal's files without going through journal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import lock_descriptor, unlock_descriptor

from journal.backends.files.fsio import Folder
from journal.errors import LockTimeoutError, StorageError

__all__ = ["SessionLock"]

# Waiting is a poll (flock has no timeout); start short so an uncontended hand-over between two
# appenders costs microseconds, and back off so a long wait does not burn a core.
_FIRST_SLEEP = 0.000_05
_MAX_SLEEP = 0.005


class SessionLock:
    """An exclusive, non-reentrant lock shared by every process using one session.

    Not thread-safe by itself: callers serialise threads first (the journal holds a per-session
    thread lock around it), because ``flock`` treats all threads of a process as one holder.

    Args:
        path: the lock file (named in errors).
        timeout: seconds ``acquire`` waits (negative: for ever).
        opener: opens (creating if needed) the lock file and returns its descriptor; the
            storage passes one that opens it relative to its held ``locks/`` folder. Without
            one, ``path``'s folder is created if missing and taken as given.
    """

    def __init__(self, path: Path, timeout: float, opener: Callable[[], int] | None = None) -> None:
        self.path = path
        self.timeout = timeout
        self._opener = opener or self._open_alone
        self._fd: int | None = None

    def _open_alone(self) -> int:
        folder = Folder.root(self.path.parent, create=True)
        assert folder is not None
        with folder:
            return folder.open(self.path.name, os.O_RDWR | os.O_CREAT)

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = self._opener()
            except OSError as exc:
                raise StorageError.wrap("open lock", str(self.path), exc) from None
        return self._fd

    def acquire(self) -> None:
        """Block until this process holds the lock.

        Raises:
            LockTimeoutError: not acquired within ``timeout`` seconds (negative: wait forever).
        """
        fd = self._open() if self._fd is None else self._fd
        if lock_descriptor(fd, blocking=False):
            return
        deadline = None if self.timeout < 0 else time.monotonic() + self.timeout
        sleep = _FIRST_SLEEP
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeoutError(str(self.path), self.timeout)
            time.sleep(sleep)
            sleep = min(sleep * 2, _MAX_SLEEP)
            if lock_descriptor(fd, blocking=False):
                return

    def release(self) -> None:
        """Release the lock (the descriptor stays open for the next acquire)."""
        if self._fd is not None:
            unlock_descriptor(self._fd)

    def close(self) -> None:
        """Close the descriptor, which also releases the lock if held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
