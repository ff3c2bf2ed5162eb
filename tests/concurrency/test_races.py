"""Interleavings the linearizability checker found, replayed deterministically.

Each test stops a reader exactly where another process's ``delete`` slipped in (by handing
the reader the freshness stamp it took just before), so the window is hit every time, not
once in a few hundred runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from journal import Journal, SessionNotFoundError


def test_a_cached_read_never_answers_with_the_state_from_before_a_delete(root: Path) -> None:
    with Journal(root) as reader, Journal(root) as other:
        reader.create("s")
        reader.add_message("s", "user", "cached")  # the reader's cache: version 2
        other.add_message("s", "user", "newer")  # version 3, by another Journal
        stamp_before_delete = reader._storage.stamp("s")
        other.delete("s")
        # The reader took its freshness stamp just before the delete, then reads the tail.
        storage: Any = reader._storage
        original = storage.stamp
        storage.stamp = lambda sid: stamp_before_delete
        try:
            with pytest.raises(SessionNotFoundError):
                reader.get("s")  # not version 2 (stale), not version 3 (gone)
        finally:
            storage.stamp = original


def test_events_never_end_early_when_the_session_is_deleted_mid_read(root: Path) -> None:
    with Journal(root) as journal, Journal(root) as other:
        journal.create("s")
        for i in range(5):
            journal.add_message("s", "user", f"m{i}")
        journal.compact("s", prune=True)  # events 1..5 archived, 6 in the active log
        stream = journal.events("s")
        first = next(stream)  # reading the archive now
        other.delete("s")
        with pytest.raises(SessionNotFoundError):
            list(stream)
        assert first.seq == 1


def test_events_resume_from_the_archive_when_the_log_is_pruned_mid_read(root: Path) -> None:
    with Journal(root) as journal, Journal(root) as other:
        journal.create("s")
        for i in range(5):
            journal.add_message("s", "user", f"m{i}")
        stream = journal.events("s")
        head = [next(stream) for _ in range(3)]  # reading the active log now
        for i in range(5, 8):
            other.add_message("s", "user", f"m{i}")
        other.compact("s", prune=True)  # the log being read is replaced
        rest = list(stream)
    assert [e.seq for e in head + rest] == list(range(1, 10))


def test_events_never_mix_two_lives_of_a_session(root: Path) -> None:
    # Deleted and created again (with more events) while a reader streams the old history
    # from the archive: when it reaches the active log, that is the new life's; the stream
    # must not go on into it as if it were the same session.
    with Journal(root) as journal, Journal(root) as other:
        journal.create("s")
        for i in range(5):
            journal.add_message("s", "user", f"old {i}")
        journal.compact("s", prune=True)  # 1..5 archived, 6 in the active log
        stream = journal.events("s")
        first = next(stream)
        other.delete("s")
        other.create("s")
        for i in range(8):
            other.add_message("s", "user", f"new {i}")
        with pytest.raises(SessionNotFoundError):
            list(stream)
        assert first.seq == 1
