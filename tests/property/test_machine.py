"""Stateful test: real Journals on one folder, driven side by side with the in-memory model.

Oracle: ``tests.model.InMemoryJournal``, a naive fold over plain lists that shares no code with
``journal.state``. Every rule performs one public call on a real ``Journal`` and the same call on
the model; both must succeed with equal results or fail with the same error (type, session id,
expected and actual versions). The model is given the timestamps the journal chose, so even
``replay(at=datetime)`` has an exact expected answer; message ids are generated, so they are
checked for consistency (unique, the same from every read path and every Journal) rather than
against the model.

The journals vary in everything that must not change results: fsync policy, a cache so small
(0, 1 or 2 sessions) that states are evicted and rebuilt all the time, a second Journal on the
same root writing to the same sessions (its cache goes stale under it), and closing and
reopening. Session ids include names that collide after case folding or slugging, path
separators, dot-dot, control characters, line separators and the 1024-character maximum.

Compaction must not change anything observable either: the journals are opened with snapshots
due every few events or bytes and automatic pruning after a few lines, ``compact`` (snapshot,
prune, one session or all of them) runs at arbitrary points, and the newest snapshot of a
session is damaged in every way a cache can be (truncated, a byte flipped, garbage, another
session's file, an older file of the same session, deleted). After every step every open
Journal must still give the model's state and the model's FULL history (pruned events come back
from the archive). ``RetentionMachine`` checks the one change pruning may make on purpose: with a
retention policy, history before the retention base is gone (``HistoryPrunedError``) while the
state is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from journal import (
    Compaction,
    ConflictError,
    Created,
    Event,
    HistoryPrunedError,
    InvalidValueError,
    Journal,
    JournalClosedError,
    JournalError,
    Message,
    MessageAdded,
    Session,
    SessionNotFoundError,
    SettingsChanged,
)
from journal.paths import Layout
from journal.snapshot import decode_snapshot
from tests.model import (
    InMemoryJournal,
    ModelEvent,
    ModelMessage,
    ModelSession,
    actors,
    canon,
    json_objects,
    json_values,
    keys,
    short_texts,
    texts,
)

IDS = (
    "chat",
    "Chat",  # same slug as "chat": only the hash part of the folder name differs
    "CON",  # a reserved name on Windows
    "../up",
    "a/b\\c",
    "日本語",
    "🙂",
    "x" * 1024,  # the longest id allowed
    "line\u2028sep\n",
    "\x01ctl",
)
session_ids = st.sampled_from(IDS)
journal_index = st.integers(0, 1)  # which Journal does the call (modulo how many are open)
fsync_policies = st.sampled_from(["always", "interval", "never"])
cache_sizes = st.sampled_from([0, 1, 2])
roles = st.sampled_from(["user", "assistant", "system"]) | st.text(min_size=1, max_size=8)


def fits_64_bits(value: Any) -> bool:
    """Whether every int in a JSON value lies in [-2**63, 2**64 - 1] (what MessagePack holds).

    Beyond that range a write must either be refused with InvalidValueError (nothing written)
    or be stored and still snapshot and prune; the machine found that instead it was appended
    and then OverflowError escaped from the snapshot. Those ints are covered by
    ``test_snapshots_and_pruning_accept_every_value_a_write_accepts``; the machines keep them
    out, since the model does not say which of the two outcomes is right, and a stateful
    failure on them shrinks for longer than the test timeout.
    """
    if isinstance(value, dict):
        return all(fits_64_bits(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(fits_64_bits(v) for v in value)
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**64


objects = json_objects.filter(fits_64_bits)
references = (
    st.none() | st.lists(json_values, max_size=3) | st.lists(json_values, max_size=2).map(tuple)
).filter(fits_64_bits)
version_choices = st.sampled_from(["none", "right", "behind", "ahead"])
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)


class Config(NamedTuple):
    """How a Journal is opened; none of it may change a result (only when work happens)."""

    fsync: str
    cache: int
    snapshot_every: int
    snapshot_bytes: int
    archive_after: int | None

    def open(self, root: str, retention: timedelta | None = None) -> Journal:
        return Journal(
            root,
            fsync=self.fsync,
            max_cached_sessions=self.cache,
            snapshot_every=self.snapshot_every,
            snapshot_bytes=self.snapshot_bytes,
            archive_after=self.archive_after,
            retention=retention,
        )


# Caches that evict all the time or never; snapshots after every 1..5 events, after ~every
# write (1 byte), after a few writes (300 bytes), or at the defaults (practically never here);
# pruning after 2..6 lines or never.
configs = st.builds(
    Config,
    fsync=fsync_policies,
    cache=cache_sizes | st.just(64),  # 64: states stay cached, and go stale when the other Journal prunes
    snapshot_every=st.sampled_from([1, 2, 3, 5, 0, 1000]),
    snapshot_bytes=st.sampled_from([0, 1, 300, 1 << 20]),
    archive_after=st.none() | st.integers(2, 6),
)

# -- the files, as an outside reader sees them (names per docs/compaction.md) -----------------

SNAPSHOT_NAME = re.compile(r"^snapshot-(\d{20})\.snap$")
SNAPSHOT_MAGIC = b"JNLSNAP1"  # the first 8 bytes of every snapshot file (journal/snapshot.py)
DAMAGES = ("truncate", "flip", "garbage", "foreign", "foreign_named", "stale", "delete")
damages = st.sampled_from(DAMAGES)
Stash = dict[str, list[tuple[str, bytes]]]  # session id -> (file name, bytes) of its past snapshots


def snapshot_files(root: str, sid: str) -> list[Path]:
    """The session's snapshot files, newest (highest seq in the name) first."""
    folder = Layout(root).session_dir(sid)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = sorted(((int(m[1]), n) for n in names if (m := SNAPSHOT_NAME.match(n))), reverse=True)
    return [folder / name for _, name in found]


