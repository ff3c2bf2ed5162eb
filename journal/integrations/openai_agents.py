"""OpenAI Agents SDK: ``JournalSession``, the SDK's ``Session`` protocol on a journal session.

Install with ``pip install "chat-journal[agents]"``. Pass a ``JournalSession`` as ``session=`` to
``Runner.run``; the agent's conversation memory then lives in one journal session.

What is promised:

- **Readable.** Every item is one journal message that the journal's tools show as a
  transcript (``journal.integrations.transcript`` describes the form). The role is the
  standard one: a message's ``role`` (``developer`` as ``system``), ``tool`` for an output
  (``function_call_output``, any ``*_output``), ``assistant`` for anything else the model
  made (``function_call``, ``reasoning``, ...). The content is what was said: a message's text
  (parts one per line, other parts as ``[type: json]``), a call as ``[tool call:
  name(arguments)]``, an output's text, a reasoning summary, and any other field carrying
  words as ``[field: value]``. The metadata holds ``{"openai_agents": {"payload": ...,
  "spans": [...]}}``: the item with those values blanked (its type, ids, ``call_id``,
  ``status``, tool name) and where each sits in the content.
- **Lossless.** ``get_items`` returns dicts equal to the ones stored: nested values, any
  unicode, ints of any size, floats exactly.
- **Erasable.** Everything the user or the model said is in the content, so
  ``Journal.redact_message`` erases it; the metadata, sealed in the hash chain, keeps the
  item's shape. A redacted item reads back as that shape with its words blanked (a message
  with empty text, a call with arguments ``"{}"``, an output ``""``).
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
(``journal.integrations.shared.shared_journal``), so sessions made per request open nothing
new; that one is closed at interpreter exit (or by ``close_shared()``). ``close()`` never
closes a journal.

Items stored by earlier versions of this adapter (the item's role or type as the role, its
JSON in the content) read back as before. Messages that other code wrote to the same session
read back as plain text items ``{"role": role, "content": content}``, and so does an item
whose content ``Journal.edit_message`` replaced (with the item's own role, if it had one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, cast

import msgspec
from agents.items import TResponseInputItem
from agents.memory import SessionSettings

from journal.core.commands import NewMessage
from journal.core.state import Message
from journal.engine.journal import Journal
from journal.errors import (
    InvalidValueError,
    JournalClosedError,
    MessageNotFoundError,
    SessionNotFoundError,
)
from journal.integrations import settled
from journal.integrations.shared import JournalArg, adapter_journal
from journal.integrations.transcript import (
    Transcript,
    blank,
    call,
    fill,
    marker_of,
    parts,
    rest,
    restored,
    silent,
    standard_role,
)

__all__ = ["JournalSession"]

_KEY = "openai_agents"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
# Members that hold no words of the user or the model, or that _render writes itself.
_KEEP = frozenset(
    {"type", "role", "id", "call_id", "status", "name", "content", "summary", "arguments", "output"}
)
_EMPTY_PART = {"type": "input_text", "text": ""}


class JournalSession:
    """A journal session as the OpenAI Agents SDK's conversation memory.

    Implements the SDK's ``Session`` protocol (``agents.memory.Session``) structurally, as the
    SDK asks third-party sessions to. The journal session is created by the first
    ``add_items``; reading a session that does not exist gives no items. Constructing one does
    no file work.

    Args:
        session_id: the journal session holding the items.
        journal: a ``Journal`` or ``AsyncJournal`` (yours to close), or a folder or
            ``postgresql://`` URL (the process's shared Journal on it is used).
        session_settings: the SDK's settings; ``limit`` is the default for ``get_items``.
        journal_or_root: deprecated name of ``journal``.

    Raises:
        TypeError: no journal, or a value of another type.
        InvalidValueError: an empty path, or a URL no backend serves.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        journal: JournalArg | None = None,
        session_settings: SessionSettings | None = None,
        *,
        journal_or_root: JournalArg | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = session_settings if session_settings is not None else SessionSettings()
        self._closed = False
        self.journal, self._shared = adapter_journal("JournalSession", journal, journal_or_root)

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
            messages = self._open().get(self.session_id).messages_view
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


def _role(item: Mapping[str, Any]) -> str:
    role = standard_role(item.get("role"))
    if role is not None:
        return role
    kind = item.get("type")
    return "tool" if isinstance(kind, str) and kind.endswith("_output") else "assistant"


def _render(item: Any) -> Transcript:
    t = Transcript()
    if not isinstance(item, Mapping):
        return t
    _said(t, item, "content")
    _said(t, item, "summary")  # a reasoning item's
    if "arguments" in item:
        # Blanked to "{}": a redacted call still has arguments the model API can parse.
        call(t, ["arguments"], item.get("name"), item["arguments"], blank="{}")
    _said(t, item, "output")
    rest(t, [], item, _KEEP)
    return t


def _said(t: Transcript, item: Mapping[str, Any], name: str) -> None:
    value = item.get(name)
    if isinstance(value, str):
        t.line()
        t.value([name], value)
    elif isinstance(value, list):
        parts(t, [name], value, empty=_EMPTY_PART)
    elif not silent(value):
        t.field([name], name, value)


def _message(index: int, item: Mapping[str, Any]) -> NewMessage:
    """The journal message storing ``item``: readable text, the item's form in metadata."""
    if not isinstance(item, Mapping):
        raise InvalidValueError(f"items[{index}]", f"an item is a dict, not {type(item).__name__}")
    try:
        t = _render(item)
        marker = t.marker(item)
        # What the journal gives back is JSON: an item that would not come back equal (a
        # tuple, a set, bytes, a date, NaN, an int key) is refused before anything is written.
        back = fill(_decode(_encode(marker)), t.content)
    except (TypeError, ValueError) as exc:  # ValueError: a lone surrogate cannot be UTF-8
        raise InvalidValueError(f"items[{index}]", f"not JSON: {exc}") from None
    if back != item:
        raise InvalidValueError(
            f"items[{index}]", "holds a value without an exact JSON form (tuple, set, bytes, date, NaN, ...)"
        )
    return NewMessage(role=_role(item), content=t.content, metadata={_KEY: marker})


def _item(message: Message) -> TResponseInputItem:
    """The item ``message`` stores, as a new dict."""
    marker = marker_of(message.metadata, _KEY)
    if marker is None:
        return _older_item(message)
    if message.redacted:
        value = blank(marker)
    else:
        value = restored(marker, message.content, _render)
        if value is None:  # replaced by an edit: the item is now that text, in its role
            shape = blank(marker)
            role = shape.get("role") if isinstance(shape, dict) else None
            value = {"role": role if isinstance(role, str) else message.role, "content": message.content}
    if isinstance(value, dict):
        return cast(TResponseInputItem, value)
    return cast(TResponseInputItem, {"role": message.role, "content": message.content})


def _older_item(message: Message) -> TResponseInputItem:
    """An item in the form earlier versions stored (the whole item as JSON in the content,
    marked ``{"form": "json"}``), or a plain text message."""
    if message.redacted:
        return cast(TResponseInputItem, {"role": message.role, "content": ""})
    marker = message.metadata.get(_KEY)
    if isinstance(marker, Mapping) and marker.get("form") == "json":
        with contextlib.suppress(msgspec.DecodeError):
            value = _decode(message.content)
            if isinstance(value, dict):
                return cast(TResponseInputItem, value)
    return cast(TResponseInputItem, {"role": message.role, "content": message.content})
