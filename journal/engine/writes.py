"""What each message write appends: its argument checks, and the build run under the lock.

Arguments are checked (and frozen) before anything is queued, so bad input raises before a
byte is written; each build then checks the write against the session's true state, read
under the session's lock, and returns the event(s) to append (see ``commit``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from journal.core.commands import Build, NewMessage, add_build, checked_messages, edit_build, remove_build
from journal.core.state import Message, Session
from journal.core.validate import (
    check_actor,
    check_session_id,
    check_text,
    check_version,
    freeze_json,
    mapping,
    precondition,
)

__all__ = [
    "MessageWrites",
]


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
