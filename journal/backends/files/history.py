"""A session's whole history on files: retention base, archive segments, active log, snapshots.

History, oldest first: an optional *base* (the state of events a retention policy dropped),
archive segments (pruned events, byte for byte), then the active log. The chain runs through
all of them: the first archived line chains to the base's hash (or to GENESIS), the first
active line to the last archived one.

Snapshots are checked against the active log before use: the log must be at least as long as
the snapshot's position and hold the snapshot's chain hash exactly where the snapshot says.
Because an active log file is only ever appended to (pruning replaces it with a new file),
that check proves the log still holds the events the snapshot was folded from.

A writer's snapshots are chunked (version 2 of ``core.snapshot``): ``snapshot-<seq>.snap``
names the ``chunk-<sha256>.snapc`` files beside it that hold its oldest messages. Chunks are
written (and fsynced) before the snapshot naming them, never changed, and deleted once no
snapshot names them.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from journal.backends.files import intent
from journal.backends.files.archive import SEGMENT_ERRORS, Segment, inflate, list_segments, read_segment_lines
from journal.backends.files.fsio import Folder
from journal.backends.files.layout import LOG_NAME, SESSIONS_DIR, dirname_for
from journal.backends.files.logfile import LineScan, last_line, line_ending_at
from journal.core.chain import Fold, History, check_line
from journal.core.codec import decode
from journal.core.head import Head, Record
from journal.core.snapshot import (
    ChunkRef,
    decode_snapshot,
    encode_chunked,
    read_from_chunks,
    snapshot_chunks,
)
from journal.core.state import Messages, Session
from journal.errors import CorruptLogError, LineError, SnapshotError, StaleHeadError

__all__ = [
    "ARCHIVE_DIR",
    "BASE_NAME",
    "QUARANTINE_DIR",
    "Quarantined",
    "Written",
    "check_missing_log",
    "first_seq",
    "holds_history",
    "load_base",
    "load_snapshot",
    "quarantined_files",
    "read_snapshot",
    "remove_all_chunks",
    "remove_chunks_but",
    "save_snapshot",
    "stored_snapshot_seqs",
]

log = logging.getLogger("journal")

ARCHIVE_DIR = "archive"
QUARANTINE_DIR = "quarantine"
BASE_NAME = "base.snap"
_SNAPSHOT = re.compile(r"^snapshot-(\d{20})\.snap$")
_CHUNK = re.compile(r"^chunk-[0-9a-f]{64}\.snapc$")


class Written(NamedTuple):
    """What a writer knows of the last snapshot it wrote or read: ``chunks`` (stored and
    checked) hold the first ``covered`` of ``messages``. Kept per session by the storage, so
    the next snapshot of a state that grew from ``messages`` writes only what is new."""

    messages: Messages
    chunks: tuple[ChunkRef, ...]
    covered: int


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.snap"


def snapshot_seqs(folder: Folder) -> list[int]:
    """Seqs of the snapshot files in session ``folder``, newest first."""
    names = folder.names()
    return sorted((int(m[1]) for n in names if (m := _SNAPSHOT.match(n))), reverse=True)


def stored_snapshot_seqs(root: Path, session_id: str) -> list[int]:
    """Seqs of a session's snapshot files under ``root``, newest first ([] if none), found
    without following a symlink below the root."""
    top = Folder.root(root, create=False)
    if top is None:
        return []
    with top:
        sessions = top.child(SESSIONS_DIR)
        folder = None if sessions is None else sessions.child(dirname_for(session_id))
        return [] if folder is None else snapshot_seqs(folder)


def load_snapshot(folder: Folder, log_fd: int, log_size: int) -> tuple[Session, Head] | None:
    """The newest snapshot that agrees with the active log open as ``log_fd``; None if none.

    A snapshot agrees when the log's line ending at its position decodes to its seq and
    hash. Every snapshot passed over is logged as a warning with the reason: it is only a
    cache. But a snapshot of an event the log no longer holds is evidence that events were
    lost from the log's end (a restored backup, a truncation): reading on, and letting a
    writer append a different event under that seq, would fork the history.

    Readers take no lock, so a writer may store a newer snapshot and remove this one and its
    chunks while it is read: a snapshot gone by the time its read failed was replaced, not
    damaged, and the newest ones are looked at again (no warning, no replay of the log).

    Raises:
        CorruptLogError: a snapshot covers events past the log's last line (``repair``
            moves it into quarantine after reporting).
    """
    for attempt in range(_RESCANS):
        if attempt:
            # The writer that replaced the snapshot appended first: see the log as it is now.
            log_size = os.fstat(log_fd).st_size
        try:
            return _newest_agreeing(folder, log_fd, log_size, rescan=attempt > 0)
        except _Replaced:
            continue
    return None


# A writer replaces the newest snapshot at most every ``snapshot_every`` appends: a reader
# that loses that race three times in a row is better served by the log.
_RESCANS = 3


class _Replaced(Exception):
    """A snapshot was removed while it was read: a writer stored a newer one meanwhile."""


def _newest_agreeing(
    folder: Folder, log_fd: int, log_size: int, *, rescan: bool
) -> tuple[Session, Head] | None:
    """One scan of ``load_snapshot``, newest first.

    Raises:
        _Replaced: a snapshot, or a chunk of it, went with a newer snapshot's write; or, on a
            rescan, a snapshot lies past the end of the log open here (the writer that
            replaced the last one may also have replaced the log: never taken for lost
            events while racing it; a read without that race reports them).
    """
    last_seq: int | None = -1  # read only for a snapshot that disagrees with the log
    for seq in snapshot_seqs(folder):
        path = folder.path / snapshot_name(seq)
        try:
            session, head = read_snapshot(folder, seq)
        except (OSError, SnapshotError) as exc:
            if not folder.exists(snapshot_name(seq)):
                raise _Replaced from None
            if isinstance(exc, SnapshotError):
                log.warning("%s: snapshot ignored: %s; rebuilding from the log", path, exc.reason)
            else:
                log.warning("%s: snapshot ignored: unreadable (%s)", path, exc)
            continue
        if head.seq != seq:
            log.warning("%s: snapshot ignored: holds seq %d", path, head.seq)
            continue
        why = _disagrees(log_fd, log_size, head)
        if not why:
            return session, head
        # A snapshot the log does not hold: stale (the log moved on, or was pruned), or the
        # events it covers were lost from the log's end.
        if last_seq == -1:
            last_seq = _last_seq(log_fd, log_size)
        if last_seq is not None and seq > last_seq:
            if rescan:
                raise _Replaced
            raise CorruptLogError(
                str(path),
                0,
                -1,
                f"the snapshot covers events up to seq {seq} but the active log ends at seq "
                f"{last_seq}: events were lost from the log (run repair)",
            )
        log.warning("%s: snapshot ignored: stale (%s)", path, why)
    return None


def _last_seq(log_fd: int, log_size: int) -> int | None:
    """The seq of the active log's last complete line (0: none); None if it does not decode
    (a read of the log reports that damage with its location)."""
    last = last_line(log_fd, log_size)
    if last is None:
        return 0
    try:
        return decode(last[1]).event.seq
    except LineError:
        return None


def _disagrees(log_fd: int, log_size: int, head: Head) -> str:
    """Why the log does not hold ``head``'s event where ``head`` says ("" if it does)."""
    position, hash_at = head.cursor
    if position > log_size:
        return "the log is shorter than its position"
    line = line_ending_at(log_fd, position)
    if line is None:
        return "its position is not the end of a line"
    offset, data = line
    try:
        decoded = decode(data)
    except LineError:
        return "the line at its position does not decode"
    if (decoded.event.seq, decoded.hash, offset + decoded.hash_at) != (head.seq, head.hash, hash_at):
        return "its chain hash disagrees with the log"
    return ""


