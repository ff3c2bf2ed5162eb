"""Several Journals, threads and processes on one store, the same on every backend.

Processes are started with ``spawn`` and given the URL: each opens its own Journal (and, on
PostgreSQL, its own connection pool); nothing is shared across a fork. Results are checked
with a fresh Journal that shares no cache with the writers.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import random
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from journal import ConflictError, Created, Journal, MessageAdded
from journal.testing import check_linearizable, run_workers
from tests.conftest import Spawn
from tests.contract.stored import backend_of
from tests.contract.workers import linearizable_journal
from tests.helpers_proc import BARRIER_TIMEOUT, append_worker, parse_content, read_your_writes_worker

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 120.0  # only turns a hang into a failure, never a speed assertion
SID = "s"


def other_processes_can_open(store_url: str) -> None:
    if backend_of(store_url) == "memory":
        pytest.skip("a memory store lives in one process: other processes cannot open it")


def join_ok(processes: list[BaseProcess]) -> None:
    for process in processes:
        process.join(JOIN_TIMEOUT)
        assert not process.is_alive(), f"{process.name} still running after {JOIN_TIMEOUT} s: a hang"
        assert process.exitcode == 0, f"{process.name} failed (exit code {process.exitcode}); see stderr"


def receive(results: multiprocessing.Queue[Any], process: BaseProcess) -> Any:
    """The next result; fails at once if the worker died instead of answering."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:
        try:
            return results.get(timeout=0.05)
        except queue.Empty:
            assert process.is_alive() or process.exitcode == 0, f"the worker failed ({process.exitcode})"
            assert time.monotonic() < deadline, f"no answer within {JOIN_TIMEOUT} s: a hang"


# -- read your writes -----------------------------------------------------------------------


def test_a_write_by_one_journal_is_seen_by_the_next_get_of_another(store_url: str) -> None:
    with Journal.from_url(store_url) as a, Journal.from_url(store_url) as b:
        a.create(SID)
        assert b.get(SID).version == 1  # b caches version 1
        for n in range(5):
            message = a.add_message(SID, "user", f"a{n}")
            state = b.get(SID)
            assert (state.version, state.messages[-1]) == (message.seq, message)
        a.update_settings(SID, {"k": 1})
        assert dict(b.get(SID).settings) == {"k": 1}
        # b's cache is stale by the time it writes: its append lands after a's, and its
        # expected_version is compared with the true version.
        a.add_message(SID, "user", "a5")
        with pytest.raises(ConflictError) as info:
            b.add_message(SID, "user", "stale", expected_version=7)
        assert (info.value.expected, info.value.actual) == (7, 8)
        assert b.add_message(SID, "user", "b0").seq == 9
        assert [m.content for m in a.get(SID).messages][-2:] == ["a5", "b0"]
        a.clear(SID)
        assert list(b.get(SID).messages) == []
    with Journal.from_url(store_url) as fresh:
        assert [e.seq for e in fresh.events(SID)] == list(range(1, 11))


def test_a_write_by_another_process_is_seen_by_the_next_get(store_url: str, spawn: Spawn) -> None:
    other_processes_can_open(store_url)
    # The child reports an append only after it returned, so the parent's next get (on a
    # Journal holding a cached state) must show it as its last message; then the parent
    # appends, and the child's next append (its cache now stale) must come right after it.
    rounds = 10
    with Journal.from_url(store_url) as parent:
        parent.create(SID)
        assert parent.get(SID).version == 1
        commands: multiprocessing.Queue[Any] = CTX.Queue()
        results: multiprocessing.Queue[Any] = CTX.Queue()
        child = spawn(read_your_writes_worker, store_url, SID, commands, results)
        expected = 2
        for r in range(rounds):
            commands.put(f"child {r}")
            seq, message_id, content = receive(results, child)
            assert (seq, content) == (expected, f"child {r}")
            state = parent.get(SID)
            assert state.version == seq, "a returned append of another process is not visible"
            assert (state.messages[-1].id, state.messages[-1].content) == (message_id, content)
            expected = parent.add_message(SID, "user", f"parent {r}").seq + 1
        commands.put(None)
        join_ok([child])
    with Journal.from_url(store_url) as fresh:
        events = list(fresh.events(SID))
    assert [e.seq for e in events] == list(range(1, 2 * rounds + 2))
    assert [e.content for e in events if isinstance(e, MessageAdded)] == [
        f"{who} {r}" for r in range(rounds) for who in ("child", "parent")
    ]


# -- many writers ---------------------------------------------------------------------------


