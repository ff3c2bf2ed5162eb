"""The PostgreSQL change feed: every append notifies channel ``journal`` (``LISTEN/NOTIFY``)."""

from __future__ import annotations

from journal.backends.postgres.pool import Pool
from journal.backends.postgres.rows import SEP, psycopg_modules
from journal.errors import StorageError

__all__ = ["PgFeed"]


class PgFeed:
    """Notifications of appends (channel ``journal``, payload: the session id).

    Listening starts when this is made, so a caller that reads after making it and then waits
    misses nothing; a notification lost anyway (a dropped connection) only delays the next read
    to the ``wait`` timeout.
    """

    def __init__(self, pool: Pool) -> None:
        psycopg, _ = psycopg_modules()
        self.pool = pool
        try:
            self.conn = psycopg.connect(pool.url, autocommit=True, **pool.timeout)
            # One channel per database: notifications of journals in other schemas are dropped.
            self.prefix = self.conn.execute("SELECT current_schema()").fetchone()[0] + SEP
            self.conn.execute("LISTEN journal")
        except psycopg.OperationalError as exc:
            raise StorageError("listen", pool.shown, pool.said(exc)) from None

    def wait(self, timeout: float) -> set[str]:
        """The sessions appended to, waiting up to ``timeout`` seconds for the first."""
        psycopg, _ = psycopg_modules()
        try:
            notes = list(self.conn.notifies(timeout=timeout, stop_after=1))
            notes += self.conn.notifies(timeout=0)
        except psycopg.OperationalError as exc:
            raise StorageError("listen", self.pool.shown, self.pool.said(exc)) from None
        prefix = self.prefix
        return {n.payload[len(prefix) :] for n in notes if n.payload.startswith(prefix)}

    def close(self) -> None:
        self.conn.close()
