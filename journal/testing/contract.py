"""``StorageContract``: the tests every storage backend passes, for third-party backends.

Subclass it in a test module and override one fixture, ``storage`` (function-scoped: a fresh,
empty storage each time; pytest's ``tmp_path`` is there for it)::

    from journal.testing.contract import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path)

The tests drive the seam (``journal.engine.storage.Storage``) directly, with lines encoded as
the engine encodes them, and a ``Journal(storage=...)`` on top for the semantics above it:
contiguous seqs, catch-up after another writer, optimistic conflicts, damaged data reported
and repaired, snapshots never trusted over the log, history through pruning and retention,
erasure everywhere, delete and re-create, and concurrent writers through two storage objects
(``storage.reopen()``) on the same data. Each storage a test makes is closed after it.

Damage is planted through the seam itself (a line appended whose bytes no longer match its
hash), so no backend needs a hook for it; torn writes and the like are a backend's own
business and belong in its own tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from journal.core.commands import add_build, check_message, create_build
from journal.core.events import Event, MessageAdded
from journal.core.head import Head, Line, Record
from journal.core.state import Session
from journal.engine.commit import folded
from journal.engine.journal import Journal
from journal.engine.storage import Storage
from journal.errors import (
    ConflictError,
    CorruptLogError,
    HistoryPrunedError,
    SessionExistsError,
    SessionNotFoundError,
    StaleHeadError,
)

__all__ = ["Chain", "StorageContract"]

SID = "contract-session"
_FEED_WAIT = 10.0  # seconds a change feed may take to hear an append (polling backends)


class Chain:
    """One session's events, encoded as the engine encodes them, with the state and head
    they lead to as the storage last answered."""

    def __init__(self, session_id: str = SID) -> None:
        self.sid = session_id
        self.state: Session | None = None
        self.head: Head | None = None
        self.prev: str | None = None
        self.clock = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def lines(self, *contents: str) -> list[Line]:
        """The next lines: ``created`` first if the session has none, then one message per
        content. The chain moves on past them (``append`` records the stored head)."""
        events: list[Event] = []
        state = self.state
        seq = 1 if state is None else state.version + 1
        self.clock += timedelta(seconds=1)
        if state is None:
            events += create_build(self.sid, None)(None, seq, self.clock)
            state = folded(None, None, events)[0]
            seq += 1
        if contents:
            messages = [check_message("user", text, None, None) for text in contents]
            events += add_build(self.sid, None, None, messages)(state, seq, self.clock)
        self.state, self.prev, lines, _ = folded(self.state, self.prev, events)
        return lines

    def append(self, storage: Storage, *contents: str) -> Head:
        """Store the next lines (see ``lines``) in one append; returns the stored head."""
        lines = self.lines(*contents)
        with storage.writer(self.sid) as tx:
            self.head, _ = tx.append(self.head, lines)
        return self.head


def _damaged(line: Line) -> Line:
    """``line`` with one byte of its body changed: its hash no longer matches."""
    at = line.data.index(b'"content":"') + len(b'"content":"')
    data = line.data[:at] + bytes([line.data[at] ^ 0x01]) + line.data[at + 1 :]
    return msgspec.structs.replace(line, data=data)


def _records(storage: Storage, sid: str = SID) -> list[Record]:
    """The session's whole stored history, as read without a lock."""
    _, _, records = storage.reader(sid).history()
    return list(records)


def _seqs(storage: Storage, sid: str = SID) -> list[int]:
    return [record.event.seq for record in _records(storage, sid)]


def _contents(session: Session) -> list[str]:
    return [message.content for message in session.messages]