def active_lines(root: str, sid: str) -> int:
    """How many events the active log (``events.jsonl``) holds."""
    try:
        return Layout(root).log_path(sid).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def temporary_files(root: str, sid: str) -> list[str]:
    """Hidden (temporary) files in the session folder or its archive."""
    folder = Layout(root).session_dir(sid)
    found = []
    for where in (folder, folder / "archive"):
        if where.is_dir():
            found += [str(where / n) for n in os.listdir(where) if n.startswith(".")]
    return found


def damage_newest_snapshot(
    root: str, sid: str, others: Sequence[str], stash: Stash, how: str, data: st.DataObject
) -> None:
    """Damage the session's newest snapshot file as ``how`` says (the caller made sure one exists).

    Every draw has a fixed range (offsets are fractions of the file), so the choices Hypothesis
    replays never depend on file sizes, which depend on generated ids and timestamps.
    """
    path = snapshot_files(root, sid)[0]
    original = path.read_bytes()
    kept = stash.setdefault(sid, [])
    kept.append((path.name, original))
    del kept[:-4]
    where = data.draw(st.integers(0, (1 << 16) - 1), label="where") * len(original) >> 16
    pick = data.draw(st.integers(0, 255), label="pick")
    if how == "truncate":  # anywhere from empty to one byte short
        path.write_bytes(original[:where])
    elif how == "flip":  # (an empty file, left by an earlier truncation, gets one byte)
        damaged = bytearray(original or b"\0")
        damaged[where] ^= data.draw(st.integers(1, 255), label="mask")
        path.write_bytes(bytes(damaged))
    elif how == "garbage":  # with or without the right magic bytes in front
        junk = data.draw(st.binary(max_size=64), label="junk")
        path.write_bytes(SNAPSHOT_MAGIC + junk if data.draw(st.booleans(), label="magic") else junk)
    elif how in ("foreign", "foreign_named"):
        # Another session's file (current or from the past): in place of ours ("foreign"), or
        # under its own name, so that it may be the newest in our folder ("foreign_named").
        candidates = [
            (f.name, f.read_bytes()) for o in others if o != sid for f in snapshot_files(root, o)[:1]
        ]
        candidates += [entry for o, entries in stash.items() if o != sid for entry in entries]
        if not candidates:
            path.unlink()
        elif how == "foreign":
            path.write_bytes(candidates[pick % len(candidates)][1])
        else:
            name, content = candidates[pick % len(candidates)]
            (path.parent / name).write_bytes(content)
    elif how == "stale":
        # Ours goes, and an older file of this session comes back: valid if the active log was
        # not replaced since, stale if it was pruned (or the session deleted and created again).
        path.unlink()
        older = [entry for entry in kept[:-1] if entry[1] != original]
        if older:
            name, content = older[pick % len(older)]
            (path.parent / name).write_bytes(content)
    else:
        path.unlink()


# -- comparing journal results with the model's ---------------------------------------------


def assert_same_message(got: Message, want: ModelMessage) -> None:
    assert (got.seq, got.role, got.content, got.at, got.actor) == (
        want.seq,
        want.role,
        want.content,
        want.at,
        want.actor,
    )
    assert canon(got.metadata) == canon(want.metadata)
    assert canon(got.references) == canon(want.references)


def assert_same_session(got: Session, want: ModelSession) -> None:
    assert (got.id, got.version, got.created_at, got.updated_at) == (
        want.id,
        want.version,
        want.created_at,
        want.updated_at,
    )
    assert canon(got.settings) == canon(want.settings)
    assert len(got.messages) == len(want.messages)
    for message, expected in zip(got.messages, want.messages, strict=True):
        assert_same_message(message, expected)


