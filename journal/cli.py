"""The ``journal`` command. Each command is a thin wrapper over one library call."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from journal import __version__
from journal.errors import JournalError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journal", description="Audit and operate chat journals.")
    parser.add_argument("--version", action="version", version=f"journal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="run a scripted tour in a temporary folder (or --root)")
    demo.add_argument("--root", help="folder to use instead of a new temporary one")
    return parser


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

            return run_demo(args.root)
    except JournalError as exc:
        print(f"journal: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":
    sys.exit(main())
