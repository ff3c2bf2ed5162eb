"""Crashes during snapshots, pruning and retention: real SIGKILL, and every step one by one.

The promise under test: a compaction may die at any instant, beside writers and other
compactions, and the files still read as the same history (nothing acknowledged lost, seqs
contiguous, ``get() == replay()``), and a later compaction repairs what was left half done.

Two methods: processes SIGKILLed at random moments (what really happens, not reproducible
step by step), and a deterministic sweep that stops a real compaction at each file-system
step, before and after it, by raising from ``os.replace`` / ``Path.unlink`` (the files are
then exactly what a kill at that instant leaves, temporary files included).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest

from journal import HistoryPrunedError, Journal
from tests.conftest import SOAK
from tests.helpers_compaction import (
    appending_snapshot_worker,
    archived_bytes,
    compact_worker,
    copy_root,
    flip,
    leftovers,
    log_path,
    segment_names,
    segment_paths,
    session_dir,
    snapshot_name,
)
from tests.helpers_proc import acknowledged, crash_worker, parse_content

SID = "s"
CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0  # only turns a hang into a failure
READY_TIMEOUT = 60.0
TINY = timedelta(microseconds=1)  # a retention under which every archived event is "old"


def first_active_seq(root: Path) -> int:
    """Seq of the active log's first line: it moves only when a pruning replaced the log."""
    data = log_path(root, SID).read_bytes()
    seq: int = json.loads(data[: data.index(b"\n")])["seq"]
    return seq


def check_segments(root: Path, first: int, last: int) -> None:
    """The segments, in name order, cover exactly ``first``..``last`` with no gap or overlap."""
    expected = first
    for name in segment_names(root, SID):
        a, b = (int(part) for part in name.removesuffix(".jsonl.gz").split("-"))
        assert a == expected, f"segments {segment_names(root, SID)} do not follow on at {expected}"
        expected = b + 1
    assert expected == last + 1, f"segments {segment_names(root, SID)} do not end at {last}"


# -- real SIGKILL ----------------------------------------------------------------------------


@pytest.mark.parametrize("retention", [False, True], ids=["keep-archive", "retention"])
def test_sigkill_during_compaction_and_snapshots_loses_no_acknowledged_append(
    root: Path, tmp_path: Path, spawned: list[BaseProcess], retention: bool
) -> None:
    # Oracle: the ack files. Per round five processes race on one session: two plain
    # appenders (crash_worker, fsync="always"), an appender taking a snapshot every 2 events
    # and pruning past 6 (archive_after), a compact(prune=True) loop (with a 1-microsecond
    # retention in the second variant, so pruned events are folded into the base at once),
    # and a compact() loop (snapshots only). All are SIGKILLed at random moments. Then a fresh
    # Journal must read without error and:
    #   * get() == replay(), and events() is contiguous up to the version (from 1, or from
    #     just after the retention base);
    #   * every acknowledged content is at its seq: checked on get().messages, which holds
    #     every message ever added (nothing here clears), so it also covers events folded
    #     into a base;
    #   * each writer's indices are 0..k-1 in log order with k = acks or acks + 1;
    #   * a fresh Journal appends at version + 1 and compacts, and the checks hold again.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    rounds = 20 if SOAK else 4
    retention_us = 1 if retention else None
    with Journal(root) as journal:
        journal.create(SID)
    promised: dict[int, str] = {}
    children_pruned = False
    for r in range(rounds):
        acks = {
            f"r{r}a": tmp_path / f"ack-{r}-a",
            f"r{r}b": tmp_path / f"ack-{r}-b",
            f"r{r}s": tmp_path / f"ack-{r}-s",
        }
        start = CTX.Barrier(6)
        targets: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
            (crash_worker, (str(root), SID, "always", f"r{r}a", 2, str(acks[f"r{r}a"]), start)),
            (crash_worker, (str(root), SID, "always", f"r{r}b", 1, str(acks[f"r{r}b"]), start)),
            (appending_snapshot_worker, (str(root), SID, f"r{r}s", str(acks[f"r{r}s"]), start, 2, 6)),
            (compact_worker, (str(root), SID, True, retention_us, start)),
            (compact_worker, (str(root), SID, False, None, start)),
        ]
        procs = [CTX.Process(target=target, args=args, daemon=True) for target, args in targets]
        for process in procs:
            process.start()
            spawned.append(process)
        first_before = first_active_seq(root)
        start.wait(READY_TIMEOUT)
        for process in rng.sample(procs, len(procs)):
            time.sleep(rng.uniform(0, 0.12))
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
        for process in procs:
            process.join(JOIN_TIMEOUT)
            assert process.exitcode == -signal.SIGKILL, f"seed {seed}: a worker failed: {process.exitcode}"
        children_pruned = children_pruned or first_active_seq(root) != first_before

        round_acks = collect_acks(acks.values(), promised, seed)
        version = check_round(root, seed, promised, retention, f"r{r}", round_acks)
        left = leftovers(root, SID)
        with Journal(root, retention=TINY if retention else None) as journal:
            message = journal.add_message(SID, "user", f"after round {r}")
            assert message.seq == version + 1, f"seed {seed}"
            journal.compact(SID, prune=True)
        check_round(root, seed, promised, retention, f"r{r}", round_acks)
        if left:
            print(f"round {r}: read cleanly despite leftovers {left}")  # shown with -s; no assertion
    assert promised, f"seed {seed}: nothing was acknowledged: the test proved nothing"
    assert children_pruned, f"seed {seed}: no child ever pruned: the test proved little"


