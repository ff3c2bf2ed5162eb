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

import logging
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from journal.backends.files.storage import FSYNC_POLICIES, FileStorage
from journal.core.chain import ErasureCheck, apply_record
from journal.core.commands import Build, NewMessage, add_build, check_message
from journal.core.events import Cleared, Created, Event, SettingsChanged
from journal.core.state import Message, Session
from journal.core.validate import (
    Point,
    check_actor,
    check_session_id,
    check_text,
    check_version,
    freeze_json,
    mapping,
    precondition,
    sequence,
    stop_condition,
)
from journal.engine.commit import Committer, Slot
from journal.engine.loading import BaseMark, Reader, View, load, retrying, streamed_history
from journal.engine.storage import Storage
from journal.engine.upkeep import Compaction, Upkeep
from journal.engine.writes import MessageWrites
from journal.errors import (
    HistoryPrunedError,
    InvalidValueError,
    JournalClosedError,
    SessionExistsError,
    SessionNotFoundError,
)

__all__ = ["Compaction", "Journal", "NewMessage"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

log = logging.getLogger("journal")


class Journal(MessageWrites, Upkeep):
    """A folder of append-only session journals, safe for threads and processes.

    Every write appends one event to the session's log and returns only after the line is
    written (and, with ``fsync="always"``, fsynced). Writes take an optional ``actor`` (who made
    the change) and ``expected_version`` (raise ConflictError instead of writing if the session
    moved on). Reads return immutable snapshots. ``close()`` (or ``with``) releases its files
    or connections; a Journal dropped without it is closed when garbage collected.

    Args:
        root: the folder holding the journal (created 0700 on first write).
        fsync: "always" (durable before a write returns; concurrent writers share fsyncs),
            "interval" (fsynced in the background about once a second), or "never" (left to
            the operating system: survives a process crash, not a power loss).
        max_cached_sessions: how many session states to keep in memory (LRU).
        lock_timeout: seconds to wait for another process's writer lock (negative: forever).
        snapshot_every: a writer records a snapshot once this many events were appended
            since the last one (0: never automatically).
        snapshot_bytes: ... or once the log grew by this many bytes since the last one.
        archive_after: when the active log holds more events than this, the writer crossing
            the mark prunes it into the archive (None: only ``compact(prune=True)`` does).
        retention: when pruning, archived events older than this are folded into the
            retention base and their segments deleted (None: archives are kept forever).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: str = "always",
        max_cached_sessions: int = 1024,
        lock_timeout: float = 60.0,
        snapshot_every: int = 1000,
        snapshot_bytes: int = 1 << 20,
        archive_after: int | None = None,
        retention: timedelta | None = None,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}; got {fsync!r}")
        for name, value in (
            ("max_cached_sessions", max_cached_sessions),
            ("snapshot_every", snapshot_every),
            ("snapshot_bytes", snapshot_bytes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an int >= 0; got {value!r}")
        if not isinstance(lock_timeout, (int, float)) or lock_timeout != lock_timeout:
            raise ValueError(f"lock_timeout must be a number of seconds; got {lock_timeout!r}")
        if archive_after is not None and (not isinstance(archive_after, int) or archive_after < 1):
            raise ValueError(f"archive_after must be an int >= 1 or None; got {archive_after!r}")
        if retention is not None and (not isinstance(retention, timedelta) or retention <= timedelta(0)):
            raise ValueError(f"retention must be a positive timedelta or None; got {retention!r}")
        self.snapshot_every = snapshot_every
        self.snapshot_bytes = snapshot_bytes
        self.archive_after = archive_after
        self.retention = retention
        location = os.fspath(root)
        self._storage: Storage
        if isinstance(location, str) and location.startswith(POSTGRES_SCHEMES):
            from journal.backends.postgres.storage import PgStorage

            storage = PgStorage(location, lock_timeout=lock_timeout)
            self._storage = storage
            self.root = storage.shown
        else:
            self._storage = FileStorage(root, fsync=fsync, lock_timeout=lock_timeout)
            self.root = str(location)
        self.fsync = fsync
        self.max_cached_sessions = max_cached_sessions
        self._committer = Committer(
            self._storage,
            snapshot_every=snapshot_every,
            snapshot_bytes=snapshot_bytes,
            archive_after=archive_after,
            retention=retention,
        )
        self._slots: OrderedDict[str, Slot] = OrderedDict()
        self._guard = threading.Lock()
        self._closed = False
        _journals.add(self)
        # Closes the storage once this Journal is garbage collected (or at interpreter exit)
        # if nobody called close(): an adapter made per request must not leak descriptors or
        # connections. It holds only the storage, never the Journal, or it would keep it alive.
        self._release = weakref.finalize(self, self._storage.close)

    @classmethod
    def from_url(cls, url: str | os.PathLike[str], **options: Any) -> Journal:
        """A Journal on the backend ``url`` names, so apps switch backends by configuration.

        ``postgresql://user@host/db`` (or ``postgres://``): the PostgreSQL backend (extra
        ``postgres``; the tables are created on first use). ``file:///path`` or a plain path:
        the files backend. ``options`` are the constructor's (``fsync`` only matters for files:
        a PostgreSQL write is durable when its transaction commits).

        Raises:
            ValueError: a URL scheme no backend serves.
        """
        text = os.fspath(url)
        if isinstance(text, str) and "://" in text and not text.startswith(POSTGRES_SCHEMES):
            parts = urlsplit(text)
            if parts.scheme != "file":
                raise ValueError(
                    f"no backend serves {parts.scheme}:// URLs (use postgresql://, file:// or a path)"
                )
            if parts.netloc not in ("", "localhost"):
                raise ValueError(f"a file:// URL cannot name another host ({parts.netloc}): use a local path")
            text = unquote(parts.path)
        return cls(text, **options)

    @property
    def backend(self) -> str:
        """``"files"`` or ``"postgres"``."""
        return "files" if isinstance(self._storage, FileStorage) else "postgres"

    def __repr__(self) -> str:
        return f"Journal({self.root!r}, fsync={self.fsync!r})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush background fsyncs and release files; later calls raise JournalClosedError.

        Calling it again does nothing. A Journal dropped without it is closed the same way
        when it is garbage collected, or at interpreter exit.
        """
        if not self._closed:
            self._closed = True
            self._release()  # runs the storage's close at most once, even racing the collector
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
        actor = check_actor(actor)

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            if state is not None:
                raise SessionExistsError(sid, 0, state.version)
            return Created(seq=seq, at=now, actor=actor, session_id=sid)

        return self._write(sid, build)

    def get_or_create(self, session_id: str, *, actor: str | None = None) -> Session:
        """Return the session, creating it first if it does not exist.

        Atomic as seen by callers: with other writers creating and deleting the session at the
        same time, each attempt either finds it or creates it, and is retried otherwise.
        """
        while True:
            try:
                return self.get(session_id)
            except SessionNotFoundError:
                pass
            try:
                return self.create(session_id, actor=actor)
            except SessionExistsError:
                continue  # created by another writer since: read it (or, if deleted again, retry)

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        references: Iterable[Any] | None = None,
        before: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Append a message and return it (durable per the fsync policy when this returns).

        Args:
            before: insert the message in front of the visible message with this id instead
                of appending it (recorded in the event, so replays place it there too).

        Raises:
            SessionNotFoundError: no such session.
            MessageNotFoundError: ``before`` names no visible message.
            ConflictError: ``expected_version`` is given and is not the session's version.
            InvalidValueError: role, content, metadata or references cannot be stored.
        """
        sid = check_session_id(session_id)
        message = check_message(role, content, metadata, references)
        anchor = None if before is None else check_text(before, "before", allow_empty=False)
        build = add_build(sid, check_version(expected_version), check_actor(actor), [message], before=anchor)
        messages = self._write(sid, build).messages
        return messages[-1] if anchor is None else messages[messages.index_of(message.message_id)]

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
        frozen = freeze_json({} if changes is None else mapping(changes, "changes"), "settings")
        removed = tuple(check_text(k, "remove", allow_empty=True) for k in sequence(remove, "remove"))
        actor = check_actor(actor)
        expected = check_version(expected_version)
        if not frozen and not removed:
            current = self.get(sid)
            precondition(sid, current, expected)
            return current

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            precondition(sid, state, expected)
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
        actor = check_actor(actor)
        expected = check_version(expected_version)

        def build(state: Session | None, seq: int, now: datetime) -> Event:
            precondition(sid, state, expected)
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

        Streams from the archive and the active log (each line checked as it is read), so it
        costs memory only for the event in hand. If a retention policy dropped early history,
        iteration starts after the dropped part.

        Raises:
            SessionNotFoundError: no such session (raised here, not on first iteration); or
                while iterating, if another caller deletes the session meanwhile.
            CorruptLogError: while iterating, at the first damaged line.
        """
        sid = check_session_id(session_id)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidValueError("after", f"must be an int >= 0; got {after!r}")
        if not self.exists(sid):
            raise SessionNotFoundError(sid)
        self._check_open()
        return self._events(sid, after)

    def replay(self, session_id: str, *, at: int | datetime | None = None) -> Session:
        """The session as it was: after event ``at`` (a seq) or at time ``at`` (aware datetime).

        Folds the log from its first event, independent of any cache; ``at=None`` replays all.
        A seq beyond the last event, or a time after it, gives the current state.

        Raises:
            SessionNotFoundError: no such session, or it did not exist yet at ``at``.
            HistoryPrunedError: ``at`` lies in history a retention policy dropped.
            ValueError: ``at`` is not an int >= 0, an aware datetime, or None.
            CorruptLogError: the replayed part of the log is damaged.
        """
        sid = check_session_id(session_id)
        stop = stop_condition(at)
        self._check_open()
        state = retrying(self._storage, sid, lambda: self._replay(sid, stop))
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

    def _pin(self, sid: str) -> Slot:
        self._check_open()
        with self._guard:
            slot = self._slots.get(sid)
            if slot is None:
                slot = self._slots[sid] = Slot()
            else:
                self._slots.move_to_end(sid)
            slot.users += 1
            return slot

    def _unpin(self, sid: str, slot: Slot) -> None:
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

    def _current(self, sid: str) -> View | None:
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
                reader = Reader(self._storage, sid)
                view = retrying(self._storage, sid, lambda: load(view, stamp, reader, self._storage, sid))
                slot.view = view
                return view
        finally:
            self._unpin(sid, slot)

    def _events(self, sid: str, after: int) -> Iterator[Event]:
        # A method, so the iterator holds the Journal: dropping the Journal mid-iteration
        # must not let its finalizer close the storage the iterator still reads from.
        for record in streamed_history(self._storage, sid):
            if record.event.seq > after:
                yield record.event

    def _replay(self, sid: str, stop: Callable[[Point], bool]) -> Session | None:
        state, base_head, records = self._storage.history(sid)
        if state is not None and base_head is not None and stop(BaseMark(base_head.seq, state.updated_at)):
            raise HistoryPrunedError(sid, base_head.seq)
        where = self._storage.location(sid)
        erasures = ErasureCheck(where)
        for record in records:
            if stop(record.event):
                return state
            state = apply_record(state, record, where)
            erasures.see(record)
        erasures.finish()
        return state

    def _write(self, sid: str, build: Build) -> Session:
        slot = self._pin(sid)
        try:
            return self._committer.write(sid, slot, build)
        finally:
            self._unpin(sid, slot)


_journals: weakref.WeakSet[Journal] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    for journal in list(_journals):
        journal._slots = OrderedDict()
        journal._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
