"""The ``journal`` command: audit, replay and operate journals from the terminal.

This module is the front: the argument parser, dispatch to the commands and the mapping of
errors to exit codes. The commands are thin wrappers over the library, in ``commands``
(one journal: read, check, maintain), ``tail`` (follow appends) and ``copy`` (between two
journals); ``open`` opens the journal, ``render`` does the printing, and ``argv`` lets values
that begin with ``-`` (``--at -2h``) through argparse. Points (``--at``, ``diff A B``) are read
by ``journal.parse_point``, the library's own reader, against one ``now`` per command. argparse
and plain text were chosen on purpose: nothing to install beyond the library, a fast start,
and output that pipes cleanly (``--json`` for machines, progress only on a terminal).

A root is a folder, a ``file://`` URL or a ``postgresql://`` URL (``Journal.from_url``).

Exit codes: 0 ok, 1 a problem was found (``verify``, a ``repair`` dry run with work to do, a
``copy`` that skipped a session or whose copy differs, a storage error), 2 usage error (bad
arguments, unknown session, malformed point, missing root, unknown URL scheme).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn

from journal import __version__
from journal.cli.argv import Grammar, values_first
from journal.cli.commands import (
    ID_COLUMN,
    Command,
    cmd_compact,
    cmd_diff,
    cmd_export,
    cmd_head,
    cmd_log,
    cmd_ls,
    cmd_repair,
    cmd_replay,
    cmd_show,
    cmd_stats,
    cmd_verify,
)
from journal.cli.copy import cmd_copy
from journal.cli.open import DEFAULT_ROOT, open_journal, root_location
from journal.cli.render import UsageError, safe_message
from journal.cli.tail import PG_INTERVAL, cmd_tail
from journal.core import events
from journal.core.points import parse_point
from journal.documents import EXPORT_FORMATS
from journal.errors import (
    InvalidSessionIdError,
    InvalidValueError,
    JournalError,
    SessionNotFoundError,
    VersionNotFoundError,
)

__all__ = ["main"]

EVENT_TYPES = events.EVENT_TYPES


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line like every other error of the command, and the
    options it knows recorded for ``values_first``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before argparse's own __init__, which adds --help through add_argument.
        self.options: set[str] = set()
        self.takes_value: set[str] = set()
        self.positionals = False
        self.commands: dict[str, _Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.update(action.option_strings)
        if action.option_strings and action.nargs is None:
            self.takes_value.update(action.option_strings)
        self.positionals = self.positionals or not action.option_strings
        return action

    def grammar(self) -> Grammar:
        return Grammar(frozenset(self.options), frozenset(self.takes_value), self.positionals)

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


POINT_HELP = "a seq (12), an RFC 3339 time with offset, or an amount ago: -30s, -10m, -2h, -1.5d, -1w, -1y"


def _parser(now: datetime) -> _Parser:
    """The whole command line; relative points count back from ``now``."""
    parser = _Parser(prog="journal", description="Audit, replay and operate chat journals.")
    point = _point(now)
    parser.add_argument("--version", action="version", version=f"journal {__version__}")
    _global(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        assert isinstance(sub, _Parser)
        parser.commands[name] = sub
        _global(sub, top=False)
        return sub

    ls = command("ls", "list sessions with message count, version, created and updated times")
    ls.add_argument("--sort", choices=["id", "created", "updated", "messages", "version"], default="id")
    ls.add_argument("--limit", type=_positive, help="show at most N sessions")
    ls.add_argument("--reverse", action="store_true", help="reverse the order")
    ls.add_argument(
        "--wide",
        action="store_true",
        help=f"whole session ids, however wide (otherwise cut at {ID_COLUMN} columns, ending in an ellipsis)",
    )
    show = command("show", "the current conversation: messages, times, settings")
    show.add_argument("id")
    log = command("log", "every event in order, cleared history included")
    log.add_argument("id")
    log.add_argument("--after", type=_seq, default=0, metavar="SEQ", help="only events after this seq")
    log.add_argument(
        "--type", action="append", choices=EVENT_TYPES, help="only these event types (repeatable)"
    )
    replay = command("replay", "the conversation as it was at a seq or a time")
    replay.add_argument("id")
    replay.add_argument("--at", required=True, type=point, metavar="POINT", help=POINT_HELP)
    for reader in (show, replay):
        reader.add_argument("--last", type=_positive, metavar="N", help="only the newest N messages")
    diff = command("diff", "what changed between two points (seq or time)")
    diff.add_argument("id")
    diff.add_argument("a", type=point, metavar="A", help=f"the earlier point: {POINT_HELP}")
    diff.add_argument("b", type=point, metavar="B", help="the later point, in the same forms")
    tail = command("tail", "follow new events as other processes append them")
    tail.add_argument("id", nargs="?")
    tail.add_argument("--all", action="store_true", help="every session, also ones created later")
    tail.add_argument(
        "-n",
        "--lines",
        type=_seq_count,
        default=0,
        metavar="N",
        help="first print the newest N events already written (with --all: of all sessions); default 0",
    )
    tail.add_argument("--count", type=_positive, help="exit after N new events (those of -n not counted)")
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
    compact.add_argument(
        "--verbose", action="store_true", help="one line per session, not only the summary (for all sessions)"
    )
    export = command("export", "a transcript (md, json) or the events (jsonl)")
    export.add_argument("id")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (mode 0600, all at once) instead of stdout; an existing FILE needs --force",
    )
    export.add_argument("--force", action="store_true", help="with -o: replace FILE if it exists")
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
    serve = command("serve", "a read-only audit viewer in the browser (extra web)")
    serve.add_argument("url", nargs="?", metavar="URL", help="the journal (instead of --root)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_positive, default=8765, help="port (default 8765)")
    serve.add_argument("--token", help="require this token (default: $JOURNAL_WEB_TOKEN)")
    serve.add_argument(
        "--insecure-no-token", action="store_true", help="allow a non-loopback --host without a token"
    )
    demo = command("demo", "run a scripted tour in a temporary folder (or --root)")
    del demo
    return parser


def _positive(text: str) -> int:
    if not _digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return int(text)


def _seq(text: str) -> int:
    if not _digits(text):
        raise argparse.ArgumentTypeError(f"must be a seq (an integer >= 0), not {text!r}")
    return int(text)


def _seq_count(text: str) -> int:
    if not _digits(text):
        raise argparse.ArgumentTypeError(f"must be a number of events (an integer >= 0), not {text!r}")
    return int(text)


def _digits(text: str) -> bool:
    # str.isdigit() also accepts digits int() refuses ("²") and digits of other scripts; 18
    # digits hold any count or seq there can be, and keep int() away from its length limit.
    return text.isascii() and text.isdigit() and len(text) <= 18


def _point(now: datetime) -> Callable[[str], int | datetime]:
    def point(text: str) -> int | datetime:
        try:
            return parse_point(text, now)
        except InvalidValueError as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None

    return point


# The commands that run on the one journal at the root; demo and copy open their own (see main).
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


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the viewer's frameworks are an extra, and `import journal.cli` needs none.
    try:
        from journal.cli.serve import cmd_serve
    except ImportError as exc:
        raise UsageError(
            f'serve needs the web extra ({exc.name} is missing): pip install "chat-journal[web]"'
        ) from None
    return cmd_serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 problem found, 2 usage error)."""
    # One moment for the whole command: diff -2h -1h is exactly one hour.
    parser = _parser(datetime.now(timezone.utc))
    words = sys.argv[1:] if argv is None else argv
    commands = {name: sub.grammar() for name, sub in parser.commands.items()}
    args = parser.parse_args(values_first(words, parser.grammar(), commands))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from journal.cli.demo import run_demo

            if args.root is not None and "://" in args.root:
                raise UsageError("demo runs in a folder: give --root DIR, not a URL")
            return run_demo(args.root)
        if args.command == "copy":
            return cmd_copy(args, sys.stdout)
        if args.command == "serve":
            return _serve(args)
        with open_journal(root_location(args)) as journal:
            return COMMANDS[args.command](journal, args, sys.stdout)
    except (
        UsageError,
        SessionNotFoundError,
        VersionNotFoundError,
        InvalidSessionIdError,
        InvalidValueError,
    ) as exc:
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
