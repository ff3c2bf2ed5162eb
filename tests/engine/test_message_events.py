"""Inserting, batching, removing, editing and redacting messages, on real files.

Oracles: the docstrings of the Journal methods (return values, errors and their attributes,
what the log keeps), the bytes of the log (which format version each line carries, and that a
refused call wrote nothing), a fresh Journal and ``replay`` (the cache agrees with the files),
and for redaction the raw bytes of every file under the root, gzip archives and leftovers
included: once a message is redacted, no file may hold any version of its content, while
every other message's content stays where it was.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import multiprocessing
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from journal import (
    Anchor,
    Cleared,
    ConflictError,
    CorruptLogError,
    Created,
    InvalidValueError,
    Journal,
    Message,
    MessageAdded,
    Session,
    SessionNotFoundError,
    VerifyReport,
)
from journal.backends.files.fsio import Folder
from journal.backends.files.layout import Layout
from journal.core.events import MessageEdited, MessageRedacted, MessageRemoved
from journal.engine.cache import View
from journal.engine.commit import Committer
from journal.engine.journal import NewMessage
from journal.errors import MessageNotFoundError
from tests.backends.files.test_compaction import TINY
from tests.backends.files.test_verify import lines_of, verify
from tests.conftest import JOIN_TIMEOUT
from tests.engine.test_journal import log_bytes
from tests.helpers_compaction import leftovers, log_path, segment_paths, session_dir, snapshot_names
from tests.helpers_proc import BARRIER_TIMEOUT, content_for, parse_content
from tests.helpers_verify import clean_but_the_base

SID = "s"
CTX = multiprocessing.get_context("spawn")

Write = Callable[[Journal, str, str, dict[str, Any]], object]


def contents(session: Session) -> list[str]:
    return [m.content for m in session.messages]


def start(journal: Journal, *texts: str) -> list[str]:
    """Create the session and add one message per text; returns their ids."""
    journal.create(SID)
    return [journal.add_message(SID, "user", text).id for text in texts]


def parsed_lines(root: Path, session_id: str = SID) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines_of(log_path(root, session_id))]


def problems(report: VerifyReport) -> list[tuple[str, str, int]]:
    return [(p.kind, p.file, p.line) for p in report.problems]


def holders(root: Path, needle: str) -> set[str]:
    """Every file under ``root`` whose bytes hold ``needle``: raw, and gunzipped when gzip.

    Gzip data is searched decompressed too (a compressed archive never shows its text), and a
    torn gzip leftover is searched as far as it decompresses.
    """
    wanted = needle.encode()
    found = set()
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        texts = [data]
        if data[:2] == b"\x1f\x8b":
            # A file that only looks like gzip was searched raw above.
            with contextlib.suppress(zlib.error):
                texts.append(zlib.decompressobj(wbits=31).decompress(data))
        if any(wanted in text for text in texts):
            found.add(str(path.relative_to(root)))
    return found


def history_holders(root: Path, needle: str) -> set[str]:
    """``holders`` in the files that are history, not caches: logs, archive, base, quarantine.

    Snapshots and ``.tmp`` leftovers are caches that a redaction deletes whole, other
    messages included; history files must keep every other message's content.
    """
    return {
        name
        for name in holders(root, needle)
        if not name.endswith(".snap") or name.endswith("base.snap")
        if not Path(name).name.startswith(".")
    }


# -- add_message(before=...) -----------------------------------------------------------------


def test_add_message_before_inserts_at_the_start_and_in_the_middle(root: Path, journal: Journal) -> None:
    a, b, c = start(journal, "a", "b", "c")
    first = journal.add_message(SID, "system", "first", before=a, metadata={"k": 1}, actor="ops")
    assert (first.seq, first.role, first.content, first.actor) == (5, "system", "first", "ops")
    assert dict(first.metadata) == {"k": 1}
    middle = journal.add_message(SID, "user", "middle", before=c)
    assert middle.seq == 6
    state = journal.get(SID)
    assert contents(state) == ["first", "a", "b", "middle", "c"]
    assert [m.id for m in state.messages] == [first.id, a, b, middle.id, c]
    assert state.messages[0] == first
    assert state.messages[3] == middle
    assert state.version == 6
    added = [e for e in journal.events(SID) if isinstance(e, MessageAdded)]
    assert [(e.seq, e.before) for e in added] == [(2, None), (3, None), (4, None), (5, a), (6, c)]
    # The insertion is in the event, so a replay (and any fresh reader) puts it in place.
    assert journal.replay(SID) == state
    assert contents(journal.replay(SID, at=5)) == ["first", "a", "b", "c"]
    with Journal(root) as fresh:
        assert fresh.get(SID) == state


@pytest.mark.parametrize("gone", ["unknown", "removed", "cleared"])
def test_add_message_before_a_message_not_visible_raises_and_writes_nothing(
    root: Path, journal: Journal, gone: str
) -> None:
    a, b = start(journal, "a", "b")
    target = {"unknown": "no-such-id", "removed": a, "cleared": b}[gone]
    if gone == "removed":
        journal.remove_message(SID, a)
    elif gone == "cleared":
        journal.clear(SID)
    before = log_bytes(root)
    version = journal.get(SID).version
    with pytest.raises(MessageNotFoundError) as info:
        journal.add_message(SID, "user", "x", before=target)
    assert isinstance(info.value, LookupError)
    assert (info.value.session_id, info.value.message_id) == (SID, target)
    assert log_bytes(root) == before
    assert journal.get(SID).version == version
    with pytest.raises(InvalidValueError) as empty:
        journal.add_message(SID, "user", "x", before="")
    assert empty.value.field == "before"
    assert log_bytes(root) == before


# -- add_messages ----------------------------------------------------------------------------


def test_add_messages_appends_a_batch_with_consecutive_seqs(root: Path, journal: Journal) -> None:
    (a,) = start(journal, "a")
    added = journal.add_messages(
        SID,
        [
            {"role": "user", "content": "m1", "metadata": {"n": 1}, "references": [{"doc": "d"}]},
            NewMessage(role="assistant", content="m2", metadata={"n": 2}),
            {"role": "tool", "content": ""},
        ],
        actor="batch",
    )
    assert isinstance(added, tuple)
    assert [(m.seq, m.role, m.content, m.actor) for m in added] == [
        (3, "user", "m1", "batch"),
        (4, "assistant", "m2", "batch"),
        (5, "tool", "", "batch"),
    ]
    assert dict(added[0].metadata) == {"n": 1}
    assert added[0].references == ({"doc": "d"},)
    assert len({m.id for m in added} | {a}) == 4
    state = journal.get(SID)
    assert state.version == 5
    assert state.messages[1:] == added
    events = list(journal.events(SID, after=2))
    assert [e.seq for e in events] == [3, 4, 5]
    assert all(isinstance(e, MessageAdded) and e.actor == "batch" for e in events)
    with Journal(root) as fresh:
        assert fresh.get(SID) == state == fresh.replay(SID)


def test_add_messages_with_replace_clears_first(root: Path, journal: Journal) -> None:
    start(journal, "old 1", "old 2")
    journal.update_settings(SID, {"model": "m"})
    added = journal.add_messages(SID, [NewMessage(role="user", content="new")], replace=True)
    state = journal.get(SID)
    assert contents(state) == ["new"]
    assert state.messages == added
    assert dict(state.settings) == {"model": "m"}
    assert [type(e) for e in journal.events(SID, after=4)] == [Cleared, MessageAdded]
    assert added[0].seq == 6
    # The log keeps what the replace hid.
    assert contents(journal.replay(SID, at=4)) == ["old 1", "old 2"]
    # An empty batch with replace is a clear; without replace it writes nothing.
    assert journal.add_messages(SID, [], replace=True) == ()
    assert journal.get(SID).version == 7
    assert contents(journal.get(SID)) == []
    before = log_bytes(root)
    assert journal.add_messages(SID, []) == ()
    assert log_bytes(root) == before
    with pytest.raises(ConflictError):
        journal.add_messages(SID, [], expected_version=3)
    with pytest.raises(SessionNotFoundError):
        journal.add_messages("missing", [])


def test_add_messages_in_one_batch_are_never_split_by_other_writers(root: Path) -> None:
    # Oracle: add_messages promises consecutive seqs with no other write between them. Threads
    # of two Journals (so both the group commit and the file lock are crossed) write single
    # messages while others write batches of 5; each batch must occupy 5 consecutive seqs.
    with Journal(root) as a, Journal(root) as b:
        a.create(SID)
        batches: list[tuple[int, ...]] = []
        failures: list[BaseException] = []
        guard = threading.Lock()

        def batcher(journal: Journal, name: str) -> None:
            try:
                for i in range(10):
                    items = [{"role": "user", "content": f"{name}:{i}:{k}"} for k in range(5)]
                    got = journal.add_messages(SID, items)
                    with guard:
                        batches.append(tuple(m.seq for m in got))
            except BaseException as exc:
                failures.append(exc)

        def single(journal: Journal, name: str) -> None:
            try:
                for i in range(30):
                    journal.add_message(SID, "user", f"{name}:{i}")
            except BaseException as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=batcher, args=(a, "ba")),
            threading.Thread(target=batcher, args=(b, "bb")),
            threading.Thread(target=single, args=(a, "sa")),
            threading.Thread(target=single, args=(b, "sb")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        assert not failures, failures
        assert len(batches) == 20
        for seqs in batches:
            assert list(seqs) == list(range(seqs[0], seqs[0] + 5)), seqs
        state = a.get(SID)
        assert state.version == 1 + 20 * 5 + 60
        for message in state.messages:
            name, _, rest = message.content.partition(":")
            if name.startswith("b"):
                i, k = (int(x) for x in rest.split(":"))
                # The batch's messages sit together, in the order given.
                assert state.messages[message.seq - 2 - k].content == f"{name}:{i}:0"


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ("not a list", "messages"),
        ({"role": "user", "content": "x"}, "messages"),
        ([{"role": "user", "content": "ok"}, "text"], "messages[1]"),
        ([{"role": "user", "content": "ok"}, ("user", "x")], "messages[1]"),
        ([{"role": "user", "content": "ok", "extra": 1}], "messages[0]"),
        ([{"content": "no role"}], "messages[0].role"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "user", "content": "ok"}, {"role": "", "content": "x"}], "messages[1].role"),
        ([{"role": "user", "content": "ok"}, {"role": "user", "content": 42}], "messages[1].content"),
        (
            [NewMessage(role="user", content="ok"), NewMessage(role="user", content="\ud800")],
            "messages[1].content",
        ),
        ([{"role": "user", "content": "x", "metadata": {"x": float("nan")}}], "messages[0].metadata['x']"),
        ([{"role": "user", "content": "x", "references": "str"}], "messages[0].references"),
    ],
)
@pytest.mark.parametrize("replace", [False, True])
def test_add_messages_with_a_bad_message_raises_and_writes_nothing(
    root: Path, journal: Journal, messages: Any, field: str, replace: bool
) -> None:
    start(journal, "kept")
    before = log_bytes(root)
    with pytest.raises(InvalidValueError) as info:
        journal.add_messages(SID, messages, replace=replace)
    assert info.value.field == field
    assert log_bytes(root) == before
    assert contents(journal.get(SID)) == ["kept"]


# -- pop, remove, edit -----------------------------------------------------------------------


def test_pop_message_removes_the_last_and_the_log_keeps_it(root: Path, journal: Journal) -> None:
    start(journal, "a", "b")
    last = journal.get(SID).messages[-1]
    popped = journal.pop_message(SID, actor="undo")
    assert popped == last
    state = journal.get(SID)
    assert contents(state) == ["a"]
    assert state.version == 4
    events = list(journal.events(SID))
    assert isinstance(events[2], MessageAdded)
    assert (events[2].message_id, events[2].content) == (last.id, "b")
    assert isinstance(events[3], MessageRemoved)
    assert (events[3].message_id, events[3].actor) == (last.id, "undo")
    assert contents(journal.replay(SID, at=3)) == ["a", "b"]
    assert journal.pop_message(SID).content == "a"
    with pytest.raises(MessageNotFoundError) as info:
        journal.pop_message(SID)
    assert (info.value.session_id, info.value.message_id) == (SID, None)
    with Journal(root) as fresh:
        assert fresh.get(SID) == journal.get(SID) == fresh.replay(SID)


def test_pop_message_of_an_empty_conversation_raises_and_writes_nothing(root: Path, journal: Journal) -> None:
    journal.create(SID)
    before = log_bytes(root)
    with pytest.raises(MessageNotFoundError) as info:
        journal.pop_message(SID)
    assert info.value.message_id is None
    assert log_bytes(root) == before
    journal.add_message(SID, "user", "a")
    journal.clear(SID)
    before = log_bytes(root)
    with pytest.raises(MessageNotFoundError) as info:
        journal.pop_message(SID)
    assert info.value.message_id is None
    assert log_bytes(root) == before


def test_remove_message_removes_that_one_and_the_log_keeps_it(root: Path, journal: Journal) -> None:
    a, b, c = start(journal, "a", "b", "c")
    removed = journal.remove_message(SID, b, actor="mod")
    assert (removed.id, removed.content, removed.seq) == (b, "b", 3)
    state = journal.get(SID)
    assert [m.id for m in state.messages] == [a, c]
    last = list(journal.events(SID))[-1]
    assert isinstance(last, MessageRemoved)
    assert (last.seq, last.message_id, last.actor) == (5, b, "mod")
    assert contents(journal.replay(SID, at=4)) == ["a", "b", "c"]
    assert any(
        isinstance(e, MessageAdded) and e.message_id == b and e.content == "b" for e in journal.events(SID)
    )
    with Journal(root) as fresh:
        assert fresh.get(SID) == state


@pytest.mark.parametrize("gone", ["unknown", "removed", "cleared"])
@pytest.mark.parametrize("method", ["remove", "edit"])
def test_remove_or_edit_of_a_message_not_visible_raises_and_writes_nothing(
    root: Path, journal: Journal, gone: str, method: str
) -> None:
    a, b = start(journal, "a", "b")
    target = {"unknown": "no-such-id", "removed": a, "cleared": b}[gone]
    if gone == "removed":
        journal.remove_message(SID, a)
    elif gone == "cleared":
        journal.clear(SID)
    before = log_bytes(root)
    call: Callable[[], object] = (
        (lambda: journal.remove_message(SID, target))
        if method == "remove"
        else (lambda: journal.edit_message(SID, target, "new"))
    )
    with pytest.raises(MessageNotFoundError) as info:
        call()
    assert (info.value.session_id, info.value.message_id) == (SID, target)
    assert log_bytes(root) == before


def test_edit_message_replaces_content_in_place_and_the_log_keeps_the_old(
    root: Path, journal: Journal
) -> None:
    journal.create(SID)
    a = journal.add_message(SID, "user", "a")
    b = journal.add_message(SID, "assistant", "draft", metadata={"v": 1}, references=["doc"], actor="bot")
    journal.add_message(SID, "user", "c")
    edited = journal.edit_message(SID, b.id, "final", actor="editor")
    assert (edited.id, edited.seq, edited.role, edited.at, edited.actor) == (
        b.id,
        b.seq,
        "assistant",
        b.at,
        "bot",
    )
    assert edited.content == "final"
    assert dict(edited.metadata) == {"v": 1}  # None keeps the metadata
    assert edited.references == ("doc",)
    assert b.edited_at is None
    events = list(journal.events(SID))
    edit = events[-1]
    assert isinstance(edit, MessageEdited)
    assert (edit.seq, edit.message_id, edit.content, edit.actor) == (5, b.id, "final", "editor")
    assert edited.edited_at == edit.at
    assert contents(journal.get(SID)) == ["a", "final", "c"]
    again = journal.edit_message(SID, b.id, "final 2", metadata={"v": 2})
    assert dict(again.metadata) == {"v": 2}
    assert contents(journal.replay(SID, at=4)) == ["a", "draft", "c"]
    assert dict(journal.replay(SID, at=5).messages[1].metadata) == {"v": 1}
    assert contents(journal.replay(SID, at=5)) == ["a", "final", "c"]
    originals = [e for e in journal.events(SID) if isinstance(e, MessageAdded) and e.message_id == b.id]
    assert [e.content for e in originals] == ["draft"]
    assert journal.get(SID).messages[0] == a
    with Journal(root) as fresh:
        assert fresh.get(SID) == journal.get(SID) == fresh.replay(SID)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"content": 42}, "content"),
        ({"content": "\udfff"}, "content"),
        ({"metadata": ["x"]}, "metadata"),
        ({"metadata": {"x": float("inf")}}, "metadata['x']"),
        ({"message_id": ""}, "message_id"),
        ({"actor": 3}, "actor"),
    ],
)
def test_edit_message_with_a_bad_value_raises_and_writes_nothing(
    root: Path, journal: Journal, kwargs: dict[str, Any], field: str
) -> None:
    (a,) = start(journal, "a")
    args: dict[str, Any] = {"message_id": a, "content": "new", **kwargs}
    before = log_bytes(root)
    with pytest.raises(InvalidValueError) as info:
        journal.edit_message(SID, args.pop("message_id"), args.pop("content"), **args)
    assert info.value.field == field
    assert log_bytes(root) == before


def test_edit_of_a_redacted_message_is_refused(root: Path, journal: Journal) -> None:
    (a,) = start(journal, "secret")
    journal.redact_message(SID, a, reason="privacy")
    before = log_bytes(root)
    with pytest.raises(InvalidValueError) as info:
        journal.edit_message(SID, a, "back again")
    assert info.value.field == "message_id"
    assert log_bytes(root) == before
    assert journal.get(SID).messages[0].redacted


# -- every new write: missing session, expected_version, actor ------------------------------

WRITES: dict[str, Write] = {
    "add_message_before": lambda j, sid, mid, kw: j.add_message(sid, "user", "new", before=mid, **kw),
    "add_messages": lambda j, sid, mid, kw: j.add_messages(sid, [{"role": "user", "content": "new"}], **kw),
    "add_messages_replace": lambda j, sid, mid, kw: j.add_messages(
        sid, [NewMessage(role="user", content="new")], replace=True, **kw
    ),
    "pop_message": lambda j, sid, mid, kw: j.pop_message(sid, **kw),
    "remove_message": lambda j, sid, mid, kw: j.remove_message(sid, mid, **kw),
    "edit_message": lambda j, sid, mid, kw: j.edit_message(sid, mid, "new", **kw),
    "redact_message": lambda j, sid, mid, kw: j.redact_message(sid, mid, reason="asked", **kw),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_every_new_write_to_a_missing_session_raises_and_writes_nothing(
    root: Path, journal: Journal, name: str
) -> None:
    (a,) = start(journal, "a")
    before = log_bytes(root)
    with pytest.raises(SessionNotFoundError) as info:
        WRITES[name](journal, "missing", a, {})
    assert info.value.session_id == "missing"
    assert log_bytes(root) == before
    assert not journal.exists("missing")
    assert not Layout(root).session_dir("missing").exists()


@pytest.mark.parametrize("name", list(WRITES))
def test_every_new_write_checks_expected_version_and_records_its_actor(
    root: Path, journal: Journal, name: str
) -> None:
    _, b = start(journal, "a", "b")
    before = log_bytes(root)
    for wrong in (2, 4):
        with pytest.raises(ConflictError) as info:
            WRITES[name](journal, SID, b, {"expected_version": wrong})
        assert (info.value.session_id, info.value.expected, info.value.actual) == (SID, wrong, 3)
    assert log_bytes(root) == before
    WRITES[name](journal, SID, b, {"expected_version": 3, "actor": "alice"})
    written = list(journal.events(SID, after=3))
    assert written
    assert all(e.actor == "alice" for e in written)
    with Journal(root) as fresh:
        assert fresh.get(SID) == journal.get(SID) == fresh.replay(SID)


# -- the log lines and reading them back -----------------------------------------------------


def exercise(journal: Journal) -> dict[str, str]:
    """Every kind of event, old and new; returns the ids of the messages by content."""
    journal.create(SID, actor="setup")
    ids = {text: journal.add_message(SID, "user", text).id for text in ("a", "b", "c")}
    ids["first"] = journal.add_message(SID, "user", "first", before=ids["a"]).id
    journal.update_settings(SID, {"model": "m"}, remove=["none"])
    journal.edit_message(SID, ids["b"], "b2", metadata={"edited": True})
    journal.remove_message(SID, ids["c"])
    journal.pop_message(SID)
    batch = journal.add_messages(SID, [{"role": "user", "content": "d"}, NewMessage(role="bot", content="e")])
    ids.update({"d": batch[0].id, "e": batch[1].id})
    journal.redact_message(SID, ids["d"], reason="pii", actor="dpo")
    journal.add_messages(SID, [{"role": "user", "content": "f"}], replace=True)
    ids["f"] = journal.get(SID).messages[0].id
    journal.redact_message(SID, ids["c"], reason="pii")  # a removed message
    return ids


def test_lines_of_the_original_four_types_stay_version_1_and_new_ones_are_version_2(
    root: Path, journal: Journal
) -> None:
    # Oracle: codec's rule. A version-1 reader must read every line it can read exactly, and
    # stop (unsupported) at every line it would misread: the three new types, and an insertion.
    exercise(journal)
    seen = set()
    for line in parsed_lines(root):
        kind = line["type"]
        inserted = kind == "message_added" and "before" in line["data"]
        expected = 2 if kind in {"message_removed", "message_edited", "message_redacted"} or inserted else 1
        assert line["v"] == expected, line
        seen.add((kind, line["v"]))
        if kind == "message_added" and not inserted:
            assert list(line["data"]) == ["id", "role", "content_sha256", "metadata", "references"]
    assert seen == {
        ("created", 1),
        ("message_added", 1),
        ("message_added", 2),
        ("settings_changed", 1),
        ("message_edited", 2),
        ("message_removed", 2),
        ("cleared", 1),
        ("message_redacted", 2),
    }
    for raw in lines_of(log_path(root, SID)):
        assert raw.startswith((b'{"v":1,"seq":', b'{"v":2,"seq":'))
    redaction = next(e for e in parsed_lines(root) if e["type"] == "message_redacted")
    assert redaction["data"]["reason"] == "pii"
    assert redaction["actor"] == "dpo"
    assert "body" not in redaction


def test_a_fresh_journal_replay_and_a_cold_load_from_a_snapshot_agree(root: Path, journal: Journal) -> None:
    ids = exercise(journal)
    cached = journal.get(SID)
    assert contents(cached) == ["f"]
    assert cached == journal.replay(SID)
    with Journal(root) as fresh:
        assert fresh.get(SID) == cached
        assert list(fresh.events(SID)) == list(journal.events(SID))
    # The state before the replace: inserted, edited, removed, popped and redacted messages.
    before_replace = journal.replay(SID, at=cached.version - 3)
    assert contents(before_replace) == ["first", "a", "", "e"]
    assert [m.redacted for m in before_replace.messages] == [False, False, True, False]
    assert [m.id for m in before_replace.messages] == [ids[k] for k in ("first", "a", "d", "e")]
    after_edit = journal.replay(SID, at=7)
    assert contents(after_edit) == ["first", "a", "b2", ""]  # c was redacted later, at seq 15
    assert [m.edited_at is not None for m in after_edit.messages] == [False, False, True, False]
    journal.compact(SID)
    assert snapshot_names(root, SID) == [f"snapshot-{cached.version:020d}.snap"]
    with Journal(root) as cold:
        assert cold.get(SID) == cached
        assert cold.replay(SID, at=cached.version - 3) == before_replace
    # A snapshot of the intermediate state too, read cold; verify compares it with the fold.
    with Journal(root, snapshot_every=1) as writer:
        writer.add_message(SID, "user", "g", before=ids["f"])
        writer.edit_message(SID, ids["f"], "f2")
        state = writer.get(SID)
    with Journal(root) as cold:
        assert cold.get(SID) == state
        assert contents(state) == ["g", "f2"]
        report = cold.verify()
        assert report.ok, report.problems
    with Journal(root) as pruning:
        pruning.compact(SID, prune=True)
    with Journal(root) as cold:
        assert cold.get(SID) == state == cold.replay(SID)
        assert cold.verify().ok


# -- redaction -------------------------------------------------------------------------------


def test_redact_message_erases_its_content_and_records_who_and_why(root: Path, journal: Journal) -> None:
    journal.create(SID)
    keep = journal.add_message(SID, "user", "keep me")
    secret = journal.add_message(
        SID, "user", "my card is 4111-1111", metadata={"lang": "en"}, references=[{"doc": 1}]
    )
    journal.edit_message(SID, secret.id, "my card is 4111-2222")
    journal.add_message(SID, "assistant", "noted")
    head = journal.head(SID)
    returned = journal.redact_message(SID, secret.id, reason="GDPR art. 17", actor="dpo")
    state = journal.get(SID)
    assert isinstance(returned, Message)
    assert returned == state.messages[1]  # the message, as the conversation now shows it
    assert state.version == 6
    assert state == journal.get(SID) == journal.replay(SID)
    erased = state.messages[1]
    assert (erased.id, erased.seq, erased.role, erased.content, erased.redacted) == (
        secret.id,
        3,
        "user",
        "",
        True,
    )
    # Metadata and references are sealed in the chain: they stay.
    assert dict(erased.metadata) == {"lang": "en"}
    assert erased.references == ({"doc": 1},)
    assert erased.edited_at is not None
    assert state.messages[0] == keep
    assert contents(state) == ["keep me", "", "noted"]
    events = list(journal.events(SID))
    redaction = events[-1]
    assert isinstance(redaction, MessageRedacted)
    assert (redaction.seq, redaction.message_id, redaction.reason, redaction.actor) == (
        6,
        secret.id,
        "GDPR art. 17",
        "dpo",
    )
    # The history no longer holds the content either: every point before the redaction
    # shows the message erased.
    added, edited = events[2], events[3]
    assert isinstance(added, MessageAdded)
    assert isinstance(edited, MessageEdited)
    assert (added.content, added.redacted_by, edited.content, edited.redacted_by) == ("", 6, "", 6)
    for seq in range(3, 6):
        assert journal.replay(SID, at=seq).messages[1].content == ""
    # Whole texts: a bare "4111" also turns up inside hex hashes and ids, by chance.
    assert holders(root, "4111-1111") == holders(root, "4111-2222") == set()
    assert history_holders(root, "keep me") == {str(log_path(root, SID).relative_to(root))}
    assert journal.verify().ok
    assert journal.verify(anchors=[head]).ok
    with Journal(root) as fresh:
        assert fresh.get(SID) == state
        assert list(fresh.events(SID)) == events


def test_redacting_a_message_that_is_no_longer_visible(root: Path, journal: Journal) -> None:
    journal.create(SID)
    cleared = journal.add_message(SID, "user", "cleared secret")
    journal.clear(SID)
    removed = journal.add_message(SID, "user", "removed secret")
    journal.remove_message(SID, removed.id)
    journal.add_message(SID, "user", "visible")
    shown = journal.get(SID)
    for message_id, original in ((cleared.id, cleared), (removed.id, removed)):
        returned = journal.redact_message(SID, message_id, reason="asked")
        # Not visible: the message as the history last showed it, its content gone.
        assert returned == msgspec.structs.replace(original, content="", redacted=True)
        # Nothing visible changes; the history forgets the content.
        assert journal.get(SID).messages == shown.messages
    assert journal.get(SID).version == shown.version + 2
    assert holders(root, "secret") == set()
    assert contents(journal.replay(SID, at=2)) == [""]
    assert journal.replay(SID, at=2).messages[0].redacted
    assert holders(root, "visible")
    assert journal.verify().ok


def test_redacting_twice_appends_no_second_event(root: Path, journal: Journal) -> None:
    (a,) = start(journal, "secret")
    first = journal.redact_message(SID, a, reason="one")
    log_before = log_bytes(root)
    second = journal.redact_message(SID, a, reason="two", actor="other")
    assert second == first
    assert log_bytes(root) == log_before
    redactions = [e for e in journal.events(SID) if isinstance(e, MessageRedacted)]
    assert [(e.reason, e.actor) for e in redactions] == [("one", None)]
    # expected_version is still checked, against the unchanged version.
    with pytest.raises(ConflictError):
        journal.redact_message(SID, a, reason="three", expected_version=2)
    assert journal.redact_message(SID, a, reason="three", expected_version=3) == first


def test_redact_message_refuses_what_it_cannot_do_and_writes_nothing(root: Path, journal: Journal) -> None:
    (a,) = start(journal, "a")
    before = log_bytes(root)
    with pytest.raises(MessageNotFoundError) as info:
        journal.redact_message(SID, "never-added", reason="asked")
    assert (info.value.session_id, info.value.message_id) == (SID, "never-added")
    for reason in ("", None, 5):
        with pytest.raises(InvalidValueError) as invalid:
            journal.redact_message(SID, a, reason=reason)  # type: ignore[arg-type]
        assert invalid.value.field == "reason"
    with pytest.raises(InvalidValueError) as empty_id:
        journal.redact_message(SID, "", reason="asked")
    assert empty_id.value.field == "message_id"
    assert log_bytes(root) == before
    assert holders(root, '"content":"a"')


class Spread(NamedTuple):
    """A session whose secret message's versions sit in every kind of file."""

    message_id: str
    token: str  # in every version of the secret content, and nowhere else
    others: list[str]  # every other message's content
    head: Anchor


