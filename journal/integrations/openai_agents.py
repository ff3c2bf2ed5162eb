"""OpenAI Agents SDK: ``JournalSession``, the SDK's ``Session`` protocol on a journal session.

Install with ``pip install "chat-journal[agents]"``. Pass a ``JournalSession`` as ``session=`` to
``Runner.run``; the agent's conversation memory then lives in one journal session.

What is promised:

- **Lossless.** Every item is one journal message. A plain text message (exactly
  ``{"role": r, "content": "text"}``) is stored as its text; every other item (structured
  content, tool calls and their outputs, reasoning, ...) as its full JSON in the content,
  read back as an equal dict: nested values, any unicode, ints of any size. The message's role
  is the item's ``role``, else its ``type`` (``"function_call"``, ``"reasoning"``, ...).
- **Erasable.** Everything the user or the model produced is in the content, so
  ``Journal.redact_message`` erases it; the metadata, sealed in the hash chain, holds only the
  marker ``{"openai_agents": {"form": "text" | "json"}}``. A redacted item reads back as
  ``{"role": role, "content": ""}`` (for a tool call or a reasoning item, an item the model
  API refuses: remove it too, or start the conversation afresh).
- **One write per batch.** ``add_items`` writes all items of one call in one journal write:
  they get consecutive seqs, nothing from another writer lands between them, and a call that
  raises (an item that is not JSON, a full disk) leaves none of them. Not promised: a crash
  in the middle of the write (a kill, a power loss) can leave a prefix of the batch in the log,
  as the journal says of any write that never returned.
- **History kept.** ``pop_item`` and ``clear_session`` hide items from the conversation;
  ``Journal.events`` and ``Journal.replay`` still show them.
- **Shared and isolated.** Sessions with the same id share their items, across threads and
  processes (the journal's per-session lock serialises writers); different ids never meet.
- **Off the event loop.** Every method runs its journal calls in one worker thread. A
  cancelled ``add_items``, ``pop_item`` or ``clear_session`` still waits for its write to
  finish before re-raising the cancellation, so no write lands after the caller moved on.

An item that would not read back equal (NaN, a tuple, bytes, a date: values JSON has no
exact form for) is refused with ``InvalidValueError``; nothing of its batch is written.

Who closes the journal: a ``Journal`` or ``AsyncJournal`` you pass in is yours (the session
never closes it). Given a folder or URL, the session uses the process's shared Journal on it
(``journal.shared.shared_journal``), so sessions made per request open nothing new; that one
is closed at interpreter exit (or by ``journal.shared.close_shared()``). ``close()`` never
closes a journal.

Messages that other code wrote to the same session without the marker read back as plain
text items, and so does a JSON item whose content was replaced by ``Journal.edit_message``
with text that is not a JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any, cast

import msgspec
from agents.items import TResponseInputItem
from agents.memory import SessionSettings

from journal.aio import AsyncJournal
from journal.core.commands import NewMessage
from journal.core.state import Message
from journal.engine.journal import Journal
from journal.errors import (
    InvalidValueError,
    JournalClosedError,
    MessageNotFoundError,
    SessionNotFoundError,
)
from journal.integrations import Forms, settled
from journal.integrations.shared import shared_journal

__all__ = ["JournalSession"]

_FORMS = Forms("openai_agents")
_decode = msgspec.json.Decoder().decode


class JournalSession:
    """A journal session as the OpenAI Agents SDK's conversation memory.

    Implements the SDK's ``Session`` protocol (``agents.memory.Session``) structurally, as the
    SDK asks third-party sessions to. The journal session is created by the first
    ``add_items``; reading a session that does not exist gives no items. Constructing one does
    no file work.

    Args:
        session_id: the journal session holding the items.
        journal_or_root: a ``Journal`` or ``AsyncJournal`` (yours to close), or a folder or
            ``postgresql://`` URL (the process's shared Journal on it is used).
        session_settings: the SDK's settings; ``limit`` is the default for ``get_items``.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        journal_or_root: Journal | AsyncJournal | str | os.PathLike[str],
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = session_settings if session_settings is not None else SessionSettings()
        self._closed = False
        self._shared = not isinstance(journal_or_root, (Journal, AsyncJournal))
        if isinstance(journal_or_root, AsyncJournal):
            self.journal = journal_or_root.journal
        elif isinstance(journal_or_root, Journal):
            self.journal = journal_or_root
        else:
            self.journal = shared_journal(journal_or_root)

    def __repr__(self) -> str:
        return f"JournalSession({self.session_id!r}, {self.journal!r})"

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items in chronological order (all when the limit is None).

        A None ``limit`` falls back to ``session_settings.limit``; a limit of 0 or less gives
        no items. Each call returns new dicts: changing them changes nothing stored.

        Raises:
            CorruptLogError: the session's log is damaged.
        """
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        return await asyncio.to_thread(self._read, limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order, all in one journal write (creating the session).

        Returns only after the write is durable (per the journal's fsync policy). An empty list
        writes nothing.

        Raises:
            InvalidValueError: an item is not a dict of plain JSON values (it would not read
                back equal: NaN, a tuple, bytes, a date, ...), or the journal refuses it.
            StorageError, LockTimeoutError, CorruptLogError, JournalClosedError: from the
                journal.

        When it raises one of these, none of the items was written. When it is cancelled, it
        first waits for the write to finish (the items may then be stored), then re-raises.
        """
        if items:
            await settled(lambda: self._append(items))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the most recent item from the conversation and return it (None when empty).

        The journal's history keeps the item.
        """
        return await settled(self._pop)

    async def clear_session(self) -> None:
        """Empty the conversation; the journal's history keeps every item."""
        await settled(self._clear)

    def close(self) -> None:
        """End this session if it was given a folder or URL; closes no journal.

        Given a folder or URL, later calls raise ``JournalClosedError``, and the shared Journal
        stays open for the other sessions using it. Given a Journal, this does nothing: that
        journal is yours to close.
        """
        if self._shared:
            self._closed = True

    # -- the journal calls, each run in a worker thread ------------------------------------

    def _open(self) -> Journal:
        if self._closed:
            raise JournalClosedError(self.journal.root)
        return self.journal

    def _read(self, limit: int | None) -> list[TResponseInputItem]:
        try:
            messages = self._open().get(self.session_id).messages
        except SessionNotFoundError:
            return []
        if limit is None:
            return [_item(m) for m in messages]
        # Zero and negative limits give nothing, as in the SDK's Redis session (its SQLite one
        # gives everything for a negative limit, an accident of SQL's LIMIT).
        return [_item(m) for m in messages[-limit:]] if limit > 0 else []

    def _append(self, items: list[TResponseInputItem]) -> None:
        # Encoded before any file work, so an item that is not JSON writes nothing.
        messages = [_message(i, item) for i, item in enumerate(items)]
        journal = self._open()
        try:
            journal.add_messages(self.session_id, messages)
        except SessionNotFoundError:
            # The first write of a session; trying the append first saves a call on every other.
            journal.get_or_create(self.session_id)
            journal.add_messages(self.session_id, messages)

    def _pop(self) -> TResponseInputItem | None:
        journal = self._open()
        try:
            return _item(journal.pop_message(self.session_id))
        except (SessionNotFoundError, MessageNotFoundError):
            return None

    def _clear(self) -> None:
        journal = self._open()
        with contextlib.suppress(SessionNotFoundError):
            journal.clear(self.session_id)


