"""The line envelope: one event as one self-checking, chained JSON line.

A line is ``SEALED ,"hash":"HASH" [,"body":BODY] }`` followed by ``\\n`` where

* ``SEALED`` is ``{"v":1,"seq":..,"type":..,"at":..,"actor":..,"data":{..},"prev":".."``
  (the object's opening brace and members, without its closing brace);
* ``HASH`` is the lowercase hex SHA-256 of the exact ``SEALED`` bytes, and ``prev`` is the
  previous line's ``HASH`` (64 zeros for seq 1), which makes the log a hash chain;
* ``BODY`` holds a message's erasable content and salt. ``SEALED`` only carries
  ``content_sha256 = SHA-256(salt || UTF-8 content)``, so a redaction can replace the body by
  ``{"redacted":N}`` (N: the seq of the redaction) without breaking the chain, and the salt
  keeps short contents from being guessed.

A line is written with ``v`` 1 when version-1 readers can read it exactly (the four original
event types, no insertion), and with ``v`` 2 otherwise, so old readers stop at the first line
they would misread instead of misreading it.

``docs/format.md`` is the normative description; this module is its reference implementation.
Decoding checks, in order: version, hash of the sealed bytes, JSON shape, content digest. A
line that fails any check raises :class:`LineError` and is never returned half-read.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, NamedTuple

import msgspec

from journal.core import events as ev
from journal.core.events import EVENT_TYPES, freeze
from journal.core.validate import MAX_DEPTH
from journal.errors import InvalidValueError, LineError

__all__ = [
    "FORMAT_VERSION",
    "GENESIS",
    "Decoded",
    "decode",
    "encode",
    "erase_body",
    "stored_hash",
]

FORMAT_VERSION = 2
GENESIS = "0" * 64

_HASH_KEY = b',"hash":"'
_HASH_KEY_LEN = len(_HASH_KEY)
_BODY_KEY = b',"body":'
_V_PREFIX = b'{"v":'
_KNOWN_PREFIXES = (b'{"v":1,', b'{"v":2,')
# Types a version-1 reader does not know: their lines are written with v 2.
_V2_TYPES = frozenset({"message_removed", "message_edited", "message_redacted"})
_HASH_LEN = 64
_ZERO = timedelta(0)

UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]


class Decoded(NamedTuple):
    """A checked line: the event, its chain link and where its hash sits in the line."""

    event: ev.Event
    prev: str
    hash: str
    hash_at: int


# -- wire structs: the exact member order of SEALED is the field order below ---------------


class _Sealed(msgspec.Struct):
    v: int
    seq: int
    type: str
    at: datetime
    actor: str | None
    data: Any
    prev: str


class _CreatedData(msgspec.Struct):
    session_id: str


class _MessageData(msgspec.Struct):
    id: str
    role: str
    content_sha256: str
    metadata: dict[str, Any] = {}
    references: list[Any] = []
    before: str | msgspec.UnsetType = msgspec.UNSET  # a string when present, never null


class _SettingsData(msgspec.Struct):
    set: dict[str, Any] = {}
    unset: list[str] = []


class _ClearedData(msgspec.Struct):
    pass


class _RemovedData(msgspec.Struct):
    id: str


class _EditedData(msgspec.Struct):
    id: str
    content_sha256: str
    metadata: dict[str, Any] = {}


class _RedactedData(msgspec.Struct):
    id: str
    reason: str


# What the writer encodes: the same members in the same order as the decoding structs above,
# holding the events' values as they are (FrozenDicts and tuples, which msgspec encodes itself).
class _MessageOut(msgspec.Struct, omit_defaults=True):
    id: str
    role: str
    content_sha256: str
    metadata: Any
    references: Any
    before: str | None = None  # omitted when None: such a line is exactly a version-1 line


class _EditedOut(msgspec.Struct):
    id: str
    content_sha256: str
    metadata: Any


class _SettingsOut(msgspec.Struct):
    set: Any
    unset: Any


class _Body(msgspec.Struct, omit_defaults=True):
    """``{"salt":..,"content":..}``, or ``{"redacted":N}`` once a redaction erased it."""

    salt: str | None = None
    content: str | None = None
    redacted: int | None = None


class _LineBase(msgspec.Struct, tag_field="type"):
    type_name: ClassVar[str]
    v: int
    seq: Annotated[int, msgspec.Meta(ge=1)]
    at: UtcTime
    actor: str | None
    prev: str
    hash: str


class _CreatedLine(_LineBase, tag="created"):
    type_name: ClassVar[str] = "created"
    data: _CreatedData


class _MessageLine(_LineBase, tag="message_added"):
    type_name: ClassVar[str] = "message_added"
    data: _MessageData
    body: _Body | None = None


class _SettingsLine(_LineBase, tag="settings_changed"):
    type_name: ClassVar[str] = "settings_changed"
    data: _SettingsData


class _ClearedLine(_LineBase, tag="cleared"):
    type_name: ClassVar[str] = "cleared"
    data: _ClearedData


class _RemovedLine(_LineBase, tag="message_removed"):
    type_name: ClassVar[str] = "message_removed"
    data: _RemovedData


class _EditedLine(_LineBase, tag="message_edited"):
    type_name: ClassVar[str] = "message_edited"
    data: _EditedData
    body: _Body | None = None


class _RedactedLine(_LineBase, tag="message_redacted"):
    type_name: ClassVar[str] = "message_redacted"
    data: _RedactedData


_Line = (
    _CreatedLine | _MessageLine | _SettingsLine | _ClearedLine | _RemovedLine | _EditedLine | _RedactedLine
)


_ENCODER = msgspec.json.Encoder()
_NO_METADATA: dict[str, Any] = {}
_LINE_DECODER = msgspec.json.Decoder(_Line)
_ANY_DECODER = msgspec.json.Decoder()


def content_digest(salt: bytes, content: str) -> str:
    """``SHA-256(salt || UTF-8 content)`` as lowercase hex."""
    return hashlib.sha256(salt + content.encode("utf-8")).hexdigest()


def encode(event: ev.Event, prev: str, *, salt: bytes | None = None) -> tuple[bytes, str, int]:
    """Encode ``event`` as one line chained to ``prev``.

    Returns:
        (line bytes ending in ``\\n``, the line's hash, the hash's offset within the line)

    Raises:
        InvalidValueError: a value cannot be encoded (nothing is written by the caller then).
        ValueError: the event is redacted (only ``erase_body`` makes redacted lines).
    """
    body: bytes = b""
    data: msgspec.Struct
    version = 1
    match event:
        case ev.Created():
            data = _CreatedData(event.session_id)
        case ev.MessageAdded():
            body, digest = _body(event.content, event.redacted_by, salt)
            data = _MessageOut(
                event.message_id,
                event.role,
                digest,
                event.metadata or _NO_METADATA,
                event.references,
                event.before,
            )
            version = 1 if event.before is None else 2
        case ev.SettingsChanged():
            data = _SettingsOut(event.changes, event.removed)
        case ev.Cleared():
            data = _ClearedData()
        case ev.MessageRemoved():
            data, version = _RemovedData(event.message_id), 2
        case ev.MessageEdited():
            body, digest = _body(event.content, event.redacted_by, salt)
            data = _EditedOut(event.message_id, digest, event.metadata or _NO_METADATA)
            version = 2
        case ev.MessageRedacted():
            data, version = _RedactedData(event.message_id, event.reason), 2
    sealed_obj = _Sealed(version, event.seq, event.type, event.at, event.actor, data, prev)
    try:
        sealed = _ENCODER.encode(sealed_obj)[:-1]
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise InvalidValueError(f"{event.type} event", str(exc)) from None
    digest_hex = hashlib.sha256(sealed).hexdigest()
    hash_at = len(sealed) + _HASH_KEY_LEN
    line = b"".join((sealed, _HASH_KEY, digest_hex.encode("ascii"), b'"', body, b"}\n"))
    return line, digest_hex, hash_at


def _body(content: str, redacted_by: int | None, salt: bytes | None) -> tuple[bytes, str]:
    """The canonical body holding ``content`` with a fresh salt (unless given), and the
    content's digest under that salt (see ``content_digest``)."""
    if redacted_by is not None:
        raise ValueError("a redacted event cannot be encoded: its content digest is gone")
    try:
        raw = content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError("content", f"not valid Unicode ({exc.reason})") from None
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.sha256(salt + raw).hexdigest()
    return _BODY_KEY + _ENCODER.encode(_Body(salt.hex(), content)), digest


