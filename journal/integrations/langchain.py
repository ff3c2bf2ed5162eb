"""LangChain: ``JournalChatMessageHistory``, a ``BaseChatMessageHistory`` on a journal.

Install with ``pip install "chat-journal[langchain]"``. Every LangChain message (human, ai with
tool calls, system, tool, function, chat with a custom role, list content, chunks) is stored as
one journal message that people can read and the history reads back as an equal message
(``journal.integrations.transcript`` describes the form):

* the role is the standard one: human ``user``, ai ``assistant``, system ``system``, tool and
  function ``tool``; a chat message's own role when it is one of those (or ``developer``,
  ``model``, ...), else ``assistant``;
* the content is the message's text (list content: its text parts, one per line; other parts
  as ``[type: json]``), then each tool call as ``[tool call: name(args)]``, then any other
  field that carries words as ``[field: value]`` (a speaker's ``name``, ``additional_kwargs``,
  a tool's ``artifact``, ``logprobs``);
* the metadata holds ``{"langchain": {"payload": ..., "spans": [...]}}``: LangChain's
  ``message_to_dict`` form with those values blanked, and where each sits in the content. It
  keeps the type, ids, tool names, ``tool_call_id``, status, ``usage_metadata`` and
  ``response_metadata`` (the model's name, finish reason, token counts).

``Journal.redact_message`` erases the content, so everything the user or the model said is
gone; the message reads back as its payload with those values blanked (an ``AIMessage`` with
empty text and empty tool-call arguments, a ``ToolMessage`` with empty output and its
``tool_call_id``). A message whose content ``Journal.edit_message`` replaced reads back the
same way with the new text as its content. Messages stored by earlier versions of this adapter
(role the message type; plain text, or LangChain's JSON in the content) read back as before.
Messages that other code wrote to the session (without the adapter's metadata) are not part of
the history.

``clear`` empties the visible conversation; the journal keeps the history. ``add_messages``
is one journal write. The async variants run off the event loop.

Who closes the journal: a ``Journal`` or ``AsyncJournal`` you pass in is yours (the history
never closes it). Given a folder or URL, the history uses the process's shared Journal on it
(``journal.integrations.shared.shared_journal``), so a history made per request opens nothing
new; that one is closed at interpreter exit (or by ``close_shared()``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, ChatMessage, message_to_dict, messages_from_dict

from journal.core.commands import NewMessage
from journal.core.events import thaw
from journal.core.state import Message
from journal.errors import InvalidValueError, SessionNotFoundError
from journal.integrations.shared import JournalArg, adapter_journal
from journal.integrations.transcript import (
    Transcript,
    blank,
    call,
    marker_of,
    parts,
    rest,
    restored,
    silent,
    standard_role,
)

__all__ = ["JournalChatMessageHistory", "read_message", "stored_message"]

_KEY = "langchain"
_CALLS = ("tool_calls", "tool_call_chunks", "invalid_tool_calls")
# The members of message_to_dict's "data" that hold no words of the user or the model, or that
# _render writes itself.
_KEEP = frozenset(
    {
        "type",
        "id",
        "tool_call_id",
        "status",
        "role",
        "example",
        "usage_metadata",
        "response_metadata",
        "chunk_position",
        "content",
        "additional_kwargs",
        *_CALLS,
    }
)
_CALL_KEEP = frozenset({"name", "args", "id", "type", "index", "error"})
# Messages whose name is the tool's, not a speaker's.
_TOOL_KINDS = frozenset({"tool", "function"})


class JournalChatMessageHistory(BaseChatMessageHistory):
    """A session of a journal as LangChain chat history.

    Constructing one does no file work; the journal session is created by the first message.

    Args:
        session_id: the journal session.
        journal: a ``Journal`` or ``AsyncJournal`` (yours to close), or a folder or
            ``postgresql://`` URL (the process's shared Journal on it is used: see the module
            docstring).
        journal_or_root: deprecated name of ``journal``.

    Raises:
        TypeError: no journal, or a value of another type.
        InvalidValueError: an empty path, or a URL no backend serves.
    """

    def __init__(
        self,
        session_id: str,
        journal: JournalArg | None = None,
        *,
        journal_or_root: JournalArg | None = None,
    ) -> None:
        self.session_id = session_id
        self.journal, _ = adapter_journal("JournalChatMessageHistory", journal, journal_or_root)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The visible conversation, as LangChain messages (a new list each time)."""
        try:
            stored = self.journal.get(self.session_id).messages_view
        except SessionNotFoundError:
            return []
        return [read_message(m) for m in stored if _KEY in m.metadata]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages in order, in one journal write.

        Raises:
            InvalidValueError: a message holds a value with no JSON form; nothing is written.
        """
        batch = [stored_message(i, message) for i, message in enumerate(messages)]
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
        """``messages`` in a worker thread."""
        return await asyncio.to_thread(lambda: self.messages)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """``add_messages`` in a worker thread."""
        await asyncio.to_thread(self.add_messages, messages)

    async def aclear(self) -> None:
        """``clear`` in a worker thread."""
        await asyncio.to_thread(self.clear)


def _kind(data: Mapping[str, Any]) -> str:
    """The message's type without a chunk's suffix: ``AIMessageChunk`` is ``ai``."""
    kind = data.get("type")
    if not isinstance(kind, str):
        return ""
    return kind.removesuffix("MessageChunk").lower() if kind.endswith("MessageChunk") else kind


def _role(payload: Mapping[str, Any]) -> str:
    data = payload["data"]
    kind = _kind(data)
    # A custom role nobody standardised ("critic", "narrator") is most often another agent or
    # persona of the app: an assistant. The payload keeps the exact role.
    return standard_role(data.get("role") if kind == "chat" else kind) or "assistant"


def _render(payload: Any) -> Transcript:
    t = Transcript()
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping):
        return t
    base = ["data"]
    content = data.get("content")
    if isinstance(content, str):
        t.value([*base, "content"], content)
    elif isinstance(content, list):
        parts(t, [*base, "content"], content, empty="")
    elif not silent(content):
        t.field([*base, "content"], "content", content)
    for name in _CALLS:
        calls = data.get(name)
        for index, one in enumerate(calls if isinstance(calls, list) else []):
            _call(t, [*base, name, index], one, invalid=name == "invalid_tool_calls")
        if not isinstance(calls, list) and not silent(calls):
            t.field([*base, name], name, calls)
    rest(t, base, data, _KEEP | ({"name"} if _kind(data) in _TOOL_KINDS else set()))
    kwargs = data.get("additional_kwargs")
    if isinstance(kwargs, Mapping):
        rest(t, [*base, "additional_kwargs"], kwargs, ())
    # logprobs spell out the reply token by token; the rest of response_metadata is the
    # provider's bookkeeping.
    response = data.get("response_metadata")
    if isinstance(response, Mapping) and not silent(response.get("logprobs")):
        t.field([*base, "response_metadata", "logprobs"], "logprobs", response["logprobs"])
    return t


def _call(t: Transcript, path: list[Any], one: Any, *, invalid: bool) -> None:
    if not isinstance(one, Mapping):
        t.field(path, "tool call", one)
        return
    if invalid:
        name = one.get("name")
        t.line()
        t.write(f"[invalid tool call: {name if isinstance(name, str) else ''}(")
        if isinstance(one.get("args"), str):  # the model's raw text, which did not parse
            t.value([*path, "args"], one["args"])
        t.write(")")
        if isinstance(one.get("error"), str):
            t.write(" error: ")
            t.value([*path, "error"], one["error"])
        t.write("]")
    else:
        call(t, [*path, "args"], one.get("name"), one.get("args"))
    rest(t, path, one, _CALL_KEEP)


def stored_message(index: int, message: BaseMessage) -> NewMessage:
    """How a LangChain message is stored: a readable transcript line (see ``transcript``)."""
    payload = message_to_dict(message)
    try:
        t = _render(payload)
        marker = t.marker(payload)
    except (TypeError, ValueError) as exc:  # a value msgspec cannot write as JSON
        raise InvalidValueError(f"messages[{index}]", f"cannot be stored as JSON: {exc}") from None
    return NewMessage(role=_role(payload), content=t.content, metadata={_KEY: marker})


def read_message(m: Message) -> BaseMessage:
    """The LangChain message a stored one was, in any form this adapter ever wrote."""
    marker = marker_of(m.metadata, _KEY)
    if marker is None:
        return _read_older(m, thaw(m.metadata[_KEY]))
    if not m.redacted:
        payload = restored(marker, m.content, _render)
        if payload is not None:
            message = _built(payload)
            if message is not None:
                return message
    # Redacted, or edited: the stored form without what was said, with the text there is now.
    payload = blank(marker)
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        payload["data"]["content"] = m.content
        message = _built(payload)
        if message is not None:
            return message
    return ChatMessage(role=m.role, content=m.content)


def _built(payload: Any) -> BaseMessage | None:
    try:
        return messages_from_dict([payload])[0]
    except (ValueError, TypeError, KeyError):  # pydantic's ValidationError is a ValueError
        return None


def _plain(kind: str, text: str) -> BaseMessage | None:
    return _built({"type": kind, "data": {"content": text}})


def _read_older(m: Message, marker: Any) -> BaseMessage:
    """A message in a form earlier versions stored: the role is the message type, and the
    content its text or LangChain's JSON (or, first of all, the whole message in metadata)."""
    if not isinstance(marker, dict):
        return ChatMessage(role=m.role, content=m.content)
    if "data" in marker:
        return _built(marker) or ChatMessage(role=m.role, content=m.content)
    kind = marker.get("type", m.role)
    if m.redacted:
        return _plain(kind, "") or ChatMessage(role=kind, content="")
    if marker.get("form") == "json":
        try:
            message = _built(msgspec.json.decode(m.content))
        except msgspec.DecodeError:
            message = None  # replaced by an edit with plain text: read it as text
        if message is not None:
            return message
    return _plain(kind, m.content) or ChatMessage(role=kind, content=m.content)
