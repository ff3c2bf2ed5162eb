"""The PostgreSQL backend: the same event lines, one row each, behind the same seam.

``PgStorage`` implements ``journal.engine.storage.Storage`` (see ``schema`` for the tables). What the files
backend gets from ``flock`` and append-only files, this one gets from the database:

* **One round trip per append.** The engine builds on its cached view and appends through
  ``appender``: one statement stores the rows only if the session still ends at the cached
  head (the session row's lock orders racing commits; the unique key ``(session_id, seq)``
  backs it). A writer that lost the race catches up holding the session (its advisory lock and
  the session row ``FOR UPDATE``: see ``transaction``) and appends again; so do cold writers,
  and ``writer`` (maintenance, verify, repair) holds it from the start.
* **Durable when a write returns:** the rows are committed (``synchronous_commit`` as the
  server is configured: on by default).
* **Idempotent retries.** If the connection drops while an append commits, the writer
  reconnects and looks for its rows by seq and hash (each line's hash covers a random salt or
  a fresh timestamp): found, the append succeeded; absent, the same statement runs once more
  (it checks the head itself, and a head moved by the first attempt committing late is found
  by the same look); anything else raises ``StorageError``. An event is never lost once
  acknowledged and never stored twice.
* **Read your writes, across hosts:** reads go to the database; a cached state is checked
  with one primary-key lookup (``stamp``).
* **Change feed:** every append notifies channel ``journal`` with the session id
  (``wait``); a waiter always re-reads after waking, so a lost notification loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from journal.backends.postgres.feed import PgFeed
from journal.backends.postgres.pool import Pool
from journal.backends.postgres.rows import (
    checked,
    history_rows,
    history_start,
    newest_snapshot,
    read_rows,
    stamp_of,
)
from journal.backends.postgres.transaction import PgTransaction
from journal.core.chain import History
from journal.core.head import Head, Record
from journal.core.reports import Anchor, RepairReport, SessionCheck
from journal.core.state import Session
from journal.engine.storage import Batch, Stamp, Target
from journal.errors import CorruptLogError

__all__ = ["PgStorage", "is_postgres_url"]

log = logging.getLogger("journal")


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class PgStorage:
    """Sessions in PostgreSQL; see the module docstring.

    Args:
        url: a libpq connection URL (``postgresql://user@host:5432/db``); ``options`` in it
            may set a ``search_path`` to keep several journals in one database.
        lock_timeout: seconds to wait for another writer of the same session (negative:
            forever).
        pool_size: connections kept per process.
    """

    kind = "postgres"

    def __init__(self, url: str, *, lock_timeout: float = 60.0, pool_size: int = 4) -> None:
        self.pool = Pool(url, lock_timeout=lock_timeout, size=pool_size)
        self.root = self.pool.shown  # every form of password masked: see url

    def location(self, session_id: str) -> str:
        return self.pool.location(session_id)

    def close(self) -> None:
        self.pool.close()

    def reopen(self) -> PgStorage:
        return PgStorage(self.pool.url, lock_timeout=self.pool.lock_timeout, pool_size=self.pool.size)

    def changes(self) -> PgFeed:
        return PgFeed(self.pool)

    # -- reading without the lock ----------------------------------------------------------

    def stamp(self, session_id: str) -> Stamp | None:
        with self.pool.connection() as conn:
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
        return stamp_of(row)

    def history_stamp(self, session_id: str) -> Stamp:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT incarnation, generation FROM journal_sessions WHERE id = %s", [session_id]
            ).fetchone()
        return () if row is None else (row[0].int, row[1])

    def reader(self, session_id: str) -> PgReader:
        return PgReader(self, session_id)

    def session_ids(self) -> Iterator[str]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT id FROM journal_sessions WHERE last_seq > 0 ORDER BY id").fetchall()
        return iter([row[0] for row in rows])

    # -- writing under the lock -------------------------------------------------------------

    def writer(self, session_id: str) -> PgTransaction:
        return PgTransaction(self.pool, session_id)

    def appender(self, session_id: str) -> PgTransaction:
        """See ``storage.Optimistic``: holds nothing until it reads."""
        return PgTransaction(self.pool, session_id, hold=False)

    def delete(self, session_id: str) -> bool:
        with self.writer(session_id) as tx:
            return tx.delete()

    # -- integrity -------------------------------------------------------------------------

    def targets(self, session_id: str | None) -> list[Target]:
        if session_id is not None:
            return [Target(session_id, session_id)] if self._stored(session_id) else []
        return [Target(sid, sid) for sid in self.session_ids()]

    def _stored(self, session_id: str) -> bool:
        """Whether anything of the session is stored, damaged or not."""
        try:
            return self.stamp(session_id) is not None
        except CorruptLogError:
            return True

    def verify(self, target: Target, anchor: Anchor | None) -> SessionCheck:
        with self.writer(target.label) as tx:
            check = tx.check(anchor)
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=target.label, seq=check.seq, hash=check.hash)
        return SessionCheck(target.label, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        if not self._stored(session_id):
            return None
        with self.writer(session_id) as tx:
            return tx.repair(dry_run)


class PgReader:
    """Lock-free reads of one session (``Storage.reader``), each on a pooled connection."""

    def __init__(self, storage: PgStorage, session_id: str) -> None:
        self.pool = storage.pool
        self.sid = session_id
        self.where = storage.location(session_id)

    def read(self, after: Head | None) -> Batch:
        with self.pool.connection() as conn:
            return read_rows(conn, self.where, self.sid, after)

    def snapshot(self) -> tuple[Session, Head] | None:
        with self.pool.connection() as conn:
            return newest_snapshot(conn, self.where, self.sid)

    def history(self, resume: Head | None = None) -> History:
        with self.pool.connection() as conn:
            base, active_from = history_start(conn, self.where, self.sid)
        start = None if base is None else base[1]
        return (None if base is None else base[0], start, self._stream(start, active_from))

    def _stream(self, after: Head | None, active_from: int) -> Iterator[Record]:
        head = after
        for rows in history_rows(self.pool.connection, self.sid, 0 if after is None else after.seq):
            for record in checked(rows, head, self.where, active_from):
                head = record.head
                yield record