def event_facts(event: Event | ModelEvent) -> tuple[Any, ...]:
    """The deterministic content of an event, from the journal or from the model."""
    common = (event.seq, event.type, event.at, event.actor)
    if isinstance(event, ModelEvent):
        if event.type == "created":
            return (*common, event.session_id)
        if event.type == "message_added":
            return (*common, event.role, event.content, canon(event.metadata), canon(event.references))
        if event.type == "settings_changed":
            return (*common, canon(event.changes), list(event.removed))
        return common
    if isinstance(event, Created):
        return (*common, event.session_id)
    if isinstance(event, MessageAdded):
        return (*common, event.role, event.content, canon(event.metadata), canon(event.references))
    if isinstance(event, SettingsChanged):
        return (*common, canon(event.changes), list(event.removed))
    return common


def visible_ids(events: Sequence[Event], upto: int | None = None) -> list[str]:
    """Ids of the messages added after the last ``cleared`` among events with seq <= upto."""
    ids: list[str] = []
    for event in events:
        if upto is not None and event.seq > upto:
            break
        if event.type == "cleared":
            ids = []
        elif isinstance(event, MessageAdded):
            ids.append(event.message_id)
    return ids


def expect_same_error(error: JournalError, model_call: Callable[[], object]) -> None:
    """The model must fail the same way: same type, same session, same versions."""
    with pytest.raises(JournalError) as info:
        model_call()
    expected = info.value
    assert type(error) is type(expected), (error, expected)
    assert getattr(error, "session_id", None) == getattr(expected, "session_id", None)
    if isinstance(error, ConflictError):
        assert isinstance(expected, ConflictError)
        assert (error.expected, error.actual) == (expected.expected, expected.actual)


