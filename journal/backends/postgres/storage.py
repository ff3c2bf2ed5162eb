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

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from journal.backends.postgres.rows import (
    CHUNK,
    SEP,
    load_base,
    lock_key,
    newest_snapshot,
    psycopg_modules,
    read_rows,
    record_of,
    write_snapshot,
)
from journal.backends.postgres.schema import NewerSchemaError, migrate
from journal.backends.postgres.transaction import PgTransaction
from journal.backends.postgres.url import scrub, shown_url
from journal.core.chain import History, Record
from journal.core.codec import decode
from journal.core.head import Head
from journal.core.reports import Anchor, RepairReport, SessionCheck
from journal.core.snapshot import decode_snapshot, encode_snapshot
from journal.core.state import Session
from journal.engine.storage import Stamp
from journal.errors import CorruptLogError, SessionExistsError, StorageError

__all__ = ["ChangeFeed", "PgStorage", "is_postgres_url"]

log = logging.getLogger("journal")


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _conninfo(url: str) -> dict[str, Any]:
    """The URL's connection parameters ({} if psycopg cannot parse it: connecting will say why)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return {}
    try:
        return dict(conninfo_to_dict(url))
    except Exception:
        return {}


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
        self.shown = shown_url(url)  # every form of password masked: see pgurl
        self.lock_timeout = lock_timeout
        self.pool_size = pool_size
        self._pool: Any = None
        self._pid = os.getpid()
        self._guard = threading.Lock()
        # A connect_timeout in the URL wins; without one, give up on a silent server at 10 s.
        self._timeout: dict[str, int] = {} if "connect_timeout" in _conninfo(url) else {"connect_timeout": 10}
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
        psycopg, psycopg_pool = psycopg_modules()
        if self._pool is not None:
            # Inherited across fork: the parent's sockets. Never close them from here (that
            # would end the parent's sessions); keep them referenced and open our own.
            _inherited.append(self._pool)
        self._pid = os.getpid()
        try:
            with psycopg.connect(self.url, autocommit=True, **self._timeout) as conn:
                migrate(conn)
        except psycopg.Error as exc:
            raise StorageError("connect", self.shown, self.said(exc)) from None
        except NewerSchemaError as exc:
            raise StorageError("migrate", self.shown, self.said(exc)) from None
        self._pool = psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            kwargs={"autocommit": True, **self._timeout},
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="journal",
        )
        self._pool.open(wait=True, timeout=30)
        return self._pool

    @contextmanager
    def connection(self, operation: str = "read") -> Iterator[Any]:
        """A pooled connection (autocommit); database errors become ``StorageError``."""
        psycopg, psycopg_pool = psycopg_modules()
        pool = self._connect_pool()
        try:
            with pool.connection(timeout=30) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StorageError(operation, self.shown, self.said(exc)) from None
        except psycopg_pool.PoolTimeout as exc:
            raise StorageError(operation, self.shown, self._diagnose(self.said(exc))) from None

    def _diagnose(self, waited: str) -> str:
        """Why no pooled connection came: the server's own answer when it does not take one."""
        psycopg, _ = psycopg_modules()
        try:
            with psycopg.connect(self.url, **self._timeout):
                pass
        except psycopg.Error as exc:
            return self.said(exc).splitlines()[0]
        return f"{waited} (every connection is in use)"

    def said(self, exc: BaseException) -> str:
        """What the driver said of ``exc``, for a message: without any secret of the URL."""
        return scrub(str(exc).strip() or type(exc).__name__, self.url)

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
                # No event: no session, unless snapshots or a base say events were stored.
                held = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM journal_snapshots WHERE session_id = %s)"
                    " OR EXISTS (SELECT 1 FROM journal_bases WHERE session_id = %s)",
                    [session_id, session_id],
                ).fetchone()[0]
                if held:
                    raise CorruptLogError(
                        self.location(session_id),
                        0,
                        -1,
                        "no event is stored, but snapshots or a retention base of the session are: "
                        "run repair",
                    )
                return None
        return Stamp((row[0].int, row[1], row[2]), row[2])

    def read(self, session_id: str, after: Head | None = None) -> Iterator[Record]:
        with self.connection() as conn:
            return iter(read_rows(conn, self.location(session_id), session_id, after))

    def snapshot(self, session_id: str) -> tuple[Session, Head] | None:
        with self.connection() as conn:
            return newest_snapshot(conn, self.location(session_id), session_id)

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
                    [session_id, 0 if head is None else head.seq, CHUNK],
                ).fetchall()
            for seq, line in rows:
                record = record_of(bytes(line), head, where, seq)
                head = record.head
                yield record
            if len(rows) < CHUNK:
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
                    "SELECT pg_try_advisory_xact_lock(%s)", [lock_key(session_id)]
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
                after = record_of(bytes(line), after, tx.where, seq).head
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
            tx.conn.execute("SELECT pg_notify('journal', current_schema() || %s || %s)", [SEP, session_id])

    # -- integrity -------------------------------------------------------------------------

    def verify_targets(self, session_id: str | None) -> list[str]:
        if session_id is not None:
            return [session_id] if self._stored(session_id) else []
        return list(self.session_ids())

    def _stored(self, session_id: str) -> bool:
        """Whether anything of the session is stored, damaged or not."""
        try:
            return self.stamp(session_id) is not None
        except CorruptLogError:
            return True

    def verify(self, target: str, anchors: Mapping[str, Anchor]) -> SessionCheck:
        with self.writer(target) as tx:
            check = tx.check(anchors.get(target))
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=target, seq=check.seq, hash=check.hash)
        return SessionCheck(target, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        if not self._stored(session_id):
            return None
        with self.writer(session_id) as tx:
            return tx.repair(dry_run)


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
        psycopg, _ = psycopg_modules()
        self.storage = storage
        try:
            self.conn = psycopg.connect(storage.url, autocommit=True, **storage._timeout)
            # One channel per database: notifications of journals in other schemas are dropped.
            self.prefix = self.conn.execute("SELECT current_schema()").fetchone()[0] + SEP
            self.conn.execute("LISTEN journal")
        except psycopg.OperationalError as exc:
            raise StorageError("listen", storage.shown, storage.said(exc)) from None

    def wait(self, timeout: float) -> set[str]:
        """The sessions appended to, waiting up to ``timeout`` seconds for the first."""
        psycopg, _ = psycopg_modules()
        try:
            notes = list(self.conn.notifies(timeout=timeout, stop_after=1))
            notes += self.conn.notifies(timeout=0)
        except psycopg.OperationalError as exc:
            raise StorageError("listen", self.storage.shown, self.storage.said(exc)) from None
        prefix = self.prefix
        return {n.payload[len(prefix) :] for n in notes if n.payload.startswith(prefix)}

    def close(self) -> None:
        self.conn.close()
