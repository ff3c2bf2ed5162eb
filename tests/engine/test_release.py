"""A Journal dropped without ``close()`` releases what it holds once it is garbage collected.

Oracles: the process's own descriptor table (``/proc/self/fd``), the fsync policy's thread and
its pending fsyncs, and on PostgreSQL the server's ``pg_stat_activity`` rows for this test's
``application_name``. Each count must come back to where it started.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

import journal.backends.files.storage
from journal import Journal, JournalClosedError

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")

DROPPED = 300
HANG_GUARD = 30.0  # only turns a hang into a failure, never a speed assertion


def open_descriptors() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def write_through(journal: Journal, i: int) -> None:
    """Open what a writer opens: a few sessions' lock files and logs (and for "interval", the
    flusher thread)."""
    sid = f"s{i % 3}"
    journal.get_or_create(sid)
    journal.add_message(sid, "user", f"m{i}")
    assert journal.get(sid).messages[-1].content == f"m{i}"


@needs_proc
@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_dropped_journals_release_their_descriptors(root: Path, fsync: str) -> None:
    with Journal(root, fsync=fsync) as warm:  # one-time work (imports, folders) happens here
        write_through(warm, 0)
    before = open_descriptors()
    threads = threading.active_count()
    for i in range(DROPPED):
        write_through(Journal(root, fsync=fsync), i)
    assert open_descriptors() == before
    assert threading.active_count() == threads
    with Journal(root) as journal:  # every write landed
        assert sum(len(journal.get(f"s{k}").messages) for k in range(3)) == DROPPED + 1


def test_a_dropped_interval_journal_flushes_its_pending_fsync(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = journal.backends.files.storage._sync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(journal.backends.files.storage, "_sync", recording)
    dropped = Journal(root, fsync="interval")
    dropped.create("s")
    flusher = dropped._storage._flusher  # type: ignore[attr-defined]
    assert isinstance(flusher, threading.Thread)
    log = dropped._storage.location("s")
    synced.clear()  # the flusher may already have run once: only the finalizer's flush counts
    del dropped
    gc.collect()
    # Dropping it stopped the flusher (it no longer runs for ever) and fsynced what was pending.
    assert not flusher.is_alive()
    assert log in synced


def test_the_finalizer_does_not_keep_the_journal_alive_and_close_stays_idempotent(root: Path) -> None:
    journal = Journal(root, fsync="interval")
    journal.create("s")
    ref = weakref.ref(journal)
    journal.close()
    journal.close()
    with pytest.raises(JournalClosedError):
        journal.get("s")
    del journal
    gc.collect()
    assert ref() is None
    dropped = Journal(root)
    dropped.create("t")
    ref = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert ref() is None


def test_events_keep_their_journal_open_while_iterated(store_url: str) -> None:
    journal = Journal(store_url)
    journal.create("s")
    for i in range(5):
        journal.add_message("s", "user", f"m{i}")
    release = journal._release  # the finalizer: alive until it has closed the storage
    events = journal.events("s")
    first = next(events)
    del journal
    gc.collect()
    # The iterator holds the Journal: its finalizer has not closed the storage under it.
    assert release.alive
    assert [first.type, *(e.type for e in events)] == ["created"] + ["message_added"] * 5
    del events
    gc.collect()
    assert not release.alive


# -- PostgreSQL: the connection pools of dropped Journals ----------------------------------


def wait_for(value: Callable[[], int], want: int) -> int:
    """Poll ``value`` until it is ``want`` (the server ends a backend shortly after its client
    closed the connection); the last value seen after the hang guard otherwise."""
    deadline = time.monotonic() + HANG_GUARD
    seen = value()
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = value()
    return seen


def test_dropped_postgres_journals_close_their_connections(pg_url: str) -> None:
    import psycopg

    name = f"jt_release_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}&application_name={name}"

    def connections() -> int:
        gc.collect()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name]
            ).fetchone()
        assert row is not None
        return int(row[0])

    with Journal(url) as journal:
        write_through(journal, 0)
        assert connections() >= 1  # the oracle sees this journal's pool
    assert wait_for(connections, 0) == 0
    for i in range(20):
        write_through(Journal(url), i)
    assert wait_for(connections, 0) == 0
