"""Real processes (``spawn``: nothing inherited but the arguments) sharing one journal root.

Workers live in ``tests.helpers_proc``; they are released together by a barrier that the parent
also waits on, so the race starts only once every process has imported journal and opened its
Journal. Every result is checked with a fresh Journal reading the files.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest

from journal import Journal, SessionExistsError
from tests.conftest import Spawn
from tests.helpers_proc import (
    BARRIER_TIMEOUT,
    append_worker,
    check_appends,
    create_race_worker,
    read_log,
    read_your_writes_worker,
    snapshot_churn_worker,
)

CTX = multiprocessing.get_context("spawn")
# Only turns a hang into a failure; never a speed assertion.
JOIN_TIMEOUT = 120.0


def receive(results: multiprocessing.Queue[Any], processes: list[BaseProcess]) -> Any:
    """The next result; fails at once if a worker died instead of answering, or on a hang."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:
        try:
            return results.get(timeout=0.05)
        except queue.Empty:
            dead = [p.exitcode for p in processes if not p.is_alive() and p.exitcode != 0]
            assert not dead, f"a worker failed (exit codes {dead}); see its stderr"
            assert time.monotonic() < deadline, f"no answer within {JOIN_TIMEOUT} s: a hang"


def join_ok(processes: list[BaseProcess]) -> None:
    """Join each process; fail if one hangs or exits with an error."""
    for process in processes:
        process.join(JOIN_TIMEOUT)
        assert not process.is_alive(), f"{process.name} still running after {JOIN_TIMEOUT} s: a hang"
        assert process.exitcode == 0, f"{process.name} failed (exit code {process.exitcode}); see stderr"


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_processes_appending_to_one_session_stay_contiguous(root: Path, fsync: str, spawn: Spawn) -> None:
    # Oracle: check_appends (seqs 1..N, every writer thread's messages present exactly once and
    # in its order). 4 processes x 2 threads race: group commit inside each process, the file
    # lock between them, and every process's cached view goes stale under the others' appends.
    # The parent's own Journal, cached before the race, must then agree with a fresh replay.
    processes, threads, count = 4, 2, 60
    with Journal(root, fsync=fsync) as parent:
        parent.create("s")
        start = CTX.Barrier(processes + 1)
        workers = [
            spawn(append_worker, str(root), "s", fsync, f"p{k}", threads, count, start)
            for k in range(processes)
        ]
        start.wait(BARRIER_TIMEOUT)
        join_ok(workers)
        messages = check_appends(
            root, "s", {f"p{k}.{t}": count for k in range(processes) for t in range(threads)}
        )
        assert len(messages) == processes * threads * count
        with Journal(root) as fresh:
            assert parent.get("s") == fresh.replay("s")


def test_read_after_another_process_append_returned_sees_it(root: Path, spawn: Spawn) -> None:
    # Oracle (read-your-writes across processes): the child reports an append only after it
    # returned, so the parent's next `get` (on a Journal holding a cached state) must show it,
    # as its exact last message. Then the parent appends, and the child's next append (its
    # cache now stale) must come right after the parent's: seqs alternate child, parent, ...
    rounds = 25
    with Journal(root) as parent:
        parent.create("s")
        assert parent.get("s").version == 1
        commands: multiprocessing.Queue[Any] = CTX.Queue()
        results: multiprocessing.Queue[Any] = CTX.Queue()
        child = spawn(read_your_writes_worker, str(root), "s", commands, results)
        expected_seq = 2
        for r in range(rounds):
            commands.put(f"child {r}")
            seq, message_id, content = receive(results, [child])
            assert (seq, content) == (expected_seq, f"child {r}")
            state = parent.get("s")
            assert state.version == seq, "a returned append of another process is not visible"
            assert (state.messages[-1].id, state.messages[-1].content) == (message_id, content)
            own = parent.add_message("s", "user", f"parent {r}")
            assert own.seq == seq + 1
            expected_seq = own.seq + 1
        commands.put(None)
        join_ok([child])
    events = read_log(root, "s")
    assert [e.seq for e in events] == list(range(1, 2 * rounds + 2))
    contents = [getattr(e, "content", None) for e in events[1:]]
    assert contents == [f"{who} {r}" for r in range(rounds) for who in ("child", "parent")]


def test_processes_racing_create_have_exactly_one_winner(root: Path, spawn: Spawn) -> None:
    # Oracle: for each id, all processes call create at once (a barrier per id); exactly one
    # returns and every other raises SessionExistsError(expected=0, actual=1) for that id (the
    # error crossed the process boundary by pickling, so its fields survive that too). Each
    # log then holds exactly one `created` event and sessions() lists each id once.
    processes, count = 4, 12
    ids = [f"race-{k}" for k in range(count)]
    start = CTX.Barrier(processes)
    results: multiprocessing.Queue[Any] = CTX.Queue()
    workers = [spawn(create_race_worker, str(root), ids, start, results) for _ in range(processes)]
    outcomes: list[tuple[str, int, SessionExistsError | None]] = [
        receive(results, workers) for _ in range(processes * count)
    ]
    join_ok(workers)
    for sid in ids:
        mine = [o for o in outcomes if o[0] == sid]
        assert len(mine) == processes
        assert sum(1 for _, _, error in mine if error is None) == 1, f"{sid}: not exactly one winner"
        for _, _, error in mine:
            if error is not None:
                assert type(error) is SessionExistsError
                assert (error.session_id, error.expected, error.actual) == (sid, 0, 1)
        assert [e.type for e in read_log(root, sid)] == ["created"]
    with Journal(root) as fresh:
        assert sorted(fresh.sessions()) == sorted(ids)


def test_readers_in_other_processes_never_lose_a_snapshot_being_replaced(
    root: Path, spawn: Spawn, caplog: pytest.LogCaptureFixture
) -> None:
    # Oracle: a replay of the log at the version each fresh Journal read. A writer process
    # replaces the snapshot every 10 events and rewrites its first chunk every 3 (edits);
    # this process opens the session again and again, lock-free. A snapshot removed while
    # it was read is looked for again: never a "snapshot ignored" warning, never a wrong
    # state. (The window is narrow: the test of the mechanism that loses it every time is
    # in tests/backends/files/test_chunked_snapshots.py.)
    with Journal(root) as setup:
        setup.create("s")
        setup.add_messages("s", [{"role": "user", "content": f"{'y' * 200} {n}"} for n in range(400)])
    started, stop = CTX.Event(), CTX.Event()
    writer = spawn(snapshot_churn_worker, str(root), "s", started, stop)
    assert started.wait(JOIN_TIMEOUT), "the writer did not start"
    caplog.set_level(logging.WARNING, logger="journal")
    states = []
    try:
        for _ in range(300):
            with Journal(root) as fresh:
                states.append(fresh.get("s"))
    finally:
        stop.set()
    join_ok([writer])
    assert [r.getMessage() for r in caplog.records if "snapshot" in r.getMessage()] == []
    assert states[-1].version > states[0].version, "the writer never raced the readers"
    with Journal(root) as check:
        for state in states[:: max(1, len(states) // 30)]:
            assert check.replay("s", at=state.version) == state
