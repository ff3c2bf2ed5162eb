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

import contextlib
import errno
import logging
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from journal.backends.files import intent
from journal.backends.files.archive import ensure_archive
from journal.backends.files.compaction import apply_retention, prune_active_log
from journal.backends.files.erasure import erase_message, quarantine_mentions, redaction_stored
from journal.backends.files.fsio import Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    QUARANTINE_DIR,
    Written,
    check_missing_log,
    history_lines,
    load_snapshot,
    read_history,
    save_snapshot,
)
from journal.backends.files.layout import LOG_NAME
from journal.backends.files.locking import SessionLock
from journal.backends.files.logfile import LineScan, holds_hash, read_range, write_all
from journal.core.chain import History, check_line, classify_tail
from journal.core.codec import Decoded
from journal.core.head import Head, Line, Record
from journal.core.state import Session
from journal.engine.storage import Batch, Exported, Pruned, Stamp
from journal.errors import CorruptLogError, SessionExistsError, StaleHeadError, StorageError

__all__ = [
    "FileTransaction",
    "Handle",
    "log_records",
    "position",
    "read_log",
    "record_of",
    "scan_after",
    "stamp_of",
]

log = logging.getLogger("journal")
_sync = getattr(os, "fdatasync", os.fsync)
_REDACTED = b'"type":"message_redacted"'
# A temporary file this old is a crashed writer's leftover: no write takes an hour, and a
# younger one may be a write in progress in another process (sweeping it would fail that write).
STALE_TEMP_SECONDS = 3600.0


class _Owner(Protocol):
    """What a transaction needs from its ``FileStorage``."""

    fsync: str

    def sessions_folder(self, create: bool) -> Folder | None: ...

    def mark_dirty(self, name: str) -> None: ...

    def handle(self, session_id: str) -> Handle: ...

    def remove_folder(self, folder: Folder) -> None: ...


