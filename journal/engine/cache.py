"""The session cache: one slot per session in use, least recently used ones evicted.

A slot is a session's in-process coordination: its lock (one writer at a time in this process,
before the backend's cross-process lock), its write queue (see ``commit``) and its cached view.
A slot in use (pinned) is never evicted, so two threads never hold two different locks for one
session. After ``fork`` the child starts with no slots: a lock held by another thread at fork
time would stay held for ever in the child.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

from journal.core.head import Head
from journal.core.state import Session

if TYPE_CHECKING:
    from journal.engine.options import Options
    from journal.engine.storage import Stamp

__all__ = ["Sessions", "Slot", "Used", "View", "sweep"]

_Q = TypeVar("_Q")


class View(msgspec.Struct, frozen=True):
    """What the cache knows of a session, replaced as a whole so readers never see a mix.

    Attributes:
        state: the session after ``head``.
        head: where the stored log was read to.
        stamp: the log's stamp when read exactly to ``head`` (None: check it again next time).
        snap_seq: the seq of the newest snapshot known to this process.
        unsnapped: stored bytes folded since that snapshot (for ``snapshot_bytes``).
        marks: earlier heads of the same stored log, oldest first, after each of which the
            fold checked every event up to ``head``: the heads this view was read or written
            on from (the last ``MARKS``), or, read whole, the one before its last event.
            ``events(after=...)`` at or past one reads from the newest such, not from the start.
    """

    state: Session
    head: Head
    stamp: Stamp | None
    snap_seq: int = 0
    unsnapped: int = 0
    marks: tuple[Head, ...] = ()

    def moved_on(self) -> tuple[Head, ...]:
        """The marks of the view that moves on from this one: these and this head."""
        return (*self.marks[1 - MARKS :], self.head)

    def mark_for(self, after: int) -> Head | None:
        """The newest mark at or before seq ``after`` (None: none)."""
        for mark in reversed(self.marks):
            if mark.seq <= after:
                return mark
        return None


# Enough for a few readers of one session (a tail, a viewer's page, a saver) polling at their
# own pace, each asking after the head it last saw; a read from a mark costs what follows it.
MARKS = 8


class Slot(Generic[_Q]):
    """One session's locks, write queue (of ``_Q``, the committer's queued writes) and cached
    view (see the module docstring).

    ``qlock`` guards ``queue``, ``leading``, ``users`` and ``evicted``: a caller pins the slot
    by counting itself in ``users`` under ``qlock`` (``Sessions.pin``, or the committer as it
    queues), and only a slot nobody uses is evicted.
    """

    __slots__ = ("evicted", "leading", "lock", "qlock", "queue", "used", "users", "view")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.qlock = threading.Lock()
        self.queue: list[_Q] = []
        self.leading = False
        self.view: View | None = None
        self.users = 0
        self.used = True  # looked up since the last eviction sweep passed it
        self.evicted = False


class Sessions(Generic[_Q]):
    """The slots of one Journal, at most ``max_cached_sessions`` of them kept when idle.

    Looking a slot up takes no lock (one dict lookup); pinning it takes the slot's own
    ``qlock``. Eviction is second-chance (clock) LRU: a slot used since the last sweep is passed
    over once, so a hot session is not evicted, without reordering the slots on every access.
    """

    def __init__(self, options: Options) -> None:
        self.options = options  # its max_cached_sessions, read when a slot is added
        # Read without a lock (``slots.get(sid)``: one dict lookup); changed under ``_guard``.
        self.slots: OrderedDict[str, Slot[_Q]] = OrderedDict()
        self._guard = threading.Lock()
        _caches.add(self)

    def find(self, sid: str) -> Slot[_Q]:
        """The session's slot, made if missing; not pinned (pin it under its ``qlock``, and
        look again if it was ``evicted`` meanwhile)."""
        slot = self.slots.get(sid)
        if slot is None:
            with self._guard:
                slot = self.slots.get(sid)
                if slot is None:
                    slot = self.slots[sid] = Slot[_Q]()
                    if len(self.slots) > self.options.max_cached_sessions:
                        self._evict(sid)
        return slot

    def pin(self, sid: str) -> Slot[_Q]:
        """The session's slot, kept until ``unpin``."""
        while True:
            slot = self.find(sid)
            with slot.qlock:
                if not slot.evicted:
                    slot.users += 1
                    slot.used = True
                    return slot

    def unpin(self, slot: Slot[_Q]) -> None:
        with slot.qlock:
            slot.users -= 1

    @contextmanager
    def pinned(self, sid: str) -> Iterator[Slot[_Q]]:
        slot = self.pin(sid)
        try:
            yield slot
        finally:
            self.unpin(slot)

    def _evict(self, keep: str) -> None:
        sweep(self.slots, self.options.max_cached_sessions, keep, _release)

    def __len__(self) -> int:
        return len(self.slots)

    def view(self, sid: str) -> View | None:
        """The session's cached view, if it has a slot (for inspection: no pinning)."""
        slot = self.slots.get(sid)
        return None if slot is None else slot.view

    def clear(self) -> None:
        with self._guard:
            for slot in self.slots.values():
                slot.evicted = True
            self.slots.clear()

    def _forget_after_fork(self) -> None:
        self.slots = OrderedDict()
        self._guard = threading.Lock()


def _release(slot: Slot[Any]) -> bool:
    """Evict ``slot`` unless someone uses it (it is then ``evicted``: pinning it fails)."""
    if not slot.qlock.acquire(blocking=False):
        return False
    try:
        if slot.users or slot.leading:
            return False
        slot.evicted = True
        return True
    finally:
        slot.qlock.release()


class Used(Protocol):
    """What ``sweep`` evicts: something that says whether it was used since the last sweep."""

    used: bool


_E = TypeVar("_E", bound=Used)


def sweep(entries: OrderedDict[str, _E], limit: int, keep: str, release: Callable[[_E], bool]) -> None:
    """Second-chance (clock) eviction of ``entries`` down to ``limit``: an entry ``used`` since
    the last sweep is passed over once (its flag cleared, moved to the back); ``release`` frees
    an entry or says it is in use (False); ``keep`` (the entry just made) is never evicted.
    Two passes at most: the first may only take second chances away. The caller holds the
    lock that guards ``entries``."""
    for _ in range(2):
        for key in list(entries):
            if len(entries) <= limit:
                return
            entry = entries[key]
            if key == keep:
                continue
            if entry.used:
                entry.used = False
                entries.move_to_end(key)
            elif release(entry):
                del entries[key]


_caches: weakref.WeakSet[Sessions[Any]] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for cache in list(_caches):
        cache._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
