"""The sessions page's rows: one small summary per session, kept while its log is unchanged.

A journal of 10,000 sessions must not be folded on every request: the page sorted by id needs
only the ids and the rows it shows. Other orders and searches need every row; each is kept
with the storage stamp it was read at (one ``stat`` on files, one query on PostgreSQL) and
read again only when the stamp moves, so a listing costs a stamp check per session, not a fold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

from journal.documents import printable
from journal.engine.journal import Journal
from journal.errors import JournalError, SessionNotFoundError

__all__ = ["SORTS", "Listing", "Page", "Row"]


class Row(NamedTuple):
    """One session on the sessions page; a damaged one has ``error`` and nothing else, and
    one whose id cannot be read (its first event is damaged) is ``unreadable``, with ``id``
    the name the storage keeps it under."""

    id: str
    messages: int = 0
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_actor: str | None = None
    error: str | None = None
    unreadable: bool = False


UNREADABLE = "its first event is damaged, so not even its id can be read: verify names the damage"


class Page(NamedTuple):
    total: int
    page: int
    per_page: int
    rows: list[Row]


def _key(field: str) -> Callable[[Row], Any]:
    # Damaged rows have no times or counts: they sort as the smallest value, never raise.
    def key(row: Row) -> Any:
        value = getattr(row, field)
        return (value is not None, value if value is not None else 0, row.id)

    return key


SORTS: dict[str, Callable[[Row], Any]] = {
    "id": lambda row: row.id,
    "created": _key("created_at"),
    "updated": _key("updated_at"),
    "messages": _key("messages"),
    "version": _key("version"),
}


class Listing:
    """Summaries of a journal's sessions, read again only when a session changed."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._rows: dict[str, tuple[Any, Row]] = {}
        self._lock = threading.Lock()

    def row(self, sid: str) -> Row | None:
        """The session's summary (None if it was deleted meanwhile)."""
        j = self.journal
        try:
            stamp = j.storage.stamp(sid)
        except JournalError as exc:
            return Row(sid, error=str(exc))
        if stamp is None:
            return None
        with self._lock:
            kept = self._rows.get(sid)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        try:
            s = j.get(sid)
            last = next(iter(j.events(sid, after=s.version - 1)), None)
            actor = last.actor if last is not None else None
            row = Row(sid, len(s.messages_view), s.version, s.created_at, s.updated_at, actor)
        except SessionNotFoundError:
            return None
        except JournalError as exc:  # one damaged session is listed, not fatal to the page
            row = Row(sid, error=str(exc))
        with self._lock:
            self._rows[sid] = (stamp, row)
        return row

    def rows(self, ids: Iterable[str]) -> list[Row]:
        return [row for row in map(self.row, ids) if row is not None]

    def page(
        self,
        *,
        query: str = "",
        content: str = "",
        sort: str = "id",
        reverse: bool = False,
        page: int = 1,
        per_page: int = 50,
    ) -> Page:
        """One page of sessions whose id contains ``query`` and whose visible conversation
        contains ``content`` (both case-insensitive), in ``sort`` order."""
        # What verify checks, not just the sessions that read: an auditor must see a session
        # even when its damage hides its id.
        targets = self.journal.storage.targets(None)
        ids = [t.session_id for t in targets if t.session_id is not None]
        self._forget(ids)
        hidden = [
            Row(printable(t.label), error=UNREADABLE, unreadable=True)
            for t in targets
            if t.session_id is None
        ]
        if query:
            folded = query.casefold()
            ids = [sid for sid in ids if folded in sid.casefold()]
            # By the readable start of the stored name, not its hash after the "~".
            hidden = [row for row in hidden if folded in row.id.partition("~")[0].casefold()]
        if content:
            ids = [sid for sid in ids if self._contains(sid, content.casefold())]
            hidden = []  # no conversation to search
        start = (page - 1) * per_page
        if sort == "id":
            # The cheap path: ids alone give the order, only the page's rows are read.
            # An unreadable one sorts by the name it is stored under (never taken for an id).
            keyed = sorted([(sid, -1) for sid in ids] + [(row.id, n) for n, row in enumerate(hidden)])
            if reverse:
                keyed.reverse()
            shown = [self.row(key) if n < 0 else hidden[n] for key, n in keyed[start : start + per_page]]
            return Page(len(keyed), page, per_page, [row for row in shown if row is not None])
        rows = self.rows(ids) + hidden
        rows.sort(key=SORTS[sort], reverse=reverse)
        return Page(len(rows), page, per_page, rows[start : start + per_page])

    def _contains(self, sid: str, folded: str) -> bool:
        try:
            session = self.journal.get(sid)
        except JournalError:
            return False
        return any(folded in m.content.casefold() for m in session.messages_view)

    def _forget(self, ids: list[str]) -> None:
        # Deleted sessions leave the cache, so it never holds more rows than the journal.
        with self._lock:
            if len(self._rows) > len(ids):
                present = set(ids)
                for sid in [sid for sid in self._rows if sid not in present]:
                    del self._rows[sid]
