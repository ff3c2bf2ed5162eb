"""Low-level log file I/O: scan complete lines from an offset, append in one write.

Lines are split on ``\\n`` bytes only: U+2028, U+0085 and other Unicode line breaks are
ordinary bytes inside a JSON string and never end a line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from journal.core.head import Head

__all__ = ["LineScan", "holds_hash", "last_line", "line_ending_at", "read_range", "write_all"]

_CHUNK = 1 << 20
_TAIL_CHUNK = 1 << 14  # most lines are shorter: one read finds the start of the last


class LineScan:
    """Iterate the complete lines of a file from ``start``, reading with ``pread``.

    Yields ``(line_number, offset, bytes_without_newline)``. After iteration, ``end`` is the
    offset just after the last complete line and ``torn`` the number of bytes after it that
    were not (yet) terminated by a newline: a crashed write, or one still in progress.
    """

    def __init__(self, fd: int, start: int = 0, first_line: int = 1) -> None:
        self.fd = fd
        self.start = start
        self.first_line = first_line
        self.end = start
        self.torn = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        fd = self.fd
        offset = self.start  # file offset of buf[0]
        line_no = self.first_line
        buf = b""
        while True:
            chunk = os.pread(fd, _CHUNK, offset + len(buf))
            if not chunk:
                break
            buf = buf + chunk if buf else chunk
            pos = 0
            while True:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
                yield line_no, offset + pos, buf[pos:nl]
                line_no += 1
                pos = nl + 1
                self.end = offset + pos
            buf = buf[pos:]
            offset += pos
        self.torn = len(buf)


def read_range(fd: int, offset: int, size: int) -> bytes:
    """The ``size`` bytes at ``offset`` (fewer if the file ends first)."""
    parts = []
    end = offset + size
    while offset < end:
        chunk = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def line_ending_at(fd: int, end: int) -> tuple[int, bytes] | None:
    """The complete line whose newline is the byte before ``end``: (its offset, its bytes
    without the newline); None if that byte is not a newline.

    Reads backwards in chunks, so a long history costs nothing: only the line itself is read.
    """
    if end < 1 or os.pread(fd, 1, end - 1) != b"\n":
        return None
    parts: list[bytes] = []
    stop = end - 1  # the line's bytes end here (its newline excluded)
    while stop > 0:
        start = max(0, stop - _TAIL_CHUNK)
        chunk = os.pread(fd, stop - start, start)
        if len(chunk) != stop - start:
            return None  # the file shrank under us: no line ends there any more
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            parts.append(chunk[nl + 1 :])
            start += nl + 1
            stop = start
            break
        parts.append(chunk)
        stop = start
    parts.reverse()
    return stop, b"".join(parts)


def last_line(fd: int, size: int) -> tuple[int, bytes] | None:
    """The last complete line of the first ``size`` bytes (see ``line_ending_at``); None if
    there is none. An unterminated tail after it (a torn write, or one in progress) is not
    a line yet and is skipped."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        nl = os.pread(fd, end - start, start).rfind(b"\n")
        if nl >= 0:
            return line_ending_at(fd, start + nl + 1)
        end = start
    return None


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``: one ``write`` call, and more only if the kernel wrote less.

    Readers never mistake a partly written append for an event: they stop at the last
    newline, and writers are serialised by the session lock. A short write is followed by
    another so that a full disk surfaces as its own error (ENOSPC, EFBIG), not a guess.
    """
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(0, f"write made no progress ({len(view)} bytes left)")
        view = view[written:]


def holds_hash(fd: int, head: Head) -> bool:
    """Whether the log open as ``fd`` has ``head``'s chain hash where ``head`` says it is.

    Logs are only appended to, so this proves the log still holds the events up to ``head``.
    """
    return os.pread(fd, 64, head.cursor[1]) == head.hash.encode("ascii")
