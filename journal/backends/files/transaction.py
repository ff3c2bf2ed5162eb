"""One session of the files backend held exclusively: its descriptors and write transaction.

``FileTransaction`` is the files backend's ``storage.Transaction``: it holds the session's
in-process mutex and cross-process lock, reads what others appended (cutting a torn tail),
appends with one write and the configured fsync, and undoes a failed append. ``Handle`` keeps
a session's lock file, session folder and log open between transactions (see ``filestore``).

The session folder's descriptor is opened with the log's, through the held ``sessions/``
folder without following a symlink (see ``fsio``), and trusted exactly as long as the log:
a log stops being the session's only by being unlinked (pruning renames a new one over it,
a delete unlinks it before renaming the folder away), so while the held log is still linked
the held folder is still the session's. Otherwise both are opened again.

The first time a handle opens its session folder, hidden temporary files older than an hour
that crashed writers left there (and in ``archive/`` and the quarantine) are removed.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from journal.backends.files import intent
from journal.backends.files.compaction import apply_retention, prune_active_log
from journal.backends.files.erasure import erase_message, quarantine_mentions, redaction_stored
from journal.backends.files.fsio import Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    QUARANTINE_DIR,
    check_missing_log,
    load_snapshot,
    read_history,
    save_snapshot,
)
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.locking import SessionLock
from journal.backends.files.logfile import LineScan, holds_hash, write_all
from journal.core.chain import History, Record, check_line, classify_tail
from journal.core.head import Head
from journal.core.state import Session
from journal.engine.storage import PruneResult, StaleHeadError, Stamp
from journal.errors import StorageError

__all__ = ["FileTransaction", "Handle", "check_head", "scan_with", "stamp_of"]

log = logging.getLogger("journal")
_sync = getattr(os, "fdatasync", os.fsync)
# A temporary file this old is a crashed writer's leftover: no write takes an hour, and a
# younger one may be a write in progress in another process (sweeping it would fail that write).
STALE_TEMP_SECONDS = 3600.0


class _Owner(Protocol):
    """What a transaction needs from its ``FileStorage``."""

    fsync: str

    def sessions_folder(self, create: bool) -> Folder | None: ...

    def mark_dirty(self, name: str) -> None: ...

    def _unpin(self, handle: Handle) -> None: ...

    def remove_folder(self, folder: Folder) -> None: ...


class Handle:
    """Open descriptors of one session: its lock file and (once they exist) its folder and log.

    ``name`` is the session folder's name in ``sessions/``; ``path`` the log's path (for
    messages).
    """

    __slots__ = ("fd", "folder", "lock", "mutex", "name", "path", "refs", "session_id", "swept")

    def __init__(self, session_id: str, lock: SessionLock, name: str, path: Path) -> None:
        self.session_id = session_id
        self.lock = lock
        self.name = name
        self.path = path
        self.mutex = threading.Lock()
        self.fd: int | None = None
        self.folder: Folder | None = None
        self.refs = 0
        self.swept = False  # stale temporary files removed (once per handle)

    def drop(self) -> None:
        """Close the log and the session folder (the lock file stays open)."""
        fd, self.fd = self.fd, None
        folder, self.folder = self.folder, None
        try:
            if fd is not None:
                os.close(fd)
        finally:
            if folder is not None:
                folder.close()

    def close(self) -> None:
        try:
            self.drop()
        finally:
            self.lock.close()


class FileTransaction:
    """One session held exclusively: see ``storage.Transaction``.

    A context manager (a plain class: this is on every write's path): entering takes the
    in-process mutex, then the cross-process lock; leaving releases both and unpins the handle.
    """

    def __init__(self, storage: _Owner, handle: Handle, *, loose: bool = False) -> None:
        self.storage = storage
        self.handle = handle
        self.loose = loose  # a handle of its own, closed on exit
        self.path = handle.path
        self.size = 0
        self.checked = False  # the cached log descriptor was checked: still the session's
        self.placed = False  # handle.folder is the session folder (or None: there is none)
        self.tidy = True  # sweep stale temporary files when the folder is first opened

    def __enter__(self) -> FileTransaction:
        handle = self.handle
        try:
            handle.mutex.acquire()
        except BaseException:
            self._let_go()
            raise
        try:
            handle.lock.acquire()
        except BaseException:
            handle.mutex.release()
            self._let_go()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        handle = self.handle
        try:
            if handle.folder is not None:
                # Subfolders (archive, quarantine) are opened again when next needed: between
                # transactions a handle holds three descriptors, not five.
                handle.folder.release_children()
        finally:
            try:
                handle.lock.release()
            finally:
                handle.mutex.release()
                self._let_go()

    def _let_go(self) -> None:
        if self.loose:
            self.handle.close()
        else:
            self.storage._unpin(self.handle)

    def _keep(self) -> bool:
        """Whether the held log (and with it the held folder) is still the session's."""
        handle = self.handle
        if handle.fd is None:
            return False
        st = os.fstat(handle.fd)
        # A log stops being the session's log only by being unlinked: pruning renames a new log
        # over it, and delete unlinks it first thing (see FileStorage.delete).
        if st.st_nlink > 0 and handle.folder is not None:
            self.size = st.st_size
            self.checked = self.placed = True
            return True
        self.forget()
        return False

    def folder(self, create: bool = False) -> Folder | None:
        """The session folder (None: it does not exist and ``create`` is False).

        Opened afresh, through the held ``sessions/`` folder without following a symlink,
        unless the held log shows the held folder is still the session's.

        Raises:
            StorageError: a symlink or a file is where a folder should be, or the file
                system refused.
        """
        handle = self.handle
        if not self.placed:
            self._keep()
        if self.placed and (handle.folder is not None or not create):
            return handle.folder
        if handle.folder is not None:
            handle.drop()
        sessions = self.storage.sessions_folder(create)
        found = None if sessions is None else sessions.open_folder(handle.name, create=create)
        handle.folder = found
        self.placed = True
        if found is not None and not handle.swept and self.tidy:
            handle.swept = True
            sweep_temp_files(found)
        return found

    def _here(self) -> Folder:
        """The session folder, which the caller knows exists (its log is open)."""
        found = self.folder()
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "the session folder is gone", str(self.path.parent))
        return found

    def _fd(self, create: bool) -> int | None:
        handle = self.handle
        if self.checked or self._keep():
            return handle.fd
        flags = os.O_RDWR | os.O_APPEND
        try:
            # Whenever the log is (re)opened: a change another writer decided but did not
            # finish (it crashed) is finished first, so nobody builds on a half-made one.
            self.settle()
            found = self.folder(create)
            if found is None:
                return None
            try:
                handle.fd = found.open(LOG_NAME, flags)
            except FileNotFoundError:
                if not create:
                    return None
                check_missing_log(found)  # a lost log is damage, not a fresh start
                handle.fd = found.open(LOG_NAME, flags | os.O_CREAT)
                if self.storage.fsync != "never":
                    found.fsync()  # the new file's name must survive too
        except OSError as exc:
            raise StorageError.wrap("open", str(self.path), exc) from None
        self.size = os.fstat(handle.fd).st_size
        self.checked = True
        return handle.fd

    def settle(self) -> None:
        """Finish, or drop, the change the session folder's intent records (see ``intent``)."""
        folder = self.folder()
        if folder is None:
            return
        pending = intent.read(folder)
        if pending is None:
            return
        try:
            if isinstance(pending, intent.Delete):
                if folder.exists(LOG_NAME):
                    intent.clear(folder)  # stopped before its commit point: it never happened
                else:
                    self.storage.remove_folder(folder)
                return
            log.warning(
                "%s: finishing a change a crash interrupted (%s)", folder.path, type(pending).__name__.lower()
            )
            if isinstance(pending, intent.Moves):
                intent.run_moves(folder, pending)
            else:
                fd = folder.open(LOG_NAME, os.O_RDONLY)
                try:
                    # The intent is written before the redaction event: without the event,
                    # the redaction never happened and there is nothing to erase.
                    if redaction_stored(folder, fd, pending.message_id, pending.by):
                        size = os.fstat(fd).st_size
                        erase_message(folder, fd, size, pending.message_id, pending.by)
                finally:
                    os.close(fd)
            intent.clear(folder)
        except OSError as exc:
            raise StorageError.wrap("finish a pending change", str(folder.path), exc) from None
        finally:
            self.forget()  # the log may be another file now, the folder gone

    def forget(self) -> None:
        """Drop the cached descriptors (before the log is removed or replaced)."""
        self.checked = self.placed = False
        self.handle.drop()

    def read(self, after: Head | None) -> Iterator[Record]:
        fd = self._fd(create=False)
        if fd is None:
            if after is not None:
                raise StaleHeadError()
            return
        check_head(fd, self.size, after)
        if after is not None and self.size == after.position:
            return  # nothing new, and no torn tail either
        scan = LineScan(fd, 0 if after is None else after.position, 1 if after is None else after.line + 1)
        head = after
        for record in scan_with(scan, str(self.path), after):
            head = record.head
            yield record
        if not scan.torn:
            return
        tail = os.pread(fd, scan.torn, scan.end)
        line = (0 if head is None else head.line) + 1
        intact = classify_tail(tail, head, path=str(self.path), line=line, offset=scan.end)
        try:
            if intact is not None:
                # A whole, chained line that only lacks its newline: keep it, complete it.
                log.warning(
                    "%s: completed a last line that lacked its newline (byte %d)", self.path, scan.end
                )
                write_all(fd, b"\n")
                self.size = scan.end + len(tail) + 1
                yield intact
                return
            # Only a crashed writer leaves a torn line, and its append never returned; cutting
            # it is the one place bytes are removed from a log.
            log.warning("%s: dropped a torn last line (%d bytes at byte %d)", self.path, scan.torn, scan.end)
            os.ftruncate(fd, scan.end)
            self.size = scan.end
        except OSError as exc:
            raise StorageError.wrap("repair the last line", str(self.path), exc) from None

    def peek(self, after: Head | None) -> Iterator[Record]:
        """What ``read`` would return of the unterminated tail after ``after``, changing nothing."""
        fd = self._fd(create=False)
        start = 0 if after is None else after.position
        if fd is None or self.size <= start:
            return
        tail = os.pread(fd, self.size - start, start)
        line = (0 if after is None else after.line) + 1
        intact = classify_tail(tail, after, path=str(self.path), line=line, offset=start)
        if intact is not None:
            yield intact

    def snapshot(self) -> tuple[Session, Head] | None:
        fd = self._fd(create=False)
        return None if fd is None else load_snapshot(self._here(), fd, self.size)

    def history(self) -> History:
        self._fd(create=False)  # checked first: reading on never reopens the folder being read
        found = self.folder()
        if found is None:
            return None, None, iter(())
        return read_history(found, self.read)

    def sync_log(self) -> None:
        """Make the log durable before a file that describes it (a snapshot, an archive).

        Under ``fsync="always"`` every append already is. Otherwise a snapshot (fsynced as it
        is written) could survive a power cut that loses the log lines it covers, and then
        read as proof that events were lost.
        """
        fd = self.handle.fd
        if fd is not None and self.storage.fsync != "always":
            _sync(fd)

    def save_snapshot(self, session: Session, head: Head) -> None:
        try:
            self.sync_log()
            save_snapshot(self._here(), session, head)
        except OSError as exc:
            raise StorageError.wrap("snapshot", str(self.path.parent), exc) from None

    def prune(self, state: Session, head: Head) -> tuple[PruneResult, Stamp]:
        """Archive every event before ``head`` (the end of the log); see ``compaction``."""
        fd = self._fd(create=False)
        if fd is None or self.size != head.position:
            raise StaleHeadError()
        try:
            self.sync_log()
            folder = self._here()
            result = prune_active_log(folder, fd, state, head)
            stamp = stamp_of(folder.lstat(LOG_NAME), folder.ino)
        except OSError as exc:
            raise StorageError.wrap("prune", str(self.path), exc) from None
        finally:
            self.forget()  # the active log is a new file now
        return result, stamp

    def quarantined(self, message_id: str) -> bool:
        """Whether the session's quarantine holds anything of the message."""
        try:
            return quarantine_mentions(self._here(), message_id)
        except OSError as exc:
            raise StorageError.wrap("read the quarantine", str(self.path.parent), exc) from None

    def intend_erase(self, message_id: str, by: int) -> None:
        """Decide the erasure before its redaction event (seq ``by``) is appended: once the
        event is there, a crash leaves an intent that the next writer finishes."""
        try:
            folder = self._here()
            # The erasure reaches into the quarantine: if it cannot be opened (a symlink in its
            # place), refuse now, before the event; after it every writer would fail the same.
            folder.child(QUARANTINE_DIR)
            intent.write(folder, intent.Erase(message_id, by))
        except OSError as exc:
            raise StorageError.wrap("redact", str(self.path.parent), exc) from None

    def erase(self, message_id: str, by: int, head: Head) -> Stamp:
        """Erase a redacted message's content from every file (see ``erasure``)."""
        fd = self._fd(create=False)
        if fd is None or self.size != head.position:
            raise StaleHeadError()
        try:
            folder = self._here()
            # Decided first: a crash part way is finished by the next writer to open the log.
            intent.write(folder, intent.Erase(message_id, by))
            erase_message(folder, fd, self.size, message_id, by)
            intent.clear(folder)
            stamp = stamp_of(folder.lstat(LOG_NAME), folder.ino)
        except OSError as exc:
            raise StorageError.wrap("redact", str(self.path.parent), exc) from None
        finally:
            self.forget()  # the active log may be a new file now
        return stamp

    def retain(self, before: datetime) -> int:
        """Fold archive segments older than ``before`` into the base; returns events dropped."""
        try:
            return apply_retention(self._here(), before)
        except OSError as exc:
            raise StorageError.wrap("retention", str(self.path.parent), exc) from None

    def append(self, after: Head | None, lines: list[tuple[bytes, int, str, int]]) -> tuple[Head, Stamp]:
        fd = self._fd(create=True)
        assert fd is not None
        start = 0 if after is None else after.position
        if self.size != start:
            raise StaleHeadError()
        data = b"".join(entry[0] for entry in lines)
        try:
            write_all(fd, data)
            if self.storage.fsync == "always":
                _sync(fd)
        except OSError as exc:
            self._undo(fd, start)
            self.size = start
            raise StorageError.wrap("append", str(self.path), exc) from None
        if self.storage.fsync == "interval":
            self.storage.mark_dirty(self.handle.name)
        position = start
        line = 0 if after is None else after.line
        head = after
        for data_line, seq, digest, hash_at in lines:
            line += 1
            head = Head(seq, digest, position + len(data_line), position + hash_at, line)
            position += len(data_line)
        assert head is not None
        self.size = position
        return head, stamp_of(os.fstat(fd), self._here().ino)

    def _undo(self, fd: int, start: int) -> None:
        # After a failed write or fsync the new bytes' fate is unknown: remove them so no reader
        # ever sees an append that was reported as failed.
        try:
            os.ftruncate(fd, start)
        except OSError as exc:
            log.error(
                "%s: could not remove a failed append (%s); the next writer will check it", self.path, exc
            )


