"""The reference model: the public API of ``journal.Journal`` over plain Python lists.

``InMemoryJournal`` keeps, per session, a list of :class:`ModelEvent` and computes every state
by a naive fold over that list (no caching, no sharing, no ``journal.state.apply``), so it is
an independent statement of what the journal promises. Use it as the oracle of a property
test (``JournalMachine`` does), as the sequential specification of the linearizability
checker, or as an in-memory fake in your own tests. Its semantics:

* every write appends exactly one event with the next seq (1, 2, 3, ...), and returns the state
  after it; ``update_settings`` with nothing to set or remove writes nothing;
* ``expected_version`` that is not the current version raises ``ConflictError(expected,
  actual)`` and writes nothing; a missing session raises ``SessionNotFoundError`` first;
* ``create`` of an existing session raises ``SessionExistsError`` (expected 0, actual version);
* ``clear`` empties the visible messages and keeps the settings; the history keeps everything;
* ``add_messages`` appends one event per message (after a ``cleared`` with ``replace``), all
  at once; ``pop_message``, ``remove_message`` and ``edit_message`` act on visible messages
  (``MessageNotFoundError`` otherwise) and the history keeps the originals;
* ``redact_message`` appends a ``message_redacted`` event and erases the message's content
  from every earlier event of the history (it reads as "" with ``redacted_by`` set), so
  replays and ``events()`` no longer show it anywhere; redacting again writes nothing;
* settings changes set keys first, then remove the keys in ``remove``;
* ``replay(at=seq)`` folds the events with ``seq <= at``; ``replay(at=datetime)`` the events up to
  the first one later than ``at``; nothing folded raises ``SessionNotFoundError``;
* ``drop_history(sid, through)`` plays a retention policy: events ``1..through`` stay in the
  state but leave the history, so ``events()`` starts after them and a ``replay`` that would
  stop before event ``through`` raises ``HistoryPrunedError(sid, through)``.

Differences from ``Journal``, by design: message ids come from the caller (``message_id=``,
``message_ids=``, so a test can give the model the ids the journal chose), else they are the
message's seq in 32 hex digits (deterministic, so equal histories give equal models);
timestamps come from the caller (``now=``) or the model's clock; values are stored as plain
JSON (dicts, lists) and handed out as deep copies; states are ``ModelSession`` and
``ModelMessage`` dataclasses, compared with a ``Session`` by ``assert_same_session``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from journal.core.events import thaw
from journal.errors import (
    ConflictError,
    HistoryPrunedError,
    InvalidSessionIdError,
    InvalidValueError,
    MessageNotFoundError,
    SessionExistsError,
    SessionNotFoundError,
    VersionNotFoundError,
)

__all__ = [
    "InMemoryJournal",
    "ModelEvent",
    "ModelMessage",
    "ModelSession",
    "canon",
    "plain",
]


plain = thaw
"""A plain JSON copy of a value: any mapping becomes a dict, any list or tuple a list."""


def canon(value: Any) -> Any:
    """``plain(value)`` with every scalar tagged by its type, for strict comparison.

    Python says ``True == 1 == 1.0`` and ``0.0 == -0.0``; after ``canon`` those differ, so a
    bool that came back as an int, or an int as a float, is caught. Floats are compared by
    their exact bits (``float.hex``).
    """
    if isinstance(value, Mapping):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value]
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


@dataclass(frozen=True)
class ModelEvent:
    """One event of the model's history (fields unused by its ``type`` keep their defaults)."""

    seq: int
    type: str
    at: datetime
    actor: str | None
    session_id: str = ""
    role: str = ""
    content: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    references: list[Any] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    message_id: str = ""
    before: str | None = None
    redacted_by: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class ModelMessage:
    """A visible message."""

    seq: int
    role: str
    content: str
    at: datetime
    metadata: dict[str, Any]
    references: list[Any]
    actor: str | None
    id: str = ""
    redacted: bool = False
    edited_at: datetime | None = None


@dataclass(frozen=True)
class ModelSession:
    """A session state as the model computes it."""

    id: str
    version: int
    created_at: datetime
    updated_at: datetime
    messages: list[ModelMessage]
    settings: dict[str, Any]


