"""LlamaIndex's BaseChatStore on a journal, with the real llama-index-core.

The main oracle is LlamaIndex's own ``SimpleChatStore``: the same operations run on both
stores must return equal results and leave equal messages and keys, except for the one
documented difference (``set_messages(key, [])`` unlists the key).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

# Skips without the framework; fails on CI, where the dev extra installs it (tests/conftest.py).
pytest.importorskip(
    "llama_index.core", reason="llama-index-core is installed by the dev and llama-index extras"
)

import msgspec
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, ChatSummaryMemoryBuffer
from llama_index.core.storage.chat_store import BaseChatStore, SimpleChatStore

from journal import Journal, NewMessage
from journal.core.events import MessageAdded, MessageRemoved, thaw
from journal.integrations.llama_index import JournalChatStore
from tests.conftest import JOIN_TIMEOUT

CTX = multiprocessing.get_context("spawn")
BARRIER_TIMEOUT = 60.0  # only turns a hang into a failure

KINDS: dict[str, ChatMessage] = {
    "text": ChatMessage(role="user", content="What is 2+2?"),
    "empty text": ChatMessage(role="assistant", content=""),
    "unicode": ChatMessage(role="user", content="ü 漢字 😀 \u2028 \x00 \ud7ff \"'\\\n"),
    "developer": ChatMessage(role="developer", content="be terse"),
    "no blocks": ChatMessage(role="system", content=None),
    "tool call kwargs": ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {"id": "call-1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}}
            ]
        },
    ),
    "tool result": ChatMessage(role="tool", content="4", additional_kwargs={"tool_call_id": "call-1"}),
    "nested kwargs": ChatMessage(
        role="user", content="x", additional_kwargs={"a": {"b": [1, 2.5, None, True, "ü"]}, "big": 2**63}
    ),
    "two text blocks": ChatMessage(role="assistant", blocks=[TextBlock(text="a"), TextBlock(text="b")]),
    "image url": ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="see"),
            ImageBlock(url="https://example.com/x.png", image_mimetype="image/png"),
        ],
    ),
    "image bytes": ChatMessage(
        role="user", blocks=[ImageBlock(image=b"\x89PNG\r\n\x1a\n\x00\xff", image_mimetype="image/png")]
    ),
    "audio": ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF\x00\x01WAVE", format="wav")]),
    "document": ChatMessage(
        role="user", blocks=[DocumentBlock(data=b"%PDF-1.4 hello", document_mimetype="application/pdf")]
    ),
    "thinking": ChatMessage(
        role="assistant",
        blocks=[
            ThinkingBlock(content="hmm", additional_information={"signature": "s"}),
            TextBlock(text="ok"),
        ],
    ),
    "tool call block": ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id="c2", tool_name="f", tool_kwargs={"x": [1, 2]})]
    ),
    "cache point": ChatMessage(
        role="user", blocks=[TextBlock(text="x"), CachePoint(cache_control=CacheControl(type="ephemeral"))]
    ),
}
TEXT_KINDS = {"text", "empty text", "unicode", "developer"}


def texts(n: int) -> list[ChatMessage]:
    """``n`` plain text messages, alternately user and assistant: "m0", "m1", ..."""
    return [ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"m{i}") for i in range(n)]


@pytest.fixture
def store(journal: Journal) -> JournalChatStore:
    return JournalChatStore(journal=journal)


@pytest.fixture
def pair(store: JournalChatStore) -> tuple[JournalChatStore, SimpleChatStore]:
    """The store under test and the oracle, both holding ``texts(4)`` under key "k"."""
    oracle = SimpleChatStore()
    for s in (store, oracle):
        s.set_messages("k", texts(4))
    return store, oracle


def tail(journal: Journal, key: str, n: int) -> list[Any]:
    """The last ``n`` events of the key's log."""
    return list(journal.events(key))[-n:]


# -- construction ----------------------------------------------------------------------------