def test_processes_appending_to_one_session_lose_and_duplicate_nothing(store_url: str, spawn: Spawn) -> None:
    other_processes_can_open(store_url)
    # Oracle: seqs 1..N with no gap or repeat, seq 1 the create, and the indices of each writer
    # thread exactly 0..count-1 in log order: nothing lost, duplicated or reordered per writer.
    processes, threads, count = 3, 2, 25
    with Journal.from_url(store_url) as parent:
        parent.create(SID)
        start = CTX.Barrier(processes + 1)
        workers = [
            spawn(append_worker, store_url, SID, "always", f"p{k}", threads, count, start)
            for k in range(processes)
        ]
        start.wait(BARRIER_TIMEOUT)
        join_ok(workers)
        with Journal.from_url(store_url) as fresh:
            events = list(fresh.events(SID))
            assert parent.get(SID) == fresh.replay(SID)  # the parent's stale cache caught up
    assert [e.seq for e in events] == list(range(1, processes * threads * count + 2))
    assert isinstance(events[0], Created)
    messages = [e for e in events[1:] if isinstance(e, MessageAdded)]
    assert len(messages) == len(events) - 1
    seen: dict[str, list[int]] = {}
    for message in messages:
        who, index = parse_content(message.content)
        seen.setdefault(who, []).append(index)
    assert seen == {f"p{k}.{t}": list(range(count)) for k in range(processes) for t in range(threads)}
    assert len({m.message_id for m in messages}) == len(messages)


def test_threads_racing_expected_version_writes_have_exactly_one_winner(store_url: str) -> None:
    # Each round two threads, each on its own Journal (so on PostgreSQL the race crosses two
    # connection pools and the server's locks), read the same version v, then write with
    # expected_version=v at once: exactly one wins with seq v + 1, the other gets
    # ConflictError(expected=v, actual=v + 1). The log then holds exactly the winners.
    rounds = 25
    outcomes: list[tuple[int, int, str, int | None, ConflictError | None]] = []
    errors: list[BaseException] = []
    guard = threading.Lock()
    with Journal.from_url(store_url) as a, Journal.from_url(store_url) as b:
        a.create(SID)
        read_gate, write_gate = threading.Barrier(2), threading.Barrier(2)

        def player(journal: Journal, name: str) -> None:
            try:
                for r in range(rounds):
                    read_gate.wait(BARRIER_TIMEOUT)
                    version = journal.get(SID).version
                    write_gate.wait(BARRIER_TIMEOUT)
                    content = f"{name}:{r}"
                    try:
                        seq = journal.add_message(SID, "user", content, expected_version=version).seq
                    except ConflictError as exc:
                        with guard:
                            outcomes.append((r, version, content, None, exc))
                    else:
                        with guard:
                            outcomes.append((r, version, content, seq, None))
            except BaseException as exc:
                errors.append(exc)
                read_gate.abort()
                write_gate.abort()

        crew = [threading.Thread(target=player, args=(j, n)) for j, n in ((a, "a"), (b, "b"))]
        for thread in crew:
            thread.start()
        for thread in crew:
            thread.join(JOIN_TIMEOUT)
        assert not errors, errors
    winners = []
    for r in range(rounds):
        this_round = [o for o in outcomes if o[0] == r]
        assert {o[1] for o in this_round} == {1 + r}, "the threads read different versions"
        wins = [o for o in this_round if o[4] is None]
        assert len(wins) == 1, f"round {r}: {len(wins)} winners"
        assert wins[0][3] == 2 + r
        winners.append(wins[0][2])
        (loser,) = [o[4] for o in this_round if o[4] is not None]
        assert type(loser) is ConflictError
        assert (loser.session_id, loser.expected, loser.actual) == (SID, 1 + r, 2 + r)
    with Journal.from_url(store_url) as fresh:
        assert [e.content for e in fresh.events(SID) if isinstance(e, MessageAdded)] == winners


def test_histories_from_several_processes_on_postgres_are_linearizable(pg_url: str) -> None:
    # Oracle: check_linearizable finds an order consistent with real time that explains every
    # result the workers saw (creates, appends with and without expected_version, settings,
    # clears, deletes, reads), with snapshots and pruning crossed along the way.
    seed = random.randrange(2**32)  # named in every failure, to run the same mix again
    history = run_workers(functools.partial(linearizable_journal, pg_url), workers=4, ops=150, seed=seed)
    assert len(history) == 600
    assert {"create", "add_message", "get", "update_settings"} <= {op.name for op in history.operations}
    # Real contention happened: some conditional appends lost their race.
    errors = [
        op.result[1]
        for op in history.operations
        if isinstance(op.result, tuple) and op.result[:1] == ("error",)
    ]
    assert "ConflictError" in errors, f"seed {seed}: no conditional append lost a race"
    result = check_linearizable(history)
    assert result.ok, f"seed {seed}: {result.explanation}"
    with Journal.from_url(pg_url) as journal:
        assert journal.verify().ok
