"""Repair one session's files: keep the longest intact prefix, quarantine the rest.

Nothing is deleted. Bytes cut from the active log are first copied, fsynced, into
``<session>/quarantine/<UTC time>/`` (with ``repair.json``, the report), and only then cut;
whole files (archive segments, snapshots, a replaced active log) are moved there by rename.
Runs under the session's writer lock, after ``filecheck.check_files``.

Where the intact prefix ends decides what changes:

* nothing is broken: only snapshots that disagree with the log (or are damaged) move;
* the break is in the active log: the log is truncated at the first bad line;
* the break is in the archive (or the active log lost every line after the archive): the
  archive keeps its intact lines and the active log is replaced by the last intact line, the
  shape pruning leaves. The old active log and every segment past the break move whole.

A crash midway leaves every moved byte in quarantine and the session as damaged as before (or
already repaired); running ``repair`` again finishes the job.
"""

from __future__ import annotations

import errno
import os
from datetime import datetime, timezone

import msgspec

from journal.backends.files import intent
from journal.backends.files.archive import (
    SEGMENT_ERRORS,
    compress,
    ensure_archive,
    list_segments,
    read_segment_lines,
    segment_name,
)
from journal.backends.files.check import Checked, Intact
from journal.backends.files.fsio import Folder
from journal.backends.files.history import ARCHIVE_DIR, QUARANTINE_DIR, snapshot_name
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.logfile import read_range
from journal.core.reports import Moved, RepairReport
from journal.errors import CorruptLogError

__all__ = ["repair_files", "set_aside"]


class _Plan(msgspec.Struct):
    cut_log_at: int | None = None  # truncate the active log here
    new_log: bytes | None = None  # replace the active log with these bytes (archive case)
    new_segment: tuple[int, int, bytes] | None = None  # first, last, lines
    # Files to move: the name relative to the session folder ("archive/<segment>"), reason.
    whole: list[tuple[str, str]] = msgspec.field(default_factory=list)


