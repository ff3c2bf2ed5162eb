"""The PostgreSQL append path: one statement that checks the head, and what happens when it
does not hold (another writer got there first), on real connections to a real server.

Two Journals on one URL share nothing in memory (each has its own pool and cache): to the
server they are two app processes.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from journal import ConflictError, Journal, MessageAdded
from tests.crash.test_postgres_faults import APPEND_QUERY, SYNC, Proxy, Rule, proxied, target

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 120.0  # only turns a hang into a failure


def stored(url: str, sid: str) -> list[str]:
    """The session's message contents, after asserting contiguous seqs, the session row and a
    clean verify (read through a fresh Journal)."""
    with psycopg.connect(url, autocommit=True) as conn:
        seqs = [
            r[0]
            for r in conn.execute("SELECT seq FROM journal_events WHERE session_id = %s ORDER BY seq", [sid])
        ]
        last = conn.execute("SELECT last_seq FROM journal_sessions WHERE id = %s", [sid]).fetchone()
    assert seqs == list(range(1, len(seqs) + 1)), "seqs are not contiguous"
    assert last is not None
    assert last[0] == len(seqs)
    with Journal.from_url(url) as fresh:
        assert fresh.verify(sid).ok
        return [e.content for e in fresh.events(sid) if isinstance(e, MessageAdded)]


def test_two_journals_racing_on_one_session_lose_and_repeat_nothing(pg_url: str) -> None:
    # Both caches go stale all the time: every lost race must catch up and append again.
    each, threads = 40, 3
    with Journal.from_url(pg_url) as one, Journal.from_url(pg_url) as two:
        one.create("s")
        two.get("s")
        start = threading.Barrier(2 * threads)
        returned: list[tuple[str, int]] = []
        guard = threading.Lock()

        def write(journal: Journal, name: str) -> None:
            start.wait()
            for n in range(each):
                message = journal.add_message("s", "user", f"{name} {n}")
                with guard:
                    returned.append((message.content, message.seq))

        workers = [
            threading.Thread(target=write, args=(journal, f"{k}.{t}"))
            for k, journal in enumerate((one, two))
            for t in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(JOIN_TIMEOUT)
        assert not any(worker.is_alive() for worker in workers)
        # Each Journal, once caught up, sees everything both wrote.
        assert one.get("s").version == two.get("s").version == 2 * threads * each + 1
    contents = stored(pg_url, "s")
    assert sorted(contents) == sorted(content for content, _ in returned)
    assert len(set(contents)) == len(contents) == 2 * threads * each
    at = {content: seq for seq, content in enumerate(contents, start=2)}
    assert all(at[content] == seq for content, seq in returned), "an append returned a seq it does not hold"
    # Each writer's own messages are in its order.
    for k in range(2):
        for t in range(threads):
            mine = [c for c in contents if c.startswith(f"{k}.{t} ")]
            assert mine == [f"{k}.{t} {n}" for n in range(each)]


def _process_writer(url: str, name: str, count: int, start: threading.Barrier) -> None:
    with Journal.from_url(url) as journal:
        journal.get("s")
        start.wait()
        for n in range(count):
            journal.add_message("s", "user", f"{name} {n}")


def test_processes_racing_on_one_session_lose_and_repeat_nothing(pg_url: str) -> None:
    count, procs = 30, 3
    with Journal.from_url(pg_url) as journal:
        journal.create("s")
    start = CTX.Barrier(procs)
    workers = [
        CTX.Process(target=_process_writer, args=(pg_url, f"p{p}", count, start)) for p in range(procs)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(JOIN_TIMEOUT)
    assert [worker.exitcode for worker in workers] == [0] * procs
    contents = stored(pg_url, "s")
    for p in range(procs):
        assert [c for c in contents if c.startswith(f"p{p} ")] == [f"p{p} {n}" for n in range(count)]
    assert len(contents) == count * procs


def test_expected_version_is_decided_on_the_stored_truth_not_a_stale_cache(pg_url: str) -> None:
    with Journal.from_url(pg_url) as one, Journal.from_url(pg_url) as two:
        one.create("s")
        assert two.get("s").version == 1  # two's cache: version 1
        one.add_message("s", "user", "moved on")  # the stored session: version 2
        # The version two's cache holds is no longer the session's: a conflict, nothing stored.
        with pytest.raises(ConflictError):
            two.add_message("s", "user", "refused", expected_version=1)
        # The true version is accepted although two's cache has never seen it.
        assert two.add_message("s", "user", "accepted", expected_version=2).seq == 3
        with pytest.raises(ConflictError):
            one.add_message("s", "user", "refused too", expected_version=2)
    assert stored(pg_url, "s") == ["moved on", "accepted"]


@contextmanager
def counted(pg_url: str) -> Iterator[tuple[Proxy, Journal]]:
    with Proxy(*target(pg_url)) as proxy, Journal.from_url(proxied(pg_url, proxy.port)) as journal:
        yield proxy, journal


EXECUTE = b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"  # Execute, the unnamed portal, every row


def requests(proxy: Proxy) -> int:
    """Requests that run a statement (round trips: each ends with a Sync) sent on every
    connection since arming. Not counted: psycopg preparing a statement (on its fifth run on
    a connection, a Parse and a Sync of its own, once per connection)."""
    with proxy.guard:
        sent = [bytes(link.seen["up"]) for link in proxy.links if link.epoch == proxy.epoch]
    return sum(1 for data in sent for request in data.split(SYNC) if EXECUTE in request)


def test_a_warm_append_is_one_round_trip_and_taking_a_connection_probes_nothing(pg_url: str) -> None:
    with counted(pg_url) as (proxy, journal):
        journal.create("s")
        journal.add_message("s", "user", "warm")
        proxy.arm(None)
        for n in range(20):
            journal.add_message("s", "user", f"m{n}")
        appends = requests(proxy)
        proxy.arm(None)
        for _ in range(20):
            journal.get("s")  # nothing changed: one stamp each
        gets = requests(proxy)
    assert appends == 20
    assert gets == 20
    assert stored(pg_url, "s")[-1] == "m19"


def test_concurrent_appends_of_one_process_go_out_together(pg_url: str) -> None:
    # Oracle: the first append's statement is held on the wire, so the other threads' appends
    # queue behind it in the Journal (they are real threads, blocked in add_message). Once it
    # is let through, the next leader sends every queued append: one more statement on the
    # wire, and on the server one transaction (one xmin) for all their rows.
    followers = 5
    with counted(pg_url) as (proxy, journal):
        journal.create("s")
        journal.add_message("s", "user", "warm")
        proxy.arm(Rule("up", APPEND_QUERY, hold=True))
        returned: dict[str, int] = {}
        guard = threading.Lock()

        def write(content: str) -> None:
            seq = journal.add_message("s", "user", content).seq
            with guard:
                returned[content] = seq

        workers = [threading.Thread(target=write, args=("first",))]
        workers[0].start()
        assert proxy.fired.wait(JOIN_TIMEOUT), "the first append never reached the wire"
        workers += [threading.Thread(target=write, args=(f"queued {n}",)) for n in range(followers)]
        for worker in workers[1:]:
            worker.start()
        slot = journal._sessions.slots["s"]
        deadline = time.monotonic() + JOIN_TIMEOUT
        while len(slot.queue) < followers:  # every follower waits behind the held leader
            assert time.monotonic() < deadline, "the followers never queued"
            time.sleep(0.01)
        proxy.arm(None)  # count from here: what the held statement's successors send
        proxy.release(forward_rest=True)
        for worker in workers:
            worker.join(JOIN_TIMEOUT)
        assert not any(worker.is_alive() for worker in workers)
        assert requests(proxy) == 1
    assert returned["first"] == 3
    contents = stored(pg_url, "s")
    assert {content: seq for seq, content in enumerate(contents, start=2)} == {"warm": 2, **returned}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        xmins = conn.execute(
            "SELECT xmin::text FROM journal_events WHERE session_id = 's' AND seq > 3"
        ).fetchall()
    assert len(xmins) == followers
    assert len(set(xmins)) == 1, "the queued appends were committed separately"
