"""Where sessions are stored: each backend implements ``journal.engine.storage.Storage``.

``open_storage`` is the one place a root becomes a backend: a folder or ``file://`` URL (the
files backend), a ``postgresql://`` URL (PostgreSQL, extra ``postgres``), or ``memory:`` (a
private in-process store) and ``memory:NAME`` (the process's store of that name, shared by
every Journal that names it), for tests. Importing this package hands it to the engine
(``journal.engine.journal.use_opener``); each backend is imported only when a root names it,
so an application on PostgreSQL never loads the files backend, and the other way round.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from journal.engine.journal import use_opener
from journal.engine.options import FsyncPolicy
from journal.engine.storage import Storage
from journal.errors import InvalidValueError

__all__ = ["MEMORY_SCHEME", "POSTGRES_SCHEMES", "open_storage"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MEMORY_SCHEME = "memory:"


def open_storage(location: str, fsync: FsyncPolicy = "always", lock_timeout: float = 60.0) -> Storage:
    """The storage ``location`` names (see the module docstring).

    Raises:
        InvalidValueError: a URL scheme no backend serves, or a ``file://`` URL of another host.
    """
    if location.startswith(POSTGRES_SCHEMES):
        from journal.backends.postgres.storage import PgStorage

        return PgStorage(location, lock_timeout=lock_timeout)
    if location.startswith(MEMORY_SCHEME):
        from journal.backends.memory import MemoryStorage

        name = location[len(MEMORY_SCHEME) :]
        return MemoryStorage(name or None, lock_timeout=lock_timeout)
    path = location
    if "://" in location:
        parts = urlsplit(location)
        if parts.scheme != "file":
            raise InvalidValueError(
                "root", f"no backend serves {parts.scheme}:// URLs (use postgresql://, file:// or a path)"
            )
        if parts.netloc not in ("", "localhost"):
            raise InvalidValueError(
                "root", f"a file:// URL cannot name another host ({parts.netloc}): use a path"
            )
        path = unquote(parts.path)
    from journal.backends.files.storage import FileStorage

    return FileStorage(path, fsync=fsync, lock_timeout=lock_timeout)


use_opener(open_storage)
