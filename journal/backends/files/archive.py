"""Archive segments: pruned events, byte for byte, in gzip files.

A segment holds the exact lines of events ``first``..``last`` as they were in the active log,
so every line keeps its hash and the chain runs on from the last archived line into the active
log. Names are zero-padded (``00000000000000000001-00000000000000001000.jsonl.gz``) so that
text order is seq order; ``zcat`` and ``jq`` read them as they are.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from journal.backends.files.fsio import Folder

__all__ = [
    "Segment",
    "compress",
    "ensure_archive",
    "list_segments",
    "read_segment_lines",
    "segment_name",
    "write_segment",
]

_NAME = re.compile(r"^(\d{20})-(\d{20})\.jsonl\.gz$")
_CHUNK = 1 << 20


class Segment(NamedTuple):
    """One archive file and the seqs it holds: ``name`` in the (open) archive ``folder``."""

    first: int
    last: int
    folder: Folder
    name: str

    @property
    def path(self) -> Path:
        """Where it is, for messages."""
        return self.folder.path / self.name


def segment_name(first: int, last: int) -> str:
    return f"{first:020d}-{last:020d}.jsonl.gz"


def list_segments(folder: Folder | None) -> list[Segment]:
    """The segments in archive ``folder``, in seq order (empty if there is no archive: None)."""
    if folder is None:
        return []
    found = []
    for name in folder.names():
        match = _NAME.match(name)
        if match:
            found.append(Segment(int(match[1]), int(match[2]), folder, name))
    return sorted(found, key=lambda segment: (segment.first, segment.last))


def compress(lines: bytes) -> bytes:
    """A segment's bytes: the lines, gzipped reproducibly (no time stamp in the header)."""
    return gzip.compress(lines, compresslevel=6, mtime=0)


def ensure_archive(session_folder: Folder) -> Folder:
    """The session's archive folder, created (0700) if missing; kept open with the session's."""
    folder = session_folder.child("archive", create=True)
    assert folder is not None
    return folder


def write_segment(folder: Folder, first: int, last: int, lines: bytes) -> Segment:
    """Compress ``lines`` (complete lines of events first..last) into a new segment, atomically."""
    name = segment_name(first, last)
    folder.write_atomic(name, compress(lines))
    return Segment(first, last, folder, name)


def read_segment_lines(segment: Segment) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line_number, offset_in_uncompressed_data, line)`` for each complete line.

    Raises:
        OSError, EOFError, zlib.error: the file is not a complete gzip stream; callers report
            it as damage with the segment's path.
    """
    raw = os.fdopen(segment.folder.open(segment.name, os.O_RDONLY), "rb")  # a regular file, never a FIFO
    with raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
        buf = b""
        offset = 0
        line_no = 1
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            buf += chunk
            pos = 0
            while (nl := buf.find(b"\n", pos)) >= 0:
                yield line_no, offset + pos, buf[pos:nl]
                line_no += 1
                pos = nl + 1
            buf = buf[pos:]
            offset += pos
        if buf:
            raise EOFError(f"{len(buf)} bytes after the last complete line")


SEGMENT_ERRORS = (OSError, EOFError, zlib.error)


def inflate(raw: bytes) -> tuple[bytes, bool]:
    """As much of a gzip file as decompresses, and whether that was all of it (for damaged
    copies, read loosely)."""
    stream = zlib.decompressobj(wbits=31)
    try:
        data = stream.decompress(raw)
    except zlib.error:
        return b"", False
    return data, stream.eof and not stream.unused_data
