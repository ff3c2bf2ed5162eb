"""What each write appends: its argument checks, and the build run under the session's lock.

Arguments are checked (and frozen) before anything is queued, so bad input raises before a
byte is written; each build then checks the write against the session's true state, read
under the session's lock, and returns the event(s) to append.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from journal.core import events as ev
from journal.core.events import EMPTY_MAPPING
from journal.core.head import Record
from journal.core.state import Message, Session, edited, message_of
from journal.core.validate import check_text, freeze_json, mapping, precondition, sequence
from journal.errors import InvalidValueError, MessageNotFoundError, SessionExistsError

__all__ = [
    "Build",
    "NewMessage",
    "add_build",
    "check_message",
    "checked_messages",
    "clear_build",
    "create_build",
    "edit_build",
    "find_in_history",
    "remove_build",
    "settings_build",
]

# A write: given the current state (None: absent), the next seq and the time, the event(s) to
# append. Several events of one write go out together, with consecutive seqs.
Build = Callable[[Session | None, int, datetime], Sequence[ev.Event]]


class NewMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message to add with ``Journal.add_messages`` (a mapping with these keys works too).

    ``hidden``: recorded in the history but never shown: its ``message_added`` event is
    followed, in the same write, by a ``message_removed``. For records an integration keeps
    beside the conversation (``events``, ``journal log`` and ``verify`` see them; ``journal
    show`` and the session's messages do not).
    """

    role: str
    content: str
    metadata: Mapping[str, Any] | None = None
    references: Sequence[Any] | None = None
    hidden: bool = False


class _Checked(msgspec.Struct, frozen=True):
    role: str
    content: str
    metadata: Mapping[str, Any]
    references: tuple[Any, ...]
    message_id: str
    hidden: bool = False


def check_message(
    role: object,
    content: object,
    metadata: object,
    references: object,
    field: str = "",
    hidden: object = False,
) -> _Checked:
    """Check and freeze one new message's values, and give it a fresh id."""
    if type(hidden) is not bool:
        raise InvalidValueError(field + "hidden", f"must be True or False, not {type(hidden).__name__}")
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
    if type(role) is not str or not role or not role.isascii():  # else it is plainly valid
        role = check_text(role, field + "role", allow_empty=False)
    if type(content) is not str or not content.isascii():  # else it is plainly valid
        content = check_text(content, field + "content")
    return _Checked(role, content, meta, refs, os.urandom(16).hex(), hidden)


def checked_messages(messages: object) -> list[_Checked]:
    """``add_messages``' argument: NewMessages or mappings with the same keys."""
    out = []
    for index, item in enumerate(sequence(messages, "messages")):
        field = f"messages[{index}]."
        if isinstance(item, NewMessage):
            out.append(
                check_message(item.role, item.content, item.metadata, item.references, field, item.hidden)
            )
            continue
        if not isinstance(item, Mapping):
            raise InvalidValueError(
                f"messages[{index}]", f"must be a NewMessage or a mapping, not {type(item).__name__}"
            )
        unknown = set(item) - {"role", "content", "metadata", "references", "hidden"}
        if unknown:
            raise InvalidValueError(f"messages[{index}]", f"unknown keys {sorted(map(str, unknown))}")
        for key in ("role", "content"):
            if key not in item:
                raise InvalidValueError(field + key, "is missing")
        out.append(
            check_message(
                item["role"],
                item["content"],
                item.get("metadata"),
                item.get("references"),
                field,
                item.get("hidden", False),
            )
        )
    return out


def create_build(sid: str, actor: str | None, settings: Mapping[str, Any] = ev.EMPTY_MAPPING) -> Build:
    """Create the session ``sid``, with ``settings`` set by a second event of the same write."""

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        if state is not None:
            raise SessionExistsError(sid, 0, state.version)
        created = ev.Created(seq=seq, at=now, actor=actor, session_id=sid)
        if not settings:
            return [created]
        return [created, ev.SettingsChanged(seq=seq + 1, at=now, actor=actor, changes=settings)]

    return build


