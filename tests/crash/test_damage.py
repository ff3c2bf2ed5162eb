"""Damaged, torn and hostile logs on real files, and hostile session ids.

The logs here are built by a real Journal once per module (``base``), then copied byte for byte
into a fresh root per case and damaged there: the reader under test never shares a cache with
the writer that made the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from journal import (
    CorruptLogError,
    InvalidSessionIdError,
    Journal,
    MessageAdded,
    SessionNotFoundError,
)
from tests.conftest import SHARED, shared_path

SID = "s"
# The line damaged in most tests: a message whose content has escapes and non-ASCII text.
MIDDLE = 3
HASH_KEY = b',"hash":"'


@dataclass(frozen=True)
class Base:
    """A pristine log of 6 lines and what the tests need to know about it."""

    rel: Path  # the log's path relative to a journal root
    data: bytes
    lines: list[bytes]  # each with its newline
    next_line: bytes  # what the next append ("next message") wrote to a copy of the log
    long_next_line: bytes  # the same append with a 200-character content instead

    def offset(self, line: int) -> int:
        """Byte offset of 1-based ``line``."""
        return sum(len(x) for x in self.lines[: line - 1])

    def without_newline(self, line: int) -> bytes:
        return self.lines[line - 1][:-1]


def _build(root: Path) -> None:
    with Journal(root) as journal:
        journal.create(SID, actor="setup")
        journal.add_message(SID, "user", "hello")
        journal.add_message(
            SID,
            "user",
            'héllo\n"world" \\ ✓ \u2028 end',
            metadata={"k": [1, 2.5, None, True], "ü": {"nested": "x"}},
            references=["doc-1", {"page": 3}],
            actor="alice",
        )
        journal.update_settings(SID, {"model": "m-1", "temperature": 0.5})
        journal.add_message(SID, "assistant", "bye")
        journal.add_message(SID, "user", "last")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The pristine log, built once by a real Journal, and the lines the next appends write."""
    folder = tmp_path_factory.mktemp("base")
    root = folder / "journal"
    _build(root)
    (log,) = root.glob("sessions/*/events.jsonl")
    data = log.read_bytes()
    following = []
    for name, content in (("next", "next message"), ("long", "n" * 200)):
        copy = folder / name
        plant(copy, log.relative_to(root), data)
        with Journal(copy) as journal:
            journal.add_message(SID, "user", content)
        following.append((copy / log.relative_to(root)).read_bytes()[len(data) :])
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]  # only \n ends a line
    return Base(log.relative_to(root), data, lines, *following)


def plant(root: Path, rel: Path, data: bytes) -> Path:
    """Write ``data`` as the log at ``rel`` under a new journal root; return its path."""
    path = root / rel
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(data)
    return path


def assert_corrupt(root: Path, path: Path, line: int, offset: int) -> CorruptLogError:
    """Assert every read and every write of a fresh Journal raises CorruptLogError at the spot.

    Writes must refuse before appending anything: the file's bytes stay exactly as they were.
    Returns the error (from the last write) for checks of its reason.
    """
    before = path.read_bytes()
    with Journal(root) as journal:
        operations: dict[str, Callable[[], object]] = {
            "get": lambda: journal.get(SID),
            "events": lambda: list(journal.events(SID)),
            "replay": lambda: journal.replay(SID),
            "add_message": lambda: journal.add_message(SID, "user", "x"),
            "update_settings": lambda: journal.update_settings(SID, {"k": 1}),
            "clear": lambda: journal.clear(SID),
        }
        for name, operation in operations.items():
            with pytest.raises(CorruptLogError) as info:
                operation()
            error = info.value
            where = (error.path, error.line, error.offset)
            assert where == (str(path), line, offset), f"{name}: {error}"
    assert path.read_bytes() == before, "a refused write changed the log"
    return error


def test_base_log_is_sound(base: Base, tmp_path: Path) -> None:
    # Oracle for the fixture itself: the copied log reads back with seqs 1..6, so every failure
    # below comes from the damage the test made, not from the copy.
    root = tmp_path / "journal"
    plant(root, base.rel, base.data)
    with Journal(root) as journal:
        assert [e.seq for e in journal.events(SID)] == [1, 2, 3, 4, 5, 6]
        assert journal.get(SID) == journal.replay(SID)
    assert len(base.lines) == 6
    assert b'"role":"user"' in base.lines[MIDDLE - 1]
    assert len(base.long_next_line) > len(base.next_line)


# -- damage in the middle ------------------------------------------------------------------


