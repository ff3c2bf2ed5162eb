"""The OpenAI Agents SDK's Session protocol on a journal, with the real openai-agents package.

Nothing here reaches the network: the agent runs use the SDK's own ``ScriptedModel`` and a
run config with tracing disabled.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import threading
from datetime import datetime, timezone
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip("agents", reason="openai-agents is installed by the dev and agents extras")

from agents import Agent, RunConfig, Runner, function_tool
from agents.memory import Session, SessionABC, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call

from journal import InvalidValueError, Journal, JournalClosedError, Message, MessageAdded, NewMessage
from journal.aio import AsyncJournal
from journal.core.events import thaw
from journal.integrations.openai_agents import JournalSession
from tests.conftest import JOIN_TIMEOUT
from tests.helpers_proc import BARRIER_TIMEOUT

CTX = multiprocessing.get_context("spawn")
# One item of every shape the SDK stores, with values that a careless encoding would change:
# nested lists and objects, line and paragraph separators, astral characters, ints beyond 64
# bits, floats that print long, null, booleans. Role: the role the journal message gets.
EVERY_KIND: list[tuple[str, Any]] = [
    ("user", {"role": "user", "content": "What is 2+2? \u2028 ü \U0001f600"}),
    ("system", {"role": "system", "content": ""}),
    (
        "user",
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "and this picture?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "auto"},
            ],
        },
    ),
    ("system", {"type": "message", "role": "developer", "content": "a developer message"}),
    (
        "assistant",
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "add the numbers"}],
            "encrypted_content": "gAAAA\u2029==",
        },
    ),
    (
        "assistant",
        {
            "arguments": '{"a":2,"b":{"nested":[1,2,{"deep":"ü"}]}}',
            "call_id": "call-1",
            "name": "add",
            "type": "function_call",
            "id": "fc_1",
        },
    ),
    ("tool", {"call_id": "call-1", "output": "4", "type": "function_call_output"}),
    (
        "tool",
        {
            "call_id": "call-2",
            "output": [{"type": "input_text", "text": "structured output"}],
            "type": "function_call_output",
        },
    ),
    (
        "assistant",
        {
            "id": "msg_1",
            "content": [{"annotations": [], "text": "It is 4.", "type": "output_text", "logprobs": []}],
            "role": "assistant",
            "status": "completed",
            "type": "message",
        },
    ),
    (
        "assistant",
        {
            "type": "x_extension",
            "big": 2**80,
            "small": -(2**70),
            "float": 0.1 + 0.2,
            "values": [None, True, False, 1e300, [], {}],
        },
    ),
    ("assistant", {"call_id": "no role and no type", "output": "still stored"}),
]
# What people read for each of them (journal show, journal log, journal export --format md).
CONTENTS = [
    "What is 2+2? \u2028 ü \U0001f600",
    "",
    'and this picture?\n[input_image: {"type":"input_image",'
    '"image_url":"data:image/png;base64,iVBORw0K","detail":"auto"}]',
    "a developer message",
    "add the numbers\n[encrypted_content: gAAAA\u2029==]",
    '[tool call: add({"a":2,"b":{"nested":[1,2,{"deep":"ü"}]}})]',
    "4",
    "structured output",
    "It is 4.",
    "[big: 1208925819614629174706176]\n[small: -1180591620717411303424]\n[float: 0.30000000000000004]\n"
    "[values: [null,true,false,1e300,[],{}]]",
    "still stored",
]


def items_of(*texts: str) -> list[Any]:
    """Plain user text items, one per text."""
    return [{"role": "user", "content": t} for t in texts]


def test_conforms_to_the_sdk_session_protocol(root: Path) -> None:
    session = JournalSession("s", root)
    # The annotation makes mypy check the structural match; isinstance checks it at run time.
    typed: Session = session
    assert isinstance(typed, Session)
    assert not isinstance(session, SessionABC)  # the SDK asks third parties for the protocol
    assert session.session_id == "s"
    assert session.session_settings == SessionSettings()
    for name in ("get_items", "add_items", "pop_item", "clear_session"):
        ours, theirs = getattr(JournalSession, name), getattr(Session, name)
        assert inspect.iscoroutinefunction(ours), name
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
    assert inspect.signature(JournalSession.get_items).parameters["limit"].default is None
    session.close()


def test_every_kind_of_item_round_trips_losslessly(root: Path) -> None:
    items = [item for _, item in EVERY_KIND]

    async def main() -> list[Any]:
        session = JournalSession("s", root)
        assert await session.get_items() == []
        await session.add_items(items)
        first = await session.get_items()
        session.close()
        return first

    assert asyncio.run(main()) == items
    with Journal(root) as journal:  # another instance, from the files
        assert asyncio.run(JournalSession("s", journal).get_items()) == items
        stored = journal.get("s").messages
    assert [(m.role, m.content) for m in stored] == list(
        zip([role for role, _ in EVERY_KIND], CONTENTS, strict=True)
    )
    for message in stored:
        assert list(message.metadata) == ["openai_agents"]
        assert set(message.metadata["openai_agents"]) == {"payload", "spans"}
    # The payload keeps the item's shape and bookkeeping, blanked of everything said.
    assert thaw(stored[5].metadata["openai_agents"]["payload"]) == {
        "arguments": "{}",
        "call_id": "call-1",
        "name": "add",
        "type": "function_call",
        "id": "fc_1",
    }


def test_get_items_returns_new_dicts(root: Path) -> None:
    async def main() -> None:
        session = JournalSession("s", root)
        stored: list[Any] = [{"type": "function_call_output", "call_id": "c", "output": ["x"]}]
        await session.add_items(stored)
        got: list[Any] = await session.get_items()
        got[0]["output"].append("changed by the caller")
        assert (
            await session.get_items()
            == stored
            == [{"type": "function_call_output", "call_id": "c", "output": ["x"]}]
        )
        session.close()

    asyncio.run(main())


def test_limit_semantics(root: Path) -> None:
    async def main() -> None:
        plain = JournalSession("s", root)
        limited = JournalSession("s", root, SessionSettings(limit=2))
        assert await limited.get_items() == []
        await plain.add_items(items_of("a", "b", "c", "d"))
        assert await plain.get_items() == items_of("a", "b", "c", "d")
        assert await plain.get_items(3) == items_of("b", "c", "d")  # the latest, oldest first
        assert await plain.get_items(limit=10) == items_of("a", "b", "c", "d")
        assert await plain.get_items(0) == []
        assert await plain.get_items(-1) == []
        assert await limited.get_items() == items_of("c", "d")  # None falls back to the settings
        assert await limited.get_items(3) == items_of("b", "c", "d")  # an explicit limit wins
        limited.session_settings = None
        assert await limited.get_items() == items_of("a", "b", "c", "d")
        plain.close()
        limited.close()

    asyncio.run(main())


def test_pop_item_removes_the_latest_and_history_keeps_it(root: Path) -> None:
    first, second = EVERY_KIND[0][1], EVERY_KIND[5][1]

    async def main() -> None:
        session = JournalSession("s", root)
        assert await session.pop_item() is None  # no session yet
        assert not session.journal.exists("s")
        await session.add_items([first, second])
        assert await session.pop_item() == second
        assert await session.get_items() == [first]
        assert await session.pop_item() == first
        assert await session.pop_item() is None  # the session exists and is empty
        assert await session.get_items() == []
        session.close()

    asyncio.run(main())
    with Journal(root) as journal:
        added = [e for e in journal.events("s") if isinstance(e, MessageAdded)]
        assert [e.role for e in added] == ["user", "assistant"]
        assert len(journal.get("s").messages) == 0


def test_clear_session_empties_the_conversation_and_keeps_the_history(root: Path) -> None:
    async def main() -> list[Any]:
        session = JournalSession("s", root)
        await session.clear_session()  # nothing to clear: no session is created
        assert not session.journal.exists("s")
        await session.add_items(items_of("secret plan", "reply"))
        await session.clear_session()
        assert await session.get_items() == []
        await session.add_items(items_of("again"))
        got = await session.get_items()
        session.close()
        return got

    assert asyncio.run(main()) == items_of("again")
    with Journal(root) as journal:
        events = list(journal.events("s"))
        assert [e.type for e in events] == [
            "created",
            "message_added",
            "message_added",
            "cleared",
            "message_added",
        ]
        assert [e.content for e in events if isinstance(e, MessageAdded)] == ["secret plan", "reply", "again"]


# Values msgspec could write, but only as a stand-in that reads back different (or not at all).
NOT_JSON: list[Any] = [
    object(),
    {1, 2},
    (1, 2),
    b"bytes",
    float("nan"),
    float("inf"),
    datetime(2026, 1, 1, tzinfo=timezone.utc),
    {1: "int key"},
    "lone \ud800 surrogate",
]


@pytest.mark.parametrize("value", NOT_JSON, ids=repr)
def test_add_items_refuses_items_that_would_not_read_back_equal(root: Path, value: Any) -> None:
    async def main() -> None:
        session = JournalSession("s", root)
        bad: list[Any] = [*items_of("fine"), {"type": "x", "value": [value]}]
        with pytest.raises(InvalidValueError) as caught:
            await session.add_items(bad)
        assert caught.value.field == "items[1]"
        assert not session.journal.exists("s")  # refused before any file work
        await session.add_items(items_of("kept"))
        bad = [*items_of("fine"), {"role": "user", "content": [{"text": value}]}]
        with pytest.raises(InvalidValueError):
            await session.add_items(bad)
        assert await session.get_items() == items_of("kept")
        session.close()

    asyncio.run(main())


def test_add_items_with_nothing_writes_nothing(root: Path) -> None:
    async def main() -> None:
        session = JournalSession("s", root)
        await session.add_items([])
        assert not session.journal.exists("s")
        with pytest.raises(InvalidValueError):
            await session.add_items(cast(Any, ["not a dict"]))
        session.close()

    asyncio.run(main())


class CountingJournal(Journal):
    """A Journal that records each message write that succeeded, with how many it added."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync="never")
        self.writes: list[int] = []  # list.append is atomic, so threads need no lock here

    def add_message(self, *args: Any, **kwargs: Any) -> Message:
        message = super().add_message(*args, **kwargs)
        self.writes.append(1)
        return message

    def add_messages(self, *args: Any, **kwargs: Any) -> tuple[Message, ...]:
        messages = super().add_messages(*args, **kwargs)
        self.writes.append(len(messages))
        return messages