def settings_build(
    sid: str, expected: int | None, actor: str | None, changes: Mapping[str, Any], removed: tuple[str, ...]
) -> Build:
    """Set ``changes`` and remove ``removed`` in one ``settings_changed``."""

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        precondition(sid, state, expected)
        return [ev.SettingsChanged(seq=seq, at=now, actor=actor, changes=changes, removed=removed)]

    return build


def clear_build(sid: str, expected: int | None, actor: str | None) -> Build:
    """Empty the visible conversation."""

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        precondition(sid, state, expected)
        return [ev.Cleared(seq=seq, at=now, actor=actor)]

    return build


def add_build(
    sid: str,
    expected: int | None,
    actor: str | None,
    messages: Sequence[_Checked],
    *,
    before: str | None = None,
    replace: bool = False,
    out: list[Message] | None = None,
) -> Build:
    """Append ``messages`` (after a ``cleared`` with ``replace``; in front of ``before``);
    ``out`` receives them as written, hidden ones included."""

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        state = precondition(sid, state, expected)
        if before is not None and state.messages_view.index_of(before) < 0:
            raise MessageNotFoundError(sid, before, "to insert before")
        events: list[ev.Event] = []
        if replace:
            events.append(ev.Cleared(seq=seq, at=now, actor=actor))
        for message in messages:
            events.append(
                ev.MessageAdded(
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
            if message.hidden:
                events.append(
                    ev.MessageRemoved(
                        seq=seq + len(events), at=now, actor=actor, message_id=message.message_id
                    )
                )
        if out is not None:  # the last build is the one written
            out[:] = [message_of(e) for e in events if isinstance(e, ev.MessageAdded)]
        return events

    return build


def remove_build(
    sid: str, expected: int | None, actor: str | None, message_id: str | None, out: list[Message]
) -> Build:
    """Remove the visible message ``message_id`` (None: the last one); it goes into ``out``."""

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        state = precondition(sid, state, expected)
        if message_id is None:
            if not state.messages_view:
                raise MessageNotFoundError(sid, None, "to pop: the conversation is empty")
            index = len(state.messages_view) - 1
        else:
            index = _visible(sid, state, message_id, "to remove")
        out.append(state.messages_view[index])
        return [ev.MessageRemoved(seq=seq, at=now, actor=actor, message_id=state.messages_view[index].id)]

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

    def build(state: Session | None, seq: int, now: datetime) -> list[ev.Event]:
        state = precondition(sid, state, expected)
        old = state.messages_view[_visible(sid, state, message_id, "to edit")]
        if old.redacted:
            raise InvalidValueError(
                "message_id", f"{message_id!r} is redacted: its content cannot be replaced"
            )
        edited = ev.MessageEdited(
            seq=seq,
            at=now,
            actor=actor,
            message_id=message_id,
            content=content,
            metadata=old.metadata if metadata is None else metadata,
        )
        return [edited]

    return build


def find_in_history(
    base: Session | None, records: Iterable[Record], message_id: str
) -> tuple[Message | None, int | None]:
    """The message as the stored history (a retention base and the records after it) last
    showed it, visible or not (None: it holds no such message), and the seq of its redaction
    if any."""
    found: Message | None = None
    if base is not None and (index := base.messages_view.index_of(message_id)) >= 0:
        found = base.messages_view[index]
    redacted_by = None
    for record in records:
        event = record.event
        if isinstance(event, ev.MessageAdded) and event.message_id == message_id:
            found = message_of(event)
        elif isinstance(event, ev.MessageEdited) and event.message_id == message_id and found is not None:
            found = edited(found, event)
        elif isinstance(event, ev.MessageRedacted) and event.message_id == message_id:
            redacted_by = event.seq
    return found, redacted_by


def _visible(sid: str, state: Session, message_id: str, purpose: str) -> int:
    index = state.messages_view.index_of(message_id)
    if index < 0:
        raise MessageNotFoundError(sid, message_id, f"{purpose}: it is not in the visible conversation")
    return index