def spread_everywhere(root: Path) -> Spread:
    """Build a session where versions of one message's content sit in every kind of file.

    * ``archive/base.snap``: version 1 (the first pruning folds seqs 1..4 into a retention base);
    * an archive segment: version 2 (its edit, pruned without retention);
    * ``events.jsonl`` and the newest snapshot: version 3;
    * ``quarantine/``: version 4, in a log fragment and a snapshot that ``repair`` moved there
      (the line before that edit is damaged, so repair cuts the log there);
    * hidden ``.tmp`` leftovers of crashed writers: copies of the log, a segment and a snapshot.
    """
    token = f"SECRET-{uuid.uuid4().hex[:12]}"
    versions = [f"{token} v{i}" for i in range(5)]
    with Journal(root, snapshot_every=0, snapshot_bytes=0, retention=TINY) as journal:
        journal.create(SID)
        journal.add_message(SID, "user", "other 1")
        secret = journal.add_message(SID, "user", versions[0], metadata={"kind": "pii"})
        journal.edit_message(SID, secret.id, versions[1])
        journal.add_message(SID, "assistant", "other 2")
        journal.compact(SID, prune=True)
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.add_message(SID, "user", "other 3")
        journal.edit_message(SID, secret.id, versions[2])
        journal.add_message(SID, "user", "other 4")
        journal.compact(SID, prune=True)
        journal.edit_message(SID, secret.id, versions[3])
        journal.add_message(SID, "user", "other 5")
        journal.compact(SID)
        journal.add_message(SID, "user", "other 6 damaged")
        journal.edit_message(SID, secret.id, versions[4])
        journal.add_message(SID, "user", "other 7 quarantined")
        journal.compact(SID)
    path = log_path(root, SID)
    path.write_bytes(path.read_bytes().replace(b"other 6 damaged", b"other 6 DAMAGED"))
    with Journal(root) as journal:
        report = journal.repair(SID)
        assert report.quarantine is not None
        assert contents(journal.get(SID)) == [
            "other 1",
            versions[3],
            "other 2",
            "other 3",
            "other 4",
            "other 5",
        ]
        journal.compact(SID)  # the snapshot the repair quarantined held version 4: one of version 3
        head = journal.head(SID)
    folder = session_dir(root, SID)
    (snapshot,) = snapshot_names(root, SID)
    (segment,) = segment_paths(root, SID)
    (folder / ".events.jsonl.4242.1.tmp").write_bytes(path.read_bytes())
    (folder / f".{snapshot}.4242.1.tmp").write_bytes((folder / snapshot).read_bytes())
    (segment.parent / f".{segment.name}.4242.1.tmp").write_bytes(segment.read_bytes()[:-4])
    others = [f"other {i}" for i in range(1, 6)] + ["other 6 DAMAGED", "other 7 quarantined"]
    # The oracle sees every version where the build put it, so "found nowhere" later means
    # erased, not overlooked.
    where = {v: holders(root, v) for v in versions}
    rel = folder.relative_to(root)
    assert where[versions[0]] == set()
    assert where[versions[1]] == {str(rel / "archive" / "base.snap")}
    assert where[versions[2]] == {
        str(rel / "archive" / segment.name),
        str(rel / "archive" / f".{segment.name}.4242.1.tmp"),
    }
    assert where[versions[3]] == {
        str(rel / "events.jsonl"),
        str(rel / snapshot),
        str(rel / ".events.jsonl.4242.1.tmp"),
        str(rel / f".{snapshot}.4242.1.tmp"),
    }
    assert len(where[versions[4]]) == 2
    assert all(name.startswith(str(rel / "quarantine")) for name in where[versions[4]])
    return Spread(secret.id, token, others, head)