def read_snapshot(folder: Folder, seq: int) -> tuple[Session, Head]:
    """The state and head in snapshot ``seq`` of ``folder``, with the chunks it names.

    Raises:
        FileNotFoundError: no such snapshot.
        OSError: unreadable.
        SnapshotError: damaged, or a chunk missing or damaged.
    """
    return decode_snapshot(folder.read(snapshot_name(seq)), chunk=lambda ref: folder.read(ref.name))


def save_snapshot(folder: Folder, session: Session, head: Head, last: Written | None = None) -> Written:
    """Write a snapshot of ``session`` at ``head``, then remove older snapshots and the chunks
    no snapshot names; returns what the next one can build on.

    ``last``: the previous snapshot written or read here; when ``session`` grew from its
    messages and its chunks are still stored, only the messages after them are written.
    ``folder`` is open: a session deleted meanwhile cannot come back as a snapshot (its
    folder is gone, and with it the name the file would get).
    """
    reuse = read_from_chunks(session.messages_view)
    if not reuse and last is not None and session.messages_view.shares_start(last.messages, last.covered):
        reuse = last.chunks
    if not all(folder.exists(ref.name) for ref in reuse):
        reuse = ()  # deleted since (a redaction, another writer's snapshot after an edit)
    chunked = encode_chunked(session, head, reuse)
    for ref, data in chunked.new:
        if not folder.exists(ref.name):  # the same name holds the same bytes
            folder.write_atomic(ref.name, data)
    folder.write_atomic(snapshot_name(head.seq), chunked.document)
    remove_snapshots_before(folder, head.seq)
    remove_chunks_but(folder, chunked.chunks, snapshot_name(head.seq))
    return Written(session.messages_view, chunked.chunks, chunked.covered)


