"""The ``journal`` command (see ``docs/cli.md``)."""

from __future__ import annotations

from journal.cli.main import main

__all__ = ["main"]
