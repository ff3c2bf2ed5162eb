"""Every file-system call below the root, relative to held folder descriptors, no symlink followed.

A :class:`Folder` is an open folder descriptor and its path (the path only names it in
messages). Everything under the root is reached from the root's descriptor one name at a
time, ``openat``-style (``os.open(name, ..., dir_fd=...)``, ``os.mkdir(name, dir_fd=...)``,
``os.replace(a, b, src_dir_fd=..., dst_dir_fd=...)``, ...), and every folder on the way is
opened with ``O_DIRECTORY | O_NOFOLLOW``, every file with ``O_NOFOLLOW``. So the kernel never
resolves a path through a symlink planted below the root, and swapping one in between a check
and a use changes nothing: the descriptor still names the folder that was checked. The root
itself may be a symlink: where the journal lives is the user's choice.

Guarantees:

* a symlink where a folder or a file should be is refused, never followed: ``StorageError``
  (errno ``ENOTDIR`` for a folder, ``ELOOP`` for a file) naming its full path. Removing or
  renaming a name acts on the name itself (a symlink is removed or moved, never its target);
* new files are exactly 0600 and new folders exactly 0700, whatever the umask; only a file
  this call created gets its mode set (an existing one, perhaps a hard link to a file outside
  the root, is never chmodded);
* temporary files are created with ``O_EXCL`` under unpredictable names
  (``.<stem>.<random>.tmp``), so no planted file, hard link or symlink is written through;
* errors: ``FileNotFoundError`` (missing) and ``FileExistsError`` (a name taken) are raised as
  such, with the full path as ``filename``, because callers branch on them; every other
  refusal is a ``StorageError`` naming the full path.

Not protected against: a hard link to a file outside the root planted under the name of an
existing journal file (an active log or a lock file is opened as found: ``O_NOFOLLOW`` is
about symlinks; file systems with ``protected_hardlinks`` refuse such links to other users'
files); a root that is replaced while a Journal holds it open (held descriptors keep naming
the old one); a ``stat`` made by :meth:`Folder.stat_through`, which follows symlinks in its
folder components (see there).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from pathlib import Path

from journal.errors import StorageError

__all__ = ["TEMP_SUFFIX", "Folder"]

TEMP_SUFFIX = ".tmp"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted in place of a journal file must not wait for a writer;
# it is refused right after (on regular files the flag changes nothing).
_FILE_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class Folder:
    """An open folder below (or at) the root; see the module docstring for the guarantees.

    Not thread-safe for :meth:`child` (its cache); every other method is a plain system call
    on the held descriptor and may be shared. Close it with :meth:`close` (or ``with``);
    a folder nobody closed is closed when it is garbage collected (a history read lazily and
    dropped unread).
    """

    __slots__ = ("_children", "_fd", "_ino", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path
        self._children: dict[str, Folder] = {}
        self._ino = -1

    @property
    def ino(self) -> int:
        """The folder's inode number (read once: a folder keeps its inode)."""
        if self._ino < 0:
            self._ino = os.fstat(self.fd).st_ino
        return self._ino

    # -- opening folders

    @classmethod
    def root(cls, path: str | os.PathLike[str], *, create: bool) -> Folder | None:
        """The root folder (a symlink to it is followed: the user chose it); None if missing.

        With ``create`` a missing root and its missing parents are made, 0700.
        """
        where = Path(path).absolute()
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            try:
                return cls(os.open(where, flags), where)
            except FileNotFoundError:
                if not create:
                    return None
            _make_dirs(where)
            return cls(os.open(where, flags), where)
        except OSError as exc:
            raise StorageError.wrap("open folder", where, exc) from None

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise StorageError("use folder", str(self.path), "the folder was closed", errno.EBADF)
        return self._fd

    @property
    def name(self) -> str:
        return self.path.name

    def open_folder(self, name: str, *, create: bool = False) -> Folder | None:
        """Subfolder ``name`` as a new Folder the caller closes; None if missing (without
        ``create``). With ``create`` a missing one is made (0700) and this folder fsynced, so
        the new entry survives power loss."""
        try:
            return Folder(self._open_dir(name), self.path / name)
        except FileNotFoundError:
            if not create:
                return None
        try:
            os.mkdir(name, 0o700, dir_fd=self.fd)
            made = True
        except FileExistsError:
            made = False  # made meanwhile (another process): use it
        except OSError as exc:
            raise self._error("create folder", name, exc) from None
        fd = self._open_dir(name)
        if made:
            try:
                # mkdir's mode is filtered by the umask; the promise is exactly 0700. Through
                # the descriptor: the name may have been swapped since the mkdir.
                os.fchmod(fd, 0o700)
                self.fsync()
            except BaseException:
                os.close(fd)
                raise
        return Folder(fd, self.path / name)

    def child(self, name: str, *, create: bool = False) -> Folder | None:
        """Subfolder ``name``, kept open with this folder (closed with it or by
        :meth:`release_children`: never close it yourself); None if missing."""
        found = self._children.get(name)
        if found is None:
            found = self.open_folder(name, create=create)
            if found is None:
                return None
            self._children[name] = found
        return found

    def resolve(self, relative: str) -> tuple[Folder, str] | None:
        """The folder holding ``relative`` (plain names joined by ``/``) and its last name;
        None if a folder on the way is missing."""
        *parents, name = relative.split("/")
        place = self
        for part in parents:
            found = place.child(part)
            if found is None:
                return None
            place = found
        return place, name

    # -- files

    def open(self, name: str, flags: int) -> int:
        """Open regular file ``name`` (a descriptor the caller closes); never a symlink, a
        FIFO or a device. A file this call creates is made exactly 0600.

        Raises:
            FileNotFoundError: missing (and no ``O_CREAT``).
            FileExistsError: ``O_CREAT | O_EXCL`` and the name is taken.
            StorageError: anything else (a symlink: ``ELOOP``; not a regular file: ``EINVAL``).
        """
        flags |= _FILE_FLAGS
        made = bool(flags & os.O_CREAT)
        try:
            if made and not flags & os.O_EXCL:
                fd, made = self._create_or_open(name, flags)
            else:
                fd = os.open(name, flags, 0o600, dir_fd=self.fd)
        except OSError as exc:
            raise self._error("open", name, exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StorageError("open", str(self.path / name), "not a regular file", errno.EINVAL)
            if made:
                os.fchmod(fd, 0o600)  # the umask may have taken bits away
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _create_or_open(self, name: str, flags: int) -> tuple[int, bool]:
        """``O_CREAT`` without ``O_EXCL``, telling whether this call created the file (only
        such a file gets its mode set): the descriptor, and whether it was made."""
        while True:
            try:
                return os.open(name, flags | os.O_EXCL, 0o600, dir_fd=self.fd), True
            except FileExistsError:
                pass
            try:
                return os.open(name, flags & ~os.O_CREAT, dir_fd=self.fd), False
            except FileNotFoundError:
                continue  # found, then removed before it could be opened: create it

    def open_existing(self, name: str) -> int | None:
        """Open regular file ``name`` for reading; None if it does not exist."""
        try:
            return self.open(name, os.O_RDONLY)
        except FileNotFoundError:
            return None

    def read(self, name: str) -> bytes:
        """The bytes of regular file ``name``.

        Raises:
            FileNotFoundError: it does not exist.
            StorageError: it is not a regular file (a FIFO or a device would block or never
                end), or it cannot be read.
        """
        fd = self.open(name, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            chunks = []
            while chunk := os.read(fd, max(size, 1 << 16)):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise self._error("read", name, exc) from None
        finally:
            os.close(fd)

    def write_temp(self, stem: str, data: bytes) -> str:
        """A new hidden file ``.<stem>.<random>.tmp`` holding ``data``, fsynced; its name.

        Created with ``O_EXCL`` under an unpredictable name, so a file (or a hard link, or a
        symlink) planted in advance is never written through. Readers ignore hidden files; a
        crash's leftover is swept later (:meth:`sweep_temp`).
        """
        while True:
            name = f".{stem}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
            try:
                fd = self.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                break
            except FileExistsError:
                continue  # 64 random bits taken: try others
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException as exc:
            os.close(fd)
            self._discard(name)
            if isinstance(exc, OSError) and not isinstance(exc, StorageError):
                raise self._error("write", stem, exc) from None
            raise
        os.close(fd)
        return name

    def write_atomic(self, name: str, data: bytes, *, replace: bool = True) -> bool:
        """Put ``data`` at ``name`` all at once: temporary file, fsync, rename, fsync folder.

        A crash at any point leaves either the old file or the new one, never a mix; the only
        possible leftover is a hidden ``.tmp`` file, which readers ignore. A symlink at
        ``name`` is replaced, never written through. With ``replace=False`` an existing
        ``name`` is left alone and False is returned.
        """
        tmp = self.write_temp(name, data)
        try:
            if replace:
                os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            else:
                try:
                    # Unlike rename, never replaces an existing file.
                    os.link(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
                except FileExistsError:
                    return False
                finally:
                    self._discard(tmp)
        except OSError as exc:
            self._discard(tmp)
            raise self._error("write", name, exc) from None
        self.fsync()
        return True

    def _discard(self, name: str) -> None:
        # Already gone, or the file system refuses: a hidden leftover, swept later.
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=self.fd)

    # -- names

    def names(self) -> list[str]:
        """The names in this folder (unsorted)."""
        try:
            # A descriptor of its own: listing reads through the descriptor's offset, which
            # threads sharing this folder would otherwise move under each other.
            fd = os.open(".", _DIR_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise self._error("list", "", exc) from None
        try:
            return os.listdir(fd)
        except OSError as exc:
            raise self._error("list", "", exc) from None
        finally:
            os.close(fd)

    def lstat(self, name: str) -> os.stat_result:
        """The status of ``name`` itself (a symlink is described, not followed).

        Raises:
            FileNotFoundError: it does not exist.
        """
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError as exc:
            raise self._error("stat", name, exc) from None

    def exists(self, name: str) -> bool:
        """Whether anything (even a dangling symlink) is named ``name``."""
        try:
            self.lstat(name)
        except FileNotFoundError:
            return False
        return True

    def stat_through(self, *names: str) -> os.stat_result | None:
        """One ``stat`` of ``names`` joined below this folder; None if missing.

        The last name is not followed, but the folders on the way are: use this only where
        the result is compared with what safe opens read (a cheap change check), never to
        decide where to read or write.
        """
        try:
            return os.stat("/".join(names), dir_fd=self.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._error("stat", "/".join(names), exc) from None

    def unlink(self, name: str, *, missing_ok: bool = False) -> None:
        """Remove file ``name`` (a symlink itself, never its target)."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError as exc:
            if not missing_ok:
                raise self._error("remove", name, exc) from None
        except OSError as exc:
            raise self._error("remove", name, exc) from None

    def rename(self, name: str, dest: Folder, dest_name: str) -> None:
        """Move ``name`` to ``dest_name`` in ``dest``, replacing what was there (a symlink is
        moved or replaced as a name, never followed). Neither folder is fsynced."""
        try:
            os.replace(name, dest_name, src_dir_fd=self.fd, dst_dir_fd=dest.fd)
        except OSError as exc:
            raise self._error("rename", name, exc) from None

    def remove_tree(self, name: str) -> None:
        """Remove ``name`` and, if it is a folder, everything in it, never following a symlink
        (a symlink is removed as a name). Not fsynced."""
        if not stat.S_ISDIR(self.lstat(name).st_mode):
            self.unlink(name, missing_ok=True)
            return
        self.empty(name)
        try:
            os.rmdir(name, dir_fd=self.fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("remove folder", name, exc) from None

    def empty(self, name: str) -> None:
        """Remove everything in folder ``name`` (see ``remove_tree``), keeping the folder."""
        inner = self.open_folder(name)
        if inner is not None:
            with inner:
                for entry in inner.names():
                    inner.remove_tree(entry)

    def sweep_temp(self, older_than: float) -> list[str]:
        """Remove hidden temporary files (``.*.tmp``, regular files only) last modified more
        than ``older_than`` seconds ago; returns their names. Nothing else is touched, and a
        younger one may be a write in progress in another process: it stays. Not fsynced (a
        removal a power cut undoes is swept again)."""
        now = time.time()
        removed = []
        for name in self.names():
            if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
                continue
            try:
                st = self.lstat(name)
                if not stat.S_ISREG(st.st_mode) or now - st.st_mtime <= older_than:
                    continue
                self.unlink(name)
            except FileNotFoundError:
                continue  # renamed into place or swept by another process meanwhile
            removed.append(name)
        return removed

    # -- durability and lifetime

    def fsync(self) -> None:
        """fsync this folder, so its new, renamed or removed entries survive power loss."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise self._error("fsync folder", "", exc) from None

    def release_children(self) -> None:
        """Close the subfolders :meth:`child` kept open (and theirs)."""
        children, self._children = self._children, {}
        for found in children.values():
            found.close()

    def close(self) -> None:
        """Close the descriptor and the kept subfolders' (idempotent)."""
        self.release_children()
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __repr__(self) -> str:
        return f"Folder({str(self.path)!r}, fd={self._fd})"

    # -- errors

    def _open_dir(self, name: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise self._error("open folder", name, exc) from None

    def _error(self, operation: str, name: str, exc: OSError) -> OSError:
        """The error to raise for ``exc``, met doing ``operation`` on ``name`` (see the module
        docstring): full paths, and a plain word for a symlink found in the way."""
        path = self.path / name if name else self.path
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, (FileNotFoundError, FileExistsError)):
            return type(exc)(exc.errno, exc.strerror, str(path))
        cause = exc.strerror or str(exc)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and name:
            cause = self._in_the_way(name, cause)
        return StorageError(operation, str(path), cause, exc.errno)

    def _in_the_way(self, name: str, cause: str) -> str:
        try:
            mode = os.stat(name, dir_fd=self._fd, follow_symlinks=False).st_mode
        except OSError:
            return cause
        if stat.S_ISLNK(mode):
            return "a symbolic link is in the way (journal never follows one below its root)"
        if not stat.S_ISDIR(mode):
            return "not a folder"
        return cause


def _make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents (0700), fsyncing each new entry's parent. Above the
    root: paths are followed as given (the user chose them)."""
    if path.parent != path and not path.parent.is_dir():
        _make_dirs(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageError.wrap("create folder", path, exc) from None
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; the promise is exactly 0700
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
