"""The public API's semantics, the same on every backend.

Every test runs once per backend (``store_url``). Oracles: the documented return values and
errors (with their attributes); a second Journal on the same store and ``replay`` (the cache
agrees with what is stored); and, for "bad input writes nothing", everything the backend holds
(files or table rows, via ``Stored.dump``) before and after the refused call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest

from journal import (
    Cleared,
    ConflictError,
    CorruptLogError,
    InvalidSessionIdError,
    InvalidValueError,
    Journal,
    JournalClosedError,
    LockTimeoutError,
    MessageAdded,
    MessageEdited,
    MessageNotFoundError,
    MessageRemoved,
    NewMessage,
    Session,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    VersionNotFoundError,
)
from tests.contract.stored import Stored, backend_of

SID = "s"


def contents(session: Session) -> list[str]:
    return [m.content for m in session.messages]


def start(journal: Journal, *texts: str) -> list[str]:
    """Create the session and add one message per text; returns their ids."""
    journal.create(SID)
    return [journal.add_message(SID, "user", text).id for text in texts]


def agrees_everywhere(journal: Journal, store_url: str, sid: str = SID) -> Session:
    """The cached state, a replay and a fresh Journal's state are one and the same."""
    state = journal.get(sid)
    assert state == journal.replay(sid)
    with Journal.from_url(store_url) as fresh:
        assert fresh.get(sid) == state
        assert list(fresh.events(sid)) == list(journal.events(sid))
    return state


# -- create, get, exists, get_or_create -----------------------------------------------------


def test_create_get_exists_and_get_or_create(journal: Journal, store_url: str) -> None:
    assert not journal.exists(SID)
    with pytest.raises(SessionNotFoundError) as info:
        journal.get(SID)
    assert isinstance(info.value, LookupError)
    assert info.value.session_id == SID
    session = journal.create(SID, actor="creator")
    assert (session.id, session.version, list(session.messages), dict(session.settings)) == (SID, 1, [], {})
    assert session.created_at == session.updated_at
    assert session.created_at.utcoffset() == timedelta(0)
    assert journal.exists(SID)
    assert journal.get(SID) == session
    assert journal.get_or_create(SID) == session  # exists: nothing written
    assert journal.get_or_create("other").version == 1
    assert [(e.type, e.actor) for e in journal.events(SID)] == [("created", "creator")]
    random_ids = {journal.create().id for _ in range(5)}
    assert len(random_ids) == 5
    assert set(journal.sessions()) == {SID, "other", *random_ids}
    agrees_everywhere(journal, store_url)


def test_create_twice_raises_session_exists_and_writes_nothing(journal: Journal, stored: Stored) -> None:
    start(journal, "hi")
    before = stored.dump()
    with pytest.raises(SessionExistsError) as info:
        journal.create(SID)
    assert isinstance(info.value, ConflictError)
    assert (info.value.session_id, info.value.expected, info.value.actual) == (SID, 0, 2)
    assert stored.dump() == before


def test_create_and_get_or_create_take_initial_settings(journal: Journal, store_url: str) -> None:
    session = journal.create(SID, settings={"model": "m1", "temperature": 0.2}, actor="app")
    assert (session.version, dict(session.settings)) == (2, {"model": "m1", "temperature": 0.2})
    events = list(journal.events(SID))
    assert [(e.type, e.seq, e.actor) for e in events] == [
        ("created", 1, "app"),
        ("settings_changed", 2, "app"),
    ]
    assert events[0].at == events[1].at  # written together, in one write
    assert journal.replay(SID, at=1).settings == {}
    # An existing session is returned as it is: the settings only apply to a creation.
    assert journal.get_or_create(SID, settings={"model": "other"}) == session
    created = journal.get_or_create("other", settings={"lang": "fr"})
    assert (created.version, dict(created.settings)) == (2, {"lang": "fr"})
    assert journal.create("empty", settings={}).version == 1  # nothing to set: one event
    agrees_everywhere(journal, store_url)


