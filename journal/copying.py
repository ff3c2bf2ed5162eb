"""Moving sessions between journals, and so between backends, with their whole history.

Each session is copied byte for byte (its retention base and every stored line: the same
hashes, the same chain), then the copy is verified against the source's head: the target
must hold exactly the source's chain up to it. A session that already exists in the target is
left alone and reported, never merged or overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from journal.core.codec import decode
from journal.core.reports import Anchor, Problem
from journal.core.validate import check_session_id
from journal.engine.journal import Journal
from journal.errors import SessionExistsError, SessionNotFoundError

__all__ = ["Copied", "copy_sessions"]


class Copied(NamedTuple):
    """What happened to one session.

    Attributes:
        session_id: the session.
        events: stored lines copied (0 when skipped).
        head: the source's head, which the copy was verified against (None when skipped).
        skipped: why it was not copied ("exists in the target"), or None.
        problems: what verifying the copy found (empty: the copy is exact).
    """

    session_id: str
    events: int
    head: Anchor | None
    skipped: str | None
    problems: tuple[Problem, ...]


def copy_sessions(
    source: Journal,
    target: Journal,
    session_ids: Iterable[str] | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Copied]:
    """Copy sessions (all when None) from ``source`` into ``target`` and verify each copy.

    Each session is read under its writer lock in the source (writers wait for the copy of
    that session) and stored in the target in one step.

    Raises:
        SessionNotFoundError: a named session does not exist in the source.
        CorruptLogError: a source session is damaged (``verify``/``repair`` it first); the
            sessions copied before it stay copied.
    """
    ids = list(source.sessions()) if session_ids is None else [check_session_id(s) for s in session_ids]
    results = []
    for done, sid in enumerate(ids, 1):
        results.append(_copy_one(source, target, sid))
        if progress is not None:
            progress(done, len(ids), sid)
    return results


def _copy_one(source: Journal, target: Journal, sid: str) -> Copied:
    if not source.exists(sid):
        raise SessionNotFoundError(sid)
    exported = source.export_session(sid)
    lines = exported.lines
    if not lines:
        raise SessionNotFoundError(sid, "(deleted while it was copied)")
    last = decode(lines[-1])
    head = Anchor(session_id=sid, seq=last.event.seq, hash=last.hash)  # exactly what was read
    try:
        target.import_session(sid, exported)
    except SessionExistsError:
        return Copied(sid, 0, None, "exists in the target", ())
    report = target.verify(sid, anchors=[head])
    # Exactness is the question here: a retention base travels byte for byte, and that no
    # event vouches for its state ("unverifiable") is as true of the source, where verify
    # says so.
    problems = tuple(p for p in report.problems if p.kind != "unverifiable")
    return Copied(sid, len(lines), head, None, problems)
