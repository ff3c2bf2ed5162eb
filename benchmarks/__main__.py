"""Append and load costs, each compared with a baseline measured in the same run.

Run ``python -m benchmarks`` (or ``--quick``). Every figure is the median over repeats with
the min..max range; ratios are computed within this run only, because absolute times on a
shared machine are not comparable across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from journal import Journal

CONTENT = ("The quick brown fox jumps over the lazy dog. " * 7)[:300]
METADATA = {"model": "small-llm", "tokens": 87, "latency_ms": 412.5}


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call of ``fn``, one sample per repeat."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def seed_rewrite(path: Path, messages: list[dict[str, object]]) -> None:
    """What chat apps do today: rewrite the whole session file after every change."""
    messages.append({"role": "user", "content": CONTENT, "metadata": METADATA})
    data = json.dumps({"messages": messages, "settings": {}}).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def fmt(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:9.1f} us ({min(samples) * 1e6:.1f}..{max(samples) * 1e6:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    args = parser.parse_args(argv)
    repeats = 200 if args.quick else 1000
    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            with Journal(Path(tmp, f"j{size}"), fsync="never") as j:
                j.create("s")
                for _ in range(size):
                    j.add_message("s", "user", CONTENT, metadata=METADATA)
                ours = timed(lambda j=j: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)  # type: ignore[misc]
            seed_file = Path(tmp, f"seed{size}.json")
            history: list[dict[str, object]] = [
                {"role": "user", "content": CONTENT, "metadata": METADATA} for _ in range(size)
            ]
            theirs = timed(lambda f=seed_file, h=history: seed_rewrite(f, h), max(20, repeats // 10))  # type: ignore[misc]
            ratio = statistics.median(theirs) / statistics.median(ours)
            rows.append(
                (
                    f"append at {size} msgs, fsync=never",
                    fmt(ours),
                    f"seed rewrite {fmt(theirs)}  x{ratio:.0f}",
                )
            )
        with Journal(Path(tmp, "durable"), fsync="always") as j:
            j.create("s")
            ours = timed(lambda: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats // 4)
        raw_path = Path(tmp, "raw.jsonl")
        line = json.dumps({"role": "user", "content": CONTENT, "metadata": METADATA}).encode() + b"\n"
        fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

        def raw() -> None:
            os.write(fd, line)
            os.fdatasync(fd)

        floor = timed(raw, repeats // 4)
        os.close(fd)
        ratio = statistics.median(ours) / statistics.median(floor)
        rows.append(("append, fsync=always", fmt(ours), f"raw write+fdatasync {fmt(floor)}  x{ratio:.2f}"))
        size = sizes[-1]

        def cold() -> None:
            with Journal(Path(tmp, f"j{size}")) as fresh:
                fresh.get("s").messages[-20:]

        loads = timed(cold, 10 if args.quick else 30)
        rows.append((f"cold open, {size} msgs, no snapshot", fmt(loads), ""))
    width = max(len(r[0]) for r in rows)
    for name, value, against in rows:
        print(f"{name:<{width}}  {value}  {against}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