def test_redaction_erases_every_version_of_the_content_from_every_file(root: Path) -> None:
    spread = spread_everywhere(root)
    kept = {text: history_holders(root, text) for text in spread.others}
    assert all(kept.values())
    with Journal(root) as journal:
        returned = journal.redact_message(SID, spread.message_id, reason="erasure request", actor="dpo")
        state = journal.get(SID)
        assert (returned.id, returned.content, returned.redacted) == (spread.message_id, "", True)
        assert contents(state) == ["other 1", "", "other 2", "other 3", "other 4", "other 5"]
    assert holders(root, spread.token) == set()
    # Every other message's content is still in every history file that held it.
    assert {text: history_holders(root, text) for text in spread.others} == kept
    assert verify(root).ok
    # The spread includes a retention base, which an exported head cannot vouch for.
    assert clean_but_the_base(verify(root, spread.head))
    with Journal(root) as fresh:
        assert fresh.get(SID) == state == fresh.replay(SID)
        last = list(fresh.events(SID))[-1]
        assert isinstance(last, MessageRedacted)
        assert (last.message_id, last.reason, last.actor) == (spread.message_id, "erasure request", "dpo")
        assert fresh.add_message(SID, "user", "after").seq == state.version + 1
    assert verify(root).ok


def test_redaction_under_automatic_pruning_and_retention(root: Path) -> None:
    # Oracle as above, with the archive made by the writers themselves (archive_after) and a
    # retention of one day (nothing old enough to drop), then with everything folded.
    with Journal(root, archive_after=3, retention=timedelta(days=1)) as journal:
        journal.create(SID)
        secret = journal.add_message(SID, "user", "hidden-token one")
        for i in range(6):
            journal.add_message(SID, "user", f"filler {i}")
            if i == 2:
                journal.edit_message(SID, secret.id, "hidden-token two")
        assert segment_paths(root, SID)
        assert holders(root, "hidden-token one")
        journal.redact_message(SID, secret.id, reason="asked")
        assert holders(root, "hidden-token") == set()
        for i in range(6, 12):
            journal.add_message(SID, "user", f"filler {i}")
        assert journal.verify().ok
    with Journal(root, retention=TINY) as journal:
        journal.compact(SID, prune=True)
        assert journal.verify().ok
        assert contents(journal.get(SID)) == ["", *(f"filler {i}" for i in range(12))]
    assert holders(root, "hidden-token") == set()


