"""Points in a session's stored history, and the records and lines that pass between layers.

A ``Head`` is where a reader stands: just after event ``seq``, whose chain hash is ``hash``.
Its ``cursor`` is the backend's own position there (the files backend: the byte offsets of
the line's end and of its hash; PostgreSQL: nothing, rows are found by seq). Everything above
the storage seam passes cursors back unread: only the backend that made one reads it.
"""

from __future__ import annotations

import msgspec

from journal.core.events import Event

__all__ = ["Cursor", "Head", "Line", "Record"]

Cursor = tuple[int, ...]
"""A backend's position just after an event; opaque above the storage seam."""


class Head(msgspec.Struct, frozen=True):
    """A point in a session's history: just after event ``seq``.

    Attributes:
        seq: the seq of the last event read (the session's version there).
        hash: that event's chain hash.
        active: how many events the active part of the history holds up to here (what
            ``archive_after`` counts; 0 for an event already archived).
        cursor: the backend's position just after the event (see the module docstring).
    """

    seq: int
    hash: str
    active: int
    cursor: Cursor


class Record(msgspec.Struct, frozen=True):
    """One checked event as read from storage.

    Attributes:
        event: the event.
        head: the point just after it.
        line: where its line is stored, for messages: the line number in ``path`` of the
            reader (a seq where rows have no line numbers).
        offset: the line's byte offset there (-1: not known).
        size: the stored line's length in bytes, newline included.
    """

    event: Event
    head: Head
    line: int
    offset: int
    size: int


class Line(msgspec.Struct, frozen=True):
    """One event encoded to be stored: the bytes (ending in a newline), its seq, its chain
    hash, and where the hash starts within the bytes."""

    data: bytes
    seq: int
    hash: str
    hash_at: int
