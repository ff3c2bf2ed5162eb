"""The line envelope: targeted cases of each check, in the order the reader applies them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from journal.core.codec import GENESIS, decode, encode
from journal.core.events import Cleared, Created, Event, MessageAdded, SettingsChanged, freeze
from journal.errors import LineError

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def message(content: str = "hello") -> MessageAdded:
    return MessageAdded(seq=2, at=AT, actor="u1", message_id="m1", role="user", content=content)


def rehash(sealed_obj: dict[str, object], body: dict[str, object] | None = None) -> bytes:
    """Build a line the way a careful forger would: valid JSON and a correct per-line hash."""
    sealed = json.dumps(sealed_obj, separators=(",", ":")).encode()[:-1]
    digest = hashlib.sha256(sealed).hexdigest().encode()
    tail = b"" if body is None else b',"body":' + json.dumps(body, separators=(",", ":")).encode()
    return sealed + b',"hash":"' + digest + b'"' + tail + b"}"


def test_round_trip_every_event_type() -> None:
    prev = GENESIS
    events: list[Event] = [
        Created(seq=1, at=AT, session_id="s"),
        message("hi \u2028 there \x85 \n"),
        SettingsChanged(seq=3, at=AT, changes=freeze({"a": {"b": [1]}}), removed=("c",)),
        Cleared(seq=4, at=AT, actor="x"),
    ]
    for event in events:
        line, digest, hash_at = encode(event, prev)
        assert line.endswith(b"}\n")
        assert line.count(b"\n") == 1
        decoded = decode(line[:-1])
        assert decoded.event == event
        assert (decoded.prev, decoded.hash, decoded.hash_at) == (prev, digest, hash_at)
        assert line[hash_at : hash_at + 64].decode() == digest
        prev = digest


def test_sealed_part_holds_only_a_salted_digest_of_the_content() -> None:
    line, _, _ = encode(message("top secret"), GENESIS, salt=b"\x01" * 16)
    sealed = line[: line.rfind(b',"hash":"')]
    assert b"top secret" not in sealed
    parsed = json.loads(line)
    expected = hashlib.sha256(b"\x01" * 16 + b"top secret").hexdigest()
    assert parsed["data"]["content_sha256"] == expected
    assert parsed["body"] == {"salt": "01" * 16, "content": "top secret"}


def test_fresh_salt_per_message() -> None:
    first = json.loads(encode(message(), GENESIS)[0])
    second = json.loads(encode(message(), GENESIS)[0])
    assert first["body"]["salt"] != second["body"]["salt"]
    assert first["data"]["content_sha256"] != second["data"]["content_sha256"]


def test_newer_version_is_unsupported_not_damaged() -> None:
    line = encode(Created(seq=1, at=AT, session_id="s"), GENESIS)[0][:-1]
    with pytest.raises(LineError, match="format version 3 is newer") as info:
        decode(line.replace(b'{"v":1,', b'{"v":3,', 1))
    assert info.value.unsupported
    with pytest.raises(LineError, match="must start with") as info:
        decode(line.replace(b'{"v":1,', b'{"v":0,', 1))
    assert not info.value.unsupported


def test_unknown_type_with_valid_hash_is_unsupported() -> None:
    line = rehash(
        {
            "v": 1,
            "seq": 2,
            "type": "message_pinned",
            "at": "2026-01-02T03:04:05Z",
            "actor": None,
            "data": {},
            "prev": GENESIS,
        }
    )
    with pytest.raises(LineError, match="unknown event type 'message_pinned'") as info:
        decode(line)
    assert info.value.unsupported


def test_wrong_shape_with_valid_hash_is_damage() -> None:
    base = {"v": 1, "seq": 1, "type": "created", "at": "2026-01-02T03:04:05Z", "actor": None, "prev": GENESIS}
    for bad in [
        {**base, "data": {}},  # missing session_id
        {**base, "data": {"session_id": 5}},
        {**base, "seq": 0, "data": {"session_id": "s"}},
        {**base, "at": "2026-01-02T03:04:05", "data": {"session_id": "s"}},  # naive time
        {**base, "at": "yesterday", "data": {"session_id": "s"}},
    ]:
        with pytest.raises(LineError) as info:
            decode(rehash(bad))
        assert not info.value.unsupported


def test_message_body_must_match_its_digest() -> None:
    line = encode(message("original"), GENESIS)[0][:-1]
    forged = line.replace(b'"content":"original"', b'"content":"forged!!"')
    with pytest.raises(LineError, match="content does not match"):
        decode(forged)
    without_body = line[: line.rfind(b',"body":')] + b"}"
    with pytest.raises(LineError, match="no body"):
        decode(without_body)


def test_bytes_after_the_hash_must_be_body_or_end() -> None:
    line = encode(Cleared(seq=4, at=AT), GENESIS)[0][:-1]
    with pytest.raises(LineError, match="after the hash"):
        decode(line[:-1] + b',"extra":1}')
    with pytest.raises(LineError, match="no hash"):
        decode(b'{"v":1,"seq":1}')


def test_content_with_hash_lookalike_text_still_round_trips() -> None:
    tricky = 'x","hash":"' + "0" * 64 + '"}'
    event = MessageAdded(
        seq=2, at=AT, message_id="m", role="user", content=tricky, metadata={"hash": ',"hash":"abc'}
    )
    line = encode(event, GENESIS)[0]
    assert decode(line[:-1]).event == event


def test_body_must_be_canonical() -> None:
    # The body is outside the hash: any re-spelling would be bytes nobody vouches for.
    line = encode(message("a\x1fb"), GENESIS, salt=bytes(range(16)))[0][:-1]
    assert b"\\u001f" in line
    for forged in [
        line.replace(b"\\u001f", b"\\u001F"),
        line.replace(b'"salt":"000102', b'"salt":"000102'.upper()),
        line.replace(b'"content":', b'"content":"x","content":'),
        line.replace(b'{"salt":', b'{ "salt":'),
    ]:
        assert forged != line
        with pytest.raises(LineError, match=r"canonical|salt"):
            decode(forged)


def test_only_messages_have_a_body() -> None:
    line = encode(Cleared(seq=4, at=AT), GENESIS)[0][:-1]
    with pytest.raises(LineError, match="cleared line must not have a body"):
        decode(line[:-1] + b',"body":{"salt":"00","content":"smuggled"}}')


def test_times_must_be_utc() -> None:
    base = {"v": 1, "seq": 1, "type": "created", "actor": None, "data": {"session_id": "s"}, "prev": GENESIS}
    assert decode(rehash({**base, "at": "2026-01-02T03:04:05+00:00"})).event.at == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc
    )
    with pytest.raises(LineError, match="UTC"):
        decode(rehash({**base, "at": "2026-01-02T03:04:05+02:00"}))