class Handle:
    """Open descriptors of one session: its lock file and (once they exist) its folder and log.

    ``name`` is the session folder's name in ``sessions/``; ``path`` the log's path and
    ``where`` the same as text (for messages). ``mutex`` is held by the transaction using it;
    a handle evicted (or its storage closed) is ``closed``, and a transaction that finds it so
    once it holds the mutex takes the session's current handle instead.
    """

    __slots__ = (
        "closed",
        "fd",
        "folder",
        "folder_ino",
        "head",
        "lock",
        "mutex",
        "name",
        "path",
        "seen",
        "session_id",
        "stamp",
        "swept",
        "used",
        "where",
        "written",
    )

    def __init__(self, session_id: str, lock: SessionLock, name: str, path: Path) -> None:
        self.session_id = session_id
        self.lock = lock
        self.name = name
        self.path = path
        self.where = str(path)
        self.mutex = threading.Lock()
        self.fd: int | None = None
        self.folder: Folder | None = None
        self.folder_ino = -1  # the held folder's inode (a part of every stamp)
        self.swept = False  # stale temporary files removed (once per handle)
        self.used = True  # by a transaction since the last eviction sweep passed it
        self.closed = False
        # Where this handle's last append or read left the log: the head, what fstat showed
        # then (inode, size, mtime) and the stamp. While fstat shows the same, the log holds
        # nothing after that head: a writer catching up reads nothing.
        self.head: Head | None = None
        self.seen: tuple[int, int, int] | None = None
        self.stamp: Stamp | None = None
        self.written: Written | None = None  # the last snapshot written here (chunks to reuse)

    def drop(self) -> None:
        """Close the log and the session folder (the lock file stays open)."""
        self.head = self.seen = self.stamp = None
        fd, self.fd = self.fd, None
        folder, self.folder = self.folder, None
        try:
            if fd is not None:
                os.close(fd)
        finally:
            if folder is not None:
                folder.close()

    def close(self) -> None:
        self.closed = True
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
        self.where = handle.where
        self.size = 0
        self.st: os.stat_result | None = None  # the log's, when checked
        self.checked = False  # the cached log descriptor was checked: still the session's
        self.placed = False  # handle.folder is the session folder (or None: there is none)
        self.tidy = True  # sweep stale temporary files when the folder is first opened

    def __enter__(self) -> FileTransaction:
        handle = self.handle
        handle.mutex.acquire()
        try:
            while handle.closed and not self.loose:
                # Evicted since it was looked up: the session's current handle instead.
                handle.mutex.release()
                handle = self.handle = self.storage.handle(handle.session_id)
                handle.mutex.acquire()
            handle.lock.acquire()
        except BaseException:
            handle.mutex.release()
            if self.loose:
                handle.close()
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
                if self.loose:
                    handle.close()

    def _keep(self) -> bool:
        """Whether the held log (and with it the held folder) is still the session's."""
        handle = self.handle
        if handle.fd is None:
            return False
        st = self.st = os.fstat(handle.fd)
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
        if found is not None:
            handle.folder_ino = found.ino
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
            raise StorageError.wrap("open", self.where, exc) from None
        self.st = os.fstat(handle.fd)
        self.size = self.st.st_size
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

    def read(self, after: Head | None) -> Batch:
        """See ``Source.read``; as every writer does, first cuts a torn tail (logged), or
        completes a whole line that lost only its newline."""
        fd = self._fd(create=False)
        if fd is None:
            if after is not None:
                raise StaleHeadError()
            return Batch([], None)
        handle = self.handle
        st = self.st
        if (
            after is not None
            and after == handle.head
            and st is not None
            and handle.seen == (st.st_ino, st.st_size, st.st_mtime_ns)
        ):
            return Batch([], handle.stamp)  # unchanged since this handle left the log at ``after``
        records, scan, damage = read_log(fd, after, self.where)
        if damage is not None:
            return Batch(records, None, damage)
        if scan.torn:
            intact = self._mend_tail(fd, scan, records[-1].head if records else after)
            if intact is not None:
                records.append(intact)
        else:
            self.size = scan.end
        stamp = self._seen(fd, records[-1].head if records else after)
        return Batch(records, stamp)

    def _seen(self, fd: int, head: Head | None) -> Stamp:
        """The log's stamp now, remembered with ``head`` (where the log ends) for ``read``."""
        st = os.fstat(fd)
        handle = self.handle
        handle.head = head
        handle.seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        assert handle.folder is not None  # held with the open log: a stamp names it
        handle.stamp = stamp = stamp_of(st, handle.folder_ino)
        return stamp

    def _mend_tail(self, fd: int, scan: LineScan, head: Head | None) -> Record | None:
        tail = os.pread(fd, scan.torn, scan.end)
        line = (0 if head is None else head.active) + 1
        intact = classify_tail(tail, head, path=self.where, line=line, offset=scan.end)
        try:
            if intact is not None:
                # A whole, chained line that only lacks its newline: keep it, complete it.
                log.warning(
                    "%s: completed a last line that lacked its newline (byte %d)", self.path, scan.end
                )
                write_all(fd, b"\n")
                self.size = scan.end + len(tail) + 1
                return record_of(intact, line, scan.end, len(tail) + 1)
            # Only a crashed writer leaves a torn line, and its append never returned; cutting
            # it is the one place bytes are removed from a log.
            log.warning("%s: dropped a torn last line (%d bytes at byte %d)", self.path, scan.torn, scan.end)
            os.ftruncate(fd, scan.end)
            self.size = scan.end
        except OSError as exc:
            raise StorageError.wrap("repair the last line", self.where, exc) from None
        return None

    def peek(self, after: Head | None) -> list[Record]:
        """What ``read`` would return of the unterminated tail after ``after``, changing nothing."""
        fd = self._fd(create=False)
        start = position(after)
        if fd is None or self.size <= start:
            return []
        tail = os.pread(fd, self.size - start, start)
        line = (0 if after is None else after.active) + 1
        intact = classify_tail(tail, after, path=self.where, line=line, offset=start)
        return [] if intact is None else [record_of(intact, line, start, len(tail) + 1)]

    def snapshot(self) -> tuple[Session, Head] | None:
        fd = self._fd(create=False)
        return None if fd is None else load_snapshot(self._here(), fd, self.size)

    def history(self, resume: Head | None = None) -> History:
        self._fd(create=False)  # checked first: reading on never reopens the folder being read
        found = self.folder()
        if found is None:
            return None, None, iter(())
        return read_history(found, lambda after: self.read(after).checked(), resume)

    def sync_log(self) -> None:
        """Make the log durable before a file that describes it (a snapshot, an archive).

        Under ``fsync="always"`` every append already is. Otherwise a snapshot (fsynced as it
        is written) could survive a power cut that loses the log lines it covers, and then
        read as proof that events were lost.
        """
        fd = self.handle.fd
        if fd is not None and self.storage.fsync != "always":
            _sync(fd)

    def save_snapshot(self, state: Session, head: Head) -> None:
        """See ``Transaction.save_snapshot``: written only while the log still holds ``head``
        and nothing after it redacted what ``state`` may show (a redaction must never find
        erased content written back)."""
        fd = self._fd(create=False)
        folder = self.folder()
        end = position(head)
        if (
            fd is None
            or folder is None
            or self.size < end
            or not holds_hash(fd, head)
            or _REDACTED in read_range(fd, end, self.size - end)
        ):
            return
        try:
            self.sync_log()
            self.handle.written = save_snapshot(folder, state, head, self.handle.written)
        except OSError as exc:
            raise StorageError.wrap("snapshot", str(self.path.parent), exc) from None

    def prune(self, state: Session, head: Head) -> Pruned:
        """Archive every event before ``head`` (the end of the log); see ``compaction``."""
        fd = self._fd(create=False)
        if fd is None or self.size != position(head):
            raise StaleHeadError()
        try:
            self.sync_log()
            folder = self._here()
            archived, new_head = prune_active_log(folder, fd, state, head)
            stamp = stamp_of(folder.lstat(LOG_NAME), folder.ino)
        except OSError as exc:
            raise StorageError.wrap("prune", self.where, exc) from None
        finally:
            self.forget()  # the active log is a new file now
        return Pruned(archived, new_head, stamp)

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
        if fd is None or self.size != position(head):
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

    def append(self, after: Head | None, lines: Sequence[Line]) -> tuple[Head, Stamp]:
        fd = self.handle.fd if self.checked else self._fd(create=True)
        assert fd is not None
        start = after.cursor[0] if after is not None and after.cursor else 0  # see ``position``
        if self.size != start:
            raise StaleHeadError()
        data = lines[0].data if len(lines) == 1 else b"".join(line.data for line in lines)
        try:
            write_all(fd, data)
            if self.storage.fsync == "always":
                _sync(fd)
        except OSError as exc:
            self._undo(fd, start)
            self.size = start
            raise StorageError.wrap("append", self.where, exc) from None
        if self.storage.fsync == "interval":
            self.storage.mark_dirty(self.handle.name)
        end = start
        active = 0 if after is None else after.active
        head = after
        for line in lines:
            active += 1
            head = Head(line.seq, line.hash, active, (end + len(line.data), end + line.hash_at))
            end += len(line.data)
        assert head is not None
        self.size = end
        return head, self._seen(fd, head)

    def export(self) -> Exported:
        """See ``Transaction.export``."""
        fd = self._fd(create=False)
        if fd is None:
            return Exported(None, [])
        list(self.history()[2])  # as any writer: a torn tail is cut, a damaged line raises
        folder = self._here()
        archive = folder.child(ARCHIVE_DIR)
        base = None
        if archive is not None:
            with contextlib.suppress(FileNotFoundError):
                base = archive.read(BASE_NAME)
        return Exported(base, history_lines(folder, fd))

    def restore(self, exported: Exported) -> None:
        """See ``Transaction.restore``: the lines become the active log, the base the archive's."""
        if self._fd(create=False) is not None and self.size > 0:
            raise SessionExistsError(self.handle.session_id, 0, -1)
        try:
            folder = self.folder(create=True)
            assert folder is not None
            if exported.base is not None:
                ensure_archive(folder).write_atomic(BASE_NAME, exported.base)
            folder.write_atomic(LOG_NAME, b"".join(line + b"\n" for line in exported.lines))
        except OSError as exc:
            raise StorageError.wrap("import", str(self.path.parent), exc) from None
        finally:
            self.forget()

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
    return (st.st_dev, folder_ino, st.st_ino, st.st_size, st.st_mtime_ns)