def collect_acks(paths: Iterable[Path], promised: dict[int, str], seed: int) -> dict[str, int]:
    """Add a round's acknowledged appends to ``promised`` (seq -> content; a seq acknowledged
    with two contents fails); returns how many each writer acknowledged."""
    round_acks: dict[str, int] = {}
    for path in paths:
        for seq, content in acknowledged(path):
            assert promised.setdefault(seq, content) == content, f"seed {seed}: seq {seq} acked twice"
            who, _ = parse_content(content)
            round_acks[who] = round_acks.get(who, 0) + 1
    return round_acks


def check_round(
    root: Path, seed: int, promised: dict[int, str], retention: bool, prefix: str, round_acks: dict[str, int]
) -> int:
    """The checks after a round (see the test's oracle); returns the session's version."""
    with Journal(root) as fresh:
        report = fresh.verify()
        assert report.ok, f"seed {seed}: verify after the kills: {[str(p) for p in report.problems]}"
        state = fresh.get(SID)
        assert state == fresh.replay(SID), f"seed {seed}: get() and replay() disagree"
        seqs = [e.seq for e in fresh.events(SID)]
    first = seqs[0] if seqs else state.version + 1
    assert seqs == list(range(first, state.version + 1)), f"seed {seed}: events not contiguous"
    if not retention:
        assert first == 1, f"seed {seed}"
    contents = {m.seq: m.content for m in state.messages}
    lost = {seq: c for seq, c in promised.items() if contents.get(seq) != c}
    assert not lost, f"seed {seed}: acknowledged appends missing or moved: {lost}"
    written: dict[str, list[int]] = {}
    for message in state.messages:
        if message.content.startswith(prefix):
            who, index = parse_content(message.content)
            written.setdefault(who, []).append(index)
    for who, indices in written.items():
        acked = round_acks.get(who, 0)
        assert indices == list(range(len(indices))), f"seed {seed}: {who} has holes or repeats"
        assert acked <= len(indices) <= acked + 1, f"seed {seed}: {who} {acked} acks, {indices}"
    for who, acked in round_acks.items():
        assert len(written.get(who, [])) >= acked, f"seed {seed}: {who} lost acknowledged appends"
    return state.version


# -- every step, deterministically -----------------------------------------------------------


class Crash(BaseException):
    """Raised where the process would have died: not an Exception, so nothing handles it."""


def count_steps(monkeypatch: pytest.MonkeyPatch, crash_at: int | None, after: bool) -> Callable[[], int]:
    """Count file-system steps (renames into place, deletions); raise Crash at step ``crash_at``.

    ``after``: the step is done, then the crash (else the crash comes just before it, which
    leaves the temporary file a rename would have moved). Returns a function giving the count.
    """
    count = 0
    # The journal renames and deletes through os (relative to held folder descriptors).
    real_replace, real_unlink = os.replace, os.unlink

    def step(do: Callable[[], None]) -> None:
        nonlocal count
        count += 1
        if count == crash_at and not after:
            raise Crash
        do()
        if count == crash_at and after:
            raise Crash

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        step(lambda: real_replace(src, dst, **kwargs))

    def unlink(path: Any, **kwargs: Any) -> None:
        step(lambda: real_unlink(path, **kwargs))

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    return lambda: count


def _prepare(root: Path) -> bytes:
    """A session already pruned once (segment 1..9, active log 10..14); returns the whole log.

    "Whole log": the archive followed by the active log, the log as it would be unpruned.
    """
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(9):
            journal.add_message(SID, "user", f"m{i}")
        journal.compact(SID, prune=True)
        for i in range(9, 13):
            journal.add_message(SID, "user", f"m{i}")
    assert segment_names(root, SID) == ["00000000000000000001-00000000000000000009.jsonl.gz"]
    return archived_bytes(root, SID) + log_path(root, SID).read_bytes()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    root = tmp_path_factory.mktemp("prepared") / "journal"
    return root, _prepare(root)


