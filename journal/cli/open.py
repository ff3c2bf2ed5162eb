"""Which journal a command works on: where its root comes from, and opening a folder or URL."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from journal.backends import POSTGRES_SCHEMES
from journal.cli.render import UsageError
from journal.engine.journal import Journal

__all__ = ["DEFAULT_ROOT", "open_journal", "root_location"]

DEFAULT_ROOT = "journal-data"


def root_location(args: argparse.Namespace) -> str:
    """``--root``, else ``$JOURNAL_URL``, else ``$JOURNAL_ROOT``, else ``DEFAULT_ROOT``."""
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
        raise UsageError(f'{option}: PostgreSQL needs psycopg: pip install "chat-journal[postgres]"')
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
