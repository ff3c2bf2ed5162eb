"""LangGraph's checkpointer on a journal, with the real langgraph and its conformance suite."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip("langgraph.checkpoint.conformance", reason="langgraph is installed by the dev extra")

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from typing_extensions import NotRequired, TypedDict

from examples.langgraph_chat.graph import State, build_graph, scripted
from journal import Journal
from journal.cli.main import main
from journal.integrations.langgraph import ROLE, JournalSaver
from journal.integrations.shared import close_shared

ROOT = Path(__file__).resolve().parents[2]


def _journal(where: str) -> Journal:
    # Durability is not what the suite checks: fsync="never" keeps it fast.
    return Journal(where, fsync="never") if not where.startswith("postgresql") else Journal(where)


@pytest.fixture(params=["files", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A folder, then a fresh PostgreSQL schema (skipped without a server; fails on CI)."""
    if request.param == "files":
        yield str(tmp_path / "journal")
        return
    from tests.pg import fresh_schema, need_server

    with fresh_schema(need_server()) as url:
        yield url


def test_conformance(where: str) -> None:
    """Every base and extended capability of LangGraph's own suite passes."""
    journal = _journal(where)

    @checkpointer_test(name=f"JournalSaver[{where.split(':')[0]}]")
    async def saver() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        yield JournalSaver(journal)

    try:
        report = asyncio.run(validate(saver))
    finally:
        journal.close()
    results = report.to_dict()["results"]
    assert set(results) == {c.value for c in ALL_CAPABILITIES}
    failed = {name: r["failures"] for name, r in results.items() if not (r["detected"] and r["passed"])}
    assert not failed, json.dumps(failed, indent=1)
    assert all(r["tests_passed"] > 0 and r["tests_failed"] == 0 for r in results.values())
    assert report.conformance_level() == "FULL"


def chat_graph(replies: list[str]) -> StateGraph[State]:
    """The example's one-node graph, answering from ``replies``: no network."""
    return build_graph(scripted(*replies))


def ask(text: str) -> State:
    return {"messages": [HumanMessage(text)]}


def words(state: Any) -> list[tuple[str, str]]:
    return [(m.type, m.content) for m in state.values["messages"]]


