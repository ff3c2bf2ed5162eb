"""``MemoryStorage``: the reference implementation of the storage seam, with no I/O.

Sessions live in a ``MemoryStore`` (a plain object: lines, retention bases, snapshots, what
``repair`` set aside), shared by every ``MemoryStorage`` opened on it with ``reopen``, the way
processes share a folder. Every guarantee of the seam holds between threads and between
storage objects on one store; nothing outlives the process.

``Journal(storage=MemoryStorage())`` (or ``Journal("memory:")``; ``Journal("memory:NAME")``
shares the process's store of that name between Journals) is a whole journal in memory:
the same lines, hash chain, snapshots, pruning, retention, redaction, verify and repair as on
files, which makes it the quickest way to test an application without a disk, and the model
a new backend can be read against. Positions are seqs (``Head.cursor`` is the session's
incarnation and the seq), as on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType

import msgspec

from journal.core.chain import ChainCheck, Fold, History, check_line
from journal.core.codec import decode, erase_body, stored_hash
from journal.core.head import Head, Line, Record
from journal.core.redaction import content_of, erased_state, line_needles, scrub_line
from journal.core.reports import Anchor, RepairReport, SessionCheck
from journal.core.snapshot import decode_snapshot, encode_snapshot
from journal.core.state import Session
from journal.engine.storage import Batch, Exported, Pruned, Stamp, Target
from journal.errors import (
    CorruptLogError,
    LineError,
    LockTimeoutError,
    SessionExistsError,
    SnapshotError,
    StaleHeadError,
)

__all__ = ["MemoryStorage", "MemoryStore", "drop_store", "named_store"]


class _Stored:
    """One session's stored data: its lines (``first`` is the seq of ``lines[0]``; the active
    log starts at seq ``active``), retention base, snapshots and set-aside lines."""

    __slots__ = ("active", "base", "first", "generation", "incarnation", "lines", "quarantine", "snapshots")

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation
        self.generation = 0  # moves on with every change, so stamps do
        self.lines: list[bytes] = []
        self.first = 1
        self.active = 1
        self.base: bytes | None = None
        self.snapshots: dict[int, bytes] = {}
        self.quarantine: list[bytes] = []

    @property
    def last(self) -> int:
        return self.first + len(self.lines) - 1

    def line(self, seq: int) -> bytes:
        return self.lines[seq - self.first]

    def changed(self) -> None:
        self.generation += 1


def _check_not_lost(stored: _Stored, where: str) -> None:
    """A session holding no event but a base or snapshot lost its events: that is damage,
    never an absent session (a writer would start a new history over the old one)."""
    if stored.base is not None or stored.snapshots:
        raise CorruptLogError(where, 0, -1, "no event is stored, but its history is: run repair")


class MemoryStore:
    """What several ``MemoryStorage`` objects share: the sessions, one lock each, and who
    listens for appends."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Stored] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()
        self.incarnations = 0
        self.listeners: list[_Feed] = []

    def lock(self, session_id: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(session_id, threading.Lock())

    def stored(self, session_id: str) -> _Stored | None:
        return self.sessions.get(session_id)

    def new(self, session_id: str) -> _Stored:
        with self.guard:
            self.incarnations += 1
            stored = self.sessions[session_id] = _Stored(self.incarnations)
            return stored

    def appended(self, session_id: str) -> None:
        with self.guard:
            listeners = list(self.listeners)
        for feed in listeners:
            feed.heard(session_id)


_named: dict[str, MemoryStore] = {}
_named_guard = threading.Lock()


def named_store(name: str) -> MemoryStore:
    """The process's store called ``name`` (made empty on first use): what ``memory:NAME``
    opens, so that several Journals in one process share it as they would share a folder."""
    with _named_guard:
        store = _named.get(name)
        if store is None:
            store = _named[name] = MemoryStore()
        return store


def drop_store(name: str) -> None:
    """Forget the store called ``name`` and everything in it (storages open on it keep it)."""
    with _named_guard:
        _named.pop(name, None)


class MemoryStorage:
    """Sessions in memory; see the module docstring.

    Args:
        store: the store to open: a ``MemoryStore``, the name of the process's shared store of
            that name (``named_store``), or None for a new, private one.
        lock_timeout: seconds a writer waits for a session held by another (negative: forever).
    """

    kind = "memory"

    def __init__(self, store: MemoryStore | str | None = None, *, lock_timeout: float = 60.0) -> None:
        if isinstance(store, str):
            self.store = named_store(store)
            self.root = f"memory:{store}"
        else:
            self.store = MemoryStore() if store is None else store
            self.root = "memory:"
        self.lock_timeout = lock_timeout

    def location(self, session_id: str) -> str:
        return f"{self.root}#{session_id}"

    def stamp(self, session_id: str) -> Stamp | None:
        stored = self.store.stored(session_id)
        if stored is None:
            return None
        if not stored.lines:
            _check_not_lost(stored, self.location(session_id))
            return None
        return (stored.incarnation, stored.generation)

    def history_stamp(self, session_id: str) -> Stamp:
        stored = self.store.stored(session_id)
        return () if stored is None else (stored.incarnation, stored.first, stored.active, stored.generation)

    def reader(self, session_id: str) -> MemorySource:
        return MemorySource(self, session_id)

    def writer(self, session_id: str) -> MemoryTransaction:
        return MemoryTransaction(self, session_id)

    def delete(self, session_id: str) -> bool:
        with self.writer(session_id):
            stored = self.store.sessions.pop(session_id, None)
        return stored is not None and bool(stored.lines)

    def session_ids(self) -> Iterator[str]:
        return iter(sorted(sid for sid, stored in list(self.store.sessions.items()) if stored.lines))

    def targets(self, session_id: str | None) -> list[Target]:
        if session_id is None:
            return [Target(sid, sid) for sid in sorted(self.store.sessions)]
        return [Target(session_id, session_id)] if session_id in self.store.sessions else []

    def verify(self, target: Target, anchor: Anchor | None) -> SessionCheck:
        with self.writer(target.label) as tx:
            check, _ = tx.check(anchor)
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=target.label, seq=check.seq, hash=check.hash)
        return SessionCheck(target.label, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        if session_id not in self.store.sessions:
            return None
        with self.writer(session_id) as tx:
            return tx.repair(dry_run)

    def changes(self) -> _Feed:
        feed = _Feed(self.store)
        with self.store.guard:
            self.store.listeners.append(feed)
        return feed

    def reopen(self) -> MemoryStorage:
        twin = MemoryStorage(self.store, lock_timeout=self.lock_timeout)
        twin.root = self.root
        return twin

    def close(self) -> None:
        """Nothing to release: the store lives as long as someone holds it."""


class MemorySource:
    """Reads of one session (``Storage.reader``, and the base of a transaction)."""

    def __init__(self, storage: MemoryStorage, session_id: str) -> None:
        self.storage = storage
        self.sid = session_id
        self.where = storage.location(session_id)

    def _stored(self) -> _Stored | None:
        return self.storage.store.stored(self.sid)

    def _live(self) -> _Stored | None:
        """The session, if it holds an event (damage if it holds only its history)."""
        stored = self._stored()
        if stored is None or stored.lines:
            return stored
        _check_not_lost(stored, self.where)
        return None

    def read(self, after: Head) -> Batch:
        stored = self._live()
        if stored is None or len(after.cursor) != 2:
            raise StaleHeadError()  # deleted: "nothing new" would be a stale answer
        incarnation, seq = after.cursor
        if incarnation != stored.incarnation or not stored.first <= seq <= stored.last:
            raise StaleHeadError()
        if seq < stored.active or stored_hash(stored.line(seq)) != after.hash:
            raise StaleHeadError()  # pruned past it, or another history
        lines, first, active = list(stored.lines), stored.first, stored.active
        batch = self._records(lines, first, active, seq + 1, after, stored.incarnation)
        if batch.damage is not None:
            return batch
        return msgspec.structs.replace(batch, stamp=(stored.incarnation, stored.generation))

    def _records(
        self, lines: list[bytes], first: int, active: int, start: int, after: Head | None, incarnation: int
    ) -> Batch:
        records: list[Record] = []
        head = after
        for seq in range(max(start, first), first + len(lines)):
            data = lines[seq - first]
            try:
                decoded = check_line(data, head, path=self.where, line=seq, offset=0)
            except CorruptLogError as exc:
                return Batch(records, None, exc)
            head = Head(seq, decoded.hash, max(0, seq - active + 1), (incarnation, seq))
            records.append(Record(decoded.event, head, seq, 0, len(data) + 1))
        return Batch(records, None)

    def snapshot(self) -> tuple[Session, Head] | None:
        stored = self._live()
        if stored is None:
            return None
        for seq in sorted(stored.snapshots, reverse=True):
            try:
                state, head = decode_snapshot(stored.snapshots[seq])
            except SnapshotError:
                continue
            if head.seq > stored.last:
                raise CorruptLogError(
                    f"{self.where} (snapshot {seq})",
                    0,
                    -1,
                    f"the snapshot covers events up to seq {seq} but the stored events end at seq "
                    f"{stored.last}: events were lost (run repair)",
                )
            if head.seq >= stored.first and _decodes_to(stored.line(head.seq), head.hash):
                cursor = (stored.incarnation, head.seq)
                return state, Head(head.seq, head.hash, max(0, head.seq - stored.active + 1), cursor)
        return None

    def history(self, resume: Head | None = None) -> History:
        stored = self._live()
        if stored is None:
            return None, None, iter(())
        base = None if stored.base is None else decode_snapshot(stored.base, kind="base")
        state, head = (None, None) if base is None else (base[0], Head(base[1].seq, base[1].hash, 0, ()))
        lines, first, active = list(stored.lines), stored.first, stored.active
        return state, head, self._records(lines, first, active, first, head, stored.incarnation).checked()


class MemoryTransaction(MemorySource):
    """One session held exclusively: its lock, shared by every storage on the store."""

    def __init__(self, storage: MemoryStorage, session_id: str) -> None:
        super().__init__(storage, session_id)
        self.lock = storage.store.lock(session_id)

    def __enter__(self) -> MemoryTransaction:
        timeout = self.storage.lock_timeout
        if not self.lock.acquire(timeout=-1 if timeout < 0 else timeout):
            raise LockTimeoutError(self.where, timeout)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.lock.release()

    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        stored = self._stored()
        if after is None:
            if stored is not None and stored.lines:
                raise StaleHeadError()
            stored = self.storage.store.new(self.sid)
        elif stored is None or after.seq != stored.last or stored_hash(stored.line(after.seq)) != after.hash:
            raise StaleHeadError()
        stored.lines.extend(line.data[:-1] for line in lines)
        stored.changed()
        last = lines[-1]
        head = Head(last.seq, last.hash, last.seq - stored.active + 1, (stored.incarnation, last.seq))
        self.storage.store.appended(self.sid)
        return head, (stored.incarnation, stored.generation)

    def _here(self) -> _Stored:
        stored = self._stored()
        if stored is None:
            raise StaleHeadError()
        return stored

    def save_snapshot(self, state: Session, head: Head) -> None:
        stored = self._stored()
        if stored is None or not stored.first <= head.seq <= stored.last:
            return
        if stored_hash(stored.line(head.seq)) != head.hash:
            return
        if any(b'"type":"message_redacted"' in line for line in stored.lines[head.seq - stored.first + 1 :]):
            return  # a redaction since erased what this state may show
        stored.snapshots = {head.seq: encode_snapshot(state, head)}

    def prune(self, state: Session, head: Head) -> Pruned:
        stored = self._here()
        if head.seq != stored.last:
            raise StaleHeadError()
        archived = head.seq - stored.active
        stored.active = head.seq
        new = Head(head.seq, head.hash, 1, (stored.incarnation, head.seq))
        stored.snapshots = {head.seq: encode_snapshot(state, new)}
        stored.changed()
        return Pruned(archived, new, (stored.incarnation, stored.generation))

    def retain(self, before: datetime) -> int:
        stored = self._here()
        base = None if stored.base is None else decode_snapshot(stored.base, kind="base")
        fold = Fold(
            self.where, *((None, None) if base is None else (base[0], Head(base[1].seq, base[1].hash, 0, ())))
        )
        floor = 0 if fold.head is None else fold.head.seq
        for seq in range(stored.first, stored.active):
            data = stored.line(seq)
            decoded = check_line(data, fold.head, path=self.where, line=seq, offset=0)
            if decoded.event.at >= before:
                break
            fold.add(Record(decoded.event, Head(seq, decoded.hash, 0, ()), seq, 0, len(data) + 1))
        if fold.head is None or fold.state is None or fold.head.seq == floor:
            return 0
        stored.base = encode_snapshot(fold.state, fold.head, kind="base")
        drop = fold.head.seq - stored.first + 1
        del stored.lines[:drop]
        stored.first += drop
        stored.changed()
        return fold.head.seq - floor

    def quarantined(self, message_id: str) -> bool:
        own = line_needles(message_id, ())[0]
        return any(own in line for line in self._here().quarantine)

    def intend_erase(self, message_id: str, by: int) -> None:
        """Nothing to record: in memory the erasure cannot be interrupted by a crash."""

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        stored = self._here()
        texts = set()
        if stored.base is not None:
            state, base_head = decode_snapshot(stored.base, kind="base")
            index = state.messages_view.index_of(message_id)
            if index >= 0:
                texts.add(state.messages_view[index].content)
            erased = erased_state(state, message_id)
            if erased is not None:
                stored.base = encode_snapshot(erased, base_head, kind="base")
        for i, line in enumerate(stored.lines):
            text = content_of(line, message_id, by)
            if text is not None:
                texts.add(text)
                stored.lines[i] = erase_body(line, by)
        needles = line_needles(message_id, texts)
        kept = (scrub_line(line, message_id, by, needles) for line in stored.quarantine)
        stored.quarantine = [line for line in kept if line is not None]
        stored.snapshots = {}
        stored.changed()
        return (stored.incarnation, stored.generation)

    def export(self) -> Exported:
        stored = self._here()
        for _record in self.history()[2]:
            pass  # each line checked against the chain: a damaged session is not exported
        return Exported(stored.base, list(stored.lines))

    def restore(self, exported: Exported) -> None:
        stored = self._stored()
        if stored is not None and stored.lines:
            raise SessionExistsError(self.sid, 0, stored.last)
        stored = self.storage.store.new(self.sid)
        stored.base = exported.base
        stored.lines = list(exported.lines)
        stored.first = decode(exported.lines[0]).event.seq if exported.lines else 1
        stored.active = stored.first
        self.storage.store.appended(self.sid)

    def check(self, anchor: Anchor | None) -> tuple[ChainCheck, _Stored | None]:
        """Every stored line of the session, the base, the snapshots and what was set aside."""
        stored = self._stored()
        if stored is None:
            return ChainCheck(self.sid, None, None, ()), None
        base = None if stored.base is None else decode_snapshot(stored.base, kind="base")
        start = None if base is None else (base[1].seq, base[1].hash)
        check = ChainCheck(self.sid, start, None if base is None else base[0], list(stored.snapshots))
        if base is not None:
            check.retention_base(base[0], f"{self.where} (base)")
        for seq, line in enumerate(stored.lines, stored.first):
            check.line(None, self.where, seq, 0, line)
        check.finish()
        if check.redacted:
            for number, line in enumerate(stored.quarantine, 1):
                check.check_quarantined(f"{self.where} (quarantine)", number, 0, line)
        for seq, data in stored.snapshots.items():
            check.stored_snapshot(f"{self.where} (snapshot {seq})", data)
        if anchor is not None:
            check.check_anchor(anchor, self.where)
        return check, stored

    def repair(self, dry_run: bool) -> RepairReport:
        check, stored = self.check(None)
        kept = check.intact_seq
        cut = (
            []
            if stored is None
            else [(seq, line) for seq, line in enumerate(stored.lines, stored.first) if seq > kept]
        )
        if not dry_run and stored is not None and (cut or check.problems):
            stored.quarantine.extend(line for _, line in cut)
            del stored.lines[max(0, kept - stored.first + 1) :]
            stored.active = min(stored.active, max(kept, stored.first))
            stored.snapshots = {}
            stored.changed()
        return check.cut_report(self.where, cut, f"{self.where} (quarantine)", dry_run=dry_run)


class _Feed:
    """Appends to any session of a store, heard as they happen (``Storage.changes``)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.ready = threading.Condition()
        self.pending: set[str] = set()

    def heard(self, session_id: str) -> None:
        with self.ready:
            self.pending.add(session_id)
            self.ready.notify_all()

    def wait(self, timeout: float) -> set[str] | None:
        deadline = time.monotonic() + timeout
        with self.ready:
            while not self.pending and (left := deadline - time.monotonic()) > 0:
                self.ready.wait(left)
            heard, self.pending = self.pending, set()
        return heard

    def close(self) -> None:
        with self.store.guard:
            if self in self.store.listeners:
                self.store.listeners.remove(self)


def _decodes_to(line: bytes, hash_: str) -> bool:
    """Whether ``line`` is intact and ends the chain at ``hash_`` (a snapshot agrees with the
    log only where its event's line still checks, as on files)."""
    try:
        return decode(line).hash == hash_
    except LineError:
        return False
