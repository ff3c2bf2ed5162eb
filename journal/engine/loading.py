"""Bringing a session's cached view up to date, and reading whole histories, through one fold.

A view is rebuilt from the cheapest trustworthy source: the cached view plus what was appended
since; else the newest snapshot that agrees with the log plus the tail after it; else the whole
history (retention base, archive, active log). Every record goes through ``core.chain.Fold``
(the fold and its checks), whichever the source. Readers take no lock, so a compaction in
another process may move the history mid-read: such reads are retried (``retrying``), and a
streamed history resumes where it was (``stream``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import NamedTuple, TypeVar

import msgspec

from journal.core.chain import Fold
from journal.core.head import Head, Record
from journal.core.state import Session
from journal.core.validate import Point
from journal.engine.cache import View
from journal.engine.storage import Batch, Source, Storage
from journal.errors import CorruptLogError, HistoryPrunedError, SessionNotFoundError, StaleHeadError

__all__ = ["BaseMark", "load", "retrying", "stream", "until"]

log = logging.getLogger("journal")

_RETRIES = 3
_T = TypeVar("_T")


def retrying(storage: Storage, sid: str, read: Callable[[], _T]) -> _T:
    """Run a lock-free read again if a compaction moved the history under it.

    Readers take no lock, so pruning or retention in another process may replace the active
    log or drop archived events mid-read. That shows as a gap or a missing file; when the
    history's stamp changed meanwhile, reading again gives a consistent answer. Real damage
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


def load(view: View | None, source: Source) -> View | None:
    """The session's view: ``view`` plus what was appended since, else rebuilt (None: absent).

    Rebuilding prefers the newest snapshot that agrees with the log and reads only the log
    after it; without one it folds the whole history.
    """
    where = source.where
    if view is not None:
        try:
            batch = source.read(view.head)
            if not batch.records and batch.damage is None and batch.stamp == view.stamp:
                return view  # nothing new: the writer's usual case
            return _extended(view, batch, where)
        except StaleHeadError:
            pass  # the log was replaced (pruned, or deleted and created again)
    snapshot = source.snapshot()
    if snapshot is not None:
        state, head = snapshot
        try:
            return _extended(View(state, head, None, head.seq), source.read(head), where)
        except StaleHeadError:
            pass  # replaced between the check and the read: fall back to the history
        except CorruptLogError as exc:
            # Either the tail is damaged (the full replay below reports it again, located) or
            # the snapshot pointed somewhere wrong: it is only a cache, so do without it.
            log.warning("%s: reading on from its snapshot failed (%s); replaying the history", where, exc)
    base, base_head, records = source.history()
    fold = Fold(where, base, base_head)
    before_last: Head | None = None  # so that asking for the newest event reads one line
    for record in records:
        before_last = fold.head
        fold.add(record)
    fold.finish()
    if fold.state is None or fold.head is None:
        return None
    return View(fold.state, fold.head, None, 0, fold.size, () if before_last is None else (before_last,))


def _extended(view: View, batch: Batch, where: str) -> View:
    if not batch.records and batch.damage is None:
        return view if batch.stamp == view.stamp else msgspec.structs.replace(view, stamp=batch.stamp)
    fold = Fold(where, view.state, view.head)
    for record in batch.checked():
        fold.add(record)
    fold.finish()
    assert fold.state is not None
    assert fold.head is not None
    return View(
        fold.state, fold.head, batch.stamp, view.snap_seq, view.unsnapped + fold.size, view.moved_on()
    )


class BaseMark(NamedTuple):
    """Where a retention base ends, shaped enough like an event for a ``stop`` condition."""

    seq: int
    at: datetime


def until(storage: Storage, sid: str, stop: Callable[[Point], bool]) -> tuple[Session | None, Head | None]:
    """The session folded from the start of its stored history up to the first record ``stop``
    accepts (that record excluded); (None, None) if nothing comes before it.

    Raises:
        HistoryPrunedError: ``stop`` accepts the end of the retention base: that point was
            dropped.
        CorruptLogError: a record read is damaged.
    """
    base, base_head, records = storage.reader(sid).history()
    if base is not None and base_head is not None and stop(BaseMark(base_head.seq, base.updated_at)):
        raise HistoryPrunedError(sid, base_head.seq)
    fold = Fold(storage.location(sid), base, base_head)
    for record in records:
        if stop(record.event):
            return fold.state, fold.head
        fold.add(record)
    fold.finish()
    return fold.state, fold.head


def stream(storage: Storage, sid: str) -> Iterator[Record]:
    """Every record of the history, each checked by the fold as well as the chain.

    If a compaction in another process moves the history mid-read, reading resumes after the
    last record given (the backend skips what precedes it where it can); it gives up only when
    several attempts in a row make no progress. If a retention policy dropped events before any
    was given, the stream starts after its new base instead.
    """
    where = storage.location(sid)
    fold = Fold(where)
    given = False
    stalled = 0
    resume: Head | None = None
    while True:
        # The stamp is taken before the history is looked at: a move after it is always seen.
        stamp = storage.history_stamp(sid)
        progressed = False
        try:
            base, restart, records = storage.reader(sid).history(resume)
            last = fold.head
            if restart is not None and (last is None or restart.seq > last.seq):
                if given:  # events already given would be followed by a gap
                    raise HistoryPrunedError(sid, restart.seq)
                fold = Fold(where, base, restart)
            for record in records:
                last = fold.head
                if last is not None and record.event.seq <= last.seq:
                    if record.event.seq == last.seq and given and record.head.hash != last.hash:
                        # Not the history being read: the session was deleted and created
                        # again meanwhile.
                        raise SessionNotFoundError(sid, "deleted while its history was read")
                    continue  # given before the history moved
                fold.add(record)
                given = progressed = True
                yield record
            if not given and fold.state is None:
                # A session always holds an event or a base: it was deleted after the caller
                # checked it existed. Never answer with an empty history.
                raise SessionNotFoundError(sid, "deleted while its history was read")
            fold.finish()
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
                raise CorruptLogError(where, 0, 0, "history kept moving while it was read") from None
            resume = fold.head
