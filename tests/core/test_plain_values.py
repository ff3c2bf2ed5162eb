"""Sessions, messages and events as plain JSON values: ``to_dict``, ``from_dict``, msgspec.

The promise: ``to_dict()`` is exactly what ``json.loads`` gives back for the value's JSON,
``from_dict`` turns it back into an equal value (bools stay bools, floats keep their bits),
msgspec encodes sessions, messages and events directly to the same JSON, and the mappings
inside stay read-only while doing all that.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given

import journal
from journal import Journal, Message, Session, event_from_dict
from journal.backends.memory import MemoryStorage
from journal.core.events import Event, FrozenDict, MessageAdded, freeze
from journal.core.state import replay
from journal.testing import canon
from journal.testing.strategies import event_sequences, json_objects


def through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


@given(history=event_sequences(max_size=12))
def test_every_event_round_trips_through_json(history: list[Event]) -> None:
    for event in history:
        plain = event.to_dict()
        assert plain["type"] == event.type
        assert through_json(plain) == plain  # already plain: nothing for json to change
        back = event_from_dict(through_json(plain))
        assert back == event
        assert canon(back.to_dict()) == canon(plain)
        assert msgspec.json.decode(msgspec.json.encode(event)) == plain


@given(history=event_sequences(max_size=12))
def test_a_folded_session_round_trips_through_json(history: list[Event]) -> None:
    session = replay(history)
    assert session is not None
    plain = session.to_dict()
    assert through_json(plain) == plain
    assert [m["id"] for m in plain["messages"]] == [m.id for m in session.messages]
    back = Session.from_dict(through_json(plain))
    assert back == session
    assert canon(back.to_dict()) == canon(plain)
    assert msgspec.json.decode(msgspec.json.encode(session)) == plain
    assert through_json(msgspec.to_builtins(session)) == plain
    for message in session.messages:
        assert msgspec.json.decode(msgspec.json.encode(message)) == message.to_dict()
        assert Message.from_dict(message.to_dict()) == message


def test_edited_and_redacted_messages_keep_their_marks() -> None:
    with Journal(storage=MemoryStorage()) as j:
        j.create("s")
        kept = j.add_message("s", "user", "first", metadata={"n": [1, {"deep": True}]})
        erased = j.add_message("s", "assistant", "secret")
        j.edit_message("s", kept.id, "first, fixed")
        j.redact_message("s", erased.id, reason="request")
        session = j.get("s")
    plain = through_json(session.to_dict())
    by_id = {m["id"]: m for m in plain["messages"]}
    assert by_id[kept.id]["content"] == "first, fixed"
    assert by_id[kept.id]["edited_at"] is not None
    assert by_id[kept.id]["metadata"] == {"n": [1, {"deep": True}]}
    assert by_id[erased.id] | {"content": "", "redacted": True} == by_id[erased.id]
    assert Session.from_dict(plain) == session


def test_times_come_back_aware_and_in_utc() -> None:
    at = datetime(2026, 11, 26, 14, 2, tzinfo=timezone.utc)
    message = Message(id="m", seq=2, role="user", content="hi", at=at)
    assert message.to_dict()["at"] == "2026-11-26T14:02:00Z"
    shifted = Message.from_dict(message.to_dict() | {"at": "2026-11-26T15:02:00+01:00"})
    assert shifted.at == at
    assert shifted.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"at": "2026-11-26T14:02:00"}, "no UTC offset"),
        ({"seq": "2"}, "$.seq"),
        ({"metadata": [1]}, "$.metadata"),
        ({"content": None}, "$.content"),
    ],
)
def test_a_damaged_message_dict_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    plain = Message(id="m", seq=2, role="user", content="hi", at=datetime.now(timezone.utc)).to_dict()
    with pytest.raises(journal.InvalidValueError, match="message") as caught:
        Message.from_dict(plain | change)
    assert field in str(caught.value)
    with pytest.raises(journal.InvalidValueError, match="field `seq`"):
        Message.from_dict({k: v for k, v in plain.items() if k != "seq"})


def test_unknown_event_types_and_broken_sessions_are_refused() -> None:
    with pytest.raises(journal.InvalidValueError, match="type"):
        event_from_dict({"type": "message_deleted", "seq": 2, "at": "2026-11-26T14:02:00Z"})
    with pytest.raises(journal.InvalidValueError, match="messages"):
        Session.from_dict({"id": "s", "messages": "not a list"})
    with pytest.raises(journal.InvalidValueError, match="field `version`"):
        Session.from_dict(
            {"id": "s", "created_at": "2026-11-26T14:02:00Z", "updated_at": "2026-11-26T14:02:00Z"}
        )


@given(value=json_objects)
def test_frozen_dicts_refuse_changes_and_encode_as_dicts(value: dict[str, Any]) -> None:
    frozen = freeze(value)
    assert isinstance(frozen, FrozenDict) or frozen == {}
    assert json.loads(json.dumps(frozen)) == json.loads(json.dumps(value))
    assert msgspec.json.encode(frozen) == msgspec.json.encode(value)
    with pytest.raises(TypeError, match="read-only"):
        frozen["x"] = 1
    with pytest.raises(TypeError, match="read-only"):
        frozen.update(x=1)
    assert copy.deepcopy(frozen) == frozen
    assert type(copy.deepcopy(frozen)) is type(frozen)
    mutable = dict(frozen)
    new_key = "x" * (1 + max((len(k) for k in frozen), default=0))  # a key it cannot hold yet
    mutable[new_key] = 1
    assert new_key not in frozen


def test_a_session_read_from_a_journal_is_json_ready(tmp_path: Any) -> None:
    with Journal(tmp_path / "data") as j:
        j.create("s")
        j.add_message("s", "user", "hi", metadata={"model": "m1"})
        j.update_settings("s", {"temperature": 0.2})
        j.clear("s")
        j.add_message("s", "user", "again")
        session = j.get("s")
        events = list(j.events("s"))
    plain = through_json(session.to_dict())
    assert plain["settings"] == {"temperature": 0.2}
    assert [m["content"] for m in plain["messages"]] == ["again"]
    assert [e["type"] for e in through_json([e.to_dict() for e in events])] == [
        "created",
        "message_added",
        "settings_changed",
        "cleared",
        "message_added",
    ]
    assert isinstance(events[1], MessageAdded)
    assert json.loads(msgspec.json.encode(events)) == [e.to_dict() for e in events]


def test_flask_jsonify_takes_to_dict() -> None:
    flask = pytest.importorskip("flask", reason="Flask is an optional extra (the dev extra installs it)")
    app = flask.Flask(__name__)
    with Journal(storage=MemoryStorage()) as j:
        j.create("s")
        message = j.add_message("s", "user", "hi")
        session = j.get("s")
    with app.app_context():
        body = flask.jsonify(session=session.to_dict(), message=message.to_dict()).get_json()
    assert body["session"]["messages"][0] == message.to_dict()
    assert Session.from_dict(body["session"]) == session


def test_msgspec_encodes_a_session_directly_and_its_lazy_view_only_as_a_tuple() -> None:
    with Journal(storage=MemoryStorage()) as j:
        j.create("s", settings={"model": "m1"})
        message = j.add_message("s", "user", "hi", references=[{"doc": 1}])
        session = j.get("s")
    encoded = msgspec.json.encode(session)
    assert encoded == msgspec.json.encode(session.to_dict())
    assert msgspec.json.Encoder().encode(session) == encoded
    packed = msgspec.msgpack.decode(msgspec.msgpack.encode(session))
    assert [m["id"] for m in packed["messages"]] == [message.id]
    assert packed["created_at"] == session.created_at  # msgpack keeps times as timestamps
    builtins = msgspec.to_builtins(session)
    assert builtins["messages"] == (message.to_dict() | {"references": ({"doc": 1},)},)
    assert builtins["settings"] == {"model": "m1"}
    as_fields = dataclasses.asdict(session)
    assert as_fields["messages"] == (message,)
    assert as_fields["settings"] == {"model": "m1"}
    # The lazy view is for reading; msgspec takes the tuple and names the view it cannot take.
    with pytest.raises(TypeError, match="Messages"):
        msgspec.json.encode(session.messages_view)
