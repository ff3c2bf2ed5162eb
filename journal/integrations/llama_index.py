"""LlamaIndex: ``JournalChatStore``, a ``BaseChatStore`` whose keys are journal sessions.

Install with ``pip install "chat-journal[llama-index]"``. Pass a ``JournalChatStore`` as
``chat_store=`` to a LlamaIndex chat memory (``ChatMemoryBuffer``, ``ChatSummaryMemoryBuffer``)
or use it directly; each key is one journal session in the store's root.

What is promised:

- **Readable.** Every ``ChatMessage`` is one journal message that the journal's tools show as
  a transcript (``journal.integrations.transcript`` describes the form). The role is the
  standard one: ``user``, ``assistant``, ``system``, ``tool`` (``developer`` as ``system``,
  ``function`` as ``tool``, ``chatbot`` and ``model`` as ``assistant``). The content is the
  text blocks, one per line, every other block as ``[block_type: json]`` (images, audio,
  documents, thinking, tool calls), then each ``additional_kwargs`` entry that carries words
  as ``[name: value]``. The metadata holds ``{"llama_index": {"payload": ..., "spans":
  [...]}}``: LlamaIndex's JSON form of the message (``model_dump(mode="json")``) with those
  values blanked (its exact role, a tool result's ``tool_call_id`` and ``name``), and where
  each sits in the content.
- **Lossless.** Reading gives back an equal ``ChatMessage``.
- **Erasable.** Everything the user or the model said is in the content, so
  ``Journal.redact_message`` erases it; the metadata, sealed in the hash chain, keeps only the
  message's shape. A redacted message reads back as that shape with its words blanked (empty
  text; an empty message of the same role when the blanked form is no valid message).
- **Audited.** Each operation is one journal write that says what happened (after a
  ``created`` event on a key's first write): ``set_messages`` a ``cleared`` event and the
  messages (nothing from another writer in between), ``add_message`` a message (with ``idx``,
  recorded as inserted before the message then at ``idx``), ``delete_message`` and
  ``delete_last_message`` a ``message_removed`` event, ``delete_messages`` a ``cleared`` event.
  ``Journal.events`` and ``Journal.replay`` still show every message, deleted or not.
- **Exact under concurrency.** The operations that address a position (``add_message`` with
  ``idx``, ``delete_message``, ``delete_last_message``, ``delete_messages``) write only if the
  session is still the version they read, and read again otherwise: another writer, in this
  process or another, never makes them insert at, remove or return the wrong message.
  Appends from several processes to one key never lose a message.
- **SimpleChatStore's results.** Return values, unknown keys and out-of-range indexes behave as
  with LlamaIndex's ``SimpleChatStore``, including its ``IndexError`` for
  ``delete_message(key, idx)`` with ``idx < -len`` and for ``delete_last_message`` on a key
  whose list is empty. A key is listed by ``get_keys`` from its first write until
  ``delete_messages``; the journal keeps its session (and history), and the next write lists
  it again.
- **Off the event loop.** The async variants run the journal calls in a worker thread. A
  cancelled write still waits for the write to finish before re-raising the cancellation, so
  no write lands after the caller moved on.

Who closes the journal: a ``Journal`` or ``AsyncJournal`` passed as ``journal`` is yours (the
store never closes it). Given a folder or URL, the store uses the process's shared Journal on it
(``journal.integrations.shared.shared_journal``), so stores made per request open nothing new;
that one is closed at interpreter exit (or by ``close_shared()``).

Not promised, unlike ``SimpleChatStore``: ``set_messages(key, [])`` also unlists the key (the
journal records both it and ``delete_messages`` as a ``cleared`` event). Values in
``additional_kwargs`` come back as their JSON form, as after ``SimpleChatStore.persist``:
pydantic objects as dicts, bytes as base64 text, NaN and infinities as None. ``get_keys`` lists
every session in the root, including ones other code wrote, in no particular order; for a key
with no messages it reads the session's log to find its latest event. Messages that other code
wrote without the adapter's metadata read back as text messages (a role LlamaIndex does not
know as ``user``), and a message whose content ``Journal.edit_message`` replaced reads back as
a text message of its role. Messages stored by earlier versions of this adapter (plain text, or
the message's JSON in the content) read back as before. ``ChatMemoryBuffer.from_dict`` knows only
``SimpleChatStore``: pass ``chat_store=`` again when loading a memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

import msgspec
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from llama_index.core.storage.chat_store.base import BaseChatStore

from journal import (
    Cleared,
    ConflictError,
    Journal,
    Message,
    MessageNotFoundError,
    NewMessage,
    Session,
    SessionNotFoundError,
)
from journal.aio import AsyncJournal
from journal.integrations import settled
from journal.integrations.shared import JournalArg, adapter_journal, shared_journal
from journal.integrations.transcript import (
    Transcript,
    blank,
    marker_of,
    parts,
    rest,
    restored,
    standard_role,
)

__all__ = ["JournalChatStore"]

_KEY = "llama_index"
_ROLES = frozenset(role.value for role in MessageRole)
_EMPTY_BLOCK = {"block_type": "text", "text": ""}
_encode = msgspec.json.Encoder().encode

# A write that lost a race to another writer: read again and decide again.
_RACED = (ConflictError, MessageNotFoundError, SessionNotFoundError)


def _open(data: dict[str, Any]) -> Journal:
    """The process's shared ``Journal`` on the validated ``root``, when none was given."""
    return shared_journal(data["root"])