def remove_chunks_but(folder: Folder, keep: tuple[ChunkRef, ...], named_by: str | None = None) -> None:
    """Delete the chunks that neither ``keep`` (the chunks of snapshot ``named_by``, not read
    again) nor any other stored snapshot names."""
    names = folder.names()
    chunks = {name for name in names if _CHUNK.match(name)} - {ref.name for ref in keep}
    if not chunks:
        return
    for name in names:
        if _SNAPSHOT.match(name) and name != named_by:
            try:
                chunks -= {ref.name for ref in snapshot_chunks(folder.read(name))}
            except FileNotFoundError:
                continue  # removed meanwhile: it names nothing
            except SnapshotError:
                continue  # damaged: it cannot be read, so its chunks cannot serve it
            except OSError:
                return  # cannot tell what it names: delete nothing (orphans wait for next time)
    for name in chunks:
        folder.unlink(name, missing_ok=True)


def remove_all_chunks(folder: Folder) -> None:
    """Delete every chunk (their snapshots are gone: erasure)."""
    for name in folder.names():
        if _CHUNK.match(name):
            folder.unlink(name, missing_ok=True)


def remove_snapshots_before(folder: Folder, seq: int) -> None:
    """Delete snapshots older than ``seq`` (they are superseded), durably."""
    removed = False
    for older in snapshot_seqs(folder):
        if older < seq:
            folder.unlink(snapshot_name(older), missing_ok=True)
            removed = True
    if removed:
        # Readers ignore a superseded snapshot that a power cut brought back, but once a
        # retention base replaced the events it describes, verify reports it as a mismatch.
        folder.fsync()


def load_base(folder: Folder) -> tuple[Session, Head] | None:
    """The retention base, if a policy dropped early history.

    Unlike a snapshot, the base is the only record of what it replaced, so damage to it is
    reported, not skipped.

    Raises:
        CorruptLogError: the base file is damaged.
        StorageError: it cannot be read (a symlink in its place included).
    """
    archive = folder.child(ARCHIVE_DIR)
    if archive is None:
        return None
    path = archive.path / BASE_NAME
    try:
        data = archive.read(BASE_NAME)
    except FileNotFoundError:
        return None
    try:
        return decode_snapshot(data, kind="base")
    except SnapshotError as exc:
        raise CorruptLogError(str(path), 0, 0, f"retention base unusable: {exc.reason}") from None


def first_seq(folder: Folder) -> int | None:
    """Seq of the active log's first complete line in session ``folder`` (None: empty or absent)."""
    fd = folder.open_existing(LOG_NAME)
    if fd is None:
        return None
    try:
        first = next(iter(LineScan(fd)), None)
    finally:
        os.close(fd)
    if first is None:
        return None
    line = first[2]
    try:
        return decode(line).event.seq
    except LineError as exc:
        raise CorruptLogError(str(folder.path / LOG_NAME), 1, 0, exc.reason) from None


