"""The one write path: every write of a session runs here, in its queue, under its locks.

Writes to a session queue up behind the one in progress; the first caller leads, takes every
queued write and runs them under the session's thread lock and the backend's writer lock: read
what other processes appended (catch up), check each write against the true state, append all
their events with one ``append`` (group commit: one write and one fsync), publish the new view,
then hand the lead to the next queued caller. A write is either a *build* (events from the
state: batched with its neighbours) or an *exclusive step* (redaction, compaction, restoring an
exported session: it runs alone with the transaction, and appends through the same encoding
and fold). After each batch the maintenance policy runs: pruning past ``archive_after`` (with
``retention``), or a snapshot when one is due, written once the lead is handed over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Generic, Literal, TypeVar

import msgspec

from journal.core.codec import encode
from journal.core.commands import Build
from journal.core.events import Event
from journal.core.head import Line
from journal.core.state import Session, apply
from journal.engine.cache import Sessions, Slot, View
from journal.engine.loading import load
from journal.engine.options import Options
from journal.engine.storage import Storage, Transaction
from journal.errors import JournalError, StaleHeadError

__all__ = ["Committer", "Op", "Step", "utc_now_after"]

log = logging.getLogger("journal")

_T = TypeVar("_T")
_GENESIS = "0" * 64
# Attempts of one batch against an optimistic backend: the first on the cached view, the next
# ones caught up with the session held (only a writer that holds no lock can pass them).
_ATTEMPTS = 4


class Step:
    """What an exclusive write works with: the transaction, the caught-up view, and appends
    through the one encoding and fold. ``snapshot_now`` asks for a snapshot after it."""

    __slots__ = ("committer", "sid", "snapshot_now", "tx", "view")

    def __init__(self, committer: Committer, sid: str, tx: Transaction, view: View | None) -> None:
        self.committer = committer
        self.sid = sid
        self.tx = tx
        self.view = view
        self.snapshot_now = False

    def append(self, events: Sequence[Event]) -> View:
        """Store ``events`` (built on ``view``) and move ``view`` on past them."""
        view = self.view
        state, _, lines, size = folded(
            None if view is None else view.state, None if view is None else view.head.hash, events
        )
        assert state is not None
        self.view = self.committer.stored(self.tx, view, state, lines, size)
        return self.view


class Op(msgspec.Struct, Generic[_T]):
    """One queued write: a build, or an exclusive step (``run``). Only a caller that waits
    behind a leader gets an event to wait on."""

    build: Build | None
    run: Callable[[Step], _T] | None
    finished: bool = False
    lead: bool = False
    wakeup: threading.Event | None = None
    result: Session | _T | None = None
    error: BaseException | None = None

    def wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup.set()


class Committer:
    """Runs the writes of one Journal's sessions; see the module docstring."""

    def __init__(self, storage: Storage, sessions: Sessions[Op[Any]], options: Options) -> None:
        self.storage = storage
        self.sessions = sessions
        self.options = options
        # The backend's optimistic transaction for builds on a cached view, if it has one.
        self._appender: Callable[[str], AbstractContextManager[Transaction]] | None = getattr(
            storage, "appender", None
        )

    def write(self, sid: str, build: Build) -> Session:
        """Queue one build and return the session after its events (or raise its error)."""
        return self._submit(sid, Op(build, None))  # type: ignore[return-value]

    def exclusive(self, sid: str, run: Callable[[Step], _T]) -> _T:
        """Queue ``run`` to run alone under the session's locks, caught up; return its result."""
        return self._submit(sid, Op(None, run))  # type: ignore[return-value]

    def _submit(self, sid: str, op: Op[_T]) -> object:
        sessions = self.sessions
        while True:
            slot = sessions.slots.get(sid) or sessions.find(sid)
            with slot.qlock:  # pins the slot (see cache.Slot) and queues, or leads
                if slot.evicted:
                    continue
                slot.users += 1
                slot.used = True
                lead = not slot.leading
                if lead:
                    slot.leading = True
                else:
                    op.wakeup = threading.Event()
                    slot.queue.append(op)
            break
        due = self._lead(sid, slot, [op]) if lead else self._follow(sid, slot, op)
        if due is not None:  # after handing over: nobody waits for a snapshot
            self._write_snapshot(sid, slot, due)
        if op.error is not None:
            raise op.error
        return op.result

    def _follow(self, sid: str, slot: Slot[Op[Any]], op: Op[_T]) -> View | None:
        """Wait until a leader ran ``op``, or promoted it to lead the writes queued meanwhile."""
        assert op.wakeup is not None
        try:
            op.wakeup.wait()
        except BaseException:
            # Interrupted (KeyboardInterrupt): leave the queue, or if just promoted pass the
            # lead on, so that the session's queue never waits on a caller that is gone.
            with slot.qlock:
                if op in slot.queue:
                    slot.queue.remove(op)
                promoted = op.lead and not op.finished
            if promoted:
                self._hand_over(slot)
            else:
                self.sessions.unpin(slot)
            raise
        if op.lead and not op.finished:
            with slot.qlock:
                batch, slot.queue = slot.queue, []
            return self._lead(sid, slot, batch)
        self.sessions.unpin(slot)
        return None

    def _lead(self, sid: str, slot: Slot[Op[Any]], batch: list[Op[Any]]) -> View | None:
        """Run ``batch`` (the leader's op is in it), then hand the lead to the next queued
        write and unpin; returns a snapshot that is due."""
        try:
            return self._run_batch(sid, slot, batch)
        finally:
            self._hand_over(slot)

    def _hand_over(self, slot: Slot[Op[Any]]) -> None:
        with slot.qlock:
            slot.users -= 1
            if slot.queue:
                successor = slot.queue[0]
                successor.lead = True
                successor.wake()
            else:
                slot.leading = False

    def _run_batch(self, sid: str, slot: Slot[Op[Any]], batch: list[Op[Any]]) -> View | None:
        """Run a batch of writes under the session's locks; returns the view to snapshot when
        one is due."""
        due = None
        try:
            # The one "lock, catch up" block: every write starts from the stored truth.
            # No slot.lock: the queue already makes this the session's only writer in this
            # Journal, and a view a reader publishes meanwhile is caught up like any other.
            # With a backend that checks the head as it appends (``Optimistic``), builds on a
            # cached view skip the catch-up: a stale head fails the append, and the batch is
            # built again on the caught-up view (see ``_optimistic``).
            view = slot.view
            opener: Callable[[str], AbstractContextManager[Transaction]] = self.storage.writer
            lazy = False
            if self._appender is not None and view is not None and self._optimistic(batch):
                opener, lazy = self._appender, True
            with opener(sid) as tx:
                if not lazy:
                    view = slot.view = load(view, tx)
                for attempt in range(_ATTEMPTS):
                    try:
                        view = self._ops(sid, tx, view, batch, lazy)
                        break
                    except StaleHeadError:
                        if self._appender is None or attempt == _ATTEMPTS - 1:
                            raise
                        # Another process appended since the view was read: catch up (the
                        # backend holds the session from this read on) and build again.
                        for op in batch:
                            op.error = op.result = None
                        lazy = False
                        view = slot.view = load(slot.view, tx)
                slot.view = view
                upkeep = None if view is None else self._upkeep_due(view)
                if upkeep == "prune":
                    slot.view = self._auto_prune(sid, tx, view)  # type: ignore[arg-type]
                elif upkeep == "snapshot":
                    due = view
        except BaseException as exc:
            for op in batch:
                if op.error is None and not op.finished:
                    op.error = exc
                    op.result = None
        for op in batch:
            op.finished = True
            if op.wakeup is not None and not op.lead:
                op.wakeup.set()
        return due

    @staticmethod
    def _optimistic(batch: list[Op[Any]]) -> bool:
        """Whether the batch may be built on the cached view: builds only (an exclusive step
        always starts caught up, with the session held)."""
        return all(op.run is None for op in batch)

    def _ops(
        self, sid: str, tx: Transaction, view: View | None, batch: list[Op[Any]], lazy: bool
    ) -> View | None:
        """Run the batch's writes in order on ``view``; the view after them. ``lazy``: the view
        was not caught up, so any refused build may be the stale view's doing (StaleHeadError)."""
        builds: list[Op[Any]] = []
        for op in batch:
            if op.run is None:
                builds.append(op)  # consecutive builds go out in one append
                continue
            if builds:
                view, builds = self._builds(tx, view, builds, lazy), []
            view = self._step(sid, tx, view, op)
        if builds:
            view = self._builds(tx, view, builds, lazy)
        return view

    def _step(self, sid: str, tx: Transaction, view: View | None, op: Op[Any]) -> View | None:
        """Run one exclusive step; the view after it."""
        step = Step(self, sid, tx, view)
        run = op.run
        assert run is not None
        try:
            op.result = run(step)
        except JournalError as exc:
            op.error = exc
        view = step.view
        if step.snapshot_now and view is not None:
            view = self._snapshot_now(tx, view)
        return view

    def _builds(
        self, tx: Transaction, view: View | None, ops: list[Op[Any]], lazy: bool = False
    ) -> View | None:
        """Run consecutive builds: their events go out together, in one append."""
        state = None if view is None else view.state
        prev = None if view is None else view.head.hash
        lines: list[Line] = []
        size = 0
        done: list[tuple[Op[Any], Session]] = []
        for op in ops:
            build = op.build
            assert build is not None
            try:
                events = build(state, 1 if state is None else state.version + 1, utc_now_after(state))
                after, chained, mine, bytes_ = folded(state, prev, events)
            except JournalError as exc:
                op.error = exc
                continue
            if after is None:
                op.error = AssertionError("a write built no event")
                continue
            lines += mine
            size += bytes_
            state, prev = after, chained
            done.append((op, after))
        if lazy and len(done) < len(ops):
            raise StaleHeadError()  # refused on a view not caught up: decide on the stored truth
        if lines:
            assert state is not None
            view = self.stored(tx, view, state, lines, size)
        for op, after in done:
            op.result = after
        return view

    def stored(
        self, tx: Transaction, view: View | None, state: Session, lines: list[Line], size: int
    ) -> View:
        """Append ``lines`` (``size`` bytes, whose fold gives ``state``) after ``view``; the
        view after them."""
        head, stamp = tx.append(None if view is None else view.head, lines)
        if view is None:
            return View(state, head, stamp, 0, size)
        return View(state, head, stamp, view.snap_seq, view.unsnapped + size, view.moved_on())

    # -- maintenance -----------------------------------------------------------------------

    def _upkeep_due(self, view: View) -> Literal["prune", "snapshot"] | None:
        """What the policy asks after a write: pruning, when the active log holds more events
        than ``archive_after``; else a snapshot, when ``snapshot_every`` events or
        ``snapshot_bytes`` bytes were stored since the last one."""
        options = self.options
        head = view.head
        if options.archive_after is not None and head.active > options.archive_after:
            return "prune"
        if options.snapshot_every and head.seq - view.snap_seq >= options.snapshot_every:
            return "snapshot"
        if options.snapshot_bytes and view.unsnapped >= options.snapshot_bytes:
            return "snapshot"
        return None

    def prune(self, tx: Transaction, view: View) -> tuple[View, int, int]:
        """Prune the active log into the archive (and apply the retention policy); returns the
        view after it and how many events were archived and dropped."""
        pruned = tx.prune(view.state, view.head)
        dropped = 0
        retention = self.options.retention
        if retention is not None:
            dropped = tx.retain(datetime.now(timezone.utc) - retention)
        return View(view.state, pruned.head, pruned.stamp, pruned.head.seq), pruned.archived, dropped

    def _auto_prune(self, sid: str, tx: Transaction, view: View) -> View | None:
        # The batch's appends are already written and durable: a failed pruning must not turn
        # them into errors (a caller retrying would append twice). It is logged, and the view
        # dropped so the next access reloads whatever the interrupted pruning left (always valid).
        try:
            return self.prune(tx, view)[0]
        except StaleHeadError:
            # Another writer appended since (a backend that appends without holding the
            # session): the next write past the mark prunes.
            return None
        except JournalError as exc:
            log.warning("%s: automatic pruning failed: %s", self.storage.location(sid), exc)
            return None

    def _snapshot_now(self, tx: Transaction, view: View) -> View:
        """After an exclusive step that asked for it: past ``archive_after``, prune (which leaves
        a snapshot), else record a snapshot."""
        if self._upkeep_due(view) == "prune":
            return self.prune(tx, view)[0]
        tx.save_snapshot(view.state, view.head)
        return msgspec.structs.replace(view, snap_seq=view.head.seq, unsnapped=0)

    def _write_snapshot(self, sid: str, slot: Slot[Op[Any]], view: View) -> None:
        # Outside the queue (the state is immutable, and a snapshot is only a cache), under the
        # writer lock for the write itself; a failure is logged, never raised.
        try:
            with self.storage.writer(sid) as tx:
                tx.save_snapshot(view.state, view.head)
        except Exception as exc:  # a cache must never fail the write it follows
            log.warning(
                "%s: could not write a snapshot at seq %d: %s", self.storage.location(sid), view.head.seq, exc
            )
            return
        with slot.lock:
            current = slot.view
            if current is not None and current.snap_seq < view.head.seq <= current.head.seq:
                slot.view = msgspec.structs.replace(
                    current, snap_seq=view.head.seq, unsnapped=current.unsnapped - view.unsnapped
                )


def folded(
    state: Session | None, prev: str | None, events: Sequence[Event]
) -> tuple[Session | None, str | None, list[Line], int]:
    """The one encoding and fold of a write: ``events`` applied to ``state`` and encoded as
    lines chained after ``prev``; returns the state after them, the last hash, the lines and
    their size in bytes."""
    lines = []
    size = 0
    for event in events:
        data, prev, hash_at = encode(event, prev or _GENESIS)
        state = apply(state, event)
        lines.append(Line(data, event.seq, prev, hash_at))
        size += len(data)
    return state, prev, lines, size


def utc_now_after(state: Session | None) -> datetime:
    """Now, but never before the session's last event (``at`` stays monotonic)."""
    now = datetime.now(timezone.utc)
    if state is not None and now < state.updated_at:
        return state.updated_at
    return now
