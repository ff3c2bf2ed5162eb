"""docs/format.md, checked by a second reader written from the spec alone.

The oracle: ``spec_read`` below implements the reading algorithm of docs/format.md section 7 with
the standard library only (json, hashlib, re) and never imports journal.codec or journal.storage.
If it verifies every log journal writes and folds it to exactly what ``Journal.get`` returns,
the spec is precise enough to implement; if it and journal's own reader reject the same
damaged bytes, they agree on what damage is; and if every example quoted in the doc verifies,
the doc has not drifted from the code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journal import (
    CorruptLogError,
    Event,
    Journal,
    MessageAdded,
    Session,
    SessionNotFoundError,
    UnsupportedFormatError,
)
from journal.testing import plain
from tests.requirements import need_programs

DOC = Path(__file__).resolve().parents[3] / "docs" / "format.md"

# -- the independent reader: docs/format.md sections 1.2, 2, 3, 4, 5, 7, 9 and 10 ------------

GENESIS = "0" * 64
HASH_KEY = b',"hash":"'
V1_TYPES = ("created", "message_added", "settings_changed", "cleared")
V2_TYPES = ("message_removed", "message_edited", "message_redacted")
TYPES = V1_TYPES + V2_TYPES
BODIED = ("message_added", "message_edited")  # section 3.4: the only lines with a body
_AT = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{6}))?Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SALT = re.compile(r"[0-9a-f]{32}")
_NEWER = re.compile(rb'\{"v":([0-9]+),')
# Section 10: the erased body, then zero or more spaces, then the line's final brace. N is an
# integer in its only JSON spelling (no sign, no leading zero, no fraction or exponent).
_ERASED = re.compile(rb'","body":\{"redacted":(0|[1-9][0-9]*)\} *\}')


class Damage(Exception):
    """A line failed a check of section 7 (``line`` is 1-based, ``offset`` its first byte)."""

    def __init__(self, reason: str, line: int = 0, offset: int = 0) -> None:
        super().__init__(f"line {line} (byte {offset}): {reason}")
        self.reason = reason
        self.line = line
        self.offset = offset


class Unsupported(Damage):
    """A newer format version or an unknown event type with a valid hash."""


@dataclass(frozen=True)
class SpecEvent:
    seq: int
    type: str
    at: datetime
    actor: str | None
    data: dict[str, Any]
    prev: str
    hash: str
    content: str | None  # message_added and message_edited: the body's content ("" if erased)
    offset: int = 0  # where the line starts in the file (set by spec_read)
    redacted_by: int | None = None  # an erased body's N (section 10)


@dataclass
class SpecSession:
    id: str
    created_at: datetime
    updated_at: datetime
    version: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member name")
    return out


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _check_strings(value: Any) -> None:
    # Section 3.1: no lone surrogates, not even escaped (json.loads would accept "\ud800").
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


# Section 3.4: the canonical JSON string, the only spelling a body's content may have.
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def spec_json_string(text: str) -> bytes:
    """``text`` as a JSON string escaped minimally, every other character as raw UTF-8."""
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out).encode("utf-8")


def spec_body(salt_hex: str, content: str) -> bytes:
    """Section 3.4: the exact bytes after HASH in a message_added line."""
    return (
        b'","body":{"salt":"' + salt_hex.encode("utf-8") + b'","content":' + spec_json_string(content) + b"}}"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_at(text: object) -> datetime:
    # Section 4: the two forms writers write. Other spellings of UTC MAY be accepted (journal
    # accepts +00:00, lowercase t and z); this reader takes the stricter choice and rejects
    # them, along with every non-zero offset, which every reader MUST reject.
    match = _AT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise Damage(f"at {text!r} is not YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int(match.group(7) or 0)
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError as exc:
        raise Damage(f"at {text!r}: {exc}") from None


def _data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Section 5: the members of each type, with the documented defaults filled in."""

    def need(name: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        if name not in data and default is not None:
            return default
        value = data.get(name)
        if not isinstance(value, types):
            raise Damage(f"data.{name} is missing or has the wrong JSON type")
        return value

    if kind == "created":
        return {"session_id": need("session_id", str)}
    if kind == "message_added":
        before = data.get("before")
        if "before" in data and not isinstance(before, str):
            raise Damage("data.before has the wrong JSON type")
        return {
            "id": need("id", str),
            "role": need("role", str),
            "content_sha256": need("content_sha256", str),
            "metadata": need("metadata", dict, {}),
            "references": need("references", list, []),
            "before": before,  # optional, version 2 only (section 5.2); None: appended
        }
    if kind == "message_removed":
        return {"id": need("id", str)}
    if kind == "message_edited":
        return {
            "id": need("id", str),
            "content_sha256": need("content_sha256", str),
            "metadata": need("metadata", dict, {}),
        }
    if kind == "message_redacted":
        return {"id": need("id", str), "reason": need("reason", str)}
    if kind == "settings_changed":
        unset = need("unset", list, [])
        if not all(isinstance(key, str) for key in unset):
            raise Damage("data.unset holds a non-string")
        return {"set": need("set", dict, {}), "unset": unset}
    return {}


def spec_check_line(line: bytes) -> SpecEvent:
    """Steps 1-4 of section 7 for one line without its 0x0A."""
    # 1. Version: decided from the first bytes alone, before any hashing.
    if not line.startswith((b'{"v":1,', b'{"v":2,')):
        newer = _NEWER.match(line)
        if newer is not None and int(newer.group(1)) > 2:
            raise Unsupported(f"format version {int(newer.group(1))}")
        raise Damage('does not start with {"v":1, or {"v":2,')
    # 2. Hash of everything before the LAST ,"hash":" and nothing unexpected after it.
    cut = line.rfind(HASH_KEY)
    if cut < 0:
        raise Damage("no hash member")
    start = cut + len(HASH_KEY)
    stored = line[start : start + 64]
    if stored != hashlib.sha256(line[:cut]).hexdigest().encode("ascii"):
        raise Damage("hash mismatch")
    rest = line[start + 64 :]
    if rest != b'"}' and not (rest.startswith(b'","body":') and rest.endswith(b"}")):
        raise Damage("unexpected bytes after the hash")
    # 3. Shape.
    try:
        obj = json.loads(line.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        _check_strings(obj)
    except (UnicodeError, ValueError) as exc:
        raise Damage(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Damage("not an object")
    for name in ("v", "seq", "type", "at", "actor", "data", "prev", "hash"):
        if name not in obj:
            raise Damage(f"member {name} is missing")
    seq, kind, actor, data, prev = obj["seq"], obj["type"], obj["actor"], obj["data"], obj["prev"]
    version = obj["v"]
    if version not in (1, 2) or not _is_int(version):
        raise Damage("v is not 1 or 2")
    if not _is_int(seq) or seq < 1:
        raise Damage("seq is not an integer >= 1")
    if not isinstance(kind, str):
        raise Damage("type is not a string")
    if kind not in TYPES:
        raise Unsupported(f"unknown event type {kind!r}")
    if version == 1 and kind in V2_TYPES:
        raise Damage(f"a version-1 line of the version-2 type {kind}")
    at = _parse_at(obj["at"])
    if actor is not None and not isinstance(actor, str):
        raise Damage("actor is neither a string nor null")
    if not isinstance(data, dict):
        raise Damage("data is not an object")
    if not isinstance(prev, str) or obj["hash"] != stored.decode("ascii"):
        raise Damage("prev or hash has the wrong form")
    members = _data(kind, data)
    if version == 1 and "before" in data:
        raise Damage("a version-1 line with data.before")
    # 4. Body: only message_added and message_edited have one, they must, and only in its
    # canonical bytes (or erased). The bytes are compared, not the parsed members, so a body
    # in the sealed part fails too.
    content: str | None = None
    redacted_by: int | None = None
    erased = _ERASED.fullmatch(rest) if kind in BODIED else None
    if erased is not None:
        redacted_by = int(erased.group(1))
        if redacted_by <= seq:
            raise Damage(f"its content was erased naming seq {redacted_by}, which is not a later event")
        content = ""  # section 7 step 4: the content is unknown, read as ""
    elif kind in BODIED:
        body = obj.get("body")
        if not isinstance(body, dict):
            raise Damage("message without a body")
        salt, content = body.get("salt"), body.get("content")
        if not isinstance(salt, str) or not isinstance(content, str):
            raise Damage("body lacks a salt string or a content string")
        if rest != spec_body(salt, content):
            raise Damage("message body is not in canonical form")
        if not _SALT.fullmatch(salt):
            raise Damage("salt is not 32 lowercase hex digits")
        digest = hashlib.sha256(bytes.fromhex(salt) + content.encode("utf-8")).hexdigest()
        if digest != members["content_sha256"]:
            raise Damage("content does not match content_sha256")
    elif rest != b'"}':
        raise Damage(f"a {kind} line must not have a body")
    elif "body" in obj:
        # Section 7 step 3 (SHOULD): hash and body are reserved in the sealed part; a sealed
        # hash is always a duplicate name, caught by the JSON parse above.
        raise Damage(f"a {kind} line has a body member in its sealed part")
    return SpecEvent(seq, kind, at, actor, members, prev, obj["hash"], content, redacted_by=redacted_by)


def spec_read(data: bytes) -> list[SpecEvent]:
    """Section 7 over a whole file: split on 0x0A only, ignore the torn tail, seq and chain,
    and section 10: every erased body names a later message_redacted of its own message."""
    *lines, _torn_tail = data.split(b"\n")
    events: list[SpecEvent] = []
    claims: dict[int, list[SpecEvent]] = {}  # seq N -> the erased lines that name it
    prev, offset = GENESIS, 0
    for number, line in enumerate(lines, 1):
        try:
            event = spec_check_line(line)
            if event.seq != number:  # 5. seq
                raise Damage(f"seq {event.seq} where {number} was expected")
            if event.prev != prev:  # 6. chain
                raise Damage("prev is not the previous line's hash")
        except Damage as exc:
            raise type(exc)(exc.reason, number, offset) from None
        event = replace(event, offset=offset)
        for claim in claims.pop(event.seq, []):
            if event.type != "message_redacted" or event.data["id"] != claim.data["id"]:
                _forged(claim, "which does not redact this message")
        if event.redacted_by is not None:
            claims.setdefault(event.redacted_by, []).append(event)
        events.append(event)
        prev, offset = event.hash, offset + len(line) + 1
    if claims:  # a claim naming a seq the log does not hold: the earliest such line is damaged
        _forged(min((c for pending in claims.values() for c in pending), key=lambda c: c.seq), "not stored")
    return events


def _forged(claim: SpecEvent, why: str) -> NoReturn:
    reason = f"its content was erased naming seq {claim.redacted_by}, {why}"
    raise Damage(reason, claim.seq, claim.offset)


def spec_fold(events: list[SpecEvent]) -> SpecSession | None:
    """Section 9: the first event is created, no other is, at never decreases, then effects."""
    session: SpecSession | None = None
    for event in events:
        if session is None:
            if event.type != "created":
                raise Damage("first event is not created", event.seq, event.offset)
            session = SpecSession(event.data["session_id"], event.at, event.at, event.seq)
            continue
        if event.type == "created":
            raise Damage("a second created event", event.seq, event.offset)
        if event.at < session.updated_at:
            raise Damage(
                f"event seq {event.seq} is dated before the event it follows", event.seq, event.offset
            )
        ids = [m["id"] for m in session.messages]

        def visible(message_id: str, event: SpecEvent = event, ids: list[str] = ids) -> int:
            if message_id not in ids:
                raise Damage(f"no visible message {message_id!r}", event.seq, event.offset)
            return ids.index(message_id)

        if event.type == "message_added":
            message = {
                "id": event.data["id"],
                "seq": event.seq,
                "role": event.data["role"],
                "content": event.content,
                "at": event.at,
                "metadata": event.data["metadata"],
                "references": event.data["references"],
                "actor": event.actor,
                "redacted": event.redacted_by is not None,
                "edited_at": None,
            }
            if event.data["before"] is None:
                session.messages.append(message)
            else:
                session.messages.insert(visible(event.data["before"]), message)
        elif event.type == "message_removed":
            del session.messages[visible(event.data["id"])]
        elif event.type == "message_edited":
            # Section 9 names what changes; "redacted" follows the new content: it is set only
            # when this line's own body is erased (the doc does not say so in as many words).
            session.messages[visible(event.data["id"])].update(
                content=event.content,
                metadata=event.data["metadata"],
                edited_at=event.at,
                redacted=event.redacted_by is not None,
            )
        elif event.type == "message_redacted":
            if event.data["id"] in ids:  # not visible: nothing visible changes
                session.messages[ids.index(event.data["id"])].update(content="", redacted=True)
        elif event.type == "settings_changed":
            session.settings.update(event.data["set"])
            for key in event.data["unset"]:
                session.settings.pop(key, None)
        else:
            session.messages = []
        session.version, session.updated_at = event.seq, event.at
    return session


def spec_dirname(session_id: str) -> str:
    """Section 1.2, written without str.lower() as a reader in another language would."""
    lowered = []
    for char in session_id:
        if "A" <= char <= "Z":
            lowered.append(chr(ord(char) + 32))
        elif char == "\u212a":
            lowered.append("k")
        elif char == "\u0130":
            lowered.append("i\u0307")
        else:
            lowered.append(char)
    slug = re.sub(r"[^a-z0-9_-]+", "-", "".join(lowered)).strip("-")[:40].strip("-") or "id"
    return f"{slug}~{spec_hash(session_id)}"


def spec_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


def spec_log(root: Path, session_id: str) -> Path:
    return root / "sessions" / spec_dirname(session_id) / "events.jsonl"


# -- bridges to journal's public API ----------------------------------------------------------


def as_spec(session: Session) -> SpecSession:
    messages = [
        {
            "id": m.id,
            "seq": m.seq,
            "role": m.role,
            "content": m.content,
            "at": m.at,
            "metadata": plain(m.metadata),
            "references": plain(m.references),
            "actor": m.actor,
            "redacted": m.redacted,
            "edited_at": m.edited_at,
        }
        for m in session.messages
    ]
    return SpecSession(
        session.id,
        session.created_at,
        session.updated_at,
        session.version,
        messages,
        plain(session.settings),
    )


def journal_events(root: Path, session_id: str) -> list[Event]:
    """journal's own reader, on a fresh Journal so no cache can hide what is on disk."""
    with Journal(root, fsync="never") as j:
        try:
            return list(j.events(session_id))
        except SessionNotFoundError:
            return []


# -- sessions that exercise every event type and every awkward character ----------------------

TRICKY = (
    "line\u2028separator, next\x85line, paragraph\u2029, emoji \U0001f600\U0001f469\u200d\U0001f4bb,"
    " quotes \"q\" 's', backslashes \\ \\\\ \\n \\u0041, control \x01\x1f\t\r\n, nul \x00, del \x7f,"
    ' fake member ,"hash":"' + "f" * 64 + '"} and ,"body":{'
)
HASHY_METADATA = {"a": 1, "hash": "not-a-hash", "text": ',"hash":"x', "nested": {"x": 0, "hash": "y"}}
SESSION_IDS = (
    "support-chat-42",
    "User 123",
    "\u0130stanbul \u212aelvin",
    "../etc/passwd",
    ',"hash":"',
    "\U0001f600 \u65e5\u672c\u8a9e \u2028",
    "x" * 39 + "-y" + "Z" * 30,
)


def populate(j: Journal) -> None:
    """Every event type, with the awkward values, in every session."""
    for number, sid in enumerate(SESSION_IDS):
        j.create(sid, actor=None if number % 2 else "creator")
        j.add_message(sid, "user", TRICKY, metadata=HASHY_METADATA, references=[{"k": 1, "hash": "z"}])
        j.add_message(sid, "assistant", "", actor='o"brien\\', metadata={"n": [1, 2.5, -0.0, True, None]})
        j.update_settings(sid, {"model": "m", "hash": ',"hash":"', "deep": {"a": [{"b": {}}]}})
        j.update_settings(sid, {"t": 0.25}, remove=["model", "never-set"], actor="ops")
        j.clear(sid, actor="ops")
        j.add_message(
            sid, "system", f"after clear {number} \U0001f9ea", metadata={"big": 2**64 - 1, "small": -(2**63)}
        )
        j.update_settings(sid, remove=["deep"])


@pytest.fixture
def populated(root: Path) -> Path:
    with Journal(root, fsync="never") as j:
        populate(j)
    return root


# -- (a) real logs: every line verifies and folds to Journal.get() ---------------------------


def test_real_logs_verify_and_fold_to_what_journal_returns(populated: Path) -> None:
    with Journal(populated) as j:
        assert sorted(j.sessions()) == sorted(SESSION_IDS)
        for sid in SESSION_IDS:
            raw = spec_log(populated, sid).read_bytes()
            events = spec_read(raw)
            assert raw.endswith(b"\n")
            assert [e.type for e in events] == [
                "created",
                "message_added",
                "message_added",
                "settings_changed",
                "settings_changed",
                "cleared",
                "message_added",
                "settings_changed",
            ]
            assert spec_fold(events) == as_spec(j.get(sid))
            ours = [(e.seq, e.type, e.at, e.actor) for e in events]
            theirs = [(e.seq, e.type, e.at, e.actor) for e in j.events(sid)]
            assert ours == theirs
            # The awkward content is really in the file raw: splitting on Unicode line breaks
            # (str.splitlines) would cut its line apart, which is why section 2 forbids it.
            assert "\u2028".encode() in raw
            assert len(raw.decode("utf-8").splitlines()) > len(events)


def test_cleared_messages_stay_in_the_log(populated: Path) -> None:
    events = spec_read(spec_log(populated, SESSION_IDS[0]).read_bytes())
    contents = [e.content for e in events if e.type == "message_added"]
    assert contents == [TRICKY, "", "after clear 0 \U0001f9ea"]
    session = spec_fold(events)
    assert session is not None
    assert [m["content"] for m in session.messages] == ["after clear 0 \U0001f9ea"]
    assert session.settings == {"hash": ',"hash":"', "t": 0.25}


def test_modes_and_lock_files(populated: Path) -> None:
    for folder in (populated, populated / "sessions", populated / "locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for sid in SESSION_IDS:
        log = spec_log(populated, sid)
        lock = populated / "locks" / f"{spec_hash(sid)}.lock"
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert lock.stat().st_size == 0
        # The active log is the session's only *.jsonl file.
        assert sorted(log.parent.glob("*.jsonl")) == [log]
    assert len(list((populated / "sessions").iterdir())) == len(SESSION_IDS)


def test_torn_tail_is_ignored_by_readers_and_cut_by_the_next_writer(populated: Path) -> None:
    sid = SESSION_IDS[0]
    log = spec_log(populated, sid)
    whole = log.read_bytes()
    with log.open("ab") as f:
        f.write(b'{"v":1,"seq":9,"type":"cleared","at":"20')  # a crashed append
    assert spec_read(log.read_bytes()) == spec_read(whole)
    with Journal(populated) as j:
        assert j.get(sid).version == 8
        j.clear(sid)
    after = log.read_bytes()
    assert after.startswith(whole)
    assert after.count(b"\n") == whole.count(b"\n") + 1
    assert [e.seq for e in spec_read(after)][-2:] == [8, 9]


def test_missing_or_empty_log_means_no_session(root: Path) -> None:
    with Journal(root) as j:
        j.create("s")
        log = spec_log(root, "s")
        log.write_bytes(b"")
        assert spec_fold(spec_read(log.read_bytes())) is None
        assert not j.exists("s")
        log.write_bytes(b'{"v":1,"seq":1')  # only a torn tail
        assert spec_read(log.read_bytes()) == []
        assert not j.exists("s")


# -- lines written from the spec alone: journal reads them and appends after them -------------


def spec_line(
    seq: int,
    kind: str,
    at: str,
    actor: str | None,
    data: dict[str, Any],
    prev: str,
    *,
    body: tuple[bytes, str] | None = None,
    extra: dict[str, Any] | None = None,
    version: int = 1,
) -> tuple[bytes, str]:
    """Section 3 as a writer: sealed members in order, hash, then the body. (line, hash)"""

    def dump(value: Any) -> bytes:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")

    if body is not None:
        salt, content = body
        data = {**data, "content_sha256": hashlib.sha256(salt + content.encode()).hexdigest()}
    members = {"v": version, "seq": seq, "type": kind, "at": at, "actor": actor, "data": data, "prev": prev}
    sealed = dump({**members, **(extra or {})})[:-1]
    digest = hashlib.sha256(sealed).hexdigest()
    tail = b'"}' if body is None else spec_body(body[0].hex(), body[1])
    return sealed + HASH_KEY + digest.encode() + tail + b"\n", digest


def write_spec_log(root: Path, session_id: str, lines: list[bytes]) -> Path:
    log = spec_log(root, session_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"".join(lines))
    return log


def test_a_log_written_from_the_spec_is_read_and_extended_by_journal(root: Path) -> None:
    sid = "written elsewhere \u2028"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    message, h2 = spec_line(
        2,
        "message_added",
        "2025-01-01T00:00:01.000001Z",
        "bob",
        {"id": "m1", "role": "user", "metadata": {"hash": "x"}, "references": []},
        h1,
        body=(os.urandom(16), TRICKY),
    )
    settings, _ = spec_line(
        3, "settings_changed", "2025-01-01T00:00:02Z", None, {"set": {"a": 1}, "unset": ["b"]}, h2
    )
    log = write_spec_log(root, sid, [created, message, settings])
    with Journal(root) as j:
        assert as_spec(j.get(sid)) == spec_fold(spec_read(log.read_bytes()))
        j.add_message(sid, "assistant", "reply")
    events = spec_read(log.read_bytes())
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[-1].prev == events[-2].hash


def test_unknown_members_are_ignored_by_both_readers(root: Path) -> None:
    sid = "evolving"
    created, h1 = spec_line(
        1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid, "later": 1}, GENESIS, extra={"x": 2}
    )
    message, _ = spec_line(
        2,
        "message_added",
        "2025-01-01T00:00:01Z",
        None,
        {"id": "m1", "role": "user", "new": [1]},  # metadata and references left to defaults
        h1,
        body=(b"\x00" * 16, "hi"),
    )
    log = write_spec_log(root, sid, [created, message])
    spec_session = spec_fold(spec_read(log.read_bytes()))
    assert spec_session is not None
    assert spec_session.messages[0]["metadata"] == {}
    with Journal(root) as j:
        assert as_spec(j.get(sid)) == spec_session


@pytest.mark.parametrize(
    ("version", "kind"),
    [(3, "cleared"), (17, "cleared"), (1, "message_pinned")],
    ids=["v3", "v17", "unknown-type"],
)
def test_newer_lines_are_unsupported_in_both_readers(root: Path, version: int, kind: str) -> None:
    sid = "upgraded"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    newer, _ = spec_line(2, kind, "2025-01-01T00:00:01Z", None, {}, h1, version=version)
    log = write_spec_log(root, sid, [created, newer])
    with pytest.raises(Unsupported) as ours:
        spec_read(log.read_bytes())
    assert (ours.value.line, ours.value.offset) == (2, len(created))
    with pytest.raises(UnsupportedFormatError) as theirs:
        journal_events(root, sid)
    assert (theirs.value.line, theirs.value.offset) == (2, len(created))


# -- version 2: new event types, before=, bodies on edits, erased bodies (sections 5.5-5.7, 10) --


def spec_erase(line: bytes, seq: int) -> bytes:
    """Section 10 as a writer: ``line`` (without its 0x0A) with its body erased naming ``seq``,
    padded with spaces to the same length."""
    end = line.rfind(HASH_KEY) + len(HASH_KEY) + 64
    erased = line[:end] + b'","body":{"redacted":' + str(seq).encode() + b"}"
    assert len(erased) < len(line), "too short to erase"
    return erased + b" " * (len(line) - len(erased) - 1) + b"}"


def line_version(line: bytes) -> int:
    return 1 if line.startswith(b'{"v":1,') else 2 if line.startswith(b'{"v":2,') else 0


def test_a_log_using_every_version_2_feature_verifies_and_folds_to_what_journal_returns(
    root: Path, tmp_path: Path
) -> None:
    sid = "every v2 feature \u2028"
    with Journal(root, fsync="never") as j:
        j.create(sid, actor="creator")
        a = j.add_message(sid, "user", "a secret")
        c = j.add_message(sid, "assistant", TRICKY, metadata=HASHY_METADATA, references=[{"hash": 1}])
        b = j.add_message(sid, "user", "inserted", before=c.id, actor="bob")
        j.add_messages(sid, [{"role": "user", "content": "d"}, {"role": "assistant", "content": "e"}])
        j.pop_message(sid)
        j.remove_message(sid, a.id, actor="mod")
        j.edit_message(sid, c.id, "edited secret \u2028", metadata={"v": 2})
        j.edit_message(sid, b.id, "edited, kept")  # metadata None: kept as it was
        j.redact_message(sid, c.id, reason="erasure request #1", actor="privacy")
        j.redact_message(sid, a.id, reason="no longer visible")  # removed earlier: nothing visible changes
        j.update_settings(sid, {"k": 1})
        j.add_message(sid, "system", "before the clear")
        j.clear(sid)
        j.add_messages(sid, [{"role": "user", "content": "again"}], replace=True)
        j.add_message(sid, "assistant", "first", before=j.get(sid).messages[0].id)
        expected = as_spec(j.get(sid))
        replays = [as_spec(j.replay(sid, at=k)) for k in range(1, expected.version + 1)]
        theirs = [(e.seq, e.type, e.at, e.actor) for e in j.events(sid)]
    log = spec_log(root, sid)
    raw = log.read_bytes()
    events = spec_read(raw)
    assert [(e.seq, e.type, e.at, e.actor) for e in events] == theirs
    assert {e.type for e in events} == set(TYPES)
    assert spec_fold(events) == expected
    assert [spec_fold(events[:k]) for k in range(1, len(events) + 1)] == replays
    # The writer rule at the top of the doc: v 2 only for a line version 1 cannot hold.
    for line, event in zip(raw.split(b"\n"), events, strict=False):
        needs_v2 = event.type in V2_TYPES or event.data.get("before") is not None
        assert line_version(line) == (2 if needs_v2 else 1), event
    # Section 10: the add and the edit of c, and the add of a, are erased naming their redaction.
    redactions = {e.data["id"]: e.seq for e in events if e.type == "message_redacted"}
    erased = [(e.type, e.data["id"], e.redacted_by) for e in events if e.redacted_by is not None]
    assert erased == [
        ("message_added", a.id, redactions[a.id]),
        ("message_added", c.id, redactions[c.id]),
        ("message_edited", c.id, redactions[c.id]),
    ]
    assert b"secret" not in raw
    assert TRICKY.encode() not in raw
    session = spec_fold(events)
    assert session is not None
    # Replayed before its redaction, an erased message already reads as redacted (section 9).
    before_redaction = spec_fold(events[: redactions[c.id] - 1])
    assert before_redaction is not None
    shown = {m["id"]: m for m in before_redaction.messages}
    assert (shown[c.id]["content"], shown[c.id]["redacted"]) == ("", True)
    assert shown[c.id]["edited_at"] is not None
    assert (shown[b.id]["content"], shown[b.id]["redacted"]) == ("edited, kept", False)
    assert [m["id"] for m in before_redaction.messages] == [
        b.id,
        c.id,
        m_id(shown, "d"),
    ]
    # The doc's Python checker (section 12) accepts the log too.
    script = tmp_path / "check_log.py"
    script.write_text(doc_script("# check_log.py"), "utf-8")
    result = subprocess.run([sys.executable, script, log], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, f"{len(events)} lines verified\n"), result.stderr


def m_id(shown: dict[str, dict[str, Any]], content: str) -> str:
    (found,) = [mid for mid, m in shown.items() if m["content"] == content]
    return found


def spec_v2_log(sid: str) -> tuple[list[bytes], list[str]]:
    """A version-2 log written from the spec alone; lines 2 and 5 are erased by seq 7."""
    t = "2025-01-01T00:00:0{}Z".format
    salt = bytes(range(16))
    lines: list[bytes] = []
    hashes = [GENESIS]

    def add(kind: str, data: dict[str, Any], version: int, **kw: Any) -> None:
        line, digest = spec_line(
            len(lines) + 1, kind, t(len(lines)), "w", data, hashes[-1], version=version, **kw
        )
        lines.append(line)
        hashes.append(digest)

    message = {"role": "user", "metadata": {}, "references": []}
    add("created", {"session_id": sid}, 1)
    add("message_added", {"id": "m1", **message}, 1, body=(salt, "to be erased"))
    add("message_added", {"id": "m2", **message}, 1, body=(salt, "two"))
    add("message_added", {"id": "m3", **message, "before": "m2"}, 2, body=(salt, "three"))
    add("message_edited", {"id": "m1", "metadata": {"e": 1}}, 2, body=(salt, "erased edit \u2028"))
    add("message_removed", {"id": "m2"}, 2)
    add("message_redacted", {"id": "m1", "reason": "asked"}, 2)
    add("settings_changed", {"set": {"s": 1}}, 1)  # a version-1 line after version-2 lines
    for index in (1, 4):
        lines[index] = spec_erase(lines[index][:-1], 7) + b"\n"
    return lines, hashes[1:]


def test_a_version_2_log_written_from_the_spec_is_read_and_extended_by_journal(root: Path) -> None:
    sid = "v2 written elsewhere"
    lines, _ = spec_v2_log(sid)
    log = write_spec_log(root, sid, lines)
    events = spec_read(log.read_bytes())
    session = spec_fold(events)
    assert session is not None
    assert [(m["id"], m["content"], m["redacted"]) for m in session.messages] == [
        ("m1", "", True),
        ("m3", "three", False),
    ]
    assert session.messages[0]["edited_at"] == events[4].at
    assert session.messages[0]["metadata"] == {"e": 1}
    with Journal(root) as j:
        assert as_spec(j.get(sid)) == session
        assert [as_spec(j.replay(sid, at=k)) for k in range(1, 9)] == [
            spec_fold(events[:k]) for k in range(1, 9)
        ]
        j.add_message(sid, "assistant", "reply", before="m3")
        j.edit_message(sid, "m3", "three, edited")
        j.remove_message(sid, "m3")
        j.redact_message(sid, "m2", reason="not visible")
        expected = as_spec(j.get(sid))
    raw = log.read_bytes()
    after = spec_read(raw)
    assert [e.seq for e in after] == list(range(1, 13))
    assert after[-1].prev == after[-2].hash
    assert spec_fold(after) == expected
    assert [line_version(line) for line in raw.split(b"\n")[8:-1]] == [2, 2, 2, 2]
    assert after[2].redacted_by == 12  # m2's line, erased by journal naming its redaction


V1_CANNOT_HOLD: dict[str, tuple[str, dict[str, Any], bool]] = {
    "message_removed": ("message_removed", {"id": "m1"}, False),
    "message_edited": ("message_edited", {"id": "m1", "metadata": {}}, True),
    "message_redacted": ("message_redacted", {"id": "m1", "reason": "r"}, False),
    "before": ("message_added", {"id": "m2", "role": "user", "before": "m1"}, True),
}


@pytest.mark.parametrize("case", V1_CANNOT_HOLD, ids=list(V1_CANNOT_HOLD))
def test_a_version_1_line_of_a_version_2_feature_is_damage_in_both_readers(root: Path, case: str) -> None:
    kind, data, bodied = V1_CANNOT_HOLD[case]
    sid = "v1 cannot hold"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    added, h2 = spec_line(
        2,
        "message_added",
        "2025-01-01T00:00:01Z",
        None,
        {"id": "m1", "role": "user"},
        h1,
        body=(b"s" * 16, "x"),
    )
    body = (b"t" * 16, "y") if bodied else None
    good, _ = spec_line(3, kind, "2025-01-01T00:00:02Z", None, data, h2, body=body, version=2)
    write_spec_log(root, sid, [created, added, good])
    assert len(spec_read(created + added + good)) == len(journal_events(root, sid)) == 3
    bad, _ = spec_line(3, kind, "2025-01-01T00:00:02Z", None, data, h2, body=body, version=1)
    write_spec_log(root, sid, [created, added, bad])
    with pytest.raises(Damage, match="version-1") as ours:
        spec_read(created + added + bad)
    assert not isinstance(ours.value, Unsupported)  # damage, not a newer writer (section 7 step 3)
    with pytest.raises(CorruptLogError, match="version-1 line cannot hold") as theirs:
        journal_events(root, sid)
    assert not isinstance(theirs.value, UnsupportedFormatError)
    where = (3, len(created) + len(added))
    assert (ours.value.line, ours.value.offset) == (theirs.value.line, theirs.value.offset) == where


@pytest.mark.parametrize(
    "before",
    ["", None],
    ids=["empty", "null"],
)
def test_a_version_1_line_with_any_data_before_is_damage_in_both_readers(
    root: Path, before: str | None
) -> None:
    # Section 7 step 3: "A "v":1 line ... with data.before, is damage", whatever its value; and
    # section 5.2 types before as a string, so null is the wrong JSON type in any version. A
    # visible message with the id "" (any string is an id, section 5.2) lets the fold pass.
    sid = "v1 before"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    first, h2 = spec_line(
        2,
        "message_added",
        "2025-01-01T00:00:01Z",
        None,
        {"id": "", "role": "user"},
        h1,
        body=(b"s" * 16, "x"),
    )
    data = {"id": "m1", "role": "user", "before": before}
    bad, _ = spec_line(3, "message_added", "2025-01-01T00:00:02Z", None, data, h2, body=(b"s" * 16, "y"))
    write_spec_log(root, sid, [created, first, bad])
    with pytest.raises(Damage, match=r"data\.before") as ours:
        spec_read(created + first + bad)
    assert (ours.value.line, ours.value.offset) == (3, len(created) + len(first))
    with pytest.raises(CorruptLogError) as theirs:
        journal_events(root, sid)
    assert (theirs.value.line, theirs.value.offset) == (3, len(created) + len(first))


FORGED = {
    # name: (line whose body is erased, the seq it names, reason)
    "names-the-redaction": (2, 4, None),  # the genuine erasure: both readers accept it
    "names-a-cleared-event": (2, 5, "does not redact this message"),
    "names-another-messages-redaction": (3, 4, "does not redact this message"),
    "names-no-stored-seq": (2, 9, "not stored"),
    "names-itself": (2, 2, "not a later event"),
    "names-an-earlier-seq": (3, 1, "not a later event"),
    "names-seq-0": (2, 0, "not a later event"),
}


@pytest.mark.parametrize("case", FORGED, ids=list(FORGED))
def test_a_forged_erased_body_is_rejected_by_both_readers_at_its_line(root: Path, case: str) -> None:
    number, names, reason = FORGED[case]
    sid = "forged"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    message = {"role": "user", "metadata": {}, "references": []}
    m1, h2 = spec_line(
        2, "message_added", "2025-01-01T00:00:01Z", None, {"id": "m1", **message}, h1, body=(b"a" * 16, "one")
    )
    m2, h3 = spec_line(
        3, "message_added", "2025-01-01T00:00:02Z", None, {"id": "m2", **message}, h2, body=(b"b" * 16, "two")
    )
    redacted, h4 = spec_line(
        4, "message_redacted", "2025-01-01T00:00:03Z", None, {"id": "m1", "reason": "r"}, h3, version=2
    )
    cleared, _ = spec_line(5, "cleared", "2025-01-01T00:00:04Z", None, {}, h4)
    lines = [created, m1, m2, redacted, cleared]
    lines[number - 1] = spec_erase(lines[number - 1][:-1], names) + b"\n"
    log = write_spec_log(root, sid, lines)
    data = log.read_bytes()
    if reason is None:
        with Journal(root) as j:
            assert as_spec(j.replay(sid)) == spec_fold(spec_read(data))
        return
    where = (number, sum(map(len, lines[: number - 1])))
    with pytest.raises(Damage, match=reason) as ours:
        spec_read(data)
    forged = f"its content was erased naming seq {names}, .*{reason}"
    with Journal(root) as j, pytest.raises(CorruptLogError, match=forged) as theirs:
        j.replay(sid)
    assert (ours.value.line, ours.value.offset) == (theirs.value.line, theirs.value.offset) == where


# -- (b) folder names ---------------------------------------------------------------------------


def doc_folder_table() -> list[tuple[str, str]]:
    rows = re.findall(r"^\| `(\".*\")` \| `([^`]+)` \|$", DOC.read_text("utf-8"), re.MULTILINE)
    return [(json.loads(sid), folder) for sid, folder in rows]


def test_doc_folder_table_matches_the_derivation_and_the_disk(root: Path) -> None:
    table = doc_folder_table()
    assert len(table) >= 10
    with Journal(root, fsync="never") as j:
        for sid, folder in table:
            assert spec_dirname(sid) == folder, sid
            j.create(sid)
            assert spec_log(root, sid).is_file()
            assert (root / "locks" / f"{folder.split('~')[1]}.lock").is_file()
    assert sorted(p.name for p in (root / "sessions").iterdir()) == sorted(f for _, f in table)


def test_only_two_non_ascii_characters_lowercase_to_ascii() -> None:
    # Section 1.2 names U+0130 and U+212A as the only characters beyond ASCII whose lowercase
    # form holds an ASCII character; check the claim against this Python's Unicode tables.
    found = [
        char
        for char in map(chr, range(0x80, sys.maxunicode + 1))
        if not 0xD800 <= ord(char) <= 0xDFFF and any(c.isascii() for c in char.lower())
    ]
    assert found == ["\u0130", "\u212a"]
    assert "\u0130".lower() == "i\u0307"
    assert "\u212a".lower() == "k"


def test_a_log_in_a_folder_its_id_does_not_derive_is_not_listed(populated: Path) -> None:
    sid = SESSION_IDS[1]
    moved = populated / "sessions" / f"copied-by-hand~{spec_hash('someone else')}"
    spec_log(populated, sid).parent.rename(moved)
    with Journal(populated) as j:
        assert sid not in set(j.sessions())
        assert not j.exists(sid)
    assert spec_read((moved / "events.jsonl").read_bytes())[0].data == {"session_id": sid}


_ID_CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    st.sampled_from("AZaz09_-~. /\\\u0130\u212a\u00df\u03a3"),
)


@given(sid=st.text(_ID_CHARS, min_size=1, max_size=60))
def test_any_session_id_lands_in_the_folder_the_spec_derives(root: Path, sid: str) -> None:
    with Journal(root, fsync="never") as j:
        j.get_or_create(sid)
    session = spec_fold(spec_read(spec_log(root, sid).read_bytes()))
    assert session is not None
    assert session.id == sid


# -- (c) one-byte damage is caught by both readers -----------------------------------------------


def variants(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every one-byte change of a few kinds: flip bit 0, flip case (0x20), flip bit 7, newline."""
    for i, byte in enumerate(data):
        for new in {byte ^ 0x01, byte ^ 0x20, byte ^ 0x80, 0x0A} - {byte}:
            yield i, data[:i] + bytes([new]) + data[i + 1 :]


def test_every_one_byte_change_is_caught_by_both_readers(root: Path, tmp_path: Path) -> None:
    sid = "damage"
    with Journal(root, fsync="never") as j:
        j.create(sid)
        # Escapes that have a second spelling (\u001f, \", \\), and characters that must stay raw.
        j.add_message(
            sid, "user", 'a\u2028\x1f\U0001f600 "q" \\ / \x7f \u00e9', metadata={"hash": ',"hash":"'}
        )
        j.update_settings(sid, {"k": [1]}, remove=["r"])
        j.clear(sid)
    log = spec_log(root, sid)
    original = log.read_bytes()
    assert b"\\u001f" in original
    spec_events, journal_original = spec_read(original), journal_events(root, sid)
    assert len(spec_events) == len(journal_original) == 4
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    damaged_log = spec_log(copy, sid)
    for i, data in variants(original):
        damaged_log.write_bytes(data)
        try:
            ours: list[SpecEvent] | None = spec_read(data)
        except Damage:
            ours = None
        try:
            theirs: list[Event] | None = journal_events(copy, sid)
        except CorruptLogError:
            theirs = None
        where = f"byte {i} changed to {data[i]:#04x}"
        if i == len(original) - 1:
            # The last 0x0A damaged: to this minimal reader the last line becomes a torn tail
            # (section 13, "Cutting the end"); journal sees a whole valid line followed by a
            # stray byte, which no torn write can leave, and reports the damage (section 2).
            assert ours == spec_events[:-1], where
            assert theirs is None, where
        else:
            # Sealed bytes are pinned by the hash, the body's by its canonical form and digest.
            assert ours is None, f"{where}: the spec reader accepted it"
            assert theirs is None, f"{where}: journal accepted it"


def test_damage_location_is_the_same_in_both_readers(root: Path) -> None:
    sid = "where"
    with Journal(root) as j:
        j.create(sid)
        j.add_message(sid, "user", "one")
        j.add_message(sid, "user", "two")
    log = spec_log(root, sid)
    data = bytearray(log.read_bytes())
    second = data.index(b"\n") + 1
    data[second + data[second:].index(b'"user"') + 1] ^= 0x01  # the role of line 2
    log.write_bytes(bytes(data))
    with pytest.raises(Damage) as ours:
        spec_read(bytes(data))
    with pytest.raises(CorruptLogError) as theirs:
        journal_events(root, sid)
    assert (ours.value.line, ours.value.offset) == (theirs.value.line, theirs.value.offset) == (2, second)


def body_on_a_created_line(sid: str) -> bytes:
    created, _ = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    return created[:-2] + b',"body":{"salt":"","content":"smuggled"}}\n'


def duplicate_data_member(sid: str) -> bytes:
    created, _ = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    decoy = b'{"v":1,"data":{"session_id":"decoy"},'
    sealed = created[: created.rfind(HASH_KEY)].replace(b'{"v":1,', decoy, 1)
    return sealed + HASH_KEY + hashlib.sha256(sealed).hexdigest().encode() + b'"}\n'


def bad_utf8_in_the_body(root: Path, sid: str) -> bytes:
    with Journal(root) as j:
        j.create(sid)
        j.add_message(sid, "user", "x")
    log = spec_log(root, sid)
    data = log.read_bytes().replace(b'"salt"', b'"\xf3alt"')  # one byte, in the unsealed body
    log.write_bytes(data)
    return data


def sealed_body_on_a_created_line(sid: str) -> bytes:
    created, _ = spec_line(
        1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS, extra={"body": None}
    )
    return created


def test_journal_rejects_a_body_on_a_non_message_line(root: Path) -> None:
    line = body_on_a_created_line("bodied")
    with pytest.raises(Damage, match="a created line must not have a body"):
        spec_read(line)
    write_spec_log(root, "bodied", [line])
    with pytest.raises(CorruptLogError, match="a created line must not have a body"):
        journal_events(root, "bodied")


def test_journal_reports_invalid_utf8_in_a_body_member_name_as_corrupt(root: Path) -> None:
    data = bad_utf8_in_the_body(root, "utf8")
    with pytest.raises(Damage, match="not JSON"):
        spec_read(data)
    with pytest.raises(CorruptLogError) as theirs:
        journal_events(root, "utf8")
    assert (theirs.value.line, theirs.value.offset) == (2, data.index(b"\n") + 1)


def test_spec_reader_rejects_duplicates_and_reserved_names_in_the_sealed_part() -> None:
    # Section 7 step 3: a SHOULD. journal's reader does not look for these in the sealed part:
    # the hash covers those bytes, so only someone rewriting the chain could write them.
    with pytest.raises(Damage, match="duplicate member name"):
        spec_read(duplicate_data_member("s"))
    with pytest.raises(Damage, match="body member in its sealed part"):
        spec_read(sealed_body_on_a_created_line("s"))


# -- (d) the canonical body, UTC times and a non-decreasing at ----------------------------------

CANONICAL_CONTENTS = [
    *map(chr, range(0x100)),
    "\u2028",
    "\u2029",
    "\ud7ff\ue000\ufffd\uffff",
    "\U0001f600\U0001f469\u200d\U0001f4bb\U0010ffff",
    '"quoted" \'single\' \\ \\\\ \\" \\u0041 \\n /\\/',
    "".join(map(chr, range(0x100))) + "\u2028\u2029\U0001f600",
]


def test_spec_string_encoder_agrees_with_journal_written_bodies(root: Path) -> None:
    sid = "canonical"
    with Journal(root, fsync="never") as j:
        j.create(sid)
        for content in CANONICAL_CONTENTS:
            j.add_message(sid, "user", content)
    lines = spec_log(root, sid).read_bytes().split(b"\n")[1:-1]
    assert len(lines) == len(CANONICAL_CONTENTS)
    for line, content in zip(lines, CANONICAL_CONTENTS, strict=True):
        written = line[line.rfind(HASH_KEY) + len(HASH_KEY) + 64 :]
        salt = re.fullmatch(rb'","body":\{"salt":"([0-9a-f]{32})",.*', written, re.DOTALL)
        assert salt is not None, content
        assert written == spec_body(salt.group(1).decode(), content), repr(content)
        # The doc's Python checker relies on json.dumps writing the same bytes.
        assert spec_json_string(content) == json.dumps(content, ensure_ascii=False).encode()
    assert [e.content for e in spec_read(spec_log(root, sid).read_bytes())[1:]] == CANONICAL_CONTENTS


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("\x00", rb'"\u0000"'),
        ("\x08\t\n\x0b\x0c\r", rb'"\b\t\n\u000b\f\r"'),
        ("\x1f", rb'"\u001f"'),
        ('"\\', rb'"\"\\"'),
        ("/\x7f\x85\u2028\u2029", '"/\x7f\x85\u2028\u2029"'.encode()),
        ("\u00e9\U0001f600", '"\u00e9\U0001f600"'.encode()),
    ],
)
def test_spec_string_encoder_follows_the_table_of_section_3_4(content: str, expected: bytes) -> None:
    assert spec_json_string(content) == expected


RESPELL_CONTENT = "a\x1fb\u00e9\U0001f600/"
RESPELL_SALT = "0123456789abcdef" * 2
_C = spec_json_string(RESPELL_CONTENT).decode()
_S = RESPELL_SALT


def _body_json(content: str = _C, salt: str = _S) -> str:
    return '{"salt":"' + salt + '","content":' + content + "}"


# Other spellings of the same body: every one reads the same values, none is canonical.
RESPELLED = {
    "escape-case": _body_json(_C.replace("001f", "001F")),
    "escaped-e-acute": _body_json(_C.replace("\u00e9", "\\u00e9")),
    "surrogate-pair": _body_json(_C.replace("\U0001f600", "\\ud83d\\ude00")),
    "escaped-slash": _body_json(_C.replace("/", "\\/")),
    "reordered": '{"content":' + _C + ',"salt":"' + _S + '"}',
    "whitespace": _body_json().replace(",", ", ", 1),
    "duplicate-member": '{"salt":"' + _S + '",' + _body_json()[1:],
    "unknown-member": _body_json()[:-1] + ',"x":null}',
}


def test_the_respelled_bodies_read_the_same() -> None:
    canonical = spec_body(RESPELL_SALT, RESPELL_CONTENT)[len('","body":') : -1]
    assert canonical == _body_json().encode()
    assert json.loads(canonical) == {"salt": RESPELL_SALT, "content": RESPELL_CONTENT}
    for name, body in RESPELLED.items():
        assert body.encode() != canonical, name
        values = json.loads(body)
        values.pop("x", None)
        assert values == {"salt": RESPELL_SALT, "content": RESPELL_CONTENT}, name


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        *((body, "canonical|duplicate") for body in RESPELLED.values()),
        (_body_json(salt=_S.upper()), "lowercase"),
        (_body_json(salt=_S[:30]), "lowercase"),
        (_body_json(salt=_S[::-1]), "content_sha256"),
        (_body_json(content='"a\\u001fb"'), "content_sha256"),
        ("null", "body"),
        (None, "body"),
    ],
    ids=[*RESPELLED, "uppercase-salt", "short-salt", "other-salt", "other-content", "null", "none"],
)
def test_a_body_not_in_canonical_form_is_rejected_by_both_readers(
    root: Path, body: str | None, reason: str
) -> None:
    sid = "respelled"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:00Z", None, {"session_id": sid}, GENESIS)
    data = {"id": "m1", "role": "user", "metadata": {}, "references": []}
    salt = bytes.fromhex(RESPELL_SALT)
    good, _ = spec_line(
        2, "message_added", "2025-01-01T00:00:01Z", None, data, h1, body=(salt, RESPELL_CONTENT)
    )
    write_spec_log(root, sid, [created, good])
    assert len(spec_read(created + good)) == len(journal_events(root, sid)) == 2
    cut = good.rfind(HASH_KEY) + len(HASH_KEY) + 64
    tail = b'"}' if body is None else b'","body":' + body.encode() + b"}"
    bad = good[:cut] + tail + b"\n"
    write_spec_log(root, sid, [created, bad])
    with pytest.raises(Damage, match=reason) as ours:
        spec_read(created + bad)
    with pytest.raises(CorruptLogError, match=reason) as theirs:
        journal_events(root, sid)
    assert (
        (ours.value.line, ours.value.offset) == (theirs.value.line, theirs.value.offset) == (2, len(created))
    )


@pytest.mark.parametrize("at", ["2025-01-01T01:00:00+01:00", "2024-12-31T23:30:00-00:30"])
def test_a_time_not_in_utc_is_rejected_by_both_readers(root: Path, at: str) -> None:
    created, _ = spec_line(1, "created", at, None, {"session_id": "zoned"}, GENESIS)
    write_spec_log(root, "zoned", [created])
    with pytest.raises(Damage):
        spec_read(created)
    with pytest.raises(CorruptLogError, match="at is not in UTC"):
        journal_events(root, "zoned")


@pytest.mark.parametrize(
    "at", ["2025-01-01T00:00:00+00:00", "2025-01-01t00:00:00z", "2025-01-01T00:00:00.5Z"]
)
def test_journal_accepts_other_spellings_of_utc(root: Path, at: str) -> None:
    # Section 4: a MAY. The spec reader above rejects these; journal's reader accepts them.
    created, _ = spec_line(1, "created", at, None, {"session_id": "spelled"}, GENESIS)
    write_spec_log(root, "spelled", [created])
    (event,) = journal_events(root, "spelled")
    assert event.at.utcoffset() == timedelta(0)
    assert event.at.replace(microsecond=0) == datetime(2025, 1, 1, tzinfo=timezone.utc)


def test_an_at_earlier_than_the_last_is_rejected_by_both_readers(root: Path) -> None:
    sid = "dated"
    created, h1 = spec_line(1, "created", "2025-01-01T00:00:05Z", None, {"session_id": sid}, GENESIS)
    same, h2 = spec_line(2, "cleared", "2025-01-01T00:00:05Z", None, {}, h1)  # equal is fine
    earlier, _ = spec_line(3, "cleared", "2025-01-01T00:00:04.999999Z", None, {}, h2)
    write_spec_log(root, sid, [created, same])
    assert spec_fold(spec_read(created + same)) is not None
    assert len(journal_events(root, sid)) == 2
    write_spec_log(root, sid, [created, same, earlier])
    with pytest.raises(Damage, match="dated before") as ours:
        spec_fold(spec_read(created + same + earlier))
    with pytest.raises(CorruptLogError, match="event seq 3 is dated before the event it follows") as theirs:
        journal_events(root, sid)
    where = (3, len(created) + len(same))
    assert (ours.value.line, ours.value.offset) == (theirs.value.line, theirs.value.offset) == where


# -- (e) the doc's examples verify, so the doc cannot drift from the code ------------------------


def doc_blocks(info: str) -> list[str]:
    return re.findall(rf"^```{info}\n(.*?)^```$", DOC.read_text("utf-8"), re.MULTILINE | re.DOTALL)


def test_every_example_line_in_the_doc_verifies() -> None:
    blocks = doc_blocks("jsonl")
    complete = max(blocks, key=len).encode("utf-8")
    events = spec_read(complete)
    assert [e.type for e in events] == [
        "created",
        "message_added",
        "message_added",
        "settings_changed",
        "cleared",
    ]
    quoted = [line for block in blocks for line in block.encode("utf-8").splitlines()]
    # Sections 5.5 and 5.6 quote no example line, so message_removed and message_edited have none.
    assert {spec_check_line(line).type for line in quoted} == {*V1_TYPES, "message_redacted"}
    # The example of section 5.7 is the next line of the complete log (seq 6, chained to seq 5).
    extended = complete + doc_redaction_line() + b"\n"
    assert all(line in extended.split(b"\n") for line in quoted)
    session = spec_fold(events)
    assert session is not None
    assert (session.id, session.version, session.messages) == ("support-chat-42", 5, [])
    assert session.settings == {"model": "small", "temperature": 0.2}
    assert session.updated_at == datetime(2025, 3, 1, 9, 32, 10, 500000, tzinfo=timezone.utc)
    later = spec_fold(spec_read(extended))
    assert later is not None
    assert (later.version, later.messages, later.settings) == (6, [], session.settings)


def doc_redaction_line() -> bytes:
    (line,) = [
        line.encode("utf-8")
        for block in doc_blocks("jsonl")
        for line in block.splitlines()
        if '"type":"message_redacted"' in line
    ]
    return line


def test_the_doc_example_with_its_redaction_erased_is_read_by_both_readers(root: Path) -> None:
    # Section 10 on the doc's own log: seq 6 redacts the message of seq 2, whose body erased
    # naming 6 keeps the line's length and hash; both readers read it as redacted.
    complete = max(doc_blocks("jsonl"), key=len).encode("utf-8")
    lines = complete.split(b"\n")[:-1]
    erased = spec_erase(lines[1], 6)
    assert len(erased) == len(lines[1])
    data = b"\n".join([lines[0], erased, *lines[2:], doc_redaction_line()]) + b"\n"
    events = spec_read(data)
    assert (events[1].content, events[1].redacted_by) == ("", 6)
    sid = "support-chat-42"
    write_spec_log(root, sid, [data])
    with Journal(root) as j:
        assert as_spec(j.get(sid)) == spec_fold(events)
        for k in range(2, 7):  # erased in every replay, even before its redaction
            replayed = as_spec(j.replay(sid, at=k))
            assert replayed == spec_fold(events[:k])
            if k < 5:  # seq 5 clears the conversation
                assert (replayed.messages[0]["content"], replayed.messages[0]["redacted"]) == ("", True)


def test_the_doc_example_is_a_log_journal_reads(root: Path) -> None:
    complete = max(doc_blocks("jsonl"), key=len).encode("utf-8")
    sid = "support-chat-42"
    log = write_spec_log(root, sid, [complete])
    assert log.parent.name in DOC.read_text("utf-8")
    with Journal(root) as j:
        assert as_spec(j.get(sid)) == spec_fold(spec_read(complete))
        assert [e.seq for e in j.events(sid) if isinstance(e, MessageAdded)] == [2, 3]


def test_the_doc_hash_cut_example_matches_the_first_line() -> None:
    text = DOC.read_text("utf-8")
    first = max(doc_blocks("jsonl"), key=len).encode("utf-8").split(b"\n")[0]
    stated = re.search(r"SEALED: (\d+) bytes, hashed", text)
    assert stated is not None
    assert int(stated.group(1)) == first.rfind(HASH_KEY)
    assert hashlib.sha256(first[: first.rfind(HASH_KEY)]).hexdigest() in text


# -- (f) the doc's hand-check scripts work on real logs ------------------------------------------


def doc_script(first_line: str) -> str:
    scripts = [block for info in ("python", "sh") for block in doc_blocks(info)]
    matches = [block for block in scripts if block.startswith(first_line)]
    assert len(matches) == 1, first_line
    return matches[0]


def damage_one_hash_digit(log: Path) -> None:
    data = bytearray(log.read_bytes())
    at = data.rindex(HASH_KEY) + len(HASH_KEY)
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    log.write_bytes(bytes(data))


def test_doc_python_checker(populated: Path, tmp_path: Path) -> None:
    script = tmp_path / "check_log.py"
    script.write_text(doc_script("# check_log.py"), "utf-8")
    for sid in SESSION_IDS:
        log = spec_log(populated, sid)
        result = subprocess.run([sys.executable, script, log], capture_output=True, text=True, check=False)
        assert (result.returncode, result.stdout) == (0, "8 lines verified\n"), result.stderr
    damage_one_hash_digit(log)
    result = subprocess.run([sys.executable, script, log], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "line 8: hash mismatch" in result.stderr
    # A re-spelled escape in the unsealed body of line 2: same content, not canonical.
    log.write_bytes(log.read_bytes().replace(b"\\u001f", b"\\u001F", 1))
    result = subprocess.run([sys.executable, script, log], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "line 2: body is not in canonical form" in result.stderr


def test_doc_shell_checker(populated: Path, tmp_path: Path) -> None:
    # Skips where they are missing (a user's machine); fails on CI, which has them.
    bash, _, _ = need_programs(
        "bash", "jq", "sha256sum", reason="the documented checker runs them; jq: apt-get install jq"
    )
    script = tmp_path / "check-log.sh"
    script.write_text(doc_script("# check-log.sh"), "utf-8")
    for sid in SESSION_IDS:
        log = spec_log(populated, sid)
        result = subprocess.run([bash, script, log], capture_output=True, text=True, check=False)
        assert (result.returncode, result.stdout) == (0, "8 lines verified\n"), result.stderr
    with log.open("ab") as f:
        f.write(b'{"v":1,"seq":9,')  # a torn tail: skipped, not an error
    result = subprocess.run([bash, script, log], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "8 lines verified\n"), result.stderr
    damage_one_hash_digit(log)
    result = subprocess.run([bash, script, log], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (1, "line 8: hash mismatch\n")
