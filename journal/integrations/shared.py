"""One ``Journal`` per root for the whole process, for adapters given a folder or URL.

Framework adapters are often made per request (LangChain builds a chat history for every
call). A ``Journal`` per adapter would keep a set of descriptors (files) or a connection pool
(PostgreSQL) per request until the garbage collector got to it, and lose its cache each time.
Adapters given a folder or URL therefore use ``shared_journal(root)``: the one Journal this
process keeps for that root, opened with default options on first use and kept open until
``close_shared()`` or interpreter exit.

Roots are compared resolved: a folder by its real path (relative paths, ``..`` and symlinks
naming one folder share one Journal), a ``postgresql://`` URL as written. A Journal you pass to
an adapter yourself is never registered here; it stays yours to close.
"""

from __future__ import annotations

import atexit
import os
import threading

from journal.backends import POSTGRES_SCHEMES
from journal.engine.journal import Journal

__all__ = ["close_shared", "shared_journal"]

_lock = threading.Lock()
_journals: dict[str, Journal] = {}


def shared_journal(root: str | os.PathLike[str]) -> Journal:
    """The process's Journal on ``root`` (a folder or ``postgresql://`` URL), opened if needed.

    Thread-safe: concurrent first calls for one root get the same Journal. Closing it closes it
    for every adapter using it; the next call then opens a fresh one. Construction does no
    file or network work (as ``Journal``'s does not).
    """
    key = _key(root)
    with _lock:
        journal = _journals.get(key)
        if journal is None or journal._closed:
            journal = _journals[key] = Journal(key)
        return journal


def close_shared() -> None:
    """Close every shared Journal and forget them (it runs by itself at interpreter exit).

    Adapters still holding one then raise ``JournalClosedError``; new adapters open anew.
    """
    with _lock:
        journals = list(_journals.values())
        _journals.clear()
    for journal in journals:
        journal.close()


def _key(root: str | os.PathLike[str]) -> str:
    location = os.fspath(root)
    if location.startswith(POSTGRES_SCHEMES):
        return location
    return os.path.realpath(location)


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child. The
    # Journals themselves stay usable there (they reset their own state after a fork).
    global _lock
    _lock = threading.Lock()


atexit.register(close_shared)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