def erase_body(line: bytes, redacted_by: int) -> bytes:
    """``line`` (a line with a body, without its newline) with its body erased, same length.

    The sealed part and the hash stay byte for byte, so the line and every later link still
    verify; the body becomes ``{"redacted":N}`` (N: the redaction's seq), padded with spaces
    before the line's closing brace so that no byte after it moves: positions that readers and
    snapshots hold stay true.
    """
    end = line.rfind(_HASH_KEY) + len(_HASH_KEY) + _HASH_LEN
    erased = line[:end] + b'"' + _BODY_KEY + _ENCODER.encode(_Body(redacted=redacted_by))
    pad = len(line) - len(erased) - 1
    if pad < 0:  # a body holds at least a 32-digit salt: never longer than its erasure
        raise ValueError("line too short to hold an erased body")
    return erased + b" " * pad + b"}"


def stored_hash(line: bytes) -> str | None:
    """The chain hash a line stores, unchecked (None: no hash member). Where a reader that
    trusts a head already only asks whether a line still is that head, as a byte compare."""
    cut = line.rfind(_HASH_KEY)
    if cut < 0:
        return None
    return line[cut + len(_HASH_KEY) : cut + len(_HASH_KEY) + _HASH_LEN].decode("ascii", "replace")


def decode(line: bytes) -> Decoded:
    """Check and decode one line (without its ``\\n``).

    Raises:
        LineError: the line is damaged, altered, of the wrong shape, or from a newer format
            (``unsupported`` is then True).
    """
    if not line.startswith(_KNOWN_PREFIXES):
        _reject_version(line)
    cut = line.rfind(_HASH_KEY)
    if cut < 0:
        raise LineError("no hash member: line is damaged or truncated")
    hash_at = cut + len(_HASH_KEY)
    stored = line[hash_at : hash_at + _HASH_LEN]
    if hashlib.sha256(line[:cut]).hexdigest().encode("ascii") != stored:
        raise LineError("hash does not match the line's contents: damaged or edited", altered=True)
    tail = line[hash_at + _HASH_LEN :]
    if tail != b'"}' and not (tail.startswith(b'"' + _BODY_KEY) and tail.endswith(b"}")):
        raise LineError("unexpected bytes after the hash member")
    try:
        raw = _LINE_DECODER.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        if isinstance(exc, msgspec.ValidationError):
            _reject_unknown_type(line)
        raise LineError(f"not a valid event: {exc}") from None
    if raw.at.utcoffset() != _ZERO:
        raise LineError("at is not in UTC")
    if raw.v == 1 and (
        raw.type_name in _V2_TYPES or (isinstance(raw, _MessageLine) and raw.data.before is not msgspec.UNSET)
    ):
        raise LineError(f"a version-1 line cannot hold what this {raw.type_name} line holds")
    if isinstance(raw, (_MessageLine, _EditedLine)):
        # The body is outside the hash, so only its exact canonical bytes are accepted: no
        # duplicate members, no re-spelled escapes, nothing smuggled beside the content.
        if raw.body is not None and not _canonical(raw.body, tail):
            raise LineError("message body is not in canonical form")
    elif tail != b'"}':
        raise LineError(f"a {raw.type_name} line must not have a body")
    try:
        event = _event(raw)
    except RecursionError:
        # Writers refuse values nested deeper than MAX_DEPTH; only a forged line gets here.
        raise LineError(f"values nested deeper than {MAX_DEPTH} levels") from None
    return Decoded(event, raw.prev, raw.hash, hash_at)