def test_is_a_base_chat_store_built_the_pydantic_way(root: Path) -> None:
    by_root = JournalChatStore(root, actor="bot")  # a Path becomes the folder's str
    assert isinstance(by_root, BaseChatStore)
    assert JournalChatStore.class_name() == "JournalChatStore"
    assert not root.exists()  # constructing does no file work
    assert by_root.to_dict() == {"root": str(root), "actor": "bot", "class_name": "JournalChatStore"}
    by_root.add_message("k", ChatMessage(content="hi"))

    with Journal(root) as journal:
        shared = JournalChatStore(journal=journal)
        assert shared.journal is journal
        assert shared.root == str(root)
        assert shared.get_messages("k") == [ChatMessage(content="hi")]
    again = JournalChatStore.from_dict(by_root.to_dict())  # what a memory's to_dict holds
    assert again.actor == "bot"
    assert again.journal is by_root.journal  # the shared one
    assert again.get_messages("k") == [ChatMessage(content="hi")]
    assert [e.actor for e in again.journal.events("k")] == ["bot", "bot"]
    validated = JournalChatStore.model_validate({"root": str(root), "actor": "bot"})
    assert validated.journal is by_root.journal


def test_pickling_keeps_the_store_and_the_copy_reopens_the_folder(root: Path) -> None:
    store = JournalChatStore(root, actor="bot")
    store.add_message("k", ChatMessage(content="hi"))
    copy = pickle.loads(pickle.dumps(store))  # noqa: S301 (our own bytes, the behaviour under test)
    assert (copy.root, copy.actor) == (str(root), "bot")
    assert copy.get_messages("k") == store.get_messages("k") == [ChatMessage(content="hi")]
    store.add_message("k", ChatMessage(content="the original still works"))
    assert len(copy.get_messages("k")) == 2


def test_construction_without_a_journal_is_refused() -> None:
    with pytest.raises(TypeError, match="needs journal="):
        JournalChatStore()
    with pytest.raises(TypeError, match="needs journal="):
        JournalChatStore.model_validate({"actor": "bot"})


def test_root_and_journal_must_name_the_same_folder(tmp_path: Path) -> None:
    with Journal(tmp_path / "a") as journal:
        assert JournalChatStore(root=tmp_path / "a", journal=journal).journal is journal
        with pytest.raises(ValueError, match="is not the journal's folder"):
            JournalChatStore(root=tmp_path / "b", journal=journal)


# -- lossless round trip ---------------------------------------------------------------------


