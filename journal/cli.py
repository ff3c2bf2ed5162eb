"""The ``journal`` command: audit, replay and operate journals from the terminal.

Each command is a thin wrapper over the library; ``clirender`` does the printing. argparse
and plain text were chosen on purpose: nothing to install beyond the library, a fast start,
and output that pipes cleanly (``--json`` for machines, progress only on a terminal).

A root is a folder, a ``file://`` URL or a ``postgresql://`` URL (``Journal.from_url``).

Exit codes: 0 ok, 1 a problem was found (``verify``, a ``repair`` dry run with work to do, a
``copy`` that skipped a session or whose copy differs, a storage error), 2 usage error (bad
arguments, unknown session, malformed time, missing root, unknown URL scheme).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import msgspec

from journal import __version__, events
from journal.clirender import (
    Progress,
    UsageError,
    copied_doc,
    copied_line,
    copy_status,
    event_doc,
    event_line,
    local,
    one_line,
    parse_point,
    print_session,
    safe_message,
    session_doc,
    to_json,
)
from journal.copying import Copied, copy_sessions
from journal.errors import (
    CorruptLogError,
    InvalidSessionIdError,
    InvalidValueError,
    JournalError,
    SessionNotFoundError,
    StorageError,
)
from journal.events import MessageAdded
from journal.history import snapshot_seqs
from journal.paths import Layout
from journal.store import POSTGRES_SCHEMES, Journal
from journal.verify import Anchor

__all__ = ["main"]

DEFAULT_ROOT = "journal-data"
FILES_INTERVAL = 0.2
# Notifications wake a PostgreSQL tail; its timed read only makes up for a lost one, and
# over every session it costs a query each, so it runs less often than file polling.
PG_INTERVAL = 1.0
EVENT_TYPES = events.EVENT_TYPES


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("journal").strip()
        prefix = f"journal: {where}: " if where else "journal: "
        self.exit(2, f"{prefix}{safe_message(message)} (see {self.prog} --help)\n")


def _global(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before or after the command: below it, an option not given must not reset
    # what was given above it, hence SUPPRESS.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--root",
        default=default,
        metavar="ROOT",
        help=(
            "the journal: a folder, file:// URL or postgresql:// URL"
            f" (default: $JOURNAL_URL, else $JOURNAL_ROOT, else ./{DEFAULT_ROOT})"
        ),
    )
    parser.add_argument(
        "--json", action="store_true", default=False if top else argparse.SUPPRESS, help="machine output"
    )


# Relative times (-10m, -2h) must read as values, not as options; argparse only exempts
# negative numbers, through this (long-standing, if private) attribute.
_VALUE_NOT_OPTION = re.compile(r"^-\d+([smhdw]|\.\d+)?$")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="journal", description="Audit, replay and operate chat journals.")
    parser._negative_number_matcher = _VALUE_NOT_OPTION
    parser.add_argument("--version", action="version", version=f"journal {__version__}")
    _global(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub._negative_number_matcher = _VALUE_NOT_OPTION
        _global(sub, top=False)
        return sub

    ls = command("ls", "list sessions with message count, version, created and updated times")
    ls.add_argument("--sort", choices=["id", "created", "updated", "messages", "version"], default="id")
    ls.add_argument("--limit", type=_positive, help="show at most N sessions")
    ls.add_argument("--reverse", action="store_true", help="reverse the order")
    command("show", "the current conversation: messages, times, settings").add_argument("id")
    log = command("log", "every event in order, cleared history included")
    log.add_argument("id")
    log.add_argument("--after", type=_seq, default=0, metavar="SEQ", help="only events after this seq")
    log.add_argument(
        "--type", action="append", choices=EVENT_TYPES, help="only these event types (repeatable)"
    )
    replay = command("replay", "the conversation as it was at a seq or a time")
    replay.add_argument("id")
    replay.add_argument(
        "--at", required=True, metavar="SEQ|TIME", help="a seq, RFC 3339 time, or -10m/-2h/-1d"
    )
    diff = command("diff", "what changed between two points (seq or time)")
    diff.add_argument("id")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    tail = command("tail", "follow new events as other processes append them")
    tail.add_argument("id", nargs="?")
    tail.add_argument("--all", action="store_true", help="every session, also ones created later")
    tail.add_argument("--count", type=_positive, help="exit after N events")
    tail.add_argument(
        "--interval",
        type=float,
        help=(
            "seconds between checks (default 0.2); on PostgreSQL, which wakes the tail on"
            f" every append, the longest wait between catch-up reads (default {PG_INTERVAL:g})"
        ),
    )
    verify = command("verify", "check every line, the hash chain and snapshots; exit 1 on any problem")
    verify.add_argument("id", nargs="?")
    verify.add_argument("--anchors", metavar="FILE", help="exported heads (JSON array or JSON Lines)")
    command(
        "head", "a session's last seq and chain hash, to keep elsewhere (see verify --anchors)"
    ).add_argument("id")
    repair = command("repair", "show what repair would quarantine; --apply does it")
    repair.add_argument("id")
    repair.add_argument("--apply", action="store_true", help="move the damaged part into quarantine")
    compact = command("compact", "record snapshots; with --prune move old events into the archive")
    compact.add_argument("id", nargs="?")
    compact.add_argument("--prune", action="store_true")
    export = command("export", "a transcript (md, json) or the events (jsonl)")
    export.add_argument("id")
    export.add_argument("--format", choices=["md", "json", "jsonl"], required=True)
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
    command("stats", "sessions, events, bytes, snapshot coverage")
    copy = command("copy", "copy sessions with their whole history into another journal, and verify each")
    copy.add_argument(
        "--from", dest="source", metavar="SRC", help="the journal to copy from (default: the root)"
    )
    copy.add_argument(
        "--to",
        dest="target",
        metavar="DST",
        required=True,
        help="the journal to copy into (created if missing)",
    )
    copy.add_argument("sessions", nargs="*", metavar="SESSION", help="only these sessions (default: all)")
    demo = command("demo", "run a scripted tour in a temporary folder (or --root)")
    del demo
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def _seq(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a seq (an integer >= 0), not {text!r}")
    return int(text)


# -- commands ----------------------------------------------------------------------------------

Command = Callable[[Journal, argparse.Namespace, TextIO], int]


def cmd_ls(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    rows = []
    damaged = 0
    for sid in j.sessions():
        try:
            s = j.get(sid)
        except SessionNotFoundError:
            continue  # deleted while listing
        except JournalError as exc:  # one damaged session must not hide the others
            print(f"journal: {sid}: {exc}", file=sys.stderr)
            damaged += 1
            continue
        rows.append(s)
    key: dict[str, Callable[[Any], Any]] = {
        "id": lambda s: s.id,
        "created": lambda s: s.created_at,
        "updated": lambda s: s.updated_at,
        "messages": lambda s: len(s.messages),
        "version": lambda s: s.version,
    }
    rows.sort(key=key[args.sort], reverse=args.reverse)
    if args.limit:
        rows = rows[: args.limit]
    code = 1 if damaged else 0
    if args.json:
        docs = [
            {k: v for k, v in session_doc(s).items() if k not in ("messages", "settings")}
            | {"messages": len(s.messages)}
            for s in rows
        ]
        print(to_json(docs), file=out)
        return code
    # Whole ids (they are what show, log and replay take), one per line however long.
    width = max([7, *(len(one_line(s.id, 10**6)) for s in rows)])
    print(f"{'SESSION':<{width}} {'MESSAGES':>8} {'VERSION':>8}  {'CREATED':<25} UPDATED", file=out)
    for s in rows:
        print(
            f"{one_line(s.id, 10**6):<{width}} {len(s.messages):>8} {s.version:>8}  "
            f"{local(s.created_at):<25} {local(s.updated_at)}",
            file=out,
        )
    return code


def cmd_show(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(j.get(args.id), args, out)
    return 0


def _print_state(state: Any, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        print(to_json(session_doc(state)), file=out)
    else:
        print_session(state, out)


def cmd_log(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    for event in j.events(args.id, after=args.after):
        if args.type and event.type not in args.type:
            continue
        print(to_json(event_doc(event)) if args.json else event_line(event), file=out)
    return 0


def cmd_replay(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    _print_state(j.replay(args.id, at=parse_point(args.at)), args, out)
    return 0


def cmd_diff(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    sid = args.id
    j.get(sid)  # the session must exist now
    a, b = _version_at(j, sid, args.a), _version_at(j, sid, args.b)
    if a > b:
        raise UsageError(f"{args.a} is after {args.b}: give the earlier point first")
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
    print(f"{sid}: version {a} -> {b}, {len(events)} events, {len(added)} messages added", file=out)
    for event in events:
        print(f"  {event_line(event)}", file=out)
    if before != after:
        print(f"settings: {to_json(before)} -> {to_json(after)}", file=out)
    return 0


def _version_at(j: Journal, sid: str, text: str) -> int:
    point = parse_point(text)
    if isinstance(point, int):
        return min(point, j.get(sid).version)
    try:
        return j.replay(sid, at=point).version
    except SessionNotFoundError:
        return 0  # before the session existed


def cmd_tail(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    if args.all == (args.id is not None):
        raise UsageError("tail needs a session id or --all (not both)")
    postgres = j.backend == "postgres"
    interval = args.interval
    if interval is None:
        interval = PG_INTERVAL if postgres else FILES_INTERVAL
    if not math.isfinite(interval) or not 0 < interval <= 3600:
        raise UsageError("--interval must be a number of seconds between 0 and 3600")
    # Listening starts before the first read: an append between the two is then both read
    # and notified, never neither.
    feed = _listen(j) if postgres else None
    try:
        seen = {sid: _version(j, sid) for sid in (j.sessions() if args.all else [args.id])}
        if not args.all and seen[args.id] == 0:
            raise SessionNotFoundError(args.id)
        printed = 0
        due = time.monotonic() + interval  # the next read of everything followed
        woken: set[str] = set()
        while True:
            if time.monotonic() >= due or feed is None:
                if postgres and feed is None:
                    feed = _listen(j, required=False)  # lost earlier: listen again, then read
                due = time.monotonic() + interval
                sids = list(j.sessions()) if args.all else [args.id]
            else:
                # Woken (or timed out early, which costs one cheap read): the sessions named.
                sids = sorted(woken) if args.all else [args.id]
            for sid in sids:
                for line in _new_lines(j, sid, seen, args.json):
                    print(line, file=out, flush=True)
                    printed += 1
                    if args.count and printed >= args.count:
                        return 0
            if feed is None:
                if not postgres:
                    time.sleep(interval)
                continue
            try:
                woken = feed.wait(max(0.0, due - time.monotonic()))
            except StorageError as exc:
                # The listening connection dropped: read on a timer until it is back.
                print(f"journal: {safe_message(str(exc))} (listening again)", file=sys.stderr)
                feed.close()
                feed = None
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0  # the usual way to stop following
    finally:
        if feed is not None:
            feed.close()


def _listen(j: Journal, *, required: bool = True) -> Any:
    """A ``ChangeFeed`` on the journal's database (None when it fails and is not ``required``)."""
    from journal.pgstore import ChangeFeed, PgStorage

    storage = j._storage  # the feed needs the backend itself; Journal does not expose it
    assert isinstance(storage, PgStorage)
    try:
        return ChangeFeed(storage)
    except StorageError:
        if required:
            raise
        return None