def test_create_with_bad_settings_writes_nothing(journal: Journal, stored: Stored) -> None:
    before = stored.dump()
    for bad in [{"x": float("nan")}, {1: "not a str key"}, ["not", "a mapping"], {"x": object()}]:
        with pytest.raises(InvalidValueError, match="settings"):
            journal.create(SID, settings=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="settings"):
            journal.get_or_create(SID, settings=bad)  # type: ignore[arg-type]
    assert not journal.exists(SID)
    assert stored.dump() == before


def test_sessions_lists_the_original_ids(journal: Journal, store_url: str) -> None:
    ids = [
        "plain",
        "With Spaces",
        "UPPER",
        "upper",
        "ünïcødé",
        "a/b",
        "../x",
        "日本語",
        "x" * 1024,
        "l\u2028\n",
    ]
    for sid in ids:
        journal.create(sid)
    assert sorted(journal.sessions()) == sorted(ids)
    with Journal.from_url(store_url) as fresh:
        assert sorted(fresh.sessions()) == sorted(ids)
        assert all(fresh.get(sid).id == sid for sid in ids)


# -- add_message, add_messages --------------------------------------------------------------


def test_add_message_stores_metadata_references_and_actor(journal: Journal, store_url: str) -> None:
    journal.create(SID)
    message = journal.add_message(
        SID,
        "user",
        "Hello \u2028 ü\n",
        metadata={"lang": "en", "n": [1, 2.5, None, True], "big": 2**64 - 1, "deep": {"a": {"b": []}}},
        references=[{"doc": "a.pdf"}, 3],
        actor="u7",
    )
    assert (message.seq, message.role, message.content, message.actor) == (
        2,
        "user",
        "Hello \u2028 ü\n",
        "u7",
    )
    assert message.metadata == {
        "lang": "en",
        "n": (1, 2.5, None, True),
        "big": 2**64 - 1,
        "deep": {"a": {"b": ()}},
    }
    assert message.references == ({"doc": "a.pdf"}, 3)
    state = agrees_everywhere(journal, store_url)
    assert state.version == 2
    assert state.messages[-1] == message
    assert state.updated_at == message.at


def test_add_message_before_inserts_in_place(journal: Journal, store_url: str, stored: Stored) -> None:
    a, _, c = start(journal, "a", "b", "c")
    first = journal.add_message(SID, "system", "first", before=a, actor="ops")
    middle = journal.add_message(SID, "user", "middle", before=c)
    assert (first.seq, middle.seq) == (5, 6)
    state = agrees_everywhere(journal, store_url)
    assert contents(state) == ["first", "a", "b", "middle", "c"]
    assert [(e.seq, e.before) for e in journal.events(SID) if isinstance(e, MessageAdded)][-2:] == [
        (5, a),
        (6, c),
    ]
    assert contents(journal.replay(SID, at=5)) == ["first", "a", "b", "c"]
    # Before a message that is not visible (here: removed): refused, nothing written.
    journal.remove_message(SID, a)
    before = stored.dump()
    with pytest.raises(MessageNotFoundError) as info:
        journal.add_message(SID, "user", "x", before=a)
    assert (info.value.session_id, info.value.message_id) == (SID, a)
    assert stored.dump() == before


def test_add_messages_writes_a_batch_and_replace_clears_first(
    journal: Journal, store_url: str, stored: Stored
) -> None:
    (a,) = start(journal, "a")
    journal.update_settings(SID, {"model": "m"})
    added = journal.add_messages(
        SID,
        [
            {"role": "user", "content": "m1", "metadata": {"n": 1}, "references": [{"doc": "d"}]},
            NewMessage(role="assistant", content="m2"),
        ],
        actor="batch",
    )
    assert [(m.seq, m.role, m.content, m.actor) for m in added] == [
        (4, "user", "m1", "batch"),
        (5, "assistant", "m2", "batch"),
    ]
    assert added[0].references == ({"doc": "d"},)
    assert len({m.id for m in added} | {a}) == 3
    replaced = journal.add_messages(SID, [NewMessage(role="user", content="new")], replace=True)
    state = agrees_everywhere(journal, store_url)
    assert state.messages == replaced
    assert replaced[0].seq == 7
    assert dict(state.settings) == {"model": "m"}
    assert [type(e) for e in journal.events(SID, after=5)] == [Cleared, MessageAdded]
    assert contents(journal.replay(SID, at=5)) == ["a", "m1", "m2"]  # the log keeps what replace hid
    before = stored.dump()
    assert journal.add_messages(SID, []) == ()  # nothing to add: nothing written
    assert stored.dump() == before


