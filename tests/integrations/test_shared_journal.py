"""Adapters given a folder or URL share one Journal per root and open nothing per instance.

Oracles: the process's descriptor table (``/proc/self/fd``) and, on PostgreSQL, the server's
``pg_stat_activity`` rows for this test's ``application_name``. A server that makes an adapter
per request must see these counts stay where they were after the first request.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from journal import Journal, JournalClosedError, compat
from journal.integrations.shared import close_shared, shared_journal

INSTANCES = 300

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


def open_descriptors() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def langchain_request(root: str, i: int) -> Journal:
    pytest.importorskip("langchain_core")
    from langchain_core.messages import HumanMessage

    from journal.integrations.langchain import JournalChatMessageHistory

    history = JournalChatMessageHistory(f"s{i % 3}", root)
    history.add_messages([HumanMessage(f"m{i}")])
    assert history.messages[-1].content == f"m{i}"
    return history.journal


def llama_index_request(root: str, i: int) -> Journal:
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.llms.types import ChatMessage

    from journal.integrations.llama_index import JournalChatStore

    store = JournalChatStore(root)
    store.add_message(f"k{i % 3}", ChatMessage(role="user", content=f"m{i}"))
    assert store.get_messages(f"k{i % 3}")[-1].content == f"m{i}"
    return store.journal


def openai_agents_request(root: str, i: int) -> Journal:
    pytest.importorskip("agents")
    from journal.integrations.openai_agents import JournalSession

    session = JournalSession(f"s{i % 3}", root)
    item = {"role": "user", "content": f"m{i}"}

    async def main() -> None:
        await session.add_items([item])  # type: ignore[list-item]
        assert (await session.get_items(limit=1)) == [item]

    asyncio.run(main())
    return session.journal


def compat_request(root: str, i: int) -> Journal:
    compat.configure(root)
    compat.add_message_to_session(f"s{i % 3}", "user", f"m{i}")
    assert compat.get_or_create_session(f"s{i % 3}")["messages"][-1]["content"] == f"m{i}"
    return compat._default()


REQUESTS: dict[str, Callable[[str, int], Journal]] = {
    "langchain": langchain_request,
    "llama_index": llama_index_request,
    "openai_agents": openai_agents_request,
    "compat": compat_request,
}


@needs_proc
@pytest.mark.parametrize("adapter", list(REQUESTS))
def test_an_adapter_per_request_given_a_folder_opens_no_descriptors(root: Path, adapter: str) -> None:
    request = REQUESTS[adapter]
    journals = {id(request(str(root), i)) for i in range(3)}  # the first requests open the files
    before = open_descriptors()
    journals |= {id(request(str(root), i)) for i in range(3, INSTANCES)}
    assert open_descriptors() == before
    assert len(journals) == 1  # all of them used one Journal
    with Journal(root) as journal:  # and every write landed
        assert sum(len(journal.get(sid).messages) for sid in journal.sessions()) == INSTANCES


def test_an_adapter_per_request_given_a_url_opens_no_connections(pg_url: str) -> None:
    pytest.importorskip("langchain_core")
    import psycopg

    name = f"jt_shared_{uuid.uuid4().hex[:12]}"
    url = f"{pg_url}&application_name={name}"

    def backends() -> set[int]:
        gc.collect()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name])
            return {int(row[0]) for row in rows.fetchall()}

    journals = {id(langchain_request(url, i)) for i in range(3)}
    first = backends()
    assert first, "the shared Journal keeps its pool's connection open between requests"
    journals |= {id(langchain_request(url, i)) for i in range(3, 60)}
    # A Journal per request would open a pool, hence a new server backend, for each one.
    assert backends() <= first
    assert len(journals) == 1


def test_one_journal_per_resolved_root_across_threads(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    spellings: list[str | os.PathLike[str]] = [
        tmp_path / "real",
        str(tmp_path / "real"),
        f"{tmp_path}/real/../real/",
        tmp_path / "link",
    ]
    got: list[Journal] = []
    barrier = threading.Barrier(len(spellings) * 4)

    def first_use(root: str | os.PathLike[str]) -> None:
        barrier.wait(30)
        got.append(shared_journal(root))

    threads = [threading.Thread(target=first_use, args=(r,)) for r in spellings * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(got) == len(threads)
    assert len({id(j) for j in got}) == 1
    assert shared_journal(tmp_path / "other") is not got[0]


def test_a_closed_shared_journal_is_replaced_and_a_journal_passed_in_is_never_closed(root: Path) -> None:
    pytest.importorskip("langchain_core")
    from journal.integrations.langchain import JournalChatMessageHistory

    old = JournalChatMessageHistory("s", root)
    close_shared()
    with pytest.raises(JournalClosedError):
        old.journal.get_or_create("s")
    new = JournalChatMessageHistory("s", root)
    assert new.journal is not old.journal
    new.journal.get_or_create("s")
    with Journal(root) as mine:
        JournalChatMessageHistory("s", mine)
        close_shared()
        assert mine.exists("s")  # not the shared one: closing those left it open
