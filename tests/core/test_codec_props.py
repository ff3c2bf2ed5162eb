"""Properties of the line codec: round trips, tamper evidence, framing.

The oracles are the format's own promises (``journal/codec.py`` docstring): decoding an encoded
line gives back the event and its chain link; a line that was changed in any way, or cut short,
raises ``LineError`` (never a different exception, never a silently different or equal event);
and a line is exactly one ``\\n``-terminated record whatever the text inside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from journal.core.codec import GENESIS, decode, encode
from journal.core.events import Cleared, Created, Event, MessageAdded, SettingsChanged, freeze
from journal.errors import LineError
from journal.testing import canon
from journal.testing.strategies import actors, json_objects, json_values, keys, short_texts, texts

HASH_KEY = b',"hash":"'

seqs = st.integers(1, 2**63 - 1)
utc_times = st.datetimes(timezones=st.just(timezone.utc))
hashes = st.text("0123456789abcdef", min_size=64, max_size=64)
salts = st.binary(min_size=16, max_size=16)


def event_strategy(content: st.SearchStrategy[str]) -> st.SearchStrategy[Event]:
    """Any valid event of the four types, with frozen values as the journal builds them."""
    common: dict[str, Any] = {"seq": seqs, "at": utc_times, "actor": actors}
    return st.one_of(
        st.builds(Created, session_id=st.text(min_size=1), **common),
        st.builds(
            MessageAdded,
            message_id=st.text(),
            role=short_texts,
            content=content,
            metadata=json_objects.map(freeze),
            references=st.lists(json_values, max_size=3).map(freeze),
            **common,
        ),
        st.builds(
            SettingsChanged,
            changes=json_objects.map(freeze),
            removed=st.lists(keys, max_size=3).map(tuple),
            **common,
        ),
        st.builds(Cleared, **common),
    )


any_events = event_strategy(texts)
small_events = event_strategy(short_texts)  # lines of a few hundred bytes, for the sweeps

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
SMALL_EXAMPLES: list[Event] = [
    Created(seq=1, at=T0, session_id="chat"),
    MessageAdded(seq=2, at=T0, actor="ann", message_id="m1", role="user", content="hi\u2028\x1f🙂"),
    SettingsChanged(seq=3, at=T0, changes=freeze({"model": "x", "n": [1, 2.5, None]}), removed=("old",)),
    Cleared(seq=4, at=T0, actor=None),
]


def assert_same_values(decoded: Event, original: Event) -> None:
    """Beyond ``==``: the JSON values keep their exact types (True is not 1, 1 is not 1.0)."""
    if isinstance(decoded, MessageAdded):
        assert isinstance(original, MessageAdded)
        assert canon(decoded.metadata) == canon(original.metadata)
        assert canon(decoded.references) == canon(original.references)
    if isinstance(decoded, SettingsChanged):
        assert isinstance(original, SettingsChanged)
        assert canon(decoded.changes) == canon(original.changes)


@given(event=any_events, prev=hashes, salt=salts)
def test_encode_then_decode_round_trips(event: Event, prev: str, salt: bytes) -> None:
    # Oracle: the input itself. decode(encode(e)) must give e back with the same chain link,
    # the returned hash must be SHA-256 of the sealed bytes at the returned offset, and
    # re-encoding the decoded event with the same salt must reproduce the line byte for byte.
    line, digest, hash_at = encode(event, prev, salt=salt)
    decoded = decode(line[:-1])
    assert decoded.event == event
    assert type(decoded.event) is type(event)
    assert_same_values(decoded.event, event)
    assert (decoded.prev, decoded.hash, decoded.hash_at) == (prev, digest, hash_at)
    assert line[hash_at : hash_at + 64] == digest.encode("ascii")
    sealed = line[: hash_at - len(HASH_KEY)]
    assert hashlib.sha256(sealed).hexdigest() == digest
    assert encode(decoded.event, decoded.prev, salt=salt)[0] == line


@given(event=any_events, prev=hashes)
@example(
    event=MessageAdded(seq=1, at=T0, message_id="\n", role="\r", content="\n\r\u2028\u2029\u0085"),
    prev=GENESIS,
)
def test_a_line_is_one_newline_terminated_record(event: Event, prev: str) -> None:
    # Oracle: the framing rule. Readers split on b"\n" only, so whatever the text (including
    # \r, \n, U+2028, U+2029, U+0085 in any field) the line holds exactly one b"\n", at the
    # end, no b"\r" either (so no tool splitting on CR, LF or CRLF sees two records), and is
    # valid UTF-8.
    line = encode(event, prev)[0]
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert b"\r" not in line
    assert line.splitlines() == [line[:-1]]
    line.decode("utf-8")


@given(event=any_events, prev=hashes)
def test_a_truncated_line_never_decodes(event: Event, prev: str) -> None:
    # Oracle: a torn write leaves a prefix of a line; every proper prefix, at every cut
    # position, must be rejected with LineError (never decoded, never another exception).
    body = encode(event, prev)[0][:-1]
    wrong: list[tuple[int, str]] = []
    for cut in range(len(body)):
        try:
            decode(body[:cut])
        except LineError:
            continue
        except Exception as exc:
            wrong.append((cut, f"raised {type(exc).__name__}: {exc}"))
        else:
            wrong.append((cut, "decoded"))
    assert not wrong, f"{len(wrong)} truncations not rejected with LineError, e.g. {wrong[:5]}"


def single_byte_changes(line: bytes) -> Iterator[tuple[str, int, int, bytes]]:
    """Every line one byte away: each byte replaced by each of the 255 others (which covers
    every bit flip), each byte deleted, each of the 256 bytes inserted at each position."""
    for i in range(len(line)):
        for b in range(256):
            if b != line[i]:
                yield "replace", i, b, line[:i] + bytes((b,)) + line[i + 1 :]
        yield "delete", i, line[i], line[:i] + line[i + 1 :]
    for i in range(len(line) + 1):
        for b in range(256):
            yield "insert", i, b, line[:i] + bytes((b,)) + line[i:]


@settings(
    max_examples=max(4, settings().max_examples // 5),
    # Each example decodes ~500 variants per byte (about a second per line), so shrinking would
    # cost minutes; the explicit small examples below already are minimal reproducers.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(event=small_events, prev=hashes)
@example(event=SMALL_EXAMPLES[0], prev=GENESIS)
@example(event=SMALL_EXAMPLES[1], prev=GENESIS)
@example(event=SMALL_EXAMPLES[2], prev=GENESIS)
@example(event=SMALL_EXAMPLES[3], prev=GENESIS)
def test_every_single_byte_change_is_detected(event: Event, prev: str) -> None:
    # Oracle: tamper evidence. Exhaustively, for every position of the line, every other byte
    # value, the deletion and every insertion: decode must raise LineError. Decoding anyway
    # (even to an equal event: the stored bytes were still altered) or raising another
    # exception (which escapes the reader's CorruptLogError handling) are both failures.
    body = encode(event, prev)[0][:-1]
    undetected: list[str] = []
    wrong_error: list[str] = []
    for kind, i, b, changed in single_byte_changes(body):
        try:
            decode(changed)
        except LineError:
            continue
        except Exception as exc:
            wrong_error.append(f"{kind} {bytes((b,))!r} at {i}: {type(exc).__name__}: {exc}")
        else:
            undetected.append(f"{kind} {bytes((b,))!r} at {i} (context {body[max(0, i - 12) : i + 12]!r})")
    failures = [*undetected, *wrong_error]
    assert not failures, (
        f"{len(undetected)} changes went undetected, e.g. {undetected[:4]}; "
        f"{len(wrong_error)} raised another exception than LineError, e.g. {wrong_error[:2]}"
    )


def _message_line(content: str = "hi") -> bytes:
    event = MessageAdded(seq=1, at=T0, message_id="m", role="user", content=content)
    return encode(event, GENESIS, salt=bytes.fromhex("abcdef00" * 4))[0][:-1]


def _insert_space_in_body(line: bytes) -> bytes:
    at = line.rindex(b'"body":') + len(b'"body":')
    return line[:at] + b" " + line[at:]


def _uppercase_salt_digit(line: bytes) -> bytes:
    at = line.rindex(b'"salt":"') + len(b'"salt":"')  # the salt starts with "ab"
    return line[:at] + b"A" + line[at + 1 :]


def _uppercase_escape_digit(line: bytes) -> bytes:
    at = line.rindex(b"\\u001f") + len(b"\\u001")
    return line[:at] + b"F" + line[at + 1 :]


def _space_inside_salt(line: bytes) -> bytes:
    at = line.rindex(b'"salt":"') + len(b'"salt":"') + 2  # between two hex pairs
    return line[:at] + b" " + line[at:]


def _non_utf8_in_body_key(line: bytes) -> bytes:
    at = line.rindex(b'"salt"') + 1
    return line[:at] + b"\x80" + line[at + 1 :]


@pytest.mark.parametrize(
    ("content", "change"),
    [
        pytest.param("hi", _insert_space_in_body, id="space-inserted-in-body"),
        pytest.param("hi", _uppercase_salt_digit, id="salt-hex-digit-uppercased"),
        pytest.param("hi", _space_inside_salt, id="space-inserted-in-salt"),
        pytest.param("a\x1fb", _uppercase_escape_digit, id="content-escape-hex-digit-uppercased"),
        pytest.param("hi", _non_utf8_in_body_key, id="non-utf8-byte-in-body-key"),
    ],
)
def test_single_byte_changes_to_a_message_body_are_detected(
    content: str, change: Callable[[bytes], bytes]
) -> None:
    # Oracle: as above, for five one-byte edits of the part of a message line that the hash
    # does not cover (the erasable body). Each must raise LineError like any other damage.
    line = _message_line(content)
    changed = change(line)
    assert len(changed) - len(line) in (0, 1)
    assert sum(a != b for a, b in zip(line, changed, strict=False)) >= 1
    with pytest.raises(LineError):
        decode(changed)
