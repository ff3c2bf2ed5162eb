"""``AsyncJournal``: the Journal for asyncio code (FastAPI, agent frameworks).

Every call runs the synchronous ``Journal`` method in a worker thread (``asyncio.to_thread``),
so file I/O, locks and fsyncs never block the event loop; results, errors and guarantees are
exactly the sync API's (it is the same code). One ``AsyncJournal`` may be used from several
event loops and threads at once, like a ``Journal``: each call runs in the calling loop's
default executor. Constructing one does no file work.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from journal.core.events import Event
from journal.core.reports import Anchor, RepairReport, VerifyReport
from journal.core.state import Message, Session
from journal.engine.journal import Compaction, Journal, NewMessage
from journal.engine.storage import Exported

__all__ = ["AsyncJournal"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_BATCH = 256  # events fetched per thread hop when streaming


class AsyncJournal:
    """A ``Journal`` whose methods are coroutines; see the module docstring.

    Args:
        root_or_journal: a folder (a new ``Journal`` is made with ``options``), or an existing
            ``Journal`` to share (its cache and group commit then serve both APIs).
        options: ``Journal`` keyword arguments (``fsync``, ``snapshot_every``, ...).
    """

    def __init__(self, root_or_journal: str | os.PathLike[str] | Journal, **options: Any) -> None:
        if isinstance(root_or_journal, Journal):
            if options:
                raise ValueError("options apply to a new Journal, not to the one given")
            self.journal = root_or_journal
        else:
            self.journal = Journal(root_or_journal, **options)

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def __aenter__(self) -> AsyncJournal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush and release the files (see ``Journal.close``)."""
        await self._run(self.journal.close)

    # -- writes ----------------------------------------------------------------------------

    async def create(
        self,
        session_id: str | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Session:
        """See ``Journal.create``."""
        return await self._run(self.journal.create, session_id, settings=settings, actor=actor)

    async def get_or_create(
        self, session_id: str, *, settings: Mapping[str, Any] | None = None, actor: str | None = None
    ) -> Session:
        """See ``Journal.get_or_create``."""
        return await self._run(self.journal.get_or_create, session_id, settings=settings, actor=actor)

    async def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        references: Iterable[Any] | None = None,
        before: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """See ``Journal.add_message``."""
        return await self._run(
            self.journal.add_message,
            session_id,
            role,
            content,
            metadata=metadata,
            references=references,
            before=before,
            expected_version=expected_version,
            actor=actor,
        )

    async def add_messages(
        self,
        session_id: str,
        messages: Iterable[NewMessage | Mapping[str, Any]],
        *,
        replace: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> tuple[Message, ...]:
        """See ``Journal.add_messages``."""
        return await self._run(
            self.journal.add_messages,
            session_id,
            messages,
            replace=replace,
            expected_version=expected_version,
            actor=actor,
        )

    async def pop_message(
        self, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Message:
        """See ``Journal.pop_message``."""
        return await self._run(
            self.journal.pop_message, session_id, expected_version=expected_version, actor=actor
        )

    async def remove_message(
        self,
        session_id: str,
        message_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """See ``Journal.remove_message``."""
        return await self._run(
            self.journal.remove_message,
            session_id,
            message_id,
            expected_version=expected_version,
            actor=actor,
        )

    async def edit_message(
        self,
        session_id: str,
        message_id: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """See ``Journal.edit_message``."""
        return await self._run(
            self.journal.edit_message,
            session_id,
            message_id,
            content,
            metadata=metadata,
            expected_version=expected_version,
            actor=actor,
        )

    async def redact_message(
        self,
        session_id: str,
        message_id: str,
        *,
        reason: str,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """See ``Journal.redact_message``."""
        return await self._run(
            self.journal.redact_message,
            session_id,
            message_id,
            reason=reason,
            expected_version=expected_version,
            actor=actor,
        )

    async def update_settings(
        self,
        session_id: str,
        changes: Mapping[str, Any] | None = None,
        *,
        remove: Iterable[str] = (),
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Session:
        """See ``Journal.update_settings``."""
        return await self._run(
            self.journal.update_settings,
            session_id,
            changes,
            remove=remove,
            expected_version=expected_version,
            actor=actor,
        )

    async def clear(
        self, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Session:
        """See ``Journal.clear``."""
        return await self._run(self.journal.clear, session_id, expected_version=expected_version, actor=actor)

    async def delete(self, session_id: str) -> None:
        """See ``Journal.delete``."""
        await self._run(self.journal.delete, session_id)

    async def import_session(self, session_id: str, exported: Exported) -> None:
        """See ``Journal.import_session``."""
        await self._run(self.journal.import_session, session_id, exported)

    # -- reads -----------------------------------------------------------------------------

    async def get(self, session_id: str) -> Session:
        """See ``Journal.get``."""
        return await self._run(self.journal.get, session_id)

    async def exists(self, session_id: str) -> bool:
        """See ``Journal.exists``."""
        return await self._run(self.journal.exists, session_id)

    async def events(self, session_id: str, *, after: int = 0) -> AsyncIterator[Event]:
        """See ``Journal.events``: streamed in batches, each read off the event loop."""
        stream = await self._run(self.journal.events, session_id, after=after)
        while batch := await self._run(_take, stream, _BATCH):
            for event in batch:
                yield event

    async def replay(self, session_id: str, *, at: int | datetime | None = None) -> Session:
        """See ``Journal.replay``."""
        return await self._run(self.journal.replay, session_id, at=at)

    async def export_session(self, session_id: str) -> Exported:
        """See ``Journal.export_session``."""
        return await self._run(self.journal.export_session, session_id)

    async def sessions(self) -> list[str]:
        """Every session id (see ``Journal.sessions``), listed off the event loop."""
        return await self._run(lambda: list(self.journal.sessions()))

    # -- maintenance and integrity ---------------------------------------------------------

    async def compact(
        self,
        session_id: str | None = None,
        *,
        prune: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Compaction]:
        """See ``Journal.compact`` (``progress`` is called from the worker thread)."""
        return await self._run(self.journal.compact, session_id, prune=prune, progress=progress)

    async def head(self, session_id: str) -> Anchor:
        """See ``Journal.head``."""
        return await self._run(self.journal.head, session_id)

    async def verify(
        self,
        session_id: str | None = None,
        *,
        anchors: Iterable[Anchor] = (),
        progress: Callable[[int, int, str], None] | None = None,
    ) -> VerifyReport:
        """See ``Journal.verify`` (``progress`` is called from the worker thread)."""
        return await self._run(self.journal.verify, session_id, anchors=list(anchors), progress=progress)

    async def repair(self, session_id: str, *, dry_run: bool = False) -> RepairReport:
        """See ``Journal.repair``."""
        return await self._run(self.journal.repair, session_id, dry_run=dry_run)


def _take(stream: Any, n: int) -> list[Event]:
    return list(itertools.islice(stream, n))