def _message(index: int, item: Mapping[str, Any]) -> NewMessage:
    """The journal message storing ``item``: its text, or its whole JSON, in the content."""
    if not isinstance(item, Mapping):
        raise InvalidValueError(f"items[{index}]", f"an item is a dict, not {type(item).__name__}")
    role = item.get("role")
    content = item.get("content")
    if isinstance(role, str) and role and isinstance(content, str) and len(item) == 2:
        return NewMessage(role=role, content=content, metadata=_FORMS.text)
    try:
        text = _FORMS.encode(item).decode()
    except (TypeError, ValueError) as exc:  # ValueError: a lone surrogate cannot be UTF-8
        raise InvalidValueError(f"items[{index}]", f"not JSON: {exc}") from None
    # msgspec writes tuples, sets, bytes, dates, NaN and int keys as JSON stand-ins that read
    # back as something else; refusing them keeps "what you read equals what you stored" exact.
    if _decode(text) != item:
        raise InvalidValueError(
            f"items[{index}]", "holds a value without an exact JSON form (tuple, set, bytes, date, NaN, ...)"
        )
    kind = role if isinstance(role, str) and role else item.get("type")
    kind = kind if isinstance(kind, str) and kind else "item"
    return NewMessage(role=kind, content=text, metadata=_FORMS.json)


def _item(message: Message) -> TResponseInputItem:
    """The item ``message`` stores, as a new dict."""
    if message.redacted:
        return cast(TResponseInputItem, {"role": message.role, "content": ""})
    if _FORMS.is_json(message):
        with contextlib.suppress(msgspec.DecodeError):
            value = _decode(message.content)
            if isinstance(value, dict):
                return cast(TResponseInputItem, value)
    return cast(TResponseInputItem, {"role": message.role, "content": message.content})
