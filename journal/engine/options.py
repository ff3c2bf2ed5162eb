"""A Journal's configuration, in one place: every part reads it from here when it acts.

So a setting changed after the Journal was made (``journal.snapshot_every = 5``) takes effect
at the next write; the backend's own settings (``fsync``, ``lock_timeout``) are fixed when it
is opened and only shown here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from journal.errors import InvalidValueError

__all__ = ["FSYNC_POLICIES", "FsyncPolicy", "Options", "count", "fsync_policy", "seconds"]

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "interval", "never")


class Options:
    """The settings of one Journal (see ``Journal`` for what each means); checked on every set,
    read as plain attributes.

    Raises:
        InvalidValueError: a value out of its range (the attribute keeps its old value).
    """

    __slots__ = ("archive_after", "max_cached_sessions", "retention", "snapshot_bytes", "snapshot_every")

    archive_after: int | None
    max_cached_sessions: int
    retention: timedelta | None
    snapshot_bytes: int
    snapshot_every: int

    def __init__(
        self,
        *,
        max_cached_sessions: int = 1024,
        snapshot_every: int = 1000,
        snapshot_bytes: int = 1 << 20,
        archive_after: int | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self.max_cached_sessions = max_cached_sessions
        self.snapshot_every = snapshot_every
        self.snapshot_bytes = snapshot_bytes
        self.archive_after = archive_after
        self.retention = retention

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, _CHECKS[name](value, name))


def _archive_after(value: object, name: str) -> int | None:
    if value is not None and count(value, name) < 1:
        raise InvalidValueError(name, f"must be an int >= 1 or None; got {value!r}")
    return value  # type: ignore[return-value]


def _retention(value: object, name: str) -> timedelta | None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise InvalidValueError(name, f"must be a positive timedelta or None; got {value!r}")
    return value


def count(value: object, name: str) -> int:
    """``value`` if it is an int >= 0 (not a bool), else InvalidValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValueError(name, f"must be an int >= 0; got {value!r}")
    return value


def fsync_policy(value: object) -> FsyncPolicy:
    """``value`` if it names an fsync policy, else InvalidValueError."""
    for policy in FSYNC_POLICIES:
        if value == policy:
            return policy
    raise InvalidValueError("fsync", f"must be one of {', '.join(FSYNC_POLICIES)}; got {value!r}")


_CHECKS: dict[str, Callable[[object, str], object]] = {
    "archive_after": _archive_after,
    "max_cached_sessions": count,
    "retention": _retention,
    "snapshot_bytes": count,
    "snapshot_every": count,
}


def seconds(value: object, name: str) -> float:
    """``value`` if it is a number of seconds (negative: for ever), else InvalidValueError."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise InvalidValueError(name, f"must be a number of seconds; got {value!r}")
    return float(value)
