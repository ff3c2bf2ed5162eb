"""The chain: checking stored lines against each other, and folding them into a state.

``check_line`` checks one stored line (decoded, hashed) and that it follows the one before in
seq and hash chain; ``classify_tail`` tells a torn write from damage; ``Fold`` is the one fold
of checked records into a state, turning an event that cannot follow into damage at its line
and holding erased bodies to the redactions they name. ``ChainCheck`` is the patient version for
``verify``: fed every stored line in history order, it classifies every anomaly instead of
stopping at the first, and remembers where the intact prefix ends (what ``repair`` keeps).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import msgspec

from journal.core.codec import GENESIS, Decoded, decode
from journal.core.events import Event, MessageAdded, MessageEdited, MessageRedacted
from journal.core.head import Head, Record
from journal.core.reports import Anchor, Moved, Problem, RepairReport
from journal.core.snapshot import decode_snapshot, shows_content
from journal.core.state import Session, apply
from journal.errors import CorruptLogError, LineError, SnapshotError, UnsupportedFormatError

__all__ = [
    "Break",
    "ChainCheck",
    "Fold",
    "History",
    "check_line",
    "classify_tail",
]

# Where a history read starts: the retention base (None: from nothing), its head, and every
# record after it.
History = tuple[Session | None, Head | None, Iterator[Record]]


class Fold:
    """The one fold of stored records into a state, with the checks only a fold can make.

    A record's line already checked out (hash, chain), so only the fold can object: a second
    ``created``, an ``at`` earlier than the one before, anything but ``created`` first; each is
    damage at the record's line. It also holds every erased body to the redaction it names: an
    erased line stays hash-valid (its body is outside the hash) and only a later redaction of
    its own message vouches for it. A read that stops early leaves later claims unchecked
    (``verify`` checks everything). ``size`` adds up the stored bytes folded.
    """

    __slots__ = ("head", "path", "pending", "size", "state")

    def __init__(self, path: str, state: Session | None = None, head: Head | None = None) -> None:
        self.path = path
        self.state = state
        self.head = head
        self.size = 0
        self.pending: dict[int, list[tuple[str, Record]]] = {}

    def add(self, record: Record) -> Session:
        """Fold one record; returns the state after it.

        Raises:
            CorruptLogError: the event cannot follow the state, or it settles an erasure
                claim that it does not make (located at the claiming line).
        """
        event = record.event
        try:
            state = self.state = apply(self.state, event)
        except ValueError as exc:
            raise CorruptLogError(self.path, record.line, record.offset, str(exc)) from None
        if self.pending:
            for message_id, claim in self.pending.pop(event.seq, ()):
                if not (isinstance(event, MessageRedacted) and event.message_id == message_id):
                    self._raise(claim, "which does not redact this message")
        if isinstance(event, (MessageAdded, MessageEdited)) and event.redacted_by is not None:
            self.pending.setdefault(event.redacted_by, []).append((event.message_id, record))
        self.head = record.head
        self.size += record.size
        return state

    def finish(self) -> None:
        """At the end of the stored history: every named redaction must have been seen."""
        for claims in self.pending.values():
            self._raise(claims[0][1], "which is not stored")

    def _raise(self, claim: Record, why: str) -> None:
        event = claim.event
        assert isinstance(event, (MessageAdded, MessageEdited))
        raise CorruptLogError(
            self.path,
            claim.line,
            claim.offset,
            f"its content was erased naming seq {event.redacted_by}, {why} (damaged or edited)",
        )


def classify_tail(tail: bytes, after: Head | None, *, path: str, line: int, offset: int) -> Decoded | None:
    """What the bytes after a log's last newline are: None for a torn write (a prefix of a line).

    A crashed or in-progress write leaves a prefix of its line; it never leaves a whole line
    whose final newline is replaced by another byte. So:

    * the bytes are a whole, valid, chained line missing only its newline: that line is
      returned, decoded (a write that completed all but its last byte, or lost it to damage:
      the line is provably intact);
    * all but the last byte are such a line: the newline was damaged: CorruptLogError;
    * otherwise: a torn write, None.
    """
    try:
        return check_line(tail, after, path=path, line=line, offset=offset)
    except CorruptLogError:
        pass
    if len(tail) > 1:
        try:
            check_line(tail[:-1], after, path=path, line=line, offset=offset)
        except CorruptLogError:
            return None
        raise CorruptLogError(path, line, offset, "the last line's newline is damaged (not a torn write)")
    return None


def check_line(data: bytes, after: Head | None, *, path: str, line: int, offset: int) -> Decoded:
    """Decode one stored line and check that it follows ``after`` in seq and hash chain.

    Args:
        data: the line without its newline.
        after: the head before this line (None: it must be seq 1, chained to GENESIS).
        path, line, offset: where the line is, for error messages.

    Raises:
        CorruptLogError: the line is damaged, edited, out of order, or does not chain.
    """
    try:
        decoded = decode(data)
    except LineError as exc:
        error: Callable[[str, int, int, str], CorruptLogError] = (
            UnsupportedFormatError if exc.unsupported else CorruptLogError
        )
        raise error(path, line, offset, exc.reason) from None
    expected_seq = 1 if after is None else after.seq + 1
    seq = decoded.event.seq
    if seq != expected_seq:
        kind = "duplicate or reordered" if after is not None and seq <= after.seq else "gap"
        raise CorruptLogError(path, line, offset, f"seq {seq} where {expected_seq} was expected ({kind})")
    expected_prev = GENESIS if after is None else after.hash
    if decoded.prev != expected_prev:
        raise CorruptLogError(
            path, line, offset, f"hash chain broken: prev does not match the hash of seq {expected_seq - 1}"
        )
    return decoded


class Break(msgspec.Struct, frozen=True):
    """Where the intact prefix ends: the first line that is not part of it."""

    where: object  # the walker's tag for the file (which source, which segment)
    file: str
    line: int
    offset: int


class ChainCheck:
    """Classify a session's stored lines, fed in history order.

    Args:
        session_id: for the problems.
        start: seq and hash the first line chains to (a retention base's head), or None.
        state: the state at ``start`` (the base's), or None.
        watch: seqs whose folded state to keep (where snapshots are), to compare later.
    """

    def __init__(
        self, session_id: str, start: tuple[int, str] | None, state: Session | None, watch: Iterable[int]
    ) -> None:
        self.session_id = session_id
        self.seq, self.hash = start if start is not None else (0, GENESIS)
        self.intact_seq = self.seq  # seq of the last line of the intact prefix
        self.hash_at = -1  # where the last accepted line's hash starts, within that line
        self.state = state
        self.hashes: dict[int, str] = {}
        self.watch = set(watch)
        self.states: dict[int, Session] = {}
        self.problems: list[Problem] = []
        self.first_break: Break | None = None
        self.events = 0
        self._damaged_run = 0  # undecodable lines since the last good one (they hold seqs)
        # Ranges of seqs skipped by a jump, [first, last, file, line, offset] (where the jump
        # showed). Ranges, not seqs: one forged line can claim seq 2**62.
        self._missing: list[tuple[int, int, str, int, int]] = []
        # Redaction bookkeeping: lines still holding a message's content, by message id, and
        # erased bodies by the seq of the redaction they name (checked when it shows up).
        self._content: dict[str, list[tuple[str, int, int]]] = {}
        self._claims: dict[int, list[tuple[str, str, int, int]]] = {}
        self.redacted: dict[str, int] = {}  # message id -> the seq of its redaction
        self.base_seq, self.base_file = 0, ""  # where a retention base ends (0: none)

    def cut_report(
        self, source: str, cut: list[tuple[int, bytes]], quarantine: str, *, dry_run: bool
    ) -> RepairReport:
        """The report of a repair that sets aside ``cut`` (each line after the intact prefix,
        with its seq) from ``source`` into ``quarantine``, where lines are kept by seq."""
        moved = tuple(
            Moved(
                source=source,
                offset=seq,
                size=len(line),
                destination=None if dry_run else quarantine,
                reason="after the intact prefix",
            )
            for seq, line in cut
        )
        return RepairReport(
            session_id=self.session_id,
            dry_run=dry_run,
            kept=self.intact_seq,
            problems=tuple(self.problems),
            moved=moved,
            quarantine=None if dry_run or not cut else quarantine,
        )

    def stored_snapshot(self, where: str, data: bytes) -> None:
        """Check a stored snapshot's bytes: damaged, or not the state at its seq."""
        try:
            session, head = decode_snapshot(data)
        except SnapshotError as exc:
            self.problem("snapshot_damaged", where, 0, -1, exc.reason)
            return
        self.check_snapshot(where, session, head.seq, head.hash)

    def problem(self, kind: str, file: str, line: int, offset: int, message: str) -> None:
        self.problems.append(
            Problem(
                session_id=self.session_id, kind=kind, file=file, line=line, offset=offset, message=message
            )
        )

    def broken(self, where: object, file: str, line: int, offset: int) -> None:
        if self.first_break is None:
            self.first_break = Break(where, file, line, offset)
            self.state = None  # past the break the state is unknown: nothing more is folded

    def line(self, where: object, file: str, line: int, offset: int, data: bytes) -> bool:
        """Check one line (without its newline); True if it extends the intact prefix."""
        self.events += 1
        intact = self.first_break is None
        try:
            decoded = decode(data)
        except LineError as exc:
            kind = "unsupported" if exc.unsupported else "edited" if exc.altered else "damaged"
            self.problem(kind, file, line, offset, exc.reason)
            self._damaged_run += 1
            self.broken(where, file, line, offset)
            return False
        seq, expected = decoded.event.seq, self.seq + 1
        ok = True
        if seq < expected:
            if self._found_missing(seq):
                self.problem("reordered", file, line, offset, f"seq {seq} comes after seq {self.seq}")
            elif self.hashes.get(seq) == decoded.hash:
                self.problem("duplicate", file, line, offset, f"a copy of the line of seq {seq}")
            else:
                self.problem("duplicate", file, line, offset, f"a second, different event with seq {seq}")
            self._damaged_run = 0
            self.broken(where, file, line, offset)
            return False
        if seq > expected + self._damaged_run:
            self._missing.append((expected + self._damaged_run, seq - 1, file, line, offset))
            ok = False
        elif self._damaged_run == 0 and decoded.prev != self.hash:
            self.problem(
                "edited",
                file,
                line,
                offset,
                f"does not chain to seq {seq - 1}: a line before it was rewritten",
            )
            ok = False
        self._damaged_run = 0
        self.seq, self.hash, self.hash_at = seq, decoded.hash, decoded.hash_at
        self.hashes[seq] = decoded.hash
        self._redactions(decoded.event, file, line, offset)
        if not ok:
            self.broken(where, file, line, offset)
            return False
        if self.first_break is None:
            try:
                self.state = apply(self.state, decoded.event)
            except ValueError as exc:
                self.problem("invalid", file, line, offset, str(exc))
                self.broken(where, file, line, offset)
                return False
            if seq in self.watch:
                self.states[seq] = self.state
            self.intact_seq = seq
        return intact

    def _found_missing(self, seq: int) -> bool:
        """Whether ``seq`` was skipped earlier (it is then no longer missing)."""
        for i, (first, last, file, line, offset) in enumerate(self._missing):
            if first <= seq <= last:
                pieces = [(a, b) for a, b in ((first, seq - 1), (seq + 1, last)) if a <= b]
                self._missing[i : i + 1] = [(a, b, file, line, offset) for a, b in pieces]
                return True
        return False

    def retention_base(self, state: Session, file: str) -> None:
        """Record the retention base ``file`` holding ``state``, where the history starts.

        The chain runs on from the base's hash, but the events it replaced are gone: nothing
        stored proves that the base's state is the fold of those events. Like a wholly
        rewritten log, a base forged with the real hash reads as consistent; only an exported
        head could tell, and it cannot vouch for the base either (see ``check_anchor``).
        """
        self.base_seq, self.base_file = self.seq, file
        for message in state.messages_view:
            if not message.redacted:
                self._content.setdefault(message.id, []).append((file, 0, -1))

    def _redactions(self, event: Event, file: str, line: int, offset: int) -> None:
        """Check erased bodies against the redactions they name, and redactions against the
        content still stored."""
        for message_id, claim_file, claim_line, claim_offset in self._claims.pop(event.seq, ()):
            if not (isinstance(event, MessageRedacted) and event.message_id == message_id):
                message = f"its content was erased naming seq {event.seq}, which does not redact this message"
                self.problem("edited", claim_file, claim_line, claim_offset, message)
        if isinstance(event, (MessageAdded, MessageEdited)):
            if event.redacted_by is None:
                self._content.setdefault(event.message_id, []).append((file, line, offset))
            else:
                self._claims.setdefault(event.redacted_by, []).append((event.message_id, file, line, offset))
        elif isinstance(event, MessageRedacted):
            self.redacted.setdefault(event.message_id, event.seq)
            for held_file, held_line, held_offset in self._content.pop(event.message_id, ()):
                self.problem(
                    "unerased",
                    held_file,
                    held_line,
                    held_offset,
                    f"still holds the content of message {event.message_id!r}, redacted by seq "
                    f"{event.seq}: redact it again to finish the erasure",
                )

    def finish(self) -> None:
        """Report events that never showed up (gaps), where their absence showed."""
        for first, last, file, line, offset in sorted(self._missing, key=lambda m: (m[3], m[0])):
            span = f"seq {first}" if first == last else f"seqs {first}..{last}"
            self.problem("gap", file, line, offset, f"{span} missing before this line")
        self._missing.clear()
        for seq, claims in sorted(self._claims.items()):
            for _, file, line, offset in claims:
                self.problem(
                    "edited",
                    file,
                    line,
                    offset,
                    f"its content was erased naming seq {seq}, which is not stored",
                )
        self._claims.clear()

    def check_quarantined(self, file: str, line: int, offset: int, data: bytes, *, snapshot: int = 0) -> None:
        """Report a quarantined line (or the snapshot of seq ``snapshot``) still holding a
        redacted message's content.

        Quarantined bytes failed a check, so they are matched loosely: a line by the message's
        id where a line states whose it is, with a body that still holds a salt (content); a
        snapshot written before the redaction if it may still show the message unredacted.
        """
        for message_id, by in self.redacted.items():
            if snapshot:
                found = snapshot < by and shows_content(data, message_id)
            else:
                found = (
                    b'"data":{"id":' + msgspec.json.encode(message_id) in data and b'"body":{"salt"' in data
                )
            if found:
                self.problem(
                    "unerased",
                    file,
                    line,
                    offset,
                    f"a quarantined copy still holds the content of message {message_id!r}, which a "
                    "redaction erased: redact it again to finish the erasure",
                )

    def check_anchor(self, anchor: Anchor, file: str) -> None:
        """Compare an exported head with what the log holds."""
        last = max(self.hashes, default=0)
        if self.base_seq:
            # An exported head pins the history up to it; a base's state is not pinned by
            # anything stored, so "ok" would vouch for what a forger could have written.
            self.problem(
                "unverifiable",
                self.base_file,
                0,
                -1,
                f"history up to seq {self.base_seq} was replaced by this retention base: no stored "
                f"event vouches for its state, so the exported head at seq {anchor.seq} cannot",
            )
        if anchor.seq <= self.base_seq:
            return  # its line went with the history the base replaced: reported just above
        if anchor.seq > last:
            self.problem(
                "truncated",
                file,
                0,
                -1,
                f"the exported head is at seq {anchor.seq} but the log ends at seq {last}",
            )
        elif self.hashes.get(anchor.seq) != anchor.hash:
            self.problem(
                "edited",
                file,
                0,
                -1,
                f"seq {anchor.seq} is not the event the exported head names: history was rewritten",
            )

    def check_snapshot(self, file: str, session: Session, seq: int, digest: str) -> bool:
        """Compare a snapshot with the log; True if it agrees."""
        last = max(self.hashes, default=0)
        if seq > last:
            self.problem(
                "truncated",
                file,
                0,
                -1,
                f"the snapshot covers events up to seq {seq} but the log ends at seq {last}",
            )
            return False
        if self.hashes.get(seq) != digest:
            self.problem("snapshot_mismatch", file, 0, -1, f"its chain hash at seq {seq} is not the log's")
            return False
        folded = self.states.get(seq)
        if folded is not None and folded != session:
            self.problem("snapshot_mismatch", file, 0, -1, f"its state differs from the log's at seq {seq}")
            return False
        return True