def test_redaction_leaves_other_sessions_alone(root: Path, journal: Journal) -> None:
    (a,) = start(journal, "same words")
    journal.create("other")
    journal.add_message("other", "user", "same words")
    other_log = log_path(root, "other").read_bytes()
    journal.redact_message(SID, a, reason="asked")
    assert log_path(root, "other").read_bytes() == other_log
    assert contents(journal.get("other")) == ["same words"]


# -- tampering with erased bodies -------------------------------------------------------------


def forged(line: bytes, seq: int) -> bytes:
    """``line`` with its body replaced by an erased body naming ``seq``, by hand."""
    return line[: line.rindex(b',"body":')] + b',"body":{"redacted":%d}}\n' % seq


def forge_an_erasure(journal: Journal, root: Path, claimed: int) -> tuple[Path, list[bytes]]:
    """Seqs: 2 the victim, 3 another message, 4 a third, 5 the redaction of seq 3's message,
    6 a last message. The victim's body is then replaced by hand with an erased body naming
    ``claimed``; returns the log and its lines."""
    _, other = start(journal, "victim", "other")
    journal.add_message(SID, "user", "later")
    journal.redact_message(SID, other, reason="asked")
    journal.add_message(SID, "user", "last")
    path = log_path(root, SID)
    lines = lines_of(path)
    lines[1] = forged(lines[1], claimed)
    path.write_bytes(b"".join(lines))
    # The redaction's snapshot disagrees with the forged line too; it is only a cache, and
    # without it the report is about the line alone.
    for name in snapshot_names(root, SID):
        (session_dir(root, SID) / name).unlink()
    return path, lines


