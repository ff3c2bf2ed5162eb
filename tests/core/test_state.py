"""The pure fold and the immutable message sequence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from journal import Cleared, Created, Event, MessageAdded, Messages, SettingsChanged, apply, replay
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