class Quarantined(NamedTuple):
    """A file in the session's quarantine: ``name`` in ``folder``, its bytes (a segment
    decompressed as far as it goes), and whether those are all of it."""

    folder: Folder
    name: str
    data: bytes
    whole: bool


def quarantined_files(folder: Folder) -> Iterator[Quarantined]:
    """Every file ``repair`` moved into the session's quarantine (its reports excepted).

    Quarantined files failed a check: they are read loosely, and never trusted. Only folders
    of the quarantine are looked into (a symlink there is no folder).

    Raises:
        StorageError: ``quarantine/`` itself is not a folder (a symlink, say).
    """
    quarantine = folder.child(QUARANTINE_DIR)
    if quarantine is None:
        return
    for moved in sorted(quarantine.names()):
        try:
            if not stat.S_ISDIR(quarantine.lstat(moved).st_mode):
                continue
        except FileNotFoundError:
            continue
        place = quarantine.child(moved)
        if place is None:
            continue
        for name in sorted(place.names()):
            if name == "repair.json":
                continue
            try:
                raw = place.read(name)
            except OSError:
                continue  # a folder, a FIFO or a symlink moved there: it holds no line
            data, whole = inflate(raw) if name.endswith(".gz") else (raw, True)
            yield Quarantined(place, name, data, whole)


def holds_history(folder: Folder) -> bool:
    """Whether ``folder`` holds any of a session's history besides its active log: a snapshot,
    an archive segment or a retention base."""
    if any(_SNAPSHOT.match(name) for name in folder.names()):
        return True
    archive = folder.child(ARCHIVE_DIR)
    return archive is not None and (bool(list_segments(archive)) or archive.exists(BASE_NAME))


def check_missing_log(folder: Folder) -> None:
    """Return if a session folder whose active log is missing holds no session; raise if it
    holds a damaged one.

    A delete leaves its intent before unlinking the log (its commit point), and a create that
    never wrote leaves an empty folder: both mean "no such session". A folder that holds the
    session's history without its log lost the log: that is damage, never a fresh start (a
    new session there would build on the old one's archive and snapshots).

    Raises:
        CorruptLogError: the log is missing, but the folder holds history.
    """
    if isinstance(intent.read(folder), intent.Delete) or not holds_history(folder):
        return
    raise CorruptLogError(
        str(folder.path / LOG_NAME),
        0,
        -1,
        "the active log is missing, but the session folder holds its history (archive or "
        "snapshots): run repair",
    )


def read_history(
    folder: Folder,
    read_active: Callable[[Head | None], Iterator[Record]],
    resume: Head | None = None,
) -> History:
    """Base state and every record after it, through the archive and the active log.

    With ``resume`` (a head given before), archive segments before that event are skipped and the
    chain is checked from its hash on (when it precedes the active log; else all is read).
    ``folder`` must stay open until the records are read (archive segments are read lazily).
    """
    base = load_base(folder)
    state, head = (None, None) if base is None else base
    if head is None and not list_segments(folder.child(ARCHIVE_DIR)):
        # No archive: the active log is the whole history, read once from its first line.
        return None, None, _active_only(folder, read_active)
    start = first_seq(folder)
    if start is None:
        if not folder.exists(LOG_NAME):
            check_missing_log(folder)
            return None, None, iter(())
        if head is not None or list_segments(folder.child(ARCHIVE_DIR)):
            # Pruning always leaves the last event in the active log.
            raise CorruptLogError(
                str(folder.path / LOG_NAME),
                1,
                0,
                "the active log holds no event, but the archive does: run repair",
            )
        # No complete line: nothing to read, but a writer's read still cuts a torn tail.
        return state, head, read_active(None)
    after = head
    if resume is not None and resume.seq < start and (head is None or resume.seq > head.seq):
        after = Head(resume.seq, resume.hash, 0, ())  # a known link of the chain
    return state, head, _records(folder, after, start, read_active)


def _active_only(folder: Folder, read_active: Callable[[Head | None], Iterator[Record]]) -> Iterator[Record]:
    empty = True
    for record in read_active(None):
        empty = False
        yield record
    if empty and not folder.exists(LOG_NAME):
        check_missing_log(folder)  # deleted, never created, or lost (damage)


