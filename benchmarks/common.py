"""The workload and the measuring helpers shared by every benchmark."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from journal import Journal

# A realistic chat message: ~300 characters of text and a small metadata dict.
CONTENT = ("The quick brown fox jumps over the lazy dog. " * 7)[:300]
METADATA = {"model": "small-llm", "tokens": 87, "latency_ms": 412.5}


class Row(NamedTuple):
    """One comparison: journal's samples against a baseline's, measured in the same run.

    ``target`` is the ratio journal / baseline we hold ourselves to, with ``at_most`` saying
    whether the ratio must stay at or below it (times) or at or above it (throughputs).
    """

    name: str
    ours: list[float]
    baseline: str
    theirs: list[float]
    unit: str = "s"
    target: float | None = None
    at_most: bool = True


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call of ``fn``, one sample per repeat."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def fill(root: Path, count: int, session: str = "s") -> None:
    """A session with ``count`` realistic messages and no snapshot."""
    with Journal(root, fsync="never", snapshot_every=0, snapshot_bytes=0) as j:
        j.create(session)
        for _ in range(count):
            j.add_message(session, "user", CONTENT, metadata=METADATA)
