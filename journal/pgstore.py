"""The PostgreSQL backend: the same event lines, one row each, behind the same seam.

``PgStorage`` implements ``storage.Storage`` (see ``pgschema`` for the tables). What the files
backend gets from ``flock`` and append-only files, this one gets from the database:

* **One writer per session.** A write transaction holds a session-level advisory lock keyed
  by the session id (released by the server if the connection dies). Independently of the
  lock, the unique key ``(session_id, seq)`` makes two writers racing for one seq fail one.
* **Durable when a write returns:** the rows are committed (``synchronous_commit`` as the
  server is configured: on by default).
* **Idempotent retries.** If the connection drops while an append commits, the writer
  reconnects, takes the lock again and looks for its rows by seq and hash (each line's hash
  covers a random salt or a fresh timestamp): found, the append succeeded; absent, it is
  written once more; anything else raises ``StorageError``. An event is never lost once
  acknowledged and never stored twice.
* **Read your writes, across hosts:** reads go to the database; a cached state is checked
  with one primary-key lookup (``stamp``).
* **Change feed:** every append notifies channel ``journal`` with the session id
  (``wait``); a waiter always re-reads after waking, so a lost notification loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from journal.codec import decode, erase_body
from journal.erasure import erased_state, holds_content, scrub_line
from journal.errors import CorruptLogError, LockTimeoutError, SessionExistsError, StorageError
from journal.pgschema import migrate
from journal.snapshot import SnapshotError, decode_snapshot, encode_snapshot
from journal.state import Session
from journal.storage import (
    Head,
    History,
    PruneResult,
    Record,
    StaleHeadError,
    Stamp,
    apply_record,
    check_line,
)
from journal.verify import Anchor, ChainCheck, Moved, RepairReport, SessionCheck

__all__ = ["ChangeFeed", "PgStorage", "export_rows", "is_postgres_url"]

log = logging.getLogger("journal")

_CHUNK = 2000  # rows per query when streaming a history
_SEP = "\x1f"  # between the schema and the session id in a notification
_TYPE_KEY = b',"type":"'


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ImportError(
            'the PostgreSQL backend needs psycopg 3 and its pool: pip install "journal[postgres]"'
        ) from None
    return psycopg, psycopg_pool


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _lock_key(session_id: str) -> int:
    return int.from_bytes(hashlib.sha256(session_id.encode("utf-8")).digest()[:8], "big", signed=True)


def _line_type(line: bytes) -> str:
    # The third member of every line: the first ',"type":"' can only be the real one.
    start = line.find(_TYPE_KEY) + len(_TYPE_KEY)
    return line[start : line.find(b'"', start)].decode("ascii", "replace")


class PgStorage:
    """Sessions in PostgreSQL; see the module docstring.

    Args:
        url: a libpq connection URL (``postgresql://user@host:5432/db``); ``options`` in it
            may set a ``search_path`` to keep several journals in one database.
        lock_timeout: seconds to wait for another writer of the same session (negative:
            forever).
        pool_size: connections kept per process.
    """

    def __init__(self, url: str, *, lock_timeout: float = 60.0, pool_size: int = 4) -> None:
        self.url = url
        self.shown = _shown(url)
        self.lock_timeout = lock_timeout
        self.pool_size = pool_size
        self._pool: Any = None
        self._pid = os.getpid()
        self._guard = threading.Lock()
        _storages.add(self)

    # -- connections -----------------------------------------------------------------------

    def _connect_pool(self) -> Any:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        with self._guard:
            return self._open_pool()

    def _open_pool(self) -> Any:
        if self._pool is not None and self._pid == os.getpid():
            return self._pool
        psycopg, psycopg_pool = _psycopg()
        if self._pool is not None:
            # Inherited across fork: the parent's sockets. Never close them from here (that
            # would end the parent's sessions); keep them referenced and open our own.
            _inherited.append(self._pool)
        self._pid = os.getpid()
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                migrate(conn)
        except psycopg.Error as exc:
            raise StorageError("connect", self.shown, str(exc).strip() or type(exc).__name__) from None
        self._pool = psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            kwargs={"autocommit": True},
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="journal",
        )
        self._pool.open(wait=True, timeout=30)
        return self._pool

    @contextmanager
    def connection(self, operation: str = "read") -> Iterator[Any]:
        """A pooled connection (autocommit); database errors become ``StorageError``."""
        psycopg, psycopg_pool = _psycopg()
        pool = self._connect_pool()
        try:
            with pool.connection(timeout=30) as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(operation, self.shown, str(exc).strip() or type(exc).__name__) from None

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    # -- reading without the lock ----------------------------------------------------------

    def location(self, session_id: str) -> str:
        return f"{self.shown}#{session_id}"

    def stamp(self, session_id: str) -> Stamp | None:
        with self.connection() as conn:
            row = conn.execute(
                "SELECT incarnation, generation, last_seq FROM journal_sessions WHERE id = %s", [session_id]
            ).fetchone()
        if row is None or row[2] == 0:
            return None
        return Stamp((row[0].int, row[1], row[2]), row[2])

    def read(self, session_id: str, after: Head | None = None) -> Iterator[Record]:
        with self.connection() as conn:
            return iter(read_rows(conn, self.location(session_id), session_id, after))

    def snapshot(self, session_id: str) -> tuple[Session, Head] | None:
        with self.connection() as conn:
            return newest_snapshot(conn, session_id)

    def history(self, session_id: str, resume: tuple[int, str] | None = None) -> History:
        with self.connection() as conn:
            base = load_base(conn, self.location(session_id), session_id)
        start = None if base is None else base[1]
        return (
            None if base is None else base[0],
            start,
            self._stream(session_id, start),
        )

    def _stream(self, session_id: str, start: Head | None) -> Iterator[Record]:
        head = start
        where = self.location(session_id)
        while True:
            with self.connection() as conn:
                rows = conn.execute(
                    "SELECT seq, line FROM journal_events WHERE session_id = %s AND seq > %s"
                    " ORDER BY seq LIMIT %s",
                    [session_id, 0 if head is None else head.seq, _CHUNK],
                ).fetchall()
            for seq, line in rows:
                record = _record(bytes(line), head, where, seq)
                head = record.head
                yield record
            if len(rows) < _CHUNK:
                return

    def history_stamp(self, session_id: str) -> object:
        with self.connection() as conn:
            return conn.execute(
                "SELECT incarnation, generation FROM journal_sessions WHERE id = %s", [session_id]
            ).fetchone()

    def save_snapshot(self, session_id: str, session: Session, head: Head) -> None:
        """Record a snapshot (a cache: failures are logged), unless a redaction followed ``head``."""
        try:
            data = encode_snapshot(session, head)
            with self.connection("snapshot") as conn, conn.transaction():
                # Not while a writer (a redaction, say) holds the session: it is only a cache.
                locked = conn.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", [_lock_key(session_id)]
                ).fetchone()
                if not locked[0]:
                    return
                agrees = conn.execute(
                    "SELECT 1 FROM journal_events WHERE session_id = %s AND seq = %s AND hash = %s",
                    [session_id, head.seq, head.hash],
                ).fetchone()
                redacted = conn.execute(
                    "SELECT 1 FROM journal_events WHERE session_id = %s AND seq > %s"
                    " AND type = 'message_redacted' LIMIT 1",
                    [session_id, head.seq],
                ).fetchone()
                if agrees and not redacted:
                    write_snapshot(conn, session_id, head.seq, data)
        except Exception as exc:  # a cache must never fail the write it follows
            log.warning(
                "%s: could not write a snapshot at seq %d: %s", self.location(session_id), head.seq, exc
            )

    # -- writing under the lock -------------------------------------------------------------

    def writer(self, session_id: str) -> PgTransaction:
        return PgTransaction(self, session_id)

    def delete(self, session_id: str) -> bool:
        with self.writer(session_id) as tx:
            return tx.delete()

    def session_ids(self) -> Iterator[str]:
        with self.connection() as conn:
            rows = conn.execute("SELECT id FROM journal_sessions WHERE last_seq > 0 ORDER BY id").fetchall()
        return iter([row[0] for row in rows])

    # -- moving whole sessions between backends ---------------------------------------------

    def export_raw(self, session_id: str) -> tuple[bytes | None, list[bytes]]:
        """See ``Storage.export_raw`` (under the session's lock)."""
        with self.writer(session_id) as tx:
            base = load_base(tx.conn, tx.where, session_id)
            after = None if base is None else base[1]
            data = tx.conn.execute(
                "SELECT data FROM journal_bases WHERE session_id = %s", [session_id]
            ).fetchone()
            lines = []
            for seq, line in tx.conn.execute(
                "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [session_id]
            ).fetchall():
                after = _record(bytes(line), after, tx.where, seq).head
                lines.append(bytes(line))
        return (None if data is None else bytes(data[0])), lines

    def import_raw(self, session_id: str, base: bytes | None, lines: list[bytes]) -> None:
        """See ``Storage.import_raw``: one transaction, so a failed import leaves nothing."""
        with self.writer(session_id) as tx, tx.conn.transaction():
            row = tx._row()
            if row is not None and row[2] > 0:
                raise SessionExistsError(session_id, 0, int(row[2]))
            if base is not None:
                _, head = decode_snapshot(base, kind="base")
                tx.conn.execute(
                    "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                    " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                    [session_id, head.seq, base],
                )
            last = 0
            with tx.conn.cursor() as cur:
                for line in lines:
                    decoded = decode(line)
                    last = decoded.event.seq
                    cur.execute(
                        "INSERT INTO journal_events (session_id, seq, hash, type, line)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        [session_id, last, decoded.hash, decoded.event.type, line],
                    )
            tx.conn.execute(
                "INSERT INTO journal_sessions (id, incarnation, last_seq) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,"
                " last_seq = excluded.last_seq, generation = journal_sessions.generation + 1",
                [session_id, uuid.uuid4(), last],
            )
            tx.conn.execute("SELECT pg_notify('journal', current_schema() || %s || %s)", [_SEP, session_id])

    # -- integrity -------------------------------------------------------------------------

    def verify_targets(self, session_id: str | None) -> list[str]:
        if session_id is not None:
            return [session_id] if self.stamp(session_id) is not None else []
        return list(self.session_ids())

    def verify(self, target: str, anchors: Mapping[str, Anchor]) -> SessionCheck:
        with self.writer(target) as tx:
            check = tx.check(anchors.get(target))
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=target, seq=check.seq, hash=check.hash)
        return SessionCheck(target, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        if self.stamp(session_id) is None:
            return None
        with self.writer(session_id) as tx:
            return tx.repair(dry_run)


class PgTransaction:
    """One session held exclusively (``storage.Transaction``): a pooled connection holding the
    session's advisory lock."""

    def __init__(self, storage: PgStorage, session_id: str) -> None:
        self.storage = storage
        self.sid = session_id
        self.where = storage.location(session_id)
        self.conn: Any = None
        self._cm: Any = None

    def __enter__(self) -> PgTransaction:
        self._acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _acquire(self) -> None:
        psycopg, _ = _psycopg()
        self._cm = self.storage.connection("lock")
        self.conn = self._cm.__enter__()
        timeout = self.storage.lock_timeout
        try:
            if timeout == 0:  # PostgreSQL reads a lock_timeout of 0 as "wait forever"
                if not self.conn.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(self.sid)]).fetchone()[
                    0
                ]:
                    raise psycopg.errors.LockNotAvailable()
            else:
                # Negative waits forever (0 to the server); a positive wait is at least 1 ms.
                wait = 0 if timeout < 0 else max(1, int(timeout * 1000))
                self.conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{wait}ms"])
                self.conn.execute("SELECT pg_advisory_lock(%s)", [_lock_key(self.sid)])
        except psycopg.errors.LockNotAvailable:
            self._release()
            raise LockTimeoutError(self.where, timeout) from None
        except BaseException as exc:
            self._release(exc)
            raise

    def _release(self, exc: BaseException | None = None) -> None:
        cm, self._cm = self._cm, None
        if cm is None:
            return
        psycopg, _ = _psycopg()
        try:
            if exc is None and not self.conn.closed:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(self.sid)])
        except psycopg.Error:
            pass  # the connection is gone, and the server released the lock with it
        finally:
            self.conn = None
            cm.__exit__(None, None, None)

    def _reconnect(self) -> None:
        """After a dropped connection: a new one, holding the lock again."""
        self._release(ConnectionError())
        self._acquire()

    # -- reads -----------------------------------------------------------------------------

    def read(self, after: Head | None) -> Iterator[Record]:
        return iter(read_rows(self.conn, self.where, self.sid, after))

    def snapshot(self) -> tuple[Session, Head] | None:
        return newest_snapshot(self.conn, self.sid)

    def history(self) -> History:
        # On this connection: another one from the pool could wait on writers holding the rest.
        base = load_base(self.conn, self.where, self.sid)
        records = read_rows(
            self.conn, self.where, self.sid, None if base is None else base[1], check_after=False
        )
        return (None if base is None else base[0], None if base is None else base[1], iter(records))

    def save_snapshot(self, session: Session, head: Head) -> None:
        write_snapshot(self.conn, self.sid, head.seq, encode_snapshot(session, head))

    # -- writes ----------------------------------------------------------------------------

    def _row(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT incarnation, generation, last_seq, active_from FROM journal_sessions WHERE id = %s",
            [self.sid],
        ).fetchone()
        return row

    def _stamp(self) -> Stamp:
        row = self._row()
        assert row is not None
        return Stamp((row[0].int, row[1], row[2]), row[2])

    def append(self, after: Head | None, lines: list[tuple[bytes, int, str, int]]) -> tuple[Head, Stamp]:
        psycopg, _ = _psycopg()
        start = 0 if after is None else after.seq
        try:
            self._insert(start, lines)
        except psycopg.errors.UniqueViolation:
            raise StaleHeadError() from None
        except psycopg.OperationalError as exc:
            # The commit's fate is unknown: look for the rows under the lock, by seq and hash.
            log.warning("%s: connection lost during an append (%s); checking what landed", self.where, exc)
            try:
                self._reconnect()
                landed = self._landed(lines)
                if landed == len(lines):
                    pass
                elif landed == 0 and self._last_seq() == start:
                    self._insert(start, lines)
                else:
                    raise StorageError(
                        "append", self.where, "connection lost; another writer appended since: retry"
                    )
            except psycopg.Error as again:
                raise StorageError("append", self.where, str(again).strip() or type(again).__name__) from None
        row = self._row()
        assert row is not None
        last = lines[-1]
        head = _head(last[1], last[2], int(row[3]))
        return head, Stamp((row[0].int, row[1], row[2]), row[2])

    def _last_seq(self) -> int:
        row = self._row()
        return 0 if row is None else int(row[2])

    def _landed(self, lines: list[tuple[bytes, int, str, int]]) -> int:
        rows = self.conn.execute(
            "SELECT seq, hash FROM journal_events WHERE session_id = %s AND seq = ANY(%s)",
            [self.sid, [entry[1] for entry in lines]],
        ).fetchall()
        want = {entry[1]: entry[2] for entry in lines}
        return sum(1 for seq, digest in rows if want.get(seq) == digest)

    def _insert(self, start: int, lines: list[tuple[bytes, int, str, int]]) -> None:
        with self.conn.transaction():
            row = self._row()
            if (0 if row is None else row[2]) != start:
                raise StaleHeadError()
            if row is None or start == 0:
                # A new session (or one whose create crashed): a new incarnation.
                self.conn.execute(
                    "INSERT INTO journal_sessions (id, incarnation, last_seq) VALUES (%s, %s, 0)"
                    " ON CONFLICT (id) DO UPDATE SET incarnation = excluded.incarnation,"
                    " generation = journal_sessions.generation + 1",
                    [self.sid, uuid.uuid4()],
                )
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO journal_events (session_id, seq, hash, type, line)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    [(self.sid, seq, digest, _line_type(line), line[:-1]) for line, seq, digest, _ in lines],
                )
            self.conn.execute(
                "UPDATE journal_sessions SET last_seq = %s WHERE id = %s", [lines[-1][1], self.sid]
            )
            self.conn.execute("SELECT pg_notify('journal', current_schema() || %s || %s)", [_SEP, self.sid])

    def _bump(self) -> None:
        self.conn.execute("UPDATE journal_sessions SET generation = generation + 1 WHERE id = %s", [self.sid])

    def delete(self) -> bool:
        with self.conn.transaction():
            row = self._row()
            for table in ("journal_events", "journal_snapshots", "journal_bases", "journal_quarantine"):
                self.conn.execute(f"DELETE FROM {table} WHERE session_id = %s", [self.sid])  # noqa: S608
            self.conn.execute("DELETE FROM journal_sessions WHERE id = %s", [self.sid])
        return row is not None and row[2] > 0

    def prune(self, state: Session, head: Head) -> tuple[PruneResult, Stamp]:
        with self.conn.transaction():
            if self._last_seq() != head.seq:
                raise StaleHeadError()
            moved = self.conn.execute(
                "UPDATE journal_events SET archived = true"
                " WHERE session_id = %s AND seq < %s AND NOT archived",
                [self.sid, head.seq],
            ).rowcount
            self.conn.execute(
                "UPDATE journal_sessions SET active_from = %s WHERE id = %s", [head.seq, self.sid]
            )
            head = _head(head.seq, head.hash, head.seq)
            write_snapshot(self.conn, self.sid, head.seq, encode_snapshot(state, head))
            self._bump()
        return PruneResult(moved, head), self._stamp()

    def retain(self, before: datetime) -> int:
        base = load_base(self.conn, self.where, self.sid)
        state, head = (None, None) if base is None else base
        floor = 0 if head is None else head.seq
        rows = self.conn.execute(
            "SELECT seq, line FROM journal_events"
            " WHERE session_id = %s AND archived AND seq > %s ORDER BY seq",
            [self.sid, floor],
        ).fetchall()
        for seq, line in rows:
            record = _record(bytes(line), head, self.where, seq)
            if record.event.at >= before:
                break
            state, head = apply_record(state, record, self.where), record.head
        if head is None or head.seq == floor:
            return 0
        assert state is not None
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO journal_bases (session_id, seq, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, data = excluded.data",
                [self.sid, head.seq, encode_snapshot(state, head, kind="base")],
            )
            self.conn.execute(
                "DELETE FROM journal_events WHERE session_id = %s AND archived AND seq <= %s",
                [self.sid, head.seq],
            )
            self._bump()
        return head.seq - floor

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        """Erase a redacted message's content from every row, the base and the snapshots."""
        with self.conn.transaction():
            self.conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [self.sid])
            base = load_base(self.conn, self.where, self.sid)
            if base is not None:
                state = erased_state(base[0], message_id)
                if state is not None:
                    self.conn.execute(
                        "UPDATE journal_bases SET data = %s WHERE session_id = %s",
                        [encode_snapshot(state, base[1], kind="base"), self.sid],
                    )
            rows = self.conn.execute(
                "SELECT seq, line FROM journal_events WHERE session_id = %s AND seq < %s"
                " AND type IN ('message_added', 'message_edited')",
                [self.sid, by],
            ).fetchall()
            for seq, line in rows:
                if holds_content(bytes(line), message_id, by):
                    self.conn.execute(
                        "UPDATE journal_events SET line = %s WHERE session_id = %s AND seq = %s",
                        [erase_body(bytes(line), by), self.sid, seq],
                    )
            for moved_at, seq, line in self.conn.execute(
                "SELECT moved_at, seq, line FROM journal_quarantine WHERE session_id = %s", [self.sid]
            ).fetchall():
                scrubbed = scrub_line(bytes(line), message_id, by)
                if scrubbed == bytes(line):
                    continue
                if scrubbed is None:
                    self.conn.execute(
                        "DELETE FROM journal_quarantine WHERE session_id = %s AND moved_at = %s AND seq = %s",
                        [self.sid, moved_at, seq],
                    )
                else:
                    self.conn.execute(
                        "UPDATE journal_quarantine SET line = %s"
                        " WHERE session_id = %s AND moved_at = %s AND seq = %s",
                        [scrubbed, self.sid, moved_at, seq],
                    )
            self._bump()
        return self._stamp()

    # -- integrity -------------------------------------------------------------------------

    def check(self, anchor: Anchor | None) -> ChainCheck:
        """Every stored row of the session, the base and the snapshots, classified."""
        base = load_base(self.conn, self.where, self.sid)
        snapshots = self.conn.execute(
            "SELECT seq, data FROM journal_snapshots WHERE session_id = %s", [self.sid]
        ).fetchall()
        start = None if base is None else (base[1].seq, base[1].hash)
        check = ChainCheck(self.sid, start, None if base is None else base[0], [s for s, _ in snapshots])
        if base is not None:
            check.holds_content(base[0], f"{self.where} (base)")
        self._rows_seen: list[tuple[int, bytes]] = []
        for seq, line in self.conn.execute(
            "SELECT seq, line FROM journal_events WHERE session_id = %s ORDER BY seq", [self.sid]
        ):
            self._rows_seen.append((seq, bytes(line)))
            check.line(None, self.where, seq, 0, bytes(line))
        check.finish()
        for seq, data in snapshots:
            where = f"{self.where} (snapshot {seq})"
            try:
                session, head = decode_snapshot(bytes(data))
            except SnapshotError as exc:
                check.problem("snapshot_damaged", where, 0, -1, exc.reason)
                continue
            check.check_snapshot(where, session, head.seq, head.hash)
        if anchor is not None:
            check.check_anchor(anchor, self.where)
        return check

    def repair(self, dry_run: bool) -> RepairReport:
        check = self.check(None)
        kept = check.intact_seq
        cut = [(seq, line) for seq, line in self._rows_seen if seq > kept]
        moved = tuple(
            Moved(
                source=self.where,
                offset=seq,
                size=len(line),
                destination=None if dry_run else "journal_quarantine",
                reason="after the intact prefix",
            )
            for seq, line in cut
        )
        if not dry_run and (cut or check.problems):
            with self.conn.transaction():
                for seq, line in cut:
                    self.conn.execute(
                        "INSERT INTO journal_quarantine (session_id, seq, line, reason)"
                        " VALUES (%s, %s, %s, %s)",
                        [self.sid, seq, line, "after the intact prefix"],
                    )
                self.conn.execute(
                    "DELETE FROM journal_events WHERE session_id = %s AND seq > %s", [self.sid, kept]
                )
                self.conn.execute("DELETE FROM journal_snapshots WHERE session_id = %s", [self.sid])
                self.conn.execute("UPDATE journal_sessions SET last_seq = %s WHERE id = %s", [kept, self.sid])
                self._bump()
        return RepairReport(
            session_id=self.sid,
            dry_run=dry_run,
            kept=kept,
            problems=tuple(check.problems),
            moved=moved,
            quarantine=None if dry_run or not cut else "journal_quarantine",
        )