def test_every_flipped_byte_of_a_middle_line_is_found_at_that_line(base: Base, tmp_path: Path) -> None:
    # Oracle: flipping any single byte of line 3 (its newline included) with either mask makes
    # every read and write of a fresh Journal raise CorruptLogError naming line 3 and its
    # offset, and the writes leave the file alone. Mask 0x01 keeps ASCII printable (a subtle
    # edit); 0x80 makes invalid UTF-8 (a decoder that is not careful raises something else).
    # Every byte is tried even after a failure, so the report lists all the bad spots at once.
    start = base.offset(MIDDLE)
    line = base.lines[MIDDLE - 1]
    failures: list[str] = []
    for index in range(len(line)):
        for mask in (0x01, 0x80):
            damaged = bytearray(base.data)
            damaged[start + index] ^= mask
            root = tmp_path / f"{index}-{mask}"
            path = plant(root, base.rel, bytes(damaged))
            try:
                assert_corrupt(root, path, MIDDLE, start)
            except Exception as exc:
                context = line[max(0, index - 12) : index + 12]
                failures.append(f"byte {index} ^ {mask:#04x} near {context!r}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} flips not reported as CorruptLogError:\n" + "\n".join(failures)


def test_deleted_middle_line_is_a_gap(base: Base, tmp_path: Path) -> None:
    # Oracle: without line 3, line 3 now holds seq 4: a gap reported at line 3.
    root = tmp_path / "journal"
    lines = list(base.lines)
    del lines[MIDDLE - 1]
    path = plant(root, base.rel, b"".join(lines))
    error = assert_corrupt(root, path, MIDDLE, base.offset(MIDDLE))
    assert "gap" in error.reason


def test_duplicated_line_is_found_at_the_copy(base: Base, tmp_path: Path) -> None:
    # Oracle: line 3 repeated makes line 4 a second seq 3, reported at line 4, whose offset is
    # where the original line 4 started.
    root = tmp_path / "journal"
    lines = list(base.lines)
    lines.insert(MIDDLE, lines[MIDDLE - 1])
    path = plant(root, base.rel, b"".join(lines))
    error = assert_corrupt(root, path, MIDDLE + 1, base.offset(MIDDLE + 1))
    assert "duplicate" in error.reason


def test_swapped_lines_are_found_at_the_first(base: Base, tmp_path: Path) -> None:
    # Oracle: with lines 3 and 4 swapped, line 3 holds seq 4 where seq 3 was expected.
    root = tmp_path / "journal"
    lines = list(base.lines)
    lines[MIDDLE - 1], lines[MIDDLE] = lines[MIDDLE], lines[MIDDLE - 1]
    path = plant(root, base.rel, b"".join(lines))
    error = assert_corrupt(root, path, MIDDLE, base.offset(MIDDLE))
    assert "seq 4" in error.reason


def _reseal(line: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """Apply ``edit`` to a line's sealed part and recompute its hash (the forger's move)."""
    cut = line.rfind(HASH_KEY)
    sealed = edit(line[:cut])
    rest = line[cut + len(HASH_KEY) + 64 :]
    return sealed + HASH_KEY + hashlib.sha256(sealed).hexdigest().encode() + rest


def _forge_role(line: bytes) -> bytes:
    return _reseal(line, lambda sealed: sealed.replace(b'"role":"user"', b'"role":"root"', 1))


def _forge_content(line: bytes) -> bytes:
    # A consistent new body: new content, its content_sha256 under the same salt, new hash.
    parsed = json.loads(line)
    salt = bytes.fromhex(parsed["body"]["salt"])
    new_content = "I never said that"
    old_digest = parsed["data"]["content_sha256"].encode()
    new_digest = hashlib.sha256(salt + new_content.encode()).hexdigest().encode()
    body = json.dumps({"salt": parsed["body"]["salt"], "content": new_content}, separators=(",", ":"))
    resealed = _reseal(line[: line.rfind(b',"body":')], lambda s: s.replace(old_digest, new_digest, 1))
    return resealed + b',"body":' + body.encode() + b"}"


@pytest.mark.parametrize("forge", [_forge_role, _forge_content], ids=["role", "content"])
def test_edited_line_with_recomputed_hash_breaks_the_chain(
    base: Base, tmp_path: Path, forge: Callable[[bytes], bytes]
) -> None:
    # Oracle: the forged line 3 is valid on its own (a log ending with it reads fine and shows
    # the forgery), so only the chain can catch it: line 4's prev no longer matches, and the
    # error names line 4 (at its new offset) with a reason about the chain.
    forged = forge(base.without_newline(MIDDLE)) + b"\n"
    assert forged != base.lines[MIDDLE - 1]
    head = b"".join(base.lines[: MIDDLE - 1]) + forged
    alone = tmp_path / "alone"
    plant(alone, base.rel, head)
    with Journal(alone) as journal:
        last = journal.get(SID).messages[-1]
        assert (last.role, last.content) != ("user", 'héllo\n"world" \\ ✓ \u2028 end')

    root = tmp_path / "journal"
    path = plant(root, base.rel, head + b"".join(base.lines[MIDDLE:]))
    error = assert_corrupt(root, path, MIDDLE + 1, len(head))
    assert "chain" in error.reason


# -- hostile lines -------------------------------------------------------------------------

_SUITE = SHARED / "data" / "jsontestsuite" / "test_parsing"
HOSTILE_FILES = sorted(p.name for p in _SUITE.iterdir()) if _SUITE.is_dir() else ["(suite not present)"]


def _sealed_line(base: Base, seq: int, data: bytes) -> bytes:
    """A line with a correct seq, prev and hash whose ``data`` member is ``data`` verbatim."""
    prev_line = base.without_newline(seq - 1)
    at = prev_line.rfind(HASH_KEY) + len(HASH_KEY)
    prev = prev_line[at : at + 64]
    sealed = (
        b'{"v":1,"seq":%d,"type":"message_added","at":"2025-01-01T00:00:00Z","actor":null,"data":' % seq
        + data
        + b',"prev":"'
        + prev
        + b'"'
    )
    return sealed + HASH_KEY + hashlib.sha256(sealed).hexdigest().encode() + b'"}'


def _with_body(base: Base, body: bytes) -> bytes:
    """Line MIDDLE, sealed part and hash intact, with ``body`` as its body value verbatim."""
    line = base.without_newline(MIDDLE)
    end = line.rfind(HASH_KEY) + len(HASH_KEY) + 64
    return line[:end] + b'","body":' + body + b"}"


def _insert_at_middle(base: Base, line: bytes) -> bytes:
    return b"".join(base.lines[: MIDDLE - 1]) + line + b"\n" + b"".join(base.lines[MIDDLE - 1 :])


EMBEDDINGS: dict[str, Callable[[Base, bytes], bytes]] = {
    # the file's bytes as a line of their own: stopped by the first checks
    "raw": lambda base, hostile: hostile,
    # as the data of a line with a valid hash, seq and prev: only the JSON decoder can object
    "data": lambda base, hostile: _sealed_line(base, MIDDLE, hostile),
    # as the (unsealed) body of a genuine line: only the body checks can object
    "body": _with_body,
}


@pytest.mark.parametrize("embedding", list(EMBEDDINGS))
@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_json_as_a_middle_line_is_corrupt_never_another_error(
    base: Base, tmp_path: Path, name: str, embedding: str
) -> None:
    # Oracle: whatever the JSONTestSuite file holds (invalid JSON, huge numbers, deep nesting,
    # bad UTF-8, NUL, newlines), inserted as line 3 it is reported as CorruptLogError at line 3
    # (a newline inside it only splits it, and the first piece is line 3 already), by reads
    # and writes alike; any other exception type escaping is a failure.
    hostile = (shared_path("data", "jsontestsuite", "test_parsing") / name).read_bytes()
    root = tmp_path / "journal"
    path = plant(root, base.rel, _insert_at_middle(base, EMBEDDINGS[embedding](base, hostile)))
    assert_corrupt(root, path, MIDDLE, base.offset(MIDDLE))


def test_huge_format_version_is_corrupt_not_a_plain_valueerror(base: Base, tmp_path: Path) -> None:
    # Oracle: a line claiming version 99999...9 (5000 digits) is damage like any other; the
    # reader must not crash converting it (Python refuses int() of > 4300 digits).
    root = tmp_path / "journal"
    path = plant(root, base.rel, _insert_at_middle(base, b'{"v":' + b"9" * 5000 + b',"seq":3}'))
    assert_corrupt(root, path, MIDDLE, base.offset(MIDDLE))


def test_deep_nesting_in_a_hashed_line_is_corrupt_not_a_recursionerror(base: Base, tmp_path: Path) -> None:
    # Oracle: a per-line hash is no secret, so anyone can seal a line whose data is 100000
    # nested arrays; it must be reported as CorruptLogError at that line, not crash the reader.
    root = tmp_path / "journal"
    deep = b"[" * 100_000 + b"]" * 100_000
    path = plant(root, base.rel, _insert_at_middle(base, _sealed_line(base, MIDDLE, deep)))
    assert_corrupt(root, path, MIDDLE, base.offset(MIDDLE))


# -- torn tail -----------------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["fresh", "cached"])
@pytest.mark.parametrize("keep", ["1 byte", "half", "all but the newline"])
def test_torn_tail_is_ignored_by_readers_and_cut_by_the_next_writer(
    base: Base, tmp_path: Path, caplog: pytest.LogCaptureFixture, keep: str, writer: str
) -> None:
    # Oracle: a crash mid-write leaves a prefix of a real line without its newline. Readers
    # (fresh, or holding a cached state from before) return exactly the state without it and
    # never change the file; the next writer (fresh, or the cached one) logs one warning on
    # logger "journal" naming the file and the byte count, cuts the tail, and appends right
    # after the last complete line: the file is then the old log plus one whole line. A prefix
    # that is the whole line but its newline is provably intact: the writer completes it and
    # keeps the event (one warning naming the file), then appends after it.
    size = {"1 byte": 1, "half": len(base.next_line) // 2, "all but the newline": len(base.next_line) - 1}
    partial = base.next_line[: size[keep]]
    root = tmp_path / "journal"
    path = plant(root, base.rel, base.data)
    with Journal(root) as cached:
        before = cached.get(SID)
        with path.open("ab") as f:
            f.write(partial)
        torn = path.read_bytes()
        with Journal(root) as reader:
            assert reader.get(SID) == before
            assert [e.seq for e in reader.events(SID)] == [1, 2, 3, 4, 5, 6]
            assert reader.replay(SID) == before
        assert cached.get(SID) == before
        assert path.read_bytes() == torn, "a reader changed the file"

        with Journal(root) as fresh, caplog.at_level(logging.WARNING, logger="journal"):
            journal = cached if writer == "cached" else fresh
            message = journal.add_message(SID, "user", "after the crash")
    whole = keep == "all but the newline"
    assert message.seq == (8 if whole else 7)
    warnings = [r for r in caplog.records if r.name == "journal"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    text = warnings[0].getMessage()
    assert str(path) in text, text
    assert ("completed" if whole else f"{len(partial)} bytes") in text, text
    data = path.read_bytes()
    assert data.startswith(base.data + (base.next_line if whole else b""))
    assert data.endswith(b"\n")
    assert data.count(b"\n") == (8 if whole else 7), "the file still holds a partial line"
    with Journal(root) as after:
        events = list(after.events(SID))
    assert [e.seq for e in events] == list(range(1, message.seq + 1))
    assert isinstance(events[-1], MessageAdded)
    assert events[-1].content == "after the crash"


def test_torn_first_line_means_the_session_does_not_exist_yet(base: Base, tmp_path: Path) -> None:
    # Oracle: a create that crashed mid-write never returned, so the session does not exist:
    # reads say so (not "corrupt"), and a create then succeeds on a clean file.
    root = tmp_path / "journal"
    path = plant(root, base.rel, base.lines[0][:40])
    with Journal(root) as journal:
        assert not journal.exists(SID)
        with pytest.raises(SessionNotFoundError):
            journal.get(SID)
        assert list(journal.sessions()) == []
        assert journal.create(SID).version == 1
    data = path.read_bytes()
    assert data.count(b"\n") == 1
    assert data.endswith(b"\n")


def test_reader_that_cached_a_torn_tail_sees_the_append_that_replaced_it(base: Base, tmp_path: Path) -> None:
    # Oracle: after another Journal cut a torn tail and appended, a reader's next `get` must
    # show the new event. The reader's cache is keyed by (device, inode, size, mtime). Here the
    # torn tail has exactly the length of the line that replaces it (a prefix of a longer line),
    # and the mtime is the same before and after, as on a file system with 1-second timestamps
    # when both writes fall in one second: the log changed, but its stamp did not.
    root = tmp_path / "journal"
    path = plant(root, base.rel, base.data)
    with path.open("ab") as f:
        f.write(base.long_next_line[: len(base.next_line)])
    second = os.stat(path).st_mtime_ns // 1_000_000_000 * 1_000_000_000
    os.utime(path, ns=(second, second))
    with Journal(root) as reader, Journal(root) as writer:
        assert reader.get(SID).version == 6
        message = writer.add_message(SID, "user", "next message")
        assert path.stat().st_size == len(base.data) + len(base.next_line)  # same size as torn
        os.utime(path, ns=(second, second))
        assert reader.get(SID).version == message.seq, "stale state after the torn tail's repair"


# -- hostile session ids -------------------------------------------------------------------

HOSTILE_IDS = [
    "../x",
    "../../../../../../etc/passwd",
    "a/b",
    "a\\b",
    "/abs/olute",
    "..",
    ".",
    ".hidden",
    "~",
    "~root",
    "a~b",
    "CON",
    "nul",
    "NUL.txt",
    "com1",
    "UPPER",
    "upper",
    "Upper",
    "x" * 1000,
    "Ω" * 1024,
    "日本語のセッション",
    "emoji 🎉",
    "e\u0301",
    "\u00e9",
    "line\nbreak",
    "cr\rreturn",
    "tab\there",
    "\u2028",
    "\x01\x1f\x7f",
    " ",
    "with space ",
    "*?<>|:\"'",
    "-rf",
    "sessions",
    "locks",
    "events.jsonl",
]


def test_hostile_session_ids_stay_inside_the_root(tmp_path: Path) -> None:
    # Oracle: every id names its own session (get returns it with its own message, and ids
    # differing only in case or Unicode normalisation are distinct), sessions() returns
    # exactly the original ids (also from a fresh Journal), nothing appears outside the root,
    # nothing under it is a symlink or resolves outside it, files are 0600 and folders 0700.
    root = tmp_path / "journal"
    with Journal(root) as journal:
        for sid in HOSTILE_IDS:
            journal.create(sid)
            journal.add_message(sid, "user", f"in {sid!r}")
        assert journal.get("UPPER") != journal.get("upper")
    with Journal(root) as fresh:
        listed = list(fresh.sessions())
        assert sorted(listed) == sorted(HOSTILE_IDS)
        for sid in HOSTILE_IDS:
            state = fresh.get(sid)
            assert state.id == sid
            assert [m.content for m in state.messages] == [f"in {sid!r}"]
    assert os.listdir(tmp_path) == ["journal"]
    real_root = root.resolve()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            assert not path.is_symlink(), path
            assert path.resolve().is_relative_to(real_root), path
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode == (0o700 if name in dirs else 0o600), f"{path}: {oct(mode)}"


INVALID_IDS: list[Any] = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "ok\udfff",
    "x" * 1025,
    123,
    1.5,
    b"bytes",
    ["a"],
    None,
]


@pytest.mark.parametrize("bad", INVALID_IDS, ids=lambda bad: repr(bad)[:24])
def test_invalid_session_ids_are_refused_and_create_nothing(tmp_path: Path, bad: Any) -> None:
    # Oracle: every operation taking an id raises InvalidSessionIdError for it (None only
    # where it is not "choose a random id"), and the root is never even created.
    root = tmp_path / "journal"
    with Journal(root) as journal:
        operations: dict[str, Callable[[], object]] = {
            "get": lambda: journal.get(bad),
            "exists": lambda: journal.exists(bad),
            "get_or_create": lambda: journal.get_or_create(bad),
            "add_message": lambda: journal.add_message(bad, "user", "x"),
            "update_settings": lambda: journal.update_settings(bad, {"k": 1}),
            "clear": lambda: journal.clear(bad),
            "delete": lambda: journal.delete(bad),
            "events": lambda: journal.events(bad),
            "replay": lambda: journal.replay(bad),
        }
        if bad is not None:
            operations["create"] = lambda: journal.create(bad)
        for name, operation in operations.items():
            with pytest.raises(InvalidSessionIdError):
                operation()
            assert not root.exists(), f"{name} created files for an invalid id"


def test_a_damaged_last_newline_is_damage_not_a_torn_write(base: Base, tmp_path: Path) -> None:
    # Oracle: a writer's single write ends with the newline, so a whole valid line followed by
    # another byte cannot be a torn write: the acknowledged event must not vanish. Reads and
    # writes raise CorruptLogError at that line, and nothing cuts the file.
    root = tmp_path / "journal"
    damaged = base.data[:-1] + b"*"
    path = plant(root, base.rel, damaged)
    last = base.data[:-1].rfind(b"\n") + 1
    with Journal(root) as journal:
        with pytest.raises(CorruptLogError) as info:
            journal.get(SID)
        assert (info.value.line, info.value.offset) == (6, last)
        with pytest.raises(CorruptLogError):
            journal.add_message(SID, "user", "after")
    assert path.read_bytes() == damaged