def test_a_hidden_message_is_recorded_and_never_shown(
    journal: Journal, store_url: str, stored: Stored
) -> None:
    (a,) = start(journal, "a")
    added = journal.add_messages(
        SID,
        [
            NewMessage(role="note", content="kept aside", metadata={"k": 1}, hidden=True),
            {"role": "user", "content": "shown"},
            {"role": "note", "content": "also aside", "hidden": True},
        ],
        actor="app",
    )
    assert [(m.seq, m.role, m.content, m.actor) for m in added] == [
        (3, "note", "kept aside", "app"),
        (5, "user", "shown", "app"),
        (6, "note", "also aside", "app"),
    ]
    assert dict(added[0].metadata) == {"k": 1}
    state = agrees_everywhere(journal, store_url)
    assert contents(state) == ["a", "shown"]
    assert state.version == 7
    assert state.messages[1] == added[1]
    events = list(journal.events(SID, after=2))
    assert [(type(e), e.seq) for e in events] == [
        (MessageAdded, 3),
        (MessageRemoved, 4),
        (MessageAdded, 5),
        (MessageAdded, 6),
        (MessageRemoved, 7),
    ]
    assert len({e.at for e in events}) == 1  # one write
    assert [e.message_id for e in events if isinstance(e, MessageRemoved)] == [added[0].id, added[2].id]
    assert contents(journal.replay(SID, at=3)) == ["a", "kept aside"]  # the history holds it
    # With replace, the batch follows a cleared event; hidden messages are counted the same way.
    replaced = journal.add_messages(
        SID,
        [NewMessage(role="note", content="x", hidden=True), NewMessage(role="user", content="y")],
        replace=True,
    )
    assert [m.seq for m in replaced] == [9, 11]
    assert contents(journal.get(SID)) == ["y"]
    before = stored.dump()
    with pytest.raises(InvalidValueError, match=r"messages\[0\]\.hidden"):
        journal.add_messages(SID, [{"role": "note", "content": "x", "hidden": "yes"}])
    assert stored.dump() == before
    assert a not in [m.id for m in journal.get(SID).messages]


# -- update_settings, clear, pop, remove, edit ----------------------------------------------


def test_update_settings_sets_and_removes_and_an_empty_change_writes_nothing(
    journal: Journal, store_url: str, stored: Stored
) -> None:
    journal.create(SID)
    journal.update_settings(SID, {"model": "a", "temperature": 0.5})
    session = journal.update_settings(SID, {"model": "b"}, remove=["temperature", "absent"], actor="admin")
    assert dict(session.settings) == {"model": "b"}
    assert session.version == 3
    last = list(journal.events(SID))[-1]
    assert (last.type, last.actor) == ("settings_changed", "admin")
    before = stored.dump()
    assert journal.update_settings(SID) == session
    assert journal.update_settings(SID, {}, remove=()) == session
    assert stored.dump() == before
    agrees_everywhere(journal, store_url)


def test_clear_hides_messages_and_the_history_keeps_them(journal: Journal, store_url: str) -> None:
    start(journal, "one", "two")
    journal.update_settings(SID, {"model": "m"})
    session = journal.clear(SID, actor="u1")
    assert (contents(session), dict(session.settings), session.version) == ([], {"model": "m"}, 5)
    assert [e.content for e in journal.events(SID) if isinstance(e, MessageAdded)] == ["one", "two"]
    assert journal.add_message(SID, "user", "three").seq == 6
    assert contents(agrees_everywhere(journal, store_url)) == ["three"]


