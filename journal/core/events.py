"""Domain events: the things that can happen to a session.

Events are frozen msgspec Structs forming a tagged union on ``type``; the tag strings are the
names stored on disk, so renaming a class never changes the format. Every event carries ``seq``
(1, 2, 3, ... per session), ``at`` (an aware UTC datetime) and ``actor`` (who made the change,
or None). Values inside events are deeply immutable: mappings are read-only and lists become
tuples, so an event handed to one caller cannot be changed under another.

This module does no I/O and imports nothing else from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

import msgspec

__all__ = [
    "EVENT_TYPES",
    "Cleared",
    "Created",
    "Event",
    "MessageAdded",
    "MessageEdited",
    "MessageRedacted",
    "MessageRemoved",
    "SettingsChanged",
    "freeze",
    "thaw",
]

EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """Return a deeply immutable copy of a JSON value (dicts read-only, lists as tuples)."""
    if isinstance(value, dict):
        # One shared empty mapping: most messages have no metadata, and each proxy would be
        # another object for the garbage collector to track.
        return MappingProxyType({k: freeze(v) for k, v in value.items()}) if value else EMPTY_MAPPING
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value) if value else ()
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable copy of a frozen value: read-only mappings as dicts, tuples as lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class _EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    seq: int
    at: datetime
    actor: str | None = None


class Created(_EventBase, frozen=True, kw_only=True, tag="created"):
    """The session came into existence; always ``seq`` 1 of its log."""

    type: ClassVar[str] = "created"
    session_id: str


class MessageAdded(_EventBase, frozen=True, kw_only=True, tag="message_added"):
    """A message was appended to the conversation.

    ``message_id`` is unique within the session; ``metadata`` and ``references`` are the
    caller's JSON values, stored as given. ``before`` names the visible message it was
    inserted in front of (None: appended). ``redacted_by`` is the seq of the
    ``message_redacted`` event that erased ``content`` from storage (``content`` is then "").
    """

    type: ClassVar[str] = "message_added"
    message_id: str
    role: str
    content: str
    metadata: Mapping[str, Any] = EMPTY_MAPPING
    references: tuple[Any, ...] = ()
    before: str | None = None
    redacted_by: int | None = None


class SettingsChanged(_EventBase, frozen=True, kw_only=True, tag="settings_changed"):
    """Settings keys were set (``changes``) and/or removed (``removed``)."""

    type: ClassVar[str] = "settings_changed"
    changes: Mapping[str, Any] = EMPTY_MAPPING
    removed: tuple[str, ...] = ()


class Cleared(_EventBase, frozen=True, kw_only=True, tag="cleared"):
    """The visible conversation was emptied; settings stay and the log keeps every message."""

    type: ClassVar[str] = "cleared"


class MessageRemoved(_EventBase, frozen=True, kw_only=True, tag="message_removed"):
    """A visible message left the conversation (undo, delete); the log keeps it."""

    type: ClassVar[str] = "message_removed"
    message_id: str


class MessageEdited(_EventBase, frozen=True, kw_only=True, tag="message_edited"):
    """A visible message's content and metadata were replaced; the log keeps the old ones.

    ``redacted_by`` as for ``MessageAdded``: a later redaction erased this ``content``.
    """

    type: ClassVar[str] = "message_edited"
    message_id: str
    content: str
    metadata: Mapping[str, Any] = EMPTY_MAPPING
    redacted_by: int | None = None


class MessageRedacted(_EventBase, frozen=True, kw_only=True, tag="message_redacted"):
    """A message's content was erased from storage, everywhere, for ``reason``.

    Every earlier line carrying that content (its ``message_added`` and any ``message_edited``)
    keeps its sealed part and hash, so the chain still verifies; only the content is gone.
    """

    type: ClassVar[str] = "message_redacted"
    message_id: str
    reason: str


Event: TypeAlias = (
    Created | MessageAdded | SettingsChanged | Cleared | MessageRemoved | MessageEdited | MessageRedacted
)
"""Any journal event (a tagged union on ``type``)."""

EVENT_TYPES: tuple[str, ...] = (
    "created",
    "message_added",
    "settings_changed",
    "cleared",
    "message_removed",
    "message_edited",
    "message_redacted",
)