def test_add_items_is_one_write_and_batches_never_interleave(root: Path) -> None:
    writers, batches, size = 4, 10, 3
    journal = CountingJournal(root)
    with journal:

        async def write(w: int) -> None:
            session = JournalSession("s", journal)
            for b in range(batches):
                await session.add_items(items_of(*(f"{w}:{b}:{i}" for i in range(size))))

        async def main() -> None:
            await asyncio.gather(*(write(w) for w in range(writers)))

        asyncio.run(main())
        assert journal.writes == [size] * (writers * batches)
        contents = [m.content for m in journal.get("s").messages]
    assert sorted(contents) == sorted(
        f"{w}:{b}:{i}" for w in range(writers) for b in range(batches) for i in range(size)
    )
    # Batches run concurrently in worker threads; each must still sit in one piece.
    for start in range(0, len(contents), size):
        batch = contents[start : start + size]
        prefix = batch[0].rsplit(":", 1)[0]
        assert batch == [f"{prefix}:{i}" for i in range(size)]


def test_redacted_items_read_back_blank_and_are_gone_from_disk(root: Path) -> None:
    # Letters no id, hash or timestamp can hold, so finding them in a file means the secret.
    needle = "QUOKKA-XYZW"
    call_args = f'{{"address":"{needle}"}}'
    items: list[Any] = [
        {"role": "user", "content": f"I live at {needle}"},
        {"type": "function_call", "call_id": "c1", "name": "pay", "arguments": call_args},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": needle}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": needle}]},
        {"role": "assistant", "content": "paid"},
    ]

    def on_disk() -> list[Path]:
        return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]

    async def main() -> None:
        session = JournalSession("s", root)
        await session.add_items(items)
        assert on_disk()  # the scan below looks where the content is
        for message in list(session.journal.get("s").messages)[:4]:
            session.journal.redact_message("s", message.id, reason="user asked", actor="dpo")
        # Each item keeps its shape (a call its id and tool, blanked arguments the API parses).
        blanked = [
            {"role": "user", "content": ""},
            {"type": "function_call", "call_id": "c1", "name": "pay", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": ""}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": ""}]},
        ]
        assert await session.get_items() == [*blanked, items[4]]
        assert await session.get_items(2) == [blanked[3], items[4]]
        assert await session.pop_item() == items[4]
        assert await session.pop_item() == blanked[3]
        session.close()

    asyncio.run(main())
    assert on_disk() == []
    with Journal(root) as journal:
        assert journal.verify().ok


