"""The Journal: the public facade, checking arguments and handing work to the engine.

Every method checks its arguments first (bad input raises before anything is stored), then
delegates: writes to the committer (``commit``: one queue, one lock-and-catch-up block, one
encoding and fold), reads to the cache and the loader (``cache``, ``loading``), upkeep to
``maintenance``. Configuration lives in one ``Options`` object that all of them read.

Concurrency model:

* **Threads.** Each session has its own lock; no lock is held across I/O for more than one
  session. Writes to one session are queued and applied in batches by whichever caller
  arrives first (the leader): one write and one fsync cover every queued append (group commit).
* **Processes.** A batch runs under the backend's writer lock and first reads whatever other
  processes appended, so seqs stay contiguous and ``expected_version`` sees the true version.
* **Reads.** A cached state is returned after one cheap check (``Storage.stamp``) shows the log
  unchanged; otherwise only what was appended is read. A cached state always equals a fresh
  replay of the log.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from journal.core.commands import (
    Build,
    NewMessage,
    add_build,
    check_message,
    checked_messages,
    clear_build,
    create_build,
    edit_build,
    remove_build,
    settings_build,
)
from journal.core.events import Event
from journal.core.head import Head
from journal.core.reports import Anchor, RepairReport, VerifyReport
from journal.core.state import Message, Session
from journal.core.validate import (
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
from journal.engine import maintenance
from journal.engine.cache import Sessions, View
from journal.engine.commit import Committer, Op, Step
from journal.engine.loading import load, retrying, stream, until
from journal.engine.maintenance import Compaction
from journal.engine.options import FsyncPolicy, Options, fsync_policy, seconds
from journal.engine.storage import Exported, Storage
from journal.errors import (
    InvalidValueError,
    JournalClosedError,
    SessionExistsError,
    SessionNotFoundError,
    StaleHeadError,
    VersionNotFoundError,
)

__all__ = ["Compaction", "Journal", "NewMessage", "Opener", "use_opener"]

Opener = Callable[[str, FsyncPolicy, float], Storage]
"""Opens the storage a root names (a folder or a URL) with an fsync policy and lock timeout."""

_opener: Opener | None = None


def use_opener(opener: Opener) -> None:
    """Set how ``Journal(root)`` opens a storage. ``journal.backends`` sets it when imported
    (``import journal`` does): the engine itself never imports a backend."""
    global _opener
    _opener = opener


_V = TypeVar("_V")


class _Setting(Generic[_V]):
    """One of a Journal's settable options, kept in its ``Options`` (see ``Journal``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, journal: None, owner: type) -> _Setting[_V]: ...

    @overload
    def __get__(self, journal: Journal, owner: type) -> _V: ...

    def __get__(self, journal: Journal | None, owner: type) -> _Setting[_V] | _V:
        if journal is None:
            return self
        value: _V = getattr(journal._options, self.name)
        return value

    def __set__(self, journal: Journal, value: _V) -> None:
        setattr(journal._options, self.name, value)