def _canonical(body: _Body, tail: bytes) -> bool:
    """Whether the bytes after the hash spell ``body`` exactly (an erased one may be padded)."""
    spelled = b'"' + _BODY_KEY + _ENCODER.encode(body)
    if body.redacted is None:
        return tail == spelled + b"}"
    return tail.startswith(spelled) and tail[len(spelled) : -1].strip(b" ") == b""


def _reject_version(line: bytes) -> None:
    if line.startswith(_V_PREFIX) and b"," in line:
        digits = line[len(_V_PREFIX) : line.find(b",")]
        if digits.isdigit() and len(digits) <= 9 and int(digits) > FORMAT_VERSION:
            raise LineError(
                f"format version {int(digits)} is newer than this reader ({FORMAT_VERSION})",
                unsupported=True,
            )
    raise LineError('not a journal line: it must start with {"v":1, or {"v":2,')


def _reject_unknown_type(line: bytes) -> None:
    try:
        kind = _ANY_DECODER.decode(line).get("type")
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, AttributeError):
        return
    if isinstance(kind, str) and kind not in EVENT_TYPES:
        raise LineError(f"unknown event type {kind!r} (written by a newer journal?)", unsupported=True)


def _content(body: _Body | None, digest: str, seq: int) -> tuple[str, int | None]:
    """The checked content of a body, or ("", N) for a body erased by redaction N."""
    if body is None:
        raise LineError("message has no body (content missing)")
    if body.redacted is not None:
        if body.salt is not None or body.content is not None:
            raise LineError("a redacted body must hold nothing but the redaction's seq")
        if body.redacted <= seq:
            raise LineError(
                f"its content was erased naming seq {body.redacted}, which is not a later event", altered=True
            )
        return "", body.redacted
    if body.salt is None or body.content is None:
        raise LineError("message body must hold salt and content")
    try:
        salt = bytes.fromhex(body.salt)
    except ValueError:
        salt = b""
    if len(salt) != 16 or salt.hex() != body.salt:
        raise LineError("message body salt is not 32 lowercase hex digits")
    if content_digest(salt, body.content) != digest:
        raise LineError("message content does not match its content_sha256", altered=True)
    return body.content, None


