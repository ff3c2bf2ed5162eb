"""The storage seam: what the engine needs from a backend, and nothing shaped like files.

A backend stores, per session, an ordered list of event lines (the format of
``journal.core.codec``, byte for byte on every backend), an optional retention base, snapshots
(a cache), and what ``repair`` set aside. It offers reads without a lock (``reader``), an
exclusive write transaction (``writer``) that reads what others appended and then appends
after an expected head, and whole-session operations (list, delete, verify, repair). The
engine above it owns caching, batching and semantics; positions are the backend's own
(``Head.cursor``), passed back unread.

``MemoryStorage`` (``journal.backends.memory``) is the reference implementation;
``journal.testing.contract.StorageContract`` is the test suite every backend passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import NamedTuple, Protocol

import msgspec

from journal.core.chain import History
from journal.core.head import Head, Line, Record
from journal.core.reports import Anchor, RepairReport, SessionCheck
from journal.core.state import Session
from journal.errors import CorruptLogError

__all__ = [
    "Batch",
    "ChangeFeed",
    "Exported",
    "History",
    "Optimistic",
    "Pruned",
    "Source",
    "Stamp",
    "Storage",
    "Target",
    "Transaction",
]

Stamp = tuple[int, ...]
"""A cheap fingerprint of a session's stored log: equal stamps mean the same stored events.
Opaque above the seam; only compared."""


class Batch(msgspec.Struct, frozen=True):
    """What a read after a head found: the records, and the stamp the stored log had when read
    exactly to its end (None: not known, or bytes past the last line, such as a write in
    progress, that the same stamp could hide: check again next time).

    A read that meets a damaged line stops there: ``records`` are the checked ones before it,
    ``damage`` is its error. The reader folds the records first and then raises it, so that a
    line the fold refuses is reported at its own place, not where the next line stops chaining.
    """

    records: list[Record]
    stamp: Stamp | None
    damage: CorruptLogError | None = None

    def checked(self) -> Iterator[Record]:
        """The records, then the damage (raised) if the read stopped at a damaged line."""
        yield from self.records
        if self.damage is not None:
            raise self.damage


class Pruned(NamedTuple):
    """What one pruning did: events moved into the archive, and the head and stamp after it."""

    archived: int
    head: Head
    stamp: Stamp


class Target(NamedTuple):
    """Something ``verify`` checks: a session by id, or stored data whose id cannot be read
    (named by ``label``, the backend's name for it)."""

    label: str
    session_id: str | None


class Exported(NamedTuple):
    """A whole session, byte for byte: its retention base (encoded) and every stored line."""

    base: bytes | None
    lines: list[bytes]


class Source(Protocol):
    """Reads of one session: what ``Storage.reader`` gives, and every transaction can do.

    Attributes:
        where: where the session's log is, for messages (``Storage.location``).
    """

    where: str

    def read(self, after: Head) -> Batch:
        """Checked records after ``after`` (a head this backend gave: an append's, a record's
        or a snapshot's), up to the first damaged line (``Batch.damage``; a transaction first
        cuts a torn tail). A whole history is read with ``history``.

        Raises:
            StaleHeadError: ``after`` is no longer where the backend keeps the log (pruned,
                replaced, deleted): read from a snapshot or the whole history instead.
        """
        ...

    def snapshot(self) -> tuple[Session, Head] | None:
        """The newest snapshot that agrees with the stored log, or None.

        Raises:
            CorruptLogError: a snapshot covers events the log no longer holds.
        """
        ...

    def history(self, resume: Head | None = None) -> History:
        """The retention base (if any) and every record after it, oldest first.

        ``resume`` (a head given before, by a read interrupted by a compaction) lets the
        backend skip what precedes it where it can; records up to it may still come, and
        callers skip them.
        """
        ...


class Transaction(Source, Protocol):
    """A session held exclusively (across threads and processes), inside ``Storage.writer``."""

    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        """Store ``lines`` (consecutive seqs chained to ``after``) at the end, in one write.

        Returns the head after the last line and the stamp after the write. Durable per the
        backend's policy when it returns; on failure nothing stays visible.

        Raises:
            StaleHeadError: the stored log does not end at ``after``.
            StorageError: the write failed (nothing of it is visible).
        """
        ...

    def save_snapshot(self, state: Session, head: Head) -> None:
        """Record a snapshot of ``state`` at ``head``, unless the log no longer holds ``head``
        as the end of what the state shows (it moved on, or a redaction erased since)."""
        ...

    def prune(self, state: Session, head: Head) -> Pruned:
        """Move every event before ``head`` (the end of the log) into the archive, leaving a
        snapshot of ``state`` there."""
        ...

    def retain(self, before: datetime) -> int:
        """Fold archived events older than ``before`` into the retention base; returns how many."""
        ...

    def quarantined(self, message_id: str) -> bool:
        """Whether what ``repair`` set aside holds a line of the message's own."""
        ...

    def intend_erase(self, message_id: str, by: int) -> None:
        """Record, before the redaction event at seq ``by`` is appended, that the message's
        content is to be erased, so that a crash after the event leaves it to finish."""
        ...

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        """Erase ``message_id``'s content from every stored line before seq ``by`` (the
        redaction, the last event, at ``head``), the retention base, the snapshots and what
        ``repair`` set aside. Positions do not move; returns the stamp after it."""
        ...

    def export(self) -> Exported:
        """The session byte for byte, each line checked against the chain.

        Raises:
            CorruptLogError: a line is damaged, missing or out of order.
        """
        ...

    def restore(self, exported: Exported) -> None:
        """Store a session ``export`` gave (of any backend) as it was.

        Raises:
            SessionExistsError: the session exists (nothing is written).
        """
        ...


class Optimistic(Protocol):
    """What a backend may offer besides ``Storage``: appends that hold nothing while they go
    well. The engine looks for ``appender`` and, when it finds one, builds the writes of a
    session it has cached on that view without reading first."""

    def appender(self, session_id: str) -> AbstractContextManager[Transaction]:
        """A transaction that holds the session only once it must: its ``append`` checks, in
        the write itself, that the stored log still ends at ``after`` (else StaleHeadError,
        nothing stored); its first read holds the session as ``writer`` does (the caller then
        catches up and appends again, and cannot lose again to another holder)."""
        ...


class ChangeFeed(Protocol):
    """Word of appends to any session, from any process (see ``Storage.changes``)."""

    def wait(self, timeout: float) -> set[str] | None:
        """The ids of sessions appended to, waiting up to ``timeout`` seconds for the first;
        None when the backend cannot tell which (look at every session)."""
        ...

    def close(self) -> None: ...


class Storage(Protocol):
    """What the engine needs from a backend.

    Attributes:
        root: where the journal is, for people (a folder, or a URL without its secrets).
        kind: the backend's name ("files", "postgres", "memory", ...).
    """

    root: str
    kind: str

    def location(self, session_id: str) -> str:
        """Where the session's log is, for messages (a path, or a URL and the id)."""
        ...

    def stamp(self, session_id: str) -> Stamp | None:
        """A cheap value that changes whenever the session's log changes; None if absent.

        Raises:
            CorruptLogError: the session's history is stored but its log is lost.
        """
        ...

    def history_stamp(self, session_id: str) -> Stamp:
        """A cheap value that changes when compaction moves the session's history around."""
        ...

    def reader(self, session_id: str) -> Source:
        """Reads of the session without any lock (readers never wait for writers)."""
        ...

    def writer(self, session_id: str) -> AbstractContextManager[Transaction]:
        """The session held exclusively, across threads and processes.

        Raises:
            LockTimeoutError: another writer held it longer than the backend waits.
        """
        ...

    def delete(self, session_id: str) -> bool:
        """Erase the session's stored data, under its writer lock; False if there was none."""
        ...

    def session_ids(self) -> Iterator[str]:
        """The ids of every stored session (one whose stored data cannot be read is skipped)."""
        ...

    def targets(self, session_id: str | None) -> list[Target]:
        """What ``verify`` checks for one session (empty: nothing stored) or all, damaged
        ones included."""
        ...

    def verify(self, target: Target, anchor: Anchor | None) -> SessionCheck:
        """Check one target's whole stored history, snapshots, set-aside data and ``anchor``,
        under its writer lock."""
        ...

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        """Keep the longest intact prefix, setting aside everything after it; None if nothing
        of the session is stored."""
        ...

    def changes(self) -> ChangeFeed:
        """Start listening for appends (whatever is appended after this returns is heard)."""
        ...

    def reopen(self) -> Storage:
        """Another storage object on the same stored data, sharing nothing in memory: what
        another process would open (tools, tests of cross-process behaviour)."""
        ...

    def close(self) -> None:
        """Finish pending syncs and release files and connections; idempotent."""
        ...
