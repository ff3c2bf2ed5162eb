"""Journal factories for ``run_workers`` (module level: spawned workers import them).

``unlocked_journal`` is the deliberately broken journal the checker must catch: it skips the
cross-process writer lock, and holds the window between catching up with the log and
appending open a little longer, as a slow disk or a descheduled process would. The exiting and
killed factories are workers that die before reporting anything.
"""

from __future__ import annotations

import os
import signal
import time

from journal import Journal
from journal.backends.files import locking, transaction
from journal.core.head import Head
from journal.engine.storage import Batch


def durable_journal(root: str) -> Journal:
    return Journal(root, fsync="never", snapshot_every=7, archive_after=20)


def unlocked_journal(root: str) -> Journal:
    def no_lock(self: locking.SessionLock) -> None:
        return None

    locking.SessionLock.acquire = no_lock  # type: ignore[method-assign]
    locking.SessionLock.release = no_lock  # type: ignore[method-assign]
    original = transaction.FileTransaction.read

    def slow_read(self: transaction.FileTransaction, after: Head | None) -> Batch:
        batch = original(self, after)
        time.sleep(0.002)  # widen the window between reading the log and appending to it
        return batch

    transaction.FileTransaction.read = slow_read  # type: ignore[method-assign]
    return Journal(root, fsync="never")


def exiting_journal(code: int) -> Journal:
    """A factory whose worker process ends at once with exit ``code``, reporting nothing."""
    os._exit(code)


def killed_journal() -> Journal:
    """A factory whose worker process is killed by SIGKILL at once, reporting nothing."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("SIGKILL cannot be caught")
