"""File helpers and child-process workers for the snapshot, compaction and retention tests.

The workers live at module level because the ``spawn`` start method imports the target afresh
in the child. A worker that is not killed on purpose reports failure through its exit code.

Everything here looks at the files the way an outside reader would: snapshot and segment names
come from listing the session folder, archived lines from gunzipping the segments.
"""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

from journal import Journal
from journal.backends.files.layout import Layout
from journal.core import snapshot
from tests.helpers_proc import BARRIER_TIMEOUT, content_for

__all__ = [
    "appending_snapshot_worker",
    "archived_bytes",
    "compact_worker",
    "copy_root",
    "flip",
    "leftovers",
    "line_ends",
    "log_path",
    "segment_name",
    "segment_names",
    "segment_paths",
    "session_dir",
    "snapshot_name",
    "snapshot_names",
    "writer_worker",
]


def session_dir(root: str | os.PathLike[str], session_id: str) -> Path:
    """The session's folder, named by the library's own (tested elsewhere) path function."""
    return Layout(root).session_dir(session_id)


def log_path(root: str | os.PathLike[str], session_id: str) -> Path:
    return session_dir(root, session_id) / "events.jsonl"


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.snap"


def segment_name(first: int, last: int) -> str:
    return f"{first:020d}-{last:020d}.jsonl.gz"


def snapshot_names(root: str | os.PathLike[str], session_id: str) -> list[str]:
    """The snapshot files in the session folder, sorted (hidden temporary files excluded)."""
    folder = session_dir(root, session_id)
    return sorted(n for n in os.listdir(folder) if n.startswith("snapshot-") and n.endswith(".snap"))


def segment_paths(root: str | os.PathLike[str], session_id: str) -> list[Path]:
    """The archive segments, sorted by name (so by seq: the names are zero-padded)."""
    archive = session_dir(root, session_id) / "archive"
    if not archive.exists():
        return []
    return sorted(p for p in archive.iterdir() if p.name.endswith(".jsonl.gz") and not p.name.startswith("."))


def segment_names(root: str | os.PathLike[str], session_id: str) -> list[str]:
    return [p.name for p in segment_paths(root, session_id)]


def archived_bytes(root: str | os.PathLike[str], session_id: str) -> bytes:
    """Every archive segment gunzipped and concatenated, in name order."""
    return b"".join(gzip.decompress(p.read_bytes()) for p in segment_paths(root, session_id))


def leftovers(root: str | os.PathLike[str], session_id: str) -> list[str]:
    """Hidden temporary files left in the session folder or its archive (crash leftovers)."""
    folder = session_dir(root, session_id)
    found = [p for p in folder.rglob(".*") if p.is_file()]
    return sorted(str(p.relative_to(folder)) for p in found)


def line_ends(data: bytes) -> list[int]:
    """Byte offset just after each complete line (index i: after the line of seq i + 1)."""
    ends = []
    pos = data.find(b"\n")
    while pos >= 0:
        ends.append(pos + 1)
        pos = data.find(b"\n", pos + 1)
    return ends


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    """XOR one byte of ``path`` in place (a negative offset counts from the end)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def copy_root(source: Path, target: Path) -> Path:
    """A byte-for-byte copy of a journal root (nothing shared with the writer that made it)."""
    shutil.copytree(source, target, symlinks=True)
    return target


# -- workers --------------------------------------------------------------------------------


def writer_worker(root: str, session_id: str, first: int, count: int, snapshot_every: int) -> None:
    """Append messages ``"m<first>"`` .. ``"m<first + count - 1>"`` with automatic snapshots."""
    with Journal(root, snapshot_every=snapshot_every, snapshot_bytes=0) as journal:
        journal.get_or_create(session_id)
        for i in range(first, first + count):
            journal.add_message(session_id, "user", f"m{i}")


def compact_worker(root: str, session_id: str, prune: bool, retention_us: int | None, start: Barrier) -> None:
    """Compact the session in a loop until killed (pruning, and applying a retention, if asked)."""
    retention = None if retention_us is None else timedelta(microseconds=retention_us)
    journal = Journal(root, fsync="always", retention=retention)
    start.wait(BARRIER_TIMEOUT)
    while True:
        journal.compact(session_id, prune=prune)


def appending_snapshot_worker(
    root: str,
    session_id: str,
    writer: str,
    ack_path: str,
    start: Barrier,
    snapshot_every: int,
    archive_after: int | None,
    chunk_bytes: int | None = None,
) -> None:
    """Append forever with frequent automatic snapshots (and pruning), acknowledging each append.

    Same ack protocol as ``tests.helpers_proc.crash_worker``: one ``"<seq> <content>\\n"`` line
    per returned ``add_message``, written with a single unbuffered ``os.write``. ``chunk_bytes``
    makes snapshot chunks that small, so that every snapshot writes chunks.
    """
    if chunk_bytes is not None:
        snapshot.CHUNK_BYTES = chunk_bytes
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    journal = Journal(
        root, fsync="always", snapshot_every=snapshot_every, snapshot_bytes=0, archive_after=archive_after
    )
    journal.get(session_id)
    start.wait(BARRIER_TIMEOUT)
    i = 0
    while True:
        content = content_for(writer, 0, i)
        message = journal.add_message(session_id, "user", content)
        os.write(fd, f"{message.seq} {content}\n".encode())
        i += 1
