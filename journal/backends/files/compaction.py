"""Pruning the active log into the archive, and applying a retention policy.

Both run under the session's writer lock, after the caller caught up to the end of the log.
Each step leaves the files valid if the process dies right after it (see
``docs/compaction.md`` for the argument step by step):

1. write the new archive segment (temporary file, fsync, rename): until step 3 it is ignored,
   because the active log still holds its events;
2. write a snapshot that describes the new active log: ignored until step 3, because its hash
   is not where it says in the old log;
3. replace the active log with its last line (temporary file, fsync, rename): the switch;
4. retention only: fold the oldest segments into a new base (written atomically), then delete
   them; a segment already covered by the base is ignored by readers and deleted next time.
"""

from __future__ import annotations

from datetime import datetime

from journal.backends.files.archive import Segment, ensure_archive, inflate, list_segments, write_segment
from journal.backends.files.fsio import Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    fold_segments,
    load_base,
    remove_chunks_but,
    remove_snapshots_before,
    save_snapshot,
    snapshot_name,
)
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.logfile import read_range
from journal.backends.files.repair import set_aside
from journal.core.head import Head
from journal.core.snapshot import encode_snapshot
from journal.core.state import Session

__all__ = ["apply_retention", "prune_active_log"]


def prune_active_log(folder: Folder, fd: int, state: Session, head: Head) -> tuple[int, Head]:
    """Move every event before ``head.seq`` from the active log into a new archive segment.

    ``fd`` is the active log, read up to exactly the end of ``head`` (its end) under the lock.
    Returns how many events were archived and the head in the new active log.
    """
    position, hash_at = head.cursor
    data = read_range(fd, 0, position)
    last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
    if last_start == 0:  # one line: nothing before it, but the snapshot is still owed
        save_snapshot(folder, state, head)
        return 0, head
    archived = data[:last_start]
    count = archived.count(b"\n")
    first = head.seq - count
    archive = ensure_archive(folder)
    for leftover in list_segments(archive):
        if leftover.first >= first:
            _drop_leftover(folder, leftover, archived, first)
    write_segment(archive, first, head.seq - 1, archived)
    new_head = Head(head.seq, head.hash, 1, (len(data) - last_start, hash_at - last_start))
    # The older snapshots stay until the switch: a crash before it keeps them usable.
    folder.write_atomic(snapshot_name(head.seq), encode_snapshot(state, new_head))
    folder.write_atomic(LOG_NAME, data[last_start:])
    remove_snapshots_before(folder, head.seq)
    remove_chunks_but(folder, ())
    return count, new_head


def _drop_leftover(folder: Folder, leftover: Segment, archived: bytes, first: int) -> None:
    """Remove a segment in the way of the one about to be written, without losing a byte.

    An interrupted pruning leaves a segment of events the active log still holds: the same
    bytes as a part of ``archived`` (events ``first``..), so deleting it loses nothing. Any
    other file there (another incarnation's, a restored one) is not provably a copy: it is
    moved into the quarantine instead.
    """
    data, whole = inflate(leftover.folder.read(leftover.name))
    start = _line_offset(archived, leftover.first - first)
    if whole and start >= 0 and data.endswith(b"\n") and archived[start : start + len(data)] == data:
        leftover.folder.unlink(leftover.name)
        return
    set_aside(
        folder,
        [f"{ARCHIVE_DIR}/{leftover.name}"],
        "an archive segment in the way of pruning, not a copy of its events",
    )


def _line_offset(data: bytes, lines: int) -> int:
    """Where line ``lines`` (0-based) of ``data`` starts; -1 if it has fewer lines."""
    offset = 0
    for _ in range(lines):
        offset = data.find(b"\n", offset) + 1
        if offset == 0:
            return -1
    return offset


def apply_retention(folder: Folder, before: datetime) -> int:
    """Drop archive segments whose events are all older than ``before``; returns events dropped.

    Their effect on the state is kept in the base (``archive/base.snap``), which becomes the
    start of the session's history.
    """
    archive = folder.child(ARCHIVE_DIR)
    if archive is None:
        return 0  # nothing archived, nothing to drop
    base = load_base(folder)
    state, head = (None, None) if base is None else base
    floor = 0 if head is None else head.seq
    segments = [s for s in list_segments(archive) if s.last > floor]
    chosen = []
    for segment in segments:
        folded = fold_segments(state, head, [segment])
        if folded[0].updated_at >= before:
            break
        state, head = folded
        chosen.append(segment)
    if not chosen:
        return 0
    assert state is not None
    assert head is not None
    archive.write_atomic(BASE_NAME, encode_snapshot(state, head, kind="base"))
    for segment in list_segments(archive):
        if segment.last <= head.seq:
            archive.unlink(segment.name)
    return head.seq - floor
