"""The PostgreSQL backend against plain psycopg INSERTs and SELECTs on the same server.

The floor is what the backend could not do with less: a table of the same shape as
``journal_events`` (session, seq, hash, type, the line as bytea; key (session, seq)), written
with the same journal lines, one autocommit INSERT per row, or one transaction per batch where
journal's group commit batches. The floor takes no lock, reads nothing back and checks no hash:
journal / floor is the price of the head check, the session row and the notification in each
append's one statement, plus the library's own work (encoding, hashing, folding). For loads
the floor reads the same lines back with one plain ``SELECT`` and decodes them with msgspec,
checking nothing.

The server is ``JOURNAL_BENCH_POSTGRES_URL`` (else ``JOURNAL_TEST_POSTGRES_URL``, else the local
one); each run works in a fresh schema, dropped afterwards. Without a server (or psycopg) the
rows are skipped with a note.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from benchmarks.common import CONTENT, METADATA, Row, fill, timed
from journal import Journal
from journal.copying import copy_sessions

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROCESSES, THREADS = 4, 4  # the group commit case: threads share one Journal per process
SESSIONS = 16  # the many-sessions case: one per writer thread
SCALE = (1, 2, 4, 8)  # app processes in the scale-out rows

FLOOR_TABLE = (
    "CREATE TABLE floor_events (session_id text NOT NULL, seq bigint NOT NULL, hash text NOT NULL,"
    " type text NOT NULL, line bytea NOT NULL, PRIMARY KEY (session_id, seq))"
)
FLOOR_INSERT = "INSERT INTO floor_events (session_id, seq, hash, type, line) VALUES (%s, %s, %s, %s, %s)"


def server() -> tuple[str | None, str]:
    """(the server's URL, or None and why not)."""
    url = (
        os.environ.get("JOURNAL_BENCH_POSTGRES_URL")
        or os.environ.get("JOURNAL_TEST_POSTGRES_URL")
        or DEFAULT_URL
    )
    try:
        import psycopg
    except ImportError:
        return None, 'psycopg is not installed (pip install "chat-journal[postgres]")'
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return None, f"no PostgreSQL server answers at {url}: {str(exc).strip().splitlines()[0]}"
    return url, ""


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A URL whose connections work in a new schema (holding the floor table), dropped afterwards."""
    import psycopg

    name = f"jbench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        conn.execute(f"SET search_path = {name}")
        conn.execute(FLOOR_TABLE)
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={name}')}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def sample_line(url: str) -> tuple[str, str, bytes]:
    """(hash, type, line) of a real journal line for the workload's message."""
    with Journal.from_url(url) as j:
        j.create("sample")
        j.add_message("sample", "user", CONTENT, metadata=METADATA)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT hash, type, line FROM journal_events WHERE session_id = 'sample'"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], bytes(row[2])


def append_latency(url: str, repeats: int) -> list[Row]:
    """One writer, one append per call, against one autocommit INSERT per row."""
    import psycopg

    with Journal.from_url(url) as j:
        j.create("s")
        j.add_message("s", "user", CONTENT, metadata=METADATA)  # the pool is open, the cache warm
        ours = timed(lambda: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)
    digest, kind, line = sample_line(url)
    with psycopg.connect(url, autocommit=True) as conn:
        seqs = iter(range(1, 10**9))
        floor = timed(lambda: conn.execute(FLOOR_INSERT, ["s", next(seqs), digest, kind, line]), repeats)
    return [Row("PostgreSQL append, 1 writer", ours, "psycopg INSERT, autocommit (floor)", floor, target=1.5)]


def journal_worker(
    url: str, proc: int, count: int, sessions: int, barrier: Barrier, results: Queue[float]
) -> None:
    """Process entry point: THREADS threads append ``count`` each, thread ``t`` of process
    ``proc`` to session ``g{(proc * THREADS + t) % sessions}``."""
    with Journal.from_url(url, snapshot_every=0, snapshot_bytes=0) as j:
        names = [f"g{(proc * THREADS + t) % sessions}" for t in range(THREADS)]
        for name in names:
            j.get(name)
        index = iter(names)
        lock = threading.Lock()

        def work() -> None:
            with lock:
                sid = next(index)
            for _ in range(count):
                j.add_message(sid, "user", CONTENT, metadata=METADATA)

        results.put(_threads(work, barrier))


def floor_worker(
    url: str,
    proc: int,
    count: int,
    batched: bool,
    line: tuple[str, str, bytes],
    barrier: Barrier,
    results: Queue[float],
) -> None:
    """Process entry point: the floor's THREADS writers, each on its own connection and seqs.

    ``batched``: one transaction per round of the process's THREADS rows (what group commit
    makes of THREADS concurrent appends at best); otherwise one autocommit INSERT per row.
    """
    import psycopg

    if batched:
        conn = psycopg.connect(url, autocommit=True)

        def work() -> None:
            base = proc * 10**9
            for n in range(count):
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        FLOOR_INSERT, [("batched", base + n * THREADS + t, *line) for t in range(THREADS)]
                    )

        try:
            results.put(_threads(work, barrier, threads=1))
        finally:
            conn.close()
        return
    conns = [psycopg.connect(url, autocommit=True) for _ in range(THREADS)]
    index = iter(range(THREADS))
    lock = threading.Lock()

    def each() -> None:
        with lock:
            t = next(index)
        base = (proc * THREADS + t) * 10**9
        for n in range(count):
            conns[t].execute(FLOOR_INSERT, ["per-row", base + n, *line])

    try:
        results.put(_threads(each, barrier))
    finally:
        for conn in conns:
            conn.close()


