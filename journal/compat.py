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
folder in ``$JOURNAL_ROOT``, else ``./journal-data``, opened on first use).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from journal.events import thaw
from journal.state import Message, Session
from journal.store import Journal

__all__ = ["add_message_to_session", "clear_session", "configure", "get_or_create_session"]

_lock = threading.Lock()
_journal: Journal | None = None


def configure(root_or_journal: str | os.PathLike[str] | Journal, **options: Any) -> Journal:
    """Use this folder (or this ``Journal``) for the helpers; returns the Journal."""
    global _journal
    journal = root_or_journal if isinstance(root_or_journal, Journal) else Journal(root_or_journal, **options)
    with _lock:
        previous, _journal = _journal, journal
    if previous is not None and previous is not journal:
        previous.close()
    return journal


def _default() -> Journal:
    global _journal
    with _lock:
        if _journal is None:
            _journal = Journal(os.environ.get("JOURNAL_ROOT") or "journal-data")
        return _journal


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
        "messages": [_message_dict(m) for m in s.messages],
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "settings": thaw(s.settings),
    }
