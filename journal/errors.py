"""The error tree of journal.

Every error the library raises on purpose derives from :class:`JournalError`, and each also
derives from the builtin it behaves like, so ``except LookupError`` keeps working for callers
who do not know journal::

    JournalError
    ├── InvalidSessionIdError      (ValueError)   the id cannot name a session
    ├── InvalidValueError          (ValueError)   an argument is refused (nothing was written)
    ├── SessionNotFoundError       (LookupError)  no such session
    ├── MessageNotFoundError       (LookupError)  no such message in the session
    ├── HistoryPrunedError         (LookupError)  that point was dropped by a retention policy
    ├── ConflictError                             expected_version did not match
    │   └── SessionExistsError                    create() found the session already there
    ├── CorruptLogError            (ValueError)   a stored line failed its checks
    │   └── UnsupportedFormatError                written by a newer format version
    ├── LockTimeoutError           (TimeoutError) another writer held the session too long
    ├── StorageError               (OSError)      the file system refused a read or write
    └── JournalClosedError         (RuntimeError) the Journal was closed

Each error keeps the facts as attributes and its constructor arguments in ``args``, so it
survives pickling across process boundaries unchanged.

Internal exceptions, never raised to callers (each is caught where it is raised, and becomes
one of the errors above or a retry): ``LineError`` (a stored line failed a check, before its
location is known), ``SnapshotError`` (a snapshot cannot be used: it is only a cache),
``StaleHeadError`` (a cached position no longer describes the stored log: read afresh),
``NewerSchemaError`` (a database holds a newer schema).
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "CorruptLogError",
    "HistoryPrunedError",
    "InvalidSessionIdError",
    "InvalidValueError",
    "JournalClosedError",
    "JournalError",
    "LockTimeoutError",
    "MessageNotFoundError",
    "SessionExistsError",
    "SessionNotFoundError",
    "StorageError",
    "UnsupportedFormatError",
    "VersionNotFoundError",
]


class JournalError(Exception):
    """Base class of every error journal raises on purpose."""

    def __reduce__(self) -> tuple[type[JournalError], tuple[object, ...]]:
        # OSError rewrites ``args`` when given three or more of them, so rebuild every error from
        # the arguments its own constructor received rather than from ``args``.
        return (type(self), self._init_args)

    @property
    def _init_args(self) -> tuple[object, ...]:
        return tuple(self.args)


class InvalidSessionIdError(JournalError, ValueError):
    """A session id that cannot name a session (not a str, empty, NUL, too long, ...)."""

    def __init__(self, session_id: object, reason: str) -> None:
        super().__init__(session_id, reason)
        self.session_id = session_id
        self.reason = reason

    def __str__(self) -> str:
        shown = repr(self.session_id)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"invalid session id {shown}: {self.reason}"


class InvalidValueError(JournalError, ValueError):
    """An argument journal refuses (content, metadata, settings, a version, a point in time...).

    Raised before any file is touched: nothing was written.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid {self.field}: {self.reason} (nothing was written)"


class SessionNotFoundError(JournalError, LookupError):
    """The session does not exist (or did not exist yet at the requested point)."""

    def __init__(self, session_id: str, detail: str = "") -> None:
        super().__init__(session_id, detail)
        self.session_id = session_id
        self.detail = detail

    def __str__(self) -> str:
        suffix = f" {self.detail}" if self.detail else ""
        return f"session {self.session_id!r} not found{suffix}"


class MessageNotFoundError(JournalError, LookupError):
    """The message is not there: not visible (to remove, edit, insert before) or never added
    (to redact); ``message_id`` is None when there was no message at all (``pop_message``)."""

    def __init__(self, session_id: str, message_id: str | None, detail: str = "") -> None:
        super().__init__(session_id, message_id, detail)
        self.session_id = session_id
        self.message_id = message_id
        self.detail = detail

    def __str__(self) -> str:
        what = "no message" if self.message_id is None else f"message {self.message_id!r} not found"
        suffix = f" {self.detail}" if self.detail else ""
        return f"{what} in session {self.session_id!r}{suffix}"


class HistoryPrunedError(JournalError, LookupError):
    """The requested point lies in history that a retention policy dropped.

    Attributes:
        session_id: the session.
        first_seq: the earliest seq that can still be replayed to (the retention base).
    """

    def __init__(self, session_id: str, first_seq: int) -> None:
        super().__init__(session_id, first_seq)
        self.session_id = session_id
        self.first_seq = first_seq

    def __str__(self) -> str:
        return (
            f"session {self.session_id!r}: history before seq {self.first_seq} was dropped by the "
            "retention policy"
        )


