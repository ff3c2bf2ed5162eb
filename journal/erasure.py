"""Redaction on disk: erasing one message's content from every file of a session folder.

Runs under the session's writer lock, after the ``message_redacted`` event is durably in the
active log. Every line that carries the message's content (its ``message_added`` and any
``message_edited``) keeps its sealed part and hash byte for byte and gets the body
``{"redacted":N}``, padded to the same length, so the chain still verifies and no position
any reader or snapshot holds moves. Files are rewritten one at a time, each atomically
(temporary file, fsync, rename), in this order:

1. every snapshot is deleted (each predates the redaction and may show the content), and the
   ``.tmp`` leftovers of crashed writers;
2. the retention base, if its state shows the message; archive segments holding such a line;
3. the active log (writers holding the old file see it unlinked and open the new one);
4. quarantined files: lines and snapshots of the message that ``repair`` moved there.

A crash part way leaves some files erased and some not, each valid: the redaction event is
already in the log, ``verify`` reports each place still holding the content (``unerased``),
and running the redaction again finishes it without a second event.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import msgspec

from journal.archive import SEGMENT_ERRORS, list_segments, read_segment_lines, write_segment
from journal.codec import LineError, decode, erase_body
from journal.events import MessageAdded, MessageEdited
from journal.history import ARCHIVE_DIR, BASE_NAME, load_base, snapshot_path, snapshot_seqs
from journal.logfile import read_range
from journal.paths import fsync_dir, list_names, write_atomic
from journal.repair import QUARANTINE_DIR
from journal.snapshot import encode_snapshot
from journal.state import Session

__all__ = ["erase_message", "erased_state", "holds_content", "scrub_line"]


def holds_content(line: bytes, message_id: str, by: int) -> bool:
    """Whether ``line`` (a checked line) still carries content of ``message_id`` from before ``by``."""
    if msgspec.json.encode(message_id) not in line:
        return False  # the cheap test first: almost every line is about another message
    try:
        event = decode(line).event
    except LineError:
        return False
    return (
        isinstance(event, (MessageAdded, MessageEdited))
        and event.message_id == message_id
        and event.redacted_by is None
        and event.seq < by
    )


def erased_state(state: Session, message_id: str) -> Session | None:
    """``state`` with the visible message's content erased; None if it shows no such content."""
    index = state.messages.index_of(message_id)
    if index < 0 or state.messages[index].redacted:
        return None
    message = msgspec.structs.replace(state.messages[index], content="", redacted=True)
    return msgspec.structs.replace(state, messages=state.messages.changed(index, message))


def erase_message(folder: Path, log_path: Path, fd: int, size: int, message_id: str, by: int) -> None:
    """Erase ``message_id``'s content everywhere in ``folder``.

    ``fd`` is the active log, ``size`` bytes long (read up to its end under the lock); ``by``
    is the seq of the redaction event.
    """
    for seq in snapshot_seqs(folder):
        snapshot_path(folder, seq).unlink(missing_ok=True)
    for leftover in _leftovers(folder):
        leftover.unlink(missing_ok=True)
    archive = folder / ARCHIVE_DIR
    # The deletions must be durable before any rewrite: otherwise a power cut can keep an
    # erased file and bring back a snapshot that shows the content beside it.
    fsync_dir(folder)
    fsync_dir(archive)
    base = load_base(folder)
    if base is not None:
        state = erased_state(base[0], message_id)
        if state is not None:
            write_atomic(archive / BASE_NAME, encode_snapshot(state, base[1], kind="base"))
    for segment in list_segments(archive):
        lines = [line for _, _, line in read_segment_lines(segment)]
        erased = _erased(lines, message_id, by)
        if erased is not None:
            write_segment(archive, segment.first, segment.last, erased)
    data = read_range(fd, 0, size)
    erased = _erased(data.split(b"\n")[:-1], message_id, by)
    if erased is not None:
        write_atomic(log_path, erased)
    _scrub_quarantine(folder / QUARANTINE_DIR, message_id, by)


def _erased(lines: list[bytes], message_id: str, by: int) -> bytes | None:
    """The lines (newline-terminated) with the message's bodies erased; None if none held any."""
    changed = False
    out = []
    for line in lines:
        if holds_content(line, message_id, by):
            line = erase_body(line, by)
            changed = True
        out.append(line)
    return b"".join(line + b"\n" for line in out) if changed else None


def _leftovers(folder: Path) -> Iterator[Path]:
    # Temporary files of writers that crashed before their rename: copies of a log, a segment
    # or a snapshot, possibly holding the content. Under the lock nobody is writing one.
    for place in (folder, folder / ARCHIVE_DIR):
        for name in list_names(place):
            if name.startswith(".") and name.endswith(".tmp"):
                yield place / name


def _scrub_quarantine(quarantine: Path, message_id: str, by: int) -> None:
    """Erase the message's content from what ``repair`` moved into quarantine.

    Quarantined lines failed a check, so they are read loosely: a line that parses as this
    message's ``message_added`` or ``message_edited`` gets its body erased; one too damaged to
    parse is dropped if it names the message as its own; every other line stays byte for byte.
    A quarantined snapshot naming the message is deleted.
    """
    for moved in list_names(quarantine):
        place = quarantine / moved
        for name in list_names(place):
            path = place / name
            packed = name.endswith(".gz")
            try:
                data = path.read_bytes()
                data = gzip.decompress(data) if packed else data
            except (*SEGMENT_ERRORS, IsADirectoryError):
                continue
            if name.endswith(".snap") and message_id.encode() in data:
                path.unlink()
                continue
            if name == "repair.json" or msgspec.json.encode(message_id) not in data:
                continue
            kept = [scrub_line(line, message_id, by) for line in data.split(b"\n")]
            out = b"\n".join(line for line in kept if line is not None)
            if out != data:
                write_atomic(path, gzip.compress(out, mtime=0) if packed else out)


def scrub_line(line: bytes, message_id: str, by: int) -> bytes | None:
    """A quarantined line with the message's content erased; None to drop it (see above)."""
    own = b'"data":{"id":' + msgspec.json.encode(message_id)
    try:
        parsed = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None if own in line else line
    if not (
        isinstance(parsed, dict)
        and parsed.get("type") in ("message_added", "message_edited")
        and isinstance(parsed.get("data"), dict)
        and parsed["data"].get("id") == message_id
        and isinstance(parsed.get("body"), dict)
        and "content" in parsed["body"]
    ):
        return line
    return erase_body(line, by) if line.rfind(b',"hash":"') >= 0 else None
