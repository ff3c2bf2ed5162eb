"""Child-process workers of the contract suite: each opens its own Journal from the URL.

They live at module level in an importable module because the ``spawn`` start method imports
the target afresh in the child; a Journal (and its connection pool) is never inherited. A worker
that is not killed on purpose reports failure through its exit code.
"""

from __future__ import annotations

import threading
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from journal import Journal
from tests.helpers_proc import BARRIER_TIMEOUT, content_for

__all__ = ["append_worker", "linearizable_journal", "read_your_writes_worker"]


def linearizable_journal(url: str) -> Journal:
    """The Journal ``run_workers`` uses: snapshots and pruning cross its writes often."""
    return Journal.from_url(url, snapshot_every=7, archive_after=20)


def append_worker(url: str, session_id: str, writer: str, threads: int, count: int, start: Barrier) -> None:
    """Append ``count`` messages from each of ``threads`` threads, all released by ``start``."""
    errors: list[BaseException] = []
    with Journal.from_url(url) as journal:
        journal.get(session_id)  # a cached view that the other processes' appends make stale
        start.wait(BARRIER_TIMEOUT)

        def append(t: int) -> None:
            try:
                last = 0
                for i in range(count):
                    seq = journal.add_message(session_id, "user", content_for(writer, t, i)).seq
                    assert seq > last, "a thread's own appends got decreasing seqs"
                    last = seq
            except BaseException as exc:
                errors.append(exc)

        crew = [threading.Thread(target=append, args=(t,)) for t in range(threads)]
        for thread in crew:
            thread.start()
        for thread in crew:
            thread.join()
    if errors:
        raise errors[0]


def read_your_writes_worker(url: str, session_id: str, commands: Queue[Any], results: Queue[Any]) -> None:
    """For each content received, append it and report ``(seq, id, content)``; stop on None."""
    with Journal.from_url(url) as journal:
        journal.get(session_id)
        while True:
            content = commands.get(timeout=BARRIER_TIMEOUT)
            if content is None:
                return
            message = journal.add_message(session_id, "assistant", content)
            results.put((message.seq, message.id, message.content))
