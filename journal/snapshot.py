"""Snapshot files: a session's folded state at one point of its log, checksummed.

A snapshot is a cache, never the truth: it records the state after event ``seq`` together
with where that event's line ends in the active log and its chain hash, so a reader can check
it against the log (see ``filestore``) and replay only the tail. Anything wrong with it
(missing, truncated, damaged, stale, another version) makes the reader ignore it.

The same encoding serves the archive *base* written when a retention policy drops old archive
segments: there it is the truth for the dropped part (see ``docs/compaction.md``).

File layout: ``MAGIC`` (8 bytes) + SHA-256 of the rest (32 bytes) + a MessagePack document.
MessagePack was chosen by measurement over JSON: for a 10k-message state it encoded 5x and
decoded 1.7x faster and came out 9 % smaller.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from journal.events import freeze
from journal.state import Message, Messages, Session
from journal.storage import Head

__all__ = ["SNAPSHOT_VERSION", "SnapshotError", "decode_snapshot", "encode_snapshot"]

SNAPSHOT_VERSION = 1
MAGIC = b"JNLSNAP1"
_DIGEST = 32


class SnapshotError(Exception):
    """A snapshot file cannot be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Message(msgspec.Struct, array_like=True):
    id: str
    seq: int
    role: str
    content: str
    at: datetime
    metadata: dict[str, Any]
    references: list[Any]
    actor: str | None


class _State(msgspec.Struct):
    id: str
    created_at: datetime
    updated_at: datetime
    version: int
    messages: list[_Message]
    settings: dict[str, Any]


class _File(msgspec.Struct):
    v: int
    kind: str
    seq: int
    hash: str
    position: int
    hash_at: int
    line: int
    state: _State


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_File)


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def encode_snapshot(session: Session, head: Head, *, kind: str = "snapshot") -> bytes:
    """The bytes of a snapshot of ``session`` taken at ``head`` (its seq must match)."""
    if session.version != head.seq:
        raise ValueError(f"state is at version {session.version} but the head at seq {head.seq}")
    state = _State(
        id=session.id,
        created_at=session.created_at,
        updated_at=session.updated_at,
        version=session.version,
        messages=[
            _Message(m.id, m.seq, m.role, m.content, m.at, _plain(m.metadata), _plain(m.references), m.actor)
            for m in session.messages
        ],
        settings=_plain(session.settings),
    )
    payload = _ENCODER.encode(
        _File(SNAPSHOT_VERSION, kind, head.seq, head.hash, head.position, head.hash_at, head.line, state)
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
    state = raw.state
    if state.version != raw.seq:
        raise SnapshotError(f"state version {state.version} does not match seq {raw.seq}")
    session = Session(
        id=state.id,
        created_at=state.created_at,
        updated_at=state.updated_at,
        version=state.version,
        messages=Messages(
            Message(
                id=m.id,
                seq=m.seq,
                role=m.role,
                content=m.content,
                at=m.at,
                metadata=freeze(m.metadata),
                references=freeze(m.references),
                actor=m.actor,
            )
            for m in state.messages
        ),
        settings=freeze(state.settings),
    )
    return session, Head(raw.seq, raw.hash, raw.position, raw.hash_at, raw.line)