# -- shared by reads with and without the lock ---------------------------------------------


def _record(line: bytes, after: Head | None, where: str, seq: int, active_from: int = 1) -> Record:
    record = check_line(line, after, path=where, line=seq, offset=0, end=seq)
    # Positions in this backend are seqs: a row is found by its key, not by an offset. A
    # head's ``line`` counts the rows not archived, as the files backend counts active lines.
    return Record(record.event, _head(seq, record.head.hash, active_from), 0)


def _head(seq: int, digest: str, active_from: int) -> Head:
    return Head(seq, digest, seq, seq, seq - active_from + 1)


def read_rows(
    conn: Any, where: str, session_id: str, after: Head | None, *, check_after: bool = True
) -> list[Record]:
    """Checked records after ``after``; StaleHeadError if ``after`` is no longer stored there.

    One statement reads ``after``'s own row with the rows after it: the check and the read
    see one snapshot of the table, so a delete between them cannot pass for "nothing new".
    """
    floor = 0 if after is None else after.seq
    rows = conn.execute(
        "SELECT e.seq, e.line, e.hash, s.active_from FROM journal_events e"
        " JOIN journal_sessions s ON s.id = e.session_id"
        " WHERE e.session_id = %s AND e.seq >= %s ORDER BY e.seq",
        [session_id, floor],
    ).fetchall()
    if rows and rows[0][0] == floor:
        first = rows.pop(0)
        if check_after and first[2] != after.hash:  # type: ignore[union-attr]
            raise StaleHeadError()
    elif after is not None and check_after:
        # Not stored as a row: only a retention base can end there.
        base = conn.execute("SELECT seq FROM journal_bases WHERE session_id = %s", [session_id]).fetchone()
        if base is None or base[0] != after.seq:
            raise StaleHeadError()
    records = []
    head = after
    for seq, line, _, active_from in rows:
        record = _record(bytes(line), head, where, seq, int(active_from))
        head = record.head
        records.append(record)
    return records


