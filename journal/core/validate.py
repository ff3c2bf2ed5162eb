"""Argument checks shared by every write: bad input raises before anything is written."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from journal.core.events import EMPTY_MAPPING, FrozenDict
from journal.core.state import Session
from journal.errors import ConflictError, InvalidSessionIdError, InvalidValueError, SessionNotFoundError

# How deep a caller's JSON value may nest; and the integer range every JSON reader worth the
# name and MessagePack (snapshots) can hold exactly.
MAX_DEPTH = 64
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1

__all__ = [
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "check_actor",
    "check_session_id",
    "check_text",
    "check_version",
    "freeze_json",
    "mapping",
    "plain_str",
    "precondition",
    "sequence",
    "stop_condition",
]


def precondition(sid: str, state: Session | None, expected: int | None) -> Session:
    """``state`` if the session exists and is at ``expected`` (when given); raises otherwise."""
    if state is None:
        raise SessionNotFoundError(sid)
    if expected is not None and expected != state.version:
        raise ConflictError(sid, expected, state.version)
    return state


class Point(Protocol):
    """Anything placed in a session's history: an event, or where a retention base ends."""

    @property
    def seq(self) -> int: ...

    @property
    def at(self) -> datetime: ...


def stop_condition(at: int | datetime | None) -> Callable[[Point], bool]:
    if at is None:
        return lambda event: False
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidValueError("at", "must be an aware datetime (with a time zone), not a naive one")
        moment = at
        return lambda event: event.at > moment
    if isinstance(at, int) and not isinstance(at, bool) and at >= 0:
        last = at
        return lambda event: event.seq > last
    raise InvalidValueError("at", f"must be a seq (int >= 0), an aware datetime or None; got {at!r}")


def check_text(value: object, field: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(field, f"must be a str, not {type(value).__name__}")
    if not allow_empty and not value:
        raise InvalidValueError(field, "must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(field, "is not valid Unicode (lone surrogate)") from None
    return plain_str(value)


def plain_str(value: str) -> str:
    """The characters of a ``str`` (or of a subclass) as a plain ``str``.

    ``str()`` would call a subclass's ``__str__``: for ``class Role(str, Enum)`` that gives
    ``"Role.USER"``, not the value ``"user"`` that ``json.dumps`` and msgspec store.
    """
    return str.__str__(value)


def check_actor(actor: object) -> str | None:
    return None if actor is None else check_text(actor, "actor")


def check_version(expected: object) -> int | None:
    if expected is None:
        return None
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
        raise InvalidValueError("expected_version", f"must be an int >= 0 or None; got {expected!r}")
    return int(expected)


def mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidValueError(field, f"must be a mapping, not {type(value).__name__}")
    return value


def sequence(value: object, field: str) -> list[Any]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidValueError(field, f"must be a list of values, not {type(value).__name__}")
    return list(value)


MAX_ID_LENGTH = 1024


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it can name a session, else raise InvalidSessionIdError.

    A session id is any non-empty ``str`` of at most ``MAX_ID_LENGTH`` characters without NUL
    and encodable as UTF-8 (no lone surrogates).
    """
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(session_id, f"must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise InvalidSessionIdError(session_id, "must not be empty")
    if len(session_id) > MAX_ID_LENGTH:
        raise InvalidSessionIdError(session_id, f"longer than {MAX_ID_LENGTH} characters")
    if "\x00" in session_id:
        raise InvalidSessionIdError(session_id, "must not contain NUL")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSessionIdError(session_id, "is not valid Unicode (lone surrogate)") from None
    return str.__str__(session_id)  # a str subclass (an enum) stands for its value, not its name


class _Refused(Exception):
    """Raised inside ``freeze_json``; carries the path to the refused value, innermost first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[object] = []


def freeze_json(value: Any, field: str) -> Any:
    """Check a caller's JSON value and return a deeply immutable copy of it.

    Accepted: None, bool, int in -2**63 .. 2**64-1, finite float, str, list/tuple, mapping with
    str keys, at most ``MAX_DEPTH`` levels deep. Mappings become read-only, lists tuples, and
    subclasses (enums, str subclasses) their plain base type, so what a caller gets back equals
    what a fresh replay of the log gives.

    Raises:
        InvalidValueError: naming the offending place, e.g. ``metadata['a'][2]``.
    """
    try:
        return _freeze(value, 0)
    except _Refused as refused:
        where = "".join(f"[{p!r}]" for p in reversed(refused.path))
        raise InvalidValueError(field + where, refused.reason) from None


def _freeze(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Refused("integers must lie in -2**63 .. 2**64-1")
        return value if kind is int else int(value)
    if kind is float or isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a JSON number")
        return value if kind is float else float(value)
    if kind is dict or isinstance(value, Mapping):
        if not value:
            return EMPTY_MAPPING
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Refused(f"key {key!r} is not a str")
                key = plain_str(key)
            try:
                out[key] = _freeze(item, depth + 1)
            except _Refused as refused:
                refused.path.append(key)
                raise
        return FrozenDict(out)
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_freeze(item, depth + 1))
            except _Refused as refused:
                refused.path.append(index)
                raise
        return tuple(items)
    if isinstance(value, str):
        return plain_str(value)
    raise _Refused(f"{type(value).__name__} is not a JSON value")
