"""What the audit tools show of sessions the adapters wrote: a transcript a person can read.

Each adapter writes the same tool-using exchange, with the fields its framework fills in for
real replies (ids, token counts, the model's name). The oracle is the exchange as a person
would write it down: a standard role and the words, and no JSON blob of the framework's
objects, in ``journal show``, ``journal log`` and ``journal export --format md`` (the real
command, run in this process). The transcript module's own rules are tested at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from journal import Journal
from journal.cli.main import main
from journal.integrations.transcript import Transcript, blank, fill, parts, restored, silent, standard_role

# (role, content) of the exchange, as every adapter must store it.
EXCHANGE = [
    ("user", "What is 2+2?"),
    ("assistant", '[tool call: add({"a":2,"b":2})]'),
    ("tool", "4"),
    ("assistant", "It is 4."),
]


def by_langchain(root: Path) -> None:
    pytest.importorskip("langchain_core", reason="langchain-core is installed by the dev extra")
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from journal.integrations.langchain import JournalChatMessageHistory

    usage = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    JournalChatMessageHistory("s", root).add_messages(
        [
            HumanMessage("What is 2+2?"),
            AIMessage(
                "",
                id="run-1",
                tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call-1", "type": "tool_call"}],
                response_metadata={"model_name": "m-1", "finish_reason": "tool_calls"},
                usage_metadata=usage,
            ),
            ToolMessage("4", tool_call_id="call-1", name="add"),
            AIMessage(
                "It is 4.",
                id="run-2",
                response_metadata={"model_name": "m-1", "finish_reason": "stop"},
                usage_metadata=usage,
            ),
        ]
    )


def by_openai_agents(root: Path) -> None:
    pytest.importorskip("agents", reason="openai-agents is installed by the dev extra")
    from journal.integrations.openai_agents import JournalSession

    items: list[Any] = [
        {"role": "user", "content": "What is 2+2?"},
        {
            "arguments": '{"a":2,"b":2}',
            "call_id": "call-1",
            "name": "add",
            "type": "function_call",
            "id": "fc_1",
        },
        {"call_id": "call-1", "output": "4", "type": "function_call_output"},
        {
            "id": "msg_1",
            "content": [{"annotations": [], "text": "It is 4.", "type": "output_text", "logprobs": []}],
            "role": "assistant",
            "status": "completed",
            "type": "message",
        },
    ]
    session = JournalSession("s", root)
    asyncio.run(session.add_items(items))
    session.close()


def by_llama_index(root: Path) -> None:
    pytest.importorskip("llama_index.core", reason="llama-index-core is installed by the dev extra")
    from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock

    from journal.integrations.llama_index import JournalChatStore

    JournalChatStore(root).set_messages(
        "s",
        [
            ChatMessage(role="user", content="What is 2+2?"),
            ChatMessage(
                role="assistant",
                blocks=[ToolCallBlock(tool_call_id="call-1", tool_name="add", tool_kwargs={})],
            ),
            ChatMessage(
                role="tool", content="4", additional_kwargs={"tool_call_id": "call-1", "name": "add"}
            ),
            ChatMessage(role="assistant", content="It is 4."),
        ],
    )


WRITERS: dict[str, Callable[[Path], None]] = {
    "langchain": by_langchain,
    "openai_agents": by_openai_agents,
    "llama_index": by_llama_index,
}
# LlamaIndex's tool call block carries its own id and name, shown as the block it is.
LLAMA_CALL = (
    '[tool_call: {"block_type":"tool_call","tool_call_id":"call-1","tool_name":"add","tool_kwargs":{}}]'
)


def expected(adapter: str) -> list[tuple[str, str]]:
    if adapter == "llama_index":
        return [EXCHANGE[0], ("assistant", LLAMA_CALL), *EXCHANGE[2:]]
    return EXCHANGE


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> str:
    assert main(["--root", str(root), *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


@pytest.fixture(params=list(WRITERS))
def written(request: pytest.FixtureRequest, root: Path) -> tuple[str, Path]:
    """A session "s" the adapter wrote, and the adapter's name."""
    WRITERS[request.param](root)
    return request.param, root


def assert_no_framework_json(out: str) -> None:
    # The blobs of the old form: LangChain's message_to_dict, an Agents item, a ChatMessage.
    for blob in (
        '{"type":"ai"',
        '"data":{',
        '{"role":',
        '"additional_kwargs"',
        '"usage_metadata"',
        '"call_id"',
    ):
        assert blob not in out


