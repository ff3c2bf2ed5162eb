"""The pure fold, the immutable message sequence and the session's tuple of messages."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from journal import (
    Cleared,
    Created,
    Event,
    MessageAdded,
    MessageEdited,
    Messages,
    SettingsChanged,
    apply,
    replay,
)
from journal.core.events import freeze
from journal.core.state import Message

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def added(seq: int, content: str) -> MessageAdded:
    return MessageAdded(
        seq=seq, at=T0 + timedelta(seconds=seq), message_id=f"m{seq}", role="user", content=content
    )


def test_fold_of_each_event() -> None:
    session = replay(
        [
            Created(seq=1, at=T0, session_id="s", actor="a"),
            added(2, "one"),
            SettingsChanged(seq=3, at=T0 + timedelta(seconds=3), changes=freeze({"x": 1, "y": 2})),
            SettingsChanged(seq=4, at=T0 + timedelta(seconds=4), changes=freeze({"z": 3}), removed=("x",)),
            added(5, "two"),
            Cleared(seq=6, at=T0 + timedelta(seconds=6)),
            added(7, "three"),
        ]
    )
    assert session is not None
    assert session.version == 7
    assert [m.content for m in session.messages] == ["three"]
    assert dict(session.settings) == {"y": 2, "z": 3}
    assert session.created_at == T0
    assert session.updated_at == T0 + timedelta(seconds=7)


def test_fold_rejects_invalid_sequences() -> None:
    created = Created(seq=1, at=T0, session_id="s")
    with pytest.raises(ValueError, match="first event must be 'created'"):
        apply(None, added(1, "x"))
    state = apply(None, created)
    with pytest.raises(ValueError, match="seq 3 cannot follow seq 1"):
        apply(state, added(3, "x"))
    with pytest.raises(ValueError, match="already created"):
        apply(state, Created(seq=2, at=T0, session_id="s"))
    later = apply(state, added(2, "x"))
    with pytest.raises(ValueError, match="dated before"):
        apply(later, Cleared(seq=3, at=T0))
    assert replay([]) is None


def test_messages_sequence_behaviour() -> None:
    items = [Message(id=f"m{i}", seq=i, role="user", content=str(i), at=T0) for i in range(5)]
    messages = Messages(items)
    assert len(messages) == 5
    assert messages[0] == items[0]
    assert messages[-1] == items[4]
    assert messages[1:3] == (items[1], items[2])
    assert messages[::-1] == tuple(reversed(items))
    assert list(messages) == items
    assert messages == Messages(items)
    assert messages == items
    assert messages != items[:4]
    with pytest.raises(IndexError):
        messages[5]
    with pytest.raises(IndexError):
        messages[-6]
    with pytest.raises(TypeError):
        hash(messages)


def test_branching_an_old_state_leaves_both_branches_intact() -> None:
    base = apply(apply(None, Created(seq=1, at=T0, session_id="s")), added(2, "shared"))
    left = apply(base, added(3, "left"))
    right = apply(base, added(3, "right"))  # the backing list is shared: this must copy
    assert [m.content for m in base.messages] == ["shared"]
    assert [m.content for m in left.messages] == ["shared", "left"]
    assert [m.content for m in right.messages] == ["shared", "right"]
    further = apply(left, added(4, "more"))
    assert [m.content for m in left.messages] == ["shared", "left"]
    assert [m.content for m in further.messages] == ["shared", "left", "more"]


def test_a_session_repr_is_short_whatever_it_holds() -> None:
    # Oracle: the repr names the id, version and message count, and stays one short line at
    # 1,000 messages (it ends up in logs and tracebacks).
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events: list[Event] = [Created(seq=1, at=at, actor=None, session_id="s\n1")]
    events += [
        MessageAdded(seq=n, at=at, actor=None, message_id=f"m{n}", role="user", content="x" * 100)
        for n in range(2, 1002)
    ]
    session = replay(events)
    assert repr(session) == "Session(id='s\\n1', version=1001, messages=1000)"


def test_messages_is_a_tuple_built_once_and_the_view_reads_the_same() -> None:
    first = replay([Created(seq=1, at=T0, session_id="s"), added(2, "one"), added(3, "two")])
    assert first is not None
    assert type(first.messages) is tuple
    assert first.messages is first.messages  # built on the first read, then kept
    assert first.messages == tuple(first.messages_view) == first.messages_view
    assert len(first.messages_view) == 2
    assert first.messages_view[-1:] == first.messages[-1:]
    later = apply(first, added(4, "three"))
    # The next state shares the view's storage; the tuple read from the first stays as it was.
    assert [m.content for m in first.messages] == ["one", "two"]
    assert [m.content for m in later.messages] == ["one", "two", "three"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        later.messages = ()  # type: ignore[misc]
    moved = dataclasses.replace(later, version=9)
    assert moved.messages == later.messages
    assert moved.version == 9


def test_folding_never_builds_a_tuple_of_the_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Oracle: the fold appends without copying the conversation (O(1) per message); only a
    # read of ``messages`` builds the tuple, once per state, and from scratch (as_tuple) only
    # when no earlier state's tuple can start it: after an edit, not after appends.
    copies: list[int] = []
    original = Messages.as_tuple

    def counted(self: Messages) -> tuple[Message, ...]:
        copies.append(len(self))
        return original(self)

    monkeypatch.setattr(Messages, "as_tuple", counted)
    state = replay([Created(seq=1, at=T0, session_id="s"), added(2, "one")])
    assert state is not None
    assert len(state.messages) == 1
    assert copies == [1]
    for seq in range(3, 503):
        state = apply(state, added(seq, str(seq)))
    assert copies == [1]
    assert [m.content for m in state.messages] == ["one", *map(str, range(3, 503))]
    assert copies == [1]  # the first state's tuple, then the 500 appended
    # Events that leave the messages as they are keep the tuple already built.
    at = T0 + timedelta(seconds=600)
    settled = apply(state, SettingsChanged(seq=503, at=at, changes=freeze({"x": 1})))
    assert settled.messages is state.messages
    edited = apply(settled, MessageEdited(seq=504, at=at, message_id="m2", content="ONE"))
    assert [m.content for m in edited.messages][:2] == ["ONE", "3"]
    assert copies == [1, 501]
    assert [m.content for m in state.messages][:1] == ["one"]  # the older state is untouched
