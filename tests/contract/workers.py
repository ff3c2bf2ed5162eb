"""What the contract suite's child processes open: each its own Journal from the URL.

The workers themselves are ``tests.helpers_proc``'s (``Journal(root)`` takes a URL too); they
live at module level because the ``spawn`` start method imports the target afresh in the child,
so a Journal (and its connection pool) is never inherited.
"""

from __future__ import annotations

from journal import Journal

__all__ = ["linearizable_journal"]


def linearizable_journal(url: str) -> Journal:
    """The Journal ``run_workers`` uses: snapshots and pruning cross its writes often."""
    return Journal.from_url(url, snapshot_every=7, archive_after=20)
