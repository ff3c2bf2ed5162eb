"""Writes to one session: the queue, its leader, and one batch under the session's locks.

Writes to a session queue up behind the one in progress; the first caller leads, takes every
queued write as one batch, and runs it under the session's thread lock and file lock: read
what other processes appended, check each write against the true state, append all lines with
one ``write`` and one fsync (group commit), publish the new view, then hand the lead to the next
queued caller. Snapshots due after a batch are written once the lead is handed over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import msgspec

from journal.core.codec import encode
from journal.core.events import Event
from journal.core.state import Session, apply
from journal.engine.loading import View, load
from journal.engine.storage import Storage, Transaction
from journal.errors import JournalError

__all__ = ["Build", "Committer", "Op", "Slot"]

log = logging.getLogger("journal")


class Slot:
    """Per-session in-process coordination: the session lock, the write queue, the cache."""

    __slots__ = ("leading", "lock", "qlock", "queue", "users", "view")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.qlock = threading.Lock()
        self.queue: list[Op] = []
        self.leading = False
        self.view: View | None = None
        self.users = 0


# A write: given the current state (None: absent), the next seq and the time, the event(s) to
# append. Several events of one write go out together, with consecutive seqs.
Build = Callable[[Session | None, int, datetime], Event | Sequence[Event]]


class Op:
    """One queued write. Only a caller that waits behind a leader gets an Event to wait on."""

    __slots__ = ("build", "error", "finished", "lead", "result", "wakeup")

    def __init__(self, build: Build) -> None:
        self.build = build
        self.finished = False
        self.lead = False
        self.wakeup: threading.Event | None = None
        self.result: Session | None = None
        self.error: BaseException | None = None

    def wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup.set()


class Committer:
    """Runs the writes of one Journal; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        *,
        snapshot_every: int,
        snapshot_bytes: int,
        archive_after: int | None,
        retention: timedelta | None,
    ) -> None:
        self.storage = storage
        self.snapshot_every = snapshot_every
        self.snapshot_bytes = snapshot_bytes
        self.archive_after = archive_after
        self.retention = retention

    def prune(self, tx: Transaction, view: View) -> tuple[View, int, int]:
        result, stamp = tx.prune(view.state, view.head)
        dropped = 0
        if self.retention is not None:
            dropped = tx.retain(datetime.now(timezone.utc) - self.retention)
        head = result.head
        return View(view.state, head, stamp, head.seq, head.position), result.archived, dropped

    def auto_prune(self, sid: str, tx: Transaction, view: View) -> View | None:
        # The batch's appends are already written and durable: a failed pruning must not turn
        # them into errors (a caller retrying would append twice). It is logged, and the view
        # dropped so the next access reloads whatever the interrupted pruning left (always valid).
        try:
            return self.prune(tx, view)[0]
        except JournalError as exc:
            log.warning("%s: automatic pruning failed: %s", self.storage.location(sid), exc)
            return None

    def prune_due(self, view: View) -> bool:
        """Whether the active log holds more events than ``archive_after``."""
        return self.archive_after is not None and view.head.line > self.archive_after

    def snapshot_due(self, view: View) -> bool:
        head = view.head
        if self.snapshot_every and head.seq - view.snap_seq >= self.snapshot_every:
            return True
        return bool(self.snapshot_bytes) and head.position - view.snap_position >= self.snapshot_bytes

    def write(self, sid: str, slot: Slot, build: Build) -> Session:
        """Queue one write on ``slot`` and return the session after it (or raise its error)."""
        op = Op(build)
        with slot.qlock:
            slot.queue.append(op)
            lead = not slot.leading
            slot.leading = True
            if not lead:
                op.wakeup = threading.Event()
        due = None
        if lead:
            due = self._lead(sid, slot, op)
        else:
            self._follow(sid, slot, op)
            if op.lead:  # promoted: the previous leader left our op queued
                due = self._lead(sid, slot, op)
        if due is not None:  # after handing over: nobody waits for a snapshot
            self._write_snapshot(sid, slot, due)
        if op.error is not None:
            raise op.error
        assert op.result is not None
        return op.result

    def _follow(self, sid: str, slot: Slot, op: Op) -> None:
        """Wait until a leader ran ``op`` or promoted it to lead."""
        assert op.wakeup is not None
        try:
            op.wakeup.wait()
        except BaseException:
            # Interrupted (KeyboardInterrupt): leave the queue, or if just promoted pass the
            # lead on, so that the session's queue never waits on a caller that is gone.
            with slot.qlock:
                if op in slot.queue:
                    slot.queue.remove(op)
            if op.lead and not op.finished:
                op.lead = False
                self._hand_over(slot)
            raise

    def _hand_over(self, slot: Slot) -> None:
        with slot.qlock:
            if slot.queue:
                successor = slot.queue[0]
                successor.lead = True
                successor.wake()
            else:
                slot.leading = False

    def _lead(self, sid: str, slot: Slot, mine: Op) -> View | None:
        """Run batches until ``mine`` is done, then hand the lead on; returns a due snapshot."""
        due = None
        try:
            while not mine.finished or mine.lead:
                mine.lead = False
                with slot.qlock:
                    batch, slot.queue = slot.queue, []
                if not batch:
                    break
                due = self._run_batch(sid, slot, batch) or due
        finally:
            self._hand_over(slot)
        return due

    def _write_snapshot(self, sid: str, slot: Slot, view: View) -> None:
        # Outside every lock: the state is immutable and a snapshot is only a cache, written
        # atomically under its own name; a failure is logged by the storage, never raised.
        self.storage.save_snapshot(sid, view.state, view.head)
        with slot.lock:
            current = slot.view
            if current is not None and current.snap_seq < view.head.seq <= current.head.seq:
                slot.view = current._replace(snap_seq=view.head.seq, snap_position=view.head.position)

    def _run_batch(self, sid: str, slot: Slot, batch: list[Op]) -> View | None:
        """Apply a batch of writes; returns the view to snapshot when one is due."""
        results: list[tuple[Op, Session]] = []
        due = None
        try:
            with slot.lock, self.storage.writer(sid) as tx:
                view = load(slot.view, None, tx, self.storage, sid)
                slot.view = view
                state = None if view is None else view.state
                lines: list[tuple[bytes, int, str, int]] = []
                prev = None if view is None else view.head.hash
                for op in batch:
                    seq = 1 if state is None else state.version + 1
                    now = datetime.now(timezone.utc)
                    if state is not None and now < state.updated_at:
                        now = state.updated_at  # keep `at` monotonic within a session
                    try:
                        built = op.build(state, seq, now)
                        events = (built,) if isinstance(built, msgspec.Struct) else built
                        mine, after, chained = [], state, prev
                        for event in events:
                            line, digest, hash_at = encode(event, chained or "0" * 64)
                            after = apply(after, event)
                            mine.append((line, event.seq, digest, hash_at))
                            chained = digest
                    except JournalError as exc:
                        op.error = exc
                        continue
                    if after is None:
                        op.error = AssertionError("a write built no event")
                        continue
                    lines.extend(mine)
                    state, prev = after, chained
                    results.append((op, after))
                if lines:
                    assert state is not None
                    head, stamp = tx.append(None if view is None else view.head, lines)
                    snap = (0, 0) if view is None else (view.snap_seq, view.snap_position)
                    view = slot.view = View(state, head, stamp, *snap)
                    if self.prune_due(view):
                        slot.view = self.auto_prune(sid, tx, view)
                    elif self.snapshot_due(view):
                        due = view
        except BaseException as exc:
            for op in batch:
                if op.error is None:
                    op.error = exc
            results = []
        for op, state in results:
            op.result = state
        for op in batch:
            op.finished = True
            if not op.lead:
                op.wake()
        return due
