"""Chunked snapshots: a long session's snapshot writes only what is new, and is never trusted
over the log.

Chunks close at ``CHUNK_BYTES``, set small here so that a few hundred short messages make a
dozen chunks. Oracles: ``replay`` (a fold of the whole log, which never reads a snapshot), the
bytes and inodes of the chunk files as the file system reports them, and the content of a
redacted message searched for in every byte of the session folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from journal import Journal
from journal.backends.files.fsio import Folder
from journal.backends.files.storage import FileReader
from journal.core import snapshot
from journal.core.snapshot import decode_snapshot
from journal.engine import loading
from tests.helpers_compaction import session_dir, snapshot_names

SID = "s"
CHUNK = 2048
TEXT = "a message of some sixty characters, give or take a few: "


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot, "CHUNK_BYTES", CHUNK)


def chunk_files(root: Path) -> dict[str, os.stat_result]:
    folder = session_dir(root, SID)
    return {p.name: p.stat() for p in folder.iterdir() if p.name.endswith(".snapc")}


def write(journal: Journal, start: int, count: int) -> None:
    for n in range(start, start + count):
        journal.add_message(SID, "user", f"{TEXT}{n}")


def test_each_snapshot_writes_only_the_chunks_that_are_new(root: Path) -> None:
    # Oracle: a chunk file, once written, keeps its inode and mtime through every later
    # snapshot (never rewritten), every one that existed stays (the messages did not change),
    # and the number of chunks follows the bytes of the messages, not the number of snapshots.
    with Journal(root, snapshot_every=40, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 39)  # the first snapshot, at seq 40
        seen = chunk_files(root)
        for round_ in range(1, 10):
            write(journal, 40 * round_, 40)
            now = chunk_files(root)
            for name, st in seen.items():
                assert name in now, f"chunk {name} was deleted though its messages stand"
                assert (now[name].st_ino, now[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
            seen = now
        assert snapshot_names(root, SID) == ["snapshot-00000000000000000400.snap"]
    message_bytes = 400 * (len(TEXT) + 30)  # each message's encoding: text, id, time, role
    assert len(seen) >= message_bytes // CHUNK // 2, f"only {len(seen)} chunks"
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)


def test_a_chunked_snapshot_reads_back_as_the_log_says(root: Path) -> None:
    # Oracle: the state decoded from the snapshot file and its chunks, and a fresh Journal's
    # get() (which uses the snapshot), both equal a full replay of the log.
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 99)
        journal.update_settings(SID, {"model": "m"})
        write(journal, 99, 100)
    folder = session_dir(root, SID)
    [name] = snapshot_names(root, SID)
    state, head = decode_snapshot(
        (folder / name).read_bytes(), chunk=lambda ref: (folder / ref.name).read_bytes()
    )
    assert chunk_files(root), "no chunk: the test would not test chunks"
    with Journal(root) as fresh:
        assert state == fresh.replay(SID, at=head.seq)
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.get(SID).version == 201


def test_a_second_journal_builds_on_the_chunks_it_read(root: Path) -> None:
    # Oracle: after a fresh Journal read the session from its chunked snapshot and wrote on,
    # its snapshot names the same first chunks and rewrote none of them.
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 99)
    before = chunk_files(root)
    assert before
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as other:
        other.get(SID)
        write(other, 100, 100)
    after = chunk_files(root)
    for name, st in before.items():
        assert (after[name].st_ino, after[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)


@pytest.mark.parametrize("damage", ["flip", "delete", "truncate"])
def test_a_damaged_or_missing_chunk_makes_the_snapshot_ignored(
    root: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    # Oracle: a fresh Journal returns what a full replay returns, logs a warning naming the
    # snapshot and the chunk, and verify reports the snapshot as damaged.
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 149)
    folder = session_dir(root, SID)
    victim = folder / sorted(chunk_files(root))[0]
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
    elif damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-10])
    caplog.set_level(logging.WARNING, logger="journal")
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.get(SID).version == 150
        report = fresh.verify(SID)
    warnings = [r.getMessage() for r in caplog.records if "snapshot ignored" in r.getMessage()]
    assert warnings
    assert victim.name in warnings[0], warnings
    assert [p.kind for p in report.problems] == ["snapshot_damaged"], report.problems
    assert victim.name in report.problems[0].message


def test_redaction_leaves_no_chunk_holding_the_content(root: Path) -> None:
    # Oracle: the redacted content appears nowhere in the session folder's bytes afterwards,
    # while it was in a chunk before; the state still equals a replay.
    private = "the number to call is 8675309 and it must go"
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as journal:
        journal.create(SID)
        message = journal.add_message(SID, "user", private)
        write(journal, 0, 150)

        def stored() -> bytes:
            return b"".join(p.read_bytes() for p in session_dir(root, SID).rglob("*") if p.is_file())

        assert any(private.encode() in (session_dir(root, SID) / n).read_bytes() for n in chunk_files(root))
        journal.redact_message(SID, message.id, actor="dpo", reason="request")
        assert private.encode() not in stored()
        write(journal, 200, 100)  # snapshots again, after the redaction
        assert private.encode() not in stored()
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.verify(SID).ok


def test_pruning_and_deleting_leave_no_chunk_behind(root: Path) -> None:
    # Oracle: the folder listing.
    with Journal(root, snapshot_every=100, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 150)
        assert chunk_files(root)
        journal.compact(SID, prune=True)
        assert not chunk_files(root)
        assert journal.get(SID) == journal.replay(SID)
        write(journal, 150, 150)
        assert chunk_files(root)
        journal.delete(SID)
    assert not session_dir(root, SID).exists() or not chunk_files(root)


@pytest.mark.parametrize("when", ["before the snapshot", "before its chunks"])
def test_a_snapshot_replaced_while_it_is_read_is_looked_for_again_not_ignored(
    root: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    # Oracle: a replay of the log at the version read. Readers take no lock: here another
    # Journal edits the first message (its chunk is rewritten, the old one and the old
    # snapshot removed) just as a fresh Journal starts reading the snapshot or its chunks.
    # The reader must find the newer snapshot, without a warning and without a full replay.
    with Journal(root, snapshot_every=1, snapshot_bytes=0) as journal:
        journal.create(SID)
        write(journal, 0, 120)
    first = None
    raced: list[str] = []

    def race() -> None:
        if not raced:
            raced.append(when)
            with Journal(root, snapshot_every=1, snapshot_bytes=0) as other:
                assert first is not None
                other.edit_message(SID, first, "edited while a reader read the snapshot")

    real_read = Folder.read

    def read(self: Folder, name: str) -> bytes:
        if name.endswith(".snap" if when == "before the snapshot" else ".snapc"):
            race()
        return real_read(self, name)

    with Journal(root) as probe:
        first = probe.get(SID).messages_view[0].id
    replays: list[int] = []
    real_history = FileReader.history

    def history(self: FileReader, *args: object, **kwargs: object) -> object:
        replays.append(1)
        return real_history(self, *args, **kwargs)  # type: ignore[arg-type]

    caplog.set_level(logging.WARNING, logger="journal")
    monkeypatch.setattr(Folder, "read", read)
    monkeypatch.setattr(FileReader, "history", history)
    # The rescan alone must see it through: no read again from the top after an error.
    monkeypatch.setattr(loading, "_RETRIES", 0)
    with Journal(root) as fresh:
        state = fresh.get(SID)
        assert replays == []
    monkeypatch.undo()
    assert raced == [when]
    assert state.messages_view[0].content == "edited while a reader read the snapshot"
    with Journal(root) as check:
        assert check.replay(SID, at=state.version) == state
    assert [r.getMessage() for r in caplog.records if "snapshot" in r.getMessage()] == []
