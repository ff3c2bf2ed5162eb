"""Rows of the PostgreSQL backend: reading and checking them, with or without the lock.

Shared by ``storage`` (lock-free reads) and ``transaction`` (the write transaction). Positions in
this backend are seqs: a row is found by its key, never by an offset.

Rows are read in binary (a ``bytea`` in text form is twice its size on the wire and parsed
byte by byte on the client) and checked as the files backend checks its lines: each line's
hash over its own bytes, its seq against the row's key, and its link to the line before, before
anything of it is trusted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from journal.core.chain import check_line
from journal.core.head import Head, Record
from journal.core.snapshot import decode_snapshot
from journal.core.state import Session
from journal.engine.storage import Batch, Stamp
from journal.errors import CorruptLogError, SnapshotError, StaleHeadError

__all__ = [
    "CHUNK",
    "SEP",
    "checked",
    "head_at",
    "history_rows",
    "history_start",
    "line_seq",
    "line_type",
    "load_base",
    "lock_key",
    "newest_snapshot",
    "psycopg_modules",
    "read_rows",
    "stamp_of",
    "write_snapshot",
]

log = logging.getLogger("journal")

# Rows per query when reading a whole history: a few MB, so a connection is held only for one
# query at a time, and the server sorts a chunk in memory even where no statistics tell its
# planner to walk the index instead.
CHUNK = 4096
SEP = "\x1f"  # between the schema and the session id in a notification
TYPE_KEY = b',"type":"'
SEQ_KEY = b'"seq":'

_RANGE = "SELECT seq, line FROM journal_events WHERE session_id = %s AND seq > %s AND seq <= %s ORDER BY seq"
_PAST = "SELECT seq, line FROM journal_events WHERE session_id = %s AND seq > %s ORDER BY seq LIMIT %s"


def psycopg_modules() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ImportError(
            'the PostgreSQL backend needs psycopg 3 and its pool: pip install "chat-journal[postgres]"'
        ) from None
    return psycopg, psycopg_pool


def lock_key(session_id: str) -> int:
    return int.from_bytes(hashlib.sha256(session_id.encode("utf-8")).digest()[:8], "big", signed=True)


def line_type(line: bytes) -> str:
    # The third member of every line: the first ',"type":"' can only be the real one.
    start = line.find(TYPE_KEY) + len(TYPE_KEY)
    return line[start : line.find(b'"', start)].decode("ascii", "replace")


def line_seq(line: bytes) -> int | None:
    """The seq a line states, read without decoding it (None: not where every line states it)."""
    # Every line starts '{"v":N,"seq":'; a damaged one is reported by the full check anyway.
    start = line.find(SEQ_KEY, 0, 16)
    if start < 0:
        return None
    digits = line[start + len(SEQ_KEY) : line.find(b",", start)]
    return int(digits) if digits.isdigit() and len(digits) <= 19 else None


def head_at(seq: int, digest: str, active_from: int) -> Head:
    return Head(seq, digest, seq - active_from + 1 if seq >= active_from else 0, ())


def stamp_of(row: tuple[Any, ...]) -> Stamp:
    """A session's stamp from its row (incarnation, generation, last_seq, ...): a new
    incarnation (deleted and created again), any append or compaction changes it."""
    return (row[0].int, row[1], row[2])


def checked(
    rows: Iterable[tuple[int, bytes]], after: Head | None, where: str, active_from: int
) -> Iterator[Record]:
    """The records of ``rows`` (seq, line; in seq order, chained after ``after``), each given as
    soon as it checks out; CorruptLogError at the first row that does not.

    Each line is decoded and hashed by ``core.chain.check_line`` (its hash, its shape, its
    content digest, its seq and prev against the line before), and its seq must be the row's
    key: a line stored under another seq would give a head that the session row contradicts.
    One record at a time: a chunk of records kept alive together would be walked again and
    again by the garbage collector while the state they fold into grows.
    """
    head = after
    for seq, line in rows:
        decoded = check_line(line, head, path=where, line=seq, offset=0)
        if decoded.event.seq != seq:
            raise CorruptLogError(
                where, seq, 0, f"the row of seq {seq} holds the line of seq {decoded.event.seq}"
            )
        head = head_at(seq, decoded.hash, active_from)
        yield Record(decoded.event, head, seq, 0, len(line) + 1)


def read_rows(
    conn: Any, where: str, session_id: str, after: Head | None, *, check_after: bool = True
) -> Batch:
    """Checked records after ``after``, and the session's stamp as read; StaleHeadError if
    ``after`` is no longer stored there.

    One statement reads ``after``'s own row with the rows after it and the session row: the
    check, the read and the stamp see one snapshot of the tables, so a delete between them
    cannot pass for "nothing new".
    """
    floor = 0 if after is None else after.seq
    rows = conn.execute(
        "SELECT e.seq, e.line, e.hash, s.active_from, s.incarnation, s.generation, s.last_seq"
        " FROM journal_events e JOIN journal_sessions s ON s.id = e.session_id"
        " WHERE e.session_id = %s AND e.seq >= %s ORDER BY e.seq",
        [session_id, floor],
        binary=True,
    ).fetchall()
    stamp = stamp_of(rows[0][4:]) if rows else None
    start = 0
    if rows and rows[0][0] == floor:
        start = 1
        if check_after and rows[0][2] != after.hash:  # type: ignore[union-attr]
            raise StaleHeadError()
    elif after is not None and check_after:
        # Not stored as a row: only a retention base can end there.
        base = conn.execute("SELECT seq FROM journal_bases WHERE session_id = %s", [session_id]).fetchone()
        if base is None or base[0] != after.seq:
            raise StaleHeadError()
    records: list[Record] = []
    if len(rows) > start:
        try:
            for record in checked(((r[0], r[1]) for r in rows[start:]), after, where, int(rows[0][3])):
                records.append(record)
        except CorruptLogError as exc:
            return Batch(records, None, exc)
    return Batch(records, stamp)


def history_rows(
    connection: Callable[[], AbstractContextManager[Any]], session_id: str, after: int
) -> Iterator[list[tuple[int, bytes]]]:
    """The rows after seq ``after``, ``CHUNK`` at a time, each chunk one query on a connection
    held only while it runs (a caller may take its time between chunks).

    Chunks are ranges of seqs, so each query reads and sorts at most ``CHUNK`` rows whatever
    plan the server picks. A range that comes back short ends the log, or leaves a gap: the
    rest past it is asked for once, so a row stored after a gap is still read (and reported
    where it fails to chain)."""
    low, bounded = after, True
    while True:
        with connection() as conn:
            if bounded:
                rows = conn.execute(_RANGE, [session_id, low, low + CHUNK], binary=True).fetchall()
            else:
                rows = conn.execute(_PAST, [session_id, low, CHUNK], binary=True).fetchall()
        if rows:
            yield rows
        if bounded:
            bounded = len(rows) == CHUNK
            low += CHUNK
        elif len(rows) < CHUNK:
            return
        else:
            low = rows[-1][0]


def newest_snapshot(conn: Any, where: str, session_id: str) -> tuple[Session, Head] | None:
    """The newest snapshot whose event is still stored with its hash (others are caches gone stale).

    Raises:
        CorruptLogError: a snapshot covers events past the last stored one: they were lost,
            and appending under their seqs would fork the history it records.
    """
    rows = conn.execute(
        "SELECT s.seq, s.data, (SELECT max(e.seq) FROM journal_events e WHERE e.session_id = %s),"
        " (SELECT e.hash FROM journal_events e WHERE e.session_id = %s AND e.seq = s.seq)"
        " FROM journal_snapshots s WHERE s.session_id = %s ORDER BY s.seq DESC",
        [session_id, session_id, session_id],
        binary=True,
    ).fetchall()
    for seq, data, last, stored in rows:
        try:
            session, head = decode_snapshot(data)
        except SnapshotError as exc:
            log.warning("%s: snapshot at seq %d skipped: %s", session_id, seq, exc.reason)
            continue
        if head.seq != seq:
            log.warning("%s: snapshot at seq %d skipped: it holds seq %d", session_id, seq, head.seq)
            continue
        if head.seq > (last or 0):
            raise CorruptLogError(
                f"{where} (snapshot {seq})",
                0,
                -1,
                f"the snapshot covers events up to seq {seq} but the stored events end at seq "
                f"{last or 0}: events were lost (run repair)",
            )
        if stored == head.hash:
            return session, Head(head.seq, head.hash, head.active, ())
    return None


def write_snapshot(conn: Any, session_id: str, seq: int, data: bytes) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO journal_snapshots (session_id, seq, data) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [session_id, seq, data],
        )
        conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s AND seq < %s", [session_id, seq])


def load_base(conn: Any, where: str, session_id: str) -> tuple[Session, Head] | None:
    row = conn.execute(
        "SELECT data FROM journal_bases WHERE session_id = %s", [session_id], binary=True
    ).fetchone()
    return None if row is None else base_of(where, row[0])


def history_start(conn: Any, where: str, session_id: str) -> tuple[tuple[Session, Head] | None, int]:
    """The retention base (None: the history starts at seq 1) and the session's first seq not
    archived, in one round trip."""
    row = conn.execute(
        "SELECT (SELECT active_from FROM journal_sessions WHERE id = %s),"
        " (SELECT data FROM journal_bases WHERE session_id = %s)",
        [session_id, session_id],
        binary=True,
    ).fetchone()
    return (None if row[1] is None else base_of(where, row[1])), (1 if row[0] is None else int(row[0]))


def base_of(where: str, data: bytes) -> tuple[Session, Head]:
    try:
        session, head = decode_snapshot(data, kind="base")
    except SnapshotError as exc:
        raise CorruptLogError(f"{where} (base)", 0, 0, f"retention base unreadable: {exc.reason}") from None
    return session, Head(head.seq, head.hash, 0, ())