# What people read for each kind (journal show, journal log, journal export --format md).
CONTENTS = {
    "text": ("user", "What is 2+2?"),
    "empty text": ("assistant", ""),
    "unicode": ("user", KINDS["unicode"].content),
    "developer": ("system", "be terse"),
    "no blocks": ("system", ""),
    "tool call kwargs": (
        "assistant",
        '[tool_calls: [{"id":"call-1","type":"function",'
        '"function":{"name":"add","arguments":"{\\"a\\": 2}"}}]]',
    ),
    "tool result": ("tool", "4"),
    "nested kwargs": ("user", 'x\n[a: {"b":[1,2.5,null,true,"ü"]}]\n[big: 9223372036854775808]'),
    "two text blocks": ("assistant", "a\nb"),
    "image url": (
        "user",
        'see\n[image: {"block_type":"image","image":null,"path":null,"url":"https://example.com/x.png",'
        '"image_mimetype":"image/png","detail":null}]',
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_message_kind_round_trips_losslessly(root: Path, kind: str) -> None:
    message = KINDS[kind]
    store = JournalChatStore(root)
    store.set_messages("k", [message])
    store.add_message("k", message)
    assert store.get_messages("k") == [message, message]
    assert JournalChatStore(root).get_messages("k") == [message, message]  # from the files

    stored = store.journal.get("k").messages[0]
    assert stored.role in ("user", "assistant", "system", "tool")
    if kind in CONTENTS:
        assert (stored.role, stored.content) == CONTENTS[kind]
    # The rule for adapters: whatever the user or model said lives in the (erasable) content;
    # the metadata holds the message's form with all of that blanked.
    assert list(stored.metadata) == ["llama_index"]
    marker = thaw(stored.metadata["llama_index"])
    assert set(marker) == {"payload", "spans"}
    assert marker["payload"]["role"] == message.role.value


def test_every_kind_together_keeps_its_order(store: JournalChatStore) -> None:
    messages = list(KINDS.values())
    store.set_messages("k", messages)
    assert store.get_messages("k") == messages


def test_additional_kwargs_come_back_as_their_json_form(store: JournalChatStore) -> None:
    # Documented: like SimpleChatStore.persist, non-JSON values come back as their JSON form.
    message = ChatMessage(content="x", additional_kwargs={"raw": b"ab", "model": TextBlock(text="t")})
    store.add_message("k", message)
    (back,) = store.get_messages("k")
    assert back.additional_kwargs == {"raw": "YWI=", "model": {"block_type": "text", "text": "t"}}
    assert back.blocks == message.blocks


# The adapter's own message, or the journal's for the text form.
REFUSED = "cannot be stored as JSON|nothing was written"


@pytest.mark.parametrize(
    "bad",
    [
        ChatMessage(content="x", additional_kwargs={"obj": object()}),
        ChatMessage(content="x", additional_kwargs={"lone surrogate": "\ud800"}),
        ChatMessage(content="lone surrogate \ud800"),  # the text form: refused by the journal
    ],
)
def test_a_message_that_cannot_be_stored_writes_nothing(store: JournalChatStore, bad: ChatMessage) -> None:
    store.set_messages("k", texts(1))
    events = list(store.journal.events("k"))
    with pytest.raises(ValueError, match=REFUSED):
        store.add_message("k", bad)
    with pytest.raises(ValueError, match=REFUSED):
        store.add_message("k", bad, idx=0)
    with pytest.raises(ValueError, match=REFUSED):
        store.set_messages("k", [*texts(2), bad])
    assert list(store.journal.events("k")) == events
    writes: list[Callable[[], None]] = [
        lambda: store.add_message("new", bad),
        lambda: store.add_message("new", bad, idx=0),
        lambda: store.set_messages("new", [bad]),
    ]
    for write in writes:
        with pytest.raises(ValueError, match=REFUSED):
            write()
    assert not store.journal.exists("new")  # not even created


def test_get_messages_returns_new_objects(store: JournalChatStore) -> None:
    assert store.get_messages("unknown") == []
    store.set_messages("k", texts(2))
    got = store.get_messages("k")
    got.append(ChatMessage(content="not stored"))
    got[0].blocks.append(TextBlock(text="not stored either"))
    assert store.get_messages("k") == texts(2)


# -- each operation: result, SimpleChatStore's result, and the audit trail -------------------


def test_set_messages_is_one_cleared_event_and_the_messages(store: JournalChatStore) -> None:
    store.set_messages("k", texts(2))
    store.set_messages("k", texts(3)[1:])
    assert store.get_messages("k") == texts(3)[1:]
    events = list(store.journal.events("k"))
    assert [e.type for e in events] == ["created", *["cleared", "message_added", "message_added"] * 2]
    # The first conversation is still in the log; replay shows it as it was.
    assert [m.content for m in store.journal.replay("k", at=4).messages] == ["m0", "m1"]


@pytest.mark.parametrize("idx", [None, 0, 1, 2, 4, 9, -1, -4, -9])
def test_add_message_inserts_as_list_insert_does(
    pair: tuple[JournalChatStore, SimpleChatStore], idx: int | None
) -> None:
    store, oracle = pair
    before = [m.id for m in store.journal.get("k").messages]
    new = ChatMessage(role="assistant", content="new")
    store.add_message("k", new, idx=idx)
    oracle.add_message("k", new, idx=idx)
    assert store.get_messages("k") == oracle.get_messages("k")

    (event,) = tail(store.journal, "k", 1)
    assert isinstance(event, MessageAdded)
    assert event.content == "new"
    # Written as "before the message that was at idx", or as a plain append past the end.
    position = oracle.get_messages("k").index(new)
    assert event.before == (before[position] if position < len(before) else None)


@pytest.mark.parametrize("idx", [0, 1, 3, -1, -4, 4, 7, -5, -9])
def test_delete_message_removes_as_simple_chat_store_does(
    pair: tuple[JournalChatStore, SimpleChatStore], idx: int
) -> None:
    store, oracle = pair
    ids = [m.id for m in store.journal.get("k").messages]
    version = store.journal.get("k").version
    try:
        expected = oracle.delete_message("k", idx)
    except IndexError:
        with pytest.raises(IndexError, match="pop index out of range"):
            store.delete_message("k", idx)
        assert store.journal.get("k").version == version  # nothing written
        return
    assert store.delete_message("k", idx) == expected
    assert store.get_messages("k") == oracle.get_messages("k")
    if expected is None:
        assert store.journal.get("k").version == version
    else:
        (event,) = tail(store.journal, "k", 1)
        assert isinstance(event, MessageRemoved)
        assert event.message_id == ids[idx]


def test_delete_last_message_pops(pair: tuple[JournalChatStore, SimpleChatStore]) -> None:
    store, oracle = pair
    last_id = store.journal.get("k").messages[-1].id
    assert store.delete_last_message("k") == oracle.delete_last_message("k") == texts(4)[-1]
    assert store.get_messages("k") == oracle.get_messages("k") == texts(3)
    (event,) = tail(store.journal, "k", 1)
    assert isinstance(event, MessageRemoved)
    assert event.message_id == last_id


def test_delete_messages_empties_and_keeps_the_history(
    pair: tuple[JournalChatStore, SimpleChatStore],
) -> None:
    store, oracle = pair
    assert store.delete_messages("k") == oracle.delete_messages("k") == texts(4)
    assert store.get_messages("k") == []
    assert store.get_keys() == oracle.get_keys() == []
    assert tail(store.journal, "k", 1)[0].type == "cleared"
    assert [m.content for m in store.journal.replay("k", at=store.journal.get("k").version - 1).messages] == [
        "m0",
        "m1",
        "m2",
        "m3",
    ]
    # The key is gone for LlamaIndex: every operation on it behaves as on an unknown key.
    assert store.delete_messages("k") is oracle.delete_messages("k") is None
    assert store.delete_message("k", 0) is oracle.delete_message("k", 0) is None
    assert store.delete_last_message("k") is oracle.delete_last_message("k") is None
    # Writing lists it again.
    store.add_message("k", ChatMessage(content="again"), idx=3)
    assert store.get_keys() == ["k"]
    assert store.get_messages("k") == [ChatMessage(content="again")]


def test_unknown_keys_behave_as_in_simple_chat_store(store: JournalChatStore) -> None:
    oracle = SimpleChatStore()
    for s in (store, oracle):
        assert s.get_messages("nope") == []
        assert s.delete_messages("nope") is None
        assert s.delete_message("nope", 0) is None
        assert s.delete_message("nope", -5) is None
        assert s.delete_last_message("nope") is None
        assert s.get_keys() == []
    assert not store.journal.exists("nope")  # nothing was created by looking


def test_an_emptied_but_listed_key_behaves_as_an_empty_list(store: JournalChatStore) -> None:
    oracle = SimpleChatStore()
    for s in (store, oracle):
        s.set_messages("k", texts(1))
        assert s.delete_message("k", 0) == texts(1)[0]
        assert s.get_keys() == ["k"]
        assert s.delete_message("k", 0) is None
        with pytest.raises(IndexError):
            s.delete_message("k", -1)
        with pytest.raises(IndexError, match="pop from empty list"):
            s.delete_last_message("k")
        assert s.delete_messages("k") == []
        assert s.get_keys() == []


def test_set_messages_empty_unlists_the_key_unlike_simple_chat_store(store: JournalChatStore) -> None:
    # The documented difference: the journal records it exactly as delete_messages.
    oracle = SimpleChatStore()
    for s in (store, oracle):
        s.set_messages("k", texts(2))
        s.set_messages("k", [])
        assert s.get_messages("k") == []
    assert oracle.get_keys() == ["k"]
    assert store.get_keys() == []
    assert [e.type for e in store.journal.events("k")][-2:] == ["message_added", "cleared"]


def test_a_scripted_session_agrees_with_simple_chat_store(store: JournalChatStore) -> None:
    # Oracle: SimpleChatStore, step by step; results, messages and keys after every step.
    oracle = SimpleChatStore()
    m = texts(6)
    steps: list[Callable[[BaseChatStore], object]] = [
        lambda s: s.add_message("a", m[0]),
        lambda s: s.add_message("a", m[1]),
        lambda s: s.set_messages("b", m[2:5]),
        lambda s: s.add_message("b", m[5], idx=1),  # type: ignore[call-arg]
        lambda s: s.delete_message("b", -2),
        lambda s: s.delete_last_message("a"),
        lambda s: s.delete_messages("a"),
        lambda s: s.add_message("c", m[0], idx=-3),  # type: ignore[call-arg]
        lambda s: s.delete_message("b", 5),
        lambda s: s.delete_messages("b"),
        lambda s: s.set_messages("a", m),
    ]
    for step in steps:
        assert step(store) == step(oracle)
        assert sorted(store.get_keys()) == sorted(oracle.get_keys())
        for key in ("a", "b", "c"):
            assert store.get_messages(key) == oracle.get_messages(key)


def test_the_actor_is_recorded_on_every_event(journal: Journal) -> None:
    store = JournalChatStore(journal=journal, actor="agent-7")
    store.set_messages("k", texts(3))
    store.add_message("k", texts(1)[0], idx=1)
    store.delete_message("k", 0)
    store.delete_last_message("k")
    store.delete_messages("k")
    assert {e.actor for e in journal.events("k")} == {"agent-7"}


# -- sharing, isolation, redaction, foreign messages -----------------------------------------


def test_two_stores_on_one_root_share_data_and_keys_are_isolated(root: Path) -> None:
    with Journal(root) as one, Journal(root) as two:
        a, b = JournalChatStore(journal=one), JournalChatStore(journal=two)
        a.add_message("x", ChatMessage(content="for x"))
        b.add_message("y", ChatMessage(content="for y"))
        assert b.get_messages("x") == a.get_messages("x") == [ChatMessage(content="for x")]
        assert a.get_messages("y") == [ChatMessage(content="for y")]
        assert sorted(a.get_keys()) == sorted(b.get_keys()) == ["x", "y"]
        b.delete_messages("x")
        assert a.get_messages("x") == []
        assert a.get_messages("y") == [ChatMessage(content="for y")]
        assert a.get_keys() == ["y"]


def test_a_redacted_message_is_gone_from_every_file_and_reads_back_blank(store: JournalChatStore) -> None:
    # Letters no id, hash or timestamp can hold, so finding them in a file means the secret.
    needle = "QUOKKA-XYZW"
    secret = {
        "text": ChatMessage(role="user", content=f"I live at {needle}"),
        "kwargs": ChatMessage(role="assistant", content="ok", additional_kwargs={"tool_calls": [needle]}),
        "tool": ChatMessage(role="tool", content=needle, additional_kwargs={"tool_call_id": "call-1"}),
        "image": ChatMessage(role="user", blocks=[ImageBlock(url=f"https://example.com/{needle}.png")]),
        "thinking": ChatMessage(
            role="assistant", blocks=[ThinkingBlock(content=needle), TextBlock(text="ok")]
        ),
    }
    store.set_messages("k", [texts(1)[0], *secret.values()])
    root = Path(store.journal.root)
    assert on_disk(root, needle)  # the scan below looks where the content is
    for message in store.journal.get("k").messages[1:]:
        store.journal.redact_message("k", message.id, reason="user asked")
    assert store.journal.verify().ok
    assert on_disk(root, needle) == []
    # Each reads back as its form with nothing said: empty text blocks, the bookkeeping kept.
    empty = TextBlock(text="")
    assert store.get_messages("k") == [
        texts(1)[0],
        ChatMessage(role="user", content=""),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": []}),
        ChatMessage(role="tool", content="", additional_kwargs={"tool_call_id": "call-1"}),
        ChatMessage(role="user", blocks=[empty]),
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content=""), empty]),
    ]
    assert store.delete_last_message("k") == ChatMessage(
        role="assistant", blocks=[ThinkingBlock(content=""), empty]
    )


