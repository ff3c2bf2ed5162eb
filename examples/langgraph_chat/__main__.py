"""``python -m examples.langgraph_chat DATA_DIR``: the tour, then what the journal holds."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from journal.cli import main as journal_cli
from journal.integrations.shared import close_shared

from .graph import tour


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.langgraph_chat", description=__doc__)
    parser.add_argument("data_dir", help="the journal: a folder (created on the first write) or a URL")
    parser.add_argument("--thread", default="user-123", help="the thread id (the journal session)")
    args = parser.parse_args(argv)
    tour(args.data_dir, args.thread)
    close_shared()  # the CLI below opens the folder afresh, as another process would
    print(f"\n$ journal show {args.thread}")
    journal_cli(["--root", args.data_dir, "show", args.thread])
    print("\n$ journal verify")
    return journal_cli(["--root", args.data_dir, "verify", args.thread])


if __name__ == "__main__":
    raise SystemExit(main())