class JournalMachine(RuleBasedStateMachine):
    """One or two Journals on one temporary root, and the model of what they hold."""

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="journal-machine-")
        self.model = InMemoryJournal()
        self.journals: list[Journal] = []
        self.stash: Stash = {}  # snapshot files seen before damage, for the "foreign"/"stale" kinds

    def teardown(self) -> None:
        for journal in self.journals:
            journal.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(first=configs, second=st.none() | configs)
    def open_journals(self, first: Config, second: Config | None) -> None:
        self.journals.append(first.open(self.root))
        if second is not None:  # some runs start with two Journals on the root
            self.journals.append(second.open(self.root))

    def pick(self, which: int) -> Journal:
        return self.journals[which % len(self.journals)]

    def target(self, data: st.DataObject) -> str:
        """A session id to write to: usually an existing session, sometimes any id of the pool."""
        existing = self.existing()
        if existing and data.draw(st.integers(0, 3), label="existing") > 0:
            return data.draw(st.sampled_from(existing), label="sid")
        return data.draw(session_ids, label="sid")

    def expected_version(self, sid: str, choice: str) -> int | None:
        version = self.model.get(sid).version if self.model.exists(sid) else 1
        return {"none": None, "right": version, "behind": version - 1, "ahead": version + 1}[choice]

    def existing(self) -> list[str]:
        # In creation order, never sorted: random ids would make the draws below depend on
        # uuid4 and not only on Hypothesis' choices, which Hypothesis rejects as flaky.
        return self.model.sessions()

    def check_pruned(self, journal: Journal, sid: str) -> None:
        """After a write by ``journal``: with ``archive_after=N`` the active log holds <= N events.

        Oracle: the writer that crosses the mark prunes to one line, so no write by such a
        Journal leaves more than N lines, whoever wrote the lines before it.
        """
        if journal.archive_after is not None:
            assert 1 <= active_lines(self.root, sid) <= journal.archive_after

    # -- writes ----------------------------------------------------------------------------

    @rule(sid=session_ids, actor=actors, which=journal_index)
    def create(self, sid: str, actor: str | None, which: int) -> None:
        # Ids come from a small pool, so this is often a duplicate create.
        try:
            got = self.pick(which).create(sid, actor=actor)
        except JournalError as exc:
            expect_same_error(exc, lambda: self.model.create(sid, actor=actor))
            return
        assert_same_session(got, self.model.create(sid, actor=actor, now=got.created_at))
        self.check_pruned(self.pick(which), sid)

    @rule(actor=actors, which=journal_index)
    def create_with_random_id(self, actor: str | None, which: int) -> None:
        got = self.pick(which).create(actor=actor)
        assert_same_session(got, self.model.create(got.id, actor=actor, now=got.created_at))

    @rule(sid=session_ids, actor=actors, which=journal_index)
    def get_or_create(self, sid: str, actor: str | None, which: int) -> None:
        created = not self.model.exists(sid)
        got = self.pick(which).get_or_create(sid, actor=actor)
        assert_same_session(got, self.model.get_or_create(sid, actor=actor, now=got.created_at))
        if created:
            self.check_pruned(self.pick(which), sid)

    @rule(
        data=st.data(),
        role=roles,
        content=texts,
        metadata=st.none() | objects,
        refs=references,
        actor=actors,
        version=version_choices,
        which=journal_index,
    )
    def add_message(
        self,
        data: st.DataObject,
        role: str,
        content: str,
        metadata: dict[str, Any] | None,
        refs: Sequence[Any] | None,
        actor: str | None,
        version: str,
        which: int,
    ) -> None:
        sid = self.target(data)
        expected = self.expected_version(sid, version)

        def on_model(now: datetime | None = None) -> ModelMessage:
            return self.model.add_message(
                sid,
                role,
                content,
                metadata=metadata,
                references=refs,
                expected_version=expected,
                actor=actor,
                now=now,
            )

        try:
            got = self.pick(which).add_message(
                sid, role, content, metadata=metadata, references=refs, expected_version=expected, actor=actor
            )
        except JournalError as exc:
            expect_same_error(exc, on_model)
            return
        assert_same_message(got, on_model(got.at))
        self.check_pruned(self.pick(which), sid)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), writes=st.lists(st.tuples(short_texts, journal_index), min_size=1, max_size=8))
    def add_messages(self, data: st.DataObject, writes: list[tuple[str, int]]) -> None:
        # Oracle: the model, message by message. A burst through alternating Journals makes
        # logs long enough to cross snapshot and pruning marks many times, each Journal
        # catching up with what the other wrote (and pruned) before it writes.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        for content, which in writes:
            journal = self.pick(which)
            got = journal.add_message(sid, "user", content, actor=str(which))
            assert_same_message(
                got, self.model.add_message(sid, "user", content, actor=str(which), now=got.at)
            )
            self.check_pruned(journal, sid)

    @rule(
        changes=objects,
        data=st.data(),
        actor=actors,
        version=version_choices,
        which=journal_index,
    )
    def update_settings(
        self,
        changes: dict[str, Any],
        data: st.DataObject,
        actor: str | None,
        version: str,
        which: int,
    ) -> None:
        # Remove keys that exist, keys being set in the same call, and keys that never existed;
        # about one call in six has nothing to set or remove and must write nothing.
        sid = self.target(data)
        present = sorted(self.model.get(sid).settings) if self.model.exists(sid) else []
        candidates = [*present, *changes, "never-set"]
        remove = data.draw(st.lists(st.sampled_from(candidates) | keys, max_size=3), label="remove")
        if data.draw(st.integers(0, 5), label="nothing") == 0:
            changes, remove = {}, []
        expected = self.expected_version(sid, version)

        def on_model(now: datetime | None = None) -> ModelSession:
            return self.model.update_settings(
                sid, changes, remove=remove, expected_version=expected, actor=actor, now=now
            )

        try:
            got = self.pick(which).update_settings(
                sid, changes, remove=remove, expected_version=expected, actor=actor
            )
        except JournalError as exc:
            expect_same_error(exc, on_model)
            return
        assert_same_session(got, on_model(got.updated_at))
        if changes or remove:
            self.check_pruned(self.pick(which), sid)

    @rule(data=st.data(), actor=actors, version=version_choices, which=journal_index)
    def clear(self, data: st.DataObject, actor: str | None, version: str, which: int) -> None:
        sid = self.target(data)
        expected = self.expected_version(sid, version)
        try:
            got = self.pick(which).clear(sid, expected_version=expected, actor=actor)
        except JournalError as exc:
            expect_same_error(exc, lambda: self.model.clear(sid, expected_version=expected, actor=actor))
            return
        want = self.model.clear(sid, expected_version=expected, actor=actor, now=got.updated_at)
        assert_same_session(got, want)
        self.check_pruned(self.pick(which), sid)

    @rule(data=st.data(), which=journal_index)
    def delete(self, data: st.DataObject, which: int) -> None:
        sid = self.target(data)
        try:
            self.pick(which).delete(sid)
        except JournalError as exc:
            expect_same_error(exc, lambda: self.model.delete(sid))
            return
        self.model.delete(sid)

    @rule(data=st.data(), which=journal_index)
    def delete_random_id_session(self, data: st.DataObject, which: int) -> None:
        # Sessions created with a random id are otherwise never deleted.
        extra = [sid for sid in self.existing() if sid not in IDS]
        if extra:
            sid = data.draw(st.sampled_from(extra), label="sid")
            self.pick(which).delete(sid)
            self.model.delete(sid)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=journal_index)
    def recreate_identically(self, data: st.DataObject, which: int) -> None:
        # Delete a session and write it again with the same calls, all within one step, so the
        # other Journal's cache next sees a log of the same name and often the same size (and
        # inode) that is nonetheless a different log: it must not serve its old state.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        journal = self.pick(which)
        history = self.model.events(sid)
        journal.delete(sid)
        self.model.delete(sid)
        for event in history:
            if event.type == "created":
                got = journal.create(sid, actor=event.actor)
                self.model.create(sid, actor=event.actor, now=got.updated_at)
            elif event.type == "message_added":
                message = journal.add_message(
                    sid,
                    event.role,
                    event.content,
                    metadata=event.metadata,
                    references=event.references,
                    actor=event.actor,
                )
                self.model.add_message(
                    sid,
                    event.role,
                    event.content,
                    metadata=event.metadata,
                    references=event.references,
                    actor=event.actor,
                    now=message.at,
                )
            elif event.type == "settings_changed":
                got = journal.update_settings(sid, event.changes, remove=event.removed, actor=event.actor)
                self.model.update_settings(
                    sid, event.changes, remove=event.removed, actor=event.actor, now=got.updated_at
                )
            else:
                got = journal.clear(sid, actor=event.actor)
                self.model.clear(sid, actor=event.actor, now=got.updated_at)
        self.check_pruned(journal, sid)

    # -- compaction ------------------------------------------------------------------------

    @rule(data=st.data(), which=journal_index, prune=st.booleans())
    def compact_session(self, data: st.DataObject, which: int, prune: bool) -> None:
        # Oracle: compaction changes nothing observable (the invariants), reports the model's
        # version, archives every line of the active log but the last (counted in the file
        # before) and drops nothing without retention; the snapshot it leaves holds the model's
        # state. A missing session fails like every other call, with SessionNotFoundError.
        sid = self.target(data)
        journal = self.pick(which)
        if not self.model.exists(sid):
            with pytest.raises(SessionNotFoundError):
                journal.compact(sid, prune=prune)
            return
        lines = active_lines(self.root, sid)
        version = self.model.get(sid).version
        result = journal.compact(sid, prune=prune)
        assert result == [Compaction(sid, version, lines - 1 if prune else 0, 0)]
        if prune:
            assert active_lines(self.root, sid) == 1
        self.check_snapshot(sid)

    def check_snapshot(self, sid: str) -> None:
        """After ``compact``: its snapshot is there, at the session's version, with the model's state.

        Read by name: a planted foreign file with a higher seq may sort above it ("foreign_named").
        """
        want = self.model.get(sid)
        written = Layout(self.root).session_dir(sid) / f"snapshot-{want.version:020d}.snap"
        state, head = decode_snapshot(written.read_bytes())
        assert head.seq == want.version
        assert_same_session(state, want)

    @rule(which=journal_index, prune=st.booleans())
    def compact_every_session(self, which: int, prune: bool) -> None:
        # Oracle: the model's set of sessions; progress(done, total, sid) is called once per
        # session, after it, with done counting 1..total, in the order of the results; each
        # result is what compacting that session alone gives (see compact_session).
        before = {sid: active_lines(self.root, sid) for sid in self.existing()}
        calls: list[tuple[int, int, str]] = []
        results = self.pick(which).compact(prune=prune, progress=lambda *call: calls.append(call))
        total = len(before)
        assert [(done, count) for done, count, _ in calls] == [(i, total) for i in range(1, total + 1)]
        assert sorted(sid for _, _, sid in calls) == sorted(before)
        assert [r.session_id for r in results] == [sid for _, _, sid in calls]
        for r in results:
            version = self.model.get(r.session_id).version
            assert r == Compaction(r.session_id, version, before[r.session_id] - 1 if prune else 0, 0)
            if prune:
                assert active_lines(self.root, r.session_id) == 1
            self.check_snapshot(r.session_id)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=journal_index, how=damages)
    def damage_snapshot(self, data: st.DataObject, which: int, how: str) -> None:
        # Oracle: a snapshot is only a cache, so after any damage to the newest one a cold
        # Journal (no cache at all) still reads the model's state; the open Journals are
        # checked by the invariants (those with a tiny cache reload through the snapshots).
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        if not snapshot_files(self.root, sid):
            self.pick(which).compact(sid)  # something to damage
        damage_newest_snapshot(self.root, sid, self.existing(), self.stash, how, data)
        with Journal(self.root, max_cached_sessions=0) as cold:
            got = cold.get(sid)
            assert_same_session(got, self.model.get(sid))
            assert got == cold.replay(sid)

    # -- reads -----------------------------------------------------------------------------

    @rule(data=st.data(), which=journal_index)
    def read_missing(self, data: st.DataObject, which: int) -> None:
        # Oracle: an id the model does not hold is absent from every read path.
        absent = [sid for sid in IDS if not self.model.exists(sid)] + [uuid.uuid4().hex]
        sid = data.draw(st.sampled_from(absent), label="sid")
        journal = self.pick(which)
        assert not journal.exists(sid)
        with pytest.raises(SessionNotFoundError):
            journal.get(sid)
        with pytest.raises(SessionNotFoundError):
            journal.events(sid)
        with pytest.raises(SessionNotFoundError):
            journal.replay(sid)
        with pytest.raises(SessionNotFoundError):
            self.model.get(sid)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=journal_index)
    def replay_at_seq(self, data: st.DataObject, which: int) -> None:
        # Oracle: the model's fold of the events with seq <= at (seq 0: the session did not
        # exist yet); generated ids must be those of the visible messages at that point.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        at = data.draw(st.integers(0, self.model.get(sid).version + 2), label="at")
        journal = self.pick(which)
        if at == 0:
            with pytest.raises(SessionNotFoundError):
                self.model.replay(sid, at=at)
            with pytest.raises(SessionNotFoundError):
                journal.replay(sid, at=at)
            return
        got = journal.replay(sid, at=at)
        assert_same_session(got, self.model.replay(sid, at=at))
        assert [m.id for m in got.messages] == visible_ids(list(journal.events(sid)), at)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(
        data=st.data(),
        which=journal_index,
        nudge=st.sampled_from([-1, 0, 1]),
        offset_hours=st.integers(-12, 14),
    )
    def replay_at_time(self, data: st.DataObject, which: int, nudge: int, offset_hours: int) -> None:
        # Oracle: the model holds the journal's timestamps, so it knows exactly which events
        # happened at or before any moment; the moment's time zone must not matter.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        journal = self.pick(which)
        events = list(journal.events(sid))
        event = data.draw(st.sampled_from(events), label="event")
        moment = (event.at + timedelta(microseconds=nudge)).astimezone(
            timezone(timedelta(hours=offset_hours))
        )
        try:
            want = self.model.replay(sid, at=moment)
        except SessionNotFoundError:
            with pytest.raises(SessionNotFoundError):
                journal.replay(sid, at=moment)
        else:
            assert_same_session(journal.replay(sid, at=moment), want)
        assert_same_session(journal.replay(sid, at=FAR_FUTURE), self.model.get(sid))
        with pytest.raises(SessionNotFoundError):
            journal.replay(sid, at=EPOCH)
        with pytest.raises(ValueError, match="aware"):
            journal.replay(sid, at=event.at.replace(tzinfo=None))

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=journal_index)
    def events_after(self, data: st.DataObject, which: int) -> None:
        # Oracle: the model's history filtered on seq > after.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        after = data.draw(st.integers(0, self.model.get(sid).version + 2), label="after")
        got = [event_facts(e) for e in self.pick(which).events(sid, after=after)]
        assert got == [event_facts(e) for e in self.model.events(sid, after=after)]

    # -- journals coming and going ---------------------------------------------------------

    @rule(which=journal_index, config=configs)
    def reopen(self, which: int, config: Config) -> None:
        # Everything lives in the folder: a new Journal on it (with other snapshot and pruning
        # settings) must see what the old one wrote; a closed one refuses every call.
        index = which % len(self.journals)
        old = self.journals[index]
        old.close()
        with pytest.raises(JournalClosedError):
            old.get(IDS[0])
        with pytest.raises(JournalClosedError):
            old.compact()
        self.journals[index] = config.open(self.root)

    @precondition(lambda self: len(self.journals) == 1)
    @rule(config=configs)
    def open_second(self, config: Config) -> None:
        self.journals.append(config.open(self.root))

    @precondition(lambda self: len(self.journals) == 2)
    @rule()
    def close_second(self) -> None:
        self.journals.pop().close()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def journals_match_model(self) -> None:
        # Oracle: the model, for every session and every open Journal; and for the generated
        # parts (ids, exact states), the Journal's own fresh replay and the other Journal.
        expected_ids = set(self.model.sessions())
        for journal in self.journals:
            assert set(journal.sessions()) == expected_ids
            for sid in IDS:
                assert journal.exists(sid) == (sid in expected_ids)
            for sid in sorted(expected_ids):
                got = journal.get(sid)
                assert_same_session(got, self.model.get(sid))
                assert got == journal.replay(sid)  # a cached state equals a fresh replay
                events = list(journal.events(sid))
                assert [event_facts(e) for e in events] == [event_facts(e) for e in self.model.events(sid)]
                assert [m.id for m in got.messages] == visible_ids(events)
                ids = [e.message_id for e in events if isinstance(e, MessageAdded)]
                assert len(set(ids)) == len(ids), "message ids must be unique within a session"
                times = [e.at for e in events]
                assert times == sorted(times), "event times must never go back within a session"
                assert all(t.utcoffset() == timedelta(0) for t in times)
                version = got.version
                for at in sorted({1, (version + 1) // 2, version - 1} - {0}):
                    assert_same_session(journal.replay(sid, at=at), self.model.replay(sid, at=at))
        if len(self.journals) == 2:
            first, second = self.journals
            for sid in sorted(expected_ids):
                assert first.get(sid) == second.get(sid)

    @invariant()
    def no_temporary_files(self) -> None:
        # Oracle: nothing crashed, so every atomic write (snapshot, segment, base, pruned log)
        # renamed its temporary file into place.
        for sid in self.model.sessions():
            assert temporary_files(self.root, sid) == []


def test_journal_agrees_with_model() -> None:
    # Oracle: see JournalMachine and tests/model.py; 40 steps per run (enough for bursts of
    # writes to cross pruning marks several times), runs per the profile.
    run_state_machine_as_test(JournalMachine, settings=settings(stateful_step_count=40))


# The edges of what a snapshot can encode, just inside and just outside.
@example(value=2**64 - 1)
@example(value=-(2**63))
@example(value=2**64)
@example(value=-(2**63) - 1)
@given(value=json_values | st.integers() | st.lists(st.integers(), max_size=2))
def test_snapshots_and_pruning_accept_every_value_a_write_accepts(value: Any) -> None:
    # Oracle: the model. A value stored in a message or a setting must not break the snapshot
    # and the pruning that follow the write: each write returns normally (or, should such a
    # value ever be refused, raises InvalidValueError and writes nothing), a later ordinary
    # write still works, compact(prune=True) succeeds, and a cold Journal reads the model's
    # state and history. Found by the machine above (then kept out of it: see fits_64_bits).
    model = InMemoryJournal()
    with (
        tempfile.TemporaryDirectory(prefix="journal-values-") as root,
        Journal(root, snapshot_every=1, archive_after=2) as journal,
    ):
        model.create("s", now=journal.create("s").created_at)
        try:
            message = journal.add_message("s", "user", "m", metadata={"v": value}, references=[value])
        except InvalidValueError:
            assert journal.get("s").version == 1  # refused: nothing written
        else:
            model.add_message("s", "user", "m", metadata={"v": value}, references=[value], now=message.at)
        try:
            got = journal.update_settings("s", {"v": value})
        except InvalidValueError:
            assert journal.get("s").version == model.get("s").version
        else:
            model.update_settings("s", {"v": value}, now=got.updated_at)
        message = journal.add_message("s", "user", "after")
        model.add_message("s", "user", "after", now=message.at)
        journal.compact("s", prune=True)
        with Journal(root, max_cached_sessions=0) as cold:
            assert_same_session(cold.get("s"), model.get("s"))
            assert [event_facts(e) for e in cold.events("s")] == [event_facts(e) for e in model.events("s")]


# -- retention ------------------------------------------------------------------------------

RETAIN_NOTHING_OLD = timedelta(microseconds=1)  # every archived event is older than that
RETENTION_IDS = ("a", "b", "c")


class RetentionMachine(RuleBasedStateMachine):
    """One Journal with ``retention=1µs`` on a temporary root, and the model of what it holds.

    Every pruning (explicit, or automatic with ``archive_after``) archives every active line but
    the last, and retention then folds the whole archive into the base: the base ends just
    before the last event the pruning saw, which the model records with ``drop_history``.
    """

    journal: Journal

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="journal-retention-")
        self.model = InMemoryJournal()
        self.stash: Stash = {}

    def teardown(self) -> None:
        if hasattr(self, "journal"):
            self.journal.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(config=configs)
    def open_journal(self, config: Config) -> None:
        self.journal = config.open(self.root, retention=RETAIN_NOTHING_OLD)

    def existing(self) -> list[str]:
        return self.model.sessions()

    def pruned(self, sid: str) -> None:
        """The session was just pruned at its current version: history up to the one before goes."""
        self.model.drop_history(sid, self.model.get(sid).version - 1)

    # -- writes ----------------------------------------------------------------------------

    @rule(sid=st.sampled_from(RETENTION_IDS), actor=actors)
    def create(self, sid: str, actor: str | None) -> None:
        # Oracle: the model (a duplicate create fails the same way).
        try:
            got = self.journal.create(sid, actor=actor)
        except JournalError as exc:
            expect_same_error(exc, lambda: self.model.create(sid, actor=actor))
            return
        assert_same_session(got, self.model.create(sid, actor=actor, now=got.created_at))

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), kind=st.sampled_from(["message", "settings", "clear"]), text=short_texts)
    def write(self, data: st.DataObject, kind: str, text: str) -> None:
        # Oracle: the model; with archive_after=N, a write that leaves more than N lines in the
        # active log (counted in the file before it) prunes, so the base moves up to the event
        # before it.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        lines = active_lines(self.root, sid)
        if kind == "message":
            message = self.journal.add_message(sid, "user", text, metadata={"k": text})
            assert_same_message(
                message, self.model.add_message(sid, "user", text, metadata={"k": text}, now=message.at)
            )
        elif kind == "settings":
            got = self.journal.update_settings(sid, {text: lines}, remove=["gone"])
            assert_same_session(
                got, self.model.update_settings(sid, {text: lines}, remove=["gone"], now=got.updated_at)
            )
        else:
            got = self.journal.clear(sid)
            assert_same_session(got, self.model.clear(sid, now=got.updated_at))
        limit = self.journal.archive_after
        if limit is not None and lines + 1 > limit:
            self.pruned(sid)
        assert active_lines(self.root, sid) == (1 if limit is not None and lines + 1 > limit else lines + 1)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        # Oracle: the model; a session created again under the same id starts a new history.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        self.journal.delete(sid)
        self.model.delete(sid)

    # -- compaction ------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), prune=st.booleans())
    def compact_session(self, data: st.DataObject, prune: bool) -> None:
        # Oracle: a snapshot alone archives and drops nothing; pruning archives every active
        # line but the last (counted in the file) and retention drops exactly those.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        lines = active_lines(self.root, sid)
        version = self.model.get(sid).version
        moved = lines - 1 if prune else 0
        assert self.journal.compact(sid, prune=prune) == [Compaction(sid, version, moved, moved)]
        if prune:
            self.pruned(sid)

    @rule(prune=st.booleans())
    def compact_every_session(self, prune: bool) -> None:
        # Oracle: as for one session, for each of the model's sessions, with progress called
        # once per session with done counting 1..total.
        before = {sid: (active_lines(self.root, sid), self.model.get(sid).version) for sid in self.existing()}
        calls: list[tuple[int, int, str]] = []
        results = self.journal.compact(prune=prune, progress=lambda *call: calls.append(call))
        assert [(done, total) for done, total, _ in calls] == [
            (i, len(before)) for i in range(1, len(before) + 1)
        ]
        assert sorted(sid for _, _, sid in calls) == sorted(before)
        assert [r.session_id for r in results] == [sid for _, _, sid in calls]
        for r in results:
            lines, version = before[r.session_id]
            moved = lines - 1 if prune else 0
            assert r == Compaction(r.session_id, version, moved, moved)
            if prune:
                self.pruned(r.session_id)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), how=damages)
    def damage_snapshot(self, data: st.DataObject, how: str) -> None:
        # Oracle: a snapshot is only a cache, even beside a retention base: a cold Journal
        # still reads the model's state (the invariant checks the open one).
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        if not snapshot_files(self.root, sid):
            self.journal.compact(sid)
        damage_newest_snapshot(self.root, sid, self.existing(), self.stash, how, data)
        with Journal(self.root, max_cached_sessions=0) as cold:
            assert_same_session(cold.get(sid), self.model.get(sid))

    @rule(config=configs)
    def reopen(self, config: Config) -> None:
        # Oracle: the base and the archive live in the folder; a new Journal sees the same.
        self.journal.close()
        self.journal = config.open(self.root, retention=RETAIN_NOTHING_OLD)

    # -- reads -----------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), nudge=st.sampled_from([-1, 0, 1]))
    def replay_at_time(self, data: st.DataObject, nudge: int) -> None:
        # Oracle: the model, which keeps the dropped events' times: a moment before the base's
        # last event is in dropped history (HistoryPrunedError), from it on it replays.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        base = self.model.dropped_through(sid)
        times = [e.at for e in self.model.events(sid)]
        if base:
            times.append(self.model.replay(sid, at=base).updated_at)
        moment = data.draw(st.sampled_from(sorted(times)), label="moment") + timedelta(microseconds=nudge)
        try:
            want = self.model.replay(sid, at=moment)
        except JournalError as exc:
            with pytest.raises(type(exc)) as info:
                self.journal.replay(sid, at=moment)
            if isinstance(exc, HistoryPrunedError):
                assert isinstance(info.value, HistoryPrunedError)
                assert (info.value.session_id, info.value.first_seq) == (sid, base)
        else:
            assert_same_session(self.journal.replay(sid, at=moment), want)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def journal_matches_model(self) -> None:
        # Oracle: the model. The state is whole; the history starts right after the base
        # (events(), events(after=k) for k below it); replay before the base raises
        # HistoryPrunedError(first_seq=base), from the base on it agrees with the model.
        assert set(self.journal.sessions()) == set(self.model.sessions())
        for sid in sorted(self.model.sessions()):
            got = self.journal.get(sid)
            want = self.model.get(sid)
            assert_same_session(got, want)
            assert got == self.journal.replay(sid)
            base = self.model.dropped_through(sid)
            events = [event_facts(e) for e in self.journal.events(sid)]
            assert events == [event_facts(e) for e in self.model.events(sid)]
            assert [fact[0] for fact in events] == list(range(base + 1, want.version + 1))
            if base:
                assert [event_facts(e) for e in self.journal.events(sid, after=base - 1)] == events
            for at in sorted({0, base // 2, base - 1} if base else set()):
                with pytest.raises(HistoryPrunedError) as info:
                    self.journal.replay(sid, at=at)
                assert (info.value.session_id, info.value.first_seq) == (sid, base)
            for at in sorted({base, (base + want.version) // 2, want.version} - {0}):
                assert_same_session(self.journal.replay(sid, at=at), self.model.replay(sid, at=at))
            assert temporary_files(self.root, sid) == []


def test_retention_drops_only_history_before_the_base() -> None:
    # Oracle: see RetentionMachine and InMemoryJournal.drop_history; shorter runs than above.
    run_state_machine_as_test(RetentionMachine, settings=settings(stateful_step_count=20))