def test_messages_written_by_other_code_read_back_as_text(root: Path) -> None:
    structured: Any = {"role": "user", "content": [{"type": "input_text", "text": "old"}]}
    with Journal(root) as journal:
        journal.get_or_create("s")
        journal.add_message("s", "user", "from the web form")  # no marker
        session = JournalSession("s", journal)
        asyncio.run(session.add_items([structured]))
        # An edit replaces the stored JSON with plain text; the item becomes that text.
        journal.edit_message("s", journal.get("s").messages[1].id, "new text")
        assert asyncio.run(session.get_items()) == items_of("from the web form", "new text")


def test_sessions_are_isolated_by_id_and_shared_by_id(root: Path) -> None:
    async def main() -> None:
        a, b = JournalSession("a", root), JournalSession("b", root)
        a2 = JournalSession("a", root)  # a second Journal on the same root
        with Journal(root) as journal:
            a3 = JournalSession("a", AsyncJournal(journal))
            await a.add_items(items_of("for a"))
            await b.add_items(items_of("for b"))
            assert await b.get_items() == items_of("for b")
            assert await a2.get_items() == items_of("for a")
            await a3.add_items(items_of("from a3"))
            assert await a.get_items() == items_of("for a", "from a3")
            assert await a2.pop_item() == items_of("from a3")[0]
            assert await a.get_items() == items_of("for a")
            await b.clear_session()
            assert await a3.get_items() == items_of("for a")
        for s in (a, b, a2):
            s.close()

    asyncio.run(main())