def fold(events: Iterable[ModelEvent]) -> ModelSession | None:
    """The naive fold: walk the whole history, building fresh lists and dicts."""
    sid: str | None = None
    version = 0
    created_at = updated_at = datetime.min.replace(tzinfo=timezone.utc)
    messages: list[ModelMessage] = []
    settings: dict[str, Any] = {}
    for event in events:
        assert event.seq == version + 1, "model history must be contiguous"
        version = event.seq
        updated_at = event.at
        if event.type == "created":
            assert sid is None, "model history has a second 'created'"
            sid = event.session_id
            created_at = event.at
        elif event.type == "message_added":
            message = ModelMessage(
                seq=event.seq,
                role=event.role,
                content=event.content,
                at=event.at,
                metadata=copy.deepcopy(event.metadata),
                references=copy.deepcopy(event.references),
                actor=event.actor,
                id=event.message_id,
                redacted=event.redacted_by is not None,
            )
            ids = [m.id for m in messages]
            messages.insert(len(messages) if event.before is None else ids.index(event.before), message)
        elif event.type == "message_removed":
            messages = [m for m in messages if m.id != event.message_id]
        elif event.type == "message_edited":
            messages = [
                m
                if m.id != event.message_id
                else dataclasses.replace(
                    m,
                    content=event.content,
                    metadata=copy.deepcopy(event.metadata),
                    edited_at=event.at,
                    redacted=event.redacted_by is not None,
                )
                for m in messages
            ]
        elif event.type == "message_redacted":
            messages = [
                m if m.id != event.message_id else dataclasses.replace(m, content="", redacted=True)
                for m in messages
            ]
        elif event.type == "settings_changed":
            settings.update(copy.deepcopy(event.changes))
            for key in event.removed:
                settings.pop(key, None)
        elif event.type == "cleared":
            messages = []
        else:  # pragma: no cover - the model only writes the types above
            raise AssertionError(f"unknown model event type {event.type!r}")
    if sid is None:
        return None
    return ModelSession(
        id=sid,
        version=version,
        created_at=created_at,
        updated_at=updated_at,
        messages=messages,
        settings=settings,
    )