class StorageContract:
    """The storage contract; see the module docstring."""

    @pytest.fixture
    def storage(self) -> Storage:
        """A fresh, empty storage: override this fixture in your subclass."""
        raise NotImplementedError("subclass StorageContract and override its `storage` fixture")

    @pytest.fixture(autouse=True)
    def _opened(self, storage: Storage) -> Iterator[list[Storage]]:
        opened = [storage]
        yield opened
        for each in opened:
            each.close()

    @pytest.fixture
    def twin(self, storage: Storage, _opened: list[Storage]) -> Storage:
        """Another storage object on the same data (``storage.reopen()``), as another process has."""
        other = storage.reopen()
        _opened.append(other)
        return other

    # -- the seam, operation by operation --------------------------------------------------

    def test_an_empty_storage_holds_nothing(self, storage: Storage) -> None:
        assert list(storage.session_ids()) == []
        assert storage.stamp(SID) is None
        assert storage.targets(None) == []
        assert storage.targets(SID) == []
        reader = storage.reader(SID)
        assert reader.snapshot() is None
        base, head, records = reader.history()
        assert (base, head, list(records)) == (None, None, [])
        assert storage.delete(SID) is False
        assert storage.repair(SID, dry_run=False) is None

    def test_appended_lines_read_back_in_order_with_their_heads(self, storage: Storage) -> None:
        chain = Chain()
        lines = chain.lines("one", "two", "three")
        with storage.writer(SID) as tx:
            head, stamp = tx.append(None, lines)
        assert (head.seq, head.hash) == (4, lines[-1].hash)
        records = _records(storage)
        assert [r.event.seq for r in records] == [1, 2, 3, 4]
        assert [r.head.hash for r in records] == [line.hash for line in lines]
        assert (records[-1].head.seq, records[-1].head.hash) == (head.seq, head.hash)
        assert storage.reader(SID).read(head).records == []
        assert storage.stamp(SID) == stamp
        assert list(storage.session_ids()) == [SID]

    def test_a_read_after_a_head_returns_only_what_follows_it(self, storage: Storage) -> None:
        chain = Chain()
        first = chain.append(storage, "one")
        last = chain.append(storage, "two", "three")
        after = storage.reader(SID).read(first)
        assert [r.event.seq for r in after.records] == [3, 4]
        assert storage.reader(SID).read(last).records == []
        with storage.writer(SID) as tx:
            assert [r.event.seq for r in tx.read(first).records] == [3, 4]

    def test_the_stamp_moves_with_every_append_and_the_delete(self, storage: Storage) -> None:
        chain = Chain()
        chain.append(storage)
        stamps = [storage.stamp(SID)]
        for text in ("a", "b"):
            chain.append(storage, text)
            stamps.append(storage.stamp(SID))
        assert None not in stamps
        assert len(set(stamps)) == 3
        assert storage.stamp(SID) == stamps[-1]  # unchanged while nothing is written
        assert storage.delete(SID) is True
        assert storage.stamp(SID) is None

    def test_an_append_after_a_stale_head_is_refused_and_stores_nothing(self, storage: Storage) -> None:
        chain = Chain()
        old = chain.append(storage, "one")
        chain.append(storage, "two")
        stale = Chain()
        stale.lines("one")
        fork = stale.lines("fork")
        with storage.writer(SID) as tx:
            with pytest.raises(StaleHeadError):
                tx.append(old, fork)
            with pytest.raises(StaleHeadError):
                tx.append(None, Chain().lines())
        assert _seqs(storage) == [1, 2, 3]
        assert chain.head is not None
        assert storage.reader(SID).read(chain.head).records == []

    def test_a_snapshot_is_served_only_while_the_log_holds_its_head(self, storage: Storage) -> None:
        chain = Chain()
        head = chain.append(storage, "one", "two")
        assert chain.state is not None
        with storage.writer(SID) as tx:
            tx.save_snapshot(chain.state, head)
            # A head whose hash the log does not hold is never recorded (or never served).
            tx.save_snapshot(chain.state, msgspec.structs.replace(head, hash="f" * 64))
        served = storage.reader(SID).snapshot()
        assert served is not None
        assert served[0] == chain.state
        assert (served[1].seq, served[1].hash) == (3, head.hash)
        chain.append(storage, "three")
        state, at = storage.reader(SID).snapshot() or (None, None)
        assert state is not None
        assert at is not None
        assert [r.event.seq for r in storage.reader(SID).read(at).records] == [4]
        # Another life of the session: the old snapshot must not describe it.
        storage.delete(SID)
        other = Chain()
        other.append(storage, "different", "history", "here")
        served = storage.reader(SID).snapshot()
        hashes = [r.head.hash for r in _records(storage)]
        assert served is None or served[1].hash == hashes[served[1].seq - 1]

    def test_pruning_moves_the_history_out_of_the_active_log_and_keeps_it(self, storage: Storage) -> None:
        chain = Chain()
        early = chain.append(storage, *(f"m{i}" for i in range(4)))
        chain.append(storage, "m4")
        assert chain.state is not None
        assert chain.head is not None
        with storage.writer(SID) as tx:
            with pytest.raises(StaleHeadError):
                tx.prune(chain.state, early)  # not the end of the log
            pruned = tx.prune(chain.state, chain.head)
        assert (pruned.archived, pruned.head.seq, pruned.head.hash) == (5, 6, chain.head.hash)
        assert pruned.head.active == 1
        assert storage.reader(SID).read(pruned.head).records == []
        try:
            later = storage.reader(SID).read(early)  # an archived event's head
        except StaleHeadError:
            pass  # the backend keeps no position in the active log for archived events
        else:
            assert [r.event.seq for r in later.records] == [6]
        snapshot = storage.reader(SID).snapshot()
        assert snapshot is not None
        assert snapshot[0] == chain.state
        chain.head = pruned.head
        chain.append(storage, "after")
        assert [r.event.seq for r in storage.reader(SID).read(pruned.head).records] == [7]
        assert _seqs(storage) == list(range(1, 8))

    def test_retention_folds_archived_events_into_a_base(self, storage: Storage) -> None:
        chain = Chain()
        chain.append(storage, *(f"m{i}" for i in range(5)))
        assert chain.state is not None
        assert chain.head is not None
        at_five = chain.state
        with storage.writer(SID) as tx:
            chain.head = tx.prune(chain.state, chain.head).head
        chain.append(storage, "kept")
        with storage.writer(SID) as tx:
            dropped = tx.retain(datetime(2100, 1, 1, tzinfo=timezone.utc))
        assert dropped == 5
        base, head, records = storage.reader(SID).history()
        assert head is not None
        assert head.seq == 5
        assert base is not None
        assert _contents(base) == _contents(at_five)[:4]
        assert [r.event.seq for r in records] == [6, 7]

    def test_export_and_restore_keep_every_byte(self, storage: Storage) -> None:
        chain = Chain()
        chain.append(storage, "one", "two")
        with storage.writer(SID) as tx:
            exported = tx.export()
        assert len(exported.lines) == 3
        with storage.writer(SID) as tx, pytest.raises(SessionExistsError):
            tx.restore(exported)
        storage.delete(SID)
        with storage.writer(SID) as tx:
            tx.restore(exported)
        with storage.writer(SID) as tx:
            assert tx.export() == exported
        assert [r.head.hash for r in _records(storage)][-1] == chain.prev

    def test_delete_ends_the_session_and_a_new_one_starts_afresh(self, storage: Storage) -> None:
        chain = Chain()
        old = chain.append(storage, "old life")
        assert storage.delete(SID) is True
        assert storage.delete(SID) is False
        assert list(storage.session_ids()) == []
        with pytest.raises(StaleHeadError):
            storage.reader(SID).read(old)
        fresh = Chain()
        fresh.append(storage, "new life", "longer")
        with pytest.raises(StaleHeadError):
            storage.reader(SID).read(old)
        assert _seqs(storage) == [1, 2, 3]

    def test_a_damaged_line_is_reported_at_its_place_and_repair_keeps_what_precedes(
        self, storage: Storage
    ) -> None:
        chain = Chain()
        first = chain.append(storage)
        good = chain.append(storage, "one")
        damaged = [_damaged(line) for line in chain.lines("two")]
        with storage.writer(SID) as tx:
            tx.append(good, damaged)
        batch = storage.reader(SID).read(first)
        assert [r.event.seq for r in batch.records] == [2]
        assert isinstance(batch.damage, CorruptLogError)
        with pytest.raises(CorruptLogError):
            _records(storage)
        (target,) = storage.targets(SID)
        assert storage.verify(target, None).problems
        report = storage.repair(SID, dry_run=True)
        assert report is not None
        assert report.kept == 2
        assert isinstance(storage.reader(SID).read(first).damage, CorruptLogError)  # a dry run
        report = storage.repair(SID, dry_run=False)
        assert report is not None
        assert report.kept == 2
        assert report.moved
        assert not storage.verify(target, None).problems
        assert [r.event.seq for r in _records(storage)] == [1, 2]
        batch = storage.reader(SID).read(first)
        assert ([r.event.seq for r in batch.records], batch.damage) == ([2], None)

    def test_the_change_feed_hears_an_append_through_another_storage_object(
        self, storage: Storage, twin: Storage
    ) -> None:
        feed = storage.changes()
        try:
            Chain().append(twin, "heard")
            heard: set[str] | None = set()
            deadline = threading.Event()
            timer = threading.Timer(_FEED_WAIT, deadline.set)
            timer.start()
            while heard is not None and SID not in heard and not deadline.is_set():
                heard = feed.wait(0.5)
            timer.cancel()
            assert heard is None or SID in heard
        finally:
            feed.close()

    # -- the semantics above it ------------------------------------------------------------

    def test_every_kind_of_write_gets_the_next_seq(self, storage: Storage) -> None:
        journal = Journal(storage=storage)
        writes: list[Callable[[], object]] = [
            lambda: journal.create(SID),
            lambda: journal.add_message(SID, "user", "one"),
            lambda: journal.add_messages(SID, [{"role": "user", "content": "x"}] * 3),
            lambda: journal.update_settings(SID, {"model": "m"}),
            lambda: journal.edit_message(SID, journal.get(SID).messages[0].id, "one, edited"),
            lambda: journal.pop_message(SID),
            lambda: journal.clear(SID),
        ]
        versions = []
        for write in writes:
            write()
            versions.append(journal.get(SID).version)
        assert versions == [1, 2, 5, 6, 7, 8, 9]
        assert _seqs(storage) == list(range(1, 10))
        fresh = Journal(storage=storage.reopen())
        try:
            assert fresh.get(SID) == journal.get(SID)
        finally:
            fresh.close()

    def test_a_journal_catches_up_with_another_writer(self, storage: Storage, twin: Storage) -> None:
        mine, theirs = Journal(storage=storage), Journal(storage=twin)
        mine.create(SID)
        assert mine.get(SID).version == 1  # cached
        theirs.add_message(SID, "user", "theirs")
        assert _contents(mine.get(SID)) == ["theirs"]
        assert mine.add_message(SID, "user", "mine").seq == 3
        assert _contents(theirs.get(SID)) == ["theirs", "mine"]

    def test_an_expected_version_another_writer_moved_past_is_a_conflict(
        self, storage: Storage, twin: Storage
    ) -> None:
        mine, theirs = Journal(storage=storage), Journal(storage=twin)
        mine.create(SID)
        version = mine.get(SID).version
        theirs.add_message(SID, "user", "first", expected_version=version)
        with pytest.raises(ConflictError) as info:
            mine.add_message(SID, "user", "second", expected_version=version)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert _seqs(storage) == [1, 2]

    def test_writers_through_two_storage_objects_lose_and_repeat_nothing(
        self, storage: Storage, twin: Storage
    ) -> None:
        journals = [Journal(storage=storage), Journal(storage=twin)]
        journals[0].create(SID)
        errors: list[BaseException] = []

        def write(journal: Journal, name: str) -> None:
            try:
                for i in range(25):
                    journal.add_message(SID, "user", f"{name}-{i}")
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(journals[k % 2], f"w{k}")) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert _seqs(storage) == list(range(1, 102))
        contents = _contents(journals[0].get(SID))
        assert sorted(contents) == sorted(f"w{k}-{i}" for k in range(4) for i in range(25))
        for k in range(4):  # each writer's messages in its own order
            mine = [c for c in contents if c.startswith(f"w{k}-")]
            assert mine == [f"w{k}-{i}" for i in range(25)]

    def test_a_deleted_session_created_again_is_never_served_from_the_old_cache(
        self, storage: Storage, twin: Storage
    ) -> None:
        mine, theirs = Journal(storage=storage), Journal(storage=twin)
        mine.create(SID)
        mine.add_message(SID, "user", "old")
        assert mine.get(SID).version == 2
        theirs.delete(SID)
        with pytest.raises(SessionNotFoundError):
            mine.get(SID)
        theirs.create(SID)
        theirs.add_message(SID, "user", "new")
        assert _contents(mine.get(SID)) == ["new"]

    def test_a_snapshot_is_never_trusted_over_the_log(self, storage: Storage) -> None:
        journal = Journal(storage=storage, snapshot_every=0, snapshot_bytes=0)
        journal.create(SID)
        journal.add_message(SID, "user", "one")
        journal.compact(SID)  # a snapshot at seq 2
        journal.add_message(SID, "user", "two")
        fresh = Journal(storage=storage.reopen())
        try:
            assert _contents(fresh.get(SID)) == ["one", "two"]
            assert fresh.replay(SID, at=2) == journal.replay(SID, at=2)
        finally:
            fresh.close()

    def test_history_survives_pruning_and_retention_drops_only_what_it_says(self, storage: Storage) -> None:
        journal = Journal(storage=storage)
        journal.create(SID)
        for i in range(4):
            journal.add_message(SID, "user", f"m{i}")
        assert [tuple(c) for c in journal.compact(SID, prune=True)] == [(SID, 5, 4, 0)]
        journal.add_message(SID, "user", "after")
        assert [e.seq for e in journal.events(SID)] == list(range(1, 7))
        assert _contents(journal.replay(SID, at=3)) == ["m0", "m1"]
        journal.retention = timedelta(microseconds=1)
        journal.compact(SID, prune=True)
        first = next(journal.events(SID)).seq
        assert first > 1
        with pytest.raises(HistoryPrunedError):
            journal.replay(SID, at=1)
        assert _contents(journal.get(SID)) == ["m0", "m1", "m2", "m3", "after"]

    def test_a_redaction_erases_the_content_from_everything_stored(self, storage: Storage) -> None:
        secret = "contract-secret-4f1c9b"  # noqa: S105 (a message, not a password)
        journal = Journal(storage=storage, snapshot_every=2)
        journal.create(SID)
        message = journal.add_message(SID, "user", secret)
        for i in range(3):
            journal.add_message(SID, "user", f"m{i}")
        journal.compact(SID, prune=True)
        journal.add_message(SID, "user", "after")
        journal.redact_message(SID, message.id, reason="contract")
        with storage.writer(SID) as tx:
            exported = tx.export()
        assert not [line for line in exported.lines if secret.encode() in line]
        assert exported.base is None or secret.encode() not in exported.base
        snapshot = storage.reader(SID).snapshot()
        assert snapshot is None or secret not in _contents(snapshot[0])
        added = [e for e in journal.events(SID) if isinstance(e, MessageAdded) and e.message_id == message.id]
        assert [(e.content, e.redacted_by) for e in added] == [("", 7)]
        assert journal.verify(SID).ok

    def test_a_damaged_line_fails_reads_and_writes_until_repaired(self, storage: Storage) -> None:
        chain = Chain()
        good = chain.append(storage, "one")
        with storage.writer(SID) as tx:
            tx.append(good, [_damaged(line) for line in chain.lines("two")])
        journal = Journal(storage=storage)
        with pytest.raises(CorruptLogError):
            journal.get(SID)
        with pytest.raises(CorruptLogError):
            journal.add_message(SID, "user", "refused")
        assert not journal.verify(SID).ok
        assert journal.repair(SID).kept == 2
        assert journal.add_message(SID, "user", "again").seq == 3
        assert _contents(journal.get(SID)) == ["one", "again"]