@pytest.mark.parametrize(
    "claimed",
    [
        pytest.param(4, id="another_event"),
        pytest.param(5, id="another_redaction"),
        pytest.param(99, id="no_such_seq"),
        pytest.param(2, id="its_own_seq"),
        pytest.param(1, id="an_earlier_seq"),
    ],
)
def test_an_erased_body_naming_no_redaction_of_its_message_is_reported_edited(
    root: Path, journal: Journal, claimed: int
) -> None:
    path, lines = forge_an_erasure(journal, root, claimed)
    report = verify(root)
    assert problems(report) == [("edited", str(path), 2)]
    assert report.problems[0].offset == len(lines[0])
    assert f"seq {claimed}" in report.problems[0].message


@pytest.mark.parametrize("claimed", [pytest.param(4, id="another_event"), pytest.param(99, id="no_such_seq")])
def test_a_read_of_a_forged_erasure_raises_instead_of_showing_a_redaction(
    root: Path, journal: Journal, claimed: int
) -> None:
    forge_an_erasure(journal, root, claimed)
    with Journal(root) as fresh:
        with pytest.raises(CorruptLogError) as info:
            fresh.replay(SID)
        assert info.value.line == 2


@pytest.mark.parametrize("where", ["log", "archive"])
def test_content_put_back_into_an_erased_line_is_reported_unerased_until_redacted_again(
    root: Path, where: str
) -> None:
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        (a,) = start(journal, "back-from-the-dead v1")
        journal.edit_message(SID, a, "back-from-the-dead v2")
        journal.add_message(SID, "user", "tail")
        if where == "archive":
            journal.compact(SID, prune=True)
        head = journal.head(SID)
    path = segment_paths(root, SID)[0] if where == "archive" else log_path(root, SID)

    def read() -> list[bytes]:
        data = path.read_bytes()
        return (gzip.decompress(data) if where == "archive" else data).splitlines(keepends=True)

    def write(lines: list[bytes]) -> None:
        data = b"".join(lines)
        path.write_bytes(gzip.compress(data) if where == "archive" else data)

    original = read()
    with Journal(root) as journal:
        redacted = journal.redact_message(SID, a, reason="asked")
    assert holders(root, "back-from-the-dead") == set()
    restored = read()
    restored[1], restored[2] = original[1], original[2]
    write(restored)
    report = verify(root, head)
    assert problems(report) == [("unerased", str(path), 2), ("unerased", str(path), 3)]
    assert all(a in p.message for p in report.problems)
    # Reads are unaffected: the redaction event folds over the content put back.
    with Journal(root) as journal:
        assert journal.get(SID).messages[0] == redacted
        again = journal.redact_message(SID, a, reason="again")
        assert again == redacted
        assert [e.reason for e in journal.events(SID) if isinstance(e, MessageRedacted)] == ["asked"]
    assert verify(root, head).ok
    assert holders(root, "back-from-the-dead") == set()
    assert holders(root, "tail")


