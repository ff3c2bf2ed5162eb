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
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import settings
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
    ConflictError,
    Created,
    Event,
    Journal,
    JournalClosedError,
    JournalError,
    Message,
    MessageAdded,
    Session,
    SessionNotFoundError,
    SettingsChanged,
)
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
references = st.none() | st.lists(json_values, max_size=3) | st.lists(json_values, max_size=2).map(tuple)
version_choices = st.sampled_from(["none", "right", "behind", "ahead"])
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)


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

    def teardown(self) -> None:
        for journal in self.journals:
            journal.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @initialize(
        fsync=fsync_policies, cache=cache_sizes, second=st.none() | st.tuples(fsync_policies, cache_sizes)
    )
    def open_journals(self, fsync: str, cache: int, second: tuple[str, int] | None) -> None:
        self.journals.append(Journal(self.root, fsync=fsync, max_cached_sessions=cache))
        if second is not None:  # some runs start with two Journals on the root
            self.journals.append(Journal(self.root, fsync=second[0], max_cached_sessions=second[1]))

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

    @rule(actor=actors, which=journal_index)
    def create_with_random_id(self, actor: str | None, which: int) -> None:
        got = self.pick(which).create(actor=actor)
        assert_same_session(got, self.model.create(got.id, actor=actor, now=got.created_at))

    @rule(sid=session_ids, actor=actors, which=journal_index)
    def get_or_create(self, sid: str, actor: str | None, which: int) -> None:
        got = self.pick(which).get_or_create(sid, actor=actor)
        assert_same_session(got, self.model.get_or_create(sid, actor=actor, now=got.created_at))

    @rule(
        data=st.data(),
        role=roles,
        content=texts,
        metadata=st.none() | json_objects,
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

    @rule(
        changes=json_objects,
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

    @rule(which=journal_index, fsync=fsync_policies, cache=cache_sizes)
    def reopen(self, which: int, fsync: str, cache: int) -> None:
        # Everything lives in the folder: a new Journal on it must see what the old one wrote.
        index = which % len(self.journals)
        old = self.journals[index]
        old.close()
        with pytest.raises(JournalClosedError):
            old.get(IDS[0])
        self.journals[index] = Journal(self.root, fsync=fsync, max_cached_sessions=cache)

    @precondition(lambda self: len(self.journals) == 1)
    @rule(fsync=fsync_policies, cache=cache_sizes)
    def open_second(self, fsync: str, cache: int) -> None:
        self.journals.append(Journal(self.root, fsync=fsync, max_cached_sessions=cache))

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
        if len(self.journals) == 2:
            first, second = self.journals
            for sid in sorted(expected_ids):
                assert first.get(sid) == second.get(sid)


def test_journal_agrees_with_model() -> None:
    # Oracle: see JournalMachine and tests/model.py; ~30 steps per run, runs per the profile.
    run_state_machine_as_test(JournalMachine, settings=settings(stateful_step_count=30))