def _steps(prepared: tuple[Path, bytes], tmp_path: Path, retention: bool) -> int:
    # The number of steps of one compaction of the prepared session (measured, not assumed,
    # so the sweep follows the code if steps are added or reordered).
    with pytest.MonkeyPatch.context() as monkeypatch:
        root = copy_root(prepared[0], tmp_path / "count")
        steps = count_steps(monkeypatch, None, False)
        with Journal(root, retention=TINY if retention else None) as journal:
            journal.compact(SID, prune=True)
        return steps()


@pytest.mark.parametrize("retention", [False, True], ids=["keep-archive", "retention"])
def test_compaction_stopped_at_each_step_leaves_the_same_history(
    prepared: tuple[Path, bytes], tmp_path: Path, retention: bool
) -> None:
    # Oracle: the reads of the prepared session (14 events) before the compaction, and its
    # whole log. For every step k of compact(prune=True) (write the segment 10..13, the
    # snapshot, delete the old snapshot, switch the log; with retention also write the base
    # and delete the folded segments), stopped just before and just after step k:
    #   * a fresh Journal reads the same state, the same events and the same replay(at=j)
    #     for every j; once a retention base exists, events() starts after it and
    #     replay(at=j) before it raises HistoryPrunedError;
    #   * the next append gets seq 15, and a later compaction leaves contiguous segments
    #     whose contents followed by the active log are the whole log plus that append
    #     (no retention), or only the base and the active log (retention).
    source = prepared[0]
    with Journal(source) as fresh:
        state = fresh.get(SID)
        events = list(fresh.events(SID))
        at = {j: fresh.replay(SID, at=j) for j in range(1, 15)}
    assert state.version == 14
    total = _steps(prepared, tmp_path, retention)
    assert total >= (5 if retention else 3)
    left_behind = False
    for k in range(1, total + 1):
        for after in (False, True):
            where = f"{'after' if after else 'before'} step {k} of {total}"
            root = copy_root(source, tmp_path / f"{k}-{after}")
            with pytest.MonkeyPatch.context() as monkeypatch:
                count_steps(monkeypatch, k, after)
                with Journal(root, retention=TINY if retention else None) as journal, pytest.raises(Crash):
                    journal.compact(SID, prune=True)
            base = session_dir(root, SID) / "archive" / "base.snap"
            floor = 13 if base.exists() else 0
            assert retention or not floor
            with Journal(root) as fresh:
                assert fresh.get(SID) == state, where
                assert fresh.replay(SID) == state, where
                assert list(fresh.events(SID)) == events[floor:], where
                for j, expected in at.items():
                    if j < floor:
                        with pytest.raises(HistoryPrunedError):
                            fresh.replay(SID, at=j)
                    else:
                        assert fresh.replay(SID, at=j) == expected, f"{where}: replay(at={j})"
                assert list(fresh.sessions()) == [SID], where
            left_behind = left_behind or bool(leftovers(root, SID))
            _later_compaction(root, prepared[1], retention, where)
    # Stopping before a rename leaves its temporary file: the sweep did read around them.
    assert left_behind


def _later_compaction(root: Path, whole: bytes, retention: bool, where: str) -> None:
    with Journal(root, retention=TINY if retention else None) as journal:
        message = journal.add_message(SID, "user", "after the crash")
        assert message.seq == 15, where
        appended = log_path(root, SID).read_bytes().split(b"\n")[-2] + b"\n"
        journal.compact(SID, prune=True)
    with Journal(root) as fresh:
        assert fresh.get(SID) == fresh.replay(SID), where
        assert fresh.get(SID).messages[-1] == message, where
        seqs = [e.seq for e in fresh.events(SID)]
    if retention:
        # Everything but the last event is folded into the base, the leftovers deleted.
        assert seqs == [15], where
        assert segment_names(root, SID) == [], where
    else:
        assert seqs == list(range(1, 16)), where
        check_segments(root, 1, 14)
        assert archived_bytes(root, SID) + log_path(root, SID).read_bytes() == whole + appended, where


