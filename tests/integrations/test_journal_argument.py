"""Every adapter takes its journal the same way: ``journal=``, in the same place, the same values.

The oracle is the ``Journal`` the adapter ends up using: the one passed in (also inside an
``AsyncJournal``), or the process's shared one on the folder or URL (``shared_journal``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from journal import InvalidValueError, Journal
from journal.aio import AsyncJournal
from journal.integrations.shared import shared_journal

ACCEPTED = "a Journal, an AsyncJournal, a folder .* or a postgresql:// URL"


def langchain(*args: Any, **kwargs: Any) -> Any:
    pytest.importorskip("langchain_core", reason="langchain-core is installed by the dev extra")
    from journal.integrations.langchain import JournalChatMessageHistory

    return JournalChatMessageHistory("s", *args, **kwargs)


def openai_agents(*args: Any, **kwargs: Any) -> Any:
    pytest.importorskip("agents", reason="openai-agents is installed by the dev extra")
    from journal.integrations.openai_agents import JournalSession

    return JournalSession("s", *args, **kwargs)


def llama_index(*args: Any, **kwargs: Any) -> Any:
    pytest.importorskip("llama_index.core", reason="llama-index-core is installed by the dev extra")
    from journal.integrations.llama_index import JournalChatStore

    return JournalChatStore(*args, **kwargs)


ADAPTERS: dict[str, Callable[..., Any]] = {
    "langchain": langchain,
    "openai_agents": openai_agents,
    "llama_index": llama_index,
}
# The adapters that took the journal under another keyword before.
OLD_KEYWORD = {"langchain": "journal_or_root", "openai_agents": "journal_or_root"}


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return ADAPTERS[request.param]


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_journal_is_the_parameter_after_what_names_the_session(name: str) -> None:
    with Journal("memory:") as journal:
        cls = type(ADAPTERS[name](journal))
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    position = [p.name for p in parameters].index("journal")
    # After the session id where the adapter is one session; first for a store of many.
    assert position == (0 if name == "llama_index" else 1)
    assert parameters[position].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_a_journal_passed_in_is_used_by_keyword_or_position(adapter: Callable[..., Any], root: Path) -> None:
    with Journal(root) as journal:
        assert adapter(journal=journal).journal is journal
        assert adapter(journal).journal is journal


def test_an_async_journal_lends_its_journal(adapter: Callable[..., Any], root: Path) -> None:
    with Journal(root) as journal:
        assert adapter(journal=AsyncJournal(journal)).journal is journal


@pytest.mark.parametrize("spelling", [str, Path, lambda p: f"file://{p}"], ids=["str", "Path", "file URL"])
def test_a_folder_gives_the_shared_journal_on_it(
    adapter: Callable[..., Any], root: Path, spelling: Callable[[Path], Any]
) -> None:
    shared = adapter(journal=spelling(root)).journal
    assert shared is shared_journal(root)
    assert adapter(spelling(root)).journal is shared
    assert not root.exists()  # constructing does no file work


def test_a_memory_url_gives_the_shared_journal_on_it(adapter: Callable[..., Any]) -> None:
    journal = adapter(journal="memory:argument-test").journal
    assert journal is shared_journal("memory:argument-test")
    assert journal.root == "memory:argument-test"


@pytest.mark.parametrize("name", list(OLD_KEYWORD))
def test_the_old_keyword_still_works_with_a_deprecation_warning(name: str, root: Path) -> None:
    make, keyword = ADAPTERS[name], OLD_KEYWORD[name]
    with pytest.warns(DeprecationWarning, match=f"{keyword}=.* is deprecated: pass journal="):
        assert make(**{keyword: root}).journal is shared_journal(root)
    with Journal(root) as journal, pytest.raises(TypeError, match="both journal= and"):
        make(journal, **{keyword: journal})


def test_no_journal_is_a_type_error_naming_what_is_accepted(adapter: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=f"needs journal=: {ACCEPTED}"):
        adapter()


@pytest.mark.parametrize("value", [42, b"bytes/path", ["chat-data"], object()], ids=repr)
def test_another_type_is_a_type_error_naming_what_is_accepted(
    adapter: Callable[..., Any], value: Any
) -> None:
    with pytest.raises(TypeError, match=f"takes {ACCEPTED}, not {type(value).__name__}"):
        adapter(journal=value)


@pytest.mark.parametrize(
    ("value", "match"),
    [("", "an empty path names no folder"), ("mysql://db/chat", "no backend serves 'mysql://db/chat'")],
)
def test_a_value_naming_no_journal_is_an_invalid_value(
    adapter: Callable[..., Any], value: str, match: str
) -> None:
    with pytest.raises(InvalidValueError, match=match) as caught:
        adapter(journal=value)
    assert caught.value.field == "journal"


def test_a_file_url_of_another_host_is_refused(adapter: Callable[..., Any]) -> None:
    with pytest.raises(InvalidValueError, match="no backend serves"):
        adapter(journal="file://elsewhere/chat-data")


def test_a_relative_folder_and_its_absolute_path_share_one_journal(
    adapter: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert adapter(journal="chat-data").journal is adapter(journal=os.fspath(tmp_path / "chat-data")).journal
