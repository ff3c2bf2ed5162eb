"""The Journal's upkeep: redaction, compaction, integrity (verify, repair), over the engine.

Redaction and compaction are exclusive steps of the one write path (``commit``): they run in
the session's queue, under its locks, caught up, and append through the same encoding and
fold. ``verify`` and ``repair`` read and set aside stored data under the backend's writer
lock, without appending: they are the backend's (``Storage.verify``, ``Storage.repair``),
gathered here into one report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import msgspec

from journal.core.commands import find_in_history
from journal.core.events import MessageRedacted
from journal.core.reports import Anchor, Problem, RepairReport, VerifyReport
from journal.core.state import Message
from journal.core.validate import precondition
from journal.engine.cache import Sessions
from journal.engine.commit import Committer, Step, utc_now_after
from journal.engine.storage import Storage
from journal.errors import MessageNotFoundError, SessionNotFoundError

__all__ = ["Compaction", "compact", "redact", "repair", "verify"]

log = logging.getLogger("journal")

Progress = Callable[[int, int, str], None]


class Compaction(NamedTuple):
    """What ``compact`` did to one session.

    Attributes:
        session_id: the session.
        seq: the snapshot was taken after this event (the session's version).
        archived: events moved from the active log into the archive (0 without ``prune``).
        dropped: archived events folded into the retention base and deleted.
    """

    session_id: str
    seq: int
    archived: int
    dropped: int


def redact(
    committer: Committer, sid: str, mid: str, reason: str, actor: str | None, expected: int | None
) -> Message:
    """See ``Journal.redact_message``: the event, then the erasure, as one exclusive step."""

    def step(step: Step) -> Message:
        view = step.view
        state = precondition(sid, None if view is None else view.state, expected)
        assert view is not None
        tx = step.tx
        base, _, records = tx.history()
        found, by = find_in_history(base, records, mid)
        if found is None and not tx.quarantined(mid):
            raise MessageNotFoundError(sid, mid, "in its stored history or quarantine")
        if by is None:
            event = MessageRedacted(
                seq=state.version + 1, at=utc_now_after(state), actor=actor, message_id=mid, reason=reason
            )
            # Decided before the event is stored: a crash after it leaves the erasure to
            # whoever opens the session next.
            tx.intend_erase(mid, event.seq)
            view = step.append([event])
            by = event.seq
        step.view = msgspec.structs.replace(view, stamp=tx.erase(mid, by, view.head))
        # The snapshots showed the content and are gone: leave one of the erased state (or,
        # past archive_after, prune, which leaves one too).
        step.snapshot_now = True
        visible = step.view.state.messages_view
        if (index := visible.index_of(mid)) >= 0:
            return visible[index]
        if found is not None:  # cleared or removed from view: as the history last showed it
            return msgspec.structs.replace(found, content="", redacted=True)
        # Only the quarantine held it (repair set its lines aside): nothing stored says more.
        return Message(id=mid, seq=0, role="", content="", at=step.view.state.updated_at, redacted=True)

    return committer.exclusive(sid, step)


def compact(committer: Committer, sid: str, prune: bool) -> Compaction:
    """See ``Journal.compact``, for one session: an exclusive step (no event appended)."""

    def step(step: Step) -> Compaction:
        view = step.view
        if view is None:
            raise SessionNotFoundError(sid)
        archived = dropped = 0
        if prune:
            view, archived, dropped = committer.prune(step.tx, view)
        else:
            step.tx.save_snapshot(view.state, view.head)
            view = msgspec.structs.replace(view, snap_seq=view.head.seq, unsnapped=0)
        step.view = view
        return Compaction(sid, view.head.seq, archived, dropped)

    return committer.exclusive(sid, step)


def verify(
    storage: Storage, session_id: str | None, anchors: Iterable[Anchor], progress: Progress | None
) -> VerifyReport:
    """See ``Journal.verify``."""
    wanted = {a.session_id: a for a in anchors}
    targets = storage.targets(session_id)
    if session_id is not None and not targets:
        raise SessionNotFoundError(session_id)
    problems: list[Problem] = []
    heads = []
    events = 0
    for done, target in enumerate(targets, 1):
        result = storage.verify(target, wanted.get(target.label))
        problems.extend(result.problems)
        events += result.events
        if result.head is not None:
            heads.append(result.head)
        if progress is not None:
            progress(done, len(targets), result.session_id)
    checked = {h.session_id for h in heads} | {p.session_id for p in problems}
    for sid, anchor in wanted.items():
        if sid not in checked and (session_id is None or sid == session_id):
            # An exported head of a session that holds no event any more: it lost them all.
            message = f"the exported head is at seq {anchor.seq} but the session holds no event"
            problems.append(
                Problem(
                    session_id=sid,
                    kind="truncated",
                    file=storage.location(sid),
                    line=0,
                    offset=-1,
                    message=message,
                )
            )
    return VerifyReport(sessions=len(targets), events=events, problems=tuple(problems), heads=tuple(heads))


def repair(storage: Storage, sessions: Sessions[Any], sid: str, dry_run: bool) -> RepairReport:
    """See ``Journal.repair``."""
    with sessions.pinned(sid) as slot, slot.lock:
        slot.view = None
        report = storage.repair(sid, dry_run=dry_run)
    if report is None:
        raise SessionNotFoundError(sid)
    if not dry_run:
        for moved in report.moved:
            log.warning("%s: repair moved %d bytes of %s: %s", sid, moved.size, moved.source, moved.reason)
    return report
