"""Snapshot files: a session's folded state at one point of its log, checksummed.

A snapshot is a cache, never the truth: it records the state after event ``seq`` together
with where that event's line ends in the active log and its chain hash, so a reader can check
it against the log (see ``filestore``) and replay only the tail. Anything wrong with it
(missing, truncated, damaged, stale, another version) makes the reader ignore it.

The same encoding serves the archive *base* written when a retention policy drops old archive
segments: there it is the truth for the dropped part (see ``docs/compaction.md``).

File layout: ``MAGIC`` (8 bytes) + SHA-256 of the rest (32 bytes) + a MessagePack document.
MessagePack was chosen by measurement over JSON: for a 10k-message state it encoded 5x and
decoded 1.7x faster and came out 9 % smaller. Messages are stored so that a reader decodes only
those it reads (see ``_File.messages``).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload

import msgspec

from journal.core.codec import thaw_proxy
from journal.core.events import freeze
from journal.core.head import Head
from journal.core.state import Message, Messages, Session
from journal.errors import SnapshotError

__all__ = ["SNAPSHOT_VERSION", "decode_snapshot", "encode_snapshot", "shows_content"]

SNAPSHOT_VERSION = 1
MAGIC = b"JNLSNAP1"
_DIGEST = 32


class _Message(msgspec.Struct, array_like=True, gc=False, omit_defaults=True):
    id: str
    seq: int
    role: str
    content: str
    at: datetime
    metadata: Any  # a mapping when written (read-only ones via thaw_proxy), a dict when read
    references: Any
    actor: str | None
    # Trailing defaults are left out of the array, so a message never edited or redacted is
    # encoded exactly as before these fields existed.
    redacted: bool = False
    edited_at: datetime | None = None


class _File(msgspec.Struct, gc=False):
    v: int
    kind: str
    seq: int
    hash: str
    position: int
    hash_at: int
    line: int
    id: str
    created_at: datetime
    updated_at: datetime
    version: int
    settings: Any
    # Each message is encoded on its own and the encodings are concatenated, with the end
    # offset of each in ``offsets`` (little-endian uint64): a reader decodes only the
    # messages it reads, and the next snapshot copies these bytes instead of re-encoding.
    messages: bytes
    offsets: bytes


_ENCODER = msgspec.msgpack.Encoder(enc_hook=thaw_proxy)
_DECODER = msgspec.msgpack.Decoder(_File)
_MESSAGE_DECODER = msgspec.msgpack.Decoder(_Message)


class _LazyMessages(Sequence[Message]):
    """Messages decoded from a snapshot's bytes when read (and not kept: memory stays compact)."""

    __slots__ = ("_blob", "_ends")

    def __init__(self, blob: bytes, ends: array[int]) -> None:
        self._blob = blob
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> Message: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Message]: ...

    def __getitem__(self, index: int | slice) -> Message | Sequence[Message]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = self._ends[index - 1] if index > 0 else 0
        m = _MESSAGE_DECODER.decode(memoryview(self._blob)[start : self._ends[index]])
        return Message(
            id=m.id,
            seq=m.seq,
            role=m.role,
            content=m.content,
            at=m.at,
            metadata=freeze(m.metadata),
            references=freeze(m.references),
            actor=m.actor,
            redacted=m.redacted,
            edited_at=m.edited_at,
        )

    def raw(self, count: int) -> tuple[bytes, array[int]]:
        """The encodings of the first ``count`` messages and their end offsets."""
        ends = self._ends[:count]
        return self._blob[: ends[-1] if count else 0], ends


def _encode_messages(messages: Messages) -> tuple[bytes, bytes]:
    prefix, used, rest = messages._parts()
    if isinstance(prefix, _LazyMessages):
        blob, ends = prefix.raw(used)
        buf = bytearray(blob)
        ends = array("Q", ends)
        todo: Sequence[Message] = rest
    else:
        buf, ends, todo = bytearray(), array("Q"), list(messages)
    for m in todo:
        record = _Message(
            m.id, m.seq, m.role, m.content, m.at, m.metadata, m.references, m.actor, m.redacted, m.edited_at
        )
        _ENCODER.encode_into(record, buf, -1)
        ends.append(len(buf))
    if sys.byteorder != "little":
        ends.byteswap()
    return bytes(buf), ends.tobytes()


def shows_content(data: bytes, message_id: str) -> bool:
    """Whether snapshot bytes (a quarantined copy: read loosely, never trusted) may still show
    the content of ``message_id``: its state holds the message unredacted, or the bytes do not
    decode and name the message (what they hold cannot be told then)."""
    if message_id.encode() not in data:
        return False
    try:
        session, _ = decode_snapshot(data)
    except SnapshotError:
        return True
    index = session.messages.index_of(message_id)
    return index >= 0 and not session.messages[index].redacted


def encode_snapshot(session: Session, head: Head, *, kind: str = "snapshot") -> bytes:
    """The bytes of a snapshot of ``session`` taken at ``head`` (its seq must match).

    The head's cursor (at most two ints: the backend's own position) is kept in the file's
    ``position`` and ``hash_at`` members, its ``active`` count in ``line``, as the format has
    always named them (the files backend's byte offsets; 0 where a backend needs none).
    """
    if session.version != head.seq:
        raise ValueError(f"state is at version {session.version} but the head at seq {head.seq}")
    if len(head.cursor) > 2:
        raise ValueError(f"a snapshot holds a cursor of at most two ints, not {head.cursor!r}")
    position, hash_at = (*head.cursor, 0, 0)[:2]
    blob, offsets = _encode_messages(session.messages)
    payload = _ENCODER.encode(
        _File(
            SNAPSHOT_VERSION,
            kind,
            head.seq,
            head.hash,
            position,
            hash_at,
            head.active,
            session.id,
            session.created_at,
            session.updated_at,
            session.version,
            session.settings,
            blob,
            offsets,
        )
    )
    return MAGIC + hashlib.sha256(payload).digest() + payload


def decode_snapshot(data: bytes, *, kind: str = "snapshot") -> tuple[Session, Head]:
    """The state and head stored in ``data``.

    Raises:
        SnapshotError: truncated, damaged, of another version or kind, or inconsistent.
    """
    if not data.startswith(MAGIC):
        raise SnapshotError("not a snapshot file (bad magic)")
    digest, payload = data[len(MAGIC) : len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        raise SnapshotError("checksum mismatch (truncated or damaged)")
    try:
        raw = _DECODER.decode(payload)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise SnapshotError(f"undecodable: {exc}") from None
    if raw.v != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot format version {raw.v}, this reader knows {SNAPSHOT_VERSION}")
    if raw.kind != kind:
        raise SnapshotError(f"a {raw.kind!r} file where a {kind!r} was expected")
    if raw.version != raw.seq:
        raise SnapshotError(f"state version {raw.version} does not match seq {raw.seq}")
    ends = array("Q")
    try:
        ends.frombytes(raw.offsets)
    except ValueError:
        raise SnapshotError("message offsets are malformed") from None
    if sys.byteorder != "little":
        ends.byteswap()
    # The checksum vouches for the bytes as written; this catches a writer bug, cheaply.
    if (ends[-1] if ends else 0) != len(raw.messages):
        raise SnapshotError("message offsets do not match the message bytes")
    session = Session(
        id=raw.id,
        created_at=raw.created_at,
        updated_at=raw.updated_at,
        version=raw.version,
        messages=Messages(prefix=_LazyMessages(raw.messages, ends)),
        settings=freeze(raw.settings),
    )
    return session, Head(raw.seq, raw.hash, raw.line, (raw.position, raw.hash_at))