def test_pop_remove_and_edit_change_the_view_and_the_log_keeps_the_originals(
    journal: Journal, store_url: str, stored: Stored
) -> None:
    a, b, c, d = start(journal, "a", "b", "c", "d")
    popped = journal.pop_message(SID, actor="undo")
    assert (popped.id, popped.content) == (d, "d")
    removed = journal.remove_message(SID, b)
    assert (removed.id, removed.content) == (b, "b")
    edited = journal.edit_message(SID, c, "c fixed", metadata={"fixed": True})
    original = journal.get(SID).messages
    assert (edited.id, edited.seq, edited.content, dict(edited.metadata)) == (
        c,
        4,
        "c fixed",
        {"fixed": True},
    )
    assert edited.edited_at is not None
    state = agrees_everywhere(journal, store_url)
    assert contents(state) == ["a", "c fixed"]
    assert state.messages == original
    events = list(journal.events(SID))
    assert [type(e) for e in events[-3:]] == [MessageRemoved, MessageRemoved, MessageEdited]
    assert contents(journal.replay(SID, at=5)) == ["a", "b", "c", "d"]
    # Nothing visible to act on: MessageNotFoundError, nothing written.
    before = stored.dump()
    acts: list[Callable[[], object]] = [
        lambda: journal.remove_message(SID, b),
        lambda: journal.edit_message(SID, d, "x"),
        lambda: journal.remove_message(SID, "no-such-id"),
    ]
    for act in acts:
        with pytest.raises(MessageNotFoundError):
            act()
    assert stored.dump() == before
    journal.create("empty")
    before = stored.dump()
    with pytest.raises(MessageNotFoundError) as info:
        journal.pop_message("empty")
    assert info.value.message_id is None
    assert stored.dump() == before
    assert a in [m.id for m in journal.get(SID).messages]


# -- refusals write nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content": 42}, "content"),
        ({"content": "\ud800"}, "content"),
        ({"role": ""}, "role"),
        ({"metadata": {"x": float("nan")}}, "metadata['x']"),
        ({"metadata": {1: "int key"}}, "metadata"),
        ({"metadata": {"x": 2**64}}, "metadata['x']"),
        ({"references": "a string"}, "references"),
        ({"actor": 5}, "actor"),
        ({"before": ""}, "before"),
    ],
)
def test_values_that_cannot_be_stored_raise_before_writing(
    journal: Journal, stored: Stored, kwargs: dict[str, Any], field: str
) -> None:
    journal.create(SID)
    before = stored.dump()
    args: dict[str, Any] = {"role": "user", "content": "ok", **kwargs}
    with pytest.raises(InvalidValueError) as info:
        journal.add_message(SID, args.pop("role"), args.pop("content"), **args)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert stored.dump() == before
    assert journal.get(SID).version == 1


class Role(str, Enum):
    USER = "user"
    ASSISTANT = "assistant"


class Level(int, Enum):
    HIGH = 3


def test_str_and_int_enums_are_stored_as_their_values_everywhere(journal: Journal, store_url: str) -> None:
    # Oracle: json.dumps of the same values. ``str()`` of a str enum is "Role.USER"; storing that
    # would change the caller's data. Every place a caller's text enters the log is covered.
    sid = Role.ASSISTANT  # a session id too
    journal.create(sid, actor=Role.USER)
    journal.update_settings(sid, {Role.USER: Role.ASSISTANT, "level": Level.HIGH}, remove=[Role.ASSISTANT])
    message = journal.add_message(
        sid,
        Role.USER,
        Role.ASSISTANT,
        metadata={Role.USER: [Role.ASSISTANT, Level.HIGH]},
        references=[Role.USER],
        actor=Role.ASSISTANT,
    )
    journal.edit_message(sid, message.id, Role.USER, metadata={"k": Role.USER}, actor=Role.USER)
    expected = json.loads(json.dumps({Role.USER: [Role.ASSISTANT, Level.HIGH]}))
    for state in (journal.get("assistant"), agrees_everywhere(journal, store_url, "assistant")):
        assert state.id == "assistant"
        assert type(state.id) is str
        assert dict(state.settings) == {"user": "assistant", "level": 3}
        [stored] = state.messages
        assert (stored.role, stored.content, stored.actor) == ("user", "user", "assistant")
        assert type(stored.role) is str
        assert type(stored.content) is str
        assert {k: list(v) for k, v in message.metadata.items()} == expected
        assert dict(stored.metadata) == {"k": "user"}
        assert message.references == ("user",)
    assert [e.actor for e in journal.events("assistant")] == ["user", None, "assistant", "user"]
    assert list(journal.sessions()) == ["assistant"]


