"""The session writer lock: exclusion between holders and a timeout that is our own error."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal import Journal, LockTimeoutError
from journal.backends.files.layout import Layout
from journal.backends.files.locking import SessionLock


def test_a_held_lock_makes_writes_time_out_without_writing(root: Path) -> None:
    with Journal(root, lock_timeout=0.05) as j:
        j.create("s1")
        log = Layout(root).log_path("s1")
        before = log.read_bytes()
        # A second descriptor on the same lock file: flock treats it as another holder, exactly
        # as it would treat another process.
        other = SessionLock(Layout(root).lock_path("s1"), timeout=0)
        other.acquire()
        try:
            with pytest.raises(LockTimeoutError) as info:
                j.add_message("s1", "user", "blocked")
            assert isinstance(info.value, TimeoutError)
            assert info.value.path == str(Layout(root).lock_path("s1"))
            assert log.read_bytes() == before
        finally:
            other.release()
            other.close()
        assert j.add_message("s1", "user", "free again").seq == 2


def test_lock_is_exclusive_and_reusable(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "x.lock"
    first = SessionLock(path, timeout=0)
    second = SessionLock(path, timeout=0.01)
    with first, pytest.raises(LockTimeoutError):
        second.acquire()
    third = SessionLock(path, timeout=0)
    with second, pytest.raises(LockTimeoutError):
        third.acquire()
    third.close()
    with first:
        pass
    first.close()
    second.close()
    assert path.stat().st_size == 0  # the lock file never holds data


def test_reads_do_not_need_the_lock(root: Path) -> None:
    with Journal(root, lock_timeout=0) as j:
        j.create("s1")
        j.add_message("s1", "user", "x")
        holder = SessionLock(Layout(root).lock_path("s1"), timeout=0)
        with holder, Journal(root) as reader:
            assert reader.get("s1").version == 2
            assert [e.seq for e in reader.events("s1")] == [1, 2]
        holder.close()