class JournalChatStore(BaseChatStore):
    """A LlamaIndex chat store on a journal: each key is a journal session.

    Give ``journal``: a ``Journal`` or ``AsyncJournal`` of yours (e.g. shared with the app's
    own code: the store never closes it, you do), or a folder or ``postgresql://`` URL (the
    process's shared ``Journal`` on it, with default options, is used; see
    ``journal.integrations.shared``). Constructing it does no file work. ``model_dump`` and
    ``to_dict`` give ``root`` and ``actor`` (never the ``Journal``), so
    ``JournalChatStore.from_dict`` and unpickling use the shared Journal on the same root.

    Keys must be valid journal session ids (non-empty, no NUL, at most the journal's length
    limit); another key raises ``InvalidSessionIdError``, a ``ValueError``.

    Args:
        journal: as above.
        actor: recorded on every event this store writes (None: no actor).
        root: the name ``to_dict`` gives the folder or URL (``from_dict`` passes it back):
            the same as ``journal`` with a folder or URL; given with a ``Journal``, it must be
            that journal's root.

    Raises:
        TypeError: no journal, or a value of another type.
        InvalidValueError: an empty path, or a URL no backend serves.

    Attributes:
        root: the journal's folder or URL.
        actor: recorded on every event this store writes (None: no actor).
        journal: the ``Journal`` holding the sessions.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    root: str = Field(description="The journal's folder or URL.")
    actor: str | None = Field(default=None, description="Recorded on every event this store writes.")
    journal: Journal = Field(default_factory=_open, exclude=True, repr=False)

    def __init__(
        self,
        journal: JournalArg | None = None,
        *,
        actor: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        # Spelled out so type checkers see the arguments; pydantic still validates them.
        data: dict[str, Any] = {"actor": actor}
        if root is not None:
            # Not deprecated, unlike the other adapters' old keyword: "root" is the field that
            # to_dict and pickling write, and from_dict, model_validate and unpickling pass back.
            data["root"] = root
            if journal is not None:
                data["journal"], _ = adapter_journal("JournalChatStore", journal)
        else:
            # Checked here, so that a bad value raises its own error and not pydantic's.
            resolved, shared = adapter_journal("JournalChatStore", journal)
            if shared and isinstance(journal, (str, os.PathLike)):
                data["root"] = os.fspath(journal)  # as given: what to_dict shows
            else:
                data["journal"] = resolved
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _root_or_journal(cls, data: Any) -> Any:
        # Also runs for model_validate, which bypasses __init__.
        if not isinstance(data, dict):
            return data
        root, journal = data.get("root"), data.get("journal")
        if isinstance(journal, AsyncJournal):
            journal = journal.journal
        elif isinstance(journal, (str, os.PathLike)) and not root:
            root, journal = journal, None
        if isinstance(root, os.PathLike):
            root = os.fspath(root)
        if not root and journal is None:
            raise ValueError(
                "JournalChatStore needs journal= (a Journal, an AsyncJournal, a folder or a URL)"
            )
        if isinstance(journal, Journal):
            if not root:
                root = journal.root
            elif os.path.realpath(root) != os.path.realpath(journal.root):
                raise ValueError(f"root={root!r} is not the journal's folder {journal.root!r}")
        out = {**data, "root": root}
        if journal is None:
            out.pop("journal", None)  # the default factory opens the shared one on root
        else:
            out["journal"] = journal
        return out

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records in a serialised memory's ``chat_store``."""
        return "JournalChatStore"

    def __getstate__(self) -> dict[Any, Any]:
        # BaseComponent.__getstate__ drops fields it cannot pickle (the Journal) by deleting
        # them from the live object's __dict__, which pydantic hands it, breaking this store.
        # Pickle a copy without it; unpickling calls __init__(root=..., actor=...) again.
        state = dict(BaseModel.__getstate__(self))
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != "journal"}
        return state

    # -- reads -----------------------------------------------------------------------------

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The key's messages in order (a new list of new messages; [] for an unknown key)."""
        try:
            session = self.journal.get(key)
        except SessionNotFoundError:
            return []
        return [_chat_message(m) for m in session.messages_view]

    def get_keys(self) -> list[str]:
        """Every key listed: written to and not emptied by ``delete_messages`` since."""
        return [key for key in self.journal.sessions() if self._listed(key) is not None]

    # -- writes ----------------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the key's messages: one write of a ``cleared`` event and the messages.

        Raises:
            ValueError: a message holds a value JSON cannot represent; nothing is written.
        """
        # Encoded before any file work, so a message that is not JSON writes nothing.
        new = [_stored(m) for m in messages]
        while True:
            try:
                self.journal.add_messages(key, new, replace=True, actor=self.actor)
                return
            except SessionNotFoundError:
                self.journal.get_or_create(key, actor=self.actor)

    def add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        """Append ``message``, or insert it at ``idx`` as ``list.insert`` would.

        An ``idx`` at or past the end appends; a negative one counts from the end (below
        ``-len``: the front). The insertion is written as "before the message now at ``idx``".

        Raises:
            ValueError: the message holds a value JSON cannot represent; nothing is written.
        """
        new = _stored(message)
        while True:
            expected = before = None
            if idx is not None:
                try:
                    session = self.journal.get(key)
                except SessionNotFoundError:
                    pass  # a new key: any idx appends, and the append below creates the session
                else:
                    expected, before = session.version, _id_at(session, idx)
            try:
                self.journal.add_message(
                    key,
                    new.role,
                    new.content,
                    metadata=new.metadata,
                    before=before,
                    expected_version=expected,
                    actor=self.actor,
                )
                return
            except SessionNotFoundError:
                # The key's first write; trying the append first saves a read on every other.
                self.journal.get_or_create(key, actor=self.actor)
            except (ConflictError, MessageNotFoundError):
                continue

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Empty the key (a ``cleared`` event) and return what it held; None if not listed."""
        while True:
            session = self._listed(key)
            if session is None:
                return None
            try:
                self.journal.clear(key, expected_version=session.version, actor=self.actor)
            except _RACED:
                continue
            return [_chat_message(m) for m in session.messages_view]

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Remove and return the message at ``idx`` (negative counts from the end).

        Returns None if the key is not listed or ``idx >= len``.

        Raises:
            IndexError: ``idx < -len`` (as ``list.pop``); nothing is written.
        """
        while True:
            session = self._listed(key)
            if session is None or idx >= len(session.messages_view):
                return None
            if idx < -len(session.messages_view):
                raise IndexError("pop index out of range")
            target = session.messages_view[idx]
            try:
                removed = self.journal.remove_message(
                    key, target.id, expected_version=session.version, actor=self.actor
                )
            except _RACED:
                continue
            return _chat_message(removed)

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Remove and return the last message; None if the key is not listed.

        Raises:
            IndexError: the key is listed but holds no message (as ``list.pop``).
        """
        while True:
            session = self._listed(key)
            if session is None:
                return None
            if not session.messages_view:
                raise IndexError("pop from empty list")
            try:
                removed = self.journal.pop_message(key, expected_version=session.version, actor=self.actor)
            except _RACED:
                continue
            return _chat_message(removed)

    # -- async: the same, off the event loop ------------------------------------------------

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        """``get_messages`` in a worker thread."""
        return await asyncio.to_thread(self.get_messages, key)

    async def aget_keys(self) -> list[str]:
        """``get_keys`` in a worker thread."""
        return await asyncio.to_thread(self.get_keys)

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """``set_messages`` in a worker thread (finished even if cancelled)."""
        await settled(lambda: self.set_messages(key, messages))

    async def async_add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        """``add_message`` in a worker thread (finished even if cancelled)."""
        await settled(lambda: self.add_message(key, message, idx))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        """``delete_messages`` in a worker thread (finished even if cancelled)."""
        return await settled(lambda: self.delete_messages(key))

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        """``delete_message`` in a worker thread (finished even if cancelled)."""
        return await settled(lambda: self.delete_message(key, idx))

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        """``delete_last_message`` in a worker thread (finished even if cancelled)."""
        return await settled(lambda: self.delete_last_message(key))

    # -- helpers ---------------------------------------------------------------------------

    def _listed(self, key: str) -> Session | None:
        """The key's session if ``SimpleChatStore`` would hold the key, else None.

        ``SimpleChatStore.delete_messages`` drops the key, while the journal keeps the session
        and writes ``cleared``: a session with no messages whose latest event is ``cleared``
        stands for a dropped key.
        """
        while True:
            try:
                session = self.journal.get(key)
                if session.messages_view:
                    return session
                latest = next(self.journal.events(key, after=session.version - 1), None)
            except SessionNotFoundError:
                return None
            if latest is None:
                # A retention policy dropped even the latest event: an empty session that old
                # is most likely one that was emptied.
                return None
            if latest.seq == session.version:
                return None if isinstance(latest, Cleared) else session
            # The two reads disagree (the session was replaced in between): read both again.