def every_write(sid: str, message_id: str) -> dict[str, Callable[[Journal, int | None], object]]:
    """Each write of the API on ``sid``, taking an ``expected_version``."""
    return {
        "add_message": lambda j, v: j.add_message(sid, "user", "x", expected_version=v),
        "add_messages": lambda j, v: j.add_messages(
            sid, [{"role": "user", "content": "x"}], expected_version=v
        ),
        "update_settings": lambda j, v: j.update_settings(sid, {"k": 1}, expected_version=v),
        "clear": lambda j, v: j.clear(sid, expected_version=v),
        "pop_message": lambda j, v: j.pop_message(sid, expected_version=v),
        "remove_message": lambda j, v: j.remove_message(sid, message_id, expected_version=v),
        "edit_message": lambda j, v: j.edit_message(sid, message_id, "y", expected_version=v),
        "redact_message": lambda j, v: j.redact_message(sid, message_id, reason="r", expected_version=v),
    }


def test_every_write_checks_expected_version_and_a_conflict_writes_nothing(
    journal: Journal, stored: Stored
) -> None:
    (a,) = start(journal, "a")
    for name, write in every_write(SID, a).items():
        before = stored.dump()
        version = journal.get(SID).version
        for wrong in (version - 1, version + 1):
            with pytest.raises(ConflictError) as info:
                write(journal, wrong)
            assert type(info.value) is ConflictError, name
            assert (info.value.session_id, info.value.expected, info.value.actual) == (SID, wrong, version)
        assert stored.dump() == before, name
    with pytest.raises(InvalidValueError, match="expected_version"):
        journal.add_message(SID, "user", "b", expected_version="2")  # type: ignore[arg-type]
    # The right version writes (each write above was refused, so the version never moved).
    assert journal.add_message(SID, "user", "b", expected_version=2).seq == 3


def test_every_write_to_a_missing_session_raises_and_writes_nothing(journal: Journal, stored: Stored) -> None:
    journal.create("other")
    before = stored.dump()
    for name, write in every_write("missing", "m").items():
        with pytest.raises(SessionNotFoundError) as info:
            write(journal, None)
        assert info.value.session_id == "missing", name
    with pytest.raises(SessionNotFoundError):
        journal.delete("missing")
    assert stored.dump() == before
    assert not journal.exists("missing")


def test_invalid_session_ids_are_refused_everywhere(journal: Journal, stored: Stored) -> None:
    for bad in ["", "a\x00b", "\ud800", "x" * 1025]:
        for call in (journal.create, journal.get, journal.exists, journal.delete, journal.events):
            with pytest.raises(InvalidSessionIdError) as info:
                call(bad)
            assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidSessionIdError):
        journal.add_message(7, "user", "x")  # type: ignore[arg-type]
    assert stored.dump() == {}


# -- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_session_and_a_cached_journal_never_shows_the_old_one(
    store_url: str, stored: Stored
) -> None:
    with Journal.from_url(store_url) as a, Journal.from_url(store_url) as b:
        a.create(SID)
        a.add_message(SID, "user", "old secret")
        a.add_message(SID, "user", "old secret 2")
        a.create("keep")
        assert b.get(SID).version == 3  # b caches the first incarnation
        a.delete(SID)
        assert not b.exists(SID)
        assert stored.holders("old secret") == set()
        with pytest.raises(SessionNotFoundError):
            b.add_message(SID, "user", "after delete")
        with pytest.raises(SessionNotFoundError):
            a.delete(SID)
        assert list(b.sessions()) == ["keep"]
        # A new incarnation with as many events: b must read it, never its cached state.
        a.create(SID)
        a.add_message(SID, "user", "the new life")
        a.add_message(SID, "user", "the new life 2")
        assert contents(b.get(SID)) == ["the new life", "the new life 2"]
        assert [e.seq for e in b.events(SID)] == [1, 2, 3]
        # b's writes go into the new incarnation, after its last event.
        assert b.add_message(SID, "user", "from b").seq == 4
        assert contents(a.get(SID)) == ["the new life", "the new life 2", "from b"]


