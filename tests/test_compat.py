"""journal.compat: the classic helpers' dict shape, copies that cannot corrupt the store."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from journal import Journal, JournalClosedError, compat
from journal.integrations.shared import close_shared, shared_journal

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def configured(root: Path) -> Iterator[Journal]:
    journal = compat.configure(root, fsync="never")
    yield journal
    journal.close()


def test_the_dict_shape_chat_apps_use(configured: Journal) -> None:
    session = compat.get_or_create_session("user-1")
    assert session["messages"] == []
    assert session["settings"] == {}
    assert session["created_at"] == session["updated_at"]
    message = compat.add_message_to_session(
        "user-1", "user", "Hello", metadata={"k": [1]}, references=["doc"]
    )
    assert message["role"] == "user"
    assert message["content"] == "Hello"
    assert message["metadata"] == {"k": [1]}
    assert message["references"] == ["doc"]
    assert message["seq"] == 2
    again = compat.get_or_create_session("user-1")
    assert again["messages"] == [message]
    assert again["updated_at"] == message["timestamp"]


def test_returned_dicts_are_copies_that_change_nothing_stored(configured: Journal) -> None:
    compat.add_message_to_session("s", "user", "one")
    session = compat.get_or_create_session("s")
    session["messages"].append({"role": "user", "content": "sneaked in"})
    session["messages"][0]["content"] = "edited"
    session["settings"]["model"] = "x"
    fresh = compat.get_or_create_session("s")
    assert [m["content"] for m in fresh["messages"]] == ["one"]
    assert fresh["settings"] == {}
    assert fresh is not session
    assert configured.get("s").version == 2  # nothing was written by the mutations


def test_clear_keeps_the_history(configured: Journal) -> None:
    compat.add_message_to_session("s", "user", "one")
    cleared = compat.clear_session("s")
    assert cleared["messages"] == []
    assert [e.type for e in configured.events("s")] == ["created", "message_added", "cleared"]


def _append(root: str, name: str, n: int) -> None:
    compat.configure(root, fsync="never")
    for i in range(n):
        compat.add_message_to_session("shared", "user", f"{name}:{i}")


def test_several_processes_lose_no_message(root: Path) -> None:
    procs = [CTX.Process(target=_append, args=(str(root), f"p{k}", 25)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Journal(root) as journal:
        contents = [m.content for m in journal.get("shared").messages]
    assert sorted(contents) == sorted(f"p{k}:{i}" for k in range(3) for i in range(25))


def test_a_folder_alone_is_the_shared_journal_and_only_the_helpers_own_is_closed(root: Path) -> None:
    shared = compat.configure(root)
    assert shared is shared_journal(root)  # the one the framework adapters use too
    own = compat.configure(root, fsync="never")
    assert own is not shared
    compat.configure(root)  # replaces the helpers' own Journal: it is closed
    with pytest.raises(JournalClosedError):
        own.get_or_create("s")
    assert compat.get_or_create_session("s")["messages"] == []
    with Journal(root) as mine:
        compat.configure(mine)
        compat.configure(root)
        assert mine.exists("s")  # a Journal given stays open: it is the caller's
    close_shared()
