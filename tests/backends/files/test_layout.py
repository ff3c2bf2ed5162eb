"""Session id -> path mapping: the single choke point for path safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal import InvalidSessionIdError
from journal.backends.files.layout import Layout, dirname_for
from journal.core.validate import MAX_ID_LENGTH, check_session_id

HOSTILE = [
    "../x",
    "a/b",
    "/abs",
    "..",
    ".",
    "CON",
    "con.txt",
    "NUL",
    "a\\b",
    "~root",
    " lead",
    "x\ny",
    "🙂",
    "ü",
]


@pytest.mark.parametrize("sid", HOSTILE)
def test_hostile_ids_map_to_one_plain_name_inside_the_root(tmp_path: Path, sid: str) -> None:
    layout = Layout(tmp_path)
    name = dirname_for(sid)
    # One path component, no separators or dots that could climb, nothing a shell expands.
    assert "/" not in name
    assert "\\" not in name
    assert "." not in name
    assert not name.startswith("~")
    assert name == name.lower()
    assert layout.log_path(sid).parent.parent == layout.sessions
    assert layout.lock_path(sid).parent == layout.locks


def test_case_variants_are_distinct_names() -> None:
    # On a case-insensitive file system the names must still differ: they do, by their hash.
    assert dirname_for("UPPER").lower() != dirname_for("upper").lower()


def test_names_are_stable_and_readable() -> None:
    assert dirname_for("user-123") == dirname_for("user-123")
    assert dirname_for("User 123!").startswith("user-123~")
    assert dirname_for("日本").startswith("id~")
    assert len(dirname_for("x" * MAX_ID_LENGTH)) < 100


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        ("a\x00", "NUL"),
        ("\udc80", "surrogate"),
        ("x" * (MAX_ID_LENGTH + 1), "longer"),
        (None, "str"),
        (b"bytes", "str"),
        (12, "str"),
    ],
)
def test_invalid_ids(bad: object, reason: str) -> None:
    with pytest.raises(InvalidSessionIdError, match=reason) as info:
        check_session_id(bad)
    assert isinstance(info.value, ValueError)
    assert info.value.session_id == bad


def test_long_ids_up_to_the_limit_are_accepted() -> None:
    assert check_session_id("x" * MAX_ID_LENGTH) == "x" * MAX_ID_LENGTH
    assert check_session_id("y" * 200) == "y" * 200
