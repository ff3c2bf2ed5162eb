"""The benchmark cases: each returns rows of (name, journal samples, baseline name, baseline samples).

Samples are seconds per operation. A ratio is always journal / baseline measured in the same
run; whether lower or higher is better is stated by the row's target in ``__main__``.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
import tracemalloc
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import msgspec

from journal import Journal

CONTENT = ("The quick brown fox jumps over the lazy dog. " * 7)[:300]
METADATA = {"model": "small-llm", "tokens": 87, "latency_ms": 412.5}


class Row(NamedTuple):
    name: str
    ours: list[float]
    baseline: str
    theirs: list[float]
    unit: str = "s"


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call of ``fn``, one sample per repeat."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def fill(root: Path, count: int, **options: object) -> None:
    """A session "s" with ``count`` realistic messages."""
    with Journal(root, fsync="never", snapshot_every=0, snapshot_bytes=0, **options) as j:  # type: ignore[arg-type]
        j.create("s")
        for _ in range(count):
            j.add_message("s", "user", CONTENT, metadata=METADATA)


def seed_rewrite(path: Path, messages: list[dict[str, object]]) -> None:
    """What chat apps do today: rewrite the whole session file after every change."""
    messages.append({"role": "user", "content": CONTENT, "metadata": METADATA})
    data = json.dumps({"messages": messages, "settings": {}}).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append_vs_rewrite(tmp: Path, sizes: list[int], repeats: int) -> list[Row]:
    rows = []
    for size in sizes:
        root = tmp / f"append{size}"
        fill(root, size)
        with Journal(root, fsync="never") as j:
            ours = timed(lambda j=j: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)  # type: ignore[misc]
        history = [{"role": "user", "content": CONTENT, "metadata": METADATA} for _ in range(size)]
        seed = tmp / f"seed{size}.json"
        theirs = timed(lambda s=seed, h=history: seed_rewrite(s, h), max(10, repeats // 10))  # type: ignore[misc]
        rows.append(Row(f"append at {size} msgs (fsync=never)", ours, "whole-file rewrite", theirs))
    return rows


def durable_append(tmp: Path, repeats: int) -> list[Row]:
    with Journal(tmp / "durable", fsync="always") as j:
        j.create("s")
        ours = timed(lambda: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)
    line = json.dumps({"role": "user", "content": CONTENT, "metadata": METADATA}).encode() + b"\n"
    fd = os.open(tmp / "raw.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def raw() -> None:
        os.write(fd, line)
        os.fdatasync(fd)

    try:
        floor = timed(raw, repeats)
    finally:
        os.close(fd)
    return [Row("append (fsync=always)", ours, "os.write + fdatasync", floor)]


def cold_loads(tmp: Path, sizes: list[int], repeats: int) -> list[Row]:
    rows = []
    for size in sizes:
        root = tmp / f"load{size}"
        fill(root, size)
        folder = next((root / "sessions").iterdir())
        log_bytes = (folder / "events.jsonl").read_bytes()
        for snapshot in (False, True):
            if snapshot:
                with Journal(root) as j:
                    j.compact("s")
            read_bytes = next(folder.glob("snapshot-*.snap")).read_bytes() if snapshot else log_bytes
            floor_decode: Callable[[], object] = (
                (lambda b=read_bytes: decode_snapshot_raw(b))  # type: ignore[misc]
                if snapshot
                else (lambda b=read_bytes: [msgspec.json.decode(x) for x in b.splitlines()])  # type: ignore[misc]
            )

            def cold(root: Path = root) -> None:
                with Journal(root) as j:
                    tuple(j.get("s").messages[-20:])

            def full(root: Path = root) -> None:
                with Journal(root) as j:
                    for message in j.get("s").messages:
                        _ = message.content

            label = "snapshot" if snapshot else "log only"
            floor = timed(floor_decode, repeats)
            rows.append(Row(f"cold open {size} events ({label})", timed(cold, repeats), "raw decode", floor))
            rows.append(Row(f"full load {size} events ({label})", timed(full, repeats), "raw decode", floor))
    return rows


def decode_snapshot_raw(data: bytes) -> list[object]:
    """The floor for a snapshot: msgspec decoding every byte of it into plain objects."""
    doc = msgspec.msgpack.decode(data[40:])
    blob, ends = doc["messages"], array("Q", doc["offsets"])
    start, out = 0, []
    for end in ends:
        out.append(msgspec.msgpack.decode(blob[start:end]))
        start = end
    return out


def memory(tmp: Path, size: int) -> list[Row]:
    root = tmp / "memory"
    fill(root, size)
    rows = []
    for snapshot in (False, True):
        if snapshot:
            with Journal(root) as j:
                j.compact("s")
        gc.collect()
        tracemalloc.start()
        j = Journal(root)
        session = j.get("s")
        resident, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        as_json = len(
            json.dumps(
                [
                    {
                        "id": m.id,
                        "seq": m.seq,
                        "role": m.role,
                        "content": m.content,
                        "at": m.at.isoformat(),
                        "metadata": dict(m.metadata),
                    }
                    for m in session.messages
                ]
            )
        )
        j.close()
        label = "from snapshot" if snapshot else "from log"
        rows.append(Row(f"cached {size}-msg session ({label})", [resident], "its JSON size", [as_json], "B"))
    return rows


def median(samples: list[float]) -> float:
    return statistics.median(samples)
