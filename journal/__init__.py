"""journal: chat sessions as event-sourced, append-only, tamper-evident logs.

>>> from journal import Journal
>>> with Journal("chat-data") as j:                            # doctest: +SKIP
...     j.get_or_create("user-123")
...     j.add_message("user-123", "user", "Hello")

See ``docs/`` for the format, the guarantees and the API.
"""

from __future__ import annotations

# The composition root: importing the backends hands Journal the way to open a root.
import journal.backends  # noqa: F401
from journal.core.events import (
    Cleared,
    Created,
    Event,
    MessageAdded,
    MessageEdited,
    MessageRedacted,
    MessageRemoved,
    SettingsChanged,
    event_from_dict,
)
from journal.core.points import parse_point
from journal.core.reports import Anchor, Moved, Problem, ProblemKind, RepairReport, VerifyReport
from journal.core.state import Message, Messages, Session, apply, replay
from journal.engine.journal import Compaction, Journal, NewMessage
from journal.errors import (
    ConflictError,
    CorruptLogError,
    HistoryPrunedError,
    InvalidSessionIdError,
    InvalidValueError,
    JournalClosedError,
    JournalError,
    LockTimeoutError,
    MessageNotFoundError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    UnsupportedFormatError,
    VersionNotFoundError,
)

__version__ = "0.1.0"

__all__ = [
    "Anchor",
    "Cleared",
    "Compaction",
    "ConflictError",
    "CorruptLogError",
    "Created",
    "Event",
    "HistoryPrunedError",
    "InvalidSessionIdError",
    "InvalidValueError",
    "Journal",
    "JournalClosedError",
    "JournalError",
    "LockTimeoutError",
    "Message",
    "MessageAdded",
    "MessageEdited",
    "MessageNotFoundError",
    "MessageRedacted",
    "MessageRemoved",
    "Messages",
    "Moved",
    "NewMessage",
    "Problem",
    "ProblemKind",
    "RepairReport",
    "Session",
    "SessionExistsError",
    "SessionNotFoundError",
    "SettingsChanged",
    "StorageError",
    "UnsupportedFormatError",
    "VerifyReport",
    "VersionNotFoundError",
    "__version__",
    "apply",
    "event_from_dict",
    "parse_point",
    "replay",
]
