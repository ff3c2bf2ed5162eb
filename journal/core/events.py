"""Domain events: the things that can happen to a session.

Events are frozen msgspec Structs forming a tagged union on ``type``; the tag strings are the
names stored on disk, so renaming a class never changes the format. Every event carries ``seq``
(1, 2, 3, ... per session), ``at`` (an aware UTC datetime) and ``actor`` (who made the change,
or None). Values inside events are deeply immutable: mappings are read-only dicts
(``FrozenDict``) and lists become tuples, so an event handed to one caller cannot be changed
under another, while ``msgspec``, ``json`` and web frameworks still encode them as they are.

This module does no I/O and imports nothing else from the package but its errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, NoReturn, TypeAlias, TypeVar

import msgspec

from journal.errors import InvalidValueError

__all__ = [
    "EVENT_TYPES",
    "Cleared",
    "Created",
    "Event",
    "FrozenDict",
    "MessageAdded",
    "MessageEdited",
    "MessageRedacted",
    "MessageRemoved",
    "SettingsChanged",
    "event_from_dict",
    "freeze",
    "thaw",
]


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses every change: how events, messages and sessions hold mappings.

    A dict subclass rather than a ``MappingProxyType``: ``msgspec``, ``json`` and web
    frameworks encode it as the dict it is, and it is one object for the garbage collector
    where a proxy is two. ``copy()`` and ``dict(...)`` give a mutable copy.
    """

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only: change a copy (dict(value))")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        # copy and deepcopy rebuild it from a plain dict instead of item by item.
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


EMPTY_MAPPING: Mapping[str, Any] = FrozenDict()
_SCALARS = frozenset({str, int, float, bool, type(None)})  # what freeze returns as it is


def freeze(value: Any) -> Any:
    """Return a deeply immutable copy of a JSON value (dicts as ``FrozenDict``, lists as tuples)."""
    if isinstance(value, dict):
        # One shared empty mapping: most messages have no metadata, and each would be another
        # object for the garbage collector to track.
        if not value:
            return EMPTY_MAPPING
        if _SCALARS.issuperset(map(type, value.values())):
            return FrozenDict(value)  # flat, as most metadata is: one copy, no call per value
        return FrozenDict({k: freeze(v) for k, v in value.items()})
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


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON values (dicts, lists, str, int, float, bool, None; times as
    RFC 3339 strings): exactly what ``json.loads`` gives back for its JSON."""
    return _PLAIN.decode(msgspec.json.encode(value))


_PLAIN = msgspec.json.Decoder()


def from_plain(data: object, kind: type[_S], what: str) -> _S:
    """Build ``kind`` from plain values (``to_plain``'s output), or raise InvalidValueError
    naming the field at fault. Mappings and lists come back frozen, times must carry an offset.
    """
    try:
        built = msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise InvalidValueError(what, str(error)) from None
    changes: dict[str, Any] = {}
    for name in built.__struct_fields__:
        value = getattr(built, name)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise InvalidValueError(what, f"{name} {value.isoformat()!r} has no UTC offset")
            if value.utcoffset():
                changes[name] = value.astimezone(timezone.utc)  # the journal's times are UTC
        if isinstance(value, (dict, list, tuple)) and value:
            changes[name] = freeze(value)
    return msgspec.structs.replace(built, **changes) if changes else built


_S = TypeVar("_S", bound=msgspec.Struct)


class _EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    seq: int
    at: datetime
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values, ``type`` first: what ``json.dumps`` and web
        frameworks take, and what ``event_from_dict`` turns back into an equal event."""
        plain: dict[str, Any] = to_plain(self)
        return plain


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


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """The event an ``Event.to_dict()`` described (its ``type`` names the kind).

    Raises:
        InvalidValueError: not an event's dict (an unknown ``type``, a missing or mistyped
            field, a time without offset); the message names the field.
    """
    event: Event = from_plain(data, Event, "event")  # type: ignore[arg-type]
    return event