def on_disk(root: Path, needle: str) -> list[Path]:
    """The files under ``root`` holding ``needle``'s bytes."""
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_messages_other_code_wrote_read_as_text(store: JournalChatStore) -> None:
    store.journal.get_or_create("k")
    store.journal.add_message("k", "assistant", "plain")
    store.journal.add_message("k", "human", "a role LlamaIndex does not know")
    store.add_message("k", KINDS["thinking"])
    json_form = store.journal.get("k").messages[-1]
    store.journal.edit_message("k", json_form.id, "no longer JSON")  # metadata (marker) kept
    assert store.get_messages("k") == [
        ChatMessage(role="assistant", content="plain"),
        ChatMessage(role=MessageRole.USER, content="a role LlamaIndex does not know"),
        ChatMessage(role="assistant", content="no longer JSON"),
    ]


# -- concurrency: a write that lost a race decides again ------------------------------------


def interpose(store: JournalChatStore, method: str, rival: Callable[[], object]) -> list[int]:
    """Make the next call of ``store.journal.<method>`` run ``rival`` (another writer) first.

    Returns a list that receives one entry per call, to show the store retried.
    """
    real = getattr(store.journal, method)
    calls: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            rival()
        return real(*args, **kwargs)

    setattr(store.journal, method, wrapped)
    return calls


