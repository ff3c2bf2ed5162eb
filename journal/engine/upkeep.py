"""The Journal's upkeep: compaction, integrity (head, verify, repair) and redaction.

These are the operations that run under a session's writer lock outside the write queue, and
that an operator runs as often as an application: ``Journal`` inherits them from ``Upkeep``.
They use only what ``_Host`` names of the Journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple, Protocol

from journal.core.codec import encode
from journal.core.commands import find_in_history
from journal.core.events import MessageRedacted
from journal.core.reports import Anchor, Problem, RepairReport, VerifyReport
from journal.core.state import Session, apply
from journal.core.validate import check_actor, check_session_id, check_text, check_version, precondition
from journal.engine.commit import Committer, Slot
from journal.engine.loading import View, load
from journal.engine.storage import Storage
from journal.errors import MessageNotFoundError, SessionNotFoundError

__all__ = ["Compaction", "Upkeep"]

log = logging.getLogger("journal")


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


class _Host(Protocol):
    """What the upkeep operations use of the Journal."""

    _storage: Storage
    _committer: Committer

    def _check_open(self) -> None: ...

    def _pin(self, sid: str) -> Slot: ...

    def _unpin(self, sid: str, slot: Slot) -> None: ...

    def _current(self, sid: str) -> View | None: ...

    def sessions(self) -> Iterator[str]: ...


class Upkeep:
    """Compaction, integrity and redaction, for ``Journal`` (see the module docstring)."""

    def redact_message(
        self: _Host,
        session_id: str,
        message_id: str,
        *,
        reason: str,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Session:
        """Erase a message's content from storage, everywhere, and return the session.

        For privacy requests. Appends a ``message_redacted`` event recording ``actor`` and
        ``reason`` (durably, first), then rewrites every file that holds the content: each
        line that carried it (the message and its edits, in the active log and the archive)
        keeps its sealed part and hash, so ``verify`` still proves the chain; snapshots are
        rebuilt. The message stays in place with ``content`` "" and ``redacted`` True, and
        the message's metadata and references (sealed in the chain) stay. Works on a message
        no longer visible too (cleared or removed). Runs under the session's writer lock.

        Calling it again for a redacted message appends nothing and finishes an erasure that
        a crash interrupted (``verify`` reports those lines as ``unerased``).

        Raises:
            SessionNotFoundError, ConflictError: as for ``add_message``.
            MessageNotFoundError: the stored history holds no message with that id.
            InvalidValueError: ``reason`` is empty or not text.
            StorageError: a rewrite failed; the event is written, run it again to finish.
        """
        sid = check_session_id(session_id)
        mid = check_text(message_id, "message_id", allow_empty=False)
        why = check_text(reason, "reason", allow_empty=False)
        actor = check_actor(actor)
        expected = check_version(expected_version)
        slot = self._pin(sid)
        try:
            with slot.lock, self._storage.writer(sid) as tx:
                view = load(slot.view, None, tx, self._storage, sid)
                slot.view = view
                state = precondition(sid, None if view is None else view.state, expected)
                assert view is not None
                found, by = find_in_history(tx.history(), mid)
                if not found and not tx.quarantined(mid):
                    raise MessageNotFoundError(sid, mid, "in its stored history or quarantine")
                head = view.head
                if by is None:
                    event = MessageRedacted(
                        seq=state.version + 1,
                        at=max(datetime.now(timezone.utc), state.updated_at),
                        actor=actor,
                        message_id=mid,
                        reason=why,
                    )
                    line, digest, hash_at = encode(event, head.hash)
                    state = apply(state, event)
                    tx.intend_erase(mid, event.seq)
                    head = tx.append(head, [(line, event.seq, digest, hash_at)])[0]
                    slot.view = View(state, head, None)
                    by = event.seq
                stamp = tx.erase(mid, by, head)
                view = slot.view = View(state, head, stamp)
                if self._committer.prune_due(view):
                    # Like any write by a Journal with ``archive_after``: past the mark, prune
                    # (which leaves a snapshot of the erased state).
                    slot.view = self._committer.auto_prune(sid, tx, view)
                    return state
                tx.save_snapshot(state, head)
                slot.view = View(state, head, stamp, head.seq, head.position)
                return state
        finally:
            self._unpin(sid, slot)

    # -- maintenance -----------------------------------------------------------------------

    def compact(
        self: _Host,
        session_id: str | None = None,
        *,
        prune: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> list[Compaction]:
        """Record a snapshot now; with ``prune``, also move older events into the archive.

        Runs under each session's writer lock, so it is safe beside readers and writers in
        any process, and every step leaves valid files if the process dies (see
        ``docs/compaction.md``). Pruned events stay readable through ``events``, ``replay``
        and the chain; with ``retention`` set, archived events older than it are folded into
        the retention base and deleted.

        Args:
            session_id: one session, or None for every session.
            prune: move every event before the snapshot out of the active log.
            progress: called as ``progress(done, total, session_id)`` after each session.

        Raises:
            SessionNotFoundError: ``session_id`` names no session.
            CorruptLogError: a log is damaged (that session is left unchanged).
        """
        ids = list(self.sessions()) if session_id is None else [check_session_id(session_id)]
        results = []
        for done, sid in enumerate(ids, 1):
            results.append(_compact_one(self, sid, prune))
            if progress is not None:
                progress(done, len(ids), sid)
        return results

    # -- integrity -------------------------------------------------------------------------

    def head(self: _Host, session_id: str) -> Anchor:
        """The seq and chain hash of the session's last event, to keep outside the journal.

        Passed back to ``verify(anchors=...)``, it proves that no event up to it was lost
        or rewritten since, even by someone able to rebuild the whole chain.

        Raises:
            SessionNotFoundError: no such session.
        """
        sid = check_session_id(session_id)
        view = self._current(sid)
        if view is None:
            raise SessionNotFoundError(sid)
        return Anchor(session_id=sid, seq=view.head.seq, hash=view.head.hash)

    def verify(
        self: _Host,
        session_id: str | None = None,
        *,
        anchors: Iterable[Anchor] = (),
        progress: Callable[[int, int, str], None] | None = None,
    ) -> VerifyReport:
        """Check every stored line, the hash chain, seq continuity and snapshots.

        Unlike a read, which stops at the first damaged line, this reports every problem with
        its file, line, byte offset and kind (see ``ProblemKind``). Sessions whose id cannot be
        read any more are checked too, named by their folder. Each session is checked under
        its writer lock: writers wait, readers do not. A torn last line (a crashed write) is
        cut, or a missing final newline completed, as any writer would, and logged.

        Args:
            session_id: one session, or None for every session.
            anchors: heads exported earlier with ``head``: a log that lost or rewrote events
                up to one of them is reported (``truncated`` or ``edited``).
            progress: called as ``progress(done, total, session_id)`` after each session.

        Raises:
            SessionNotFoundError: ``session_id`` names no session.
        """
        self._check_open()
        wanted = {a.session_id: a for a in anchors}
        targets = self._storage.verify_targets(None if session_id is None else check_session_id(session_id))
        if session_id is not None and not targets:
            raise SessionNotFoundError(session_id)
        problems: list[Problem] = []
        heads = []
        events = 0
        for done, target in enumerate(targets, 1):
            result = self._storage.verify(target, wanted)
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
                where = self._storage.location(check_session_id(sid))
                problems.append(
                    Problem(session_id=sid, kind="truncated", file=where, line=0, offset=-1, message=message)
                )
        return VerifyReport(
            sessions=len(targets), events=events, problems=tuple(problems), heads=tuple(heads)
        )

    def repair(self: _Host, session_id: str, *, dry_run: bool = False) -> RepairReport:
        """Keep the longest provably intact prefix of the history; quarantine the rest.

        Bytes are never deleted: what follows the first damaged, missing or out-of-order line
        is moved into ``quarantine/<time>/`` inside the session's folder (fsynced before
        anything is cut), with ``repair.json`` describing the move. Snapshots that disagree
        with the log move there too. Runs under the session's writer lock; safe to run twice.

        Args:
            dry_run: only report what would move.

        Raises:
            SessionNotFoundError: no such session.
            CorruptLogError: only a retention base is intact (restore the archive).
            StorageError: the file system refused a step (the files stay valid).
        """
        sid = check_session_id(session_id)
        slot = self._pin(sid)
        try:
            with slot.lock:
                slot.view = None
                report = self._storage.repair(sid, dry_run=dry_run)
        finally:
            self._unpin(sid, slot)
        if report is None:
            raise SessionNotFoundError(sid)
        if not dry_run:
            for moved in report.moved:
                log.warning(
                    "%s: repair moved %d bytes of %s: %s", sid, moved.size, moved.source, moved.reason
                )
        return report


def _compact_one(host: _Host, sid: str, prune: bool) -> Compaction:
    if host._storage.stamp(sid) is None:
        raise SessionNotFoundError(sid)  # before any lock file is made for it
    slot = host._pin(sid)
    try:
        with slot.lock, host._storage.writer(sid) as tx:
            view = load(slot.view, None, tx, host._storage, sid)
            slot.view = view
            if view is None:
                raise SessionNotFoundError(sid)
            archived = dropped = 0
            if prune:
                view, archived, dropped = host._committer.prune(tx, view)
            else:
                tx.save_snapshot(view.state, view.head)
                view = view._replace(snap_seq=view.head.seq, snap_position=view.head.position)
            slot.view = view
            return Compaction(sid, view.head.seq, archived, dropped)
    finally:
        host._unpin(sid, slot)