def repair_files(
    folder: Folder, fd: int | None, size: int, checked: Checked, session_id: str, *, dry_run: bool
) -> RepairReport:
    """Carry out (or, with ``dry_run``, only describe) the repair ``checked`` calls for.

    Raises:
        CorruptLogError: only the retention base is intact; the archive must be restored
            from a backup (cutting it would leave a history that cannot be appended to).
        OSError: the file system refused a step (the files stay valid; see the module doc).
    """
    check = checked.check
    problems = tuple(check.problems)
    kept = check.intact_seq
    plan = _plan(folder, fd, size, checked)
    moved: list[Moved] = []
    if plan.cut_log_at is not None:
        cut = plan.cut_log_at
        moved.append(
            _moved(
                folder, LOG_NAME, cut, size - cut, f"events.jsonl.from-byte-{cut}", "after the intact prefix"
            )
        )
    for name, reason in plan.whole:
        moved.append(_moved(folder, name, 0, _size(folder, name), _quarantine_name(name), reason))
    if dry_run or not moved:
        planned = tuple(msgspec.structs.replace(m, destination=None) for m in moved)
        return RepairReport(
            session_id=session_id,
            dry_run=dry_run,
            kept=kept,
            problems=problems,
            moved=planned,
            quarantine=None,
        )
    stamp, quarantine = _new_quarantine(folder)
    if plan.cut_log_at is not None and fd is not None:
        # Part of a file: copied (and fsynced) before the cut.
        item = moved[0]
        quarantine.write_atomic(str(item.destination), read_range(fd, item.offset, item.size))
    report = RepairReport(
        session_id=session_id,
        dry_run=False,
        kept=kept,
        problems=problems,
        moved=tuple(
            msgspec.structs.replace(m, destination=str(quarantine.path / str(m.destination))) for m in moved
        ),
        quarantine=str(quarantine.path),
    )
    quarantine.write_atomic("repair.json", msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    _apply(folder, fd, plan, stamp, quarantine)
    return report


def set_aside(folder: Folder, names: list[str], reason: str) -> Folder:
    """Move whole files of a session folder (``names`` relative to it) into a new quarantine
    folder (with a ``repair.json`` saying what moved and why), never deleting them; returns
    that folder."""
    _, quarantine = _new_quarantine(folder)
    moved = [
        _moved(folder, name, 0, _size(folder, name), str(quarantine.path / _quarantine_name(name)), reason)
        for name in names
    ]
    quarantine.write_atomic("repair.json", msgspec.json.format(msgspec.json.encode({"moved": moved})) + b"\n")
    for name in names:
        place, base = _where(folder, name)
        place.rename(base, quarantine, _quarantine_name(name))
        place.fsync()
    quarantine.fsync()
    return quarantine


def _new_quarantine(folder: Folder) -> tuple[str, Folder]:
    """A new ``quarantine/<UTC time>/`` folder (and its name), made durably."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    quarantine = folder.child(QUARANTINE_DIR, create=True)
    assert quarantine is not None
    made = quarantine.child(stamp, create=True)
    assert made is not None
    return stamp, made


def _where(folder: Folder, name: str) -> tuple[Folder, str]:
    """The open folder holding ``name`` (relative to the session folder) and its own name."""
    found = folder.resolve(name)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or folder", str(folder.path / name))
    return found


def _size(folder: Folder, name: str) -> int:
    place, base = _where(folder, name)
    return place.lstat(base).st_size


def _plan(folder: Folder, fd: int | None, size: int, checked: Checked) -> _Plan:
    check, intact = checked.check, checked.intact
    kept = check.intact_seq
    plan = _Plan()
    brk = check.first_break
    if brk is not None:
        in_log = brk.where is None
        if in_log and (brk.offset > 0 or intact is None or intact.segment is None):
            if intact is None and checked.base:
                raise _base_only(folder)
            plan.cut_log_at = max(brk.offset, 0)
        else:
            if intact is None and checked.base:
                raise _base_only(folder)
            _plan_archive_cut(folder, fd, size, checked, intact, plan)
    for snap in checked.snapshots:
        name = snapshot_name(snap.seq)
        if not snap.agrees:
            plan.whole.append((name, "the snapshot disagrees with the log or is damaged"))
        elif snap.seq > kept:
            plan.whole.append((name, "the snapshot covers events past the intact prefix"))
        elif plan.new_log is not None:
            plan.whole.append((name, "the snapshot describes the active log being replaced"))
    return plan


def _plan_archive_cut(
    folder: Folder, fd: int | None, size: int, checked: Checked, intact: Intact | None, plan: _Plan
) -> None:
    kept = checked.check.intact_seq
    for segment in list_segments(folder.child(ARCHIVE_DIR)):
        if segment.last > kept:
            plan.whole.append((f"{ARCHIVE_DIR}/{segment.name}", "archive segment past the intact prefix"))
    if fd is not None and size > 0:
        plan.whole.append((LOG_NAME, "active log past the intact prefix"))
    plan.new_log = b"" if intact is None else intact.data + b"\n"
    if intact is not None and intact.segment is not None and intact.segment.last > kept:
        # The segment holding the last intact line is moved: keep its intact lines before it.
        skip = checked.skips.get(intact.segment.path, 0)
        lines = []
        try:
            # Only the lines before the intact one are needed: the damage that follows them
            # (a torn or corrupt gzip stream) is never read.
            for n, _, data in read_segment_lines(intact.segment):
                if n >= intact.line:
                    break
                if n > skip:
                    lines.append(data)
        except SEGMENT_ERRORS:
            pass  # the check read the same lines before failing the same way
        if lines:
            first = kept - len(lines)
            plan.new_segment = (first, kept - 1, b"".join(line + b"\n" for line in lines))


def _apply(folder: Folder, fd: int | None, plan: _Plan, stamp: str, quarantine: Folder) -> None:
    """Switch to the repaired files at one commit point: the intent (see ``intent``).

    Before it, only copies in the quarantine and prepared files beside the old ones are
    written: a crash leaves the session as damaged as it was. From it on, the switch is
    decided, and the next writer finishes it if this one cannot: files moved whole into the
    quarantine (snapshots, segments past the break), prepared files renamed into place, the
    log cut or replaced. The old active log is copied into the quarantine, never moved:
    another process may hold it open, and must see it unlinked (replaced) or cut, not follow
    it into the quarantine.
    """
    if plan.new_log is not None and fd is not None:
        old_log = read_range(fd, 0, os.fstat(fd).st_size)
        quarantine.write_atomic(_quarantine_name(LOG_NAME), old_log)
    moves = [
        intent.Move(name, f"{QUARANTINE_DIR}/{stamp}/{_quarantine_name(name)}")
        for name, _ in plan.whole
        if name != LOG_NAME
    ]
    if plan.new_segment is not None:
        first, last, lines = plan.new_segment
        staged = ensure_archive(folder).write_temp("staged", compress(lines))
        moves.append(intent.Move(f"{ARCHIVE_DIR}/{staged}", f"{ARCHIVE_DIR}/{segment_name(first, last)}"))
    if plan.new_log is not None:
        staged_log = folder.write_temp("staged", plan.new_log)
        moves.append(intent.Move(staged_log, LOG_NAME))
    # Everything the intent names must be durable before the intent is.
    quarantine.fsync()
    archive = folder.child(ARCHIVE_DIR)
    if archive is not None:
        archive.fsync()
    folder.fsync()
    switch = intent.Moves(tuple(moves), plan.cut_log_at if fd is not None else None)
    intent.write(folder, switch)
    intent.run_moves(folder, switch)
    intent.clear(folder)


def _moved(folder: Folder, name: str, offset: int, size: int, destination: str, reason: str) -> Moved:
    return Moved(
        source=str(folder.path / name), offset=offset, size=size, destination=destination, reason=reason
    )


def _quarantine_name(name: str) -> str:
    return name.replace("/", "-")


def _base_only(folder: Folder) -> CorruptLogError:
    return CorruptLogError(
        str(folder.path / ARCHIVE_DIR),
        0,
        -1,
        "nothing after the retention base is intact: restore the archive from a backup",
    )