# -- other readers, other writers -----------------------------------------------------------


def test_another_journal_with_a_cached_state_reads_the_redaction(root: Path) -> None:
    with Journal(root) as writer, Journal(root) as reader:
        writer.create(SID)
        secret = writer.add_message(SID, "user", "secret")
        writer.add_message(SID, "user", "after")
        assert contents(reader.get(SID)) == ["secret", "after"]
        writer.redact_message(SID, secret.id, reason="asked")
        assert contents(reader.get(SID)) == ["", "after"]
        assert reader.get(SID) == writer.get(SID)
        assert reader.add_message(SID, "user", "more").seq == 5


def test_a_journal_that_cached_the_redacted_message_as_its_last_event_reads_the_redaction(
    root: Path,
) -> None:
    with Journal(root) as writer, Journal(root) as reader:
        writer.create(SID)
        writer.add_message(SID, "user", "before")
        secret = writer.add_message(SID, "user", "secret")
        assert contents(reader.get(SID)) == ["before", "secret"]  # its head: the secret's line
        writer.redact_message(SID, secret.id, reason="asked")
        assert contents(reader.get(SID)) == ["before", ""]
        assert reader.add_message(SID, "user", "more").seq == 5


def test_a_snapshot_taken_before_a_redaction_never_brings_the_content_back(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interleaving save_snapshot guards against, made certain: the automatic snapshot's
    # state is taken when the write ends, and another Journal redacts the message before the
    # snapshot is written (it is written after the write's lead is handed over).
    real = Committer._write_snapshot
    with Journal(root, snapshot_every=1) as writer, Journal(root, snapshot_every=0) as redactor:
        writer.create(SID)

        def redact_then_write(self: Committer, sid: str, slot: Any, view: View) -> None:
            messages = view.state.messages
            if messages and not messages[-1].redacted:
                redactor.redact_message(SID, messages[-1].id, reason="asked")
            real(self, sid, slot, view)

        monkeypatch.setattr(Committer, "_write_snapshot", redact_then_write)
        writer.add_message(SID, "user", "written-back secret")
        monkeypatch.undo()
    assert holders(root, "written-back") == set()
    assert verify(root).ok
    with Journal(root) as fresh:
        assert contents(fresh.get(SID)) == [""]


def test_scrubbing_the_quarantine_keeps_other_messages_that_mention_the_redacted_one(
    root: Path,
) -> None:
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        secret = journal.add_message(SID, "user", "quarantined secret")
        journal.add_message(SID, "user", "damaged line")
        journal.add_message(SID, "user", "a reply", metadata={"reply_to": secret.id})
        journal.add_message(SID, "user", "an insertion", before=secret.id)
        journal.remove_message(SID, secret.id)
    path = log_path(root, SID)
    path.write_bytes(path.read_bytes().replace(b"damaged line", b"DAMAGED line"))
    with Journal(root) as journal:
        report = journal.repair(SID)
        assert report.quarantine is not None
        quarantine = Path(report.quarantine)
        (fragment,) = (p for p in quarantine.iterdir() if p.name.startswith("events.jsonl"))
        before = fragment.read_bytes().splitlines(keepends=True)
        journal.redact_message(SID, secret.id, reason="asked")
    after = fragment.read_bytes().splitlines(keepends=True)
    # The fragment is the damaged line, the reply, the insertion and the removal: none holds
    # the secret's content, so scrubbing it must leave every byte as repair moved it.
    assert holders(root, "quarantined secret") == set()
    assert after == before


def slow_erasure(monkeypatch: pytest.MonkeyPatch, erasing: Callable[[], None]) -> None:
    """Make the erasure's rewrites of the active log (and base) call ``erasing``, then dawdle.

    The rewrites run under the session's lock, so writers that arrive meanwhile wait for the
    erasure and then find the log replaced under their cached views: the race under test,
    made certain instead of left to the scheduler.
    """

    def slowly(folder: Folder, name: str, data: bytes) -> None:
        erasing()
        time.sleep(0.02)
        folder.write_atomic(name, data)

    monkeypatch.setattr("journal.backends.files.erasure._rewrite", slowly)


def test_threads_appending_while_another_thread_redacts(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Oracle: nothing appended is lost, reordered within its thread or erased; only the one
    # redacted message loses its content; the log verifies; every Journal reads the same.
    # Each appender writes half its messages, waits until the erasure is under way, then
    # writes the rest: against the erasure in progress and the files it replaced.
    with Journal(root) as journal, Journal(root) as other:
        journal.create(SID)
        secret = journal.add_message(SID, "user", "thread-secret v1")
        journal.edit_message(SID, secret.id, "thread-secret v2")
        journal.compact(SID, prune=True)
        count = 40
        redacted = threading.Event()
        erasing = threading.Event()
        slow_erasure(monkeypatch, erasing.set)
        failures: list[BaseException] = []

        def append(target: Journal, writer: str) -> None:
            try:
                for i in range(count):
                    if i == count // 2:
                        assert erasing.wait(JOIN_TIMEOUT), "the erasure never started"
                    target.add_message(SID, "user", content_for(writer, 0, i))
            except BaseException as exc:
                failures.append(exc)

        def redact() -> None:
            try:
                deadline = time.monotonic() + JOIN_TIMEOUT
                while journal.get(SID).version < 12:
                    assert time.monotonic() < deadline, "the appenders never got going"
                    time.sleep(0.001)
                journal.redact_message(SID, secret.id, reason="asked")
                redacted.set()
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=append, args=(journal, f"t{k}")) for k in range(3)]
        threads.append(threading.Thread(target=append, args=(other, "o0")))
        threads.append(threading.Thread(target=redact))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        assert not failures, failures
        assert redacted.is_set()
        check_after_concurrent_redaction(
            root, secret.id, "thread-secret", {f"t{k}.0": count for k in range(3)} | {"o0.0": count}
        )
        assert other.get(SID) == journal.get(SID)
        assert other.get(SID).messages[0].content == ""


