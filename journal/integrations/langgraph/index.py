"""The index of a thread: what its session's events say, folded for reads.

A thread's session holds conversation messages (written by the LangChain adapter) and
bookkeeping messages of role ``ROLE`` (one per checkpoint, set of pending writes or
deletion; ``journal.integrations.langgraph`` says what each holds and why). ``apply`` folds
one event into a ``Thread``; the saver keeps one per thread and folds each new event once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from langchain_core.messages import BaseMessage

from journal.core import events as ev
from journal.core.events import thaw
from journal.core.state import Message, message_of
from journal.integrations.langchain import read_message

__all__ = [
    "CACHED_THREADS",
    "KEY",
    "LANGCHAIN",
    "ROLE",
    "Refs",
    "Saved",
    "Thread",
    "Typed",
    "added_event",
    "apply",
    "content_of",
    "decode",
    "decoded",
    "encode",
    "is_messages",
    "mentions",
    "ref",
    "said",
    "typed",
    "untyped",
]

ROLE = "langgraph"
"""The role of the bookkeeping messages (never visible: each is removed as it is written)."""

KEY = "langgraph"
LANGCHAIN = "langchain"
encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode
# Threads whose index a saver keeps in memory (least recently used first out).
CACHED_THREADS = 256

Version = str | int | float
Typed = tuple[str, bytes]


@dataclass(frozen=True)
class Refs:
    """A messages channel's value: the seqs of the conversation messages it holds."""

    seqs: tuple[int, ...]


@dataclass
class Saved:
    """One checkpoint of the index: where it hangs, its skeleton and its serialized metadata."""

    parent: str | None
    skeleton: Any  # the checkpoint without channel_values, as stored (frozen JSON)
    metadata: Typed | None  # None once its bookkeeping was erased


@dataclass
class Thread:
    """What a thread's session holds, folded from its events up to ``seq``."""

    created_at: datetime
    seq: int = 0
    checkpoints: dict[str, dict[str, Saved]] = field(default_factory=dict)
    # (ns, channel, version) -> a serialized value, or the seqs of the messages it holds.
    blobs: dict[tuple[str, str, Version], Typed | Refs] = field(default_factory=dict)
    # (ns, checkpoint id) -> (task id, idx) -> (task id, channel, value, task path)
    writes: dict[tuple[str, str], dict[tuple[str, int], tuple[str, str, Typed, str]]] = field(
        default_factory=dict
    )
    transcript: dict[int, Message] = field(default_factory=dict)
    seq_of: dict[str, int] = field(default_factory=dict)  # journal message id -> seq
    lc_ids: dict[str, int] = field(default_factory=dict)  # LangChain message id -> seq
    decoded: dict[int, BaseMessage] = field(default_factory=dict)
    same: dict[int, BaseMessage] = field(default_factory=dict)  # seq -> an object known equal
    # bookkeeping message id -> the keys its content holds, to forget them when it is erased
    held: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)


def ref(thread: Thread | None, fresh: list[BaseMessage], placed: dict[int, int], m: BaseMessage) -> int:
    """The seq of the stored message equal to ``m``, else -(1 + its index in ``fresh``)."""
    if thread is not None and isinstance(m.id, str):
        seq = thread.lc_ids.get(m.id)
        # LangGraph hands the same objects from step to step: identity spares comparing.
        if seq is not None and (thread.same.get(seq) is m or decoded(thread, seq) == m):
            thread.same[seq] = m
            return seq
    index = placed.get(id(m))
    if index is None:
        index = placed[id(m)] = len(fresh)
        fresh.append(m)
    return -1 - index


def added_event(m: Message) -> ev.MessageAdded:
    """The event that added ``m``, as ``Journal.events`` would give it."""
    return ev.MessageAdded(
        seq=m.seq,
        at=m.at,
        actor=m.actor,
        message_id=m.id,
        role=m.role,
        content=m.content,
        metadata=m.metadata,
    )


def is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, BaseMessage) for m in value)


def typed(value: Typed) -> list[str]:
    return [value[0], base64.b64encode(value[1]).decode("ascii")]


def untyped(value: Any) -> Typed | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], base64.b64decode(value[1])
    return None


def decoded(thread: Thread, seq: int) -> BaseMessage:
    message = thread.decoded.get(seq)
    if message is None:
        message = thread.decoded[seq] = read_message(thread.transcript[seq])
    return message


