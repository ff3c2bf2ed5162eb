"""What the median hides: append latency and bytes written as one session grows long.

One session gets ``count`` appends (``fsync="never"``, the realistic 300-character message),
each timed on its own. The first thousand are the baseline of the last thousand, in the same
run: a flat append costs the same at any length, at the median, at the 99th percentile, in the
mean (which carries the amortized cost of snapshots) and at the slowest (which carries stalls,
garbage-collector pauses included). Bytes written by the process (``wchar`` of
``/proc/self/io``: everything handed to ``write``, snapshots and archives included) are
compared with the log's final size: write amplification.

The same growth is measured for SQLite (WAL, ``synchronous=NORMAL``, one INSERT per append) and
for the whole-file rewrite chat apps do today (sampled at a few lengths: it is quadratic), and
drawn as ``growth.png`` in the results folder when matplotlib (extra ``bench``) is installed.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from benchmarks.baselines import SQLiteStore, rewrite_whole_file
from benchmarks.common import CONTENT, METADATA, Row
from journal import Journal
from journal.backends.files.layout import Layout

_WINDOW = 1_000
MESSAGE = {"role": "user", "content": CONTENT, "metadata": METADATA}


class Growth(NamedTuple):
    """One store's appends to one growing session: at each point (messages in the session),
    the p50 and p99 latency of the window ending there and the bytes written so far."""

    name: str
    points: list[int]
    p50: list[float]
    p99: list[float]
    written: list[float]


def written_bytes() -> int | None:
    """Bytes this process handed to ``write`` so far (Linux), or None where unknown."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def _grow(name: str, count: int, window: int, append: Callable[[], object]) -> tuple[Growth, list[float]]:
    """Time ``count`` calls of ``append``; the growth curve and every latency."""
    latencies: list[float] = []
    growth = Growth(name, [], [], [], [])
    start_bytes = written_bytes() or 0
    clock = time.perf_counter
    for n in range(1, count + 1):
        start = clock()
        append()
        latencies.append(clock() - start)
        if n % window == 0:
            recent = latencies[-window:]
            growth.points.append(n)
            growth.p50.append(statistics.median(recent))
            growth.p99.append(_p99(recent))
            growth.written.append(float((written_bytes() or 0) - start_bytes))
    return growth, latencies


def long_session(tmp: Path, count: int, plot_to: Path | None = None) -> list[Row]:
    """``count`` appends to one session: the last window against the first; with
    ``plot_to``, the growth of journal, SQLite and whole-file rewrites drawn there."""
    window = min(_WINDOW, count // 10)
    root = tmp / "long"
    before = written_bytes()
    with Journal(root, fsync="never") as journal:
        journal.create("s")
        ours, latencies = _grow(
            "journal", count, window, lambda: journal.add_message("s", "user", CONTENT, metadata=METADATA)
        )
    after = written_bytes()
    first, last = latencies[:window], latencies[-window:]
    span = f"appends {count - window + 1:,}-{count:,} vs 1-{window:,}"
    base = f"appends 1-{window:,}, same session"
    rows = [
        Row(f"p50, {span}", [statistics.median(last)], base, [statistics.median(first)]),
        Row(f"p99, {span}", [_p99(last)], base, [_p99(first)], target=1.3),
        Row(f"mean, {span}", [statistics.fmean(last)], base, [statistics.fmean(first)], target=1.3),
        Row(f"max, {span}", [max(last)], base, [max(first)], target=3.0),
    ]
    if before is not None and after is not None:
        log_size = Layout(root).log_path("s").stat().st_size
        rows.append(
            Row(
                f"bytes written over {count:,} appends",
                [float(after - before)],
                "the log's final size",
                [float(log_size)],
                unit="B",
                target=2.5,
            )
        )
    if plot_to is not None:
        plot([ours, _sqlite(tmp, count, window), _rewrite(tmp, ours.points)], plot_to)
    return rows


def _sqlite(tmp: Path, count: int, window: int) -> Growth:
    db = SQLiteStore(tmp / "long.db", "NORMAL")
    seqs = iter(range(1, count + 1))
    try:
        return _grow("SQLite WAL NORMAL", count, window, lambda: db.append("s", next(seqs), MESSAGE))[0]
    finally:
        db.close()


def _rewrite(tmp: Path, points: list[int]) -> Growth:
    """The whole-file rewrite at a few lengths (a full run would take hours): latency measured,
    bytes written summed from the file's size at each length (it grows linearly)."""
    growth = Growth("whole-file rewrite", [], [], [], [])
    path = tmp / "rewrite.json"
    picked = sorted({points[0], *points[len(points) // 4 :: max(1, len(points) // 4)], points[-1]})
    per_message = len(json.dumps(MESSAGE)) + 2
    for n in picked:
        messages = [MESSAGE] * n
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            rewrite_whole_file(path, messages)
            samples.append(time.perf_counter() - start)
        growth.points.append(n)
        growth.p50.append(statistics.median(samples))
        growth.p99.append(max(samples))
        growth.written.append(float(per_message * n * (n + 1) / 2))
    return growth


def plot(curves: list[Growth], path: Path) -> None:
    """Latency (p50, p99) and bytes written against messages in the session, one line per
    store; skipped with a note when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: growth.png not drawn: matplotlib is not installed (extra 'bench')")
        return
    fig, (latency, volume) = plt.subplots(1, 2, figsize=(12, 4.5))
    for curve in curves:
        (line,) = latency.plot(curve.points, [s * 1e6 for s in curve.p50], label=f"{curve.name}, p50")
        color = line.get_color()
        p99 = [s * 1e6 for s in curve.p99]
        latency.plot(curve.points, p99, "--", color=color, label=f"{curve.name}, p99")
        volume.plot(curve.points, [b / 1e6 for b in curve.written], color=color, label=curve.name)
    latency.set(xlabel="messages in the session", ylabel="append latency (us)", yscale="log")
    latency.set_title("One append, fsync off, as the session grows")
    volume.set(xlabel="messages in the session", ylabel="bytes written so far (MB)", yscale="log")
    volume.set_title("Bytes written by the process")
    for axes in (latency, volume):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