def test_delete_message_never_removes_a_message_a_rival_moved(root: Path, store: JournalChatStore) -> None:
    store.set_messages("k", texts(3))
    with Journal(root) as other:  # another instance: as another process would
        rival = JournalChatStore(journal=other)
        calls = interpose(
            store, "remove_message", lambda: rival.add_message("k", ChatMessage(content="X"), idx=0)
        )
        # Decided on the state after the rival's insert: index 1 now holds m0.
        assert store.delete_message("k", 1) == texts(1)[0]
    assert len(calls) == 2
    assert [m.content for m in store.get_messages("k")] == ["X", "m1", "m2"]


def test_add_message_at_idx_never_lands_beside_a_message_a_rival_moved(
    root: Path, store: JournalChatStore
) -> None:
    store.set_messages("k", texts(3))
    with Journal(root) as other:
        rival = JournalChatStore(journal=other)
        calls = interpose(store, "add_message", lambda: rival.delete_message("k", 0))
        store.add_message("k", ChatMessage(content="new"), idx=1)
    assert len(calls) == 2
    assert [m.content for m in store.get_messages("k")] == ["m1", "new", "m2"]


def test_delete_last_message_and_delete_messages_return_what_they_removed(
    root: Path, store: JournalChatStore
) -> None:
    store.set_messages("k", texts(2))
    with Journal(root) as other:
        rival = JournalChatStore(journal=other)
        calls = interpose(store, "pop_message", lambda: rival.add_message("k", ChatMessage(content="late")))
        assert store.delete_last_message("k") == ChatMessage(content="late")
        assert len(calls) == 2
        calls = interpose(store, "clear", lambda: rival.add_message("k", ChatMessage(content="later")))
        assert store.delete_messages("k") == [*texts(2), ChatMessage(content="later")]
        assert len(calls) == 2
    assert store.get_messages("k") == []


