"""Argument checks shared by every write: bad input raises before anything is written."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from journal.core.state import Session
from journal.errors import ConflictError, InvalidValueError, SessionNotFoundError

__all__ = [
    "check_actor",
    "check_text",
    "check_version",
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