def _event(raw: _Line) -> ev.Event:
    match raw:
        case _MessageLine():
            content, redacted_by = _content(raw.body, raw.data.content_sha256, raw.seq)
            return ev.MessageAdded(
                seq=raw.seq,
                at=raw.at,
                actor=raw.actor,
                message_id=raw.data.id,
                role=raw.data.role,
                content=content,
                metadata=freeze(raw.data.metadata),
                references=freeze(raw.data.references),
                before=None if raw.data.before is msgspec.UNSET else raw.data.before,
                redacted_by=redacted_by,
            )
        case _CreatedLine():
            return ev.Created(seq=raw.seq, at=raw.at, actor=raw.actor, session_id=raw.data.session_id)
        case _SettingsLine():
            return ev.SettingsChanged(
                seq=raw.seq,
                at=raw.at,
                actor=raw.actor,
                changes=freeze(raw.data.set),
                removed=tuple(raw.data.unset),
            )
        case _ClearedLine():
            return ev.Cleared(seq=raw.seq, at=raw.at, actor=raw.actor)
        case _RemovedLine():
            return ev.MessageRemoved(seq=raw.seq, at=raw.at, actor=raw.actor, message_id=raw.data.id)
        case _EditedLine():
            content, redacted_by = _content(raw.body, raw.data.content_sha256, raw.seq)
            return ev.MessageEdited(
                seq=raw.seq,
                at=raw.at,
                actor=raw.actor,
                message_id=raw.data.id,
                content=content,
                metadata=freeze(raw.data.metadata),
                redacted_by=redacted_by,
            )
        case _RedactedLine():
            return ev.MessageRedacted(
                seq=raw.seq, at=raw.at, actor=raw.actor, message_id=raw.data.id, reason=raw.data.reason
            )
    raise AssertionError("unreachable: _Line is a closed union")