def writer(root: str, name: str, count: int, start: Barrier) -> None:
    """Append ``count`` messages to key "appends" and insert ``count`` at the front of "fronts"."""
    store = JournalChatStore(root)
    start.wait(BARRIER_TIMEOUT)
    for i in range(count):
        store.add_message("appends", ChatMessage(content=f"{name}:{i}"))
        store.add_message("fronts", ChatMessage(content=f"{name}:{i}"), idx=0)


def test_processes_writing_to_one_key_lose_nothing(root: Path, spawned: list[BaseProcess]) -> None:
    # Oracle: every message present exactly once; each writer's appends in its order, and its
    # front insertions in reverse order (each went in front of the one before).
    processes, count = 3, 15
    start = CTX.Barrier(processes)
    spawned.extend(
        CTX.Process(target=writer, args=(str(root), f"p{k}", count, start), daemon=True)
        for k in range(processes)
    )
    for process in spawned:
        process.start()
    for process in spawned:
        process.join(JOIN_TIMEOUT)
        assert process.exitcode == 0, f"{process.name} failed (exit code {process.exitcode}); see stderr"
    store = JournalChatStore(root)
    appended = [str(m.content) for m in store.get_messages("appends")]
    fronted = [str(m.content) for m in store.get_messages("fronts")]
    for k in range(processes):
        mine = [f"p{k}:{i}" for i in range(count)]
        assert [c for c in appended if c.startswith(f"p{k}:")] == mine
        assert [c for c in fronted if c.startswith(f"p{k}:")] == mine[::-1]
    assert len(appended) == len(fronted) == processes * count
    assert sorted(store.get_keys()) == ["appends", "fronts"]


# -- async ---------------------------------------------------------------------------------