def _id_at(session: Session, idx: int) -> str | None:
    """The id of the message ``list.insert(idx, ...)`` would insert before (None: append)."""
    n = len(session.messages_view)
    position = max(idx + n, 0) if idx < 0 else idx
    return session.messages_view[position].id if position < n else None


def _role(role: object) -> str:
    return standard_role(role) or "assistant"


def _render(dump: Any) -> Transcript:
    t = Transcript()
    if not isinstance(dump, Mapping):
        return t
    blocks = dump.get("blocks")
    if isinstance(blocks, list):
        parts(t, ["blocks"], blocks, empty=_EMPTY_BLOCK)
    rest(t, [], dump, ("role", "blocks", "additional_kwargs"))
    kwargs = dump.get("additional_kwargs")
    if isinstance(kwargs, Mapping):
        # A tool result's call id and the tool's name are the app's, not something said.
        keep = ("tool_call_id", "name") if _role(dump.get("role")) == "tool" else ("tool_call_id",)
        rest(t, ["additional_kwargs"], kwargs, keep)
    return t


def _stored(message: ChatMessage) -> NewMessage:
    """The journal message storing ``message``: readable text, LlamaIndex's form in metadata."""
    role = MessageRole(message.role).value
    try:
        dump = message.model_dump(mode="json")
        t = _render(dump)
        marker = t.marker(dump)
    except ValueError as exc:  # PydanticSerializationError; UnicodeEncodeError (lone surrogate)
        raise ValueError(f"a {role} message cannot be stored as JSON: {exc}") from exc
    return NewMessage(role=_role(role), content=t.content, metadata={_KEY: marker})