def test_journal_show_prints_the_exchange(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    adapter, root = written
    out = run(capsys, root, "show", "s")
    # "[#2 <time>] user:" and the content indented below it.
    assert re.findall(r"^\[#\d+ [^\]]*\] (\w+):$", out, re.MULTILINE) == [r for r, _ in expected(adapter)]
    for _, text in expected(adapter):
        assert f"\n  {text}\n" in out
    assert_no_framework_json(out.replace(LLAMA_CALL, ""))


def test_journal_log_prints_the_exchange(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    adapter, root = written
    lines = [line for line in run(capsys, root, "log", "s").splitlines() if " message_added: " in line]
    assert [line.split(" message_added: ", 1)[1] for line in lines] == [
        f"{r}: {t}" for r, t in expected(adapter)
    ]
    assert_no_framework_json("\n".join(lines).replace(LLAMA_CALL, ""))


def test_journal_export_markdown_is_the_exchange(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    adapter, root = written
    out = run(capsys, root, "export", "s", "--format", "md")
    assert re.findall(r"^## (\w+) · #", out, re.MULTILINE) == [r for r, _ in expected(adapter)]
    for _, text in expected(adapter):
        assert f"\n\n{text}\n" in out
    assert_no_framework_json(out.replace(LLAMA_CALL, ""))


def test_a_redacted_message_shows_as_erased(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = written
    first = json.loads(run(capsys, root, "show", "s", "--json"))["messages"][0]["id"]
    with Journal(root) as journal:
        journal.redact_message("s", first, reason="user asked")
    out = run(capsys, root, "show", "s")
    assert "What is 2+2?" not in out
    assert "[content erased]" in out


# -- the transcript module -------------------------------------------------------------------


def render(payload: Any) -> Transcript:
    """A made-up framework: {"text": str, "call": {"name": ..., "args": ...}, "extra": ...}."""
    t = Transcript()
    t.value(["text"], payload["text"])
    t.field(["call", "args"], payload["call"]["name"], payload["call"]["args"])
    return t


PAYLOAD = {"text": "hello", "call": {"name": "add", "args": {"a": [1, 2.5]}}, "id": "p-1"}


def test_a_payload_splits_into_readable_text_and_a_blanked_form() -> None:
    t = render(PAYLOAD)
    assert t.content == 'hello\n[add: {"a":[1,2.5]}]'
    marker = t.marker(PAYLOAD)
    assert marker == {
        "payload": {"text": "", "call": {"name": "add", "args": {}}, "id": "p-1"},
        "spans": [[["text"], 0, 5, "text"], [["call", "args"], 12, 25, "json"]],
    }
    assert restored(marker, t.content, render) == PAYLOAD
    assert blank(marker) == marker["payload"]
    assert PAYLOAD["text"] == "hello"  # the caller's payload is never changed


@pytest.mark.parametrize(
    "content",
    [
        "",  # erased by a redaction
        "hello, edited to something longer",
        'hello\n[add: {"a":[1,2.5]]]',  # the spans' bytes, no longer JSON
        'hellO\n[sub: {"a":[1,2.5]}]',  # the spans' values fit, the text between them does not
    ],
)
def test_content_that_is_not_the_rendering_is_not_read_as_the_payload(content: str) -> None:
    t = render(PAYLOAD)
    assert restored(t.marker(PAYLOAD), content, render) is None


def test_an_edit_that_keeps_the_rendering_is_read_as_the_edited_payload() -> None:
    t = render(PAYLOAD)
    edited = restored(t.marker(PAYLOAD), 'jello\n[add: {"a":[7,2.5]}]', render)
    assert edited == {"text": "jello", "call": {"name": "add", "args": {"a": [7, 2.5]}}, "id": "p-1"}


@pytest.mark.parametrize(
    "marker",
    [
        {"payload": {}, "spans": "not a list"},
        {"payload": {"text": ""}, "spans": [[["text"], 0, 99, "text"]]},
        {"payload": {"text": ""}, "spans": [[["text"], 3, 1, "text"]]},
        {"payload": {"text": ""}, "spans": [[["missing"], 0, 1, "text"]]},
        {"payload": {"text": ""}, "spans": [[["text", 0], 0, 1, "text"]]},
        {"payload": {"text": ""}, "spans": [[["text"], 0, 1, "yaml"]]},
        {"payload": {"text": ""}, "spans": [[["text"], 0, 1]]},
        {"payload": {"text": ""}, "spans": [[[], 0, 1, "text"]]},
        {"payload": ["x"], "spans": [[[True], 0, 1, "text"]]},
    ],
)
def test_a_damaged_marker_fills_nothing(marker: dict[str, Any]) -> None:
    assert fill(marker, "hello") is None


def test_parts_show_text_as_text_and_other_parts_by_their_type() -> None:
    items = [
        "a str part",
        {"type": "input_text", "text": "a text part", "annotations": [], "logprobs": None, "id": "p1"},
        {"type": "refusal", "refusal": "no"},
        {"type": "image", "url": "https://x/y.png", "detail": "auto"},
        7,
    ]
    t = Transcript()
    parts(t, ["content"], items, empty={"type": "input_text", "text": ""})
    assert t.content == (
        'a str part\na text part\n[refusal: no]\n[image: {"type":"image","url":"https://x/y.png","detail":"auto"}]'
        "\n[part: 7]"
    )
    assert t.marker({"content": items})["payload"]["content"] == [
        "",
        {"type": "input_text", "text": "", "annotations": [], "logprobs": None, "id": "p1"},
        {"type": "refusal", "refusal": ""},
        {"type": "input_text", "text": ""},
        {"type": "input_text", "text": ""},
    ]


def test_silent_values_say_nothing_and_numbers_do() -> None:
    quiet: list[Any] = [None, True, False, "", [], {}, {"a": None, "b": [{}]}, [False, ""]]
    loud: list[Any] = [0, 1.5, "x", [0], {"a": "b"}]
    assert all(silent(v) for v in quiet)
    assert not any(silent(v) for v in loud)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("user", "user"),
        ("human", "user"),
        ("Assistant", "assistant"),
        ("ai", "assistant"),
        ("model", "assistant"),
        ("chatbot", "assistant"),
        ("system", "system"),
        ("developer", "system"),
        ("tool", "tool"),
        ("function", "tool"),
        ("critic", None),
        (None, None),
    ],
)
def test_standard_roles(name: object, role: str | None) -> None:
    assert standard_role(name) == role
