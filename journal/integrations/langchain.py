"""LangChain: ``JournalChatMessageHistory``, a ``BaseChatMessageHistory`` on a journal.

Install with ``pip install "journal[langchain]"``. Every LangChain message (human, ai with
tool calls, system, tool, function, chat with a custom role) is stored as one journal message
whose role is the message type and whose content is its text, with the whole message kept
losslessly in the metadata (``langchain``: LangChain's own ``message_to_dict`` form), so
reading gives back equal messages. ``clear`` empties the visible conversation; the journal
keeps the history. The async variants run off the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import msgspec
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from journal.events import thaw
from journal.store import Journal

__all__ = ["JournalChatMessageHistory"]

_KEY = "langchain"


class JournalChatMessageHistory(BaseChatMessageHistory):
    """A session of a journal as LangChain chat history.

    Args:
        session_id: the journal session (created on the first message).
        journal_or_root: a ``Journal`` to share, or a folder (a Journal is opened on it).
    """

    def __init__(self, session_id: str, journal_or_root: Journal | str | os.PathLike[str]) -> None:
        self.session_id = session_id
        self.journal = journal_or_root if isinstance(journal_or_root, Journal) else Journal(journal_or_root)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The visible conversation, as LangChain messages (a new list each time)."""
        if not self.journal.exists(self.session_id):
            return []
        stored = [
            dict(m.metadata[_KEY]) for m in self.journal.get(self.session_id).messages if _KEY in m.metadata
        ]
        return messages_from_dict(thaw(stored))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append each message (one journal event each, in order)."""
        self.journal.get_or_create(self.session_id)
        for message in messages:
            content = message.content
            text = content if isinstance(content, str) else msgspec.json.encode(content).decode()
            self.journal.add_message(
                self.session_id, message.type, text, metadata={_KEY: message_to_dict(message)}
            )

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
