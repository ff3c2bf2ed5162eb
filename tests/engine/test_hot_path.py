"""What one append and one cold read cost, counted (never timed): the work itself.

Oracle for the append: cProfile's own accounting (``Profile.getstats``: one entry per code
object, so two functions with the same name are never merged). A *Python function call* is a
call of a function written in Python (an entry with a code object); calls of C functions
(``len``, ``os.write``, msgspec, hashlib) are counted separately and reported, not bounded.

Oracle for the cold read: every ``pread``/``read`` of the log file, recorded by offset and
length, and every line decoded, counted at the decoder the codec uses.
"""

from __future__ import annotations

import cProfile
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import journal.core.codec
from journal import Journal

SID = "hot"
APPENDS = 1000
MAX_PYTHON_CALLS = 50


def calls_per_append(journal: Journal) -> tuple[float, float]:
    """Python function calls and all calls per warm ``add_message``, over ``APPENDS``."""
    profile = cProfile.Profile()
    profile.enable()
    for i in range(APPENDS):
        journal.add_message(SID, "user", f"message {i}")
    profile.disable()
    entries = profile.getstats()
    python = sum(e.callcount for e in entries if not isinstance(e.code, str))
    every = sum(e.callcount for e in entries)
    return python / APPENDS, every / APPENDS


def test_a_warm_append_makes_at_most_50_python_function_calls(tmp_path: Path) -> None:
    # Snapshot writes excluded (both policies off); the session is warm: cached, log open.
    with Journal(tmp_path / "j", fsync="never", snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(10):
            journal.add_message(SID, "user", f"warm {i}")
        python, every = calls_per_append(journal)
        assert journal.get(SID).version == 11 + APPENDS  # every append counted was stored
    assert python <= MAX_PYTHON_CALLS, f"{python:.1f} Python function calls per append ({every:.1f} in all)"


class _Reads:
    """Every byte range read from one file, through ``os.pread`` and ``os.read``."""

    def __init__(self, path: Path) -> None:
        self.inode = path.stat().st_ino
        self.ranges: list[tuple[int, int]] = []

    def wrap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_pread, real_read = os.pread, os.read

        def pread(fd: int, size: int, offset: int) -> bytes:
            data = real_pread(fd, size, offset)
            if os.fstat(fd).st_ino == self.inode:
                self.ranges.append((offset, offset + len(data)))
            return data

        def read(fd: int, size: int) -> bytes:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            data = real_read(fd, size)
            if os.fstat(fd).st_ino == self.inode:
                self.ranges.append((offset, offset + len(data)))
            return data

        monkeypatch.setattr(os, "pread", pread)
        monkeypatch.setattr(os, "read", read)

    def times_read(self, size: int) -> list[int]:
        counts = [0] * size
        for start, end in self.ranges:
            for offset in range(start, end):
                counts[offset] += 1
        return counts


class _Decodes:
    """How many lines the codec decoded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = journal.core.codec._LINE_DECODER
        outer = self

        class Counting:
            def decode(self, data: Any) -> Any:
                outer.count += 1
                return real.decode(data)

        monkeypatch.setattr(journal.core.codec, "_LINE_DECODER", Counting())


@pytest.fixture
def written(tmp_path: Path) -> Callable[[int, int], Path]:
    def write(events: int, snapshot_every: int) -> Path:
        root = tmp_path / "j"
        with Journal(root, fsync="never", snapshot_every=snapshot_every, snapshot_bytes=0) as journal:
            journal.create(SID)
            for i in range(events - 1):
                journal.add_message(SID, "user", f"message {i} " + "x" * (i % 50))
        (log,) = root.glob("sessions/*/events.jsonl")
        return log

    return write


def test_a_cold_get_reads_each_byte_of_the_log_once_and_decodes_each_line_once(
    written: Callable[[int, int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = written(3000, 0)  # no snapshot: the whole log is read
    reads = _Reads(log)
    reads.wrap(monkeypatch)
    decodes = _Decodes(monkeypatch)
    with Journal(log.parents[2]) as journal:
        assert journal.get(SID).version == 3000
    assert reads.times_read(log.stat().st_size) == [1] * log.stat().st_size
    assert decodes.count == 3000


def test_a_cold_get_from_a_snapshot_reads_the_tail_once_and_decodes_only_it(
    written: Callable[[int, int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = written(3000, 2500)  # a snapshot at seq 2500, 500 events after it
    reads = _Reads(log)
    reads.wrap(monkeypatch)
    decodes = _Decodes(monkeypatch)
    with Journal(log.parents[2]) as journal:
        assert journal.get(SID).version == 3000
    size = log.stat().st_size
    counts = reads.times_read(size)
    assert max(counts) == 1, "a byte of the log was read twice"
    lines = log.read_bytes().splitlines(keepends=True)
    tail = sum(len(line) for line in lines[2500:])
    assert counts[size - tail :] == [1] * tail  # every byte after the snapshot's line
    # The tail's 500 lines, and the snapshot's own line (checked against the snapshot).
    assert decodes.count == 501
