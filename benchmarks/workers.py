"""Process and thread workers for the concurrency benchmarks (importable by spawned children)."""

from __future__ import annotations

import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from benchmarks.common import CONTENT, METADATA
from journal import Journal


def append_many(root: str, session: str, count: int, fsync: str, barrier: Barrier | None = None) -> float:
    """Append ``count`` messages; returns the seconds it took after the barrier."""
    with Journal(Path(root), fsync=fsync, snapshot_every=0, snapshot_bytes=0) as j:
        j.get_or_create(session)
        if barrier is not None:
            barrier.wait()
        start = time.perf_counter()
        for _ in range(count):
            j.add_message(session, "user", CONTENT, metadata=METADATA)
        return time.perf_counter() - start


def timed_worker(root: str, session: str, count: int, barrier: Barrier, results: Queue[float]) -> None:
    """Process entry point: report how long ``count`` appends took once all processes started."""
    results.put(append_many(root, session, count, "never", barrier))


def threaded_appends(root: Path, threads: int, each: int) -> float:
    """Throughput (appends per second) of ``threads`` threads sharing one durable Journal."""
    with Journal(root, fsync="always", snapshot_every=0, snapshot_bytes=0) as j:
        j.get_or_create("s")
        gate = threading.Barrier(threads + 1)

        def work() -> None:
            gate.wait()
            for _ in range(each):
                j.add_message("s", "user", CONTENT, metadata=METADATA)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        gate.wait()
        start = time.perf_counter()
        for thread in pool:
            thread.join()
        return threads * each / (time.perf_counter() - start)
