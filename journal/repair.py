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

import os
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from journal import intent
from journal.archive import (
    SEGMENT_ERRORS,
    compress,
    ensure_archive,
    list_segments,
    read_segment_lines,
    segment_name,
)
from journal.errors import CorruptLogError
from journal.filecheck import Checked, Intact
from journal.history import ARCHIVE_DIR, QUARANTINE_DIR
from journal.logfile import read_range
from journal.paths import LOG_NAME, ensure_dir, fsync_dir, write_atomic, write_temp
from journal.verify import Moved, RepairReport

__all__ = ["repair_files", "set_aside"]


class _Plan(msgspec.Struct):
    cut_log_at: int | None = None  # truncate the active log here
    new_log: bytes | None = None  # replace the active log with these bytes (archive case)
    new_segment: tuple[int, int, bytes] | None = None  # first, last, lines
    whole: list[tuple[Path, str]] = msgspec.field(default_factory=list)  # files to move: path, reason


def repair_files(
    folder: Path, fd: int | None, size: int, checked: Checked, session_id: str, *, dry_run: bool
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
                folder / LOG_NAME, cut, size - cut, f"events.jsonl.from-byte-{cut}", "after the intact prefix"
            )
        )
    for path, reason in plan.whole:
        moved.append(_moved(path, 0, path.lstat().st_size, _quarantine_name(folder, path), reason))
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
    quarantine = folder / QUARANTINE_DIR / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    ensure_dir(quarantine)
    if plan.cut_log_at is not None and fd is not None:
        # Part of a file: copied (and fsynced) before the cut.
        item = moved[0]
        write_atomic(quarantine / str(item.destination), read_range(fd, item.offset, item.size))
    report = RepairReport(
        session_id=session_id,
        dry_run=False,
        kept=kept,
        problems=problems,
        moved=tuple(
            msgspec.structs.replace(m, destination=str(quarantine / str(m.destination))) for m in moved
        ),
        quarantine=str(quarantine),
    )
    write_atomic(quarantine / "repair.json", msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    _apply(folder, fd, plan, quarantine)
    return report


def set_aside(folder: Path, paths: list[Path], reason: str) -> Path:
    """Move whole files of a session folder into a new quarantine folder (with a
    ``repair.json`` saying what moved and why), never deleting them; returns that folder."""
    quarantine = folder / QUARANTINE_DIR / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    ensure_dir(quarantine)
    moved = [
        _moved(path, 0, path.lstat().st_size, str(quarantine / _quarantine_name(folder, path)), reason)
        for path in paths
    ]
    write_atomic(
        quarantine / "repair.json", msgspec.json.format(msgspec.json.encode({"moved": moved})) + b"\n"
    )
    for path in paths:
        os.rename(path, quarantine / _quarantine_name(folder, path))
        fsync_dir(path.parent)
    fsync_dir(quarantine)
    return quarantine


def _plan(folder: Path, fd: int | None, size: int, checked: Checked) -> _Plan:
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
        if not snap.agrees:
            plan.whole.append((snap.path, "the snapshot disagrees with the log or is damaged"))
        elif snap.seq > kept:
            plan.whole.append((snap.path, "the snapshot covers events past the intact prefix"))
        elif plan.new_log is not None:
            plan.whole.append((snap.path, "the snapshot describes the active log being replaced"))
    return plan


def _plan_archive_cut(
    folder: Path, fd: int | None, size: int, checked: Checked, intact: Intact | None, plan: _Plan
) -> None:
    kept = checked.check.intact_seq
    for segment in list_segments(folder / ARCHIVE_DIR):
        if segment.last > kept:
            plan.whole.append((segment.path, "archive segment past the intact prefix"))
    if fd is not None and size > 0:
        plan.whole.append((folder / LOG_NAME, "active log past the intact prefix"))
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


def _apply(folder: Path, fd: int | None, plan: _Plan, quarantine: Path) -> None:
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
        write_atomic(quarantine / _quarantine_name(folder, folder / LOG_NAME), old_log)
    moves = [
        intent.Move(_relative(folder, path), _relative(folder, quarantine / _quarantine_name(folder, path)))
        for path, _ in plan.whole
        if path != folder / LOG_NAME
    ]
    if plan.new_segment is not None:
        first, last, lines = plan.new_segment
        staged = write_temp(ensure_archive(folder), "staged", compress(lines))
        moves.append(intent.Move(_relative(folder, staged), f"{ARCHIVE_DIR}/{segment_name(first, last)}"))
    if plan.new_log is not None:
        staged_log = write_temp(folder, "staged", plan.new_log)
        moves.append(intent.Move(staged_log.name, LOG_NAME))
    # Everything the intent names must be durable before the intent is.
    for place in (quarantine, folder / ARCHIVE_DIR, folder):
        fsync_dir(place)
    switch = intent.Moves(tuple(moves), plan.cut_log_at if fd is not None else None)
    intent.write(folder, switch)
    intent.run_moves(folder, switch)
    intent.clear(folder)


def _relative(folder: Path, path: Path) -> str:
    return "/".join(path.relative_to(folder).parts)


def _moved(source: Path, offset: int, size: int, name: str, reason: str) -> Moved:
    return Moved(source=str(source), offset=offset, size=size, destination=name, reason=reason)


def _quarantine_name(folder: Path, path: Path) -> str:
    return "-".join(path.relative_to(folder).parts)


def _base_only(folder: Path) -> CorruptLogError:
    return CorruptLogError(
        str(folder / ARCHIVE_DIR),
        0,
        -1,
        "nothing after the retention base is intact: restore the archive from a backup",
    )
