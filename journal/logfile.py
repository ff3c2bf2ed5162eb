"""Low-level log file I/O: scan complete lines from an offset, append in one write.

Lines are split on ``\\n`` bytes only: U+2028, U+0085 and other Unicode line breaks are
ordinary bytes inside a JSON string and never end a line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["LineScan", "write_all"]

_CHUNK = 1 << 20


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


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` with one ``write`` call; a short write raises OSError.

    One call is the unit other processes can observe: a reader never sees half of one line
    followed by another writer's line, because writers are serialised by the session lock.
    """
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(0, f"short write: {written} of {len(data)} bytes")
