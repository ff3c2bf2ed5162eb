"""Compare what a ``Journal`` returned with what the reference model says.

The model is given the journal's message ids and timestamps, so everything is compared exactly:
ids, seqs, versions, times, actors, roles, contents, redactions and edits, and JSON values
strictly (``True`` is not ``1``, ``1`` is not ``1.0``; see ``canon``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from journal.core import events as ev
from journal.core.state import Message, Session
from journal.errors import ConflictError, JournalError, MessageNotFoundError
from journal.testing.model import ModelEvent, ModelMessage, ModelSession, canon

__all__ = [
    "assert_same_error",
    "assert_same_message",
    "assert_same_session",
    "event_facts",
    "visible_ids",
]


# The facts compared exactly; JSON values (metadata, settings, references) go through ``canon``.
_message_facts = attrgetter("id", "seq", "role", "content", "at", "actor", "redacted", "edited_at")
_session_facts = attrgetter("id", "version", "created_at", "updated_at")


def assert_same_message(got: Message, want: ModelMessage) -> None:
    """Raise AssertionError unless ``got`` is the model's message."""
    assert _message_facts(got) == _message_facts(want), f"message {got!r} is not the model's {want!r}"
    assert canon(got.metadata) == canon(want.metadata), f"metadata of seq {got.seq}"
    assert canon(got.references) == canon(want.references), f"references of seq {got.seq}"


def assert_same_session(got: Session, want: ModelSession) -> None:
    """Raise AssertionError unless ``got`` is the model's session."""
    where = f"session {got.id!r} at version {got.version}, the model's at {want.version}"
    assert _session_facts(got) == _session_facts(want), where
    assert canon(got.settings) == canon(want.settings), f"settings of {got.id!r}"
    assert len(got.messages) == len(want.messages), f"{got.id!r} holds {len(got.messages)} messages"
    for message, expected in zip(got.messages, want.messages, strict=True):
        assert_same_message(message, expected)


def event_facts(event: ev.Event | ModelEvent) -> tuple[Any, ...]:
    """The deterministic content of an event, from the journal or from the model."""
    common = (event.seq, event.type, event.at, event.actor)
    if isinstance(event, ModelEvent):
        if event.type == "created":
            return (*common, event.session_id)
        if event.type == "message_added":
            added = (event.role, event.content, canon(event.metadata), canon(event.references))
            return (*common, event.message_id, *added, event.before, event.redacted_by)
        if event.type == "settings_changed":
            return (*common, canon(event.changes), list(event.removed))
        if event.type == "message_removed":
            return (*common, event.message_id)
        if event.type == "message_edited":
            edit = (event.content, canon(event.metadata), event.redacted_by)
            return (*common, event.message_id, *edit)
        if event.type == "message_redacted":
            return (*common, event.message_id, event.reason)
        return common
    if isinstance(event, ev.Created):
        return (*common, event.session_id)
    if isinstance(event, ev.MessageAdded):
        added = (event.role, event.content, canon(event.metadata), canon(event.references))
        return (*common, event.message_id, *added, event.before, event.redacted_by)
    if isinstance(event, ev.SettingsChanged):
        return (*common, canon(event.changes), list(event.removed))
    if isinstance(event, ev.MessageRemoved):
        return (*common, event.message_id)
    if isinstance(event, ev.MessageEdited):
        return (*common, event.message_id, event.content, canon(event.metadata), event.redacted_by)
    if isinstance(event, ev.MessageRedacted):
        return (*common, event.message_id, event.reason)
    return common


def visible_ids(events: Sequence[ev.Event], upto: int | None = None) -> list[str]:
    """Ids of the visible messages after the events with seq <= upto, by a naive walk."""
    ids: list[str] = []
    for event in events:
        if upto is not None and event.seq > upto:
            break
        if event.type == "cleared":
            ids = []
        elif isinstance(event, ev.MessageAdded):
            ids.insert(len(ids) if event.before is None else ids.index(event.before), event.message_id)
        elif isinstance(event, ev.MessageRemoved):
            ids.remove(event.message_id)
    return ids


def assert_same_error(error: JournalError, model_call: Callable[[], object]) -> None:
    """The model must fail the same way: same type, same session, same versions."""
    expected: JournalError | None = None
    try:
        model_call()
    except JournalError as exc:
        expected = exc
    if expected is None:
        raise AssertionError(f"the journal raised {error!r}; the model succeeded")
    assert type(error) is type(expected), f"the journal raised {error!r}, the model {expected!r}"
    assert getattr(error, "session_id", None) == getattr(expected, "session_id", None), (error, expected)
    if isinstance(error, MessageNotFoundError):
        assert isinstance(expected, MessageNotFoundError)
        assert error.message_id == expected.message_id, (error, expected)
    if isinstance(error, ConflictError):
        assert isinstance(expected, ConflictError)
        assert (error.expected, error.actual) == (expected.expected, expected.actual), (error, expected)