_NEW_FIELDS = ("role", "content", "metadata", "references", "hidden")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class InMemoryJournal:
    """The public API of ``journal.Journal`` over plain lists; see the module docstring.

    Args:
        clock: where timestamps come from when a write is not given ``now``.
    """

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._logs: dict[str, list[ModelEvent]] = {}
        self._dropped: dict[str, int] = {}  # session id -> last seq a retention policy dropped

    # -- writes ----------------------------------------------------------------------------

    def create(
        self,
        session_id: str | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelSession:
        sid = uuid.uuid4().hex if session_id is None else _check_id(session_id)
        if sid in self._logs:
            raise SessionExistsError(sid, 0, len(self._logs[sid]))
        at = self._time(sid, now)
        log = [ModelEvent(seq=1, type="created", at=at, actor=actor, session_id=sid)]
        if settings:
            log.append(
                ModelEvent(seq=2, type="settings_changed", at=at, actor=actor, changes=plain(settings))
            )
        self._logs[sid] = log
        return self.get(sid)

    def get_or_create(
        self,
        session_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelSession:
        if self.exists(session_id):
            return self.get(session_id)
        return self.create(session_id, settings=settings, actor=actor, now=now)

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        references: Iterable[Any] | None = None,
        before: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
        message_id: str | None = None,
    ) -> ModelMessage:
        if not role:
            raise InvalidValueError("role", "must not be empty")
        log = self._writable(session_id, expected_version)
        if before is not None:
            self._visible(session_id, before, "to insert before")
        mid = f"{len(log) + 1:032x}" if message_id is None else message_id
        log.append(self._added(log, role, content, metadata, references, now, actor, mid, before))
        return self._message(session_id, mid)

    def add_messages(
        self,
        session_id: str,
        messages: Iterable[Mapping[str, Any] | Any],
        *,
        replace: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
        message_ids: Iterable[str] | None = None,
    ) -> list[ModelMessage]:
        items = [m if isinstance(m, Mapping) else {f: getattr(m, f) for f in _NEW_FIELDS} for m in messages]
        if any(not m.get("role") for m in items):
            raise InvalidValueError("role", "must not be empty")
        log = self._writable(session_id, expected_version)
        first = len(log) + 1 + replace
        ids = [f"{first + i:032x}" for i in range(len(items))] if message_ids is None else list(message_ids)
        at = self._time(session_id, now)
        batch = []
        if replace:
            batch.append(ModelEvent(seq=len(log) + 1, type="cleared", at=at, actor=actor))
        hidden: dict[str, ModelMessage] = {}
        for item, mid in zip(items, ids, strict=True):
            added = self._added(
                [*log, *batch],
                item["role"],
                item["content"],
                item.get("metadata"),
                item.get("references"),
                at,
                actor,
                mid,
                None,
            )
            batch.append(added)
            if item.get("hidden"):  # recorded, and removed from view in the same write
                batch.append(
                    ModelEvent(seq=added.seq + 1, type="message_removed", at=at, actor=actor, message_id=mid)
                )
                hidden[mid] = ModelMessage(
                    seq=added.seq,
                    role=added.role,
                    content=added.content,
                    at=at,
                    metadata=copy.deepcopy(added.metadata),
                    references=copy.deepcopy(added.references),
                    actor=actor,
                    id=mid,
                )
        log.extend(batch)
        return [hidden[mid] if mid in hidden else self._message(session_id, mid) for mid in ids]

    def pop_message(
        self,
        session_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelMessage:
        log = self._writable(session_id, expected_version)
        visible = self.get(session_id).messages
        if not visible:
            raise MessageNotFoundError(session_id, None, "to pop: the conversation is empty")
        return self._remove(log, session_id, visible[-1], actor, now)

    def remove_message(
        self,
        session_id: str,
        message_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelMessage:
        log = self._writable(session_id, expected_version)
        return self._remove(log, session_id, self._visible(session_id, message_id, "to remove"), actor, now)

    def edit_message(
        self,
        session_id: str,
        message_id: str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelMessage:
        log = self._writable(session_id, expected_version)
        old = self._visible(session_id, message_id, "to edit")
        if old.redacted:
            raise InvalidValueError("message_id", "is redacted")
        log.append(
            ModelEvent(
                seq=len(log) + 1,
                type="message_edited",
                at=self._time(session_id, now),
                actor=actor,
                message_id=message_id,
                content=content,
                metadata=old.metadata if metadata is None else plain(metadata),
            )
        )
        return self._message(session_id, message_id)

    def redact_message(
        self,
        session_id: str,
        message_id: str,
        *,
        reason: str,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelMessage:
        if not reason:
            raise InvalidValueError("reason", "must not be empty")
        log = self._writable(session_id, expected_version)
        dropped = self._dropped.get(session_id, 0)
        kept = log[dropped:]
        in_base = dropped and any(m.id == message_id for m in fold(log[:dropped]).messages)  # type: ignore[union-attr]
        if not in_base and not any(e.type == "message_added" and e.message_id == message_id for e in kept):
            raise MessageNotFoundError(session_id, message_id, "in its stored history")
        if any(e.type == "message_redacted" and e.message_id == message_id for e in log):
            return self._redacted(session_id, message_id)
        by = len(log) + 1
        for index, event in enumerate(log):
            if event.message_id == message_id and event.type in ("message_added", "message_edited"):
                log[index] = dataclasses.replace(event, content="", redacted_by=by)
        log.append(
            ModelEvent(
                seq=by,
                type="message_redacted",
                at=self._time(session_id, now),
                actor=actor,
                message_id=message_id,
                reason=reason,
            )
        )
        return self._redacted(session_id, message_id)

    def _redacted(self, session_id: str, message_id: str) -> ModelMessage:
        """The redacted message as the conversation shows it or, when it is not visible, as
        its own events last showed it."""
        for message in self.get(session_id).messages:
            if message.id == message_id:
                return message
        found: ModelMessage | None = None
        for event in self._log(session_id):
            if event.message_id != message_id:
                continue
            if event.type == "message_added":
                found = ModelMessage(
                    seq=event.seq,
                    role=event.role,
                    content="",
                    at=event.at,
                    metadata=copy.deepcopy(event.metadata),
                    references=copy.deepcopy(event.references),
                    actor=event.actor,
                    id=message_id,
                    redacted=True,
                )
            elif event.type == "message_edited" and found is not None:
                found = dataclasses.replace(found, metadata=copy.deepcopy(event.metadata), edited_at=event.at)
        assert found is not None, "checked before the redaction was recorded"
        return found

    def update_settings(
        self,
        session_id: str,
        changes: Mapping[str, Any] | None = None,
        *,
        remove: Iterable[str] = (),
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelSession:
        log = self._writable(session_id, expected_version)
        to_set = plain({} if changes is None else changes)
        removed = list(remove)
        if to_set or removed:  # nothing to set or remove: nothing is written
            log.append(
                ModelEvent(
                    seq=len(log) + 1,
                    type="settings_changed",
                    at=self._time(session_id, now),
                    actor=actor,
                    changes=to_set,
                    removed=removed,
                )
            )
        return self.get(session_id)

    def clear(
        self,
        session_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> ModelSession:
        log = self._writable(session_id, expected_version)
        log.append(ModelEvent(seq=len(log) + 1, type="cleared", at=self._time(session_id, now), actor=actor))
        return self.get(session_id)

    def delete(self, session_id: str) -> None:
        if self._logs.pop(_check_id(session_id), None) is None:
            raise SessionNotFoundError(session_id)
        self._dropped.pop(session_id, None)

    # -- retention -------------------------------------------------------------------------

    def drop_history(self, session_id: str, through: int) -> None:
        """Drop events ``1..through`` from the history (never from the state); never undone."""
        log = self._log(session_id)
        assert 0 <= through <= len(log), "cannot drop events that were never written"
        self._dropped[session_id] = max(self._dropped.get(session_id, 0), through)

    def dropped_through(self, session_id: str) -> int:
        """The last seq dropped from the session's history (0: its whole history is kept)."""
        self._log(session_id)
        return self._dropped.get(session_id, 0)

    # -- reads -----------------------------------------------------------------------------

    def get(self, session_id: str) -> ModelSession:
        state = fold(self._log(session_id))
        assert state is not None
        return state

    def exists(self, session_id: str) -> bool:
        return _check_id(session_id) in self._logs

    def events(self, session_id: str, *, after: int = 0) -> list[ModelEvent]:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(f"after must be an int >= 0; got {after!r}")
        floor = max(after, self._dropped.get(session_id, 0))
        return [copy.deepcopy(e) for e in self._log(session_id) if e.seq > floor]

    def replay(self, session_id: str, *, at: int | datetime | None = None) -> ModelSession:
        log = self._log(session_id)
        if at is None:
            prefix = log
        elif isinstance(at, datetime):
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("at must be an aware datetime")
            moment = at
            prefix = list(itertools.takewhile(lambda e: e.at <= moment, log))
        elif isinstance(at, int) and not isinstance(at, bool) and at >= 0:
            prefix = [e for e in log if e.seq <= at]
        else:
            raise ValueError(f"at must be a seq (int >= 0), an aware datetime or None; got {at!r}")
        dropped = self._dropped.get(session_id, 0)
        if len(prefix) < dropped:  # the fold would stop inside the dropped part
            raise HistoryPrunedError(session_id, dropped)
        state = fold(prefix)
        if state is None:
            raise SessionNotFoundError(session_id, f"at {at!r} (it did not exist yet)")
        if isinstance(at, int) and at > state.version:
            raise VersionNotFoundError(session_id, at, state.version)
        return state

    def sessions(self) -> list[str]:
        return list(self._logs)

    def adopt_ids(self, session_id: str, ids: Mapping[int, str]) -> None:
        """Rename the messages added at the seqs of ``ids`` (seq -> id), everywhere in the
        history: for a model written without the journal's ids (see ``JournalMachine.mirror``)."""
        log = self._log(session_id)
        renamed = {
            log[seq - 1].message_id: mid for seq, mid in ids.items() if log[seq - 1].type == "message_added"
        }
        for index, event in enumerate(log):
            if event.message_id in renamed or event.before in renamed:
                log[index] = dataclasses.replace(
                    event,
                    message_id=renamed.get(event.message_id, event.message_id),
                    before=None if event.before is None else renamed.get(event.before, event.before),
                )

    # -- for search -------------------------------------------------------------------------

    def copy(self) -> InMemoryJournal:
        """An independent copy (events are immutable and shared; the lists are not)."""
        twin = InMemoryJournal(self._clock)
        twin._logs = {sid: list(log) for sid, log in self._logs.items()}
        twin._dropped = dict(self._dropped)
        return twin

    def fingerprint(self, session_id: str) -> str:
        """A value equal for two models exactly when the session's future results are equal.

        Timestamps and actors are left out: results are compared without them.
        """
        log = self._logs.get(session_id)
        if log is None:
            return ""
        return repr(
            [
                (
                    e.type,
                    e.role,
                    e.content,
                    canon(e.metadata),
                    canon(e.references),
                    canon(e.changes),
                    e.removed,
                    e.message_id,
                    e.before,
                    e.redacted_by,
                    e.reason,
                )
                for e in log
            ]
        )

    # -- internals -------------------------------------------------------------------------

    def _added(
        self,
        log: list[ModelEvent],
        role: str,
        content: str,
        metadata: Mapping[str, Any] | None,
        references: Iterable[Any] | None,
        now: datetime | None,
        actor: str | None,
        message_id: str,
        before: str | None,
    ) -> ModelEvent:
        return ModelEvent(
            seq=len(log) + 1,
            type="message_added",
            at=now if now is not None else self._time(self._sid_of(log), None),
            actor=actor,
            role=role,
            content=content,
            metadata=plain({} if metadata is None else metadata),
            references=plain([] if references is None else list(references)),
            message_id=message_id,
            before=before,
        )

    def _sid_of(self, log: list[ModelEvent]) -> str:
        return log[0].session_id

    def _remove(
        self,
        log: list[ModelEvent],
        session_id: str,
        message: ModelMessage,
        actor: str | None,
        now: datetime | None,
    ) -> ModelMessage:
        at = self._time(session_id, now)
        log.append(
            ModelEvent(seq=len(log) + 1, type="message_removed", at=at, actor=actor, message_id=message.id)
        )
        return message

    def _visible(self, session_id: str, message_id: str, purpose: str) -> ModelMessage:
        for message in self.get(session_id).messages:
            if message.id == message_id:
                return message
        raise MessageNotFoundError(session_id, message_id, purpose)

    def _message(self, session_id: str, message_id: str) -> ModelMessage:
        return self._visible(session_id, message_id, "just written")

    def _log(self, session_id: str) -> list[ModelEvent]:
        log = self._logs.get(_check_id(session_id))
        if log is None:
            raise SessionNotFoundError(session_id)
        return log

    def _writable(self, session_id: str, expected: int | None) -> list[ModelEvent]:
        if expected is not None and (not isinstance(expected, int) or expected < 0):
            raise ValueError(f"expected_version must be an int >= 0 or None; got {expected!r}")
        log = self._log(session_id)
        if expected is not None and expected != len(log):
            raise ConflictError(session_id, expected, len(log))
        return log

    def _time(self, session_id: str, now: datetime | None) -> datetime:
        if now is not None:
            return now
        now = self._clock()
        log = self._logs.get(session_id)
        if log and now < log[-1].at:
            now = log[-1].at  # like the journal, never go back in time within one session
        return now


def _check_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id or "\x00" in session_id or len(session_id) > 1024:
        raise InvalidSessionIdError(session_id, "cannot name a session")
    if any("\ud800" <= ch <= "\udfff" for ch in session_id):
        raise InvalidSessionIdError(session_id, "is not valid Unicode (lone surrogate)")
    return session_id
