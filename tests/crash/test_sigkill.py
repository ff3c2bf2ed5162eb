"""Real SIGKILL at random moments against processes appending to one session.

A killed process gets no chance to clean up: whatever it had written, half-written or locked is
left exactly as the kernel leaves it. The promise under test is the one ``add_message`` makes:
once it returned, the message is in the log, whatever happens to the writer afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from journal import Journal, MessageAdded
from tests.conftest import SOAK
from tests.helpers_proc import acknowledged, crash_worker, parse_content, read_log

CTX = multiprocessing.get_context("spawn")
# Only turn a hang into a failure; never a speed assertion.
JOIN_TIMEOUT = 60.0
READY_TIMEOUT = 60.0  # for every worker to start and reach the barrier


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_sigkill_at_random_moments_loses_no_acknowledged_append(
    root: Path, tmp_path: Path, fsync: str, spawned: list[BaseProcess]
) -> None:
    sigkill_rounds(str(root), tmp_path, fsync, spawned)


def test_sigkill_of_postgres_writers_loses_no_acknowledged_append(
    pg_url: str, tmp_path: Path, spawned: list[BaseProcess]
) -> None:
    # The same promise on PostgreSQL: a writer killed mid-transaction (holding the session's
    # advisory lock) leaves nothing half-written, and the server frees its lock for the next.
    sigkill_rounds(pg_url, tmp_path, "always", spawned)


def sigkill_rounds(root: str, tmp_path: Path, fsync: str, spawned: list[BaseProcess]) -> None:
    # Oracle: each worker thread appends "<writer>.<thread>:<i>" for i = 0, 1, 2, ... and writes
    # "<seq> <content>" to its ack file after each append returned. After every round of
    # SIGKILLs, a fresh Journal must read the log without error and:
    #   * seqs are exactly 1..N (nothing torn into the middle, nothing duplicated);
    #   * every acknowledged content is at its acknowledged seq, from this and earlier rounds;
    #   * each thread's messages are its indices 0..k-1 in order, with k = acks or acks + 1
    #     (one append may have landed just before the kill, before its ack: never more);
    #   * the next append (by a fresh Journal) gets seq N + 1.
    # fsync="never" is included because a process crash (unlike a power loss) must not lose
    # appends under any policy: the bytes are in the OS's page cache once write() returned.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    rounds, writers, threads = (40 if SOAK else 8), 2, 2
    with Journal(root, fsync=fsync) as journal:
        journal.create("s")
    promised: dict[int, str] = {}
    extra = 0
    for r in range(rounds):
        acks = [tmp_path / f"ack-{r}-{k}" for k in range(writers)]
        start = CTX.Barrier(writers + 1)
        procs = [
            CTX.Process(target=crash_worker, args=(root, "s", fsync, f"r{r}w{k}", threads, str(ack), start))
            for k, ack in enumerate(acks)
        ]
        for process in procs:
            process.start()
            spawned.append(process)
        # Released together; each is then killed at its own random moment of the append loop
        # (possibly before its first append, or between an append and its acknowledgement).
        start.wait(READY_TIMEOUT)
        for process in rng.sample(procs, len(procs)):
            time.sleep(rng.uniform(0, 0.1))
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
        for process in procs:
            process.join(JOIN_TIMEOUT)
            assert process.exitcode == -signal.SIGKILL, f"seed {seed}: {process.exitcode}"

        round_acks: dict[str, int] = {}
        for ack in acks:
            for seq, content in acknowledged(ack):
                assert promised.setdefault(seq, content) == content, f"seed {seed}: seq {seq} acked twice"
                who, _ = parse_content(content)
                round_acks[who] = round_acks.get(who, 0) + 1
        events = read_log(root, "s")
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), f"seed {seed}"
        contents = {e.seq: getattr(e, "content", None) for e in events}
        lost = {seq: c for seq, c in promised.items() if contents.get(seq) != c}
        assert not lost, f"seed {seed}: acknowledged appends missing or moved after SIGKILL: {lost}"
        written: dict[str, list[int]] = {}
        for event in events:
            if isinstance(event, MessageAdded) and event.content.startswith(f"r{r}w"):
                who, index = parse_content(event.content)
                written.setdefault(who, []).append(index)
        for k in range(writers):
            for t in range(threads):
                who = f"r{r}w{k}.{t}"
                acked, indices = round_acks.get(who, 0), written.get(who, [])
                assert indices == list(range(len(indices))), f"seed {seed}: {who} has holes or repeats"
                assert acked <= len(indices) <= acked + 1, f"seed {seed}: {who} {acked} acks, {indices}"

        # Writing goes on after the crash, from a new Journal, right after the last event;
        # and the whole log checks out (a torn tail is cut by verify, as by any writer).
        with Journal(root, fsync=fsync) as journal:
            report = journal.verify(anchors=[journal.head("s")])
            assert report.ok, f"seed {seed}: {[str(p) for p in report.problems]}"
            message = journal.add_message("s", "user", f"after round {r}")
            assert message.seq == len(events) + 1
            assert journal.get("s") == journal.replay("s")
        extra += 1
    # In all: the created event, the acknowledged appends, the appends after each round, and
    # at most one unacknowledged append per killed thread.
    total = len(read_log(root, "s"))
    assert promised, f"seed {seed}: no append was acknowledged in any round: the test proved nothing"
    assert 1 + len(promised) + extra <= total <= 1 + len(promised) + extra + rounds * writers * threads
