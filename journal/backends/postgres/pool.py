"""Connections of the PostgreSQL backend: one pool per process, opened (and the schema
migrated) on first use, every driver error turned into ``StorageError`` without secrets.

Shared by the storage (lock-free reads, listings) and the write transaction. After ``fork`` a
child never closes the parent's pool (that would end the parent's connections): it keeps it
referenced and opens its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from journal.backends.postgres.rows import psycopg_modules
from journal.backends.postgres.schema import migrate
from journal.backends.postgres.url import scrub, shown_url
from journal.errors import NewerSchemaError, StorageError

__all__ = ["Pool"]


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


class Pool:
    """Pooled connections to ``url`` (autocommit), ``size`` at most per process.

    Attributes:
        url: the URL as given (secrets included: never shown).
        shown: the URL with every form of password masked (see ``url``).
        lock_timeout: seconds a writer waits for a session's lock (negative: forever).
    """

    def __init__(self, url: str, *, lock_timeout: float, size: int) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.lock_timeout = lock_timeout
        self.size = size
        self._pool: Any = None
        self._pid = os.getpid()
        self._guard = threading.Lock()
        # A connect_timeout in the URL wins; without one, give up on a silent server at 10 s.
        self.timeout: dict[str, int] = {} if "connect_timeout" in _conninfo(url) else {"connect_timeout": 10}
        _pools.add(self)

    def location(self, session_id: str) -> str:
        return f"{self.shown}#{session_id}"

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
            with psycopg.connect(self.url, autocommit=True, **self.timeout) as conn:
                migrate(conn)
        except psycopg.Error as exc:
            raise StorageError("connect", self.shown, self.said(exc)) from None
        except NewerSchemaError as exc:
            raise StorageError("migrate", self.shown, self.said(exc)) from None
        self._pool = psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.size,
            kwargs={"autocommit": True, **self.timeout},
            configure=self._configure,
            check=_unbroken,
            open=False,
            name="journal",
        )
        self._pool.open(wait=True, timeout=30)
        return self._pool

    def _configure(self, conn: Any) -> None:
        """Once per new connection: how long a write waits for a session another one holds
        (negative: forever, which the server spells 0; "do not wait" is 1 ms to it)."""
        timeout = self.lock_timeout
        wait = 0 if timeout < 0 else max(1, int(timeout * 1000))
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{wait}ms"])

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
            with psycopg.connect(self.url, **self.timeout):
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


def _unbroken(conn: Any) -> None:
    """The check of a connection taken from the pool, without a round trip: read what the
    server sent while it was idle (a termination notice, the end of the stream), so that one
    it closed is replaced rather than failing the next statement."""
    psycopg, _ = psycopg_modules()
    pgconn = conn.pgconn
    pgconn.consume_input()  # raises OperationalError once the server is gone
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("the connection is closed")


_inherited: list[Any] = []  # pools inherited across fork: kept alive, never closed by a child
_pools: weakref.WeakSet[Pool] = weakref.WeakSet()


def _reset_after_fork() -> None:
    # A guard held by another thread at fork time would stay held forever in the child.
    for pool in list(_pools):
        pool._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
