"""The commands that read, check and maintain one journal: ``ls`` to ``stats``.

Each is a thin wrapper over one library call and prints through ``clirender``. They share one
signature (``Command``): the open journal, the parsed arguments and where to print; the
return value is the exit code (0 ok, 1 a problem was found). ``tail`` and ``copy`` have
their own modules.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec

from journal.backends.files.history import stored_snapshot_seqs
from journal.cli.render import (
    Progress,
    UsageError,
    counted,
    cut,
    display_width,
    event_line,
    pad,
    print_session,
    safe_message,
)
from journal.core.events import MessageAdded
from journal.core.reports import Anchor
from journal.documents import (
    event_doc,
    export_text,
    local,
    one_line,
    session_doc,
    to_json,
    version_at,
    visible,
)
from journal.engine.journal import Journal
from journal.errors import JournalError, SessionNotFoundError

__all__ = [
    "ID_COLUMN",
    "Command",
    "cmd_compact",
    "cmd_diff",
    "cmd_export",
    "cmd_head",
    "cmd_log",
    "cmd_ls",
    "cmd_repair",
    "cmd_replay",
    "cmd_show",
    "cmd_stats",
    "cmd_verify",
    "version_at",
]

# The open journal, the parsed arguments, where to print; returns the exit code.
Command = Callable[[Journal, argparse.Namespace, TextIO], int]

# The widest session id column of ``ls`` (in terminal columns) unless --wide: a uuid4 hex id
# (32) fits whole, and one long id does not push every row's numbers off the screen.
ID_COLUMN = 40


def cmd_ls(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    rows = []
    damaged = 0
    for sid in j.sessions():
        try:
            s = j.get(sid)
        except SessionNotFoundError:
            continue  # deleted while listing
        except JournalError as exc:  # one damaged session must not hide the others
            print(f"journal: {one_line(sid, 10**6)}: {safe_message(str(exc))}", file=sys.stderr)
            damaged += 1
            continue
        rows.append(s)
    key: dict[str, Callable[[Any], Any]] = {
        "id": lambda s: s.id,
        "created": lambda s: s.created_at,
        "updated": lambda s: s.updated_at,
        "messages": lambda s: len(s.messages_view),
        "version": lambda s: s.version,
    }
    rows.sort(key=key[args.sort], reverse=args.reverse)
    if args.limit:
        rows = rows[: args.limit]
    code = 1 if damaged else 0
    if args.json:
        docs = [
            {k: v for k, v in session_doc(s).items() if k not in ("messages", "settings")}
            | {"messages": len(s.messages_view)}
            for s in rows
        ]
        print(to_json(docs), file=out)
        return code
    # Aligned by terminal columns, not characters: a CJK or emoji id is twice as wide as it
    # is long. An id wider than ID_COLUMN is cut (the whole one: --wide, or --json).
    ids = [_id_cell(s.id) for s in rows]
    if not args.wide:
        ids = [cut(shown, ID_COLUMN) for shown in ids]
    width = max([7, *(display_width(shown) for shown in ids)])
    print(f"{pad('SESSION', width)} {'MESSAGES':>8} {'VERSION':>8}  {'CREATED':<25} UPDATED", file=out)
    for shown, s in zip(ids, rows, strict=True):
        print(
            f"{pad(shown, width)} {len(s.messages_view):>8} {s.version:>8}  "
            f"{local(s.created_at):<25} {local(s.updated_at)}",
            file=out,
        )
    return code


def _id_cell(session_id: str) -> str:
    # A tab is harmless on a terminal (``visible`` keeps it) but has no fixed width.
    return one_line(session_id, 10**6).replace("\t", "\\t")


def cmd_show(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(j.get(args.id), args, out)
    return 0


def _print_state(state: Any, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        print(to_json(session_doc(state, args.last)), file=out)
    else:
        print_session(state, out, args.last)


def cmd_log(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    for event in j.events(args.id, after=args.after):
        if args.type and event.type not in args.type:
            continue
        print(to_json(event_doc(event)) if args.json else event_line(event), file=out)
    return 0


def cmd_replay(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(j.replay(args.id, at=args.at), args, out)
    return 0


def cmd_diff(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    sid = args.id
    j.get(sid)  # the session must exist now
    a, b = version_at(j, sid, args.a), version_at(j, sid, args.b)
    if a > b:
        raise UsageError(
            f"{_point_shown(args.a)} (version {a}) is after {_point_shown(args.b)} (version {b}): "
            "give the earlier point first"
        )
    events = [e for e in j.events(sid, after=a) if e.seq <= b]
    before = dict(j.replay(sid, at=a).settings) if a else {}
    after = dict(j.replay(sid, at=b).settings) if b else {}
    added = [e for e in events if isinstance(e, MessageAdded)]
    if args.json:
        print(
            to_json(
                {
                    "session_id": sid,
                    "from_version": a,
                    "to_version": b,
                    "events": [event_doc(e) for e in events],
                    "messages_added": [event_doc(e) for e in added],
                    "settings_before": before,
                    "settings_after": after,
                }
            ),
            file=out,
        )
        return 0
    shown = one_line(sid, 10**6)
    print(f"{shown}: version {a} -> {b}, {len(events)} events, {len(added)} messages added", file=out)
    for event in events:
        print(f"  {event_line(event)}", file=out)
    if before != after:
        print(f"settings: {visible(to_json(before))} -> {visible(to_json(after))}", file=out)
    return 0


def _point_shown(point: int | datetime) -> str:
    # isoformat, not local(): a moment near year 1 or 9999 has no local time to convert to.
    return f"seq {point}" if isinstance(point, int) else point.isoformat()


def cmd_verify(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    anchors = _read_anchors(args.anchors) if args.anchors else []
    report = j.verify(args.id, anchors=anchors, progress=Progress("verify") if args.id is None else None)
    if args.json:
        print(to_json(msgspec.to_builtins(report) | {"ok": report.ok}), file=out)
    else:
        for problem in report.problems:
            print(f"{one_line(problem.session_id, 10**6)}: {one_line(str(problem), 10**6)}", file=out)
        verdict = "ok" if report.ok else counted(len(report.problems), "problem")
        checked = f"{counted(report.sessions, 'session')}, {counted(report.events, 'event')}"
        print(f"checked {checked}: {verdict}", file=out)
    return 0 if report.ok else 1


def _read_anchors(path: str) -> list[Anchor]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read anchors from {path}: {exc.strerror or exc}") from None
    try:
        if text.lstrip().startswith("["):
            return msgspec.json.decode(text, type=list[Anchor])
        return [msgspec.json.decode(line, type=Anchor) for line in text.splitlines() if line.strip()]
    except msgspec.DecodeError as exc:
        raise UsageError(f"{path}: not a list of heads (session_id, seq, hash): {exc}") from None


def cmd_head(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    anchor = j.head(args.id)
    print(
        to_json(msgspec.to_builtins(anchor))
        if args.json
        else f"{one_line(anchor.session_id, 10**6)} {anchor.seq} {anchor.hash}",
        file=out,
    )
    return 0


def cmd_repair(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    report = j.repair(args.id, dry_run=not args.apply)
    if args.json:
        print(to_json(msgspec.to_builtins(report) | {"changed": report.changed}), file=out)
    else:
        if not report.changed:
            print(f"{one_line(args.id, 10**6)}: nothing to repair (version {report.kept})", file=out)
        verb = "would move" if report.dry_run else "moved"
        for moved in report.moved:
            where = f" -> {moved.destination}" if moved.destination else ""
            print(
                one_line(
                    f"{verb} {moved.size} bytes of {moved.source} from byte {moved.offset}{where}: "
                    f"{moved.reason}",
                    10**6,
                ),
                file=out,
            )
        if report.changed:
            print(f"keeps events 1..{report.kept}", file=out)
            if report.dry_run:
                print("run again with --apply to do it (nothing is deleted: it goes to quarantine)", file=out)
    return 1 if report.dry_run and report.changed else 0


def cmd_compact(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    results = j.compact(args.id, prune=args.prune, progress=Progress("compact") if args.id is None else None)
    for r in results:
        if args.json:
            print(to_json(r._asdict()), file=out)
        elif args.id is not None or args.verbose:
            print(
                f"{one_line(r.session_id, 10**6)}: snapshot at seq {r.seq}, {r.archived} archived, "
                f"{r.dropped} dropped",
                file=out,
            )
    if args.id is None and not args.json:
        # Every session: a root of thousands would print thousands of lines; the sum says it.
        archived, dropped = sum(r.archived for r in results), sum(r.dropped for r in results)
        what = f"{counted(archived, 'event')} archived, {dropped} dropped"
        print(f"compacted {counted(len(results), 'session')}: {what}", file=out)
    return 0


def cmd_export(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    text = export_text(j, args.id, args.format)
    if args.output is None:
        out.write(text)
        return 0
    _write_private(args.output, text, replace=args.force)
    return 0


def _write_private(path: str, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` (mode 0600) by renaming a complete temporary file over it:
    ``path`` never holds part of the text, and a failed ``replace`` leaves the old file whole.

    Without ``replace`` an existing ``path`` is refused, also one that appears meanwhile: the
    name is claimed first (an empty file made with O_EXCL), then the whole file is renamed
    over the claim; a failure removes the claim.

    Raises:
        UsageError: ``path`` exists (and not ``replace``), or cannot be written.
    """
    shown = one_line(path, 10**6)
    claimed = False
    if not replace:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            raise UsageError(f"{shown} exists: give --force to replace it (it was left as it is)") from None
        except OSError as exc:
            raise UsageError(f"cannot write {shown}: {exc.strerror or exc}") from None
        claimed = True
    target = Path(path)
    tmp: str | None = None
    done = False
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(fd, 0o600)  # a transcript is as private as the journal
            file.write(text)
            file.flush()
            os.fsync(fd)  # the rename must not publish a file whose bytes are still in flight
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        if not done:  # nothing of ours stays behind: neither the temporary file nor the claim
            for leftover in (tmp, path if claimed else None):
                if leftover is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)


