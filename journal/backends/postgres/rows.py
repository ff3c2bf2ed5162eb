"""Rows of the PostgreSQL backend: reading and checking them, with or without the lock.

Shared by ``pgstore`` (lock-free reads) and ``pgtx`` (the write transaction). Positions in this
backend are seqs: a row is found by its key, never by an offset.
"""

from __future__ import annotations

import hashlib
import logging
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
    "head_at",
    "line_type",
    "load_base",
    "lock_key",
    "newest_snapshot",
    "psycopg_modules",
    "read_rows",
    "record_of",
    "stamp_of",
    "write_snapshot",
]

log = logging.getLogger("journal")

CHUNK = 2000  # rows per query when streaming a history
SEP = "\x1f"  # between the schema and the session id in a notification
TYPE_KEY = b',"type":"'


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


def record_of(line: bytes, after: Head | None, where: str, seq: int, active_from: int = 1) -> Record:
    """The record of a checked row. Positions in this backend are seqs: a row is found by its
    key, so a head has no cursor; its ``active`` count is the rows not archived up to it."""
    decoded = check_line(line, after, path=where, line=seq, offset=0)
    return Record(decoded.event, head_at(seq, decoded.hash, active_from), seq, 0, len(line) + 1)


def head_at(seq: int, digest: str, active_from: int) -> Head:
    return Head(seq, digest, seq - active_from + 1, ())


def stamp_of(row: tuple[Any, ...]) -> Stamp:
    """A session's stamp from its row (incarnation, generation, last_seq, ...): a new
    incarnation (deleted and created again), any append or compaction changes it."""
    return (row[0].int, row[1], row[2])


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
    ).fetchall()
    stamp = stamp_of(rows[0][4:]) if rows else None
    if rows and rows[0][0] == floor:
        first = rows.pop(0)
        if check_after and first[2] != after.hash:  # type: ignore[union-attr]
            raise StaleHeadError()
    elif after is not None and check_after:
        # Not stored as a row: only a retention base can end there.
        base = conn.execute("SELECT seq FROM journal_bases WHERE session_id = %s", [session_id]).fetchone()
        if base is None or base[0] != after.seq:
            raise StaleHeadError()
    records: list[Record] = []
    head = after
    for seq, line, _, active_from, *_ in rows:
        try:
            record = record_of(bytes(line), head, where, seq, int(active_from))
        except CorruptLogError as exc:
            return Batch(records, None, exc)
        head = record.head
        records.append(record)
    return Batch(records, stamp)


def newest_snapshot(conn: Any, where: str, session_id: str) -> tuple[Session, Head] | None:
    """The newest snapshot whose event is still stored with its hash (others are caches gone stale).

    Raises:
        CorruptLogError: a snapshot covers events past the last stored one: they were lost,
            and appending under their seqs would fork the history it records.
    """
    rows = conn.execute(
        "SELECT s.seq, s.data, (SELECT max(e.seq) FROM journal_events e WHERE e.session_id = %s)"
        " FROM journal_snapshots s WHERE s.session_id = %s ORDER BY s.seq DESC",
        [session_id, session_id],
    ).fetchall()
    for seq, data, last in rows:
        try:
            session, head = decode_snapshot(bytes(data))
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
        row = conn.execute(
            "SELECT hash FROM journal_events WHERE session_id = %s AND seq = %s", [session_id, head.seq]
        ).fetchone()
        if row is not None and row[0] == head.hash:
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
    row = conn.execute("SELECT data FROM journal_bases WHERE session_id = %s", [session_id]).fetchone()
    if row is None:
        return None
    try:
        session, head = decode_snapshot(bytes(row[0]), kind="base")
    except SnapshotError as exc:
        raise CorruptLogError(f"{where} (base)", 0, 0, f"retention base unreadable: {exc.reason}") from None
    return session, Head(head.seq, head.hash, 0, ())