def test_async_variants_agree_with_the_sync_ones(store: JournalChatStore) -> None:
    async def main() -> None:
        await store.aset_messages("k", texts(3))
        await store.async_add_message("k", ChatMessage(content="front"), idx=0)
        await store.async_add_message("k", ChatMessage(content="end"))
        assert [m.content for m in await store.aget_messages("k")] == ["front", "m0", "m1", "m2", "end"]
        assert await store.adelete_message("k", 1) == texts(1)[0]
        assert await store.adelete_message("k", 10) is None
        assert await store.adelete_last_message("k") == ChatMessage(content="end")
        assert await store.aget_keys() == ["k"]
        assert await store.adelete_messages("k") == [ChatMessage(content="front"), *texts(3)[1:]]
        assert await store.adelete_messages("k") is None
        assert await store.adelete_last_message("k") is None
        assert await store.aget_keys() == []

    asyncio.run(main())


def test_async_variants_run_off_the_event_loop(store: JournalChatStore) -> None:
    threads: set[int] = set()
    for name in ("get", "sessions", "add_message", "add_messages", "remove_message", "pop_message", "clear"):
        real = getattr(store.journal, name)

        def spy(*args: Any, _real: Callable[..., Any] = real, **kwargs: Any) -> Any:
            threads.add(threading.get_ident())
            return _real(*args, **kwargs)

        setattr(store.journal, name, spy)

    async def main() -> int:
        await store.aset_messages("k", texts(3))
        await store.async_add_message("k", ChatMessage(content="x"), idx=1)
        await store.aget_messages("k")
        await store.adelete_message("k", 0)
        await store.adelete_last_message("k")
        await store.aget_keys()
        await store.adelete_messages("k")
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads
    assert loop_thread not in threads


def test_a_cancelled_write_returns_only_once_it_landed(store: JournalChatStore) -> None:
    started, release = threading.Event(), threading.Event()
    real = store.journal.add_messages

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(JOIN_TIMEOUT)
        return real(*args, **kwargs)

    store.journal.add_messages = slow  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.ensure_future(store.aset_messages("k", texts(2)))
        try:
            await asyncio.to_thread(started.wait, JOIN_TIMEOUT)
            task.cancel()
            for _ in range(5):
                await asyncio.sleep(0)
            assert not task.done()  # still waiting for the write in its thread
        finally:
            # Before asyncio.run waits for the worker thread, even when the assertion failed.
            release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store.get_messages("k") == texts(2)  # landed before the cancellation surfaced

    asyncio.run(main())


# -- a real LlamaIndex memory ----------------------------------------------------------------


def words(text: str) -> list[str]:
    """A tokenizer that needs no download (the default one is tiktoken's)."""
    return text.split()


def test_chat_memory_buffer_keeps_its_history_in_the_journal(root: Path) -> None:
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=JournalChatStore(root), chat_store_key="conv-1", token_limit=5, tokenizer_fn=words
    )
    memory.put(ChatMessage(role="user", content="one two three"))
    memory.put(ChatMessage(role="assistant", content="four five"))
    memory.put(ChatMessage(role="user", content="six"))
    assert [m.content for m in memory.get_all()] == ["one two three", "four five", "six"]
    # Over the token limit the buffer trims from the front (and never starts on the assistant).
    assert [m.content for m in memory.get()] == ["six"]

    # Another process would see the same: a new memory, a new store, the same folder.
    later = ChatMemoryBuffer.from_defaults(
        chat_store=JournalChatStore(root), chat_store_key="conv-1", tokenizer_fn=words
    )
    assert later.get_all() == memory.get_all()
    assert later.to_dict()["chat_store"] == {
        "root": str(root),
        "actor": None,
        "class_name": "JournalChatStore",
    }
    later.set([ChatMessage(role="system", content="fresh")])
    assert [m.content for m in memory.get_all()] == ["fresh"]
    memory.reset()
    assert later.get_all() == []
    with Journal(root) as journal:
        assert [e.type for e in journal.events("conv-1")] == [
            "created",
            *["message_added"] * 3,
            "cleared",
            "message_added",
            "cleared",
        ]


