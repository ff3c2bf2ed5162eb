"""A point in a session's stored history, as every layer passes it around."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Head"]


class Head(NamedTuple):
    """A point in a session's log: just after event ``seq``.

    Attributes:
        seq: the seq of the last event read (the session's version there).
        hash: that event's chain hash.
        position: backend position just after it (files: byte offset).
        hash_at: backend position of its hash (files: byte offset of the hex digits).
        line: how many lines precede ``position`` in the backend's unit (files: line number).
    """

    seq: int
    hash: str
    position: int
    hash_at: int
    line: int
