"""LangChain's BaseChatMessageHistory on a journal, with the real langchain-core."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import msgspec
import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip("langchain_core", reason="langchain-core is installed by the dev and langchain extras")

from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory

from journal import InvalidValueError, Journal, NewMessage
from journal.core.events import thaw
from journal.integrations.langchain import JournalChatMessageHistory

# One message of every kind, with the fields LangChain fills in for real replies (an id, usage
# and response metadata, tool calls) and values a careless encoding would change. Beside each:
# the role the journal message gets, and the content people read.
EVERY_KIND: list[tuple[BaseMessage, str, str]] = [
    (SystemMessage("You are terse.", id="sys-1"), "system", "You are terse."),
    (
        HumanMessage("What is 2+2? \u2028 \u00fc", name="alice", additional_kwargs={"x": [1, 2]}),
        "user",
        "What is 2+2? \u2028 \u00fc\n[name: alice]\n[x: [1,2]]",
    ),
    (
        AIMessage(
            "",
            id="run-7",
            tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call-1", "type": "tool_call"}],
            response_metadata={"model_name": "m-1", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
        ),
        "assistant",
        '[tool call: add({"a":2,"b":2})]',
    ),
    (ToolMessage("4", tool_call_id="call-1", name="add"), "tool", "4"),
    (
        ToolMessage("done", tool_call_id="call-2", artifact={"rows": [1, 2]}, status="error"),
        "tool",
        'done\n[artifact: {"rows":[1,2]}]',
    ),
    (FunctionMessage(content="4", name="legacy_add"), "tool", "4"),
    (ChatMessage(content="a custom role speaks", role="critic"), "assistant", "a custom role speaks"),
    (ChatMessage(content="standard", role="developer"), "system", "standard"),
    (
        AIMessage(
            "It is 4.",
            id="run-8",
            additional_kwargs={"refusal": None, "reasoning_content": "two plus two"},
            response_metadata={"model_name": "m-1", "finish_reason": "stop"},
            usage_metadata={"input_tokens": 20, "output_tokens": 4, "total_tokens": 24},
        ),
        "assistant",
        "It is 4.\n[reasoning_content: two plus two]",
    ),
    (
        HumanMessage(
            [
                {"type": "text", "text": "And this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                "plain part",
            ]
        ),
        "user",
        'And this picture?\n[image_url: {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]'
        "\nplain part",
    ),
    (AIMessage([{"type": "text", "text": "It is 4."}]), "assistant", "It is 4."),
    (
        AIMessage(
            "",
            invalid_tool_calls=[
                {
                    "name": "add",
                    "args": "{not json",
                    "id": "call-3",
                    "error": "bad JSON",
                    "type": "invalid_tool_call",
                }
            ],
        ),
        "assistant",
        "[invalid tool call: add({not json) error: bad JSON]",
    ),
    (AIMessageChunk(content="partial", id="run-9"), "assistant", "partial"),
]
MESSAGES = [message for message, _, _ in EVERY_KIND]


def test_every_message_kind_round_trips_losslessly(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    assert isinstance(history, BaseChatMessageHistory)
    assert history.messages == []
    history.add_messages(MESSAGES)
    assert history.messages == MESSAGES
    with Journal(root) as journal:  # another instance, from the files
        again = JournalChatMessageHistory("s", journal)
        assert again.messages == MESSAGES
        assert [m.type for m in again.messages] == [m.type for m in MESSAGES]


def test_each_message_is_stored_readable_with_a_standard_role(root: Path) -> None:
    JournalChatMessageHistory("s", root).add_messages(MESSAGES)
    with Journal(root) as journal:
        stored = journal.get("s").messages
        assert [(m.role, m.content) for m in stored] == [(role, text) for _, role, text in EVERY_KIND]
        assert [e.type for e in journal.events("s")] == ["created"] + ["message_added"] * len(MESSAGES)
    for message in stored:
        assert list(message.metadata) == ["langchain"]
        assert set(message.metadata["langchain"]) == {"payload", "spans"}


def test_the_metadata_keeps_the_bookkeeping_and_nothing_that_was_said(root: Path) -> None:
    reply = EVERY_KIND[2][0]
    JournalChatMessageHistory("s", root).add_messages([HumanMessage("my secret question"), reply])
    with Journal(root) as journal:
        question, call = journal.get("s").messages
    marker: Any = thaw(call.metadata["langchain"])
    data = marker["payload"]["data"]
    assert (data["id"], data["usage_metadata"]["total_tokens"]) == ("run-7", 13)
    assert data["tool_calls"] == [{"name": "add", "args": {}, "id": "call-1", "type": "tool_call"}]
    # The content is '[tool call: add({"a":2,"b":2})]': the (empty) text, then the arguments.
    assert marker["spans"] == [
        [["data", "content"], 0, 0, "text"],
        [["data", "tool_calls", 0, "args"], 16, 29, "json"],
    ]
    assert "my secret question" not in str(question.metadata)


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


def test_a_redacted_message_is_gone_from_every_file_and_reads_back_blank(root: Path) -> None:
    # Letters no id, hash or timestamp can hold, so finding them in a file means the secret.
    needle = "QUOKKA-XYZW"
    said: list[BaseMessage] = [
        HumanMessage(f"I live at {needle}", name=f"{needle}-name"),
        AIMessage(
            f"Paying {needle}",
            id="run-1",
            tool_calls=[{"name": "pay", "args": {"to": needle}, "id": "call-1", "type": "tool_call"}],
            additional_kwargs={"reasoning_content": needle},
        ),
        ToolMessage(f"paid {needle}", tool_call_id="call-1", artifact={"receipt": needle}),
        HumanMessage([{"type": "text", "text": needle}, {"type": "image_url", "image_url": {"url": needle}}]),
        AIMessage("unrelated", id="run-2"),
    ]
    history = JournalChatMessageHistory("s", root)
    history.add_messages(said)
    assert on_disk(root, needle)  # the scan below looks where the content is
    with Journal(root) as journal:
        for message in journal.get("s").messages[:4]:
            journal.redact_message("s", message.id, reason="erasure request", actor="dpo")
        assert journal.verify().ok
    assert on_disk(root, needle) == []
    # What is left is each message's shape: its type, ids and tool names, with nothing said.
    assert history.messages == [
        HumanMessage("", name=""),
        AIMessage(
            "",
            id="run-1",
            tool_calls=[{"name": "pay", "args": {}, "id": "call-1", "type": "tool_call"}],
            additional_kwargs={"reasoning_content": ""},
        ),
        ToolMessage("", tool_call_id="call-1", artifact={}),
        HumanMessage(""),
        said[4],
    ]


def on_disk(root: Path, needle: str) -> list[Path]:
    """The files under ``root`` holding ``needle``'s bytes (as written, or escaped in JSON)."""
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_an_edited_message_reads_back_as_its_kind_with_the_new_text(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    history.add_messages([HumanMessage("typo", id="h-1", name="alice"), EVERY_KIND[2][0]])
    with Journal(root) as journal:
        first, second = journal.get("s").messages
        journal.edit_message("s", first.id, "fixed")
        journal.edit_message("s", second.id, "a note instead of the call")
    assert history.messages == [
        HumanMessage("fixed", id="h-1", name=""),
        AIMessage(
            "a note instead of the call",
            id="run-7",
            tool_calls=[{"name": "add", "args": {}, "id": "call-1", "type": "tool_call"}],
            response_metadata={"model_name": "m-1", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
        ),
    ]


def test_a_message_without_a_json_form_is_refused_and_nothing_is_written(root: Path) -> None:
    history = JournalChatMessageHistory("s", root)
    with pytest.raises(InvalidValueError) as caught:
        history.add_messages([HumanMessage("fine"), HumanMessage("x", additional_kwargs={"o": object()})])
    assert caught.value.field == "messages[1]"
    assert not history.journal.exists("s")


# -- sessions stored by earlier versions -----------------------------------------------------


def older_form(message: BaseMessage) -> NewMessage:
    """The journal message the previous version of the adapter stored for ``message``: the
    message type as the role, and the text or LangChain's JSON in the content."""
    content = message.content
    try:
        plain: BaseMessage | None = messages_from_dict(
            [{"type": message.type, "data": {"content": content}}]
        )[0]
    except (ValueError, TypeError, KeyError):
        plain = None  # a type that needs more than its text (tool, chat)
    if isinstance(content, str) and plain == message:
        return NewMessage(
            role=message.type, content=content, metadata={"langchain": {"form": "text", "type": message.type}}
        )
    return NewMessage(
        role=message.type,
        content=msgspec.json.encode(message_to_dict(message)).decode(),
        metadata={"langchain": {"form": "json", "type": message.type}},
    )


def first_form(message: BaseMessage) -> NewMessage:
    """The first version's: the whole ``message_to_dict`` in the metadata."""
    return NewMessage(
        role=message.type, content=str(message.content), metadata={"langchain": message_to_dict(message)}
    )


def test_sessions_stored_by_earlier_versions_read_back_exactly(root: Path) -> None:
    older = [m for m in MESSAGES if not isinstance(m, AIMessageChunk)]
    with Journal(root) as journal:
        journal.create("s")
        journal.add_messages("s", [older_form(m) for m in older])
        journal.add_messages("s", [first_form(m) for m in MESSAGES[:2]])
        assert any(m.content.startswith('{"type":') for m in journal.get("s").messages)
    history = JournalChatMessageHistory("s", root)
    assert history.messages == [*older, *MESSAGES[:2]]
    history.add_messages([HumanMessage("new"), AIMessage("newer", id="run-10")])  # the new form after
    assert history.messages == [*older, *MESSAGES[:2], HumanMessage("new"), AIMessage("newer", id="run-10")]


def test_a_redacted_message_of_an_earlier_version_reads_back_empty(root: Path) -> None:
    with Journal(root) as journal:
        journal.create("s")
        journal.add_messages("s", [older_form(HumanMessage("secret")), older_form(EVERY_KIND[3][0])])
        for message in journal.get("s").messages:
            journal.redact_message("s", message.id, reason="user asked")
    # A type that needs more than its text (tool) reads back as a chat message, as it did.
    assert JournalChatMessageHistory("s", root).messages == [
        HumanMessage(""),
        ChatMessage(content="", role="tool"),
    ]