def test_chat_memory_buffer_async(root: Path) -> None:
    store = JournalChatStore(root)
    memory = ChatMemoryBuffer.from_defaults(
        chat_history=texts(2), chat_store=store, chat_store_key="c", tokenizer_fn=words
    )

    async def main() -> list[ChatMessage]:
        await memory.aput(ChatMessage(content="third"))
        await memory.aset([*await memory.aget_all(), ChatMessage(content="fourth")])
        await memory.areset()
        await memory.aput(ChatMessage(content="after reset"))
        return await memory.aget()

    assert asyncio.run(main()) == [ChatMessage(content="after reset")]
    assert len([e for e in store.journal.events("c") if e.type == "message_added"]) == 2 + 1 + 4 + 1


def test_chat_summary_memory_buffer_summarises_into_the_store(root: Path) -> None:
    # MockLLM answers with max_tokens copies of "text": the summary is recognisable.
    memory = ChatSummaryMemoryBuffer.from_defaults(
        llm=MockLLM(max_tokens=3),
        chat_store=JournalChatStore(root),
        chat_store_key="s",
        token_limit=6,
        tokenizer_fn=words,
    )
    for i in range(4):
        memory.put(ChatMessage(content=f"message number {i}"))
    summarised = memory.get()
    assert [(m.role, m.content) for m in summarised] == [
        (MessageRole.SYSTEM, "text text text"),
        (MessageRole.USER, "message number 2"),
        (MessageRole.USER, "message number 3"),
    ]
    assert JournalChatStore(root).get_messages("s") == summarised  # written back through the store


# -- imports -------------------------------------------------------------------------------

OFFLINE_SCRIPT = """
import socket, sys

def refuse(*args, **kwargs):
    raise AssertionError(f"network use: {args!r}")

socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
socket.getaddrinfo = refuse

import journal, journal.aio, journal.compat
assert not [m for m in sys.modules if m.startswith("llama_index")], "the core imports llama_index"

from journal.integrations.llama_index import JournalChatStore
from llama_index.core.llms import ChatMessage
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, ChatSummaryMemoryBuffer

memory = ChatMemoryBuffer.from_defaults(
    chat_store=JournalChatStore(sys.argv[1]), chat_store_key="k", tokenizer_fn=str.split
)
memory.put(ChatMessage(content="hello offline"))
assert [m.content for m in memory.get()] == ["hello offline"]
print("ok")
"""


def test_importing_and_using_it_stays_offline(tmp_path: Path) -> None:
    # llama_index.core can fetch NLTK data and tiktoken encodings: neither may happen here.
    nltk, cache = tmp_path / "nltk", tmp_path / "cache"
    nltk.mkdir()
    env = {
        **os.environ,
        "NLTK_DATA": str(nltk),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(cache),
        "TIKTOKEN_CACHE_DIR": str(cache / "tiktoken"),
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(tmp_path / "journal")],
        env=env,
        capture_output=True,
        text=True,
        timeout=JOIN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert list(nltk.iterdir()) == []
    assert not cache.exists()


# -- sessions stored by earlier versions -----------------------------------------------------


def older_form(message: ChatMessage) -> NewMessage:
    """The journal message the previous version of the store wrote for ``message``: plain text
    as its text, anything else as LlamaIndex's JSON form in the content."""
    role = message.role.value
    if isinstance(message.content, str) and message == ChatMessage(
        role=message.role, content=message.content
    ):
        return NewMessage(role=role, content=message.content, metadata={"llama_index": {"form": "text"}})
    content = msgspec.json.encode(message.model_dump(mode="json")).decode()
    return NewMessage(role=role, content=content, metadata={"llama_index": {"form": "json"}})


def test_sessions_stored_by_earlier_versions_read_back_exactly(store: JournalChatStore) -> None:
    messages = list(KINDS.values())
    store.journal.create("k")
    store.journal.add_messages("k", [older_form(m) for m in messages])
    store.add_message("k", ChatMessage(content="new"))  # the new form after the old one
    assert store.get_messages("k") == [*messages, ChatMessage(content="new")]
    # A redacted message of the old form reads back as it did: an empty message of its role.
    tool_call = store.journal.get("k").messages[5]
    store.journal.redact_message("k", tool_call.id, reason="user asked")
    assert store.get_messages("k")[5] == ChatMessage(role="assistant", content="")
