"""The files backend: one append-only JSONL log per session under a root folder.

Invariant that makes cheap change detection sound: a log file is only ever appended to. The
only bytes ever cut are an unterminated tail after the last newline (a torn write), which no
reader has read as an event, and what an operator's ``repair`` moves into quarantine (readers
then see another size and time, and re-check their position against the chain). So "same
inode, same size" means "same events", and a reader that stopped at byte N of an inode can
resume there. Transactions and open descriptors live in ``filetx``.

Everything below the root is reached through held folder descriptors without following a
symlink (see ``fsio``): the storage holds ``sessions/`` and ``locks/`` open once they exist,
a session's handle holds its folder beside its log and lock, and lock-free reads open the
session folder afresh the same way. The root itself may be a symlink (the user's choice).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from journal.backends.files import intent
from journal.backends.files.archive import SEGMENT_ERRORS, list_segments, read_segment_lines
from journal.backends.files.check import check_files
from journal.backends.files.fsio import Folder
from journal.backends.files.history import (
    ARCHIVE_DIR,
    BASE_NAME,
    check_missing_log,
    first_seq,
    holds_history,
    load_base,
    load_snapshot,
    read_history,
)
from journal.backends.files.layout import LOCKS_DIR, LOG_NAME, SESSIONS_DIR, Layout, dirname_for, lock_name
from journal.backends.files.locking import SessionLock
from journal.backends.files.logfile import LineScan
from journal.backends.files.repair import repair_files
from journal.backends.files.transaction import (
    FileTransaction,
    Handle,
    log_records,
    read_log,
    scan_after,
    stamp_of,
)
from journal.core.chain import History, check_line, classify_tail
from journal.core.events import Created
from journal.core.head import Head, Record
from journal.core.reports import Anchor, RepairReport, SessionCheck
from journal.core.state import Session
from journal.engine.cache import sweep
from journal.engine.storage import Batch, ChangeFeed, Stamp, Target
from journal.errors import CorruptLogError, StaleHeadError, StorageError

__all__ = ["FileStorage"]

log = logging.getLogger("journal")

FSYNC_POLICIES = ("always", "interval", "never")
_REDACTED = b'"type":"message_redacted"'
_sync = getattr(os, "fdatasync", os.fsync)
# What a symlink (or a file) where a folder or file should be raises: never followed.
_IN_THE_WAY = (errno.ELOOP, errno.ENOTDIR)
# A deleted session folder is renamed to this prefix (then its creation time) and kept, empty,
# this long: see remove_folder.
_TOMB = ".deleted-"
_TOMB_NS = 3600 * 10**9


class FileStorage:
    """Logs in files; see the module docstring for the invariant it relies on.

    Args:
        root: the folder (created 0700 on first write; may itself be a symlink).
        fsync: "always", "interval" or "never" (see ``Journal``).
        lock_timeout: seconds to wait for another process's writer lock (negative: forever).
        max_open_sessions: sessions whose descriptors stay open between writes.
    """

    kind = "files"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: str = "always",
        lock_timeout: float = 60.0,
        max_open_sessions: int = 64,
    ) -> None:
        self.layout = Layout(root)
        self.root = str(os.fspath(root))
        self.fsync = fsync
        self.lock_timeout = lock_timeout
        self.max_open_sessions = max_open_sessions
        self._handles: OrderedDict[str, Handle] = OrderedDict()
        self._guard = threading.Lock()
        self._dirty: set[str] = set()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        # The root, sessions/ and locks/, opened when first found (the root may not exist
        # until the first write) and then held: none of them is ever removed or renamed.
        self._tops: dict[str, Folder] = {}
        self._tops_guard = threading.Lock()
        _after_fork_in_child.add(self)

    # -- the folders at the top ------------------------------------------------------------

    def _top(self, name: str, create: bool) -> Folder | None:
        with self._tops_guard:
            found = self._tops.get(name)
            if found is not None:
                return found
            root = self._tops.get("")
            if root is None:
                root = Folder.root(self.layout.root, create=create)
                if root is None:
                    return None
                self._tops[""] = root
            found = root.open_folder(name, create=create)
            if found is not None:
                self._tops[name] = found
            return found

    def sessions_folder(self, create: bool) -> Folder | None:
        """The held ``sessions/`` folder (None: it does not exist and ``create`` is False)."""
        return self._top(SESSIONS_DIR, create)

    def _find(self, name: str) -> Folder | None:
        """Session folder ``name``, opened afresh for a lock-free read (the caller closes it);
        None if there is none."""
        sessions = self.sessions_folder(create=False)
        return None if sessions is None else sessions.open_folder(name)

    def _open_lock(self, name: str) -> int:
        locks = self._top(LOCKS_DIR, create=True)
        assert locks is not None
        return locks.open(name, os.O_RDWR | os.O_CREAT)

    # -- reading without the lock -----------------------------------------------------------

    def location(self, session_id: str) -> str:
        return str(self.layout.log_path(session_id))

    def stamp(self, session_id: str) -> Stamp | None:
        name = dirname_for(session_id)
        sessions = self.sessions_folder(create=False)
        # One stat through the session folder's name (a symlink there would be followed):
        # the stamp is only compared with a view that was read through safe opens, never
        # used to decide what to read or write.
        st = None if sessions is None else sessions.stat_through(name, LOG_NAME)
        folder_st = None if st is None or sessions is None else sessions.stat_through(name)
        if st is None or folder_st is None:
            folder = self._find(name)
            if folder is not None:
                with folder:
                    check_missing_log(folder)  # absent, unless the folder holds its history
            return None
        return stamp_of(st, folder_st.st_ino)

    def reader(self, session_id: str) -> FileReader:
        return FileReader(self, session_id)

    def _settle(self, folder: Folder, session_id: str) -> None:
        """Before a cold read (a snapshot, a whole history): wait for, or finish, a change
        another writer decided (see ``intent``), so no reader sees it half done. One lstat
        when none is pending; cached reads that only read on never get here."""
        if folder.exists(intent.INTENT_NAME):
            with self.writer(session_id) as tx:
                tx.settle()

    def history_stamp(self, session_id: str) -> Stamp:
        """The (inode, size, mtime) of the active log, the archive folder and the retention
        base: pruning replaces the log, and pruning and retention change the archive."""
        folder = self._find(dirname_for(session_id))
        if folder is None:
            return ()
        with folder:
            archive = folder.child(ARCHIVE_DIR)
            return (
                *_identity(folder, LOG_NAME),
                *_identity(folder, ARCHIVE_DIR),
                *(_identity(archive, BASE_NAME) if archive is not None else _MISSING),
            )

    def session_ids(self) -> Iterator[str]:
        for _, session_id, readable in self._folders(log_damage=True):
            if session_id is not None and readable:
                yield session_id

    def _folders(self, *, log_damage: bool) -> Iterator[tuple[Path, str | None, bool]]:
        """Every folder holding a session: its id if it can be read, and whether it reads.

        A folder whose active log holds no complete line is a create that has not finished,
        unless an archive holds earlier events: then it is a damaged session. An entry that
        is not a folder (a symlink, say) holds no session: it is skipped (and logged), never
        followed.
        """
        sessions = self.sessions_folder(create=False)
        if sessions is None:
            return
        for name in sorted(sessions.names()):
            if "~" not in name or name.startswith("."):
                continue
            where = sessions.path / name
            try:
                folder = sessions.open_folder(name)
            except StorageError as exc:
                if log_damage:
                    log.error("%s: skipped in listings: %s", where, exc.cause)
                continue
            if folder is None:
                continue  # deleted meanwhile
            with folder:
                try:
                    found = self._listed(folder, log_damage=log_damage)
                except StorageError as exc:
                    if exc.errno_code not in _IN_THE_WAY:
                        raise
                    # A symlink or a file where one of its files or folders should be: like
                    # damage, it must not hide every other session (reads of it still raise).
                    if log_damage:
                        log.error("%s: session skipped in listings: %s", where, exc)
                    found = None, False
            if found is not None:
                yield where, *found

    def _listed(self, folder: Folder, *, log_damage: bool) -> tuple[str | None, bool] | None:
        """What ``_folders`` says of one session folder; None: it holds no session."""
        path = folder.path / LOG_NAME
        fd = folder.open_existing(LOG_NAME)
        first = None
        if fd is not None:
            try:
                first = next(iter(LineScan(fd)), None)
            finally:
                os.close(fd)
        if fd is None:
            try:
                check_missing_log(folder)
                return None  # deleted (or a delete in progress), or a create that never wrote
            except CorruptLogError as exc:
                if log_damage:
                    log.error("%s: session skipped in listings: %s", folder.path, exc)
                return None, False
        if first is None and not folder.exists(ARCHIVE_DIR):
            return None  # a create that has not written its first event yet
        try:
            session_id = _session_id(folder, b"" if first is None else first[2])
        except CorruptLogError as exc:
            # One damaged session must not hide every other one from listings (and from
            # compact(None)); reads of it still raise with the location.
            if log_damage:
                log.error("%s: session skipped in listings: %s", folder.path, exc)
            return None, False
        if dirname_for(session_id) != folder.name:
            if log_damage:
                log.warning("%s: holds session %r, which belongs elsewhere; skipped", path, session_id)
            return None, False
        if first is None and fd is not None and log_damage:
            log.error("%s: session skipped in listings: its active log holds no event", folder.path)
        return session_id, first is not None

    # -- integrity -------------------------------------------------------------------------

    def targets(self, session_id: str | None) -> list[Target]:
        """What ``verify`` checks: one session, or every session folder (damaged ones too,
        labelled by their folder's name when their id cannot be read)."""
        if session_id is not None:
            folder = self._find(dirname_for(session_id))
            if folder is None:
                return []
            folder.close()
            return [Target(session_id, session_id)]
        return [Target(sid or folder.name, sid) for folder, sid, _ in self._folders(log_damage=False)]

    def verify(self, target: Target, anchor: Anchor | None) -> SessionCheck:
        """Check one target's files under its writer lock (see ``check``)."""
        label = target.label
        with self._writer_for(target) as tx:
            fd = tx._fd(create=False)
            folder = tx.folder()
            if folder is None:
                return SessionCheck(label, (), 0, None)  # deleted since it was listed
            checked = check_files(folder, label, fd, tx.size, anchor, lambda after: tx.read(after).checked())
        check = checked.check
        head = None
        if not check.problems and check.seq > 0:
            head = Anchor(session_id=label, seq=check.seq, hash=check.hash)
        return SessionCheck(label, tuple(check.problems), check.events, head)

    def repair(self, session_id: str, *, dry_run: bool) -> RepairReport | None:
        """Quarantine what follows the intact prefix (see ``repair``); None if no such session."""
        found = self._find(dirname_for(session_id))
        if found is None:
            return None  # checked first too: no lock file for a session that never was
        found.close()
        with self.writer(session_id) as tx:
            # A dry run must not change a byte: no stale temporary file is swept, and the
            # torn tail every writer cuts is only peeked at.
            tx.tidy = not dry_run
            fd = tx._fd(create=False)
            folder = tx.folder()
            if folder is None:
                return None
            read = tx.peek if dry_run else lambda after: tx.read(after).checked()
            checked = check_files(folder, session_id, fd, tx.size, None, read)
            try:
                return repair_files(folder, fd, tx.size, checked, session_id, dry_run=dry_run)
            except OSError as exc:
                raise StorageError.wrap("repair", str(folder.path), exc) from None
            finally:
                if not dry_run:
                    tx.forget()

    def _writer_for(self, target: Target) -> FileTransaction:
        if target.session_id is not None:
            return self.writer(target.session_id)
        # A folder whose id cannot be read: its lock file is named by the hash in its name.
        name = target.label
        lock_file = f"{name.rsplit('~', 1)[1]}.lock"
        lock = SessionLock(
            self.layout.locks / lock_file, self.lock_timeout, functools.partial(self._open_lock, lock_file)
        )
        handle = Handle(name, lock, name, self.layout.sessions / name / LOG_NAME)
        return FileTransaction(self, handle, loose=True)

    # -- writing under the lock -------------------------------------------------------------

    def writer(self, session_id: str) -> FileTransaction:
        handle = self._handles.get(session_id)
        if handle is None:
            handle = self.handle(session_id)
        handle.used = True
        return FileTransaction(self, handle)

    def delete(self, session_id: str) -> bool:
        with self.writer(session_id) as tx:
            tx.forget()
            folder = tx.folder()
            if folder is None:
                return False
            try:
                # A folder whose log holds no complete event (a create that crashed) is removed
                # all the same, but the session did not exist.
                existed = _holds_events(folder)
                # The intent says what the missing log means from here on: deleted, not lost.
                # The unlink is the commit point; writers holding the log open see it
                # unlinked (st_nlink 0) and never append to a file that is gone.
                intent.write(folder, intent.Delete())
                folder.unlink(LOG_NAME, missing_ok=True)
                folder.fsync()
                self.remove_folder(folder)
            except OSError as exc:
                raise StorageError.wrap("delete", str(folder.path), exc) from None
            finally:
                tx.forget()  # the folder is gone
        return existed

    def remove_folder(self, folder: Folder) -> None:
        """Finish a delete past its commit point: the folder goes, all at once, then its files.

        Renamed first, so the rest vanishes in one step (a crash leaves a hidden folder that
        no listing shows and the next delete clears); the parent is fsynced so the rename
        survives power loss. The files go at once; the emptied folder stays an hour, so that
        no new session folder gets its inode while a cache may still hold a stamp naming it
        (see ``filetx.stamp_of``). Removing never follows a symlink.
        """
        sessions = self.sessions_folder(create=False)
        if sessions is None:
            return
        sessions.rename(folder.name, sessions, f"{_TOMB}{time.time_ns()}-{uuid.uuid4().hex}")
        sessions.fsync()
        for leftover in sessions.names():
            if not leftover.startswith(_TOMB):
                continue
            # Another process's delete may be clearing the same leftover: best effort.
            with contextlib.suppress(OSError):
                born = leftover[len(_TOMB) :].split("-", 1)[0]
                if born.isdigit() and time.time_ns() - int(born) < _TOMB_NS:
                    sessions.empty(leftover)
                else:
                    sessions.remove_tree(leftover)

    def handle(self, session_id: str) -> Handle:
        """The session's handle, made if missing (a transaction checks it is not ``closed``
        once it holds its mutex). At most ``max_open_sessions`` are kept: the others are
        closed, second-chance (clock) LRU, only when no transaction holds them."""
        with self._guard:
            handle = self._handles.get(session_id)
            if handle is not None:
                return handle
            lock = SessionLock(
                self.layout.lock_path(session_id),
                self.lock_timeout,
                functools.partial(self._open_lock, lock_name(session_id)),
            )
            path = self.layout.log_path(session_id)
            handle = self._handles[session_id] = Handle(session_id, lock, dirname_for(session_id), path)
            sweep(self._handles, self.max_open_sessions, session_id, _close_unused)
            return handle

    # -- durability ------------------------------------------------------------------------

    def mark_dirty(self, name: str) -> None:
        """Session folder ``name``'s log was appended to without an fsync (``interval``)."""
        with self._guard:
            self._dirty.add(name)
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
        for name in dirty:
            where = self.layout.sessions / name / LOG_NAME
            try:
                folder = self._find(name)
                if folder is None:
                    continue
                with folder:
                    fd = folder.open_existing(LOG_NAME)
            except OSError as exc:
                log.error("%s: background fsync failed: %s; recent appends may not be durable", where, exc)
                continue
            if fd is None:
                continue
            try:
                _sync(fd)
            except OSError as exc:
                log.error("%s: background fsync failed: %s; recent appends may not be durable", where, exc)
            finally:
                os.close(fd)

    def changes(self) -> ChangeFeed:
        """A feed of appends: the files backend has no notifications, so it looks at every
        session's stamp (one ``stat`` each) every ``poll`` seconds while waited on."""
        return PollingFeed(self)

    def reopen(self) -> FileStorage:
        return FileStorage(self.layout.root, fsync=self.fsync, lock_timeout=self.lock_timeout)

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
        with self._tops_guard:
            tops, self._tops = list(self._tops.values()), {}
        for top in tops:
            top.close()

    def _forget_after_fork(self) -> None:
        # Descriptors inherited across fork share lock state with the parent: never reuse them.
        # Closing the child's copies is safe: an flock lasts while any descriptor of it is open,
        # and the parent keeps its own.
        for handle in self._handles.values():
            with contextlib.suppress(OSError):
                handle.close()
        for top in self._tops.values():
            with contextlib.suppress(OSError):
                top.close()
        self._guard = threading.Lock()
        self._handles = OrderedDict()
        self._dirty = set()
        self._flusher = None
        self._stop = threading.Event()
        self._tops = {}
        self._tops_guard = threading.Lock()


def _closing(folder: Folder, records: Iterator[Record]) -> Iterator[Record]:
    """``records``, then ``folder`` closed (they are read from it lazily). Dropped unread, the
    folder is closed when it is garbage collected."""
    with folder:
        yield from records


def _session_id(folder: Folder, first_line: bytes) -> str:
    """The id a session folder holds: from ``created``, or from what pruning left in its place."""
    path = folder.path / LOG_NAME
    if first_line.startswith(b'{"v":1,"seq":1,'):
        event = check_line(first_line, None, path=str(path), line=1, offset=0).event
        if isinstance(event, Created):
            return event.session_id
    base = load_base(folder)
    if base is not None:
        return base[0].id
    where, line = str(path), first_line
    segments = list_segments(folder.child(ARCHIVE_DIR))
    if segments:
        where = str(segments[0].path)
        try:
            first = next(iter(read_segment_lines(segments[0])), None)
        except SEGMENT_ERRORS as exc:
            raise CorruptLogError(where, 1, 0, f"archive segment unreadable: {exc}") from None
        line = b"" if first is None else first[2]
    event = check_line(line, None, path=where, line=1, offset=0).event
    if not isinstance(event, Created):
        raise CorruptLogError(where, 1, 0, "first event is not 'created'")
    return event.session_id


_after_fork_in_child: weakref.WeakSet[FileStorage] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for storage in list(_after_fork_in_child):
        storage._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class FileReader:
    """Lock-free reads of one session (``Storage.reader``): the session folder and log are
    opened afresh for each, without following a symlink."""

    def __init__(self, storage: FileStorage, session_id: str) -> None:
        self.storage = storage
        self.session_id = session_id
        self.name = dirname_for(session_id)
        self.path = self.where = str(storage.layout.log_path(session_id))
        # The head of the snapshot ``snapshot`` gave and the log's (inode, size, mtime) then:
        # reading on after it from the same, unchanged log needs no second look at its hash.
        self.vouched: tuple[Head, tuple[int, int, int]] | None = None

    def read(self, after: Head | None) -> Batch:
        folder = self.storage._find(self.name)
        if folder is None:
            return self._absent(after)
        with folder:
            fd = folder.open_existing(LOG_NAME)
            if fd is None:
                return self._absent(after)
            try:
                st = os.fstat(fd)
                size = st.st_size
                checked = self.vouched == (after, (st.st_ino, size, st.st_mtime_ns))
                records, scan, damage = read_log(fd, after, self.path, checked=checked)
                if damage is not None:
                    return Batch(records, None, damage)
                if scan.torn:
                    self._judge_tail(fd, scan, records[-1].head if records else after)
                    return Batch(records, None)
                # Read exactly to the end of the file as it was stat-ed: that stamp is this state.
                st = os.fstat(fd)
                stamp = stamp_of(st, folder.ino) if st.st_size == size == scan.end else None
                return Batch(records, stamp)
            finally:
                os.close(fd)

    def _judge_tail(self, fd: int, scan: LineScan, head: Head | None) -> None:
        # A torn or unterminated last line may be a write in progress: readers stop before
        # it, and check again next time. Only a damaged newline is reported.
        line = (0 if head is None else head.active) + 1
        tail = os.pread(fd, scan.torn, scan.end)
        classify_tail(tail, head, path=self.path, line=line, offset=scan.end)

    def _follow(self, folder: Folder, after: Head | None) -> Iterator[Record]:
        """The active log's records after ``after``, read lazily from the log open when the
        first is asked for: a stream goes on into lines appended meanwhile, and reports a
        damaged line only after every record before it was taken (and folded)."""
        fd = folder.open_existing(LOG_NAME)
        if fd is None:
            if after is not None:
                raise StaleHeadError()
            return
        try:
            scan = scan_after(fd, after)
            head = after
            for record in log_records(scan, after, self.path):
                head = record.head
                yield record
            if scan.torn:
                self._judge_tail(fd, scan, head)
        finally:
            os.close(fd)

    def _absent(self, after: Head | None) -> Batch:
        if after is not None:
            # The log ``after`` points into is gone (deleted): "nothing new" would be a stale
            # answer from a cache.
            raise StaleHeadError()
        return Batch([], None)

    def snapshot(self) -> tuple[Session, Head] | None:
        """The newest snapshot that agrees with the current active log (None: none usable)."""
        folder = self.storage._find(self.name)
        if folder is None:
            return None
        with folder:
            self.storage._settle(folder, self.session_id)
            fd = folder.open_existing(LOG_NAME)
            if fd is None:
                return None
            try:
                st = os.fstat(fd)
                found = load_snapshot(folder, fd, st.st_size)
            finally:
                os.close(fd)
        if found is not None:
            self.vouched = (found[1], (st.st_ino, st.st_size, st.st_mtime_ns))
        return found

    def history(self, resume: Head | None = None) -> History:
        """The base state (if a retention policy dropped early events) and every record after it."""
        folder = self.storage._find(self.name)
        if folder is None:
            return None, None, iter(())
        try:
            self.storage._settle(folder, self.session_id)
            state, head, records = read_history(folder, lambda after: self._follow(folder, after), resume)
        except BaseException:
            folder.close()
            raise
        return state, head, _closing(folder, records)


class PollingFeed:
    """``Storage.changes`` for files: every ``poll`` seconds, the sessions whose stamp moved."""

    poll = 0.2

    def __init__(self, storage: FileStorage) -> None:
        self.storage = storage
        self.seen = self._stamps()

    def _stamps(self) -> dict[str, Stamp | None]:
        stamps: dict[str, Stamp | None] = {}
        for sid in self.storage.session_ids():
            try:
                stamps[sid] = self.storage.stamp(sid)
            except CorruptLogError:
                stamps[sid] = None
        return stamps

    def wait(self, timeout: float) -> set[str] | None:
        deadline = time.monotonic() + timeout
        while True:
            now = self._stamps()
            changed = {sid for sid, stamp in now.items() if self.seen.get(sid) != stamp}
            changed |= set(self.seen) - set(now)
            self.seen = now
            if changed or time.monotonic() >= deadline:
                return changed
            time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self.seen = {}


def _holds_events(folder: Folder) -> bool:
    try:
        if first_seq(folder) is not None:
            return True
    except CorruptLogError:
        return True  # damaged, but there was something: deleting it deletes a session
    # No event in the log (a create that never wrote, or a lost log): a session only if its
    # history is still there.
    return holds_history(folder) and not isinstance(intent.read(folder), intent.Delete)


_MISSING = (-1, -1, -1)


def _identity(folder: Folder, name: str) -> tuple[int, int, int]:
    try:
        st = folder.lstat(name)
    except FileNotFoundError:
        return _MISSING
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _close_unused(handle: Handle) -> bool:
    """Close ``handle`` unless a transaction holds it (it is then ``closed``: see ``Handle``)."""
    if not handle.mutex.acquire(blocking=False):
        return False
    try:
        handle.close()
        return True
    finally:
        handle.mutex.release()
