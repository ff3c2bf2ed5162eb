"""One ``Journal`` per root for the whole process, for adapters given a folder or URL.

Framework adapters are often made per request (LangChain builds a chat history for every
call). A ``Journal`` per adapter would keep a set of descriptors (files) or a connection pool
(PostgreSQL) per request until the garbage collector got to it, and lose its cache each time.
Adapters given a folder or URL therefore use ``shared_journal(root)``: the one Journal this
process keeps for that root, opened with default options on first use and kept open until
``close_shared()`` or interpreter exit.

Roots are compared resolved: a folder (or ``file://`` URL) by its real path (relative paths,
``..`` and symlinks naming one folder share one Journal), a ``postgresql://`` or ``memory:`` URL
as written. A Journal you pass to an adapter yourself is never registered here; it stays yours
to close.

``adapter_journal`` is how every adapter reads its ``journal=`` argument, so they all take the
same values and refuse the same ones with the same message.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

from journal.aio import AsyncJournal
from journal.backends import MEMORY_SCHEME, POSTGRES_SCHEMES
from journal.engine.journal import Journal
from journal.errors import InvalidValueError

__all__ = ["JournalArg", "adapter_journal", "close_shared", "shared_journal"]

JournalArg: TypeAlias = Journal | AsyncJournal | str | os.PathLike[str]
"""What an adapter's ``journal=`` takes."""

_ACCEPTED = "a Journal, an AsyncJournal, a folder (str or path) or a postgresql:// URL"

_lock = threading.Lock()
_journals: dict[str, Journal] = {}


def shared_journal(root: str | os.PathLike[str]) -> Journal:
    """The process's Journal on ``root`` (a folder or ``postgresql://`` URL), opened if needed.

    Thread-safe: concurrent first calls for one root get the same Journal. Closing it closes it
    for every adapter using it; the next call then opens a fresh one. Construction does no
    file or network work (as ``Journal``'s does not).

    Raises:
        InvalidValueError: an empty path, or a URL no backend serves.
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


def adapter_journal(
    adapter: str, journal: object, old: object = None, old_name: str = "journal_or_root"
) -> tuple[Journal, bool]:
    """The Journal an adapter's ``journal=`` argument names, and whether it is the shared one.

    A ``Journal`` or ``AsyncJournal`` is the caller's (never closed by the adapter); a folder or
    URL gives ``shared_journal`` on it. ``old`` is the value of the keyword the adapter took
    before (``old_name``): still accepted, with a ``DeprecationWarning``. No file or network
    work happens here.

    Raises:
        TypeError: neither or both given, or a value of another type (the message names the
            accepted ones).
        InvalidValueError: an empty path, or a URL no backend serves.
    """
    if old is not None:
        if journal is not None:
            raise TypeError(f"{adapter}() got both journal= and {old_name}=: pass journal= only")
        warnings.warn(
            f"{adapter}({old_name}=...) is deprecated: pass journal= (the same values)",
            DeprecationWarning,
            stacklevel=3,
        )
        journal = old
    if isinstance(journal, AsyncJournal):
        return journal.journal, False
    if isinstance(journal, Journal):
        return journal, False
    if journal is None:
        raise TypeError(f"{adapter}() needs journal=: {_ACCEPTED}")
    if not isinstance(journal, (str, os.PathLike)) or not isinstance(os.fspath(journal), str):
        raise TypeError(f"{adapter}(journal=...) takes {_ACCEPTED}, not {type(journal).__name__}")
    return shared_journal(journal), True


def _key(root: str | os.PathLike[str]) -> str:
    location = os.fspath(root)
    if not location:
        raise InvalidValueError("journal", f"an empty path names no folder: give {_ACCEPTED}")
    if location.startswith(POSTGRES_SCHEMES) or location.startswith(MEMORY_SCHEME):
        return location
    if "://" in location:
        # Resolved here too, so that a file:// URL and the folder's path share one Journal.
        parts = urlsplit(location)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise InvalidValueError("journal", f"no backend serves {location!r}: give {_ACCEPTED}")
        location = unquote(parts.path)
    return os.path.realpath(location)


def _reset_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child. The
    # Journals themselves stay usable there (they reset their own state after a fork).
    global _lock
    _lock = threading.Lock()


atexit.register(close_shared)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
