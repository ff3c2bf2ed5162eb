"""The benchmark cases. Each returns rows comparing journal with a baseline in the same run."""

from __future__ import annotations

import fcntl
import gc
import json
import multiprocessing
import os
import time
import tracemalloc
from array import array
from pathlib import Path

import msgspec
from filelock import FileLock

from benchmarks.baselines import SQLiteStore, file_chat_history, human_message, rewrite_whole_file
from benchmarks.common import CONTENT, METADATA, Row, fill, timed
from benchmarks.workers import threaded_appends, timed_worker
from journal import Journal
from journal.backends.files.layout import Layout
from journal.backends.files.locking import SessionLock

MESSAGE = {"role": "user", "content": CONTENT, "metadata": METADATA}


def seed_rewrite(path: Path, messages: list[dict[str, object]]) -> None:
    """What chat apps do today: rewrite the whole session file after every change."""
    messages.append(dict(MESSAGE))
    rewrite_whole_file(path, messages)


def append_no_fsync(tmp: Path, sizes: list[int], repeats: int) -> list[Row]:
    """One writer, fsync="never": against SQLite WAL NORMAL, whole-file rewrites, LangChain."""
    rows = []
    with Journal(tmp / "plain", fsync="never") as j:
        j.create("s")
        ours = timed(lambda: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)
    db = SQLiteStore(tmp / "normal.db", "NORMAL")
    counter = iter(range(1, 10**9))
    theirs = timed(lambda: db.append("s", next(counter), MESSAGE), repeats)
    db.close()
    rows.append(Row("append, fsync=never", ours, "SQLite WAL NORMAL INSERT", theirs, target=1.0))
    for size in sizes:
        root = tmp / f"append{size}"
        fill(root, size)
        with Journal(root, fsync="never") as j:
            ours = timed(lambda j=j: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)  # type: ignore[misc]
        history = [dict(MESSAGE) for _ in range(size)]
        seed = tmp / f"seed{size}.json"
        theirs = timed(lambda s=seed, h=history: seed_rewrite(s, h), max(10, repeats // 20))  # type: ignore[misc]
        target = 1 / 500 if size >= 10_000 else None
        rows.append(Row(f"append at {size} msgs", ours, "whole-file rewrite", theirs, target=target))
        langchain = file_chat_history(tmp / f"langchain{size}.json", prefill=size)
        if langchain is not None:
            theirs = timed(lambda h=langchain: h.add_message(human_message(CONTENT)), max(10, repeats // 20))  # type: ignore[misc]
            rows.append(Row(f"append at {size} msgs", ours, "FileChatMessageHistory", theirs))
    return rows


def append_durable(tmp: Path, repeats: int) -> list[Row]:
    """fsync="always" against SQLite WAL FULL and the floor: one write + fdatasync."""
    with Journal(tmp / "durable", fsync="always") as j:
        j.create("s")
        ours = timed(lambda: j.add_message("s", "user", CONTENT, metadata=METADATA), repeats)
    db = SQLiteStore(tmp / "full.db", "FULL")
    counter = iter(range(1, 10**9))
    sqlite = timed(lambda: db.append("s", next(counter), MESSAGE), repeats)
    db.close()
    # The floor writes a line as long as journal's (with its hashes), so only overhead differs.
    with Journal(tmp / "sample", fsync="never") as j:
        j.create("s")
        j.add_message("s", "user", CONTENT, metadata=METADATA)
    line = (next((tmp / "sample" / "sessions").iterdir()) / "events.jsonl").read_bytes().splitlines()[
        -1
    ] + b"\n"
    fd = os.open(tmp / "raw.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def raw() -> None:
        os.write(fd, line)
        os.fdatasync(fd)

    try:
        floor = timed(raw, repeats)
    finally:
        os.close(fd)
    return [
        Row("append, fsync=always", ours, "SQLite WAL FULL INSERT", sqlite),
        Row("append, fsync=always", ours, "os.write + fdatasync (floor)", floor, target=1.3),
    ]


def group_commit(tmp: Path, each: int) -> list[Row]:
    """Throughput of 1, 2, 4, 8 threads appending durably to one session, against 1 thread."""
    rows = []
    single = [threaded_appends(tmp / "threads1", 1, each)]
    for threads in (2, 4, 8):
        rate = [threaded_appends(tmp / f"threads{threads}", threads, each)]
        target = 3.0 if threads == 8 else None
        rows.append(
            Row(
                f"group commit, {threads} threads",
                rate,
                "1 thread",
                single,
                "ops/s",
                target=target,
                at_most=False,
            )
        )
    return rows


def contention(tmp: Path, each: int) -> list[Row]:
    """4 processes on one session and on 4 sessions, against one process alone (appends/s)."""
    ctx = multiprocessing.get_context("spawn")

    def run(processes: int, sessions: int, name: str) -> float:
        root = tmp / name
        barrier = ctx.Barrier(processes)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=timed_worker, args=(str(root), f"s{p % sessions}", each, barrier, results))
            for p in range(processes)
        ]
        for proc in procs:
            proc.start()
        seconds = [results.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
        return float(processes * each / max(seconds))

    alone = [run(1, 1, "alone")]
    one = [run(4, 1, "one-session")]
    four = [run(4, 4, "four-sessions")]
    return [
        Row("4 processes, 1 session", one, "1 process", alone, "ops/s", at_most=False),
        Row("4 processes, 4 sessions", four, "1 process", alone, "ops/s", at_most=False),
    ]


def loads(tmp: Path, sizes: list[int], repeats: int) -> list[Row]:
    """Cold open (first get + newest 20) and full load, with and without a snapshot."""
    rows = []
    cold_snap: dict[int, list[float]] = {}
    for size in sizes:
        root = tmp / f"load{size}"
        fill(root, size)
        folder = next((root / "sessions").iterdir())
        db = SQLiteStore(tmp / f"load{size}.db", "NORMAL")
        with db.db:
            db.db.executemany(
                "INSERT INTO messages VALUES ('s', ?, ?)",
                ((n, msgspec.json.encode(MESSAGE)) for n in range(size)),
            )
        sqlite = timed(lambda db=db: db.load("s"), repeats)  # type: ignore[misc]
        db.close()
        for snapshot in (False, True):
            if snapshot:
                with Journal(root) as j:
                    j.compact("s")
            if snapshot:
                parts = snapshot_parts(folder)
                floor = timed(lambda p=parts: decode_snapshot_raw(p), repeats)  # type: ignore[misc]
            else:
                data = (folder / "events.jsonl").read_bytes()
                floor = timed(lambda d=data: decode_log_raw(d), repeats)  # type: ignore[misc]
            cold = timed(lambda root=root: _cold(root), repeats)  # type: ignore[misc]
            full = timed(lambda root=root: _full(root), repeats)  # type: ignore[misc]
            label = "snapshot" if snapshot else "log only"
            if snapshot:
                cold_snap[size] = cold
            rows.append(Row(f"full load {size} ({label})", full, "raw msgspec decode", floor, target=1.5))
            if not snapshot:
                target = 0.5 if size == 10_000 else None
                rows.append(
                    Row(f"full load {size} ({label})", full, "SQLite SELECT + decode", sqlite, target=target)
                )
            rows.append(Row(f"cold open {size} ({label})", cold, "raw msgspec decode", floor))
    smallest, largest = min(sizes), max(sizes)
    rows.append(
        Row(
            f"cold open {largest} (snapshot)",
            cold_snap[largest],
            f"cold open {smallest} (snapshot)",
            cold_snap[smallest],
            target=2.0,
        )
    )
    return rows


def _cold(root: Path) -> None:
    with Journal(root) as j:
        _ = j.get("s").messages_view[-20:]


def _full(root: Path) -> None:
    with Journal(root) as j:
        for message in j.get("s").messages:
            _ = message.content


def decode_log_raw(data: bytes) -> list[object]:
    """The floor for a log: msgspec decoding each line into plain objects."""
    decode = msgspec.json.Decoder().decode
    return [decode(line) for line in data.splitlines()]


def snapshot_parts(folder: Path) -> list[bytes]:
    """The bytes a snapshot's reader reads: the chunks it names, then the document."""
    data = next(folder.glob("snapshot-*.snap")).read_bytes()
    doc = msgspec.msgpack.decode(data[40:])
    chunks = [(folder / f"chunk-{digest.hex()}.snapc").read_bytes() for digest, _ in doc.get("chunks", [])]
    return [*chunks, data]


def decode_snapshot_raw(parts: list[bytes]) -> list[object]:
    """The floor for a snapshot: msgspec decoding every byte of it into plain objects."""
    out = []
    for number, data in enumerate(parts, 1):
        doc = msgspec.msgpack.decode(data[40:] if number == len(parts) else data)
        blob, ends = doc["messages"], array("Q", doc["offsets"])
        start = 0
        for end in ends:
            out.append(msgspec.msgpack.decode(blob[start:end]))
            start = end
    return out


def memory(tmp: Path, size: int) -> list[Row]:
    """Resident bytes of one cached session against the JSON size of its messages: loaded
    from the log, from a snapshot, and from a snapshot once ``session.messages`` was read (the
    tuple of built messages is kept with the cached state, beside the snapshot's bytes)."""
    root = tmp / "memory"
    fill(root, size)
    rows = []
    for label in ("from log", "from snapshot", "from snapshot, messages read"):
        if label == "from snapshot":
            with Journal(root) as j:
                j.compact("s")
        gc.collect()
        tracemalloc.start()
        j = Journal(root)
        session = j.get("s")
        if label.endswith("messages read"):
            del session
            j.get("s").messages  # noqa: B018 (built and kept by the cached state)
            session = j.get("s")
        resident, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        as_json = len(
            json.dumps(
                [
                    {"id": m.id, "seq": m.seq, "role": m.role, "content": m.content, "at": m.at.isoformat()}
                    | {"metadata": dict(m.metadata)}
                    for m in session.messages_view
                ]
            )
        )
        j.close()
        target = 3.0 if label.endswith("messages read") else 2.0
        rows.append(
            Row(f"cached {size}-msg session ({label})", [resident], "its JSON size", [as_json], "B", target)
        )
    return rows


def lock_floor(tmp: Path, repeats: int) -> list[Row]:
    """The cross-process lock of one append, against raw flock on an open descriptor."""
    lock = SessionLock(Layout(tmp / "lockroot").lock_path("s"), timeout=1)

    def ours() -> None:
        lock.acquire()
        lock.release()

    path = tmp / "raw.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def raw() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)

    naive = FileLock(tmp / "naive.lock")

    def filelock_default() -> None:
        naive.acquire()
        naive.release()

    try:
        mine, floor, plain = timed(ours, repeats), timed(raw, repeats), timed(filelock_default, repeats)
    finally:
        os.close(fd)
        lock.close()
    return [
        Row("lock acquire + release", mine, "fcntl.flock on an open fd", floor),
        Row("filelock.FileLock acquire + release", plain, "fcntl.flock on an open fd", floor),
    ]


__all__ = [
    "append_durable",
    "append_no_fsync",
    "contention",
    "group_commit",
    "loads",
    "lock_floor",
    "memory",
]


def catch_up(tmp: Path, size: int, repeats: int) -> list[Row]:
    """What a ``tail`` or a catch-up pays: another process appended one event to a session of
    ``size`` this Journal had read; ``events(after=its last seq)`` against reading the history
    from the start, as every such call did before views kept where they were read from."""
    root = tmp / "catch-up"
    fill(root, size)
    spent: list[float] = []
    with Journal(root, fsync="never") as writer, Journal(root) as reader:
        last = max(e.seq for e in reader.events("s"))
        for _ in range(repeats):
            writer.add_message("s", "assistant", CONTENT, metadata=METADATA)
            start = time.perf_counter()
            found = list(reader.events("s", after=last))
            spent.append(time.perf_counter() - start)
            last = found[-1].seq
        whole = timed(lambda: list(reader.events("s")), max(3, repeats // 10))
    return [Row(f"catch-up: 1 new event after {size:,}", spent, "the history from its start", whole)]