class VersionNotFoundError(JournalError, LookupError):
    """A point past the session's last event was asked for (``replay(at=seq)``).

    Attributes:
        session_id: the session.
        requested: the seq asked for.
        version: the session's version (its last seq) when it was read.
    """

    def __init__(self, session_id: str, requested: int, version: int) -> None:
        super().__init__(session_id, requested, version)
        self.session_id = session_id
        self.requested = requested
        self.version = version

    def __str__(self) -> str:
        return f"session {self.session_id!r} has no seq {self.requested}: it is at version {self.version}"


class ConflictError(JournalError):
    """An ``expected_version`` did not match the session's version; nothing was written.

    Attributes:
        session_id: the session written to.
        expected: the version the caller expected.
        actual: the version the session really had.
    """

    def __init__(self, session_id: str, expected: int, actual: int) -> None:
        super().__init__(session_id, expected, actual)
        self.session_id = session_id
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return (
            f"session {self.session_id!r} is at version {self.actual}, "
            f"expected {self.expected}; nothing was written"
        )


class SessionExistsError(ConflictError):
    """``create`` found the session already present (it expected version 0)."""

    def __init__(self, session_id: str, expected: int = 0, actual: int = 1) -> None:
        super().__init__(session_id, expected, actual)

    def __str__(self) -> str:
        return f"session {self.session_id!r} already exists (version {self.actual})"


class CorruptLogError(JournalError, ValueError):
    """A stored line failed its integrity checks; reads never guess past it.

    Attributes:
        path: the file holding the line.
        line: 1-based line number in that file.
        offset: byte offset of the line's first byte.
        reason: what check failed.
    """

    def __init__(self, path: str, line: int, offset: int, reason: str) -> None:
        super().__init__(path, line, offset, reason)
        self.path = path
        self.line = line
        self.offset = offset
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}:{self.line} (byte {self.offset}): {self.reason}"


class UnsupportedFormatError(CorruptLogError):
    """A line was written by a newer format version than this reader understands."""


class LockTimeoutError(JournalError, TimeoutError):
    """The session's writer lock was not acquired within the timeout; nothing was written."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(path, timeout)
        self.path = path
        self.timeout = timeout

    def __str__(self) -> str:
        return f"{self.path}: writer lock not acquired within {self.timeout:g} s; nothing was written"


class StorageError(JournalError, OSError):
    """The operating system refused an operation on a journal file.

    Attributes:
        operation: what journal was doing ("append", "fsync", "create", ...).
        path: the file or folder involved.
        cause: the OS error text.
        errno_code: the OS errno, when there was one.
    """

    def __init__(self, operation: str, path: str, cause: str, errno_code: int | None = None) -> None:
        super().__init__(errno_code, cause)
        self.operation = operation
        self.path = path
        self.cause = cause
        self.errno_code = errno_code

    @classmethod
    def wrap(cls, operation: str, path: object, exc: OSError) -> StorageError:
        """The StorageError for an OSError raised while doing ``operation`` on ``path``.

        A StorageError is returned as it is: it already names the file or folder that
        refused (a symlink in the way, say), which is more precise than ``path``.
        """
        if isinstance(exc, StorageError):
            return exc
        return cls(operation, str(path), exc.strerror or str(exc), exc.errno)

    @property
    def _init_args(self) -> tuple[object, ...]:
        return (self.operation, self.path, self.cause, self.errno_code)

    def __str__(self) -> str:
        return f"{self.path}: {self.operation} failed: {self.cause}"


class JournalClosedError(JournalError, RuntimeError):
    """The Journal was closed; open a new one to keep working."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.root = root

    def __str__(self) -> str:
        return f"journal at {self.root} is closed"


# -- internal: never raised to callers (see the module docstring) ------------------------------


class LineError(Exception):
    """A line failed a check; the reader adds file, line number and offset."""

    def __init__(self, reason: str, *, unsupported: bool = False, altered: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported
        # Well-formed but not matching its own hash or digest: changed after it was written.
        self.altered = altered


class SnapshotError(Exception):
    """A snapshot file cannot be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StaleHeadError(Exception):
    """A head no longer describes the stored log (replaced or rewritten); read from the start."""


class NewerSchemaError(Exception):
    """The database holds a newer journal schema than this library knows."""