def content_of(text: str) -> dict[str, Any]:
    """A bookkeeping message's content as stored; {} once erased (or if it is not ours)."""
    if not text:
        return {}
    try:
        value = decode(text)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def apply(thread: Thread, event: ev.Event) -> None:
    """Fold one event of the thread's session into its index."""
    if isinstance(event, ev.MessageAdded):
        marker = event.metadata.get(KEY) if event.role == ROLE else None
        if isinstance(marker, Mapping):
            _bookkeeping(thread, event, marker)
        elif LANGCHAIN in event.metadata:
            message = message_of(event)
            thread.transcript[event.seq] = message
            thread.seq_of[event.message_id] = event.seq
            try:
                lc_id = thaw(event.metadata[LANGCHAIN])["payload"]["data"]["id"]
            except (KeyError, TypeError):
                lc_id = None
            if isinstance(lc_id, str):
                thread.lc_ids[lc_id] = event.seq
    elif isinstance(event, (ev.MessageEdited, ev.MessageRedacted)):
        seq = thread.seq_of.get(event.message_id)
        if seq is not None:
            old = thread.transcript[seq]
            if isinstance(event, ev.MessageEdited):
                changed = msgspec.structs.replace(
                    old, content=event.content, metadata=event.metadata or old.metadata, edited_at=event.at
                )
            else:
                changed = msgspec.structs.replace(old, content="", redacted=True)
            thread.transcript[seq] = changed
            thread.decoded.pop(seq, None)
            thread.same.pop(seq, None)
        elif isinstance(event, ev.MessageRedacted):
            _forget(thread, event.message_id)


def _bookkeeping(thread: Thread, event: ev.MessageAdded, marker: Mapping[str, Any]) -> None:
    kind = marker.get("kind")
    body = content_of(event.content)
    held: list[tuple[str, Any]] = []
    if kind == "checkpoint":
        ns, cid = str(marker.get("ns", "")), str(marker.get("id"))
        parent = marker.get("parent")
        thread.checkpoints.setdefault(ns, {})[cid] = Saved(
            parent=parent if isinstance(parent, str) else None,
            skeleton=marker.get("checkpoint", {}),
            metadata=untyped(body.get("metadata")),
        )
        held.append(("metadata", (ns, cid)))
        versions = marker.get("versions", {})
        stored = body.get("values", {})
        for channel, version in versions.items():
            key = (ns, channel, version)
            value = untyped(stored.get(channel)) if isinstance(stored, dict) else None
            refs = marker.get("messages", {}).get(channel)
            if refs is not None:
                thread.blobs[key] = Refs(tuple(r if r > 0 else event.seq + r for r in refs))
            elif value is not None:
                thread.blobs[key] = value
                held.append(("blob", key))
            else:
                thread.blobs.pop(key, None)
    elif kind == "writes":
        ns, cid = str(marker.get("ns", "")), str(marker.get("id"))
        task, path = str(marker.get("task")), str(marker.get("path", ""))
        values = body.get("values", [])
        store = thread.writes.setdefault((ns, cid), {})
        for i, (idx, channel) in enumerate(
            zip(marker.get("idx", ()), marker.get("channels", ()), strict=False)
        ):
            value = untyped(values[i]) if isinstance(values, list) and i < len(values) else None
            if value is None or (idx >= 0 and (task, idx) in store):
                continue
            store[(task, idx)] = (task, channel, value, path)
            held.append(("write", (ns, cid, task, idx)))
    elif kind == "delete":
        for ns, cid in marker.get("checkpoints", ()):
            thread.checkpoints.get(ns, {}).pop(cid, None)
            thread.writes.pop((ns, cid), None)
    if held:
        thread.held[event.message_id] = held


def said(event: ev.MessageAdded) -> list[str]:
    """The words of a conversation message: each value its transcript holds (the whole
    content for a message other code wrote)."""
    marker = event.metadata.get(LANGCHAIN)
    spans = marker.get("spans") if isinstance(marker, Mapping) else None
    if not spans:
        return [event.content] if event.content else []
    said: list[str] = []
    for _, start, end, kind in spans:
        piece = event.content[start:end]
        if kind == "json":
            try:
                said += [v for v in _leaves(decode(piece)) if isinstance(v, str)]
            except msgspec.DecodeError:
                said.append(piece)
        else:
            said.append(piece)
    return [s for s in said if s.strip()]


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, BaseMessage):
        yield from _leaves(value.content)
        yield from _leaves(value.additional_kwargs)
        yield from _leaves(getattr(value, "tool_calls", None))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def mentions(value: Any, needles: list[str]) -> bool:
    """Whether a string in ``value`` contains one of ``needles``."""
    return any(isinstance(leaf, str) and any(n in leaf for n in needles) for leaf in _leaves(value))


def _forget(thread: Thread, message_id: str) -> None:
    """A bookkeeping message was erased: what its content held is gone."""
    for what, key in thread.held.pop(message_id, ()):
        if what == "metadata":
            saved = thread.checkpoints.get(key[0], {}).get(key[1])
            if saved is not None:
                saved.metadata = None
        elif what == "blob":
            thread.blobs.pop(key, None)
        else:
            thread.writes.get((key[0], key[1]), {}).pop((key[2], key[3]), None)
