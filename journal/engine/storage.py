"""The seam between the Journal and where its logs live.

A backend stores, per session, an ordered list of encoded event lines (see ``codec``) and offers
exactly these operations: read the checked events after a known point, tell cheaply whether a
session changed since a point, run an exclusive write transaction (read what others appended,
then append after an expected head), list and delete sessions. Everything above this seam
(caching, batching, semantics) is backend-independent; the files backend is ``filestore``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from journal.core.codec import GENESIS, Decoded, LineError, decode
from journal.core.events import Event, MessageAdded, MessageEdited, MessageRedacted
from journal.core.state import Session, apply
from journal.errors import CorruptLogError, UnsupportedFormatError

if TYPE_CHECKING:
    from journal.core.reports import Anchor, RepairReport, SessionCheck

__all__ = [
    "ErasureCheck",
    "Head",
    "History",
    "PruneResult",
    "Record",
    "StaleHeadError",
    "Stamp",
    "Storage",
    "Transaction",
    "apply_record",
    "check_line",
    "classify_tail",
    "holds_hash",
]


class Head(NamedTuple):
    """A point in a session's log: just after event ``seq``.

    Attributes:
        seq: the seq of the last event read (the session's version there).
        hash: that event's chain hash.
        position: backend position just after it (files: byte offset).
        hash_at: backend position of its hash (files: byte offset of the hex digits).
        line: how many lines precede ``position`` in the backend's unit (files: line number).
    """

    seq: int
    hash: str
    position: int
    hash_at: int
    line: int


class Record(NamedTuple):
    """One checked event, the head just after it, and where its line starts."""

    event: Event
    head: Head
    offset: int


# Where a history read starts: the retention base (None: from nothing), its head, and every
# record after it.
History = tuple[Session | None, Head | None, Iterator[Record]]


class PruneResult(NamedTuple):
    """What one pruning moved: events archived, and the head in the new active log."""

    archived: int
    head: Head


class Stamp(NamedTuple):
    """A cheap fingerprint of a stored log (files: device, inode, size, mtime).

    ``position`` is where the stored data ends. A cached view is only trusted while it was
    read up to exactly that point: bytes beyond it (a write in progress, a torn tail) may be
    replaced by other bytes of the same length, which the fingerprint cannot tell apart.
    """

    identity: tuple[int, ...]
    position: int


class StaleHeadError(Exception):
    """A head no longer describes the stored log (replaced or rewritten); read from the start."""


class Transaction(Protocol):
    """An exclusive writer's view of one session, valid inside ``Storage.writer``."""

    def read(self, after: Head | None) -> Iterator[Record]:
        """Checked events after ``after``; a torn last line is cut off (and logged) first."""
        ...

    def snapshot(self) -> tuple[Session, Head] | None:
        """The newest snapshot that agrees with the stored log, or None."""
        ...

    def history(self) -> History:
        """The whole stored history (see ``Storage.history``)."""
        ...

    def save_snapshot(self, session: Session, head: Head) -> None:
        """Record a snapshot of ``session`` at ``head`` (raises StorageError on failure)."""
        ...

    def prune(self, state: Session, head: Head) -> tuple[PruneResult, Stamp]:
        """Move every event before ``head`` (the end of the log) into the archive."""
        ...

    def retain(self, before: datetime) -> int:
        """Fold archived events older than ``before`` into the retention base; returns how many."""
        ...

    def quarantined(self, message_id: str) -> bool:
        """Whether what ``repair`` moved aside (the quarantine) holds anything of the message."""
        ...

    def intend_erase(self, message_id: str, by: int) -> None:
        """Record, before the redaction event at seq ``by`` is appended, that the message's
        content is to be erased, so a crash after the event leaves the erasure to finish."""
        ...

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        """Erase ``message_id``'s content from every stored line before seq ``by`` (the
        redaction, the last event, at ``head``) and from the retention base, and drop every
        snapshot. Positions do not move; returns the stamp of the rewritten log."""
        ...

    def append(self, after: Head | None, lines: list[tuple[bytes, int, str, int]]) -> tuple[Head, Stamp]:
        """Append ``(line, seq, hash, hash_at_in_line)`` entries after ``after`` in one write.

        Returns the new head and the storage stamp after the write. Durable per the fsync
        policy when it returns; on failure nothing stays visible and StorageError is raised.
        """
        ...


class Storage(Protocol):
    """What the Journal needs from a backend."""

    def location(self, session_id: str) -> str:
        """Where the session's log lives, for error messages (a path or a URL)."""
        ...

    def stamp(self, session_id: str) -> Stamp | None:
        """A cheap value that changes whenever the session's log changes; None if absent."""
        ...

    def read(self, session_id: str, after: Head | None = None) -> Iterator[Record]:
        """Checked events after ``after`` (None: from the first); empty if the session is absent."""
        ...

    def snapshot(self, session_id: str) -> tuple[Session, Head] | None:
        """The newest snapshot that agrees with the stored log, or None."""
        ...

    def history(self, session_id: str, resume: tuple[int, str] | None = None) -> History:
        """The retention base (if any) and every record after it, oldest first.

        ``resume`` (a seq and its chain hash, from a read interrupted by a compaction) lets
        the backend skip what precedes that event where it can; records up to it may still
        come, and callers skip them.
        """
        ...

    def save_snapshot(self, session_id: str, session: Session, head: Head) -> None:
        """Record a snapshot (a cache: a failure is logged, not raised)."""
        ...

    def history_stamp(self, session_id: str) -> object:
        """A cheap value that changes when compaction moves the session's history around."""
        ...

    def writer(self, session_id: str) -> AbstractContextManager[Transaction]:
        """An exclusive write transaction on one session, across threads and processes."""
        ...

    def delete(self, session_id: str) -> bool:
        """Erase the session's stored data; False if there was none."""
        ...

    def session_ids(self) -> Iterator[str]:
        """The ids of every stored session."""
        ...

    def verify_targets(self, session_id: str | None) -> Sequence[Any]:
        """What ``verify`` checks for one session (empty: absent) or all, damaged ones included."""
        ...

    def verify(self, target: Any, anchors: Mapping[str, Anchor]) -> SessionCheck:
        """Check one target's stored history, snapshots and anchor, under its writer lock."""
        ...

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        """Quarantine everything after the intact prefix; None if there is no such session."""
        ...

    def export_raw(self, session_id: str) -> tuple[bytes | None, list[bytes]]:
        """The retention base (encoded, or None) and every stored line, byte for byte, oldest
        first, each checked against the chain (CorruptLogError otherwise)."""
        ...

    def import_raw(self, session_id: str, base: bytes | None, lines: list[bytes]) -> None:
        """Store a session exported by ``export_raw`` (of any backend) as it was.

        Raises SessionExistsError if the session exists (nothing is written then).
        """
        ...

    def close(self) -> None:
        """Flush pending syncs and release resources."""
        ...


def holds_hash(fd: int, head: Head) -> bool:
    """Whether the log open as ``fd`` has ``head``'s chain hash where ``head`` says it is.

    Logs are only appended to, so this proves the log still holds the events up to ``head``.
    """
    return os.pread(fd, 64, head.hash_at) == head.hash.encode("ascii")


def apply_record(state: Session | None, record: Record, path: str) -> Session:
    """``apply`` for a stored record: an event that cannot follow ``state`` is damage at its line.

    The line itself checked out (hash, chain), so only the fold can object: a second
    ``created``, an ``at`` earlier than the one before, anything but ``created`` first.
    """
    try:
        return apply(state, record.event)
    except ValueError as exc:
        raise CorruptLogError(path, record.head.line, record.offset, str(exc)) from None


class ErasureCheck:
    """Checks, as records are folded in order, that every erased body names a later redaction
    of its own message, so a read reports a forged erasure like any other edited line.

    An erased line stays hash-valid (its body is outside the hash); only the redaction event
    it names vouches for it. A read that stops early leaves later claims unchecked (``verify``
    checks everything).
    """

    __slots__ = ("path", "pending")

    def __init__(self, path: str) -> None:
        self.path = path
        self.pending: dict[int, list[tuple[str, Record]]] = {}

    def see(self, record: Record) -> None:
        event = record.event
        if self.pending:
            for message_id, claim in self.pending.pop(event.seq, ()):
                if not (isinstance(event, MessageRedacted) and event.message_id == message_id):
                    self._raise(claim, "which does not redact this message")
        if isinstance(event, (MessageAdded, MessageEdited)) and event.redacted_by is not None:
            self.pending.setdefault(event.redacted_by, []).append((event.message_id, record))

    def finish(self) -> None:
        """At the end of the stored history: every named redaction must have been seen."""
        for claims in self.pending.values():
            self._raise(claims[0][1], "which is not stored")

    def _raise(self, claim: Record, why: str) -> None:
        event = claim.event
        assert isinstance(event, (MessageAdded, MessageEdited))
        raise CorruptLogError(
            self.path,
            claim.head.line,
            claim.offset,
            f"its content was erased naming seq {event.redacted_by}, {why} (damaged or edited)",
        )


def classify_tail(tail: bytes, after: Head | None, *, path: str, line: int, offset: int) -> Record | None:
    """What the bytes after a log's last newline are: None for a torn write (a prefix of a line).

    A crashed or in-progress write leaves a prefix of its line; it never leaves a whole line
    whose final newline is replaced by another byte. So:

    * the bytes are a whole, valid, chained line missing only its newline: that record is
      returned (a write that completed all but its last byte, or lost it to damage: the
      line is provably intact);
    * all but the last byte are such a line: the newline was damaged: CorruptLogError;
    * otherwise: a torn write, None.
    """
    try:
        return check_line(tail, after, path=path, line=line, offset=offset, end=offset + len(tail) + 1)
    except CorruptLogError:
        pass
    if len(tail) > 1:
        try:
            check_line(tail[:-1], after, path=path, line=line, offset=offset, end=offset + len(tail))
        except CorruptLogError:
            return None
        raise CorruptLogError(path, line, offset, "the last line's newline is damaged (not a torn write)")
    return None


def check_line(
    data: bytes,
    after: Head | None,
    *,
    path: str,
    line: int,
    offset: int,
    end: int,
) -> Record:
    """Decode one stored line and check that it follows ``after`` in seq and hash chain.

    Args:
        data: the line without its newline.
        after: the head before this line (None: it must be seq 1, chained to GENESIS).
        path, line, offset: where the line is, for error messages.
        end: the position just after the line (its newline included).

    Raises:
        CorruptLogError: the line is damaged, edited, out of order, or does not chain.
    """
    try:
        decoded: Decoded = decode(data)
    except LineError as exc:
        error: Callable[[str, int, int, str], CorruptLogError] = (
            UnsupportedFormatError if exc.unsupported else CorruptLogError
        )
        raise error(path, line, offset, exc.reason) from None
    expected_seq = 1 if after is None else after.seq + 1
    seq = decoded.event.seq
    if seq != expected_seq:
        kind = "duplicate or reordered" if after is not None and seq <= after.seq else "gap"
        raise CorruptLogError(path, line, offset, f"seq {seq} where {expected_seq} was expected ({kind})")
    expected_prev = GENESIS if after is None else after.hash
    if decoded.prev != expected_prev:
        raise CorruptLogError(
            path, line, offset, f"hash chain broken: prev does not match the hash of seq {expected_seq - 1}"
        )
    head = Head(seq, decoded.hash, end, offset + decoded.hash_at, line)
    return Record(decoded.event, head, offset)
