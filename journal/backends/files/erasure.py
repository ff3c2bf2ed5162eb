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
import os
from collections.abc import Iterable, Iterator

from journal.backends.files.archive import list_segments, read_segment_lines, write_segment
from journal.backends.files.fsio import TEMP_SUFFIX, Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    load_base,
    quarantined_files,
    remove_all_chunks,
    snapshot_name,
    snapshot_seqs,
)
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.logfile import read_range
from journal.core.codec import decode, erase_body
from journal.core.events import MessageRedacted
from journal.core.redaction import (
    MIN_NEEDLE,
    content_of,
    erased_state,
    holds_content,
    line_needles,
    scrub_line,
)
from journal.core.snapshot import encode_snapshot, shows_content
from journal.errors import LineError

__all__ = [
    "erase_message",
    "quarantine_mentions",
    "redaction_stored",
    "scrub_quarantine",
]


def erase_message(folder: Folder, fd: int, size: int, message_id: str, by: int) -> None:
    """Erase ``message_id``'s content everywhere in ``folder``.

    ``fd`` is the active log, ``size`` bytes long (read up to its end under the lock); ``by``
    is the seq of the redaction event. The quarantine goes first: its damaged copies can only
    be recognised by the content itself, which the history still holds until it is erased.
    """
    archive = folder.child(ARCHIVE_DIR)
    segments = [
        (segment, [line for _, _, line in read_segment_lines(segment)]) for segment in list_segments(archive)
    ]
    log_lines = read_range(fd, 0, size).split(b"\n")[:-1]
    base = load_base(folder)
    texts = {
        text
        for _, lines in [*segments, (None, log_lines)]
        for line in lines
        if (text := content_of(line, message_id, by)) is not None
    }
    if base is not None and (index := base[0].messages_view.index_of(message_id)) >= 0:
        texts.add(base[0].messages_view[index].content)
    scrub_quarantine(folder, message_id, by, texts)
    for seq in snapshot_seqs(folder):
        folder.unlink(snapshot_name(seq), missing_ok=True)
    remove_all_chunks(folder)
    for place, name in _leftovers(folder):
        place.unlink(name, missing_ok=True)
    # The deletions must be durable before any rewrite: otherwise a power cut can keep an
    # erased file and bring back a snapshot that shows the content beside it.
    folder.fsync()
    if archive is not None:
        archive.fsync()
    if base is not None and archive is not None:
        state = erased_state(base[0], message_id)
        if state is not None:
            _rewrite(archive, BASE_NAME, encode_snapshot(state, base[1], kind="base"))
    for segment, lines in segments:
        erased = _erased(lines, message_id, by)
        if erased is not None:
            write_segment(segment.folder, segment.first, segment.last, erased)
    erased = _erased(log_lines, message_id, by)
    if erased is not None:
        _rewrite(folder, LOG_NAME, erased)


def _rewrite(folder: Folder, name: str, data: bytes) -> None:
    """Replace file ``name`` of ``folder`` with ``data``, atomically (the erasure's rewrites
    of the base, the active log and quarantined files)."""
    folder.write_atomic(name, data)


def redaction_stored(folder: Folder, log_fd: int, message_id: str, by: int) -> bool:
    """Whether the history holds the redaction of ``message_id`` at seq ``by`` (an erasure's
    intent is written before its event: a crash between leaves an intent to drop)."""
    mark = b'"seq":%d,"type":"message_redacted"' % by
    sources = [read_range(log_fd, 0, os.fstat(log_fd).st_size).split(b"\n")]
    sources += (
        [line for _, _, line in read_segment_lines(seg)] for seg in list_segments(folder.child(ARCHIVE_DIR))
    )
    for lines in sources:
        for line in lines:
            if mark in line:
                try:
                    event = decode(line).event
                except LineError:
                    continue
                if isinstance(event, MessageRedacted) and event.message_id == message_id:
                    return True
    return False


def quarantine_mentions(folder: Folder, message_id: str) -> bool:
    """Whether anything ``repair`` moved into the session's quarantine is the message's own."""
    in_lines, in_snapshots = line_needles(message_id, ())[0], message_id.encode()
    return any(
        (in_snapshots if moved.name.endswith(".snap") else in_lines) in moved.data
        for moved in quarantined_files(folder)
    )


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


def _leftovers(folder: Folder) -> Iterator[tuple[Folder, str]]:
    # Temporary files of writers that crashed before their rename: copies of a log, a segment
    # or a snapshot, possibly holding the content. Under the lock nobody is writing one.
    for place in (folder, folder.child(ARCHIVE_DIR)):
        if place is None:
            continue
        for name in place.names():
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                yield place, name


def scrub_quarantine(folder: Folder, message_id: str, by: int, texts: Iterable[str]) -> None:
    """Erase the message's content from what ``repair`` moved into the session's quarantine.

    Quarantined bytes failed a check, so they are matched loosely, by the message's id (where
    a line states whose it is) and by each version of its content (``texts``, at least
    ``MIN_NEEDLE`` characters, as JSON spells them in a line and as MessagePack does in a
    snapshot): a line that holds either gets its body erased when it still has the shape of a
    line with a body, and is dropped otherwise; a snapshot that holds either is deleted; every
    other byte stays. A compressed segment is read as far as it decompresses; if that part
    names the message, the rest (which cannot be read, so cannot be checked) goes with it.
    """
    in_lines = line_needles(message_id, texts)
    in_snapshots = [t.encode() for t in texts if len(t) >= MIN_NEEDLE]
    for moved in quarantined_files(folder):
        data, name = moved.data, moved.name
        if name.endswith(".snap"):
            if shows_content(data, message_id) or any(n in data for n in in_snapshots):
                moved.folder.unlink(name)
            continue
        if not any(n in data for n in in_lines):
            continue
        kept = [scrub_line(line, message_id, by, in_lines) for line in data.split(b"\n")]
        out = b"\n".join(line for line in kept if line is not None)
        if out != data or not moved.whole:
            _rewrite(moved.folder, name, gzip.compress(out, mtime=0) if name.endswith(".gz") else out)
