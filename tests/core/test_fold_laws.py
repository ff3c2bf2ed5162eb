"""Laws of the pure fold ``journal.state.apply`` / ``replay``.

The oracle throughout is ``naive``: a plain-Python fold of the same events into nested tuples,
lists and dicts, written from the event semantics (message added: appended; settings changed:
set, then remove; cleared: no messages, settings kept). It shares no code or storage with
``journal.state``, so structural sharing bugs in ``Messages`` (states extended in place) show up
as a difference with it. States are always compared by value through ``snapshot``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journal import Journal
from journal.core.events import Cleared, Created, Event, MessageAdded, SettingsChanged, freeze
from journal.core.state import Message, Session, apply, replay
from journal.testing import canon, plain
from journal.testing.strategies import actors, json_objects, json_values, keys, short_texts

# -- strategies: valid histories -------------------------------------------------------------

utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)
kinds = st.sampled_from(["message", "message", "settings", "cleared"])


@st.composite
def next_event(draw: st.DrawFn, seq: int, after: datetime) -> Event:
    """Any valid non-created event with ``seq``, at or after ``after``."""
    at = after + draw(st.timedeltas(timedelta(0), timedelta(seconds=5)))
    actor = draw(actors)
    kind = draw(kinds)
    if kind == "message":
        return MessageAdded(
            seq=seq,
            at=at,
            actor=actor,
            message_id=f"m{seq}-{draw(st.integers(0, 9))}",
            role=draw(short_texts.filter(bool)),
            content=draw(short_texts),
            metadata=freeze(draw(json_objects)),
            references=freeze(draw(st.lists(json_values, max_size=2))),
        )
    if kind == "settings":
        # Remove keys that may exist (short keys collide often) and keys being set right now.
        changes = draw(st.dictionaries(st.sampled_from("abc") | keys, json_values, max_size=3))
        removed = draw(st.lists(st.sampled_from(["a", "b", "c", *changes]), max_size=3))
        return SettingsChanged(seq=seq, at=at, actor=actor, changes=freeze(changes), removed=tuple(removed))
    return Cleared(seq=seq, at=at, actor=actor)


@st.composite
def histories(draw: st.DrawFn, max_events: int = 12) -> list[Event]:
    """A valid history: ``created`` at seq 1, then contiguous seqs and non-decreasing times
    (the fold rejects an event dated before the one it follows)."""
    at = draw(utc_times)
    history: list[Event] = [Created(seq=1, at=at, actor=draw(actors), session_id=draw(st.text(min_size=1)))]
    for seq in range(2, draw(st.integers(0, max_events)) + 2):
        history.append(draw(next_event(seq, history[-1].at)))
    return history


# -- the oracle and by-value comparison ------------------------------------------------------


def naive(events: list[Event]) -> tuple[Any, ...]:
    """The expected ``snapshot`` of ``replay(events)``, by a plain fold (see module docstring)."""
    first = events[0]
    assert isinstance(first, Created)
    messages: list[tuple[Any, ...]] = []
    settings: dict[str, Any] = {}
    for event in events[1:]:
        if isinstance(event, MessageAdded):
            messages.append(
                (
                    event.message_id,
                    event.seq,
                    event.role,
                    event.content,
                    event.at,
                    canon(event.metadata),
                    canon(event.references),
                    event.actor,
                )
            )
        elif isinstance(event, SettingsChanged):
            settings.update(canon(event.changes))
            for key in event.removed:
                settings.pop(key, None)
        elif isinstance(event, Cleared):
            messages = []
    return (first.session_id, first.at, events[-1].at, events[-1].seq, messages, settings)


def message_snapshot(m: Message) -> tuple[Any, ...]:
    return (m.id, m.seq, m.role, m.content, m.at, canon(m.metadata), canon(m.references), m.actor)


def snapshot(session: Session) -> tuple[Any, ...]:
    """A session by value, in plain data; also checks that every way of reading the messages
    (iteration, indexing from either end, slicing) sees the same list."""
    messages = session.messages
    listed = list(messages)
    assert len(listed) == len(messages)
    assert [messages[i] for i in range(len(messages))] == listed
    assert [messages[i - len(messages)] for i in range(len(messages))] == listed
    assert list(messages[:]) == listed
    for bad in (len(messages), -len(messages) - 1):
        with pytest.raises(IndexError):
            messages[bad]
    return (
        session.id,
        session.created_at,
        session.updated_at,
        session.version,
        [message_snapshot(m) for m in listed],
        canon(session.settings),
    )


def event_snapshot(event: Event) -> Any:
    return (type(event).__name__, canon(msgspec.structs.asdict(event)))


def fold_all(history: list[Event]) -> list[Session]:
    """Every intermediate state: states[i] is the session after history[i]."""
    states: list[Session] = []
    state: Session | None = None
    for event in history:
        state = apply(state, event)
        states.append(state)
    return states


# -- laws --------------------------------------------------------------------------------------


@given(history=histories(), data=st.data())
def test_replay_of_a_concatenation_continues_from_the_first_part(
    history: list[Event], data: st.DataObject
) -> None:
    # Oracle: the law replay(a + b) == replay(b, replay(a)) for every split point, both sides
    # also equal to the naive fold of the whole history.
    cut = data.draw(st.integers(0, len(history)), label="cut")
    first, rest = history[:cut], history[cut:]
    whole = replay(history)
    assert whole is not None
    resumed = replay(rest, replay(first))
    assert resumed is not None
    assert snapshot(whole) == snapshot(resumed) == naive(history)
    assert whole == resumed
    assert replay([]) is None
    assert replay([], whole) is whole


@given(history=histories())
def test_apply_never_changes_its_inputs(history: list[Event]) -> None:
    # Oracle: snapshots taken before each apply; the state and the event passed in must read
    # exactly the same afterwards, and the result must be a new object.
    state: Session | None = None
    for event in history:
        before = None if state is None else snapshot(state)
        event_before = event_snapshot(event)
        result = apply(state, event)
        assert result is not state
        if state is not None:
            assert snapshot(state) == before
        assert event_snapshot(event) == event_before
        state = result


@given(history=histories(), data=st.data())
def test_old_states_stay_valid_after_appends_and_branches(history: list[Event], data: st.DataObject) -> None:
    # Oracle: naive(prefix) for every state ever returned. The fold extends one shared list in
    # place while states stay linear; extending an older (or the same) state twice must copy,
    # leaving every earlier result untouched.
    states = fold_all(history)
    for i, state in enumerate(states):
        assert snapshot(state) == naive(history[: i + 1])

    # Branch twice from one state (possibly the newest one), then grow each branch a bit.
    base = data.draw(st.integers(0, len(states) - 1), label="branch point")
    prefix = history[: base + 1]
    seq, at = prefix[-1].seq + 1, prefix[-1].at
    first_event = data.draw(next_event(seq, at), label="first branch")
    second_event = data.draw(next_event(seq, at), label="second branch")
    first = apply(states[base], first_event)
    first_snapshot = snapshot(first)
    second = apply(states[base], second_event)
    assert first_snapshot == snapshot(first) == naive([*prefix, first_event])
    assert snapshot(second) == naive([*prefix, second_event])

    branches = [
        [
            *prefix,
            first_event,
        ],
        [*prefix, second_event],
    ]
    tips = [first, second]
    for step in range(data.draw(st.integers(0, 4), label="growth")):
        which = step % 2
        event = data.draw(next_event(branches[which][-1].seq + 1, branches[which][-1].at), label="grow")
        tips[which] = apply(tips[which], event)
        branches[which].append(event)
        for tip, branch in zip(tips, branches, strict=True):
            assert snapshot(tip) == naive(branch)
    assert snapshot(first) == first_snapshot
    for i, state in enumerate(states):
        assert snapshot(state) == naive(history[: i + 1])


# -- immutability ------------------------------------------------------------------------------


def assert_deeply_frozen(value: Any) -> None:
    """JSON values inside a state: read-only mappings and tuples all the way down."""
    if isinstance(value, Mapping):
        assert type(value) is not dict, "a mutable dict inside a state"
        before = dict(value)
        changes: list[Callable[[Any], object]] = [
            lambda m: m.__setitem__("new key", 1),
            lambda m: m.update({"new key": 1}),
            lambda m: m.setdefault("new key", 1),
            lambda m: m.pop(next(iter(m), "new key")),
            lambda m: m.popitem(),
            lambda m: m.clear(),
            lambda m: m.__delitem__(next(iter(m), "new key")),
            lambda m: m.__ior__({"new key": 1}),
        ]
        for change in changes:
            with pytest.raises(TypeError):
                change(value)
        assert dict(value) == before
        for item in value.values():
            assert_deeply_frozen(item)
    else:
        assert not isinstance(value, (list, dict, set, bytearray)), f"mutable {type(value).__name__}"
        if isinstance(value, tuple):
            for item in value:
                assert_deeply_frozen(item)


def assert_immutable(session: Session) -> None:
    """Every public part of a session refuses assignment, item assignment and deletion."""
    with pytest.raises(AttributeError):
        session.version = 99  # type: ignore[misc]
    with pytest.raises(AttributeError):
        session.messages = session.messages  # type: ignore[misc]
    with pytest.raises(TypeError):
        session.settings["k"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        del session.settings["k"]  # type: ignore[attr-defined]
    assert_deeply_frozen(session.settings)
    assert not hasattr(session.messages, "append")
    if session.messages:
        with pytest.raises(TypeError):
            session.messages[0] = session.messages[0]  # type: ignore[index]
        with pytest.raises(TypeError):
            del session.messages[0]  # type: ignore[attr-defined]
    for message in session.messages:
        with pytest.raises(AttributeError):
            message.content = "changed"  # type: ignore[misc]
        with pytest.raises(TypeError):
            message.metadata["k"] = 1  # type: ignore[index]
        assert_deeply_frozen(message.metadata)
        assert isinstance(message.references, tuple)
        assert_deeply_frozen(message.references)


@given(history=histories())
def test_every_state_of_the_fold_is_immutable(history: list[Event]) -> None:
    # Oracle: the immutability contract of Session and Message (frozen structs, read-only
    # mappings, tuples), checked on every intermediate state, which must also read the same
    # after all those attempted changes.
    for state in fold_all(history):
        before = snapshot(state)
        assert_immutable(state)
        assert snapshot(state) == before


def test_journal_states_are_immutable_and_never_alias_caller_values(tmp_path: Path) -> None:
    # Oracle: the values as they were passed in (copied with plain() first). The caller keeps
    # its dicts and lists and may change them; the journal's states, from the write, from the
    # cache and from a fresh read of the files, must not change with them and cannot be changed.
    metadata: dict[str, Any] = {"nested": {"list": [1, {"deep": True}]}, "n": 1.5}
    references: list[Any] = [{"doc": "a"}, ["b", None]]
    settings: dict[str, Any] = {"model": {"name": "x", "params": [0.1, 2]}}
    expected = (plain(metadata), plain(references), plain(settings))
    with Journal(tmp_path / "j") as journal:
        journal.create("s")
        returned = journal.add_message("s", "user", "hi", metadata=metadata, references=references)
        written = journal.update_settings("s", settings)
        metadata["nested"]["list"].append("caller change")
        references[0]["doc"] = "caller change"
        settings["model"]["params"][0] = "caller change"
        cached = journal.get("s")
    with Journal(tmp_path / "j") as journal:
        fresh = journal.get("s")
    for session in (written, cached, fresh):
        assert_immutable(session)
        message = session.messages[0]
        assert (plain(message.metadata), plain(message.references), plain(session.settings)) == expected
    assert (plain(returned.metadata), plain(returned.references)) == expected[:2]


# -- invalid histories -------------------------------------------------------------------------


def renumbered(events: list[Event]) -> list[Event]:
    return [msgspec.structs.replace(e, seq=i) for i, e in enumerate(events, start=1)]


def drop_created(history: list[Event], data: st.DataObject) -> list[Event]:
    # Every seq still contiguous from 1, but the first event is not 'created'.
    if len(history) == 1:
        return [Cleared(seq=1, at=history[0].at)]
    return renumbered(history[1:])


def gap(history: list[Event], data: st.DataObject) -> list[Event]:
    # One seq missing (an event removed), later seqs unchanged; two events are appended
    # first so that something always follows the hole.
    n, at = len(history), history[-1].at
    history = [*history, Cleared(seq=n + 1, at=at), Cleared(seq=n + 2, at=at)]
    missing = data.draw(st.integers(1, len(history) - 2), label="missing")
    return history[:missing] + history[missing + 1 :]


def second_created(history: list[Event], data: st.DataObject) -> list[Event]:
    # A second 'created' anywhere after the first, seqs renumbered so only that is wrong.
    where = data.draw(st.integers(1, len(history)), label="where")
    again = Created(seq=0, at=history[-1].at, session_id=data.draw(st.text(min_size=1), label="id"))
    return renumbered([*history[:where], again, *history[where:]])


def duplicate_seq(history: list[Event], data: st.DataObject) -> list[Event]:
    # An event repeated right after itself (a replayed write).
    where = data.draw(st.integers(0, len(history) - 1), label="where")
    return [*history[: where + 1], history[where], *history[where + 1 :]]


def wrong_start(history: list[Event], data: st.DataObject) -> list[Event]:
    # Contiguous seqs that start above 1.
    offset = data.draw(st.integers(1, 3), label="offset")
    return [msgspec.structs.replace(e, seq=e.seq + offset) for e in history]


def swapped(history: list[Event], data: st.DataObject) -> list[Event]:
    # Two adjacent events out of order.
    history = [*history, Cleared(seq=len(history) + 1, at=history[-1].at)]
    where = data.draw(st.integers(0, len(history) - 2), label="where")
    history[where], history[where + 1] = history[where + 1], history[where]
    return history


def time_goes_back(history: list[Event], data: st.DataObject) -> list[Event]:
    # A next event (right seq) dated before the one it follows.
    back = data.draw(st.timedeltas(timedelta(microseconds=1), timedelta(days=1)), label="back")
    return [*history, Cleared(seq=len(history) + 1, at=history[-1].at - back)]


CORRUPTIONS: list[Callable[[list[Event], st.DataObject], list[Event]]] = [
    drop_created,
    gap,
    second_created,
    duplicate_seq,
    wrong_start,
    swapped,
    time_goes_back,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
@given(history=histories(max_events=6), data=st.data())
def test_replay_rejects_an_invalid_history(
    corrupt: Callable[[list[Event], st.DataObject], list[Event]], history: list[Event], data: st.DataObject
) -> None:
    # Oracle: the definition of a valid history (created first and only once, seqs 1, 2, 3,
    # ... without gaps or repeats, times never going back). Each corruption breaks one rule;
    # replay must raise ValueError rather than return a state.
    bad = corrupt(history, data)
    with pytest.raises(ValueError, match=r"seq|created"):
        replay(bad)