# -- events, replay ------------------------------------------------------------------------


def test_events_after_and_its_errors(journal: Journal) -> None:
    journal.create(SID, actor="creator")
    for n in range(5):
        journal.add_message(SID, "user", str(n))
    journal.update_settings(SID, {"a": 1})
    journal.clear(SID)
    events = list(journal.events(SID))
    assert [e.seq for e in events] == list(range(1, 9))
    assert [e.type for e in events][-2:] == ["settings_changed", "cleared"]
    assert all(e.at.utcoffset() == timedelta(0) for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert [e.seq for e in journal.events(SID, after=5)] == [6, 7, 8]
    assert list(journal.events(SID, after=8)) == []
    with pytest.raises(SessionNotFoundError):
        journal.events("missing")  # raised by the call, before iterating
    for bad in (-1, True, "3"):
        with pytest.raises(InvalidValueError, match="after"):
            journal.events(SID, after=bad)  # type: ignore[arg-type]


def test_events_after_what_a_journal_read_or_wrote_reads_only_the_lines_after_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Oracle: a fresh Journal reading every event from the start. The reader below must give
    # the same events after any point, and, for points at or past what it last read or wrote
    # (a tail, a catch-up), never read the history from its start.
    counting: list[bool] = [False]

    def whole(after: int) -> list[Any]:
        counting[0] = False  # the oracle's own reads from the start are not the reader's
        try:
            with Journal.from_url(store_url) as fresh:
                return [e for e in fresh.events(SID) if e.seq > after]
        finally:
            counting[0] = True

    with Journal.from_url(store_url) as writer, Journal.from_url(store_url) as reader:
        writer.create(SID)
        for n in range(20):
            writer.add_message(SID, "user", f"m{n}")
        assert list(reader.events(SID)) == whole(0)
        source = type(reader.storage.reader(SID))
        from_start: list[int] = []
        history = source.history

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if counting[0]:
                from_start.append(1)
            return history(self, *args, **kwargs)

        monkeypatch.setattr(source, "history", counted)
        counting[0] = True
        assert list(reader.events(SID, after=21)) == []
        assert list(reader.events(SID, after=99)) == []
        for n in range(3):  # another process appends; the reader catches up
            writer.add_message(SID, "assistant", f"late {n}")
        assert list(reader.events(SID, after=21)) == whole(21)
        assert [e.seq for e in whole(21)] == [22, 23, 24]
        assert list(reader.events(SID, after=23)) == whole(23)
        secret = reader.add_message(SID, "user", "written here")  # the reader's own write
        assert list(reader.events(SID, after=24)) == whole(24)
        assert [e.seq for e in reader.events(SID, after=24)] == [25]
        writer.edit_message(SID, secret.id, "edited there")
        assert list(reader.events(SID, after=25)) == whole(25)
        # Several callers at their own pace (a tail, a page, a saver): each asks after the
        # head it last saw, some heads back.
        for n in range(3):
            writer.add_message(SID, "assistant", f"again {n}")
            reader.get(SID)
        assert list(reader.events(SID, after=26)) == whole(26)
        assert list(reader.events(SID, after=28)) == whole(28)
        # Read when iterated, as a stream: what was stored by then is there.
        pending = reader.events(SID, after=29)
        writer.add_message(SID, "user", "after the call")
        assert [e.seq for e in pending] == [30]
        assert from_start == []
        # Erased words never come back from an earlier read: every event is read from storage.
        writer.redact_message(SID, secret.id, reason="request")
        assert list(reader.events(SID, after=30)) == whole(30)
        assert list(reader.events(SID, after=20)) == whole(20)  # before what it read: from the start
        assert from_start != []
        assert all("written here" not in str(e.to_dict()) for e in reader.events(SID))
        # Deleted and created again: the reader's heads belong to a log that is gone.
        writer.delete(SID)
        writer.create(SID)
        writer.add_message(SID, "user", "a new life")
        assert [e.seq for e in reader.events(SID, after=1)] == [2]
        assert list(reader.events(SID, after=1)) == whole(1)
        assert list(reader.events(SID)) == whole(0)


@pytest.mark.parametrize("where", ["the point read on from", "a line after it"])
def test_a_catch_up_over_a_damaged_line_raises_it_with_its_place(
    store_url: str, stored: Stored, where: str
) -> None:
    # Oracle: the events as written, and a fresh Journal's error. A reader that read up to
    # seq 6, then up to 9, asks for what follows 6 after the content of a line was damaged.
    # The line at 6 itself is not part of the answer, and the lines after it chain on from
    # its hash, which the reader checked when it read it: they are given as written. A
    # damaged line after 6 is raised with its place, as a read from the start raises it.
    with (
        Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as writer,
        Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as reader,
    ):
        writer.create(SID)
        for n in range(5):
            writer.add_message(SID, "user", f"hello {n}")
        assert reader.get(SID).version == 6
        for n in range(3):
            writer.add_message(SID, "user", f"later {n}")
        assert reader.get(SID).version == 9
        written = list(writer.events(SID, after=6))
        damaged = b"hello 4" if where == "the point read on from" else b"later 1"
        stored.tamper(SID, damaged, damaged.upper())
        with Journal.from_url(store_url) as fresh, pytest.raises(CorruptLogError) as whole:
            list(fresh.events(SID))
        assert whole.value.line == (6 if where == "the point read on from" else 8)
        if where == "the point read on from":
            assert list(reader.events(SID, after=6)) == written
        else:
            with pytest.raises(CorruptLogError) as caught:
                list(reader.events(SID, after=6))
            assert str(caught.value) == str(whole.value)


def test_the_newest_event_after_a_whole_read_is_read_on_its_own(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Oracle: the last event of the history streamed from the start. What a session list
    # asks of each session (its newest event) reads one line after a cold load, not all.
    with Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as writer:
        writer.create(SID)
        for n in range(30):
            writer.add_message(SID, "user", f"m{n}")
        newest = list(writer.events(SID))[-1]
    with Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as cold:
        version = cold.get(SID).version  # a whole read: no snapshot
        source = type(cold.storage.reader(SID))
        from_start: list[int] = []
        history = source.history

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            from_start.append(1)
            return history(self, *args, **kwargs)

        monkeypatch.setattr(source, "history", counted)
        assert list(cold.events(SID, after=version - 1)) == [newest]
        assert from_start == []


def test_replay_at_a_seq_and_at_a_time(journal: Journal) -> None:
    journal.create(SID)
    journal.add_message(SID, "user", "one")
    middle = journal.get(SID)
    journal.update_settings(SID, {"k": "v"})
    journal.add_message(SID, "user", "two")
    assert journal.replay(SID, at=2) == middle
    assert journal.replay(SID, at=middle.updated_at) == middle
    assert journal.replay(SID, at=middle.updated_at.astimezone(timezone(timedelta(hours=5)))) == middle
    assert journal.replay(SID, at=middle.updated_at + timedelta(microseconds=1)).version == 2
    assert journal.replay(SID, at=middle.updated_at - timedelta(microseconds=1)).version <= 1
    assert journal.replay(SID) == journal.get(SID)
    assert journal.replay(SID, at=4).version == 4
    # A seq past the end answers no other question: an error naming the session's version.
    with pytest.raises(VersionNotFoundError) as info:
        journal.replay(SID, at=5)
    assert isinstance(info.value, LookupError)
    assert (info.value.session_id, info.value.requested, info.value.version) == (SID, 5, 4)
    assert "version 4" in str(info.value)
    assert journal.replay(SID, at=datetime.now(timezone.utc) + timedelta(days=1)).version == 4
    with pytest.raises(SessionNotFoundError, match="did not exist yet"):
        journal.replay(SID, at=0)
    with pytest.raises(SessionNotFoundError, match="did not exist yet"):
        journal.replay(SID, at=datetime(2000, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InvalidValueError, match="aware"):
        journal.replay(SID, at=datetime(2030, 1, 1))
    for bad in (True, -1, "3"):
        with pytest.raises(InvalidValueError, match="seq"):
            journal.replay(SID, at=bad)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFoundError):
        journal.replay("missing")


# -- the Journal object itself --------------------------------------------------------------


def test_a_closed_journal_refuses_every_call(store_url: str) -> None:
    journal = Journal.from_url(store_url)
    journal.create(SID)
    journal.close()
    journal.close()  # twice is harmless
    for call in (
        lambda: journal.get(SID),
        lambda: journal.add_message(SID, "user", "x"),
        journal.sessions,
        journal.verify,
    ):
        with pytest.raises(JournalClosedError):
            call()
    with Journal.from_url(store_url) as fresh:
        assert fresh.get(SID).version == 1


def test_a_writer_waiting_past_lock_timeout_raises_and_writes_nothing(store_url: str, stored: Stored) -> None:
    # Another Journal holds the session's writer lock (through the storage seam every backend
    # implements: the one a write, compact or verify takes); the waiting write gives up after
    # lock_timeout with LockTimeoutError, and once the lock is free it writes.
    with Journal.from_url(store_url) as holder, Journal.from_url(store_url, lock_timeout=0.2) as waiter:
        holder.create(SID)
        before = stored.dump()
        with holder._storage.writer(SID):
            with pytest.raises(LockTimeoutError) as info:
                waiter.add_message(SID, "user", "x")
            assert isinstance(info.value, TimeoutError)
            assert info.value.timeout == 0.2
        assert stored.dump() == before
        assert waiter.add_message(SID, "user", "x").seq == 2


def test_lock_timeout_zero_fails_at_once_while_another_writer_holds_the_lock(
    request: pytest.FixtureRequest, store_url: str
) -> None:
    # lock_timeout=0 means "do not wait". The holder keeps the lock for up to HOLD seconds
    # (only so that a waiter that does wait still ends); the write must have raised
    # LockTimeoutError while the lock was held, not succeed after it was released.
    hold = 2.0
    outcome: list[object] = []
    with Journal.from_url(store_url) as holder, Journal.from_url(store_url, lock_timeout=0) as waiter:
        holder.create(SID)

        def write() -> None:
            try:
                outcome.append(waiter.add_message(SID, "user", "x"))
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=write, daemon=True)
        with holder._storage.writer(SID):
            thread.start()
            thread.join(hold)
            while_held = list(outcome)
        thread.join(60)
        assert len(while_held) == 1, f"still waiting after {hold} s with lock_timeout=0 (then: {outcome})"
        assert isinstance(while_held[0], LockTimeoutError)
        assert holder.get(SID).version == 1


def unreachable(store_url: str) -> str:
    """A store of the same backend that cannot be written: no server, or a root under a file."""
    if store_url.startswith("postgresql://"):
        return "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2"
    blocker = store_url + "-file"
    with open(blocker, "wb"):
        pass
    return blocker + "/journal"


def test_an_unreachable_store_raises_storage_error(store_url: str) -> None:
    if backend_of(store_url) == "memory":
        pytest.skip("a memory store is in the process: nothing can make it unreachable")
    with Journal.from_url(unreachable(store_url)) as journal:
        with pytest.raises(StorageError) as info:
            journal.create(SID)
        assert isinstance(info.value, OSError)
        assert info.value.operation


def test_from_url_refuses_unknown_schemes(store_url: str) -> None:
    with pytest.raises(ValueError, match="no backend"):
        Journal.from_url("mysql://somewhere/db")
    with Journal.from_url(store_url) as journal:
        assert journal.backend == backend_of(store_url)