def check_after_concurrent_redaction(
    root: Path, message_id: str, token: str, expected: dict[str, int]
) -> None:
    """Every writer's appends present once, in order, intact; the secret erased; verify clean.

    Also asserts that appends landed on both sides of the redaction event: the check that
    the test set up the race it means to test.
    """
    with Journal(root) as fresh:
        events = list(fresh.events(SID))
        state = fresh.get(SID)
        assert state == fresh.replay(SID)
        report = fresh.verify()
        assert report.ok, report.problems
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert isinstance(events[0], Created)
    redactions = [e for e in events if isinstance(e, MessageRedacted)]
    assert [e.message_id for e in redactions] == [message_id]
    seen: dict[str, list[int]] = {}
    sides = set()
    for event in events:
        if isinstance(event, MessageAdded) and event.message_id != message_id:
            assert event.redacted_by is None, f"seq {event.seq} was erased"
            who, index = parse_content(event.content)
            seen.setdefault(who, []).append(index)
            sides.add(event.seq > redactions[0].seq)
    assert seen == {who: list(range(n)) for who, n in expected.items()}
    assert sides == {False, True}, "the appends did not race the redaction"
    assert state.messages[0].id == message_id
    assert (state.messages[0].content, state.messages[0].redacted) == ("", True)
    assert len(state.messages) == 1 + sum(expected.values())
    assert holders(root, token) == set()


