"""The files backend: one append-only JSONL log per session under a root folder.

Invariant that makes cheap change detection sound: a log file is only ever appended to. The
only bytes ever cut are an unterminated tail after the last newline (a torn write), which no
reader has read as an event, and what an operator's ``repair`` moves into quarantine (readers
then see another size and time, and re-check their position against the chain). So "same
inode, same size" means "same events", and a reader that stopped at byte N of an inode can
resume there. Transactions and open descriptors live in ``filetx``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from journal import intent
from journal.archive import SEGMENT_ERRORS, list_segments, read_segment_lines
from journal.errors import CorruptLogError, SessionExistsError, StorageError
from journal.events import Created
from journal.filecheck import check_files
from journal.filetx import FileTransaction, Handle, check_head, scan_with, stamp_of
from journal.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    check_missing_log,
    first_seq,
    history_lines,
    holds_history,
    load_base,
    load_snapshot,
    read_history,
    save_snapshot,
)
from journal.locking import SessionLock
from journal.logfile import LineScan, read_range
from journal.paths import (
    LOG_NAME,
    Layout,
    dirname_for,
    fsync_dir,
    open_existing,
    open_file,
    read_regular,
    stat_existing,
    write_atomic,
)
from journal.repair import repair_files
from journal.snapshot import encode_snapshot
from journal.state import Session
from journal.storage import (
    Head,
    History,
    Record,
    StaleHeadError,
    Stamp,
    check_line,
    classify_tail,
    holds_hash,
)
from journal.verify import Anchor, RepairReport, SessionCheck

__all__ = ["FileStorage"]

log = logging.getLogger("journal")

FSYNC_POLICIES = ("always", "interval", "never")
_REDACTED = b'"type":"message_redacted"'
_sync = getattr(os, "fdatasync", os.fsync)
# Longer than any kernel clock tick that file times follow (Linux: 1-10 ms; see _outlast_tick).
_TICK_NS = 20_000_000


class _Target(NamedTuple):
    """A session folder to verify, and its session id (None: the id cannot be read)."""

    folder: Path
    session_id: str | None


class FileStorage:
    """Logs in files; see the module docstring for the invariant it relies on."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: str = "always",
        lock_timeout: float = 60.0,
        max_open_sessions: int = 64,
    ) -> None:
        self.layout = Layout(root)
        self.fsync = fsync
        self.lock_timeout = lock_timeout
        self.max_open_sessions = max_open_sessions
        self._handles: OrderedDict[str, Handle] = OrderedDict()
        self._guard = threading.Lock()
        self._dirty: set[Path] = set()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        _after_fork_in_child.add(self)

    # -- reading without the lock -----------------------------------------------------------

    def location(self, session_id: str) -> str:
        return str(self.layout.log_path(session_id))

    def stamp(self, session_id: str) -> Stamp | None:
        path = self.layout.log_path(session_id)
        st = stat_existing(path)
        if st is None:
            check_missing_log(path.parent)  # absent, unless the folder holds its history
            return None
        return stamp_of(st)

    def read(self, session_id: str, after: Head | None = None) -> Iterator[Record]:
        path = self.layout.log_path(session_id)
        fd = open_existing(path)
        if fd is None:
            if after is not None:
                # The log ``after`` points into is gone (deleted): "nothing new" would be a
                # stale answer from a cache.
                raise StaleHeadError()
            return
        try:
            check_head(fd, os.fstat(fd).st_size, after)
            start = 0 if after is None else after.position
            scan = LineScan(fd, start, 1 if after is None else after.line + 1)
            head = after
            for record in scan_with(scan, str(path), after):
                head = record.head
                yield record
            if scan.torn:
                # A torn or unterminated last line may be a write in progress: readers stop
                # before it. Only a damaged newline is reported.
                tail = os.pread(fd, scan.torn, scan.end)
                line = (0 if head is None else head.line) + 1
                classify_tail(tail, head, path=str(path), line=line, offset=scan.end)
        finally:
            os.close(fd)

    def snapshot(self, session_id: str) -> tuple[Session, Head] | None:
        """The newest snapshot that agrees with the current active log (None: none usable)."""
        path = self.layout.log_path(session_id)
        self._settle(path.parent, session_id)
        fd = open_existing(path)
        if fd is None:
            return None
        try:
            return load_snapshot(path.parent, fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)

    def history(self, session_id: str, resume: tuple[int, str] | None = None) -> History:
        """The base state (if a retention policy dropped early events) and every record after it."""
        path = self.layout.log_path(session_id)
        self._settle(path.parent, session_id)
        return read_history(path.parent, path, lambda after: self.read(session_id, after), resume)

    def _settle(self, folder: Path, session_id: str) -> None:
        """Before a cold read (a snapshot, a whole history): wait for, or finish, a change
        another writer decided (see ``intent``), so no reader sees it half done. One lstat
        when none is pending; cached reads that only read on never get here."""
        if os.path.lexists(folder / intent.INTENT_NAME):
            with self.writer(session_id) as tx:
                tx.settle()

    def history_stamp(self, session_id: str) -> object:
        folder = self.layout.session_dir(session_id)
        archive = folder / ARCHIVE_DIR
        return tuple(_identity(p) for p in (folder / LOG_NAME, archive, archive / BASE_NAME))

    def save_snapshot(self, session_id: str, session: Session, head: Head) -> None:
        """Record a snapshot of ``session`` at ``head`` (a cache: failures are only logged).

        Encoded without the lock, written under it, and only while the log still holds
        ``head``: a redaction in between erased what this state shows, and must not find it
        written back afterwards.
        """
        folder = self.layout.session_dir(session_id)
        try:
            data = encode_snapshot(session, head)
            with self.writer(session_id) as tx:
                fd = tx._fd(create=False)
                # A redaction since ``head`` erased content this state may show.
                if (
                    fd is not None
                    and tx.size >= head.position
                    and holds_hash(fd, head)
                    and _REDACTED not in read_range(fd, head.position, tx.size - head.position)
                ):
                    tx.sync_log()
                    save_snapshot(folder, data, head, replace=False)
        except Exception as exc:  # a cache must never fail the write it follows
            log.warning("%s: could not write a snapshot at seq %d: %s", folder, head.seq, exc)

    def session_ids(self) -> Iterator[str]:
        for _, session_id, readable in self._folders(log_damage=True):
            if session_id is not None and readable:
                yield session_id

    def _folders(self, *, log_damage: bool) -> Iterator[tuple[Path, str | None, bool]]:
        """Every folder holding a session: its id if it can be read, and whether it reads.

        A folder whose active log holds no complete line is a create that has not finished,
        unless an archive holds earlier events: then it is a damaged session.
        """
        for folder in self.layout.session_dirs():
            path = folder / LOG_NAME
            fd = open_existing(path)
            first = None
            if fd is not None:
                try:
                    first = next(iter(LineScan(fd)), None)
                finally:
                    os.close(fd)
            if fd is None:
                try:
                    check_missing_log(folder)
                    continue  # deleted (or a delete in progress), or a create that never wrote
                except CorruptLogError as exc:
                    if log_damage:
                        log.error("%s: session skipped in listings: %s", folder, exc)
                    yield folder, None, False
                    continue
            if first is None and not (folder / ARCHIVE_DIR).is_dir():
                continue  # a create that has not written its first event yet
            try:
                session_id = _session_id(folder, path, b"" if first is None else first[2])
            except CorruptLogError as exc:
                # One damaged session must not hide every other one from listings (and from
                # compact(None)); reads of it still raise with the location.
                if log_damage:
                    log.error("%s: session skipped in listings: %s", folder, exc)
                yield folder, None, False
                continue
            if dirname_for(session_id) != folder.name:
                if log_damage:
                    log.warning("%s: holds session %r, which belongs elsewhere; skipped", path, session_id)
                yield folder, None, False
                continue
            if first is None and fd is not None and log_damage:
                log.error("%s: session skipped in listings: its active log holds no event", folder)
            yield folder, session_id, first is not None

    # -- integrity -------------------------------------------------------------------------

    def verify_targets(self, session_id: str | None) -> list[_Target]:
        """What ``verify`` checks: one session, or every session folder (damaged ones too)."""
        if session_id is not None:
            folder = self.layout.session_dir(session_id)
            return [_Target(folder, session_id)] if folder.is_dir() else []
        return [_Target(folder, sid) for folder, sid, _ in self._folders(log_damage=False)]

    def verify(self, target: _Target, anchors: Mapping[str, Anchor]) -> SessionCheck:
        """Check one target's files under its writer lock (see ``filecheck``)."""
        label = target.session_id if target.session_id is not None else target.folder.name
        with self._writer_for(target) as tx:
            checked = check_files(
                target.folder, label, tx._fd(create=False), tx.size, anchors.get(label), tx.read
            )
        check = checked.check
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=label, seq=check.seq, hash=check.hash)
        return SessionCheck(label, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        """Quarantine what follows the intact prefix (see ``repair``); None if no such session."""
        folder = self.layout.session_dir(session_id)
        if not folder.is_dir():
            return None  # checked first too: no lock file for a session that never was
        with self.writer(session_id) as tx:
            if not folder.is_dir():
                return None
            fd = tx._fd(create=False)
            # A dry run must not change a byte, not even the torn tail every writer cuts.
            checked = check_files(folder, session_id, fd, tx.size, None, tx.peek if dry_run else tx.read)
            try:
                return repair_files(folder, fd, tx.size, checked, session_id, dry_run=dry_run)
            except OSError as exc:
                raise StorageError.wrap("repair", str(folder), exc) from None
            finally:
                if not dry_run:
                    tx.forget()

    def _writer_for(self, target: _Target) -> FileTransaction:
        if target.session_id is not None:
            return self.writer(target.session_id)
        # A folder whose id cannot be read: its lock file is named by the hash in its name.
        lock = self.layout.locks / f"{target.folder.name.rsplit('~', 1)[1]}.lock"
        handle = Handle(target.folder.name, SessionLock(lock, self.lock_timeout), target.folder / LOG_NAME)
        handle.refs = 1
        return FileTransaction(self, handle, loose=True)

    # -- moving whole sessions between backends ---------------------------------------------

    def export_raw(self, session_id: str) -> tuple[bytes | None, list[bytes]]:
        """See ``Storage.export_raw`` (under the session's writer lock)."""
        folder = self.layout.session_dir(session_id)
        with self.writer(session_id) as tx:
            fd = tx._fd(create=False)
            if fd is None:
                return None, []
            list(tx.history()[2])  # as any writer: a torn tail is cut, a damaged line raises
            base_path = folder / ARCHIVE_DIR / BASE_NAME
            base = read_regular(base_path) if base_path.exists() else None
            return base, history_lines(folder, fd)

    def import_raw(self, session_id: str, base: bytes | None, lines: list[bytes]) -> None:
        """See ``Storage.import_raw``: the lines become the active log, the base the archive's."""
        folder = self.layout.session_dir(session_id)
        with self.writer(session_id) as tx:
            if tx._fd(create=False) is not None and tx.size > 0:
                raise SessionExistsError(session_id, 0, -1)
            try:
                if base is not None:
                    write_atomic(folder / ARCHIVE_DIR / BASE_NAME, base)
                write_atomic(folder / LOG_NAME, b"".join(line + b"\n" for line in lines))
            except OSError as exc:
                raise StorageError.wrap("import", str(folder), exc) from None
            finally:
                tx.forget()

    # -- writing under the lock -------------------------------------------------------------

    def writer(self, session_id: str) -> FileTransaction:
        return FileTransaction(self, self._pin(session_id))

    def _unpin(self, handle: Handle) -> None:
        with self._guard:
            handle.refs -= 1

    def delete(self, session_id: str) -> bool:
        folder = self.layout.session_dir(session_id)
        log_path = folder / LOG_NAME
        with self.writer(session_id) as tx:
            tx.forget()
            if not folder.exists():
                return False
            # A folder whose log holds no complete event (a create that crashed) is removed
            # all the same, but the session did not exist.
            existed = _holds_events(folder)
            last_write = _identity(log_path)
            try:
                # The intent says what the missing log means from here on: deleted, not lost.
                # The unlink is the commit point; writers holding the log open see it
                # unlinked (st_nlink 0) and never append to a file that is gone.
                intent.write(folder, intent.Delete())
                log_path.unlink(missing_ok=True)
                fsync_dir(folder)
                self.remove_folder(folder)
            except OSError as exc:
                raise StorageError.wrap("delete", str(folder), exc) from None
            if last_write is not None:
                _outlast_tick(last_write[2])
        return existed

    def remove_folder(self, folder: Path) -> None:
        """Finish a delete past its commit point: the folder goes, all at once, then its files.

        Renamed first, so the rest vanishes in one step (a crash leaves a hidden folder that
        no listing shows and the next delete clears); the parent is fsynced so the rename
        survives power loss.
        """
        tomb = self.layout.sessions / f".deleted-{uuid.uuid4().hex}"
        os.rename(folder, tomb)
        fsync_dir(self.layout.sessions)
        for leftover in self.layout.sessions.glob(".deleted-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _pin(self, session_id: str) -> Handle:
        with self._guard:
            handle = self._handles.get(session_id)
            if handle is None:
                lock = SessionLock(self.layout.lock_path(session_id), self.lock_timeout)
                path = self.layout.log_path(session_id)
                handle = self._handles[session_id] = Handle(session_id, lock, path)
            else:
                self._handles.move_to_end(session_id)
            handle.refs += 1
            if len(self._handles) > self.max_open_sessions:
                for key, old in list(self._handles.items()):
                    if len(self._handles) <= self.max_open_sessions:
                        break
                    if old.refs == 0:
                        del self._handles[key]
                        old.close()
            return handle

    # -- durability ------------------------------------------------------------------------

    def mark_dirty(self, path: Path) -> None:
        with self._guard:
            self._dirty.add(path)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, name="journal-fsync", daemon=True)
                self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.flush()

    def flush(self) -> None:
        """fsync every log written since the last flush (the ``interval`` policy's work)."""
        with self._guard:
            dirty, self._dirty = self._dirty, set()
        for path in dirty:
            try:
                fd = open_file(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                _sync(fd)
            except OSError as exc:
                log.error("%s: background fsync failed: %s; recent appends may not be durable", path, exc)
            finally:
                os.close(fd)

    def close(self) -> None:
        self._stop.set()
        # A Journal's finalizer may run on any thread, the flusher's own included.
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        self.flush()
        with self._guard:
            handles, self._handles = list(self._handles.values()), OrderedDict()
        for handle in handles:
            handle.close()

    def _forget_after_fork(self) -> None:
        # Descriptors inherited across fork share lock state with the parent: never reuse them.
        # Closing the child's copies is safe: an flock lasts while any descriptor of it is open,
        # and the parent keeps its own.
        for handle in self._handles.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._guard = threading.Lock()
        self._handles = OrderedDict()
        self._dirty = set()
        self._flusher = None
        self._stop = threading.Event()


def _session_id(folder: Path, path: Path, first_line: bytes) -> str:
    """The id a session folder holds: from ``created``, or from what pruning left in its place."""
    if first_line.startswith(b'{"v":1,"seq":1,'):
        event = check_line(first_line, None, path=str(path), line=1, offset=0, end=len(first_line) + 1).event
        if isinstance(event, Created):
            return event.session_id
    base = load_base(folder)
    if base is not None:
        return base[0].id
    where, line = str(path), first_line
    segments = list_segments(folder / ARCHIVE_DIR)
    if segments:
        where = str(segments[0].path)
        try:
            first = next(iter(read_segment_lines(segments[0])), None)
        except SEGMENT_ERRORS as exc:
            raise CorruptLogError(where, 1, 0, f"archive segment unreadable: {exc}") from None
        line = b"" if first is None else first[2]
    event = check_line(line, None, path=where, line=1, offset=0, end=len(line) + 1).event
    if not isinstance(event, Created):
        raise CorruptLogError(where, 1, 0, "first event is not 'created'")
    return event.session_id


_after_fork_in_child: weakref.WeakSet[FileStorage] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for storage in list(_after_fork_in_child):
        storage._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _holds_events(folder: Path) -> bool:
    try:
        if first_seq(folder / LOG_NAME) is not None:
            return True
    except CorruptLogError:
        return True  # damaged, but there was something: deleting it deletes a session
    # No event in the log (a create that never wrote, or a lost log): a session only if its
    # history is still there.
    return holds_history(folder) and not isinstance(intent.read(folder), intent.Delete)


def _outlast_tick(mtime_ns: int) -> None:
    """Wait until file times move past ``mtime_ns`` (the deleted log's last write).

    Caches recognise an unchanged log by (device, inode, size, mtime). File times advance by
    the kernel's clock tick (a few milliseconds), and a new log may reuse the deleted one's
    inode: re-created and written to the same size within that tick, it would look unchanged
    to another process's cache. Returning only once the clock is past the tick makes every
    later write carry a later time. Deletes are rare; the wait is at most a few milliseconds.
    """
    while time.time_ns() <= mtime_ns + _TICK_NS:
        time.sleep(0.001)


def _identity(path: Path) -> tuple[int, int, int] | None:
    st = stat_existing(path)
    if st is None:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
