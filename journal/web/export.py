"""Downloads in the formats of ``journal export``, produced by that very command."""

from __future__ import annotations

import argparse
import io

from journal.cli.commands import cmd_export
from journal.engine.journal import Journal

__all__ = ["export_text"]


def export_text(journal: Journal, session_id: str, fmt: str) -> str:
    """The session as ``journal export ID --format fmt`` prints it (md, json or jsonl).

    The command itself writes it, so a download and an export never disagree.
    """
    out = io.StringIO()
    cmd_export(journal, argparse.Namespace(id=session_id, format=fmt, output=None, force=False), out)
    return out.getvalue()