# Workers for the process test: module level, since ``spawn`` imports the target afresh.


def append_then_read_worker(
    root: str,
    session_id: str,
    writer: str,
    count: int,
    message_id: str,
    start: Barrier,
    erasing: ProcessEvent,
    redacted: ProcessEvent,
) -> None:
    """Append ``count`` messages, the second half once the erasure is under way; then (after
    the redaction) read it from the cached Journal."""
    with Journal(root) as journal:
        journal.get(session_id)  # a cached view, made stale by everything that follows
        start.wait(BARRIER_TIMEOUT)
        for i in range(count):
            if i == count // 2:
                assert erasing.wait(BARRIER_TIMEOUT), "the erasure never started"
            journal.add_message(session_id, "user", content_for(writer, 0, i))
        assert redacted.wait(BARRIER_TIMEOUT), "the redaction never finished"
        state = journal.get(session_id)
        erased = state.messages[0]
        assert (erased.id, erased.content, erased.redacted) == (message_id, "", True), erased
        mine = [m.content for m in state.messages if m.content.startswith(f"{writer}.")]
        assert mine == [content_for(writer, 0, i) for i in range(count)]
        assert state == journal.replay(session_id, at=state.version)


def redact_worker(
    root: str,
    session_id: str,
    message_id: str,
    after: int,
    start: Barrier,
    erasing: ProcessEvent,
    redacted: ProcessEvent,
) -> None:
    """Once the session holds ``after`` events, redact the message slowly; then signal it."""
    with pytest.MonkeyPatch.context() as monkeypatch, Journal(root) as journal:
        slow_erasure(monkeypatch, erasing.set)
        start.wait(BARRIER_TIMEOUT)
        deadline = time.monotonic() + BARRIER_TIMEOUT
        while journal.get(session_id).version < after:
            assert time.monotonic() < deadline, "the appenders never got going"
            time.sleep(0.001)
        journal.redact_message(session_id, message_id, reason="asked", actor=f"pid {os.getpid()}")
        redacted.set()


def test_processes_appending_while_another_process_redacts(
    root: Path, spawn: Callable[..., BaseProcess]
) -> None:
    # Oracle: check_after_concurrent_redaction, and each appending process's own cached
    # Journal reads the redacted state afterwards (asserted in the worker: exit code 0).
    writers, count = 3, 60
    with Journal(root) as parent:
        parent.create(SID)
        secret = parent.add_message(SID, "user", "process-secret v1")
        parent.edit_message(SID, secret.id, "process-secret v2")
        assert contents(parent.get(SID)) == ["process-secret v2"]
        start_all = CTX.Barrier(writers + 2)
        erasing, redacted = CTX.Event(), CTX.Event()
        events = (start_all, erasing, redacted)
        workers = [
            spawn(append_then_read_worker, str(root), SID, f"p{k}", count, secret.id, *events)
            for k in range(writers)
        ]
        workers.append(spawn(redact_worker, str(root), SID, secret.id, 3 + writers * 5, *events))
        start_all.wait(BARRIER_TIMEOUT)
        for process in workers:
            process.join(JOIN_TIMEOUT)
            assert process.exitcode == 0, f"{process.name} failed ({process.exitcode}); see its stderr"
        check_after_concurrent_redaction(
            root, secret.id, "process-secret", {f"p{k}.0": count for k in range(writers)}
        )
        # The parent's cache predates everything: it reads the redacted state too.
        assert parent.get(SID).messages[0].content == ""
        redaction = next(e for e in parent.events(SID) if isinstance(e, MessageRedacted))
        assert (redaction.actor or "").startswith("pid ")


def test_redaction_deletes_leftovers_and_the_session_goes_on(root: Path) -> None:
    # The redaction deletes snapshots and leftovers and rewrites quarantined lines; what is
    # left must still read, verify and take writes like any session.
    spread = spread_everywhere(root)
    assert len(leftovers(root, SID)) == 3
    with Journal(root) as journal:
        journal.redact_message(SID, spread.message_id, reason="asked")
    assert leftovers(root, SID) == []
    assert snapshot_names(root, SID) == [f"snapshot-{spread.head.seq + 1:020d}.snap"]
    with Journal(root) as journal:
        assert journal.add_message(SID, "user", "on").seq == spread.head.seq + 2
        assert journal.verify().ok
        assert journal.get(SID) == journal.replay(SID)


def test_a_redaction_by_a_journal_with_archive_after_prunes_like_any_of_its_writes(root: Path) -> None:
    # Oracle: archive_after's promise (no write by such a Journal leaves more than N active
    # lines), found by the state machine: the lines before were written by a Journal without it.
    with Journal(root) as plain:
        plain.create(SID)
        secret = plain.add_message(SID, "user", "prune me secretly")
        for i in range(9):
            plain.add_message(SID, "user", f"kept {i}")
    with Journal(root, archive_after=2) as pruning:
        returned = pruning.redact_message(SID, secret.id, reason="asked")
        state = pruning.get(SID)
        assert returned == state.messages[0]
        assert len(log_path(root, SID).read_bytes().splitlines()) <= 2
        assert [m.content for m in state.messages][:2] == ["", "kept 0"]
        with Journal(root) as fresh:
            assert fresh.get(SID) == state
            assert fresh.verify().ok
    for path in root.rglob("*"):
        if path.is_file():
            data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
            assert b"prune me secretly" not in data, path
