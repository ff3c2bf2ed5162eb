"""The Journal: the public facade joining the pure core (events, state) to storage.

Concurrency model:

* **Threads.** Each session has its own lock; no lock is held across I/O for more than one
  session. Writes to one session are queued and applied in batches by whichever caller
  arrives first (the leader): one write and one fsync cover every queued append (group commit).
* **Processes.** A batch runs under the session's file lock and first reads whatever other
  processes appended, so seqs stay contiguous and ``expected_version`` sees the true version.
* **Reads.** A cached state is returned after one ``stat`` shows the log unchanged; otherwise
  only the new tail is read. A cached state always equals a fresh replay of the log.
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from journal.codec import encode, normalize
from journal.errors import (
    ConflictError,
    CorruptLogError,
    InvalidValueError,
    JournalClosedError,
    JournalError,
    SessionExistsError,
    SessionNotFoundError,
)
from journal.events import Cleared, Created, Event, MessageAdded, SettingsChanged, freeze
from journal.filestore import FSYNC_POLICIES, FileStorage
from journal.paths import check_session_id
from journal.state import Message, Session, apply
from journal.storage import Head, Record, StaleHeadError, Stamp, Storage

__all__ = ["Journal"]


class _View(NamedTuple):
    """What the cache knows of a session, replaced as a whole so readers never see a mix."""

    state: Session
    head: Head
    stamp: Stamp | None


class _Slot:
    """Per-session in-process coordination: the session lock, the write queue, the cache."""

    __slots__ = ("leading", "lock", "qlock", "queue", "users", "view")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.qlock = threading.Lock()
        self.queue: list[_Op] = []
        self.leading = False
        self.view: _View | None = None
        self.users = 0


# A write: given the current state (None: absent) and the time, the event to append.
_Build = Callable[[Session | None, int, datetime], Event]


class _Op:
    __slots__ = ("build", "done", "error", "lead", "result")

    def __init__(self, build: _Build) -> None:
        self.build = build
        self.done = threading.Event()
        self.lead = False
        self.result: Session | None = None
        self.error: BaseException | None = None


class Journal:
    """A folder of append-only session journals, safe for threads and processes.

    Every write appends one event to the session's log and returns only after the line is
    written (and, with ``fsync="always"``, fsynced). Writes take an optional ``actor`` (who made
    the change) and ``expected_version`` (raise ConflictError instead of writing if the session
    moved on). Reads return immutable snapshots.

    Args:
        root: the folder holding the journal (created 0700 on first write).
        fsync: "always" (durable before a write returns; concurrent writers share fsyncs),
            "interval" (fsynced in the background about once a second), or "never" (left to
            the operating system: survives a process crash, not a power loss).
        max_cached_sessions: how many session states to keep in memory (LRU).
        lock_timeout: seconds to wait for another process's writer lock (negative: forever).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: str = "always",
        max_cached_sessions: int = 1024,
        lock_timeout: float = 60.0,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}; got {fsync!r}")
        if not isinstance(max_cached_sessions, int) or max_cached_sessions < 0:
            raise ValueError(f"max_cached_sessions must be an int >= 0; got {max_cached_sessions!r}")
        self._storage: Storage = FileStorage(root, fsync=fsync, lock_timeout=lock_timeout)
        self.root = str(os.fspath(root))
        self.fsync = fsync
        self.max_cached_sessions = max_cached_sessions
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._guard = threading.Lock()
        self._closed = False
        _journals.add(self)

    def __repr__(self) -> str:
        return f"Journal({self.root!r}, fsync={self.fsync!r})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush background fsyncs and release files; later calls raise JournalClosedError."""
        if not self._closed:
            self._closed = True
            self._storage.close()
            with self._guard:
                self._slots.clear()

    # -- writes ----------------------------------------------------------------------------

    def create(self, session_id: str | None = None, *, actor: str | None = None) -> Session:
        """Create a session and return it; a random id is chosen when ``session_id`` is None.

        Raises:
            SessionExistsError: the session already exists (nothing is written).
            InvalidSessionIdError: the id cannot name a session.
        """
        sid = uuid.uuid4().hex if session_id is None else check_session_id(session_id)
        actor = _check_actor(actor)

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            if state is not None:
                raise SessionExistsError(sid, 0, state.version)
            return Created(seq=seq, at=now, actor=actor, session_id=sid)

        return self._write(sid, build)

    def get_or_create(self, session_id: str, *, actor: str | None = None) -> Session:
        """Return the session, creating it first if it does not exist."""
        try:
            return self.get(session_id)
        except SessionNotFoundError:
            pass
        try:
            return self.create(session_id, actor=actor)
        except SessionExistsError:
            return self.get(session_id)  # another writer created it between the two calls

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        references: Iterable[Any] | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Append a message and return it (durable per the fsync policy when this returns).

        Raises:
            SessionNotFoundError: no such session.
            ConflictError: ``expected_version`` is given and is not the session's version.
            InvalidValueError: role, content, metadata or references cannot be stored.
        """
        sid = check_session_id(session_id)
        role = _check_text(role, "role", allow_empty=False)
        content = _check_text(content, "content")
        meta = freeze(normalize({} if metadata is None else _mapping(metadata, "metadata"), "metadata"))
        refs = freeze(
            normalize([] if references is None else _sequence(references, "references"), "references")
        )
        actor = _check_actor(actor)
        expected = _check_version(expected_version)
        message_id = uuid.uuid4().hex

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            _precondition(sid, state, expected)
            return MessageAdded(
                seq=seq,
                at=now,
                actor=actor,
                message_id=message_id,
                role=role,
                content=content,
                metadata=meta,
                references=refs,
            )

        return self._write(sid, build).messages[-1]

    def update_settings(
        self,
        session_id: str,
        changes: Mapping[str, Any] | None = None,
        *,
        remove: Iterable[str] = (),
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Session:
        """Set the keys in ``changes`` and delete the keys in ``remove``; return the session.

        Both happen in one event, atomically. With nothing to set or remove, nothing is
        written and the current session is returned (after the same checks).

        Raises:
            SessionNotFoundError, ConflictError, InvalidValueError: as for ``add_message``.
        """
        sid = check_session_id(session_id)
        plain = normalize({} if changes is None else _mapping(changes, "changes"), "settings")
        removed = tuple(_check_text(k, "remove", allow_empty=True) for k in _sequence(remove, "remove"))
        actor = _check_actor(actor)
        expected = _check_version(expected_version)
        if not plain and not removed:
            current = self.get(sid)
            _precondition(sid, current, expected)
            return current
        frozen = freeze(plain)

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            _precondition(sid, state, expected)
            return SettingsChanged(seq=seq, at=now, actor=actor, changes=frozen, removed=removed)

        return self._write(sid, build)

    def clear(
        self, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Session:
        """Empty the visible conversation; settings stay, and the log keeps every message.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
        """
        sid = check_session_id(session_id)
        actor = _check_actor(actor)
        expected = _check_version(expected_version)

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            _precondition(sid, state, expected)
            return Cleared(seq=seq, at=now, actor=actor)

        return self._write(sid, build)

    def delete(self, session_id: str) -> None:
        """Erase the session's files (its log and everything derived from it).

        Raises:
            SessionNotFoundError: no such session.
        """
        sid = check_session_id(session_id)
        slot = self._pin(sid)
        try:
            with slot.lock:
                slot.view = None
                if not self._storage.delete(sid):
                    raise SessionNotFoundError(sid)
        finally:
            self._unpin(sid, slot)

    # -- reads -----------------------------------------------------------------------------

    def get(self, session_id: str) -> Session:
        """The session's current state (an immutable snapshot).

        Raises:
            SessionNotFoundError: no such session.
            CorruptLogError: the part of the log read is damaged.
        """
        sid = check_session_id(session_id)
        view = self._current(sid)
        if view is None:
            raise SessionNotFoundError(sid)
        return view.state

    def exists(self, session_id: str) -> bool:
        """Whether the session exists (has at least its ``created`` event)."""
        return self._current(check_session_id(session_id)) is not None

    def events(self, session_id: str, *, after: int = 0) -> Iterator[Event]:
        """Every event with ``seq > after``, in order, cleared messages included.

        Streams from the log (each line checked as it is read), so it costs memory only for
        the event in hand.

        Raises:
            SessionNotFoundError: no such session (raised here, not on first iteration).
            CorruptLogError: while iterating, at the first damaged line.
        """
        sid = check_session_id(session_id)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(f"after must be an int >= 0; got {after!r}")
        if not self.exists(sid):
            raise SessionNotFoundError(sid)
        return (record.event for record in self._replayed(sid) if record.event.seq > after)

    def replay(self, session_id: str, *, at: int | datetime | None = None) -> Session:
        """The session as it was: after event ``at`` (a seq) or at time ``at`` (aware datetime).

        Folds the log from its first event, independent of any cache; ``at=None`` replays all.
        A seq beyond the last event, or a time after it, gives the current state.

        Raises:
            SessionNotFoundError: no such session, or it did not exist yet at ``at``.
            ValueError: ``at`` is not an int >= 0, an aware datetime, or None.
            CorruptLogError: the replayed part of the log is damaged.
        """
        sid = check_session_id(session_id)
        stop = _stop_condition(at)
        state: Session | None = None
        for record in self._replayed(sid):
            if stop(record.event):
                break
            state = apply(state, record.event)
        if state is None:
            shown = at.isoformat() if isinstance(at, datetime) else f"seq {at}"
            detail = "" if at is None else f"at {shown} (it did not exist yet)"
            raise SessionNotFoundError(sid, detail)
        return state

    def sessions(self) -> Iterator[str]:
        """The ids of every session, exactly as they were given to ``create``."""
        self._check_open()
        return self._storage.session_ids()

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError(self.root)

    def _pin(self, sid: str) -> _Slot:
        self._check_open()
        with self._guard:
            slot = self._slots.get(sid)
            if slot is None:
                slot = self._slots[sid] = _Slot()
            else:
                self._slots.move_to_end(sid)
            slot.users += 1
            return slot

    def _unpin(self, sid: str, slot: _Slot) -> None:
        with self._guard:
            slot.users -= 1
            # Evict least recently used idle slots; a slot in use is never dropped, so two
            # threads can never hold two different locks for one session.
            excess = len(self._slots) - self.max_cached_sessions
            if excess > 0:
                for key in list(self._slots)[: excess + 8]:
                    if excess <= 0:
                        break
                    if self._slots[key].users == 0:
                        del self._slots[key]
                        excess -= 1

    def _current(self, sid: str) -> _View | None:
        """The fresh view of a session (None if absent), reading only what changed."""
        slot = self._pin(sid)
        try:
            stamp = self._storage.stamp(sid)
            view = slot.view
            if view is not None and stamp is not None and view.stamp == stamp:
                return view
            if stamp is None:
                slot.view = None
                return None
            with slot.lock:
                view = slot.view
                if view is not None and stamp is not None and view.stamp == stamp:
                    return view
                view = _catch_up(
                    view, stamp, lambda after: self._storage.read(sid, after), self._storage, sid
                )
                slot.view = view
                return view
        finally:
            self._unpin(sid, slot)

    def _replayed(self, sid: str) -> Iterator[Record]:
        """Records from the first, checked against the fold as well as the chain."""
        state: Session | None = None
        for record in self._storage.read(sid):
            try:
                state = apply(state, record.event)
            except ValueError as exc:
                raise _fold_error(self._storage, sid, record, exc) from None
            yield record

    def _write(self, sid: str, build: _Build) -> Session:
        op = _Op(build)
        slot = self._pin(sid)
        try:
            with slot.qlock:
                slot.queue.append(op)
                lead = not slot.leading
                slot.leading = True
            if not lead:
                op.done.wait()
                if op.lead:  # promoted: the previous leader left our op queued
                    self._lead(sid, slot, op)
            else:
                self._lead(sid, slot, op)
        finally:
            self._unpin(sid, slot)
        if op.error is not None:
            raise op.error
        assert op.result is not None
        return op.result

    def _lead(self, sid: str, slot: _Slot, mine: _Op) -> None:
        try:
            while not mine.done.is_set() or mine.lead:
                mine.lead = False
                with slot.qlock:
                    batch, slot.queue = slot.queue, []
                if not batch:
                    break
                self._run_batch(sid, slot, batch)
        finally:
            with slot.qlock:
                if slot.queue:
                    successor = slot.queue[0]
                    successor.lead = True
                    successor.done.set()
                else:
                    slot.leading = False

    def _run_batch(self, sid: str, slot: _Slot, batch: list[_Op]) -> None:
        results: list[tuple[_Op, Session]] = []
        try:
            with slot.lock, self._storage.writer(sid) as tx:
                view = _catch_up(slot.view, None, tx.read, self._storage, sid)
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
                        event = op.build(state, seq, now)
                        line, digest, hash_at = encode(event, prev or "0" * 64)
                        state = apply(state, event)
                    except JournalError as exc:
                        op.error = exc
                        continue
                    lines.append((line, seq, digest, hash_at))
                    prev = digest
                    results.append((op, state))
                if lines:
                    assert state is not None
                    head, stamp = tx.append(None if view is None else view.head, lines)
                    slot.view = _View(state, head, stamp)
        except BaseException as exc:
            for op in batch:
                if op.error is None:
                    op.error = exc
            results = []
        for op, state in results:
            op.result = state
        for op in batch:
            if not op.lead:
                op.done.set()


_journals: weakref.WeakSet[Journal] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    for journal in list(_journals):
        journal._slots = OrderedDict()
        journal._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _catch_up(
    view: _View | None,
    stamp: Stamp | None,
    read: Callable[[Head | None], Iterator[Record]],
    storage: Storage,
    sid: str,
) -> _View | None:
    """Apply what was appended after ``view``; from the start if ``view`` went stale."""
    try:
        return _fold_records(view, stamp, read(None if view is None else view.head), storage, sid)
    except StaleHeadError:
        return _fold_records(None, stamp, read(None), storage, sid)


def _fold_records(
    view: _View | None, stamp: Stamp | None, records: Iterator[Record], storage: Storage, sid: str
) -> _View | None:
    state = None if view is None else view.state
    head = None if view is None else view.head
    for record in records:
        try:
            state = apply(state, record.event)
        except ValueError as exc:
            raise _fold_error(storage, sid, record, exc) from None
        head = record.head
    if state is None or head is None:
        return None
    if stamp is not None and stamp.position != head.position:
        stamp = None  # unread bytes past the last line: check again next time (see Stamp)
    return _View(state, head, stamp)


def _fold_error(storage: Storage, sid: str, record: Record, exc: ValueError) -> CorruptLogError:
    # The line itself checked out (hash, chain), yet the event cannot follow the ones before.
    return CorruptLogError(storage.location(sid), record.head.line, record.offset, str(exc))


def _precondition(sid: str, state: Session | None, expected: int | None) -> None:
    if state is None:
        raise SessionNotFoundError(sid)
    if expected is not None and expected != state.version:
        raise ConflictError(sid, expected, state.version)


def _stop_condition(at: int | datetime | None) -> Callable[[Event], bool]:
    if at is None:
        return lambda event: False
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at must be an aware datetime (with a time zone), not a naive one")
        moment = at
        return lambda event: event.at > moment
    if isinstance(at, int) and not isinstance(at, bool) and at >= 0:
        last = at
        return lambda event: event.seq > last
    raise ValueError(f"at must be a seq (int >= 0), an aware datetime or None; got {at!r}")


def _check_text(value: object, field: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(field, f"must be a str, not {type(value).__name__}")
    if not allow_empty and not value:
        raise InvalidValueError(field, "must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(field, "is not valid Unicode (lone surrogate)") from None
    return str(value)


def _check_actor(actor: object) -> str | None:
    return None if actor is None else _check_text(actor, "actor")


def _check_version(expected: object) -> int | None:
    if expected is None:
        return None
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
        raise ValueError(f"expected_version must be an int >= 0 or None; got {expected!r}")
    return int(expected)


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidValueError(field, f"must be a mapping, not {type(value).__name__}")
    return value


def _sequence(value: object, field: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidValueError(field, f"must be a list of values, not {type(value).__name__}")
    return list(value)