def test_close_ends_a_session_given_a_folder_and_closes_no_journal(root: Path) -> None:
    owned = JournalSession("s", root)
    other = JournalSession("s", root)  # the same shared Journal
    owned.close()
    with pytest.raises(JournalClosedError):
        asyncio.run(owned.get_items())
    asyncio.run(other.add_items(items_of("shared journal still open")))
    assert asyncio.run(other.get_items()) == items_of("shared journal still open")
    other.close()
    with Journal(root) as journal:  # given a Journal, close() changes nothing
        shared = JournalSession("t", journal)
        shared.close()
        asyncio.run(shared.add_items(items_of("still open")))
        assert asyncio.run(JournalSession("t", AsyncJournal(journal)).get_items()) == items_of("still open")


class GatedJournal(Journal):
    """A Journal whose ``add_messages`` waits for the test's go-ahead (to cancel mid-write)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync="never")
        self.entered = threading.Event()
        self.release = threading.Event()

    def add_messages(self, *args: Any, **kwargs: Any) -> tuple[Message, ...]:
        self.entered.set()
        assert self.release.wait(JOIN_TIMEOUT)
        return super().add_messages(*args, **kwargs)


def test_a_cancelled_add_items_returns_only_after_its_write(root: Path) -> None:
    journal = GatedJournal(root)
    with journal:
        session = JournalSession("s", journal)

        async def main() -> None:
            task = asyncio.ensure_future(session.add_items(items_of("in flight")))
            assert await asyncio.to_thread(journal.entered.wait, JOIN_TIMEOUT)
            task.cancel()
            for _ in range(5):
                await asyncio.sleep(0)
            # The write is still running in its thread, so the caller must not see an outcome yet.
            assert not task.done()
            journal.release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await session.get_items() == items_of("in flight")

        asyncio.run(main())


def agents_writer(root: str, session_id: str, writer: str, batches: int, start: Barrier) -> None:
    """Child process: write ``batches`` two-item batches through its own JournalSession."""

    async def write() -> None:
        session = JournalSession(session_id, root)
        try:
            for b in range(batches):
                await session.add_items(
                    [
                        {"role": "user", "content": f"{writer}:{b}:q"},
                        {
                            "type": "function_call_output",
                            "call_id": f"{writer}-{b}",
                            "output": f"{writer}:{b}:a",
                        },
                    ]
                )
        finally:
            session.close()

    start.wait(BARRIER_TIMEOUT)
    asyncio.run(write())


def test_processes_writing_one_session_lose_nothing(root: Path, spawned: list[BaseProcess]) -> None:
    writers, batches = 3, 15
    start = CTX.Barrier(writers)
    for w in range(writers):
        child = CTX.Process(target=agents_writer, args=(str(root), "shared", f"w{w}", batches, start))
        spawned.append(child)
        child.start()
    for process in spawned:
        process.join(JOIN_TIMEOUT)
        assert process.exitcode == 0

    session = JournalSession("shared", root)
    items: list[Any] = asyncio.run(session.get_items())
    session.close()
    assert len(items) == writers * batches * 2
    # Each batch is a question followed by its answer, and each writer's batches keep their order.
    for question, answer in zip(items[::2], items[1::2], strict=True):
        writer, b, _ = question["content"].split(":")
        assert answer == {
            "type": "function_call_output",
            "call_id": f"{writer}-{b}",
            "output": f"{writer}:{b}:a",
        }
    for w in range(writers):
        mine = [q["content"] for q in items[::2] if q["content"].startswith(f"w{w}:")]
        assert mine == [f"w{w}:{b}:q" for b in range(batches)]


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_runner_keeps_the_conversation_in_the_journal(root: Path) -> None:
    config = RunConfig(tracing_disabled=True)

    async def turn(question: str, steps: list[Any]) -> tuple[str, ScriptedModel, list[Any]]:
        # A fresh Journal, session and model each turn: all memory must come from the files.
        model = ScriptedModel(steps)
        agent = Agent(name="calc", instructions="Be terse.", model=model, tools=[add])
        session = JournalSession("conv-1", root)
        try:
            before = await session.get_items()
            result = await Runner.run(agent, question, session=session, run_config=config)
        finally:
            session.close()
        model.assert_complete()
        return str(result.final_output), model, before

    first_steps = [[function_call("add", {"a": 2, "b": 2}, call_id="call-1")], [assistant_message("4")]]
    answer, _, before = asyncio.run(turn("What is 2+2?", first_steps))
    assert (answer, before) == ("4", [])

    answer, model, first_turn = asyncio.run(turn("Times 3?", [[assistant_message("12")]]))
    assert answer == "12"
    assert [i.get("type") for i in first_turn] == [None, "function_call", "function_call_output", "message"]
    assert first_turn[2] == {"call_id": "call-1", "output": "4", "type": "function_call_output"}
    # The second turn's model saw the first turn, as read back from the journal, then the question.
    (call,) = model.calls
    assert call.input == [*first_turn, {"role": "user", "content": "Times 3?"}]

    with Journal(root) as journal:
        messages = journal.get("conv-1").messages
        assert [(m.role, m.content) for m in messages] == [
            ("user", "What is 2+2?"),
            ("assistant", '[tool call: add({"a":2,"b":2})]'),
            ("tool", "4"),
            ("assistant", "4"),
            ("user", "Times 3?"),
            ("assistant", "12"),
        ]


# -- sessions stored by earlier versions -----------------------------------------------------


def older_form(item: Any) -> NewMessage:
    """The journal message the previous version of the adapter stored for ``item``: a plain
    text message as its text, anything else as its JSON, with the item's role or type."""
    if set(item) == {"role", "content"} and isinstance(item["content"], str):
        return NewMessage(
            role=item["role"], content=item["content"], metadata={"openai_agents": {"form": "text"}}
        )
    kind = item.get("role") or item.get("type") or "item"
    return NewMessage(
        role=kind, content=msgspec.json.encode(item).decode(), metadata={"openai_agents": {"form": "json"}}
    )


def test_sessions_stored_by_earlier_versions_read_back_exactly(root: Path) -> None:
    items = [item for _, item in EVERY_KIND]
    with Journal(root) as journal:
        journal.create("s")
        journal.add_messages("s", [older_form(item) for item in items])
        journal.add_message("s", "assistant", "by other code")  # no marker: a text item

        async def main() -> list[Any]:
            session = JournalSession("s", journal)
            await session.add_items(items_of("new"))  # the new form after the old one
            return await session.get_items()

        assert asyncio.run(main()) == [
            *items,
            {"role": "assistant", "content": "by other code"},
            *items_of("new"),
        ]
        # A redacted item of the old form reads back as it did: its role and no content.
        journal.redact_message("s", journal.get("s").messages[5].id, reason="user asked")
        assert asyncio.run(JournalSession("s", journal).get_items())[5] == {
            "role": "function_call",
            "content": "",
        }