def newest_snapshot(conn: Any, session_id: str) -> tuple[Session, Head] | None:
    """The newest snapshot whose event is still stored with its hash (others are caches gone stale)."""
    for seq, data in conn.execute(
        "SELECT seq, data FROM journal_snapshots WHERE session_id = %s ORDER BY seq DESC", [session_id]
    ).fetchall():
        try:
            session, head = decode_snapshot(bytes(data))
        except SnapshotError as exc:
            log.warning("%s: snapshot at seq %d skipped: %s", session_id, seq, exc.reason)
            continue
        row = conn.execute(
            "SELECT hash FROM journal_events WHERE session_id = %s AND seq = %s", [session_id, head.seq]
        ).fetchone()
        if row is not None and row[0] == head.hash and head.seq == seq:
            return session, Head(head.seq, head.hash, head.seq, head.seq, head.seq)
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
    return session, Head(head.seq, head.hash, head.seq, -1, head.seq)


def export_rows(storage: PgStorage, session_id: str) -> tuple[bytes | None, list[bytes]]:
    """The session's retention base (encoded) and every stored line, oldest first."""
    with storage.connection() as conn:
        base = conn.execute("SELECT data FROM journal_bases WHERE session_id = %s", [session_id]).fetchone()
        rows = conn.execute(
            "SELECT line FROM journal_events WHERE session_id = %s ORDER BY seq", [session_id]
        ).fetchall()
    return (None if base is None else bytes(base[0])), [bytes(r[0]) for r in rows]


