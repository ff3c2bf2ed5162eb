"""What each message write appends: its argument checks, and the build run under the lock.

Arguments are checked (and frozen) before anything is queued, so bad input raises before a
byte is written; each build then checks the write against the session's true state, read
under the session's lock, and returns the event(s) to append (see ``commit``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import msgspec

from journal.backends.files.layout import check_session_id
from journal.core.codec import freeze_json
from journal.core.events import (
    EMPTY_MAPPING,
    Cleared,
    Event,
    MessageAdded,
    MessageEdited,
    MessageRedacted,
    MessageRemoved,
)
from journal.core.state import Message, Session
from journal.core.validate import check_actor, check_text, check_version, mapping, precondition, sequence
from journal.engine.commit import Build
from journal.engine.storage import History
from journal.errors import InvalidValueError, MessageNotFoundError

__all__ = [
    "MessageWrites",
    "NewMessage",
    "add_build",
    "check_message",
    "checked_messages",
    "edit_build",
    "find_in_history",
    "remove_build",
]


class NewMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message to add with ``Journal.add_messages`` (a mapping with these keys works too)."""

    role: str
    content: str
    metadata: Mapping[str, Any] | None = None
    references: Sequence[Any] | None = None


class _Checked(NamedTuple):
    role: str
    content: str
    metadata: Mapping[str, Any]
    references: tuple[Any, ...]
    message_id: str


def check_message(
    role: object, content: object, metadata: object, references: object, field: str = ""
) -> _Checked:
    """Check and freeze one new message's values, and give it a fresh id."""
    meta = (
        EMPTY_MAPPING
        if metadata is None
        else freeze_json(mapping(metadata, field + "metadata"), field + "metadata")
    )
    refs = (
        ()
        if references is None
        else freeze_json(sequence(references, field + "references"), field + "references")
    )
    return _Checked(
        check_text(role, field + "role", allow_empty=False),
        check_text(content, field + "content"),
        meta,
        refs,
        os.urandom(16).hex(),
    )


def checked_messages(messages: object) -> list[_Checked]:
    """``add_messages``' argument: NewMessages or mappings with the same keys."""
    out = []
    for index, item in enumerate(sequence(messages, "messages")):
        field = f"messages[{index}]."
        if isinstance(item, NewMessage):
            out.append(check_message(item.role, item.content, item.metadata, item.references, field))
            continue
        if not isinstance(item, Mapping):
            raise InvalidValueError(
                f"messages[{index}]", f"must be a NewMessage or a mapping, not {type(item).__name__}"
            )
        unknown = set(item) - {"role", "content", "metadata", "references"}
        if unknown:
            raise InvalidValueError(f"messages[{index}]", f"unknown keys {sorted(map(str, unknown))}")
        for key in ("role", "content"):
            if key not in item:
                raise InvalidValueError(field + key, "is missing")
        out.append(
            check_message(item["role"], item["content"], item.get("metadata"), item.get("references"), field)
        )
    return out


def add_build(
    sid: str,
    expected: int | None,
    actor: str | None,
    messages: Sequence[_Checked],
    *,
    before: str | None = None,
    replace: bool = False,
) -> Build:
    """Append ``messages`` (after a ``cleared`` with ``replace``; in front of ``before``)."""

    def build(state: Session | None, seq: int, now: datetime) -> list[Event]:
        state = precondition(sid, state, expected)
        if before is not None and state.messages.index_of(before) < 0:
            raise MessageNotFoundError(sid, before, "to insert before")
        events: list[Event] = []
        if replace:
            events.append(Cleared(seq=seq, at=now, actor=actor))
        for message in messages:
            events.append(
                MessageAdded(
                    seq=seq + len(events),
                    at=now,
                    actor=actor,
                    message_id=message.message_id,
                    role=message.role,
                    content=message.content,
                    metadata=message.metadata,
                    references=message.references,
                    before=before,
                )
            )
        return events

    return build


def remove_build(
    sid: str, expected: int | None, actor: str | None, message_id: str | None, out: list[Message]
) -> Build:
    """Remove the visible message ``message_id`` (None: the last one); it goes into ``out``."""

    def build(state: Session | None, seq: int, now: datetime) -> Event:
        state = precondition(sid, state, expected)
        if message_id is None:
            if not state.messages:
                raise MessageNotFoundError(sid, None, "to pop: the conversation is empty")
            index = len(state.messages) - 1
        else:
            index = _visible(sid, state, message_id, "to remove")
        out.append(state.messages[index])
        return MessageRemoved(seq=seq, at=now, actor=actor, message_id=state.messages[index].id)

    return build


