"""Real threads against real files: one or two Journal objects shared by many threads.

Every test checks the log afterwards with a fresh Journal (no cache shared with the writers),
so an answer the writers' cache made up cannot pass for what is on disk.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from journal import ConflictError, Journal, JournalError, MessageAdded, Session, SessionExistsError
from journal.testing import History, check_linearizable
from tests.helpers_proc import check_appends, content_for, read_log

# Only turns a hang (a deadlock, a lost wake-up) into a failure; never a speed assertion.
JOIN_TIMEOUT = 120.0
BARRIER_TIMEOUT = 60.0


class Crew:
    """Threads started together; the first exception any of them raised is re-raised on join."""

    def __init__(self, targets: list[Callable[[], None]]) -> None:
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._guard, args=(fn,), daemon=True) for fn in targets]
        for thread in self.threads:
            thread.start()

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:
            self.errors.append(exc)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(JOIN_TIMEOUT)
            assert not thread.is_alive(), f"{thread.name} still running after {JOIN_TIMEOUT} s: a hang"
        if self.errors:
            raise self.errors[0]


def run_threads(targets: list[Callable[[], None]]) -> None:
    Crew(targets).join()


def test_threads_appending_to_one_session_get_contiguous_seqs(root: Path, journal: Journal) -> None:
    # Oracle: check_appends (seqs 1..N, each thread's messages present once and in its order);
    # plus every returned Message is the one the log holds at its seq, every writer reads its
    # own write at once, and the shared Journal's cached state equals a fresh replay.
    threads, count = 8, 100
    journal.create("s")
    start = threading.Barrier(threads)
    returned: dict[int, str] = {}

    def writer(t: int) -> Callable[[], None]:
        def run() -> None:
            start.wait(BARRIER_TIMEOUT)
            last = 0
            for i in range(count):
                message = journal.add_message("s", "user", content_for("w", t, i))
                assert message.seq > last
                last = message.seq
                assert journal.get("s").version >= message.seq  # read-your-writes
                returned[message.seq] = message.content

        return run

    run_threads([writer(t) for t in range(threads)])
    messages = check_appends(root, "s", {f"w.{t}": count for t in range(threads)})
    assert len(messages) == threads * count
    assert returned == {m.seq: m.content for m in messages}
    with Journal(root) as fresh:
        assert journal.get("s") == fresh.replay("s") == fresh.get("s")


@pytest.mark.parametrize("max_cached_sessions", [1024, 3])
def test_threads_on_different_sessions_do_not_interfere(root: Path, max_cached_sessions: int) -> None:
    # Oracle: each session holds exactly the messages its two owner threads wrote, in each
    # thread's order, and nothing from any other session. 10 sessions x 8 threads = 80 sessions
    # exceeds the storage's open-handle limit (64), and a small max_cached_sessions makes the
    # session cache evict slots while other threads use theirs.
    threads, per_thread, count = 8, 10, 4
    with Journal(root, max_cached_sessions=max_cached_sessions) as journal:
        # Thread t and thread t ^ 1 share their 10 sessions, so each session has two writers.
        ids = {t: [f"pair{t // 2}-{k}" for k in range(per_thread)] for t in range(threads)}
        for t in range(0, threads, 2):
            for sid in ids[t]:
                journal.create(sid)
        start = threading.Barrier(threads)

        def writer(t: int) -> Callable[[], None]:
            def run() -> None:
                start.wait(BARRIER_TIMEOUT)
                for i in range(count):
                    for sid in ids[t]:
                        journal.add_message(sid, "user", content_for(f"{sid}/w", t, i))

            return run

        run_threads([writer(t) for t in range(threads)])
        assert sorted(journal.sessions()) == sorted({sid for group in ids.values() for sid in group})
    for t in range(0, threads, 2):
        for sid in ids[t]:
            messages = check_appends(root, sid, {f"{sid}/w.{t}": count, f"{sid}/w.{t + 1}": count})
            assert len(messages) == 2 * count


def test_expected_version_races_in_lockstep_have_one_winner_per_round(root: Path, journal: Journal) -> None:
    # Oracle: each round every thread reads the same version v (the reads happen between two
    # barriers, after the previous round's writes returned), then all write with
    # expected_version=v. Exactly one write can follow v, so exactly one thread wins (its message
    # gets seq v + 1) and every other gets ConflictError(expected=v, actual=v + 1). The log then
    # holds exactly the winners' messages, one per round, in round order.
    threads, rounds = 8, 40
    journal.create("s")
    read_gate, write_gate = threading.Barrier(threads), threading.Barrier(threads)
    outcomes: list[tuple[int, int, str, int | None, ConflictError | None]] = []
    lock = threading.Lock()

    def player(t: int) -> Callable[[], None]:
        def run() -> None:
            for r in range(rounds):
                read_gate.wait(BARRIER_TIMEOUT)
                version = journal.get("s").version
                write_gate.wait(BARRIER_TIMEOUT)
                content = f"round{r}:{t}"
                try:
                    message = journal.add_message("s", "user", content, expected_version=version)
                except ConflictError as exc:
                    with lock:
                        outcomes.append((r, version, content, None, exc))
                else:
                    with lock:
                        outcomes.append((r, version, content, message.seq, None))

        return run

    run_threads([player(t) for t in range(threads)])
    winners: list[str] = []
    for r in range(rounds):
        this_round = [o for o in outcomes if o[0] == r]
        assert len(this_round) == threads
        assert {o[1] for o in this_round} == {1 + r}, "threads read different versions in one round"
        wins = [o for o in this_round if o[4] is None]
        assert len(wins) == 1, f"round {r}: {len(wins)} winners"
        assert wins[0][3] == 2 + r
        winners.append(wins[0][2])
        for _, version, _, _, error in this_round:
            if error is not None:
                assert type(error) is ConflictError
                assert (error.session_id, error.expected, error.actual) == ("s", version, version + 1)
    events = read_log(root, "s")
    assert [e.seq for e in events] == list(range(1, rounds + 2))
    assert [e.content for e in events[1:] if isinstance(e, MessageAdded)] == winners


def test_expected_version_free_running_loses_no_update(root: Path) -> None:
    # Oracle: threads (on two Journal objects, so the race also crosses the file lock) loop
    # read-then-write until each has won `wins` times. A win with expected_version=v must get
    # seq v + 1, so no two wins share a v (that would be a lost update); a loss must report
    # expected=v and some actual > v that existed. The log holds exactly the wins.
    threads, wins_each = 6, 25
    with Journal(root) as first, Journal(root) as second:
        first.create("s")
        won: list[tuple[int, str]] = []
        lost: list[tuple[int, ConflictError]] = []
        lock = threading.Lock()

        def player(t: int) -> Callable[[], None]:
            journal = first if t % 2 else second

            def run() -> None:
                wins = 0
                while wins < wins_each:
                    version = journal.get("s").version
                    content = content_for("p", t, wins)
                    try:
                        message = journal.add_message("s", "user", content, expected_version=version)
                    except ConflictError as exc:
                        with lock:
                            lost.append((version, exc))
                    else:
                        assert message.seq == version + 1
                        wins += 1
                        with lock:
                            won.append((version, content))

            return run

        run_threads([player(t) for t in range(threads)])
        final = first.get("s").version
        assert second.get("s").version == final
    assert final == 1 + threads * wins_each
    assert sorted(v for v, _ in won) == list(range(1, final)), "two wins on one version: lost update"
    for version, error in lost:
        assert error.expected == version
        assert version < error.actual <= final
    messages = check_appends(root, "s", {f"p.{t}": wins_each for t in range(threads)})
    assert {m.seq - 1: m.content for m in messages} == dict(won)


def test_readers_see_only_prefixes_that_never_go_backwards(root: Path, journal: Journal) -> None:
    # Oracle: any state a reader gets must be exactly the replay of the log up to its version
    # (a prefix: no half-applied batch, no event from nowhere), with messages at seqs
    # 2..version, and within one reader thread versions never decrease. Readers use the
    # writers' Journal and a second Journal object on the same root.
    writers, count, readers = 4, 40, 3
    journal.create("s")
    done = threading.Event()
    observed: Counter[int] = Counter()

    def writer(t: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(count):
                message = journal.add_message("s", "user", content_for("w", t, i))
                assert journal.get("s").version >= message.seq

        return run

    def reader(r: int, own: Journal) -> Callable[[], None]:
        def run() -> None:
            last = 0
            while True:
                finished = done.is_set()
                state = own.get("s")
                assert state.version >= last, f"reader went back from {last} to {state.version}"
                last = state.version
                assert [m.seq for m in state.messages] == list(range(2, state.version + 1))
                assert state == own.replay("s", at=state.version)
                observed[r] += 1
                if finished:
                    assert state.version == 1 + writers * count
                    return

        return run

    with Journal(root) as other:
        crew = Crew([reader(r, journal if r % 2 else other) for r in range(readers)])
        run_threads([writer(t) for t in range(writers)])
        done.set()
        crew.join()
    assert all(observed[r] >= 1 for r in range(readers))
    check_appends(root, "s", {f"w.{t}": count for t in range(writers)})


def test_two_journals_on_one_root_in_one_process_stay_consistent(root: Path) -> None:
    # Oracle: check_appends on the final log; every append is visible through the *other*
    # Journal object as soon as it returns; at the end both objects and a fresh one agree.
    per_journal, count = 4, 30
    with Journal(root) as first, Journal(root) as second:
        first.create("s")
        journals = (first, second)
        start = threading.Barrier(2 * per_journal)

        def writer(k: int, t: int) -> Callable[[], None]:
            mine, theirs = journals[k], journals[1 - k]

            def run() -> None:
                start.wait(BARRIER_TIMEOUT)
                for i in range(count):
                    message = mine.add_message("s", "user", content_for(f"j{k}", t, i))
                    assert theirs.get("s").version >= message.seq

            return run

        run_threads([writer(k, t) for k in range(2) for t in range(per_journal)])
        with Journal(root) as fresh:
            assert first.get("s") == second.get("s") == fresh.get("s") == fresh.replay("s")
    check_appends(root, "s", {f"j{k}.{t}": count for k in range(2) for t in range(per_journal)})


def test_threads_racing_create_have_exactly_one_winner(root: Path, journal: Journal) -> None:
    # Oracle: for each id, exactly one create returns and the others raise SessionExistsError;
    # get_or_create racing alongside returns the same session; the log has one created event.
    threads, ids = 8, 15
    start = threading.Barrier(threads)
    created: Counter[str] = Counter()
    refused: list[tuple[str, SessionExistsError]] = []
    seen: dict[str, set[object]] = {f"id{k}": set() for k in range(ids)}
    lock = threading.Lock()

    def racer(t: int) -> Callable[[], None]:
        def run() -> None:
            for k in range(ids):
                sid = f"id{k}"
                start.wait(BARRIER_TIMEOUT)
                state: Session
                if t == 0:
                    state = journal.get_or_create(sid)
                else:
                    try:
                        state = journal.create(sid)
                    except SessionExistsError as exc:
                        with lock:
                            refused.append((sid, exc))
                        continue
                    with lock:
                        created[sid] += 1
                with lock:
                    seen[sid].add(state.created_at)

        return run

    run_threads([racer(t) for t in range(threads)])
    for sid, error in refused:
        assert (error.session_id, error.expected, error.actual) == (sid, 0, 1)
    for k in range(ids):
        sid = f"id{k}"
        assert created[sid] <= 1
        assert created[sid] + sum(1 for s, _ in refused if s == sid) == threads - 1
        assert len(seen[sid]) == 1, "two different sessions were handed out for one id"
        events = read_log(root, sid)
        assert len(events) == 1
        assert seen[sid] == {events[0].at}


def test_mixed_operations_from_threads_and_two_journals_are_linearizable(root: Path) -> None:
    # Oracle: journal.testing's checker and model. Four threads, half on a second Journal of
    # the same root, run random writes, deletes and reads on two sessions; some order
    # consistent with real time must explain every result.
    history = History()
    rng = random.Random()
    seeds = [rng.randrange(2**32) for _ in range(4)]
    with Journal(root, fsync="never", archive_after=10) as one, Journal(root, fsync="never") as two:

        def work(k: int) -> None:
            journal, r = (one, two)[k % 2], random.Random(seeds[k])
            for i in range(80):
                sid = r.choice(["a", "b"])
                name, args = r.choice(
                    [
                        ("get_or_create", (sid,)),
                        ("add_message", (sid, "user", f"{k}:{i}")),
                        ("add_message", (sid, "user", f"{k}:{i}")),
                        ("update_settings", (sid, {str(k): i})),
                        ("clear", (sid,)),
                        ("delete", (sid,)),
                        ("get", (sid,)),
                        ("get", (sid,)),
                        ("exists", (sid,)),
                    ]
                )
                token = history.invoke(f"t{k}", name, *args)
                try:
                    history.complete(token, getattr(journal, name)(*args))
                except JournalError as exc:
                    history.fail(token, exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
    result = check_linearizable(history)
    assert result.ok, f"seeds {seeds}: {result.explanation}"
