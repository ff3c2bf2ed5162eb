"""The classic chat-app session helpers, backed by a journal.

Drop-in for apps that use ``get_or_create_session(session_id) -> dict`` and friends over a
global dict and a JSON file per session (see ``docs/integrations.md``). The dict shape is the
one those apps use::

    {"messages": [{"role", "content", "timestamp", "metadata", "references", "id", "seq"}],
     "created_at": datetime, "updated_at": datetime, "settings": {...}}

What changes, on purpose: every call returns a fresh copy (mutating it changes nothing
stored: write through the helpers); times are aware UTC datetimes; a clear keeps the history
in the log; and writes are appends, safe across threads and processes.

The helpers use one module-level ``Journal``: ``configure(root)`` sets it (by default the
folder in ``$JOURNAL_ROOT``, else ``./journal-data``, on first use). Who closes it: a
``Journal`` passed to ``configure`` is yours. A folder or URL alone means the process's shared
Journal on it (``journal.shared.shared_journal``, closed at interpreter exit), the one the
framework adapters given that root use too. A folder with options (``fsync=...``) opens a
Journal of the helpers' own, closed when ``configure`` replaces it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from journal.core.events import thaw
from journal.core.state import Message, Session
from journal.engine.journal import Journal
from journal.integrations.shared import shared_journal

__all__ = ["add_message_to_session", "clear_session", "configure", "get_or_create_session"]

_lock = threading.Lock()
_journal: Journal | None = None
_owned = False  # whether _journal was opened here (with options): then it is closed here too


def configure(root_or_journal: str | os.PathLike[str] | Journal, **options: Any) -> Journal:
    """Use this ``Journal``, or the Journal on this folder or URL, for the helpers; returns it.

    A Journal given stays yours to close; a folder or URL alone is the shared Journal on it;
    with ``options`` a Journal of the helpers' own is opened (closed when replaced).
    """
    global _journal, _owned
    if isinstance(root_or_journal, Journal):
        journal, owned = root_or_journal, False
    elif options:
        journal, owned = Journal(root_or_journal, **options), True
    else:
        journal, owned = shared_journal(root_or_journal), False
    with _lock:
        previous, previous_owned = _journal, _owned
        _journal, _owned = journal, owned
    if previous is not None and previous_owned and previous is not journal:
        previous.close()
    return journal


def _default() -> Journal:
    with _lock:
        if _journal is not None:
            return _journal
    return shared_journal(os.environ.get("JOURNAL_ROOT") or "journal-data")


def get_or_create_session(session_id: str) -> dict[str, Any]:
    """The session as a dict (a copy), created first if it does not exist."""
    return _session_dict(_default().get_or_create(session_id))


def add_message_to_session(
    session_id: str,
    role: str,
    content: str,
    metadata: Mapping[str, Any] | None = None,
    references: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """Append a message (creating the session if needed); returns the message as a dict."""
    journal = _default()
    journal.get_or_create(session_id)
    return _message_dict(
        journal.add_message(session_id, role, content, metadata=metadata, references=references)
    )


def clear_session(session_id: str) -> dict[str, Any]:
    """Empty the visible conversation (the log keeps it); returns the session as a dict."""
    return _session_dict(_default().clear(session_id))


def _message_dict(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "timestamp": m.at,
        "metadata": thaw(m.metadata),
        "references": thaw(m.references),
        "id": m.id,
        "seq": m.seq,
    }


def _session_dict(s: Session) -> dict[str, Any]:
    return {
        "messages": [_message_dict(m) for m in s.messages_view],
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "settings": thaw(s.settings),
    }
