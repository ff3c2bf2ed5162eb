"""Snapshots on real files: written on cadence, used by cold loads, never trusted over the log.

Every check reads the files with a fresh Journal that shares no cache with the writer. The
oracle for "the right state" is ``replay`` (a fold of the whole log, which never looks at a
snapshot), or a state recorded before the files were touched.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from journal import CorruptLogError, Journal, MessageAdded, Session
from journal.core.codec import decode, encode
from journal.core.snapshot import decode_snapshot
from tests.helpers_compaction import (
    copy_root,
    flip,
    line_ends,
    log_path,
    session_dir,
    snapshot_name,
    snapshot_names,
    writer_worker,
)

SID = "s"
CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0  # only turns a hang into a failure
# A snapshot file starts with an 8-byte magic and the 32-byte SHA-256 of the MessagePack
# document that follows (journal/snapshot.py).
HEADER = 40


def replayed_at(root: Path, seq: int) -> Session:
    with Journal(root) as fresh:
        return fresh.replay(SID, at=seq)


def assert_snapshot_describes_the_log(root: Path, seq: int) -> None:
    """The snapshot at ``seq`` holds the state after event ``seq`` and where its line ends.

    Oracle: ``replay(at=seq)`` of a fresh Journal, and the offset after line ``seq`` of the log.
    """
    state, head = decode_snapshot((session_dir(root, SID) / snapshot_name(seq)).read_bytes())
    assert state == replayed_at(root, seq)
    assert head.seq == seq
    assert head.cursor[0] == line_ends(log_path(root, SID).read_bytes())[seq - 1]


# -- when snapshots are written -------------------------------------------------------------


def test_snapshot_every_writes_one_at_each_multiple_and_keeps_only_the_newest(root: Path) -> None:
    # Oracle: with snapshot_every=5 and one writer, a snapshot is due whenever 5 events were
    # appended since the last one: after seqs 5, 10, 15. It is written before add_message
    # returns, and each replaces the one before, so after seq n the folder holds exactly
    # snapshot-<5 * (n // 5)> (none before seq 5).
    with Journal(root, snapshot_every=5, snapshot_bytes=0) as journal:
        journal.create(SID)
        assert snapshot_names(root, SID) == []
        for seq in range(2, 18):
            journal.add_message(SID, "user", f"message {seq}")
            expected = [] if seq < 5 else [snapshot_name(5 * (seq // 5))]
            assert snapshot_names(root, SID) == expected, f"after seq {seq}"
    assert_snapshot_describes_the_log(root, 15)


def test_snapshot_bytes_writes_one_each_time_the_log_grew_that_much(root: Path) -> None:
    # Oracle, computed from the log bytes alone: walking the line ends, a snapshot is due at the
    # first line ending at least 700 bytes after the previous snapshot's line end (0 at first).
    # Contents of varying length make the due seqs irregular. Only the newest is on disk.
    with Journal(root, snapshot_every=0, snapshot_bytes=700) as journal:
        journal.create(SID)
        for seq in range(2, 30):
            journal.add_message(SID, "user", "x" * (17 * seq % 230))
            due: list[int] = []
            mark = 0
            for line, end in enumerate(line_ends(log_path(root, SID).read_bytes()), 1):
                if end - mark >= 700:
                    due.append(line)
                    mark = end
            expected = [snapshot_name(due[-1])] if due else []
            assert snapshot_names(root, SID) == expected, f"after seq {seq}"
    assert len(due) >= 3, "the workload should cross the byte mark several times"
    assert_snapshot_describes_the_log(root, due[-1])


def test_no_snapshot_without_a_policy_and_compact_forces_one(root: Path) -> None:
    # Oracle: with both policies off nothing is written automatically; compact(sid) writes
    # snapshot-<version> (the state after the last event), reports it, and replaces the
    # previous snapshot.
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(6):
            journal.add_message(SID, "user", f"m{i}")
        assert snapshot_names(root, SID) == []
        result = journal.compact(SID)
        assert [tuple(r) for r in result] == [(SID, 7, 0, 0)]
        assert snapshot_names(root, SID) == [snapshot_name(7)]
        journal.update_settings(SID, {"model": "m"})
        journal.add_message(SID, "user", "more")
        assert snapshot_names(root, SID) == [snapshot_name(7)]
        journal.compact(SID)
        assert snapshot_names(root, SID) == [snapshot_name(9)]
    assert_snapshot_describes_the_log(root, 9)


def _varied_history(journal: Journal) -> None:
    """Every kind of event, so a snapshot has messages, settings and a clear to get right."""
    journal.create(SID, actor="setup")
    journal.add_message(SID, "user", "a")
    journal.update_settings(SID, {"model": "m1", "nested": {"k": [1, 2.5, None]}})
    journal.add_message(
        SID,
        "user",
        'héllo\n"world" \u2028 ✓',
        metadata={"lang": "en", "n": [1, {"x": True}]},
        references=["doc", {"page": 3}],
        actor="alice",
    )
    journal.clear(SID)
    journal.add_message(SID, "assistant", "b")
    journal.update_settings(SID, {"t": 0.5}, remove=["model"])
    journal.add_message(SID, "user", "c", metadata={"empty": {}})
    journal.add_message(SID, "user", "d")


@pytest.mark.parametrize("snapshot", ["none", "at-the-end", "mid-log", "forced"])
def test_fresh_get_equals_replay_with_or_without_snapshot(root: Path, snapshot: str) -> None:
    # Oracle: the state the writer returned last, and a fresh replay of the whole log, must both
    # equal a fresh get(), which starts from the snapshot when there is one.
    every = {"none": 0, "at-the-end": 9, "mid-log": 6, "forced": 0}[snapshot]
    with Journal(root, snapshot_every=every, snapshot_bytes=0) as journal:
        _varied_history(journal)
        if snapshot == "forced":
            journal.compact(SID)
        written = journal.get(SID)
    expected = {"none": [], "at-the-end": [9], "mid-log": [6], "forced": [9]}[snapshot]
    assert snapshot_names(root, SID) == [snapshot_name(s) for s in expected]
    with Journal(root) as fresh:
        assert fresh.get(SID) == written
        assert fresh.replay(SID) == written
        assert written.version == 9
        assert [m.content for m in written.messages] == ["b", "c", "d"]
        assert dict(written.settings) == {"nested": {"k": (1, 2.5, None)}, "t": 0.5}


def test_cold_load_reads_only_the_log_after_the_snapshot(root: Path) -> None:
    # Oracle: damage a byte of line 3 while a snapshot stands at seq 8. A fresh get() reads only
    # the lines after 8, so it still returns the state recorded before the damage; replay() and
    # events() fold from line 1, so they raise CorruptLogError at line 3. Control: without the
    # snapshot, get() must raise too (so it really was the snapshot that was used).
    with Journal(root, snapshot_every=8, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(11):
            journal.add_message(SID, "user", f"m{i}")
        before = journal.get(SID)
    assert snapshot_names(root, SID) == [snapshot_name(8)]
    log = log_path(root, SID)
    line3 = line_ends(log.read_bytes())[1]
    flip(log, line3 + 20)  # inside "type":"message_added" of line 3: its hash no longer matches
    with Journal(root) as fresh:
        assert fresh.get(SID) == before
        assert fresh.exists(SID)
        for read in (lambda: fresh.replay(SID), lambda: list(fresh.events(SID))):
            with pytest.raises(CorruptLogError) as info:
                read()
            assert (info.value.path, info.value.line, info.value.offset) == (str(log), 3, line3)
    (session_dir(root, SID) / snapshot_name(8)).unlink()
    with Journal(root) as fresh, pytest.raises(CorruptLogError):
        fresh.get(SID)


# -- across processes -----------------------------------------------------------------------


def _run(spawned: list[BaseProcess], *args: Any) -> None:
    process = CTX.Process(target=writer_worker, args=args, daemon=True)
    process.start()
    spawned.append(process)
    process.join(JOIN_TIMEOUT)
    assert process.exitcode == 0


def test_snapshot_from_another_process_is_used_and_a_cached_reader_follows(
    root: Path, spawned: list[BaseProcess]
) -> None:
    # Oracle: a spawned writer appends m0..m11 (seqs 2..13) with snapshot_every=5, leaving
    # snapshot-10. The parent's reader caches that state; a second writer process appends
    # m12..m20 (seqs 14..22), resuming the cadence from snapshot-10 (snapshots at 15, 20).
    # The cached reader must then see all 22 events, equal to a fresh replay. Finally line 4
    # is damaged: a fresh get() still works (it starts from snapshot-20), replay() raises.
    _run(spawned, str(root), SID, 0, 12, 5)
    assert snapshot_names(root, SID) == [snapshot_name(10)]
    with Journal(root) as reader:
        first = reader.get(SID)
        assert first.version == 13
        assert [m.content for m in first.messages] == [f"m{i}" for i in range(12)]
        _run(spawned, str(root), SID, 12, 9, 5)
        assert snapshot_names(root, SID) == [snapshot_name(20)]
        followed = reader.get(SID)
        assert followed.version == 22
        assert [m.content for m in followed.messages] == [f"m{i}" for i in range(21)]
        with Journal(root) as fresh:
            assert fresh.replay(SID) == followed
        log = log_path(root, SID)
        flip(log, line_ends(log.read_bytes())[2] + 20)
        with Journal(root) as fresh:
            assert fresh.get(SID) == followed
            with pytest.raises(CorruptLogError):
                fresh.replay(SID)
        assert reader.get(SID) == followed


# -- a snapshot is a cache, never the truth --------------------------------------------------


@dataclass(frozen=True)
class Pristine:
    """A root holding session SID (9 events, snapshot at 6) and session "t" (snapshot at 8)."""

    root: Path
    other_root: Path  # another journal whose session SID has 11 different events
    state: Session  # SID's state
    states: dict[int, Session]  # SID replayed at each seq

    @property
    def snapshot(self) -> Path:
        return session_dir(self.root, SID) / snapshot_name(6)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    folder = tmp_path_factory.mktemp("pristine")
    root, other_root = folder / "journal", folder / "other"
    with Journal(root, snapshot_every=6, snapshot_bytes=0) as journal:
        _varied_history(journal)
    with Journal(root, snapshot_every=8, snapshot_bytes=0) as journal:
        journal.create("t")
        for i in range(7):
            journal.add_message("t", "user", f"t{i}")
    with Journal(other_root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(10):
            journal.add_message(SID, "user", f"other {i}")
    assert snapshot_names(root, SID) == [snapshot_name(6)]
    assert snapshot_names(root, "t") == [snapshot_name(8)]
    with Journal(root) as fresh:
        state = fresh.get(SID)
        states = {k: fresh.replay(SID, at=k) for k in range(1, 10)}
    return Pristine(root, other_root, state, states)


def recraft(data: bytes, **changes: Any) -> bytes:
    """Re-encode a snapshot with some fields of its MessagePack document changed, checksum redone.

    This is what a writer of another format version (or a buggy one) would produce: a file
    whose checksum is right, so only the reader's checks of the contents can reject it.
    """
    document = msgspec.msgpack.decode(data[HEADER:])
    for key, value in changes.items():
        if key == "state_version":
            # The state's own version: nested under "state" in older layouts of the format.
            document.get("state", document)["version"] = value
        else:
            document[key] = value
    payload = msgspec.msgpack.encode(document)
    return data[:8] + hashlib.sha256(payload).digest() + payload


def rewrite_log(data: bytes, seq: int, content: str) -> bytes:
    """The log with message ``seq``'s content replaced (same length) and the chain redone.

    Every line is valid and chained, the file has the same length, but every hash from ``seq``
    on differs: only the snapshot's hash check can tell that its state no longer applies.
    """
    out = []
    prev = "0" * 64
    for line in data.split(b"\n")[:-1]:
        event = decode(line).event
        if event.seq == seq:
            assert isinstance(event, MessageAdded)
            assert len(event.content) == len(content)
            event = msgspec.structs.replace(event, content=content)
        encoded, prev, _ = encode(event, prev)
        out.append(encoded)
    return b"".join(out)


# A damage: given the copied root, break something and return the snapshot file the warning
# must name. Each is paired with the words the warning's reason must contain.
Damage = Callable[[Path, Pristine], Path]


def _snap(root: Path) -> Path:
    return session_dir(root, SID) / snapshot_name(6)


def _truncate(length: int) -> Damage:
    def damage(root: Path, p: Pristine) -> Path:
        data = _snap(root).read_bytes()
        _snap(root).write_bytes(data[: length if length >= 0 else len(data) + length])
        return _snap(root)

    return damage


def _flip_at(offset: int) -> Damage:
    def damage(root: Path, p: Pristine) -> Path:
        size = _snap(root).stat().st_size
        flip(_snap(root), offset if offset >= 0 else size + offset)
        return _snap(root)

    return damage


def _truncate_half(root: Path, p: Pristine) -> Path:
    data = _snap(root).read_bytes()
    _snap(root).write_bytes(data[: len(data) // 2])
    return _snap(root)


def _flip_middle(root: Path, p: Pristine) -> Path:
    flip(_snap(root), _snap(root).stat().st_size // 2, 0x80)
    return _snap(root)


def _replace_with(data: bytes) -> Damage:
    def damage(root: Path, p: Pristine) -> Path:
        _snap(root).write_bytes(data)
        return _snap(root)

    return damage


def _garbage_with_magic(root: Path, p: Pristine) -> Path:
    data = _snap(root).read_bytes()
    _snap(root).write_bytes(data[:8] + bytes(range(256)) * 3)
    return _snap(root)


def _undecodable_with_checksum(root: Path, p: Pristine) -> Path:
    payload = b"\xc1 not msgpack"
    _snap(root).write_bytes(_snap(root).read_bytes()[:8] + hashlib.sha256(payload).digest() + payload)
    return _snap(root)


def _recrafted(**changes: Any) -> Damage:
    def damage(root: Path, p: Pristine) -> Path:
        _snap(root).write_bytes(recraft(_snap(root).read_bytes(), **changes))
        return _snap(root)

    return damage


def _renamed(root: Path, p: Pristine) -> Path:
    target = session_dir(root, SID) / snapshot_name(7)
    _snap(root).rename(target)
    return target


def _other_session_copied_in(root: Path, p: Pristine) -> Path:
    # Session t's snapshot at seq 8 is newer than SID's own (6), so the reader tries it first;
    # it must reject it and fall back to the valid snapshot-6.
    target = session_dir(root, SID) / snapshot_name(8)
    shutil.copyfile(session_dir(root, "t") / snapshot_name(8), target)
    return target


def _directory(root: Path, p: Pristine) -> Path:
    _snap(root).unlink()
    _snap(root).mkdir()
    return _snap(root)


def _log_replaced_by_earlier_copy(root: Path, p: Pristine, lines: int = 4) -> Path:
    # The log is append-only, so an earlier copy of it is a prefix: here its first lines.
    log = log_path(root, SID)
    data = log.read_bytes()
    log.write_bytes(data[: line_ends(data)[lines - 1]] if lines else b"")
    return _snap(root)


def _log_replaced_by_another(root: Path, p: Pristine) -> Path:
    # Another journal's session of the same id, with more events: long enough to reach the
    # hash check, but with other hashes everywhere.
    shutil.copyfile(log_path(p.other_root, SID), log_path(root, SID))
    assert log_path(root, SID).stat().st_size >= line_ends(log_path(p.root, SID).read_bytes())[5]
    return _snap(root)


def _log_rewritten_consistently(root: Path, p: Pristine) -> Path:
    log = log_path(root, SID)
    data = log.read_bytes()
    rewritten = rewrite_log(data, 6, "Z")
    assert len(rewritten) == len(data)
    log.write_bytes(rewritten)
    return _snap(root)


CASES: dict[str, tuple[Damage, tuple[str, ...]]] = {
    "zero-length": (_replace_with(b""), ("bad magic",)),
    "truncated-4": (_truncate(4), ("bad magic",)),
    "truncated-8": (_truncate(8), ("checksum mismatch",)),
    "truncated-39": (_truncate(39), ("checksum mismatch",)),
    "truncated-40": (_truncate(40), ("checksum mismatch",)),
    "truncated-41": (_truncate(41), ("checksum mismatch",)),
    "truncated-half": (_truncate_half, ("checksum mismatch",)),
    "truncated-last-byte": (_truncate(-1), ("checksum mismatch",)),
    "flip-magic-0": (_flip_at(0), ("bad magic",)),
    "flip-magic-7": (_flip_at(7), ("bad magic",)),
    "flip-checksum-8": (_flip_at(8), ("checksum mismatch",)),
    "flip-checksum-39": (_flip_at(39), ("checksum mismatch",)),
    "flip-payload-40": (_flip_at(40), ("checksum mismatch",)),
    "flip-payload-41": (_flip_at(41), ("checksum mismatch",)),
    "flip-payload-middle": (_flip_middle, ("checksum mismatch",)),
    "flip-payload-last": (_flip_at(-1), ("checksum mismatch",)),
    "garbage": (_replace_with(b"garbage, not a snapshot\n" * 20), ("bad magic",)),
    "garbage-after-magic": (_garbage_with_magic, ("checksum mismatch",)),
    "undecodable-payload": (_undecodable_with_checksum, ("undecodable",)),
    "format-version-2": (_recrafted(v=2), ("format version 2",)),
    "kind-base": (_recrafted(kind="base"), ("'base'",)),
    "state-version-mismatch": (_recrafted(state_version=5), ("does not match seq",)),
    "negative-hash-at": (_recrafted(hash_at=-1), ("chain hash disagrees",)),
    "renamed-to-another-seq": (_renamed, ("holds seq 6",)),
    "another-session-copied-in": (_other_session_copied_in, ("stale",)),
    "unreadable": (_directory, ("unreadable",)),
    "log-replaced-by-another": (_log_replaced_by_another, ("stale",)),
    "log-rewritten-consistently": (_log_rewritten_consistently, ("stale", "chain hash disagrees")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_snapshot_is_ignored_with_a_warning(
    pristine: Pristine, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    # Oracle: whatever is wrong with the snapshot, a fresh Journal returns exactly what a full
    # replay of the (possibly replaced) log returns: when the log was untouched that is the
    # pristine state; when the log was replaced it differs from the pristine state (so using
    # the snapshot would have been visible). Each read logs a WARNING on "journal" naming the
    # snapshot file and the reason. Nothing raises, and a write appends right after the last
    # event of the log as it now is.
    damage, reasons = CASES[case]
    assert pristine.snapshot.stat().st_size > 2 * HEADER  # so every cut and flip lands as named
    root = copy_root(pristine.root, tmp_path / "journal")
    bad = damage(root, pristine)
    log_changed = log_path(root, SID).read_bytes() != log_path(pristine.root, SID).read_bytes()
    caplog.set_level(logging.WARNING, logger="journal")
    with Journal(root) as fresh:
        got = fresh.get(SID)
        full = fresh.replay(SID)
        assert got == full
        assert [e.seq for e in fresh.events(SID)] == list(range(1, full.version + 1))
        if log_changed:
            assert got != pristine.state
        else:
            assert got == pristine.state
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "journal" and r.levelno == logging.WARNING
    ]
    named = [w for w in warnings if str(bad) in w and "snapshot ignored" in w]
    assert named, f"no warning naming {bad}: {warnings}"
    assert all(reason in named[0] for reason in reasons), named[0]
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as writer:
        message = writer.add_message(SID, "user", "after")
        assert message.seq == full.version + 1
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.get(SID).version == full.version + 1


def test_missing_snapshot_means_a_full_replay_without_warnings(
    pristine: Pristine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Oracle: deleting the cache is always allowed; the state comes back from the log alone
    # and there is nothing to warn about.
    root = copy_root(pristine.root, tmp_path / "journal")
    _snap(root).unlink()
    caplog.set_level(logging.WARNING, logger="journal")
    with Journal(root) as fresh:
        assert fresh.get(SID) == pristine.state
        assert fresh.replay(SID) == pristine.state
    assert [r for r in caplog.records if r.name == "journal"] == []


def test_unusable_newest_snapshot_falls_back_to_an_older_valid_one(
    pristine: Pristine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Oracle: a damaged snapshot-8 beside the valid snapshot-6 is skipped (warned about) and
    # snapshot-6 is used: proven by damaging log line 3, which only a full replay reads.
    root = copy_root(pristine.root, tmp_path / "journal")
    newer = session_dir(root, SID) / snapshot_name(8)
    newer.write_bytes(_snap(root).read_bytes()[:-3])
    log = log_path(root, SID)
    flip(log, line_ends(log.read_bytes())[1] + 20)
    caplog.set_level(logging.WARNING, logger="journal")
    with Journal(root) as fresh:
        assert fresh.get(SID) == pristine.state
        with pytest.raises(CorruptLogError):
            fresh.replay(SID)
    assert any(str(newer) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("lines", [0, 4, 5])
def test_log_cut_below_a_snapshot_is_damage_and_no_writer_appends_under_it(
    pristine: Pristine, tmp_path: Path, lines: int
) -> None:
    # Oracle: the snapshot at seq 6 proves events 1..6 were written; a log cut back to fewer
    # lines (a restored backup, a truncation) lost some of them. Serving the shorter log would
    # hide the loss, and letting a writer append seq 5 or 6 would fork the history that the
    # snapshot (and any anchor taken then) records. So reads and writes raise, naming the
    # snapshot and both seqs, and the files stay as they are; verify reports it and repair
    # quarantines the snapshot, after which the session continues from what the log holds.
    root = copy_root(pristine.root, tmp_path / "journal")
    _log_replaced_by_earlier_copy(root, pristine, lines)
    before = log_path(root, SID).read_bytes()
    with Journal(root) as fresh:
        for call in (lambda: fresh.get(SID), lambda: fresh.add_message(SID, "user", "fork")):
            with pytest.raises(CorruptLogError) as info:
                call()
            assert info.value.path == str(_snap(root))
            assert f"up to seq 6 but the active log ends at seq {lines}" in info.value.reason
        assert log_path(root, SID).read_bytes() == before
        report = fresh.verify(SID)
        assert [p.kind for p in report.problems] == ["truncated"]
        fresh.repair(SID)
        assert fresh.verify(SID).ok
        if lines == 0:
            return  # nothing of the session is left to read: repair said so (kept 0)
        assert fresh.get(SID) == pristine.states[lines]
        assert fresh.add_message(SID, "user", "next").seq == lines + 1


def test_a_snapshot_whose_seq_was_forged_is_not_served(pristine: Pristine, tmp_path: Path) -> None:
    # Oracle: a snapshot re-crafted (checksum redone) to claim seq 8 while its head points at
    # the hash and end of the log's last line (seq 9). The hash is where it says, but the line
    # there is not seq 8: served, it would show the state after 6 as version 8, and the next
    # write would reuse seq 9. The reader must check the seq of the log's own line at that
    # position and fall back to the log: the pristine state, and the next write is seq 10.
    root = copy_root(pristine.root, tmp_path / "journal")
    data = log_path(root, SID).read_bytes()
    ends = line_ends(data)
    last = decode(data[ends[7] : ends[8] - 1])
    forged = session_dir(root, SID) / snapshot_name(8)
    forged.write_bytes(
        recraft(
            _snap(root).read_bytes(),
            seq=8,
            state_version=8,
            position=ends[8],
            hash=last.hash,
            hash_at=ends[7] + last.hash_at,
        )
    )
    _snap(root).unlink()
    with Journal(root) as fresh:
        assert fresh.get(SID) == pristine.state
        assert fresh.add_message(SID, "user", "next").seq == pristine.state.version + 1
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)


def test_consistently_rewritten_log_gives_the_rewritten_content(pristine: Pristine, tmp_path: Path) -> None:
    # Oracle: after the log was re-chained with message 6 reading "Z" instead of "b" (same
    # length, valid hashes, same file size), the state must hold "Z": the snapshot at seq 6
    # remembers "b".
    root = copy_root(pristine.root, tmp_path / "journal")
    _log_rewritten_consistently(root, pristine)
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID)
        assert [m.content for m in fresh.get(SID).messages] == ["Z", "c", "d"]
    assert [m.content for m in pristine.state.messages] == ["b", "c", "d"]


@pytest.mark.parametrize("where", ["one-byte-early", "end-of-next-line"])
def test_snapshot_whose_position_is_not_its_line_end_is_ignored(
    pristine: Pristine, tmp_path: Path, where: str
) -> None:
    # Oracle: docs/compaction.md: a reader uses the newest snapshot "that passes every check",
    # and one that ignores every snapshot "folds the whole history instead: slower, never
    # wrong". Here the checksum, seq, chain hash and hash offset are all right, but the
    # recorded position is not where line 6 ends (what a writer bug would leave). Resuming
    # there cannot describe the log, so the reader must fall back to the full replay: the
    # pristine state, without raising on a log that is intact.
    root = copy_root(pristine.root, tmp_path / "journal")
    ends = line_ends(log_path(root, SID).read_bytes())
    position = {"one-byte-early": ends[5] - 1, "end-of-next-line": ends[6]}[where]
    _snap(root).write_bytes(recraft(_snap(root).read_bytes(), position=position))
    with Journal(root) as fresh:
        assert fresh.get(SID) == pristine.state