def _records(
    folder: Folder, after: Head | None, start: int, read_active: Callable[[Head | None], Iterator[Record]]
) -> Iterator[Record]:
    for record, _ in _archived(folder, after, start):
        after = record.head
        yield record
    if after is None and start != 1:
        raise CorruptLogError(
            str(folder.path), 0, 0, f"events 1..{start - 1} are missing (no archive holds them)"
        )
    if after is not None:
        # Resume at the start of the active log, chained to the last archived event.
        after = Head(after.seq, after.hash, 0, ())
    empty = True
    try:
        for record in read_active(after):
            empty = False
            yield record
    except StaleHeadError:
        empty = True
    if empty:
        # The active log had a first line when the read began: it was deleted or replaced
        # since (delete, pruning in another process). Never end a history early: callers
        # retry when the files moved (see loading.retrying) and report a delete.
        raise CorruptLogError(str(folder.path / LOG_NAME), 1, 0, "the active log vanished while it was read")


def _archived(folder: Folder, after: Head | None, start: int | None) -> Iterator[tuple[Record, bytes]]:
    """Each archived record after ``after`` and before seq ``start`` (the active log's first; None:
    no active log), with its line's bytes, skipping leftovers of an interrupted compaction."""
    for segment in list_segments(folder.child(ARCHIVE_DIR)):
        floor = 0 if after is None else after.seq
        if segment.last <= floor or (start is not None and segment.first >= start):
            continue  # left over from an interrupted compaction: covered elsewhere
        skip = max(0, floor - segment.first + 1)  # lines an overlapping leftover shares
        stop = segment.last + 1 if start is None else start
        for entry in _segment_entries(segment, after, stop=stop, skip=skip):
            after = entry[0].head
            yield entry


def _segment_records(segment: Segment, after: Head | None, *, stop: int, skip: int = 0) -> Iterator[Record]:
    for record, _ in _segment_entries(segment, after, stop=stop, skip=skip):
        yield record


def _segment_entries(
    segment: Segment, after: Head | None, *, stop: int, skip: int = 0
) -> Iterator[tuple[Record, bytes]]:
    path = str(segment.path)
    line_no = 0
    try:
        for line_no, offset, data in read_segment_lines(segment):
            if line_no <= skip:
                continue  # events already read from the segment before (see _archived)
            decoded = check_line(data, after, path=path, line=line_no, offset=offset)
            if decoded.event.seq >= stop:
                return
            # An archived head cannot be resumed from (no cursor); only its seq and hash carry on.
            after = Head(decoded.event.seq, decoded.hash, 0, ())
            yield Record(decoded.event, after, line_no, offset, len(data) + 1), data
    except SEGMENT_ERRORS as exc:
        raise CorruptLogError(path, line_no + 1, -1, f"archive segment unreadable: {exc}") from None


def fold_segments(state: Session | None, head: Head | None, segments: list[Segment]) -> tuple[Session, Head]:
    """Fold whole segments onto a base (used to build a new retention base)."""
    after = head
    for segment in segments:
        floor = 0 if after is None else after.seq
        skip = max(0, floor - segment.first + 1)
        fold = Fold(str(segment.path), state, after)
        for record in _segment_records(segment, after, stop=segment.last + 1, skip=skip):
            fold.add(record)
        state, after = fold.state, fold.head
    assert state is not None
    assert after is not None
    return state, after


def history_lines(folder: Folder, fd: int) -> list[bytes]:
    """Every stored line after the retention base, byte for byte, oldest first: the archive
    segments (as ``read_history`` walks them) and then the active log, open as ``fd``, each
    checked against the chain.

    Raises:
        CorruptLogError: a line is damaged, missing or out of order.
    """
    base = load_base(folder)
    after = None if base is None else base[1]
    out: list[bytes] = []
    for record, data in _archived(folder, after, first_seq(folder)):
        after = record.head
        out.append(data)
    path = str(folder.path / LOG_NAME)
    for line_no, offset, data in LineScan(fd):
        decoded = check_line(data, after, path=path, line=line_no, offset=offset)
        after = Head(decoded.event.seq, decoded.hash, 0, ())
        out.append(data)
    return out