def _threads(work: Any, barrier: Barrier, threads: int = THREADS) -> float:
    """Seconds for ``threads`` threads to run ``work``, timed from the processes' barrier."""
    pool = [threading.Thread(target=work) for _ in range(threads)]
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def _processes(target: Any, args: list[tuple[Any, ...]]) -> float:
    """Events/s over every process, from the slowest one's time."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, results)) for a in args]
    for proc in procs:
        proc.start()
    seconds = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    return float(max(seconds))


def _created(url: str, sessions: int) -> None:
    with Journal.from_url(url) as j:
        for n in range(sessions):
            j.create(f"g{n}")


def group_commit(url: str, each: int) -> list[Row]:
    """PROCESSES x THREADS writers on one session, then on SESSIONS, in events/s."""
    _created(url, SESSIONS)
    events = PROCESSES * THREADS * each
    line = sample_line(url)
    rows = [(url, p, each, False, line) for p in range(PROCESSES)]
    per_row = [events / _processes(floor_worker, rows)]
    batched = [events / _processes(floor_worker, [(url, p, each, True, line) for p in range(PROCESSES)])]
    one = [events / _processes(journal_worker, [(url, p, each, 1) for p in range(PROCESSES)])]
    many = [events / _processes(journal_worker, [(url, p, each, SESSIONS) for p in range(PROCESSES)])]
    name = f"PostgreSQL {PROCESSES} procs x {THREADS} threads"
    floor = "psycopg INSERT per row, autocommit (floor)"
    return [
        Row(f"{name}, 1 session", one, floor, per_row, "ops/s", target=0.5, at_most=False),
        Row(
            f"{name}, 1 session",
            one,
            f"psycopg {THREADS} rows per transaction",
            batched,
            "ops/s",
            at_most=False,
        ),
        Row(f"{name}, {SESSIONS} sessions", many, floor, per_row, "ops/s", target=0.8, at_most=False),
    ]


def scale_out(url: str, each: int) -> list[Row]:
    """N app processes (THREADS threads each) on SESSIONS sessions, against the floor with as
    many connections: how throughput grows with app processes on one server."""
    import psycopg

    _created(url, SESSIONS)
    line = sample_line(url)
    rows = []
    for procs in SCALE:
        events = procs * THREADS * each
        ours = [events / _processes(journal_worker, [(url, p, each, SESSIONS) for p in range(procs)])]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE floor_events")  # the floor's writers reuse their keys each run
        floor = [events / _processes(floor_worker, [(url, p, each, False, line) for p in range(procs)])]
        rows.append(
            Row(
                f"PostgreSQL scale-out: {procs} procs x {THREADS} threads, {SESSIONS} sessions",
                ours,
                f"psycopg INSERT per row, {procs * THREADS} connections (floor)",
                floor,
                "ops/s",
                at_most=False,
            )
        )
    return rows


def cold_load(url: str, tmp: Path, size: int, repeats: int) -> list[Row]:
    """Every message of a ``size``-event session, first read of a connected Journal: from the
    rows alone, and from a snapshot row (the same session with a snapshot at its last event).

    Journal and floor samples alternate, so that load on a shared machine weighs on both."""
    import psycopg

    fill(tmp / "pg-load", size, "big")
    fill(tmp / "pg-load", size, "snapped")
    with Journal(tmp / "pg-load") as source, Journal.from_url(url) as target:
        copied = copy_sessions(source, target, ["big", "snapped"])
        target.create("warm")
        target.compact("snapped")  # a snapshot row at the last event, as the policy leaves one
    assert all(copy.problems == () for copy in copied)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO floor_events SELECT 'big', seq, hash, type, line FROM journal_events"
            " WHERE session_id = 'big'"
        )
        # Both tables as a server that has seen them: planned from statistics.
        conn.execute("ANALYZE")

    def ours(sid: str) -> float:
        with Journal.from_url(url) as j:
            j.get("warm")  # connected: only the load is timed
            start = time.perf_counter()
            for message in j.get(sid).messages:
                _ = message.content
            return time.perf_counter() - start

    decode = msgspec.json.Decoder().decode
    logs: list[float] = []
    snapshots: list[float] = []
    floor: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:

        def select() -> list[object]:
            query = "SELECT line FROM floor_events WHERE session_id = 'big' ORDER BY seq"
            return [decode(line) for (line,) in conn.execute(query)]

        for _ in range(repeats):
            logs.append(ours("big"))
            floor += timed(select, 1)
            snapshots.append(ours("snapped"))
            floor += timed(select, 1)
    return [
        Row(
            f"PostgreSQL full load {size} (cold, no snapshot)",
            logs,
            "psycopg SELECT + decode (floor)",
            floor,
            target=1.2,
        ),
        Row(
            f"PostgreSQL full load {size} (cold, snapshot row)",
            snapshots,
            "psycopg SELECT + decode (floor)",
            floor,
        ),
    ]


def postgres(tmp: Path, repeats: int, each: int, load_size: int, load_repeats: int) -> list[Row]:
    """Every PostgreSQL row, or none (with a note) when no server answers."""
    url, why = server()
    if url is None:
        print(f"note: PostgreSQL rows skipped: {why}")
        return []
    with fresh_schema(url) as schema:
        rows = append_latency(schema, repeats)
    with fresh_schema(url) as schema:
        rows += group_commit(schema, each)
    with fresh_schema(url) as schema:
        rows += cold_load(schema, tmp, load_size, load_repeats)
    with fresh_schema(url) as schema:
        rows += scale_out(schema, each)
    return rows


__all__ = ["postgres"]