def stamp_of(st: os.stat_result, folder_ino: int) -> Stamp:
    """What tells a session's log unchanged: the log's (device, inode, size, mtime), and the
    inode of the session folder holding it. A log can get a deleted one's inode and, within
    one file-time tick (or on a file system with coarse times), its size and mtime too; a
    session folder cannot get a deleted one's inode, because a deleted folder is kept (empty)
    for an hour (see ``FileStorage.remove_folder``)."""
    return Stamp((st.st_dev, folder_ino, st.st_ino, st.st_size, st.st_mtime_ns), st.st_size)


def check_head(fd: int, size: int, after: Head | None) -> None:
    if after is None or after.hash_at < 0:
        return  # the start of the log (after an archive or base: the chain check covers it)
    if size < after.position or not holds_hash(fd, after):
        raise StaleHeadError()


def scan_with(scan: LineScan, path: str, after: Head | None) -> Iterator[Record]:
    head = after
    for line_no, offset, data in scan:
        record = check_line(data, head, path=path, line=line_no, offset=offset, end=offset + len(data) + 1)
        head = record.head
        yield record


def sweep_temp_files(folder: Folder) -> None:
    """Remove the hidden temporary files older than ``STALE_TEMP_SECONDS`` that crashed writers
    left in session ``folder``, its archive and its quarantine (each removal logged).

    Tidying never fails the operation it precedes: a refusal is logged, and the operation
    meets (and reports) the same trouble itself if it matters to it.
    """
    try:
        places = [folder]
        archive = folder.child(ARCHIVE_DIR)
        if archive is not None:
            places.append(archive)
        quarantine = folder.child(QUARANTINE_DIR)
        if quarantine is not None:
            places.append(quarantine)
            for name in sorted(quarantine.names()):
                # Each repair's own folder (temporary files of its copies land there); never
                # a symlink.
                if stat.S_ISDIR(quarantine.lstat(name).st_mode) and (moved := quarantine.child(name)):
                    places.append(moved)
        for place in places:
            for name in place.sweep_temp(STALE_TEMP_SECONDS):
                log.info("%s: removed a stale temporary file", place.path / name)
    except OSError as exc:
        log.warning("%s: could not remove stale temporary files: %s", folder.path, exc)