def _chat_message(message: Message) -> ChatMessage:
    """The ``ChatMessage`` stored in ``message`` (a new object)."""
    marker = marker_of(message.metadata, _KEY)
    if marker is None:
        return _older(message)
    if not message.redacted:
        dump = restored(marker, message.content, _render)
        if dump is not None:
            built = _validated(dump)
            if built is not None:
                return built
    shape = blank(marker)
    if message.redacted:
        built = _validated(shape)
        if built is not None:
            return built
    # Replaced by an edit (or a redacted form that is no valid message): text in its role.
    role = shape.get("role") if isinstance(shape, dict) else None
    if not isinstance(role, str) or role not in _ROLES:
        role = message.role if message.role in _ROLES else MessageRole.USER.value
    return ChatMessage(role=role, content=message.content)


def _validated(dump: Any) -> ChatMessage | None:
    # Through JSON, as pydantic reads bytes fields (images, audio) from their JSON form only.
    try:
        return ChatMessage.model_validate_json(_encode(dump))
    except (ValidationError, TypeError):
        return None


def _older(message: Message) -> ChatMessage:
    """A message in the form earlier versions stored (plain text, or the message's JSON form
    in the content, marked ``{"form": "json"}``), or one other code wrote."""
    role = MessageRole(message.role) if message.role in _ROLES else MessageRole.USER
    if message.redacted:
        return ChatMessage(role=role, content="")
    marker = message.metadata.get(_KEY)
    if isinstance(marker, Mapping) and marker.get("form") == "json":
        with contextlib.suppress(ValidationError):
            return ChatMessage.model_validate_json(message.content)
    return ChatMessage(role=role, content=message.content)
