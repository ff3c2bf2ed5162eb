"""Worker functions run in child processes by the concurrency and crash tests, and log checks.

They live at module level in an importable module because the ``spawn`` start method pickles
the target by name and imports it afresh in the child. A worker reports failure through its
exit code (an uncaught exception exits 1 and prints the traceback to the captured stderr), so
the parent always asserts ``exitcode == 0`` for workers that are not killed on purpose.

Message contents encode who wrote them, ``"<writer>.<thread>:<index>"``, so the parent can
check from the log alone that nothing was lost, duplicated or reordered.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from journal import Created, Event, Journal, MessageAdded, SessionExistsError

__all__ = [
    "BARRIER_TIMEOUT",
    "append_worker",
    "check_appends",
    "content_for",
    "crash_worker",
    "create_race_worker",
    "parse_content",
    "read_log",
    "read_your_writes_worker",
    "snapshot_churn_worker",
]

# Long enough for a slow CI machine to start every process; only turns a hang into a failure.
BARRIER_TIMEOUT = 60.0


def content_for(writer: str, thread: int, index: int) -> str:
    """The content of message ``index`` written by thread ``thread`` of ``writer``."""
    return f"{writer}.{thread}:{index}"


def parse_content(content: str) -> tuple[str, int]:
    """Split a content made by :func:`content_for` into (``"<writer>.<thread>"``, index)."""
    who, _, index = content.rpartition(":")
    return who, int(index)


def _run_threads(threads: int, target: Callable[[int], None]) -> None:
    """Run ``target(t)`` in ``threads`` threads and re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(t: int) -> None:
        try:
            target(t)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]


def append_worker(
    root: str, session_id: str, fsync: str, writer: str, threads: int, count: int, start: Barrier
) -> None:
    """Append ``count`` messages from each of ``threads`` threads, all released by ``start``."""
    with Journal(root, fsync=fsync) as journal:
        journal.get(session_id)  # warm the cache so the appends race on catch-up, too
        start.wait(BARRIER_TIMEOUT)

        def append(t: int) -> None:
            last = 0
            for i in range(count):
                message = journal.add_message(
                    session_id, "user", content_for(writer, t, i), actor=f"{writer}.{t}"
                )
                assert message.seq > last, "a thread's own appends got decreasing seqs"
                last = message.seq

        _run_threads(threads, append)


def read_your_writes_worker(root: str, session_id: str, commands: Queue[Any], results: Queue[Any]) -> None:
    """For each content received, append it and report ``(seq, id, content)``; stop on None."""
    with Journal(root) as journal:
        journal.get(session_id)  # a cached view that other processes' appends make stale
        while True:
            content = commands.get(timeout=BARRIER_TIMEOUT)
            if content is None:
                return
            message = journal.add_message(session_id, "assistant", content)
            results.put((message.seq, message.id, message.content))


def snapshot_churn_worker(root: str, session_id: str, started: Any, stop: Any) -> None:
    """Append, and every 3rd write edit the first message, with a snapshot after every 10
    events and small chunks: snapshots are replaced and chunks removed as fast as this
    process can, for readers in other processes to race."""
    from journal.core import snapshot

    snapshot.CHUNK_BYTES = 4096
    with Journal(root, snapshot_every=10, snapshot_bytes=0, fsync="never") as journal:
        n = 0
        while not stop.is_set():
            journal.add_message(session_id, "user", f"{'x' * 200} {n}")
            n += 1
            if n % 3 == 0:
                first = journal.get(session_id).messages_view[0]
                journal.edit_message(session_id, first.id, f"edited at {n}")
            if n == 20:
                started.set()


def create_race_worker(root: str, session_ids: list[str], start: Barrier, results: Queue[Any]) -> None:
    """Race ``create`` of each id with the other workers; report ``(id, pid, None or error)``."""
    with Journal(root) as journal:
        for session_id in session_ids:
            start.wait(BARRIER_TIMEOUT)
            try:
                journal.create(session_id)
            except SessionExistsError as exc:
                results.put((session_id, os.getpid(), exc))  # errors pickle across processes
            else:
                results.put((session_id, os.getpid(), None))


def crash_worker(
    root: str, session_id: str, fsync: str, writer: str, threads: int, ack_path: str, start: Barrier
) -> None:
    """Append forever from ``threads`` threads until killed, acknowledging each append.

    Each acknowledgement is one ``"<seq> <content>\\n"`` line written to ``ack_path`` with a
    single unbuffered ``os.write`` after ``add_message`` returned, so the parent may treat every
    complete ack line as a promise the journal made.
    """
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    journal = Journal(root, fsync=fsync)
    journal.get(session_id)
    start.wait(BARRIER_TIMEOUT)

    def append(t: int) -> None:
        i = 0
        while True:
            content = content_for(writer, t, i)
            message = journal.add_message(session_id, "user", content)
            os.write(fd, f"{message.seq} {content}\n".encode())
            i += 1

    _run_threads(threads, append)


def read_log(root: str | os.PathLike[str], session_id: str) -> list[Event]:
    """Every event of the session, read by a fresh Journal (no cache from the writers)."""
    with Journal(root) as fresh:
        return list(fresh.events(session_id))


def check_appends(
    root: str | os.PathLike[str], session_id: str, expected: Mapping[str, int]
) -> list[MessageAdded]:
    """Assert the log holds exactly the appends of each writer thread, each in its own order.

    Returns the messages (seqs 2..N). The oracle: seqs are 1..N with no gap or repeat, seq 1
    is ``created`` and the rest are messages, and the indices of each ``"<writer>.<thread>"``
    are exactly ``0..count-1`` in log order (so nothing was lost, duplicated or reordered
    within a thread), with no other writer.
    """
    events = read_log(root, session_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "seqs are not 1..N"
    assert isinstance(events[0], Created)
    messages = [e for e in events[1:] if isinstance(e, MessageAdded)]
    assert len(messages) == len(events) - 1, "an event other than created or message_added"
    seen: dict[str, list[int]] = {}
    for message in messages:
        who, index = parse_content(message.content)
        seen.setdefault(who, []).append(index)
    assert seen == {who: list(range(count)) for who, count in expected.items() if count}
    assert len({m.message_id for m in messages}) == len(messages), "two messages share an id"
    return messages


def acknowledged(path: Path) -> list[tuple[int, str]]:
    """The complete ``"<seq> <content>"`` lines of an ack file (a torn last line is no promise)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    complete = data[: data.rfind(b"\n") + 1].decode()
    pairs = []
    for line in complete.splitlines():
        seq, content = line.split(" ", 1)
        pairs.append((int(seq), content))
    return pairs