# A second process resumes the thread with a saver of its own and reports what it saw.
RESUME = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from tests.integrations.test_langgraph import ask, chat_graph, words
    from journal.integrations.langgraph import JournalSaver

    graph = chat_graph(["Still here, Cy."]).compile(checkpointer=JournalSaver(sys.argv[1]))
    config = {"configurable": {"thread_id": "user-123"}}
    graph.invoke(ask("Are you there?"), config)
    print(json.dumps(words(graph.get_state(config))))
    """
)


def test_a_chat_graph_travels_in_time_forks_and_resumes_elsewhere(
    where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = Journal(where)
    graph = chat_graph(["Hello Ada.", "You are Ada."]).compile(checkpointer=JournalSaver(journal))
    config: RunnableConfig = {"configurable": {"thread_id": "user-123"}}

    graph.invoke(ask("Hi, I am Ada."), config)
    first = graph.get_state(config)
    graph.invoke(ask("What is my name?"), config)
    assert words(graph.get_state(config)) == [
        ("human", "Hi, I am Ada."),
        ("ai", "Hello Ada."),
        ("human", "What is my name?"),
        ("ai", "You are Ada."),
    ]
    history = list(graph.get_state_history(config))
    assert first.config["configurable"]["checkpoint_id"] in [
        s.config["configurable"]["checkpoint_id"] for s in history
    ]
    assert [s.metadata["step"] for s in history if s.metadata] == sorted(
        (s.metadata["step"] for s in history if s.metadata), reverse=True
    )

    # Time travel: the state at the end of the first turn, read back from the journal.
    past = graph.get_state(first.config)
    assert words(past) == [("human", "Hi, I am Ada."), ("ai", "Hello Ada.")]

    # A fork: rewrite the first message from that checkpoint, then go on from the fork.
    ada = past.values["messages"][0]
    forked = graph.update_state(first.config, {"messages": [HumanMessage("Hi, I am Cy.", id=ada.id)]})
    assert words(graph.get_state(forked))[0] == ("human", "Hi, I am Cy.")
    graph2 = chat_graph(["Hello Cy."]).compile(checkpointer=JournalSaver(journal))
    graph2.invoke(ask("Who am I?"), forked)
    assert words(graph2.get_state(config)) == [
        ("human", "Hi, I am Cy."),
        ("ai", "Hello Ada."),
        ("human", "Who am I?"),
        ("ai", "Hello Cy."),
    ]
    # The original branch is still there, unchanged.
    assert words(graph.get_state(history[0].config))[-1] == ("ai", "You are Ada.")

    # Another process, with its own saver on the same root, resumes the thread.
    done = subprocess.run(
        [sys.executable, "-c", RESUME, where, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [
        ["human", "Hi, I am Cy."],
        ["ai", "Hello Ada."],
        ["human", "Who am I?"],
        ["ai", "Hello Cy."],
        ["human", "Are you there?"],
        ["ai", "Still here, Cy."],
    ]
    # ... and this process sees what it wrote.
    assert words(graph.get_state(config))[-2:] == [("human", "Are you there?"), ("ai", "Still here, Cy.")]

    # The whole thread verifies, and `journal show` reads as a conversation: no bookkeeping.
    session = journal.get("user-123")
    assert all(m.role != ROLE for m in session.messages)
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "Hi, I am Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
        ("assistant", "You are Ada."),
        ("user", "Hi, I am Cy."),
        ("user", "Who am I?"),
        ("assistant", "Hello Cy."),
        ("user", "Are you there?"),
        ("assistant", "Still here, Cy."),
    ]
    journal.close()
    capsys.readouterr()
    assert main(["--root", where, "verify"]) == 0
    assert main(["--root", where, "show", "user-123"]) == 0
    shown = capsys.readouterr().out
    assert "Hi, I am Ada." in shown
    assert "Still here, Cy." in shown
    for bookkeeping in (ROLE, "msgpack", "checkpoint"):
        assert bookkeeping not in shown


def stored_bytes(journal: Journal, sid: str) -> bytes:
    """Every event's content, with the bookkeeping's base64 values decoded: where words hide."""
    out = []
    for event in journal.events(sid):
        text = getattr(event, "content", "")
        out.append(text.encode())
        if getattr(event, "role", None) == ROLE and text:
            body = json.loads(text)
            values = body.get("values", {})
            for typed in [body.get("metadata"), *(values.values() if isinstance(values, dict) else values)]:
                if typed:
                    out.append(base64.b64decode(typed[1]))
    return b"\n".join(out)


def test_an_erased_message_is_gone_from_every_checkpoint(tmp_path: Path) -> None:
    """``saver.redact_message`` erases what the user said from the conversation and from the
    bookkeeping that repeats it (the graph's input); every checkpoint still loads."""
    with Journal(tmp_path, fsync="never") as journal:
        saver = JournalSaver(journal)
        graph = chat_graph(["Noted.", "Fine."]).compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t"}}
        graph.invoke(ask("My card is 4111 1111 1111 1111."), config)
        graph.invoke(ask("Thanks."), config)
        assert b"4111" in stored_bytes(journal, "t")
        card = journal.get("t").messages[0]
        erased = saver.redact_message("t", card.id, reason="erasure request #7")
        assert len(erased) > 1  # the input checkpoint and its writes held the words too
        assert b"4111" not in stored_bytes(journal, "t")
        assert words(graph.get_state(config)) == [
            ("human", ""),
            ("ai", "Noted."),
            ("human", "Thanks."),
            ("ai", "Fine."),
        ]
        for state in graph.get_state_history(config):
            assert all("4111" not in m.content for m in state.values.get("messages", []))
        assert journal.verify("t").ok
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"4111" not in raw


def test_messages_already_stored_are_not_stored_again(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync="never") as journal:
        saver = JournalSaver(journal)
        graph = chat_graph(["One.", "Two.", "Three."]).compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t"}}
        for text in ("a", "b", "c"):
            graph.invoke(ask(text), config)
        contents = [m.content for m in journal.get("t").messages]
        assert contents == ["a", "One.", "b", "Two.", "c", "Three."]
        # A fresh saver (a new process's) reads the same thread from the log alone.
        again = JournalSaver(journal).get_tuple(config)
        assert again is not None
        assert [m.content for m in again.checkpoint["channel_values"]["messages"]] == contents
        assert isinstance(again.checkpoint["channel_values"]["messages"][1], AIMessage)


def test_sync_list_filters_and_pages(tmp_path: Path) -> None:
    with Journal(tmp_path, fsync="never") as journal:
        saver = JournalSaver(journal)
        graph = chat_graph(["One.", "Two."]).compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t"}}
        graph.invoke(ask("a"), config)
        graph.invoke(ask("b"), config)
        every = list(saver.list(config))
        ids = [t.config["configurable"]["checkpoint_id"] for t in every]
        assert ids == sorted(ids, reverse=True)
        assert [t.metadata["source"] for t in saver.list(config, filter={"source": "input"})] == ["input"] * 2
        assert [t.config for t in saver.list(config, before=every[1].config, limit=1)] == [every[2].config]
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"t"}
        saver.delete_thread("t")
        assert saver.get_tuple(config) is None
        assert not journal.exists("t")


class Approval(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    approved: NotRequired[str]


def test_an_interrupt_is_resumed_by_another_saver_async(tmp_path: Path) -> None:
    """``interrupt`` stores its pending write; a saver that never saw the thread resumes it."""

    def approve(state: Approval) -> dict[str, Any]:
        answer = interrupt({"question": "Send it?"})
        return {"approved": answer, "messages": [AIMessage(f"Sent: {answer}")]}

    builder = StateGraph(Approval)
    builder.add_node("approve", approve)
    builder.add_edge(START, "approve")
    builder.add_edge("approve", END)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}

    async def run() -> dict[str, Any]:
        first = builder.compile(checkpointer=JournalSaver(tmp_path))
        out = await first.ainvoke({"messages": [HumanMessage("Send the report.")]}, config)
        assert out["__interrupt__"][0].value == {"question": "Send it?"}
        close_shared()  # the next saver opens the folder afresh, as another process would
        again = builder.compile(checkpointer=JournalSaver(tmp_path))
        return await again.ainvoke(Command(resume="yes"), config)

    done = asyncio.run(run())
    assert done["approved"] == "yes"
    with Journal(tmp_path) as journal:
        assert [(m.role, m.content) for m in journal.get("t").messages] == [
            ("user", "Send the report."),
            ("assistant", "Sent: yes"),
        ]