def edit_build(
    sid: str,
    expected: int | None,
    actor: str | None,
    message_id: str,
    content: str,
    metadata: Mapping[str, Any] | None,
) -> Build:
    """Replace the visible message's content (and metadata, unless None)."""

    def build(state: Session | None, seq: int, now: datetime) -> Event:
        state = precondition(sid, state, expected)
        old = state.messages[_visible(sid, state, message_id, "to edit")]
        if old.redacted:
            raise InvalidValueError(
                "message_id", f"{message_id!r} is redacted: its content cannot be replaced"
            )
        return MessageEdited(
            seq=seq,
            at=now,
            actor=actor,
            message_id=message_id,
            content=content,
            metadata=old.metadata if metadata is None else metadata,
        )

    return build


def find_in_history(history: History, message_id: str) -> tuple[bool, int | None]:
    """Whether the stored history holds the message, and the seq of its redaction if any."""
    base, _, records = history
    found = base is not None and base.messages.index_of(message_id) >= 0
    redacted_by = None
    for record in records:
        event = record.event
        if isinstance(event, MessageAdded) and event.message_id == message_id:
            found = True
        elif isinstance(event, MessageRedacted) and event.message_id == message_id:
            redacted_by = event.seq
    return found, redacted_by


def _visible(sid: str, state: Session, message_id: str, purpose: str) -> int:
    index = state.messages.index_of(message_id)
    if index < 0:
        raise MessageNotFoundError(sid, message_id, f"{purpose}: it is not in the visible conversation")
    return index


class _WriteHost(Protocol):
    """What the message writes use of the Journal."""

    def _write(self, sid: str, build: Build) -> Session: ...

    def get(self, session_id: str) -> Session: ...


class MessageWrites:
    """``add_messages``, ``pop_message``, ``remove_message`` and ``edit_message``, for ``Journal``:
    each checks its arguments, then queues one build on the session's writes."""

    def add_messages(
        self: _WriteHost,
        session_id: str,
        messages: Iterable[NewMessage | Mapping[str, Any]],
        *,
        replace: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> tuple[Message, ...]:
        """Append several messages in one write and return them, in order.

        The messages get consecutive seqs with no other write between them, and share one
        write and one fsync. With ``replace``, a ``cleared`` event goes first: the messages
        become the whole visible conversation. A crash during the write can keep a prefix of
        the lines (never reported as written), as with any unacknowledged write.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            InvalidValueError: a message cannot be stored (nothing is written).
        """
        sid = check_session_id(session_id)
        checked = checked_messages(messages)
        expected = check_version(expected_version)
        actor = check_actor(actor)
        if not checked and not replace:
            precondition(sid, self.get(sid), expected)
            return ()
        state = self._write(sid, add_build(sid, expected, actor, checked, replace=replace))
        return state.messages[len(state.messages) - len(checked) :]

    def pop_message(
        self: _WriteHost, session_id: str, *, expected_version: int | None = None, actor: str | None = None
    ) -> Message:
        """Remove the last visible message (undo) and return it; the log keeps it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: the conversation is empty (``message_id`` is None).
        """
        return _remove(self, session_id, None, expected_version, actor)

    def remove_message(
        self: _WriteHost,
        session_id: str,
        message_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Remove a visible message from the conversation and return it; the log keeps it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: no visible message has that id.
        """
        return _remove(
            self, session_id, check_text(message_id, "message_id", allow_empty=False), expected_version, actor
        )

    def edit_message(
        self: _WriteHost,
        session_id: str,
        message_id: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Message:
        """Replace a visible message's content (and metadata, unless None) and return it.

        The message keeps its id, seq and place; ``edited_at`` records when. The log keeps
        the previous content, so ``replay`` before the edit shows it.

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: no visible message has that id.
            InvalidValueError: content or metadata cannot be stored, or the message is redacted.
        """
        sid = check_session_id(session_id)
        mid = check_text(message_id, "message_id", allow_empty=False)
        text = check_text(content, "content")
        meta = None if metadata is None else freeze_json(mapping(metadata, "metadata"), "metadata")
        build = edit_build(sid, check_version(expected_version), check_actor(actor), mid, text, meta)
        messages = self._write(sid, build).messages
        return messages[messages.index_of(mid)]


def _remove(
    host: _WriteHost, session_id: str, message_id: str | None, expected: object, actor: object
) -> Message:
    sid = check_session_id(session_id)
    removed: list[Message] = []
    host._write(sid, remove_build(sid, check_version(expected), check_actor(actor), message_id, removed))
    return removed[-1]
