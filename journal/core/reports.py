"""Integrity reports, and the chain check that produces them, for any backend.

``ChainCheck`` is fed a session's stored lines in history order (retention base, archive,
active log) and classifies every anomaly instead of stopping at the first one, as a reader
does. It also remembers where the *intact prefix* ends: the last line from which every line
before it decodes, checks, chains and folds. That is what ``repair`` keeps.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

__all__ = ["Anchor", "Moved", "Problem", "ProblemKind", "RepairReport", "SessionCheck", "VerifyReport"]

ProblemKind = Literal[
    "damaged",  # a line (or file) that does not decode: bit rot, a torn middle, foreign bytes
    "edited",  # a line changed after it was written: its hash, digest or chain link disagrees
    "gap",  # events missing from the middle (deleted lines)
    "duplicate",  # a second line with a seq already present
    "reordered",  # a line out of seq order
    "truncated",  # events a snapshot or an exported head covers are missing at the end
    "torn",  # unterminated bytes after the last line, left for repair behind other damage
    "unsupported",  # written by a newer format version
    "invalid",  # a well-formed, chained event that cannot follow the one before it
    "snapshot_damaged",  # a snapshot file that cannot be decoded
    "snapshot_mismatch",  # a snapshot whose hash or state disagrees with the log
    "unerased",  # content of a redacted message still stored (an interrupted redaction)
    "unverifiable",  # history a retention base replaced: no stored event vouches for its state
]


class Anchor(msgspec.Struct, frozen=True, kw_only=True):
    """A session's head: the seq and chain hash of its last event.

    Keep it outside the journal (a database row, a signed audit record) and pass it back to
    ``verify``: a log that lost events it covers, or was rewritten up to it, is then reported.
    """

    session_id: str
    seq: int
    hash: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One integrity problem and where it is.

    Attributes:
        session_id: the session (or, when its id cannot be read, its folder name).
        kind: one of ``ProblemKind``.
        file: the file holding it.
        line: 1-based line number in that file (uncompressed, for archives); 0 for a file.
        offset: byte offset of that line in the file; -1 when not known.
        message: what is wrong, for people.
    """

    session_id: str
    kind: str
    file: str
    line: int
    offset: int
    message: str

    def __str__(self) -> str:
        where = self.file if self.line <= 0 else f"{self.file}:{self.line} (byte {self.offset})"
        return f"{where}: {self.kind}: {self.message}"


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Journal.verify`` found.

    Attributes:
        sessions: how many sessions were checked.
        events: how many stored event lines were checked.
        problems: every problem found, in file order per session.
        heads: the head of every session found intact, to export as anchors.
    """

    sessions: int
    events: int
    problems: tuple[Problem, ...]
    heads: tuple[Anchor, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


class Moved(msgspec.Struct, frozen=True, kw_only=True):
    """Bytes ``repair`` moved out of a session's files (never deleted).

    Attributes:
        source: the file they were in.
        offset: where they started in it (0 for a whole file).
        size: how many bytes.
        destination: the quarantine file now holding them (None in a dry run).
        reason: why they were moved.
    """

    source: str
    offset: int
    size: int
    destination: str | None
    reason: str


class RepairReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Journal.repair`` did (or, with ``dry_run``, would do).

    Attributes:
        session_id: the session.
        dry_run: nothing was changed.
        kept: seq of the last event kept (0: none).
        problems: what ``verify`` found before the repair.
        moved: each piece moved into quarantine.
        quarantine: the quarantine folder of this repair (None when nothing moved or dry run).
    """

    session_id: str
    dry_run: bool
    kept: int
    problems: tuple[Problem, ...]
    moved: tuple[Moved, ...]
    quarantine: str | None

    @property
    def changed(self) -> bool:
        """Whether the repair moved anything (or would, in a dry run)."""
        return bool(self.moved)


class SessionCheck(NamedTuple):
    """One session's share of a ``VerifyReport``."""

    session_id: str
    problems: tuple[Problem, ...]
    events: int
    head: Anchor | None  # None unless the session is intact
