"""The seam between the Journal and where its logs live.

A backend stores, per session, an ordered list of encoded event lines (see ``codec``) and offers
exactly these operations: read the checked events after a known point, tell cheaply whether a
session changed since a point, run an exclusive write transaction (read what others appended,
then append after an expected head), list and delete sessions. Everything above this seam
(caching, batching, semantics) is backend-independent; the files backend is ``filestore``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from journal.core.chain import History, Record
from journal.core.head import Head
from journal.core.state import Session

if TYPE_CHECKING:
    from journal.core.reports import Anchor, RepairReport, SessionCheck

__all__ = [
    "PruneResult",
    "StaleHeadError",
    "Stamp",
    "Storage",
    "Transaction",
]


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
