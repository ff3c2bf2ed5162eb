"""Bringing a session's cached view up to date from storage, and reading whole histories.

A view is rebuilt from the cheapest trustworthy source: the cached view plus what was appended
since; else the newest snapshot that agrees with the log plus the tail after it; else the whole
history (retention base, archive, active log). Readers take no lock, so a compaction in another
process may move files mid-read: such reads are retried (see ``retrying``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import NamedTuple, TypeVar

from journal.core.chain import ErasureCheck, History, Record, apply_record
from journal.core.head import Head
from journal.core.state import Session
from journal.engine.storage import StaleHeadError, Stamp, Storage, Transaction
from journal.errors import CorruptLogError, HistoryPrunedError, SessionNotFoundError

__all__ = ["BaseMark", "Reader", "View", "load", "retrying", "streamed_history"]

log = logging.getLogger("journal")


class View(NamedTuple):
    """What the cache knows of a session, replaced as a whole so readers never see a mix.

    ``snap_seq`` and ``snap_position`` say where the newest snapshot known to this process
    stands, to decide when the next one is due.
    """

    state: Session
    head: Head
    stamp: Stamp | None
    snap_seq: int = 0
    snap_position: int = 0


_RETRIES = 3
_T = TypeVar("_T")


def retrying(storage: Storage, sid: str, read: Callable[[], _T]) -> _T:
    """Run a lock-free history read again if a compaction moved files under it.

    Readers take no lock, so pruning or retention in another process may replace the active
    log or delete archive segments mid-read. That shows as a gap or a missing file; when the
    files' stamp changed meanwhile, reading again gives a consistent answer. Real damage
    raises the same error with an unchanged stamp, and is reported.
    """
    for attempt in range(_RETRIES + 1):
        stamp = storage.history_stamp(sid)
        try:
            return read()
        except (CorruptLogError, HistoryPrunedError):
            if attempt == _RETRIES or storage.history_stamp(sid) == stamp:
                raise
    raise AssertionError("unreachable")


def streamed_history(storage: Storage, sid: str) -> Iterator[Record]:
    """Every record of the history, each checked against the fold as well as the chain.

    If a compaction in another process moves files mid-read, reading resumes after the last
    record given (from the archive segment now holding it, not from the start); it gives up
    only when several attempts in a row make no progress. If a retention policy dropped
    events before any was given, the stream starts after its new base instead.
    """
    state: Session | None = None
    last, last_hash = 0, ""
    given = False
    stalled = 0
    resume: tuple[int, str] | None = None
    where = storage.location(sid)
    erasures = ErasureCheck(where)
    while True:
        # The stamp is taken before the files are looked at: a move after it is always seen.
        stamp = storage.history_stamp(sid)
        progressed = False
        try:
            base, restart, records = storage.history(sid, resume)
            if restart is not None and restart.seq > last:
                if given:  # events already given would be followed by a gap
                    raise HistoryPrunedError(sid, restart.seq)
                state, last, last_hash = base, restart.seq, restart.hash
            for record in records:
                if record.event.seq <= last:
                    if record.event.seq == last and given and record.head.hash != last_hash:
                        # Not the history we were reading: the session was deleted and
                        # created again meanwhile.
                        raise SessionNotFoundError(sid, "deleted while its history was read")
                    continue  # given before files moved
                state = apply_record(state, record, where)
                erasures.see(record)
                last, last_hash, given, progressed = record.event.seq, record.head.hash, True, True
                yield record
            if not given and state is None:
                # A session always holds an event or a base: it was deleted after the caller
                # checked it existed. Never answer with an empty history.
                raise SessionNotFoundError(sid, "deleted while its history was read")
            erasures.finish()
            return
        except CorruptLogError:
            if storage.stamp(sid) is None:
                raise SessionNotFoundError(sid, "deleted while its history was read") from None
            if storage.history_stamp(sid) == stamp:
                if resume is None:
                    raise
                resume = None  # the shortcut did not chain on: read from the start to know why
                continue
            stalled = 0 if progressed else stalled + 1
            if stalled > _RETRIES:
                raise CorruptLogError(
                    storage.location(sid), 0, 0, "history kept moving while it was read"
                ) from None
            resume = (last, last_hash) if last else None


class Reader:
    """The read-only side of a storage, for one session, shaped like a write transaction."""

    def __init__(self, storage: Storage, sid: str) -> None:
        self.storage = storage
        self.sid = sid

    def read(self, after: Head | None) -> Iterator[Record]:
        return self.storage.read(self.sid, after)

    def snapshot(self) -> tuple[Session, Head] | None:
        return self.storage.snapshot(self.sid)

    def history(self) -> History:
        return self.storage.history(self.sid)


def load(
    view: View | None, stamp: Stamp | None, source: Reader | Transaction, storage: Storage, sid: str
) -> View | None:
    """The session's view: ``view`` plus what was appended since, else rebuilt.

    Rebuilding prefers the newest snapshot that agrees with the active log and reads only the
    log after it; without one it folds the whole history (archive and active log).
    """
    if view is not None:
        try:
            return fold(view.state, view.head, source.read(view.head), stamp, view, storage, sid)
        except StaleHeadError:
            pass  # the log was replaced (pruned, or deleted and created again)
    snapshot = source.snapshot()
    if snapshot is not None:
        state, head = snapshot
        mark = View(state, head, None, head.seq, head.position)
        try:
            return fold(state, head, source.read(head), stamp, mark, storage, sid)
        except StaleHeadError:
            pass  # replaced between the check and the read: fall back to the history
        except CorruptLogError as exc:
            # Either the tail is damaged (the full replay below reports it again, located) or
            # the snapshot pointed somewhere wrong: it is only a cache, so do without it.
            log.warning("%s: reading on from its snapshot failed (%s); replaying the history", sid, exc)
    base, base_head, records = source.history()
    return fold(base, base_head, records, stamp, None, storage, sid)


def fold(
    state: Session | None,
    head: Head | None,
    records: Iterator[Record],
    stamp: Stamp | None,
    snap: View | None,
    storage: Storage,
    sid: str,
) -> View | None:
    # Made at the first line (its location is for error messages): not on every write's check.
    erasures: ErasureCheck | None = None
    for record in records:
        if erasures is None:
            erasures = ErasureCheck(storage.location(sid))
        state = apply_record(state, record, erasures.path)
        erasures.see(record)
        head = record.head
    if erasures is not None:
        erasures.finish()
    if state is None or head is None:
        return None
    if stamp is not None and stamp.position != head.position:
        stamp = None  # unread bytes past the last line: check again next time (see Stamp)
    if snap is None:
        return View(state, head, stamp)
    return View(state, head, stamp, snap.snap_seq, snap.snap_position)


class BaseMark(NamedTuple):
    """Where a retention base ends, shaped enough like an event for ``stop_condition``."""

    seq: int
    at: datetime