def _new_lines(j: Journal, sid: str, seen: dict[str, int], as_json: bool) -> Iterator[str]:
    """The events of ``sid`` after the last one printed, rendered; ``seen`` moves along."""
    version = _version(j, sid)
    last = seen.get(sid, 0)
    if version < last:
        last = 0  # deleted and created again: a new history
    if version <= last:
        return
    for event in j.events(sid, after=last):
        seen[sid] = event.seq
        yield to_json({"session_id": sid} | event_doc(event)) if as_json else event_line(event, sid)


def _version(j: Journal, sid: str) -> int:
    try:
        return j.get(sid).version
    except SessionNotFoundError:
        return 0


def cmd_verify(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    anchors = _read_anchors(args.anchors) if args.anchors else []
    report = j.verify(args.id, anchors=anchors, progress=Progress("verify") if args.id is None else None)
    if args.json:
        print(to_json(msgspec.to_builtins(report) | {"ok": report.ok}), file=out)
    else:
        for problem in report.problems:
            print(f"{problem.session_id}: {problem}", file=out)
        verdict = "ok" if report.ok else f"{len(report.problems)} problems"
        print(f"checked {report.sessions} sessions, {report.events} events: {verdict}", file=out)
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
        else f"{anchor.session_id} {anchor.seq} {anchor.hash}",
        file=out,
    )
    return 0