def position(head: Head | None) -> int:
    """Where the log is read on after ``head``: its line's end (0: from the start, or after an
    archived event, which has no position in the active log)."""
    return head.cursor[0] if head is not None and head.cursor else 0


def record_of(decoded: Decoded, line: int, offset: int, size: int) -> Record:
    """The record of a checked line of the active log: line ``line`` at byte ``offset``."""
    end = offset + size
    head = Head(decoded.event.seq, decoded.hash, line, (end, offset + decoded.hash_at))
    return Record(decoded.event, head, line, offset, size)


def scan_after(fd: int, after: Head | None, *, checked: bool = False) -> LineScan:
    """A scan of the active log open as ``fd`` from just after ``after`` (``checked``: the
    caller already saw ``after``'s hash there, in this same unchanged log).

    Raises:
        StaleHeadError: ``after``'s hash is not where it says: the log was replaced.
    """
    if after is not None and after.cursor and not checked and not holds_hash(fd, after):
        raise StaleHeadError()
    return LineScan(fd, position(after), 1 if after is None else after.active + 1)


def log_records(scan: LineScan, after: Head | None, path: str) -> Iterator[Record]:
    """The complete lines ``scan`` finds, checked and chained from ``after``, read as they
    are taken (a lazy reader goes on into lines appended meanwhile).

    Raises:
        CorruptLogError: a line is damaged, or does not chain.
    """
    head = after
    for line, offset, data in scan:
        record = record_of(
            check_line(data, head, path=path, line=line, offset=offset), line, offset, len(data) + 1
        )
        head = record.head
        yield record


def read_log(
    fd: int, after: Head | None, path: str, *, checked: bool = False
) -> tuple[list[Record], LineScan, CorruptLogError | None]:
    """Every complete line of the active log open as ``fd`` after ``after``, checked, up to
    the first damaged one (whose error comes third); and the scan (when the read was not cut
    short, its ``torn`` bytes after the last newline are the caller's to judge).

    Raises:
        StaleHeadError: ``after``'s hash is not where it says: the log was replaced.
    """
    scan = scan_after(fd, after, checked=checked)
    records: list[Record] = []
    try:
        records.extend(log_records(scan, after, path))
    except CorruptLogError as exc:
        return records, scan, exc
    return records, scan, None


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