def cmd_stats(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    # Bytes and snapshot files are facts of the files backend; a database does not say what
    # one journal's rows take (other tables, TOAST, indexes), so they stay unreported there.
    files = j.backend == "files"
    ids = list(j.sessions())
    progress = Progress("stats")
    sessions = events = covered = with_snapshot = damaged = 0
    for done, sid in enumerate(ids, 1):
        try:
            version = j.get(sid).version
        except SessionNotFoundError:
            continue
        except JournalError as exc:  # counted, reported, and the others still counted
            print(f"journal: {one_line(sid, 10**6)}: {safe_message(str(exc))}", file=sys.stderr)
            damaged += 1
            continue
        sessions += 1
        events += version
        seqs = [s for s in stored_snapshot_seqs(Path(j.root), sid) if s <= version] if files else []
        if seqs:
            with_snapshot += 1
            covered += max(seqs)
        progress(done, len(ids), sid)
    total_bytes = sum(f.stat().st_size for f in Path(j.root).rglob("*") if f.is_file()) if files else None
    doc = {
        "sessions": sessions,
        "events": events,
        "bytes": total_bytes,
        "sessions_with_snapshot": with_snapshot if files else None,
        "events_covered_by_snapshots": covered if files else None,
        "damaged_sessions": damaged,
    }
    if args.json:
        print(to_json(doc), file=out)
        return 1 if damaged else 0
    print(f"sessions  {sessions}\nevents    {events}", file=out)
    if not files:
        print("bytes and snapshot coverage: not reported for PostgreSQL", file=out)
        return 1 if damaged else 0
    share = f"{100 * covered / events:.0f}%" if events else "-"
    print(f"bytes     {total_bytes}", file=out)
    print(f"snapshots {with_snapshot} sessions, covering {covered} events ({share})", file=out)
    return 1 if damaged else 0