def cmd_repair(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    report = j.repair(args.id, dry_run=not args.apply)
    if args.json:
        print(to_json(msgspec.to_builtins(report) | {"changed": report.changed}), file=out)
    else:
        if not report.changed:
            print(f"{args.id}: nothing to repair (version {report.kept})", file=out)
        verb = "would move" if report.dry_run else "moved"
        for moved in report.moved:
            where = f" -> {moved.destination}" if moved.destination else ""
            print(
                f"{verb} {moved.size} bytes of {moved.source} from byte {moved.offset}{where}: "
                f"{moved.reason}",
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
        else:
            print(
                f"{r.session_id}: snapshot at seq {r.seq}, {r.archived} archived, {r.dropped} dropped",
                file=out,
            )
    return 0


def cmd_export(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "jsonl":
        text = "".join(to_json(event_doc(e)) + "\n" for e in j.events(args.id))
    elif args.format == "json":
        text = to_json(session_doc(j.get(args.id))) + "\n"
    else:
        text = _markdown(j.get(args.id))
    if args.output is None:
        out.write(text)
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)  # a transcript is as private as the journal
        file.write(text)
    return 0


def _markdown(s: Any) -> str:
    lines = [f"# Session {s.id}", ""]
    lines.append(f"- version {s.version}, created {local(s.created_at)}, updated {local(s.updated_at)}")
    if s.settings:
        lines.append(f"- settings: `{to_json(s.settings)}`")
    for m in s.messages:
        who = f" ({m.actor})" if m.actor else ""
        text = "*[content erased]*" if m.redacted else m.content
        lines += ["", f"## {m.role}{who} · #{m.seq} · {local(m.at)}", "", text]
    return "\n".join(lines) + "\n"


def cmd_stats(j: Journal, args: argparse.Namespace, out: TextIO) -> int:
    # Bytes and snapshot files are facts of the files backend; a database does not say what
    # one journal's rows take (other tables, TOAST, indexes), so they stay unreported there.
    files = j.backend == "files"
    layout = Layout(j.root)
    ids = list(j.sessions())
    progress = Progress("stats")
    sessions = events = covered = with_snapshot = damaged = 0
    for done, sid in enumerate(ids, 1):
        try:
            version = j.get(sid).version
        except SessionNotFoundError:
            continue
        except JournalError as exc:  # counted, reported, and the others still counted
            print(f"journal: {sid}: {exc}", file=sys.stderr)
            damaged += 1
            continue
        sessions += 1
        events += version
        seqs = [s for s in snapshot_seqs(layout.session_dir(sid)) if s <= version] if files else []
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


def cmd_copy(args: argparse.Namespace, out: TextIO) -> int:
    """``copy``: opens two journals, so it is called with the arguments rather than one journal."""
    with (
        open_journal(args.source or _root(args), option="--from") as source,
        open_journal(args.target, option="--to", create=True) as target,
    ):
        if _same_journal(source, target, args.source or _root(args), args.target):
            raise UsageError(f"--from and --to are the same journal ({source.root})")
        # Every named session is checked before anything is written: a typo copies nothing.
        ids = list(dict.fromkeys(args.sessions))
        for sid in ids:
            if not source.exists(sid):
                raise SessionNotFoundError(sid)
        if not ids:
            ids = list(source.sessions())
        progress = Progress("copy")
        results: list[Copied] = []
        for done, sid in enumerate(ids, 1):
            result = _copy_one(source, target, sid)
            results.append(result)
            progress.clear()
            if not args.json:
                print(copied_line(result), file=out, flush=True)
            progress(done, len(ids), sid)
        statuses = [copy_status(r) for r in results]
        counts = {status: statuses.count(status) for status in ("copied", "skipped", "failed")}
        events = sum(r.events for r in results if r.skipped is None)
        ok = counts["copied"] == len(results)
        if args.json:
            doc = {"from": source.root, "to": target.root, "ok": ok, "events": events}
            print(to_json(doc | counts | {"sessions": [copied_doc(r) for r in results]}), file=out)
        else:
            extra = "".join(f", {counts[k]} {k}" for k in ("skipped", "failed") if counts[k])
            print(
                f"copied {counts['copied']} of {len(results)} sessions ({events} events)"
                f" from {source.root} to {target.root}{extra}",
                file=out,
            )
    return 0 if ok else 1


def _copy_one(source: Journal, target: Journal, sid: str) -> Copied:
    """One session's copy; a damaged or vanished source session is reported, not fatal."""
    try:
        return copy_sessions(source, target, [sid])[0]
    except SessionNotFoundError:
        return Copied(sid, 0, None, "deleted from the source while copying", ())
    except CorruptLogError as exc:  # one damaged session must not stop the others
        return Copied(sid, 0, None, f"damaged in the source (verify, repair): {exc}", ())


def _same_journal(a: Journal, b: Journal, a_location: str, b_location: str) -> bool:
    if a.backend != b.backend:
        return False
    if a.backend == "postgres":
        return a_location == b_location
    return Path(a.root).resolve() == Path(b.root).resolve()


COMMANDS: dict[str, Command] = {
    "ls": cmd_ls,
    "show": cmd_show,
    "log": cmd_log,
    "replay": cmd_replay,
    "diff": cmd_diff,
    "tail": cmd_tail,
    "verify": cmd_verify,
    "head": cmd_head,
    "repair": cmd_repair,
    "compact": cmd_compact,
    "export": cmd_export,
    "stats": cmd_stats,
}


def _root(args: argparse.Namespace) -> str:
    return args.root or os.environ.get("JOURNAL_URL") or os.environ.get("JOURNAL_ROOT") or DEFAULT_ROOT


def open_journal(location: str, *, option: str = "--root", create: bool = False) -> Journal:
    """The journal at a folder, ``file://`` or ``postgresql://`` URL.

    A folder must exist unless ``create`` (reading commands never create one). A database is
    only reached by the first command that reads, so an unreachable server is a storage
    error (exit 1), reported without the URL's password.

    Raises:
        UsageError: an unknown URL scheme, a missing folder, or no PostgreSQL driver.
    """
    if location.startswith(POSTGRES_SCHEMES) and importlib.util.find_spec("psycopg") is None:
        raise UsageError(f'{option}: PostgreSQL needs psycopg: pip install "journal[postgres]"')
    try:
        journal = Journal.from_url(location)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if journal.backend == "files":
        folder = Path(journal.root)
        if not (folder.is_dir() or (create and not folder.exists())):
            journal.close()
            raise UsageError(
                f"no journal at {journal.root} (give {option}, or set JOURNAL_URL or JOURNAL_ROOT)"
                if option == "--root"
                else f"{option}: no journal folder at {journal.root}"
            )
    return journal


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 problem found, 2 usage error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from journal.demo import run_demo

            if args.root is not None and "://" in args.root:
                raise UsageError("demo runs in a folder: give --root DIR, not a URL")
            return run_demo(args.root)
        if args.command == "copy":
            return cmd_copy(args, sys.stdout)
        with open_journal(_root(args)) as journal:
            return COMMANDS[args.command](journal, args, sys.stdout)
    except (UsageError, SessionNotFoundError, InvalidSessionIdError, InvalidValueError) as exc:
        print(f"journal: {safe_message(str(exc))}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"journal: {safe_message(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Piped into head(1) and the reader left: not an error worth a traceback.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
