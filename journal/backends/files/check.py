"""Verify one session's files: retention base, archive segments, active log, snapshots.

Runs under the session's writer lock (nothing moves meanwhile) and feeds every stored line, in
history order, to a ``ChainCheck``. It reads exactly the lines a reader would read, including
the archive segment selection that tolerates leftovers of an interrupted compaction (see
``history._records``), so a clean report means every read of the session succeeds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from journal.backends.files.archive import SEGMENT_ERRORS, Segment, list_segments, read_segment_lines
from journal.backends.files.fsio import Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    first_seq,
    load_base,
    quarantined_files,
    read_snapshot,
    snapshot_name,
    snapshot_seqs,
)
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.logfile import LineScan
from journal.core.chain import ChainCheck
from journal.core.head import Head, Record
from journal.core.reports import Anchor
from journal.core.state import Session
from journal.errors import CorruptLogError, SnapshotError

__all__ = ["Checked", "Intact", "Snapshot", "check_files"]

_QUARANTINED_SNAPSHOT = re.compile(r"snapshot-(\d{20})\.snap$")
_SEQ = re.compile(rb'^\{"v":1,"seq":(\d{1,20}),')


class Intact(NamedTuple):
    """The last line of the intact prefix: where it is stored, and its bytes."""

    segment: Segment | None  # None: the active log
    line: int
    offset: int
    data: bytes  # without its newline


class Snapshot(NamedTuple):
    """A snapshot file and whether it agrees with the log."""

    path: Path
    seq: int
    agrees: bool


class Checked(NamedTuple):
    """The outcome of ``check_files``, with what ``repair`` needs to act on it."""

    check: ChainCheck
    snapshots: list[Snapshot]
    intact: Intact | None
    skips: dict[Path, int]  # per segment read: leading lines another segment already held
    base: bool  # a retention base exists (and decoded)


def check_files(
    folder: Folder,
    label: str,
    fd: int | None,
    size: int,
    anchor: Anchor | None,
    read_tail: Callable[[Head | None], Iterable[Record]],
) -> Checked:
    """Check every file of the session in ``folder``; ``fd`` is its active log (None: absent).

    ``read_tail`` is the writer's read: given the head of the last intact line, it repairs a
    torn tail as every writer does (cut and logged, or a missing newline completed).
    """
    log_path = str(folder.path / LOG_NAME)
    snapshots = _load_snapshots(folder)
    try:
        base = load_base(folder)
    except CorruptLogError as exc:
        check = ChainCheck(label, None, None, ())
        check.problem("damaged", exc.path, 0, -1, exc.reason)
        check.broken(None, exc.path, 0, -1)
        return Checked(check, [], None, {}, False)
    start = None if base is None else (base[1].seq, base[1].hash)
    watch = [seq for _, seq, loaded in snapshots if not isinstance(loaded, str)]
    check = ChainCheck(label, start, None if base is None else base[0], watch)
    if base is not None:
        check.retention_base(base[0], str(folder.path / ARCHIVE_DIR / BASE_NAME))
    intact: Intact | None = None
    skips: dict[Path, int] = {}
    try:
        active_first = first_seq(folder)
    except CorruptLogError:
        active_first = None  # reported below, line by line
    for segment in list_segments(folder.child(ARCHIVE_DIR)):
        floor = check.seq
        if segment.last <= floor or (active_first is not None and segment.first >= active_first):
            continue  # a leftover of an interrupted compaction, covered elsewhere
        skips[segment.path] = skip = max(0, floor - segment.first + 1)
        line_no = 0
        try:
            for line_no, offset, data in read_segment_lines(segment):
                if line_no <= skip:
                    continue
                found = _SEQ.match(data)
                if active_first is not None and found is not None and int(found[1]) >= active_first:
                    break  # the active log holds it (an overlapping leftover)
                if check.line(segment, str(segment.path), line_no, offset, data):
                    intact = Intact(segment, line_no, offset, data)
        except SEGMENT_ERRORS as exc:
            where = line_no + 1
            check.problem("damaged", str(segment.path), where, -1, f"archive segment unreadable: {exc}")
            check.broken(segment, str(segment.path), where, -1)
    intact = _check_log(check, log_path, fd, intact, read_tail)
    check.finish()
    if check.redacted:
        for moved in quarantined_files(folder):
            path, data = moved.folder.path / moved.name, moved.data
            if path.name.endswith(".snap"):
                named = _QUARANTINED_SNAPSHOT.search(path.name)
                seq = int(named[1]) if named else 1  # a name that says nothing: the oldest
                check.check_quarantined(str(path), 0, -1, data, snapshot=seq)
                continue
            offset = 0
            for number, line in enumerate(data.split(b"\n"), 1):
                check.check_quarantined(str(path), number, offset, line)
                offset += len(line) + 1
    if anchor is not None:
        check.check_anchor(anchor, log_path)
    checked = []
    for path, seq, loaded in snapshots:
        if isinstance(loaded, str):
            check.problem("snapshot_damaged", str(path), 0, -1, loaded)
        agrees = not isinstance(loaded, str) and check.check_snapshot(str(path), loaded[0], seq, loaded[1])
        checked.append(Snapshot(path, seq, agrees))
    return Checked(check, checked, intact, skips, base is not None)


def _check_log(
    check: ChainCheck,
    path: str,
    fd: int | None,
    intact: Intact | None,
    read_tail: Callable[[Head | None], Iterable[Record]],
) -> Intact | None:
    earlier = check.seq  # the last event before the active log (archive, retention base)
    scan = LineScan(fd) if fd is not None else None
    head: Head | None = None
    for line_no, offset, data in scan or ():
        if check.line(None, path, line_no, offset, data):
            intact = Intact(None, line_no, offset, data)
            head = Head(check.seq, check.hash, line_no, (offset + len(data) + 1, offset + check.hash_at))
    if check.seq == earlier and earlier > 0:
        # Pruning always leaves the last event in the active log: an empty one lost events.
        check.problem(
            "truncated", path, 1, 0, f"the active log holds no event after the archive's seq {earlier}"
        )
        check.broken(None, path, 1, 0)
    if fd is None or scan is None or not scan.torn:
        return intact
    line_no = (head.active if head is not None else 0) + 1
    if check.first_break is not None:
        check.problem("torn", path, line_no, scan.end, f"{scan.torn} unterminated bytes after the last line")
        return intact
    tail = os.pread(fd, scan.torn, scan.end)
    try:
        completed = list(read_tail(head))
    except CorruptLogError as exc:
        check.problem("damaged", path, exc.line, exc.offset, exc.reason)
        check.broken(None, path, exc.line, exc.offset)
        return intact
    if completed and check.line(None, path, line_no, scan.end, tail):
        intact = Intact(None, line_no, scan.end, tail)
    return intact


def _load_snapshots(folder: Folder) -> list[tuple[Path, int, tuple[Session, str] | str]]:
    """Every snapshot file: its path, seq, and (state, chain hash), or why it is unusable."""
    found: list[tuple[Path, int, tuple[Session, str] | str]] = []
    for seq in snapshot_seqs(folder):
        path = folder.path / snapshot_name(seq)
        try:
            session, head = read_snapshot(folder, seq)
        except FileNotFoundError:
            continue
        except SnapshotError as exc:
            found.append((path, seq, exc.reason))
        except OSError as exc:
            found.append((path, seq, f"unreadable: {exc}"))
        else:
            usable = head.seq == seq
            found.append(
                (path, seq, (session, head.hash) if usable else f"named for seq {seq}, holds {head.seq}")
            )
    return found