_inherited: list[Any] = []  # pools inherited across fork: kept alive, never closed by a child
_storages: weakref.WeakSet[PgStorage] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A guard held by another thread at fork time would stay held forever in the child.
    for storage in list(_storages):
        storage._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class ChangeFeed:
    """Notifications of appends (channel ``journal``, payload: the session id).

    Listening starts when this is made, so a caller that reads after making it and then waits
    misses nothing; a notification lost anyway (a dropped connection) only delays the next read
    to the ``wait`` timeout.
    """

    def __init__(self, storage: PgStorage) -> None:
        psycopg, _ = _psycopg()
        self.storage = storage
        try:
            self.conn = psycopg.connect(storage.url, autocommit=True, connect_timeout=10)
            # One channel per database: notifications of journals in other schemas are dropped.
            self.prefix = self.conn.execute("SELECT current_schema()").fetchone()[0] + _SEP
            self.conn.execute("LISTEN journal")
        except psycopg.OperationalError as exc:
            raise StorageError("listen", storage.shown, str(exc).strip()) from None

    def wait(self, timeout: float) -> set[str]:
        """The sessions appended to, waiting up to ``timeout`` seconds for the first."""
        psycopg, _ = _psycopg()
        try:
            notes = list(self.conn.notifies(timeout=timeout, stop_after=1))
            notes += self.conn.notifies(timeout=0)
        except psycopg.OperationalError as exc:
            raise StorageError("listen", self.storage.shown, str(exc).strip()) from None
        prefix = self.prefix
        return {n.payload[len(prefix) :] for n in notes if n.payload.startswith(prefix)}

    def close(self) -> None:
        self.conn.close()
