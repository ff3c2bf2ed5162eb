"""``JournalMachine``: a Hypothesis state machine driving real Journals beside the model.

Every rule performs one public call on a ``Journal`` and the same call on
:class:`~journal.testing.model.InMemoryJournal`; both must succeed with equal results or fail
with the same error. After every step the invariants compare, for every open Journal and every
session, the state, the full history, replays at several points, and ``verify()``.

The journals vary in everything that must not change a result: the options of ``configs``
(tiny caches that evict all the time, snapshots and pruning every few events), a second
Journal on the same store writing to the same sessions, reopening, and compaction at any point.

Subclass it to test your own code (see ``docs/testing.md``)::

    class MyMachine(JournalMachine):
        @rule(text=strategies.texts)
        def post_message(self, text):
            sid = self.pick_existing()        # an existing session, or a rule without one
            chat_handler(self.journal(), sid, text)          # your code writes through the journal
            self.mirror(sid, lambda now: self.model.add_message(sid, "user", text, now=now))

    TestMyMachine = MyMachine.TestCase

Hooks: ``open_journal(config)`` (another backend, other options), ``configs`` and
``session_ids`` (strategies), ``after_write`` and ``after_compact`` (extra checks).

Most runs start with a session holding a few messages. The writes that act on a message
(insert before, pop, remove, edit, redact) run only once some session holds messages, and then
mostly name a session that shows messages and one of its messages, so that most of them
succeed; about one in ten names a session or message that is not there (another session's
message, a removed one, a redacted one for ``edit``), for the errors. Every call's outcome is
recorded as a Hypothesis ``event`` (``pytest --hypothesis-show-statistics`` shows them) and,
when the class sets ``tally`` to a Counter, counted there across every run:
``(operation, "ok" or the error's class name) -> calls``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from journal.core.events import MessageAdded
from journal.core.state import Message, Session
from journal.engine.journal import Compaction, Journal
from journal.errors import JournalClosedError, JournalError, SessionNotFoundError, VersionNotFoundError
from journal.testing.compare import (
    assert_same_error,
    assert_same_message,
    assert_same_session,
    event_facts,
    visible_ids,
)
from journal.testing.model import InMemoryJournal
from journal.testing.strategies import (
    HOSTILE_SESSION_IDS,
    actors,
    json_objects,
    json_values,
    keys,
    roles,
    short_texts,
    texts,
)

__all__ = ["JournalMachine", "default_configs"]

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=timezone.utc)

default_configs: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "fsync": st.sampled_from(["always", "interval", "never"]),
        # 0..2: states are evicted and rebuilt all the time; 64: they stay, and go stale
        # under the other Journal's writes and pruning.
        "max_cached_sessions": st.sampled_from([0, 1, 2, 64]),
        "snapshot_every": st.sampled_from([1, 2, 3, 5, 0, 1000]),
        "snapshot_bytes": st.sampled_from([0, 1, 300, 1 << 20]),
        "archive_after": st.none() | st.integers(2, 6),
    }
)
"""Journal options that must not change any result (only when work happens)."""

_which = st.integers(0, 1)  # which Journal makes the call (modulo how many are open)
_versions = st.sampled_from(["none", "right", "behind", "ahead"])
# For writes that need a message to act on: mostly ones that can succeed (one in six conflicts;
# the other writes test conflicts half of the time).
_mostly_right = st.sampled_from(["none", "right"] * 5 + ["behind", "ahead"])
ABSENT_ID = "0" * 32  # a message id no session holds (the journal's ids are random)
# Redaction reasons: never empty here (an empty one is refused, drawn apart one time in ten).
_reasons = short_texts.map(lambda text: text or "asked")


def _chatty(machine: JournalMachine) -> bool:
    return bool(machine.chatty())


class JournalMachine(RuleBasedStateMachine):
    """One or two Journals on one store, and the model of what they hold.

    Attributes:
        model: the reference model; rules keep it in step with every successful write.
        journals: the open Journals (one or two).
        root: a temporary folder for the default ``open_journal`` (removed at teardown).
    """

    configs: st.SearchStrategy[dict[str, Any]] = default_configs
    session_ids: st.SearchStrategy[str] = st.sampled_from(HOSTILE_SESSION_IDS[:10])
    tally: ClassVar[Counter[tuple[str, str]] | None] = None
    """When a Counter: every call's outcome, ``(operation, "ok" or error class) -> calls``."""

    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="journal-machine-")
        self.model = InMemoryJournal()
        self.journals: list[Journal] = []

    def teardown(self) -> None:
        for journal in self.journals:
            journal.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- hooks -----------------------------------------------------------------------------

    def open_journal(self, config: dict[str, Any]) -> Journal:
        """A Journal on the machine's store with ``config``'s options."""
        return Journal(self.root, **config)

    def after_write(self, journal: Journal, session_id: str) -> None:
        """Called after every write by ``journal`` that appended events (for extra checks).

        Calls that succeed without writing anything (``get_or_create`` of an existing session,
        ``add_messages`` of no messages, ``update_settings`` with nothing to change) are not
        writes: the journal does no work for them, so there is nothing to check. A redaction
        is always one (it rewrites the stored lines even when it appends nothing).
        """

    def after_compact(self, session_id: str, prune: bool, result: Compaction) -> None:
        """Called after ``compact`` of one session returned ``result`` (for extra checks)."""

    # -- helpers for rules -----------------------------------------------------------------

    def journal(self, which: int = 0) -> Journal:
        """One of the open Journals (``which`` modulo how many are open)."""
        return self.journals[which % len(self.journals)]

    def existing(self) -> list[str]:
        """The sessions the model holds, in creation order."""
        return self.model.sessions()

    def target(self, data: st.DataObject) -> str:
        """A session id to write to: usually an existing session, sometimes any id of the pool."""
        existing = self.existing()
        if existing and data.draw(st.integers(0, 3), label="existing") > 0:
            return data.draw(st.sampled_from(existing), label="sid")
        return data.draw(self.session_ids, label="sid")

    def mirror(self, session_id: str, model_write: Callable[[datetime], object]) -> None:
        """Apply to the model a write your code made through the journal, at the journal's time.

        Messages your write added get the ids the journal gave them.
        """
        journal = self.journal()
        model_write(journal.get(session_id).updated_at)
        self.model.adopt_ids(
            session_id,
            {e.seq: e.message_id for e in journal.events(session_id) if isinstance(e, MessageAdded)},
        )

    def call(self, which: int, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``name`` on a Journal and on the model; compare results or errors.

        The model gets the journal's time and the ids of the messages it added. Returns the
        Journal's result, or None if both raised the same error.
        """
        journal = self.journal(which)
        # For the tally: an insertion is its own way through add_message.
        operation = "insert_message" if kwargs.get("before") is not None else name
        try:
            got = getattr(journal, name)(*args, **kwargs)
        except JournalError as exc:
            self.record(operation, type(exc).__name__)
            assert_same_error(exc, lambda: getattr(self.model, name)(*args, **kwargs))
            return None
        self.record(operation, "ok")
        model_call = getattr(self.model, name)
        if name == "delete":
            model_call(*args, **kwargs)
            return got
        # Every event bumps the version, and no single call deletes and writes again: a call
        # appended events exactly when the model's version moved. A redaction rewrites the
        # stored lines under the writer lock even when it appends nothing (again: it finishes
        # an interrupted erasure), so it is always a write.
        before = -1 if name == "redact_message" else self._version(args[0])
        if isinstance(got, Session):
            now = got.created_at if name == "create" else got.updated_at
            assert_same_session(got, model_call(*args, **kwargs, now=now))
            if self._version(got.id) != before:
                self.after_write(journal, got.id)
            return got
        if name == "add_message":
            kwargs = {**kwargs, "message_id": got.id}
        elif name == "add_messages":
            kwargs = {**kwargs, "message_ids": [m.id for m in got]}
        want = model_call(*args, **kwargs, now=journal.get(args[0]).updated_at)
        for message, expected in zip(
            (got,) if isinstance(got, Message) else got,
            (want,) if isinstance(got, Message) else want,
            strict=True,
        ):
            assert_same_message(message, expected)
        if self._version(args[0]) != before:
            self.after_write(journal, args[0])
        return got

    def record(self, operation: str, outcome: str) -> None:
        """Count one call's outcome (``"ok"`` or the error's class name); see ``tally``."""
        if currently_in_test_context():  # rules may also be driven by hand, outside Hypothesis
            event(f"{operation}: {outcome}")
        if self.tally is not None:
            self.tally[operation, outcome] += 1

    def _version(self, sid: str) -> int:
        return self.model.get(sid).version if self.model.exists(sid) else 0

    def chatty(self, *, history: bool = False) -> list[str]:
        """The sessions showing messages (with ``history``: ever holding one), in creation order."""
        if history:
            return [
                s for s in self.existing() if any(e.type == "message_added" for e in self.model.events(s))
            ]
        return [sid for sid in self.existing() if self.model.get(sid).messages]

    def chat(self, data: st.DataObject, *, history: bool = False) -> str:
        """A session to act on a message of: nine times in ten one showing messages (with
        ``history``: holding one in its history), else any target (perhaps absent or empty)."""
        chatty = self.chatty(history=history)
        if chatty and data.draw(st.integers(0, 9), label="chatty") > 0:
            return data.draw(st.sampled_from(chatty), label="sid")
        return self.target(data)

    def message_id(self, data: st.DataObject, sid: str, *, history: bool = False, edit: bool = False) -> str:
        """A message id for a write on ``sid``: nine times in ten one it can act on, else one
        it cannot (so the errors are tested as well).

        It can act on a visible message; with ``history`` (redaction) on any message ever
        added; with ``edit`` on a visible message that is not redacted. The ones it cannot act
        on: the session's other messages (removed, cleared, redacted), other sessions'
        messages, and an id nobody holds.
        """
        added: list[str] = []
        usable: list[str] = []
        if self.model.exists(sid):
            added = [e.message_id for e in self.model.events(sid) if e.type == "message_added"]
            visible = self.model.get(sid).messages
            usable = added if history else [m.id for m in visible if not (edit and m.redacted)]
        if usable and data.draw(st.integers(0, 9), label="usable") > 0:
            return data.draw(st.sampled_from(usable), label="message id")
        others = [mid for mid in added if mid not in usable]
        others += [m.id for other in self.existing() if other != sid for m in self.model.get(other).messages]
        return data.draw(st.sampled_from([ABSENT_ID, *others]), label="absent id")

    def _expected(self, sid: str, choice: str) -> int | None:
        version = self.model.get(sid).version if self.model.exists(sid) else 1
        return {"none": None, "right": version, "behind": version - 1, "ahead": version + 1}[choice]

    # -- setup -----------------------------------------------------------------------------

    @initialize(data=st.data(), two=st.booleans())
    def open_journals(self, data: st.DataObject, two: bool) -> None:
        # Strategies are drawn from the instance, so a subclass's ``configs`` is used.
        self.journals.append(self.open_journal(data.draw(self.configs, label="config")))
        if two:  # some runs start with two Journals on the store
            self.journals.append(self.open_journal(data.draw(self.configs, label="second")))
        # Most runs start with a session holding a few messages, so that the writes acting on
        # a message have one to act on from the first step; one in four (and every shrunk
        # example) starts with an empty store, where even the root does not exist. Mirrored,
        # not ``call``-ed: they are not the rules' calls and stay out of the tally; the
        # invariants check them before the first rule.
        seeded = data.draw(st.integers(0, 3), label="seeded messages")
        if seeded:
            self._seed(data.draw(self.session_ids, label="seeded"), seeded)

    def _seed(self, sid: str, count: int) -> None:
        batch = [{"role": "user", "content": f"seed {i}"} for i in range(count)]
        self.journal().get_or_create(sid)
        self.mirror(sid, lambda now: self.model.get_or_create(sid, now=now))
        self.journal().add_messages(sid, batch)
        self.mirror(sid, lambda now: self.model.add_messages(sid, batch, now=now))

    # -- writes ----------------------------------------------------------------------------

    @rule(data=st.data(), actor=actors, which=_which, initial=st.none() | json_objects)
    def create(
        self, data: st.DataObject, actor: str | None, which: int, initial: dict[str, Any] | None
    ) -> None:
        sid = data.draw(self.session_ids, label="sid")
        self.call(which, "create", sid, settings=initial, actor=actor)

    @rule(actor=actors, which=_which)
    def create_with_random_id(self, actor: str | None, which: int) -> None:
        got = self.journal(which).create(actor=actor)
        assert_same_session(got, self.model.create(got.id, actor=actor, now=got.created_at))

    @rule(data=st.data(), actor=actors, which=_which, initial=st.none() | json_objects)
    def get_or_create(
        self, data: st.DataObject, actor: str | None, which: int, initial: dict[str, Any] | None
    ) -> None:
        sid = data.draw(self.session_ids, label="sid")
        self.call(which, "get_or_create", sid, settings=initial, actor=actor)

    @rule(
        data=st.data(),
        role=roles,
        content=texts,
        metadata=st.none() | json_objects,
        references=st.none() | st.lists(json_values, max_size=3),
        actor=actors,
        version=_versions,
        which=_which,
    )
    def add_message(
        self,
        data: st.DataObject,
        role: str,
        content: str,
        metadata: dict[str, Any] | None,
        references: list[Any] | None,
        actor: str | None,
        version: str,
        which: int,
    ) -> None:
        sid = self.target(data)
        expected = self._expected(sid, version)
        self.call(
            which,
            "add_message",
            sid,
            role,
            content,
            metadata=metadata,
            references=references,
            expected_version=expected,
            actor=actor,
        )

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), writes=st.lists(st.tuples(short_texts, _which), min_size=1, max_size=8))
    def add_messages(self, data: st.DataObject, writes: list[tuple[str, int]]) -> None:
        # Bursts through alternating Journals cross snapshot and pruning marks many times,
        # each Journal catching up with what the other wrote (and pruned) first.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        for content, which in writes:
            self.call(which, "add_message", sid, "user", content, actor=str(which))

    @rule(changes=json_objects, data=st.data(), actor=actors, version=_versions, which=_which)
    def update_settings(
        self, changes: dict[str, Any], data: st.DataObject, actor: str | None, version: str, which: int
    ) -> None:
        # Remove keys that exist, keys set in the same call and keys never set; about one call
        # in six has nothing to set or remove and must write nothing.
        sid = self.target(data)
        present = sorted(self.model.get(sid).settings) if self.model.exists(sid) else []
        remove = data.draw(st.lists(st.sampled_from([*present, *changes, "never-set"]) | keys, max_size=3))
        if data.draw(st.integers(0, 5), label="nothing") == 0:
            changes, remove = {}, []
        expected = self._expected(sid, version)
        self.call(
            which, "update_settings", sid, changes, remove=remove, expected_version=expected, actor=actor
        )

    @rule(data=st.data(), actor=actors, version=_versions, which=_which)
    def clear(self, data: st.DataObject, actor: str | None, version: str, which: int) -> None:
        sid = self.target(data)
        self.call(which, "clear", sid, expected_version=self._expected(sid, version), actor=actor)

    @precondition(_chatty)
    @rule(data=st.data(), role=roles, content=short_texts, actor=actors, version=_mostly_right, which=_which)
    def insert_message(
        self, data: st.DataObject, role: str, content: str, actor: str | None, version: str, which: int
    ) -> None:
        sid = self.chat(data)
        before = self.message_id(data, sid)
        expected = self._expected(sid, version)
        self.call(
            which, "add_message", sid, role, content, before=before, expected_version=expected, actor=actor
        )

    @rule(
        data=st.data(),
        contents=st.lists(short_texts, max_size=4),
        replace=st.booleans(),
        actor=actors,
        version=_mostly_right,
        which=_which,
    )
    def add_message_batch(
        self,
        data: st.DataObject,
        contents: list[str],
        replace: bool,
        actor: str | None,
        version: str,
        which: int,
    ) -> None:
        sid = self.chat(data)
        # Some are hidden (recorded in the history, removed from view in the same write): one
        # in three by content, so that the choice costs no draw of its own.
        batch = [
            {"role": "user" if i % 2 else "assistant", "content": c}
            | ({"hidden": True} if len(c) % 3 == 1 else {})
            for i, c in enumerate(contents)
        ]
        expected = self._expected(sid, version)
        self.call(which, "add_messages", sid, batch, replace=replace, expected_version=expected, actor=actor)

    @precondition(_chatty)
    @rule(data=st.data(), actor=actors, version=_mostly_right, which=_which)
    def pop_message(self, data: st.DataObject, actor: str | None, version: str, which: int) -> None:
        sid = self.chat(data)
        self.call(which, "pop_message", sid, expected_version=self._expected(sid, version), actor=actor)

    @precondition(_chatty)
    @rule(data=st.data(), actor=actors, version=_mostly_right, which=_which)
    def remove_message(self, data: st.DataObject, actor: str | None, version: str, which: int) -> None:
        sid = self.chat(data)
        mid = self.message_id(data, sid)
        self.call(
            which, "remove_message", sid, mid, expected_version=self._expected(sid, version), actor=actor
        )

    @precondition(_chatty)
    @rule(
        data=st.data(),
        content=texts,
        metadata=st.none() | json_objects,
        actor=actors,
        version=_mostly_right,
        which=_which,
    )
    def edit_message(
        self,
        data: st.DataObject,
        content: str,
        metadata: dict[str, Any] | None,
        actor: str | None,
        version: str,
        which: int,
    ) -> None:
        sid = self.chat(data)
        mid = self.message_id(data, sid, edit=True)
        expected = self._expected(sid, version)
        self.call(
            which,
            "edit_message",
            sid,
            mid,
            content,
            metadata=metadata,
            expected_version=expected,
            actor=actor,
        )

    @precondition(_chatty)
    @rule(data=st.data(), reason=_reasons, actor=actors, version=_mostly_right, which=_which)
    def redact_message(
        self, data: st.DataObject, reason: str, actor: str | None, version: str, which: int
    ) -> None:
        sid = self.chat(data, history=True)
        mid = self.message_id(data, sid, history=True)
        if data.draw(st.integers(0, 9), label="no reason") == 0:
            reason = ""  # refused before anything else is checked
        expected = self._expected(sid, version)
        self.call(which, "redact_message", sid, mid, reason=reason, expected_version=expected, actor=actor)

    @rule(data=st.data(), which=_which)
    def delete(self, data: st.DataObject, which: int) -> None:
        self.call(which, "delete", self.target(data))

    # -- compaction ------------------------------------------------------------------------

    @rule(data=st.data(), which=_which, prune=st.booleans())
    def compact_session(self, data: st.DataObject, which: int, prune: bool) -> None:
        # Compaction changes nothing observable (the invariants check that); it reports the
        # model's version and drops nothing without a retention policy.
        sid = self.target(data)
        journal = self.journal(which)
        if not self.model.exists(sid):
            try:
                journal.compact(sid, prune=prune)
            except SessionNotFoundError:
                return
            raise AssertionError(f"compact of the missing session {sid!r} did not raise")
        (result,) = journal.compact(sid, prune=prune)
        assert (result.session_id, result.seq, result.dropped) == (sid, self.model.get(sid).version, 0)
        assert prune or result.archived == 0
        self.after_compact(sid, prune, result)

    @rule(which=_which, prune=st.booleans())
    def compact_every_session(self, which: int, prune: bool) -> None:
        # progress(done, total, sid) is called once per session, after it, in result order.
        calls: list[tuple[int, int, str]] = []
        results = self.journal(which).compact(prune=prune, progress=lambda *call: calls.append(call))
        total = len(self.existing())
        assert [(done, count) for done, count, _ in calls] == [(i, total) for i in range(1, total + 1)]
        assert sorted(r.session_id for r in results) == sorted(self.existing())
        assert [r.session_id for r in results] == [sid for _, _, sid in calls]
        for r in results:
            assert (r.seq, r.dropped) == (self.model.get(r.session_id).version, 0)
            self.after_compact(r.session_id, prune, r)

    # -- reads -----------------------------------------------------------------------------

    @rule(data=st.data(), which=_which)
    def read_missing(self, data: st.DataObject, which: int) -> None:
        absent = uuid.uuid4().hex
        journal = self.journal(which)
        assert not journal.exists(absent)
        for read in (journal.get, journal.events, journal.replay, journal.head):
            try:
                read(absent)
            except SessionNotFoundError:
                continue
            raise AssertionError(f"{read.__name__} of a missing session did not raise")

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=_which)
    def replay_at_seq(self, data: st.DataObject, which: int) -> None:
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        at = data.draw(st.integers(1, self.model.get(sid).version + 2), label="at")
        journal = self.journal(which)
        version = self.model.get(sid).version
        if at > version:  # past the end: both name the version, neither answers for another seq
            outcome: object
            try:
                outcome = journal.replay(sid, at=at)
            except VersionNotFoundError as exc:
                outcome = (exc.requested, exc.version)
            assert outcome == (at, version), f"replay(at={at}) past version {version} gave {outcome!r}"
            with contextlib.suppress(VersionNotFoundError):
                self.model.replay(sid, at=at)
                raise AssertionError(f"the model replayed past version {version}")
            return
        got = journal.replay(sid, at=at)
        assert_same_session(got, self.model.replay(sid, at=at))
        assert [m.id for m in got.messages] == visible_ids(list(journal.events(sid)), at)

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=_which, nudge=st.sampled_from([-1, 0, 1]), hours=st.integers(-12, 14))
    def replay_at_time(self, data: st.DataObject, which: int, nudge: int, hours: int) -> None:
        # The model holds the journal's timestamps, so it knows exactly which events happened
        # at or before any moment; the moment's time zone must not matter.
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        journal = self.journal(which)
        event = data.draw(st.sampled_from(list(journal.events(sid))), label="event")
        moment = (event.at + timedelta(microseconds=nudge)).astimezone(timezone(timedelta(hours=hours)))
        try:
            want = self.model.replay(sid, at=moment)
        except SessionNotFoundError:
            assert_same_error(SessionNotFoundError(sid), lambda: journal.replay(sid, at=moment))
        else:
            assert_same_session(journal.replay(sid, at=moment), want)
        assert_same_session(journal.replay(sid, at=FAR_FUTURE), self.model.get(sid))

    @precondition(lambda self: bool(self.model.sessions()))
    @rule(data=st.data(), which=_which)
    def events_after(self, data: st.DataObject, which: int) -> None:
        sid = data.draw(st.sampled_from(self.existing()), label="sid")
        after = data.draw(st.integers(0, self.model.get(sid).version + 2), label="after")
        got = [event_facts(e) for e in self.journal(which).events(sid, after=after)]
        assert got == [event_facts(e) for e in self.model.events(sid, after=after)]

    # -- journals coming and going ---------------------------------------------------------

    @rule(data=st.data(), which=_which)
    def reopen(self, data: st.DataObject, which: int) -> None:
        # Everything lives in the store: a new Journal (with other options) sees what the old
        # one wrote; a closed one refuses every call.
        index = which % len(self.journals)
        old = self.journals[index]
        old.close()
        try:
            old.get("any")
        except JournalClosedError:
            pass
        else:
            raise AssertionError("a closed Journal answered")
        self.journals[index] = self.open_journal(data.draw(self.configs, label="config"))

    @precondition(lambda self: len(self.journals) == 1)
    @rule(data=st.data())
    def open_second(self, data: st.DataObject) -> None:
        self.journals.append(self.open_journal(data.draw(self.configs, label="config")))

    @precondition(lambda self: len(self.journals) == 2)
    @rule()
    def close_second(self) -> None:
        self.journals.pop().close()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def journals_match_model(self) -> None:
        # The model, for every session and every open Journal; for the generated parts (ids,
        # exact states), the Journal's own fresh replay and the other Journal. The model's
        # answers are computed once per session, for both Journals. ``replay(at=...)`` reads
        # only the store, never a Journal's cache, so its checks at several points run on the
        # first Journal only; every Journal's cached state, full replay and history are checked.
        expected_ids = set(self.model.sessions())
        for journal in self.journals:
            assert set(journal.sessions()) == expected_ids
        for sid in sorted(expected_ids):
            want = self.model.get(sid)
            want_facts = [event_facts(e) for e in self.model.events(sid)]
            for journal in self.journals:
                got = journal.get(sid)
                assert_same_session(got, want)
                assert got == journal.replay(sid), "a cached state differs from a fresh replay"
                events = list(journal.events(sid))
                assert [event_facts(e) for e in events] == want_facts
                assert [m.id for m in got.messages] == visible_ids(events)
                ids = [e.message_id for e in events if isinstance(e, MessageAdded)]
                assert len(set(ids)) == len(ids), "message ids must be unique within a session"
                times = [e.at for e in events]
                assert times == sorted(times), "event times must never go back within a session"
            for at in sorted({1, (want.version + 1) // 2, want.version - 1} - {0}):
                assert_same_session(self.journals[0].replay(sid, at=at), self.model.replay(sid, at=at))
        if len(self.journals) == 2:
            first, second = self.journals
            for sid in sorted(expected_ids):
                assert first.get(sid) == second.get(sid)

    @invariant()
    def verify_is_clean(self) -> None:
        if self.journals:
            report = self.journals[0].verify()
            assert report.ok, [str(p) for p in report.problems]
            assert {h.session_id for h in report.heads} == set(self.model.sessions())