class Journal:
    """A journal of sessions, each an append-only, hash-chained log; safe for threads and processes.

    Every write appends events to the session's log and returns only after they are stored
    (and, with ``fsync="always"``, fsynced). Writes take an optional ``actor`` (who made the
    change) and ``expected_version`` (raise ConflictError instead of writing if the session
    moved on). Reads return immutable snapshots.

    Args:
        root: where the journal is: a folder (created 0700 on first write), a ``file://`` URL,
            or a ``postgresql://`` URL (extra ``postgres``). Not with ``storage``.
        storage: a backend object instead (``journal.backends.memory.MemoryStorage()``, or
            your own implementation of ``journal.engine.storage.Storage``).
        fsync: "always" (durable before a write returns; concurrent writers share fsyncs),
            "interval" (fsynced in the background about once a second), or "never" (left to
            the operating system: survives a process crash, not a power loss). Files only.
        max_cached_sessions: how many session states to keep in memory (LRU).
        lock_timeout: seconds to wait for another process's writer lock (negative: forever).
        snapshot_every: a writer records a snapshot once this many events were appended
            since the last one (0: never automatically).
        snapshot_bytes: ... or once this many bytes of log were appended since the last one.
        archive_after: when the active log holds more events than this, the writer crossing
            the mark prunes it into the archive (None: only ``compact(prune=True)`` does).
        retention: when pruning, archived events older than this are folded into the
            retention base and their segments deleted (None: archives are kept forever).

    The last five can be changed on a Journal in use (``journal.snapshot_every = 50``); they
    take effect at the next write.

    Raises:
        InvalidValueError: an option out of range, or neither (or both) of root and storage.
        ValueError: (InvalidValueError is one) a URL scheme no backend serves.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        storage: Storage | None = None,
        fsync: str = "always",
        max_cached_sessions: int = 1024,
        lock_timeout: float = 60.0,
        snapshot_every: int = 1000,
        snapshot_bytes: int = 1 << 20,
        archive_after: int | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self._options = Options(
            max_cached_sessions=max_cached_sessions,
            snapshot_every=snapshot_every,
            snapshot_bytes=snapshot_bytes,
            archive_after=archive_after,
            retention=retention,
        )
        self._fsync = fsync_policy(fsync)
        self._lock_timeout = seconds(lock_timeout, "lock_timeout")
        if (root is None) == (storage is None):
            raise InvalidValueError(
                "root", "give a root (a folder or a URL) or a storage, not both or neither"
            )
        if storage is None:
            assert root is not None
            if _opener is None:
                raise RuntimeError("no backend is registered: import journal, not journal.engine alone")
            storage = _opener(os.fspath(root), self._fsync, self._lock_timeout)
        self._storage = storage
        self._sessions: Sessions[Op[Any]] = Sessions(self._options)
        self._committer = Committer(storage, self._sessions, self._options)
        self._closed = False
        # Closes the storage once this Journal is garbage collected (or at interpreter exit)
        # if nobody called close(): an adapter made per request must not leak descriptors or
        # connections. It holds only the storage, never the Journal, or it would keep it alive.
        self._release = weakref.finalize(self, storage.close)

    @classmethod
    def from_url(cls, url: str | os.PathLike[str], **options: Any) -> Journal:
        """A Journal on the backend ``url`` names, so apps switch backends by configuration.

        ``postgresql://user@host/db`` (or ``postgres://``): the PostgreSQL backend (extra
        ``postgres``; the tables are created on first use). ``file:///path`` or a plain path:
        the files backend. ``options`` are the constructor's (``fsync`` only matters for files:
        a PostgreSQL write is durable when its transaction commits). The same as
        ``Journal(url, **options)``.

        Raises:
            ValueError: a URL scheme no backend serves.
        """
        return cls(url, **options)

    # -- configuration ---------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The backend behind this journal (the storage seam): for tools that move or watch
        whole sessions (``journal copy``, ``tail``), not for reading or writing events."""
        return self._storage

    @property
    def root(self) -> str:
        """Where the journal is, for people (a folder, or a URL without its secrets)."""
        return self._storage.root

    @property
    def backend(self) -> str:
        """The backend's name: ``"files"``, ``"postgres"``, ``"memory"``, or your storage's."""
        return self._storage.kind

    @property
    def fsync(self) -> FsyncPolicy:
        """The fsync policy the backend was opened with (see the class docstring)."""
        return self._fsync

    @property
    def lock_timeout(self) -> float:
        return self._lock_timeout

    # Settable in use; checked by Options when set, and read by the engine at the next write.
    max_cached_sessions = _Setting[int]()
    snapshot_every = _Setting[int]()
    snapshot_bytes = _Setting[int]()
    archive_after = _Setting["int | None"]()
    retention = _Setting["timedelta | None"]()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

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
            self._sessions.clear()

    # -- writes ----------------------------------------------------------------------------

    def create(
        self,
        session_id: str | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Session:
        """Create a session and return it; a random id is chosen when ``session_id`` is None.

        With ``settings``, the session starts with them: its ``created`` event and a
        ``settings_changed`` event are written together (both or neither), so no reader ever
        sees the session without them.

        Raises:
            SessionExistsError: the session already exists (nothing is written).
            InvalidSessionIdError: the id cannot name a session.
            InvalidValueError: the settings cannot be stored (nothing is written).
        """
        sid = uuid.uuid4().hex if session_id is None else check_session_id(session_id)
        return self._write(sid, create_build(sid, check_actor(actor), _settings(settings)))

    def get_or_create(
        self,
        session_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Session:
        """Return the session, creating it first (with ``settings``) if it does not exist.

        ``settings`` are only used to create it: an existing session is returned as it is.
        Atomic as seen by callers: with other writers creating and deleting the session at the
        same time, each attempt either finds it or creates it, and is retried otherwise.
        """
        frozen = _settings(settings)  # checked once: bad settings fail whether or not it exists
        sid = check_session_id(session_id)
        while True:
            try:
                return self.get(sid)
            except SessionNotFoundError:
                pass
            try:
                return self._write(sid, create_build(sid, check_actor(actor), frozen))
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
        expected = None if expected_version is None else check_version(expected_version)
        build = add_build(
            sid, expected, None if actor is None else check_actor(actor), [message], before=anchor
        )
        messages = self._write(sid, build).messages_view
        return messages[-1] if anchor is None else messages[messages.index_of(message.message_id)]

    def add_messages(
        self,
        session_id: str,
        messages: Iterable[NewMessage | Mapping[str, Any]],
        *,
        replace: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> tuple[Message, ...]:
        """Append several messages in one write and return them, in order.

        The messages get consecutive seqs with no other write between them, and share one
        write and one fsync. A ``hidden`` one is followed by its removal in the same write:
        the history records it, the conversation never shows it. With ``replace``, a
        ``cleared`` event goes first: the messages become the whole visible conversation. A
        crash during the write can keep a prefix of the lines (never reported as written), as
        with any unacknowledged write.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            InvalidValueError: a message cannot be stored (nothing is written).
        """
        sid = check_session_id(session_id)
        checked = checked_messages(messages)
        expected = check_version(expected_version)
        actor = check_actor(actor)
        if not checked and not replace:
            precondition(sid, self.get(sid), expected)
            return ()
        added: list[Message] = []
        self._write(sid, add_build(sid, expected, actor, checked, replace=replace, out=added))
        return tuple(added)

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
            return precondition(sid, self.get(sid), expected)
        return self._write(sid, settings_build(sid, expected, actor, frozen, removed))

    def clear(
        self, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Session:
        """Empty the visible conversation; settings stay, and the log keeps every message.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
        """
        sid = check_session_id(session_id)
        return self._write(sid, clear_build(sid, check_version(expected_version), check_actor(actor)))

    def pop_message(
        self, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Message:
        """Remove the last visible message (undo) and return it; the log keeps it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: the conversation is empty (``message_id`` is None).
        """
        return self._remove(session_id, None, expected_version, actor)

    def remove_message(
        self,
        session_id: str,
        message_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Remove a visible message from the conversation and return it; the log keeps it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: no visible message has that id.
        """
        mid = check_text(message_id, "message_id", allow_empty=False)
        return self._remove(session_id, mid, expected_version, actor)

    def edit_message(
        self,
        session_id: str,
        message_id: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Replace a visible message's content (and metadata, unless None) and return it.

        The message keeps its id, seq and place; ``edited_at`` records when. The log keeps
        the previous content, so ``replay`` before the edit shows it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: no visible message has that id.
            InvalidValueError: content or metadata cannot be stored, or the message is redacted.
        """
        sid = check_session_id(session_id)
        mid = check_text(message_id, "message_id", allow_empty=False)
        text = check_text(content, "content")
        meta = None if metadata is None else freeze_json(mapping(metadata, "metadata"), "metadata")
        build = edit_build(sid, check_version(expected_version), check_actor(actor), mid, text, meta)
        messages = self._write(sid, build).messages_view
        return messages[messages.index_of(mid)]

    def redact_message(
        self,
        session_id: str,
        message_id: str,
        *,
        reason: str,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Erase a message's content from storage, everywhere, and return the message.

        For privacy requests. Appends a ``message_redacted`` event recording ``actor`` and
        ``reason`` (durably, first), then rewrites everything stored that holds the content:
        each line that carried it (the message and its edits, in the active log and the
        archive) keeps its sealed part and hash, so ``verify`` still proves the chain;
        snapshots are rebuilt; copies ``repair`` set aside are erased too. The message stays
        in place with ``content`` "" and ``redacted`` True, and its metadata and references
        (sealed in the chain) stay. Works on a message no longer visible too (cleared or
        removed), and on one whose lines only the quarantine holds.

        Returns the message as the conversation shows it, or, when it is no longer visible, as
        the stored history last showed it (``content`` "", ``redacted`` True in both); for a
        message only the quarantine held, just its id (``seq`` 0, ``role`` "").

        Calling it again for a redacted message appends nothing and finishes an erasure that
        a crash interrupted (the next writer also finishes it by itself).

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: the stored history and quarantine hold no message with that id.
            InvalidValueError: ``reason`` is empty or not text.
            StorageError: a rewrite failed; the event is written, run it again to finish.
        """
        sid = check_session_id(session_id)
        mid = check_text(message_id, "message_id", allow_empty=False)
        why = check_text(reason, "reason", allow_empty=False)
        actor = check_actor(actor)
        expected = check_version(expected_version)
        self._check_open()
        return maintenance.redact(self._committer, sid, mid, why, actor, expected)

    def delete(self, session_id: str) -> None:
        """Erase the session's stored data (its log and everything derived from it).

        Raises:
            SessionNotFoundError: no such session.
        """
        sid = check_session_id(session_id)
        self._check_open()
        with self._sessions.pinned(sid) as slot, slot.lock:
            slot.view = None
            if not self._storage.delete(sid):
                raise SessionNotFoundError(sid)

    def import_session(self, session_id: str, exported: Exported) -> None:
        """Store a session ``export_session`` gave (of any journal, on any backend) as it was:
        the same lines, hashes and chain, in one step (a failed import leaves nothing).

        Raises:
            SessionExistsError: the session exists here (nothing is written).
        """
        sid = check_session_id(session_id)
        self._check_open()

        def restore(step: Step) -> None:
            if step.view is not None:
                raise SessionExistsError(sid, 0, step.view.state.version)
            step.tx.restore(exported)
            step.view = None  # read afresh when next needed

        self._committer.exclusive(sid, restore)

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

        Read when iterated. Streams from the archive and the active log (each line checked as
        it is read), so it costs memory only for the event in hand. If a retention policy
        dropped early history, iteration starts after the dropped part. Asking for what came
        after a point this Journal read or wrote the session up to lately (a ``tail``, a
        catch-up after another process wrote) reads, and holds, only the lines after it, up
        to the version read when iteration starts; ``after`` at that version reads none.

        Raises:
            SessionNotFoundError: no such session (raised here, not on first iteration); or
                while iterating, if another caller deletes the session meanwhile.
            CorruptLogError: while iterating, at the first damaged line.
        """
        sid = check_session_id(session_id)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidValueError("after", f"must be an int >= 0; got {after!r}")
        if self._current(sid) is None:
            raise SessionNotFoundError(sid)
        return self._events(sid, after)

    def replay(self, session_id: str, *, at: int | datetime | None = None) -> Session:
        """The session as it was: after event ``at`` (a seq) or at time ``at`` (aware datetime).

        Folds the log from its first event, independent of any cache; ``at=None`` replays all.
        A time after the last event gives the current state; a seq after it is an error.

        Raises:
            SessionNotFoundError: no such session, or it did not exist yet at ``at``.
            VersionNotFoundError: ``at`` is a seq past the session's last event.
            HistoryPrunedError: ``at`` lies in history a retention policy dropped.
            ValueError: ``at`` is not an int >= 0, an aware datetime, or None.
            CorruptLogError: the replayed part of the log is damaged.
        """
        sid = check_session_id(session_id)
        stop = stop_condition(at)
        self._check_open()
        state, _ = retrying(self._storage, sid, lambda: until(self._storage, sid, stop))
        if state is None:
            shown = at.isoformat() if isinstance(at, datetime) else f"seq {at}"
            detail = "" if at is None else f"at {shown} (it did not exist yet)"
            raise SessionNotFoundError(sid, detail)
        if isinstance(at, int) and at > state.version:
            raise VersionNotFoundError(sid, at, state.version)
        return state

    def export_session(self, session_id: str) -> Exported:
        """The session byte for byte: its retention base (encoded) and every stored line,
        oldest first, each checked against the chain, read under the session's writer lock;
        for ``import_session`` into another journal (``journal copy``).

        Raises:
            SessionNotFoundError: no such session.
            CorruptLogError: a line is damaged, missing or out of order (repair it first).
        """
        sid = check_session_id(session_id)
        if not self.exists(sid):
            raise SessionNotFoundError(sid)
        with self._storage.writer(sid) as tx:
            return tx.export()

    def sessions(self) -> Iterator[str]:
        """The ids of every session, exactly as they were given to ``create``."""
        self._check_open()
        return self._storage.session_ids()

    # -- upkeep ----------------------------------------------------------------------------

    def compact(
        self,
        session_id: str | None = None,
        *,
        prune: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Compaction]:
        """Record a snapshot now; with ``prune``, also move older events into the archive.

        Runs in the session's write queue and under its writer lock, so it is safe beside
        readers and writers in any process, and every step leaves valid files if the process
        dies (see ``docs/compaction.md``). Pruned events stay readable through ``events``,
        ``replay`` and the chain; with ``retention`` set, archived events older than it are
        folded into the retention base and deleted.

        Args:
            session_id: one session, or None for every session.
            prune: move every event before the snapshot out of the active log.
            progress: called as ``progress(done, total, session_id)`` after each session.

        Raises:
            SessionNotFoundError: ``session_id`` names no session.
            CorruptLogError: a log is damaged (that session is left unchanged).
        """
        ids = list(self.sessions()) if session_id is None else [check_session_id(session_id)]
        results = []
        for done, sid in enumerate(ids, 1):
            if self._storage.stamp(sid) is None:
                raise SessionNotFoundError(sid)  # before the backend makes anything for it
            results.append(maintenance.compact(self._committer, sid, prune))
            if progress is not None:
                progress(done, len(ids), sid)
        return results

    def head(self, session_id: str) -> Anchor:
        """The seq and chain hash of the session's last event, to keep outside the journal.

        Passed back to ``verify(anchors=...)``, it proves that no event up to it was lost
        or rewritten since, even by someone able to rebuild the whole chain.

        Raises:
            SessionNotFoundError: no such session.
        """
        sid = check_session_id(session_id)
        view = self._current(sid)
        if view is None:
            raise SessionNotFoundError(sid)
        return Anchor(session_id=sid, seq=view.head.seq, hash=view.head.hash)

    def verify(
        self,
        session_id: str | None = None,
        *,
        anchors: Iterable[Anchor] = (),
        progress: Callable[[int, int, str], None] | None = None,
    ) -> VerifyReport:
        """Check every stored line, the hash chain, seq continuity and snapshots.

        Unlike a read, which stops at the first damaged line, this reports every problem with
        its file, line, byte offset and kind (see ``ProblemKind``). Sessions whose id cannot be
        read any more are checked too, named by their folder. Each session is checked under
        its writer lock: writers wait, readers do not. A torn last line (a crashed write) is
        cut, or a missing final newline completed, as any writer would, and logged.

        Args:
            session_id: one session, or None for every session.
            anchors: heads exported earlier with ``head``: a log that lost or rewrote events
                up to one of them is reported (``truncated`` or ``edited``); history a
                retention base replaced is reported as ``unverifiable``.
            progress: called as ``progress(done, total, session_id)`` after each session.

        Raises:
            SessionNotFoundError: ``session_id`` names no session.
        """
        self._check_open()
        sid = None if session_id is None else check_session_id(session_id)
        return maintenance.verify(self._storage, sid, anchors, progress)

    def repair(self, session_id: str, *, dry_run: bool = False) -> RepairReport:
        """Keep the longest provably intact prefix of the history; quarantine the rest.

        Bytes are never deleted: what follows the first damaged, missing or out-of-order line
        is set aside in the session's quarantine (files: ``quarantine/<time>/`` inside the
        session's folder, with ``repair.json``), made durable before anything is cut.
        Snapshots that disagree with the log are set aside too. Runs under the session's
        writer lock; safe to run twice.

        Args:
            dry_run: only report what would move.

        Raises:
            SessionNotFoundError: no such session.
            CorruptLogError: only a retention base is intact (restore the archive).
            StorageError: the backend refused a step (what is stored stays valid).
        """
        sid = check_session_id(session_id)
        self._check_open()
        return maintenance.repair(self._storage, self._sessions, sid, dry_run)

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError(self.root)

    def _write(self, sid: str, build: Build) -> Session:
        if self._closed:
            raise JournalClosedError(self.root)
        return self._committer.write(sid, build)

    def _remove(self, session_id: str, message_id: str | None, expected: object, actor: object) -> Message:
        sid = check_session_id(session_id)
        removed: list[Message] = []
        self._write(sid, remove_build(sid, check_version(expected), check_actor(actor), message_id, removed))
        return removed[-1]

    def _current(self, sid: str) -> View | None:
        """The fresh view of a session (None if absent), reading only what changed."""
        self._check_open()
        storage = self._storage
        slot = self._sessions.pin(sid)
        try:
            stamp = storage.stamp(sid)
            view = slot.view
            if view is not None and stamp is not None and view.stamp == stamp:
                return view
            if stamp is None:
                slot.view = None
                return None
            with slot.lock:
                view = slot.view
                if view is not None and view.stamp == stamp:
                    return view
                reader = storage.reader(sid)
                view = slot.view = retrying(storage, sid, lambda: load(view, reader))
                return view
        finally:
            self._sessions.unpin(slot)

    def _events(self, sid: str, after: int) -> Iterator[Event]:
        # A method, so the iterator holds the Journal: dropping the Journal mid-iteration
        # must not let its finalizer close the storage the iterator still reads from.
        # Read when iterated, as the whole history is: from the view of that moment.
        view = self._current(sid)
        if view is not None:
            if after >= view.head.seq:
                return  # nothing stored after the head just read
            mark = view.mark_for(after)
            recent = None if mark is None else self._read_on(sid, mark, view.head)
            if recent is not None:
                yield from (event for event in recent if event.seq > after)
                return
        for record in stream(self._storage, sid):
            if record.event.seq > after:
                yield record.event

    def _read_on(self, sid: str, mark: Head, head: Head) -> list[Event] | None:
        """The events after ``mark`` up to ``head``, read from ``mark`` (each line checked
        and chained on from its hash); None unless they reach ``head`` itself, whose events
        the fold checked when the view moved on (else: replaced, moved or damaged since, for
        the whole history to sort out)."""
        try:
            batch = self._storage.reader(sid).read(mark)
        except StaleHeadError:
            return None
        events: list[Event] = []
        for record in batch.records:
            events.append(record.event)
            if record.head.seq >= head.seq:
                return events if record.head.hash == head.hash else None
        return None


def _settings(settings: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A new session's initial settings, checked and frozen (none: empty)."""
    frozen: Mapping[str, Any] = freeze_json(
        {} if settings is None else mapping(settings, "settings"), "settings"
    )
    return frozen