def test_torn_temporary_files_never_break_reads_or_compaction(
    prepared: tuple[Path, bytes], tmp_path: Path
) -> None:
    # Oracle: the prepared session's reads and whole log. A process killed while writing
    # leaves half-written hidden temporary files: of the new log, of a segment, of a snapshot,
    # of a base. Readers never look at them, and compactions go on around them.
    root = copy_root(prepared[0], tmp_path / "journal")
    folder = session_dir(root, SID)
    log = log_path(root, SID).read_bytes()
    (folder / ".events.jsonl.4242.1.tmp").write_bytes(log[len(log) // 3 :][:-7])
    (folder / f".{snapshot_name(14)}.4242.1.tmp").write_bytes(b"JNLSNAP1" + b"\x00" * 10)
    (folder / "archive" / ".00000000000000000010-00000000000000000013.jsonl.gz.4242.1.tmp").write_bytes(
        b"\x1f\x8b\x08\x00"
    )
    (folder / "archive" / ".base.snap.4242.1.tmp").write_bytes(b"JNL")
    with Journal(prepared[0]) as fresh:
        state = fresh.get(SID)
        events = list(fresh.events(SID))
    with Journal(root) as fresh:
        assert fresh.get(SID) == state
        assert list(fresh.events(SID)) == events
        assert list(fresh.sessions()) == [SID]
    with Journal(root, snapshot_every=1) as journal:
        journal.add_message(SID, "user", "after")
        appended = log_path(root, SID).read_bytes()[len(log) :]
        journal.compact(SID, prune=True)
    with Journal(root) as fresh:
        assert [e.seq for e in fresh.events(SID)] == list(range(1, 16))
        assert fresh.get(SID) == fresh.replay(SID)
    check_segments(root, 1, 14)
    assert archived_bytes(root, SID) + log_path(root, SID).read_bytes() == prepared[1] + appended
    assert len(leftovers(root, SID)) == 4  # only ours: nothing else was left behind


def test_crash_before_the_log_switch_keeps_the_previous_snapshot_usable(
    prepared: tuple[Path, bytes], tmp_path: Path
) -> None:
    # Oracle: docs/compaction.md, "Why a crash at any point loses nothing": after step 2 the
    # new snapshot is ignored and readers "use the previous snapshot or the log"; older
    # snapshots are deleted only in step 4, after the switch ("a crash before this only wastes
    # space"). So stopped just before the log is replaced, the previous snapshot (seq 10, in
    # the active log 10..14) must still be there and be used. Observable: with segment 1..9
    # damaged, only a cold get() that starts from that snapshot can succeed.
    root = copy_root(prepared[0], tmp_path / "journal")
    with Journal(prepared[0]) as fresh:
        state = fresh.get(SID)
    target = log_path(root, SID)
    with pytest.MonkeyPatch.context() as monkeypatch:
        real_replace = os.replace

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            # The journal renames relative to a held folder descriptor: name it by its path.
            folder = kwargs.get("dst_dir_fd")
            named = Path(dst) if folder is None else Path(os.readlink(f"/proc/self/fd/{folder}")) / dst
            if named == target.resolve():
                raise Crash
            real_replace(src, dst, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        with Journal(root) as journal, pytest.raises(Crash):
            journal.compact(SID, prune=True)
    flip(segment_paths(root, SID)[0], -8)
    with Journal(root) as fresh:
        assert fresh.get(SID) == state


def test_sigkill_while_writing_chunked_snapshots_loses_nothing(root: Path, tmp_path: Path) -> None:
    # Real processes appending with a snapshot every 3 events, each writing chunks of 256
    # bytes (so every snapshot writes new chunk files, then its document, then deletes what
    # no snapshot names), killed with SIGKILL at random moments, several rounds. Oracle, after
    # each round (check_round): verify is clean (no snapshot names a missing or torn chunk),
    # get() equals a full replay, every acknowledged append is at its seq, and a fresh Journal
    # reading the chunked snapshot appends at version + 1.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with Journal(root) as journal:
        journal.create(SID)
    promised: dict[int, str] = {}
    chunks_seen = 0
    for r in range(8 if SOAK else 3):
        acks = {f"c{r}{w}": tmp_path / f"ack-{r}-{w}" for w in "ab"}
        start = CTX.Barrier(3)
        procs = [
            CTX.Process(
                target=appending_snapshot_worker,
                args=(str(root), SID, who, str(path), start, 3, None, 256),
                daemon=True,
            )
            for who, path in acks.items()
        ]
        for process in procs:
            process.start()
        start.wait(READY_TIMEOUT)
        for process in procs:
            time.sleep(rng.uniform(0.05, 0.3))
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
        for process in procs:
            process.join(JOIN_TIMEOUT)
            assert process.exitcode == -signal.SIGKILL, f"seed {seed}: a worker failed: {process.exitcode}"
        chunks_seen = max(chunks_seen, len(list(session_dir(root, SID).glob("chunk-*.snapc"))))
        round_acks = collect_acks(acks.values(), promised, seed)
        version = check_round(root, seed, promised, False, f"c{r}", round_acks)
        with Journal(root) as journal:
            assert journal.add_message(SID, "user", f"after round {r}").seq == version + 1
    assert promised, f"seed {seed}: nothing was acknowledged: the test proved nothing"
    assert chunks_seen, f"seed {seed}: no chunk was ever written: the test proved little"
