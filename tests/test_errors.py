"""The error tree: one root, builtin bases, facts as attributes, picklable."""

from __future__ import annotations

import pickle

import pytest

import journal
from journal import (
    ConflictError,
    CorruptLogError,
    InvalidSessionIdError,
    InvalidValueError,
    JournalClosedError,
    JournalError,
    LockTimeoutError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    UnsupportedFormatError,
)

EXAMPLES: list[JournalError] = [
    InvalidSessionIdError("../x", "bad"),
    InvalidValueError("metadata", "not JSON"),
    SessionNotFoundError("s1", "at seq 0"),
    ConflictError("s1", 3, 5),
    SessionExistsError("s1", 0, 4),
    CorruptLogError("/r/events.jsonl", 7, 1234, "hash mismatch"),
    UnsupportedFormatError("/r/events.jsonl", 1, 0, "format version 2"),
    LockTimeoutError("/r/locks/x.lock", 2.5),
    StorageError("append", "/r/events.jsonl", "No space left on device", 28),
    JournalClosedError("/r"),
]

BUILTINS = {
    InvalidSessionIdError: ValueError,
    InvalidValueError: ValueError,
    SessionNotFoundError: LookupError,
    CorruptLogError: ValueError,
    LockTimeoutError: TimeoutError,
    StorageError: OSError,
    JournalClosedError: RuntimeError,
}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error: JournalError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - round trip of our own object
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_error_is_a_journal_error_exported_at_top_level(error: JournalError) -> None:
    assert isinstance(error, JournalError)
    assert getattr(journal, type(error).__name__) is type(error)
    assert type(error).__name__.endswith("Error")


def test_builtin_bases() -> None:
    for cls, base in BUILTINS.items():
        assert issubclass(cls, base), cls
    assert issubclass(SessionExistsError, ConflictError)
    assert issubclass(UnsupportedFormatError, CorruptLogError)


def test_messages_lead_with_location_and_carry_facts() -> None:
    corrupt = CorruptLogError("/r/events.jsonl", 7, 1234, "hash mismatch")
    assert str(corrupt) == "/r/events.jsonl:7 (byte 1234): hash mismatch"
    assert (corrupt.path, corrupt.line, corrupt.offset) == ("/r/events.jsonl", 7, 1234)
    conflict = ConflictError("s1", 3, 5)
    assert "version 5" in str(conflict)
    assert "expected 3" in str(conflict)
    storage = StorageError("append", "/r/e.jsonl", "No space left on device", 28)
    assert storage.errno_code == 28
    assert str(storage).startswith("/r/e.jsonl: append failed")
