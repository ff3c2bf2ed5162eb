"""LangChain's BaseChatMessageHistory on a journal, with the real langchain-core."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip("langchain_core", reason="langchain-core is installed by the dev and langchain extras")

from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory

from journal import Journal
from journal.integrations.langchain import JournalChatMessageHistory

EVERY_KIND: list[BaseMessage] = [
    SystemMessage("You are terse.", id="sys-1"),
    HumanMessage("What is 2+2? \u2028 ü", name="alice", additional_kwargs={"x": [1, 2]}),
    AIMessage(
        "",
        tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call-1", "type": "tool_call"}],
        response_metadata={"model": "m-1"},
    ),
    ToolMessage("4", tool_call_id="call-1", name="add"),
    FunctionMessage(content="4", name="legacy_add"),
    ChatMessage(content="a custom role speaks", role="critic"),
    AIMessage([{"type": "text", "text": "It is 4."}]),
]


def test_every_message_kind_round_trips_losslessly(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    assert isinstance(history, BaseChatMessageHistory)
    assert history.messages == []
    history.add_messages(EVERY_KIND)
    assert history.messages == EVERY_KIND
    with Journal(root) as journal:  # another instance, from the files
        again = JournalChatMessageHistory("s", journal)
        assert again.messages == EVERY_KIND
        assert [m.role for m in journal.get("s").messages] == [m.type for m in EVERY_KIND]


def test_clear_empties_the_conversation_and_keeps_the_history(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.clear()
    assert history.messages == []
    history.add_user_message("again")
    assert [m.content for m in history.messages] == ["again"]
    assert [e.type for e in history.journal.events("s")][-2:] == ["cleared", "message_added"]


def test_sessions_are_isolated_and_shared_by_id(root: Path) -> None:
    with Journal(root) as journal:
        a, b, a2 = (JournalChatMessageHistory(s, journal) for s in ("a", "b", "a"))
        a.add_user_message("for a")
        assert b.messages == []
        assert [m.content for m in a2.messages] == ["for a"]


def test_async_variants(root: Path) -> None:
    async def main() -> list[BaseMessage]:
        history = JournalChatMessageHistory("s", root)
        await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
        await history.aclear()
        await history.aadd_messages([HumanMessage("after")])
        return await history.aget_messages()

    assert asyncio.run(main()) == [HumanMessage("after")]


def test_works_with_runnable_with_message_history(root: Path) -> None:
    model = FakeListChatModel(responses=["first answer", "second answer"])
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    with Journal(root) as journal, warnings.catch_warnings():
        # langchain-core 1.x deprecates it in favour of LangGraph, but it still works and apps use it.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        chain = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: JournalChatMessageHistory(session_id, journal),
            input_messages_key="question",
            history_messages_key="history",
        )
        config: RunnableConfig = {"configurable": {"session_id": "conv-1"}}
        assert chain.invoke({"question": "one?"}, config=config).content == "first answer"
        assert chain.invoke({"question": "two?"}, config=config).content == "second answer"
        stored = JournalChatMessageHistory("conv-1", journal).messages
    assert [(m.type, m.content) for m in stored] == [
        ("human", "one?"),
        ("ai", "first answer"),
        ("human", "two?"),
        ("ai", "second answer"),
    ]


def test_plain_text_is_stored_as_text_and_the_rest_as_json_in_the_erasable_content(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    plain, structured = HumanMessage("just words"), EVERY_KIND[2]
    history.add_messages([plain, structured])
    with Journal(root) as journal:
        first, second = journal.get("s").messages
        assert (first.content, dict(first.metadata["langchain"])) == (
            "just words",
            {"form": "text", "type": "human"},
        )
        assert dict(second.metadata["langchain"]) == {"form": "json", "type": "ai"}
        # Tool-call arguments are in the content (erasable), never in the sealed metadata.
        assert "call-1" in second.content
        assert "call-1" not in str(second.metadata)
        assert [e.type for e in journal.events("s")] == ["created", "message_added", "message_added"]
        assert journal.get("s").messages[0].seq + 1 == journal.get("s").messages[1].seq


def test_redacted_messages_read_back_empty_and_their_payload_is_gone(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    history.add_messages(EVERY_KIND)
    with Journal(root) as journal:
        for message in journal.get("s").messages:
            journal.redact_message("s", message.id, reason="erase everything")
    read = history.messages
    # A type that needs more than its text (tool, chat) reads back as a chat message.
    assert [m.type for m in read] == ["system", "human", "ai", "chat", "chat", "chat", "ai"]
    assert all(m.content == "" for m in read)
    data = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    for secret in (b"What is 2+2", b"call-1", b"a custom role speaks", b"It is 4."):
        assert secret not in data
    with Journal(root) as journal:
        assert journal.verify().ok
