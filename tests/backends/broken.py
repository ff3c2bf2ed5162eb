"""Deliberately broken storages: each breaks one promise of the seam, and must fail the
storage contract (``tests/backends/test_contract_teeth.py`` runs it against each).

Each is the reference ``MemoryStorage`` with one method changed, so that the one defect is
all that differs from a storage that passes.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from journal.backends.memory import MemoryStorage, MemoryStore, MemoryTransaction
from journal.core.codec import decode
from journal.core.head import Head, Line
from journal.engine.storage import Stamp


class _Broken(MemoryStorage):
    """A MemoryStorage whose writer is ``transaction`` and whose twin (reopen) is as broken."""

    transaction: type[MemoryTransaction] = MemoryTransaction

    def writer(self, session_id: str) -> MemoryTransaction:
        return self.transaction(self, session_id)

    def reopen(self) -> MemoryStorage:
        twin = type(self)(self.store, lock_timeout=self.lock_timeout)
        twin.root = self.root
        return twin


_appends: weakref.WeakKeyDictionary[MemoryStore, int] = weakref.WeakKeyDictionary()


class _DropsEveryThirdAppend(MemoryTransaction):
    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        store = self.storage.store
        count = _appends[store] = _appends.get(store, 0) + 1
        if count % 3:
            return super().append(after, lines)
        last = lines[-1]
        return Head(last.seq, last.hash, 0, ()), (0,)  # as if stored


class DropsAnAppend(_Broken):
    """Reports every third append as stored, and stores nothing of it."""

    transaction = _DropsEveryThirdAppend


class _SwapsTwoLines(MemoryTransaction):
    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        if len(lines) > 1:
            lines = [lines[1], lines[0], *lines[2:]]
        return super().append(after, lines)


class ReordersEvents(_Broken):
    """Stores the first two lines of an append in the wrong order."""

    transaction = _SwapsTwoLines


class ServesAStaleHead(_Broken):
    """Answers ``stamp`` with the first stamp it gave for a session, so caches never notice
    that another writer moved it on."""

    def stamp(self, session_id: str) -> Stamp | None:
        seen: dict[str, Stamp] = self.__dict__.setdefault("seen", {})
        stamp = super().stamp(session_id)
        if stamp is None:
            seen.pop(session_id, None)
            return None
        return seen.setdefault(session_id, stamp)


class _AppendsAnywhere(MemoryTransaction):
    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        stored = self._stored()
        if stored is None or not stored.lines:
            return super().append(None, lines)
        # Whatever the caller expected, append at the end.
        end = Head(stored.last, decode(stored.line(stored.last)).hash, 0, ())
        return super().append(end, lines)


class IgnoresConflicts(_Broken):
    """Appends after whatever head it is given, even one the log has moved past."""

    transaction = _AppendsAnywhere


BROKEN = {
    "drops-an-append": DropsAnAppend,
    "reorders-events": ReordersEvents,
    "serves-a-stale-head": ServesAStaleHead,
    "ignores-conflicts": IgnoresConflicts,
}
