"""Session id -> path, and the one place files and folders are created.

Every path the journal touches is built here from a validated session id, so no id can name a
file outside the root: the file name is a lowercase slug of the id (for people reading ``ls``)
followed by a SHA-256 of the exact id (for uniqueness), which survives case-insensitive file
systems and reserved names such as ``CON``. The original id is stored in the session's
``created`` event, which is how ids are mapped back.

Files are created 0600 and folders 0700 whatever the umask; symlinks are never followed when
opening journal files.

Layout under the root::

    sessions/<slug>~<hash>/events.jsonl           the active log: the session's only *.jsonl file
    sessions/<slug>~<hash>/snapshot-<seq>.snap    cached folded state (see ``snapshot``)
    sessions/<slug>~<hash>/archive/<a>-<b>.jsonl.gz  pruned events a..b, byte for byte
    sessions/<slug>~<hash>/archive/base.snap      state of events dropped by a retention policy
    locks/<hash>.lock                             the session's writer lock (empty, never deleted)
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

from journal.errors import InvalidSessionIdError, StorageError

__all__ = [
    "MAX_ID_LENGTH",
    "Layout",
    "check_session_id",
    "ensure_dir",
    "list_names",
    "open_existing",
    "open_file",
    "read_regular",
    "stat_existing",
    "write_atomic",
    "write_temp",
]

MAX_ID_LENGTH = 1024
_SLUG_LEN = 40
_HASH_HEX = 32
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
LOG_NAME = "events.jsonl"


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it can name a session, else raise InvalidSessionIdError.

    A session id is any non-empty ``str`` of at most ``MAX_ID_LENGTH`` characters without NUL
    and encodable as UTF-8 (no lone surrogates).
    """
    if not isinstance(session_id, str):
        raise InvalidSessionIdError(session_id, f"must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise InvalidSessionIdError(session_id, "must not be empty")
    if len(session_id) > MAX_ID_LENGTH:
        raise InvalidSessionIdError(session_id, f"longer than {MAX_ID_LENGTH} characters")
    if "\x00" in session_id:
        raise InvalidSessionIdError(session_id, "must not contain NUL")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSessionIdError(session_id, "is not valid Unicode (lone surrogate)") from None
    return str.__str__(session_id)  # a str subclass (an enum) stands for its value, not its name


def id_hash(session_id: str) -> str:
    """The hex digest that names a session on disk."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:_HASH_HEX]


def dirname_for(session_id: str) -> str:
    """The folder name of a session: ``<slug>~<hash>``, safe on every file system."""
    slug = _UNSAFE.sub("-", session_id.lower()).strip("-")[:_SLUG_LEN].strip("-") or "id"
    return f"{slug}~{id_hash(session_id)}"


class Layout:
    """Where everything lives under one root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.sessions = self.root / "sessions"
        self.locks = self.root / "locks"

    def session_dir(self, session_id: str) -> Path:
        return self.sessions / dirname_for(check_session_id(session_id))

    def log_path(self, session_id: str) -> Path:
        return self.session_dir(session_id) / LOG_NAME

    def lock_path(self, session_id: str) -> Path:
        return self.locks / f"{id_hash(check_session_id(session_id))}.lock"

    def session_dirs(self) -> list[Path]:
        """Every session folder, in name order (empty if the journal has none yet)."""
        names = sorted(list_names(self.sessions))
        return [self.sessions / n for n in names if "~" in n and not n.startswith(".")]


def ensure_dir(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700; existing folders are left as they are."""
    if path.is_dir():
        return
    if path.parent != path:
        ensure_dir(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not path.is_dir():
            raise StorageError("create folder", str(path), "exists and is not a folder") from None
        return
    except OSError as exc:
        raise StorageError.wrap("create folder", path, exc) from None
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; the promise is exactly 0700
    fsync_dir(path.parent)


def open_file(path: Path, flags: int) -> int:
    """Open a journal file without following symlinks; a new file gets mode exactly 0600."""
    # O_NONBLOCK: opening a FIFO planted in place of a journal file must not wait for a
    # writer; it is refused just below (on regular files the flag changes nothing).
    flags |= os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    fd = os.open(path, flags, 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    if flags & os.O_CREAT:
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
    return fd


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file, refusing anything else without blocking on it.

    Raises:
        FileNotFoundError: it does not exist.
        OSError: it is not a regular file (a FIFO or a device would block or never end,
            a folder has no bytes), or it cannot be read.
    """
    fd = open_file(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while chunk := os.read(fd, max(size, 1 << 16)):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_existing(path: Path) -> int | None:
    """Open a journal file for reading; None if it (or its folder) does not exist.

    Raises:
        StorageError: any other refusal (permissions, I/O): never a bare OSError.
    """
    try:
        return open_file(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError.wrap("open", path, exc) from None


def stat_existing(path: Path) -> os.stat_result | None:
    """``os.stat`` of ``path``; None if it does not exist; StorageError for other refusals."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError.wrap("stat", path, exc) from None


def list_names(path: Path) -> list[str]:
    """The names in folder ``path``; empty if it does not exist; StorageError for other refusals."""
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageError.wrap("list", path, exc) from None


def write_temp(folder: Path, stem: str, data: bytes) -> Path:
    """A new hidden file ``.<stem>.<random>.tmp`` in ``folder`` holding ``data``, fsynced.

    Created with ``O_EXCL`` under an unpredictable name, so a file (or a hard link, or a
    symlink) planted in advance is never written through. Readers ignore hidden files; a
    leftover of a crash is swept later (see ``sweep_temp``).
    """
    while True:
        tmp = folder / f".{stem}.{secrets.token_hex(8)}.tmp"
        try:
            fd = open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            break
        except FileExistsError:
            continue  # 64 random bits taken: try others
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_atomic(path: Path, data: bytes, *, replace: bool = True, make_dirs: bool = True) -> bool:
    """Put ``data`` at ``path`` all at once: temporary file, fsync, rename, fsync folder.

    A crash at any point leaves either the old file or the new one, never a mix; the only
    possible leftover is a hidden ``.tmp`` file, which readers ignore. With ``replace=False``
    an existing ``path`` is left alone and False is returned. With ``make_dirs=False`` a
    missing folder raises FileNotFoundError instead of being created.
    """
    if make_dirs:
        ensure_dir(path.parent)
    tmp = write_temp(path.parent, path.name, data)
    if replace:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # unlike rename, never replaces an existing file
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def fsync_dir(path: Path) -> None:
    """fsync a folder so a new or renamed entry in it survives power loss."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
