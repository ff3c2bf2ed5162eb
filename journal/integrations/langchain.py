"""LangChain: ``JournalChatMessageHistory``, a ``BaseChatMessageHistory`` on a journal.

Install with ``pip install "chat-journal[langchain]"``. Every LangChain message (human, ai with
tool calls, system, tool, function, chat with a custom role) is stored as one journal message
whose role is the message type, so reading gives back equal messages:

* a plain text message (only its text differs from a fresh message of its type) is stored as
  its text, with ``{"langchain": {"form": "text", "type": ...}}`` in the metadata;
* any other message is stored as LangChain's own ``message_to_dict`` form, as JSON, in the
  content, with ``{"form": "json", ...}`` in the metadata.

Everything the user or the model produced (text, tool-call arguments, outputs) is in the
content, which ``Journal.redact_message`` erases; the metadata holds only the form and type.
A redacted message reads back as an empty message of its type. ``clear`` empties the visible
conversation; the journal keeps the history. ``add_messages`` is one journal write. The async
variants run off the event loop.

Who closes the journal: a ``Journal`` you pass in is yours (the history never closes it). Given
a folder or URL, the history uses the process's shared Journal on it
(``journal.shared.shared_journal``), so a history made per request opens nothing new; that
one is closed at interpreter exit (or by ``journal.shared.close_shared()``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import msgspec
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, ChatMessage, message_to_dict, messages_from_dict

from journal.core.commands import NewMessage
from journal.core.events import thaw
from journal.core.state import Message
from journal.engine.journal import Journal
from journal.errors import SessionNotFoundError
from journal.integrations.shared import shared_journal

__all__ = ["JournalChatMessageHistory"]

_KEY = "langchain"


class JournalChatMessageHistory(BaseChatMessageHistory):
    """A session of a journal as LangChain chat history.

    Args:
        session_id: the journal session (created on the first message).
        journal_or_root: a ``Journal`` (yours to close), or a folder or ``postgresql://`` URL
            (the process's shared Journal on it is used: see the module docstring).
    """

    def __init__(self, session_id: str, journal_or_root: Journal | str | os.PathLike[str]) -> None:
        self.session_id = session_id
        self.journal = (
            journal_or_root if isinstance(journal_or_root, Journal) else shared_journal(journal_or_root)
        )

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The visible conversation, as LangChain messages (a new list each time)."""
        try:
            stored = self.journal.get(self.session_id).messages
        except SessionNotFoundError:
            return []
        return [_read(m) for m in stored if _KEY in m.metadata]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages in order, in one journal write."""
        batch = [_stored(message) for message in messages]
        try:
            self.journal.add_messages(self.session_id, batch)
        except SessionNotFoundError:
            self.journal.get_or_create(self.session_id)
            self.journal.add_messages(self.session_id, batch)

    def clear(self) -> None:
        """Empty the visible conversation (the journal keeps every message)."""
        if self.journal.exists(self.session_id):
            self.journal.clear(self.session_id)

    async def aget_messages(self) -> list[BaseMessage]:
        return await asyncio.to_thread(lambda: self.messages)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await asyncio.to_thread(self.add_messages, messages)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)


def _stored(message: BaseMessage) -> NewMessage:
    content = message.content
    if isinstance(content, str) and _plain(message.type, content) == message:
        return NewMessage(
            role=message.type, content=content, metadata={_KEY: {"form": "text", "type": message.type}}
        )
    text = msgspec.json.encode(message_to_dict(message)).decode()
    return NewMessage(
        role=message.type, content=text, metadata={_KEY: {"form": "json", "type": message.type}}
    )


def _plain(kind: str, text: str) -> BaseMessage | None:
    try:
        return messages_from_dict([{"type": kind, "data": {"content": text}}])[0]
    except (ValueError, TypeError, KeyError):
        return None  # a type that needs more than its text (tool, chat)


def _read(m: Message) -> BaseMessage:
    marker: Any = thaw(m.metadata[_KEY])
    if "data" in marker:  # the first version's form: the whole message in the metadata
        return messages_from_dict([marker])[0]
    kind = marker.get("type", m.role)
    if m.redacted:
        return _plain(kind, "") or ChatMessage(role=kind, content="")
    if marker.get("form") == "json":
        return messages_from_dict([msgspec.json.decode(m.content)])[0]
    return _plain(kind, m.content) or ChatMessage(role=kind, content=m.content)
