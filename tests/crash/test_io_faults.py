"""Appends that the operating system refuses part-way, on real files.

The promise under test: when a write fails part-way (ENOSPC, EFBIG, EIO) the append raises a
:class:`StorageError` (a :class:`JournalError`), no partial line stays visible to readers, the
cached state does not advance, and the same Journal keeps working once the cause is gone. If
fsync fails the append fails too, its bytes are removed, and it is never reported as done. A
root that cannot be written gives a StorageError naming a path at the first write.

Real faults where the kernel can make them: a full tmpfs (ENOSPC), ``RLIMIT_FSIZE`` in a child
process (EFBIG; CPython ignores SIGXFSZ, so ``write`` fails instead of killing the process), a
read-only remount (EROFS), an unprivileged user (EACCES). EIO cannot be had on demand, so it is
injected at the two calls that write and sync a log: ``os.write`` as
``journal.backends.files.logfile`` sees it and ``journal.backends.files.transaction._sync``.
"""

from __future__ import annotations

import errno
import importlib
import multiprocessing
import os
import pkgutil
import resource
import shutil
import stat
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NoReturn

import pytest

import journal.backends.files
import journal.backends.files.logfile
import journal.backends.files.transaction
import journal.core
import journal.engine
from journal import Journal, JournalError, MessageAdded, StorageError

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0  # only turns a hang into a failure, never a speed assertion
SID = "s"
BIG = "x" * 4096  # a ~4 KB message body: a few dozen fill a small file system
NOBODY = 65534


# -- helpers ---------------------------------------------------------------------------------


def _unavailable(reason: str) -> NoReturn:
    """Skip: the machine cannot stage this fault. On CI (``CI`` set) that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run this test, not skip it)")
    pytest.skip(reason)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        _unavailable(f"no {name} command")
    return path


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool(argv[0]), *argv[1:]], capture_output=True, text=True, check=False)


def _log_path(root: Path) -> Path:
    (path,) = root.glob("sessions/*/events.jsonl")
    return path


def _contents(j: Journal) -> list[str]:
    return [m.content for m in j.get(SID).messages]


def _fresh_view(root: Path) -> tuple[list[int], list[str]]:
    """Seqs of every event and contents of every message, read by a Journal with no cache."""
    with Journal(root) as fresh:
        events = list(fresh.events(SID))
        return [e.seq for e in events], [e.content for e in events if isinstance(e, MessageAdded)]


def _outcome(call: Callable[[], object]) -> tuple[str, bool, int | None, str | None]:
    """``(type name, is a JournalError, errno, path)`` of what ``call`` raised; ``("", ...)`` if none."""
    try:
        call()
    except BaseException as exc:
        return (
            type(exc).__name__,
            isinstance(exc, JournalError),
            getattr(exc, "errno", None),
            getattr(exc, "path", None) or getattr(exc, "filename", None),
        )
    return ("", False, None, None)


def _join(process: BaseProcess) -> None:
    process.join(JOIN_TIMEOUT)
    assert process.exitcode == 0, f"child exited with {process.exitcode}"


def _child_result(conn: Connection, process: BaseProcess) -> Any:
    assert conn.poll(JOIN_TIMEOUT), "the child sent nothing"
    result = conn.recv()
    _join(process)
    if isinstance(result, str):
        pytest.fail(f"the child failed:\n{result}")
    return result


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A freshly mounted 512 KiB tmpfs, unmounted at teardown (root only)."""
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = _run("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(mnt))
    if done.returncode != 0:
        _unavailable(f"mount -t tmpfs failed: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if _run("umount", str(mnt)).returncode != 0:
            _run("umount", "-l", str(mnt))


def _remount(mnt: Path, mode: str) -> None:
    done = _run("mount", "-o", f"remount,{mode}", str(mnt))
    assert done.returncode == 0, f"remount,{mode} failed: {done.stderr.strip()}"


# -- 1. a full file system (ENOSPC) ----------------------------------------------------------


def test_enospc_fails_cleanly_and_the_same_journal_recovers_when_space_returns(small_tmpfs: Path) -> None:
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (128 << 10))  # freed later to give space back
    root = small_tmpfs / "journal"
    acked: list[str] = []
    with Journal(root, fsync="always") as j:
        j.create(SID)
        log = _log_path(root)
        failure: StorageError | None = None
        for i in range(1000):  # 512 KiB hold ~120 such lines: the loop ends by failing
            before = log.read_bytes()
            content = f"{i}:{BIG}"
            try:
                message = j.add_message(SID, "user", content)
            except StorageError as exc:
                failure = exc
                break
            assert message.seq == i + 2
            acked.append(content)
        assert failure is not None, "the tmpfs never filled up"
        assert len(acked) > 10, "the disk was full before the test began"

        assert isinstance(failure, JournalError)
        assert failure.errno_code == errno.ENOSPC
        assert failure.errno == errno.ENOSPC
        assert failure.path == str(log)
        # No partial line: the log is byte for byte what it was before the failed append.
        after = log.read_bytes()
        assert after == before
        assert after.endswith(b"\n")
        # The failing Journal did not advance, and a fresh reader sees exactly what was acked.
        assert j.get(SID).version == 1 + len(acked)
        assert _contents(j) == acked
        seqs, contents = _fresh_view(root)
        assert seqs == list(range(1, len(acked) + 2))
        assert contents == acked

        # Space returns: the same Journal appends the next seq, and the log checks out.
        filler.unlink()
        message = j.add_message(SID, "user", "after the disk was full")
        assert message.seq == len(acked) + 2
        report = j.verify()
        assert report.ok, report.problems
        assert report.problems == ()
    seqs, contents = _fresh_view(root)
    assert seqs == list(range(1, len(acked) + 3))
    assert contents == [*acked, "after the disk was full"]


# -- 1b. a read-only remount (EROFS) ---------------------------------------------------------


def test_read_only_root_reads_work_and_the_first_write_raises_storage_error(small_tmpfs: Path) -> None:
    root = small_tmpfs / "journal"
    with Journal(root) as j:
        j.create(SID)
        j.add_message(SID, "user", "hello")
        j.add_message(SID, "assistant", "hi")
    _remount(small_tmpfs, "ro")
    try:
        with Journal(root) as j:
            assert j.get(SID).version == 3
            assert _contents(j) == ["hello", "hi"]
            assert j.exists(SID)
            assert list(j.sessions()) == [SID]
            assert [e.seq for e in j.events(SID)] == [1, 2, 3]
            assert j.replay(SID, at=2).version == 2

            name, is_journal_error, code, path = _outcome(lambda: j.add_message(SID, "user", "refused"))
            assert (name, is_journal_error, code) == ("StorageError", True, errno.EROFS)
            assert path is not None
            assert Path(path).is_relative_to(root)

            # Every other write refuses the same way: a StorageError, never a bare OSError.
            writes: dict[str, Callable[[], object]] = {
                "create": lambda: j.create("new"),
                "update_settings": lambda: j.update_settings(SID, {"k": 1}),
                "clear": lambda: j.clear(SID),
                "delete": lambda: j.delete(SID),
                "compact": lambda: j.compact(SID),
                "verify": lambda: j.verify(),
            }
            for what, call in writes.items():
                name, is_journal_error, code, path = _outcome(call)
                assert (name, is_journal_error, code) == ("StorageError", True, errno.EROFS), what
                assert path is not None
                assert Path(path).is_relative_to(root), what
            # Nothing changed, and the refused writes left no cached trace.
            assert j.get(SID).version == 3

            _remount(small_tmpfs, "rw")
            message = j.add_message(SID, "user", "writable again")
            assert message.seq == 4
    finally:
        _run("mount", "-o", "remount,rw", str(small_tmpfs))
    seqs, contents = _fresh_view(root)
    assert seqs == [1, 2, 3, 4]
    assert contents == ["hello", "hi", "writable again"]


# -- 2. a file size limit (EFBIG) ------------------------------------------------------------


def _efbig_child(root: str, conn: Connection) -> None:
    """Append under RLIMIT_FSIZE until EFBIG, then lift the limit and append again."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        acked: list[str] = []
        with Journal(root, fsync="always") as j:
            j.get(SID)
            log = _log_path(Path(root))
            resource.setrlimit(resource.RLIMIT_FSIZE, (log.stat().st_size + 20_000, hard))
            failure: BaseException | None = None
            before = b""
            for i in range(100):
                before = log.read_bytes()
                content = f"{i}:{BIG}"
                try:
                    j.add_message(SID, "user", content)
                except BaseException as exc:
                    failure = exc
                    break
                acked.append(content)
            after = log.read_bytes()
            version = j.get(SID).version
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            seq = j.add_message(SID, "user", "limit lifted").seq
            report = j.verify()
        conn.send(
            {
                "acked": acked,
                "failure": None if failure is None else type(failure).__name__,
                "journal_error": isinstance(failure, JournalError),
                "errno": getattr(failure, "errno", None),
                "errno_code": getattr(failure, "errno_code", None),
                "unchanged": after == before,
                "newline": after.endswith(b"\n"),
                "version": version,
                "seq": seq,
                "problems": [str(p) for p in report.problems],
            }
        )
    except BaseException:
        conn.send(traceback.format_exc())


def test_efbig_from_rlimit_fsize_fails_cleanly_and_recovers(root: Path, spawned: list[BaseProcess]) -> None:
    with Journal(root) as j:
        j.create(SID)
        j.add_message(SID, "user", "before the limit")
    parent, child = CTX.Pipe()
    process = CTX.Process(target=_efbig_child, args=(str(root), child))
    process.start()
    spawned.append(process)
    result = _child_result(parent, process)

    acked = result["acked"]
    assert 1 <= len(acked) < 100, "the limit was never reached, or reached before any append"
    assert result["failure"] == "StorageError"
    assert result["journal_error"]
    assert result["errno"] == errno.EFBIG
    assert result["errno_code"] == errno.EFBIG
    assert result["unchanged"], "the failed append left bytes in the log"
    assert result["newline"]
    assert result["version"] == 2 + len(acked), "the failed append advanced the state"
    assert result["seq"] == 3 + len(acked), "seq did not continue after the limit was lifted"
    assert result["problems"] == []
    seqs, contents = _fresh_view(root)
    assert seqs == list(range(1, len(acked) + 4))
    assert contents == ["before the limit", *acked, "limit lifted"]


# -- 3. injected EIO in write and fsync ------------------------------------------------------


class _OsWithWrite:
    """The ``os`` module as ``journal.backends.files.logfile`` sees it, with ``write`` replaced."""

    def __init__(self, write: Callable[[int, Any], int]) -> None:
        self.write = write

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _eio() -> OSError:
    return OSError(errno.EIO, os.strerror(errno.EIO))


class _WriteFault:
    """``os.write`` that fails once with EIO after part of the data reached the file.

    ``partial``: one call writes half the data, then raises. ``short``: the first call writes
    half and returns the short count; the next call (write_all's retry) raises.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls = 0
        self.fired = False

    def __call__(self, fd: int, data: Any) -> int:
        if self.fired:
            return os.write(fd, data)
        self.calls += 1
        view = memoryview(data)
        if self.mode == "partial":
            os.write(fd, view[: max(1, len(view) // 2)])
            self.fired = True
            raise _eio()
        if self.calls == 1:
            return os.write(fd, view[: max(1, len(view) // 2)])
        self.fired = True
        raise _eio()


class _SyncFault:
    """``fdatasync`` that fails once with EIO (the data may or may not be on disk)."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.real = real
        self.calls = 0
        self.fired = False

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if not self.fired:
            self.fired = True
            raise _eio()
        self.real(fd)


def _reader_child(root: str, conn: Connection) -> None:
    """Report what a Journal in another process reads: seqs, contents, the log's bytes."""
    try:
        seqs, contents = _fresh_view(Path(root))
        conn.send((seqs, contents, _log_path(Path(root)).read_bytes()))
    except BaseException:
        conn.send(traceback.format_exc())


@pytest.mark.parametrize("fault", ["write-partial", "write-short", "fsync"])
def test_eio_fails_the_append_removes_its_bytes_and_the_next_append_continues(
    root: Path, fault: str, monkeypatch: pytest.MonkeyPatch, spawned: list[BaseProcess]
) -> None:
    with Journal(root, fsync="always") as j:
        j.create(SID)
        j.add_message(SID, "user", "one")
        j.add_message(SID, "user", "two")
        log = _log_path(root)
        before = log.read_bytes()
        head = j.head(SID)

        write_fault = _WriteFault(fault.removeprefix("write-"))
        sync_fault = _SyncFault(journal.backends.files.transaction._sync)
        if fault == "fsync":
            monkeypatch.setattr(journal.backends.files.transaction, "_sync", sync_fault)
        else:
            monkeypatch.setattr(journal.backends.files.logfile, "os", _OsWithWrite(write_fault))

        with pytest.raises(StorageError) as caught:
            j.add_message(SID, "user", "FAILED-APPEND " + BIG)
        exc = caught.value
        assert isinstance(exc, JournalError)
        assert exc.errno_code == errno.EIO
        assert exc.path == str(log)
        if fault == "fsync":
            # fsync was tried once and its failure reported: no retry that could claim success.
            assert sync_fault.calls == 1
        else:
            assert write_fault.fired
            assert write_fault.calls == (1 if fault == "write-partial" else 2)

        # The failed append's bytes are gone (for fsync: written whole, then truncated away).
        assert log.read_bytes() == before
        # Neither the cache nor a read advanced; the fault is one-shot, so reads are real.
        view = j._sessions.view(SID)
        assert view is None or view.head.seq == 3, "the cached view advanced"
        assert j.get(SID).version == 3
        assert _contents(j) == ["one", "two"]
        assert j.head(SID) == head
        # A Journal in another process sees the same.
        parent, child = CTX.Pipe()
        process = CTX.Process(target=_reader_child, args=(str(root), child))
        process.start()
        spawned.append(process)
        seqs, contents, data = _child_result(parent, process)
        assert (seqs, contents, data) == ([1, 2, 3], ["one", "two"], before)

        # The fault is over: the next append gets the next seq, and everything checks out.
        monkeypatch.undo()
        message = j.add_message(SID, "user", "three")
        assert message.seq == 4
        report = j.verify()
        assert report.ok, report.problems
    seqs, contents = _fresh_view(root)
    assert seqs == [1, 2, 3, 4]
    assert contents == ["one", "two", "three"]
    assert b"FAILED-APPEND" not in log.read_bytes()


# -- 4. a root this user may not write (EACCES) ----------------------------------------------


def _unprivileged_child(root: str, conn: Connection) -> None:
    """As uid/gid 65534: what reads return and what writes raise."""
    try:
        # The package loads a backend's modules when a root first names it; after dropping
        # privileges the checkout (a private temporary folder, say) may be unreadable, which
        # is not what this test is about: load them first, as a daemon does before it drops.
        for package in (journal.core, journal.engine, journal.backends.files):
            for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
                importlib.import_module(module.name)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        conn.send(_probe_access(root))
    except BaseException:
        conn.send(traceback.format_exc())


def _probe_access(root: str) -> dict[str, Any]:
    """What reads return and what the first writes raise, for a root this user cannot write."""
    result: dict[str, Any] = {}
    with Journal(root) as j:
        result["get"] = _outcome(lambda: j.get(SID))
        if result["get"][0] == "":
            result["contents"] = _contents(j)
            result["sessions"] = list(j.sessions())
            result["seqs"] = [e.seq for e in j.events(SID)]
        result["exists"] = _outcome(lambda: j.exists(SID))
        result["add_message"] = _outcome(lambda: j.add_message(SID, "user", "refused"))
        result["create"] = _outcome(lambda: j.create("new"))
        result["verify"] = _outcome(lambda: j.verify())
        result["after"] = _outcome(lambda: j.get(SID))
    return result


def _build_shared_root(base: Path) -> Path:
    root = base / "journal"
    with Journal(root) as j:
        j.create(SID)
        j.add_message(SID, "user", "hello")
    return root


def _set_modes(root: Path, folder: int, file: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.chmod(path, folder if path.is_dir() else file)


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A folder every user can traverse (pytest's tmp_path is private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="journal-io-faults-"))
    os.chmod(base, 0o755)  # noqa: S103 (another user must reach the root)
    try:
        yield base
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, stat.S_IRWXU)
        shutil.rmtree(base)


def _probe_as_other_user(root: Path, spawned: list[BaseProcess]) -> dict[str, Any]:
    if os.geteuid() == 0:
        parent, child = CTX.Pipe()
        process = CTX.Process(target=_unprivileged_child, args=(str(root), child))
        process.start()
        spawned.append(process)
        result: dict[str, Any] = _child_result(parent, process)
        return result
    # Not root: the owner loses write permission instead (root would bypass it).
    _set_modes(root, 0o555, 0o444)
    return _probe_access(str(root))


def _assert_refused(outcome: tuple[str, bool, int | None, str | None], root: Path, what: str) -> None:
    name, is_journal_error, code, path = outcome
    assert (name, is_journal_error, code) == ("StorageError", True, errno.EACCES), what
    assert path is not None, what
    assert Path(path).is_relative_to(root), what


def test_root_readable_but_not_writable_reads_work_and_writes_raise_storage_error(
    shared_base: Path, spawned: list[BaseProcess]
) -> None:
    root = _build_shared_root(shared_base)
    # An administrator shares the journal read-only: the journal made it private (0700/0600).
    _set_modes(root, 0o755, 0o644)
    result = _probe_as_other_user(root, spawned)
    assert result["get"] == ("", False, None, None)
    assert result["contents"] == ["hello"]
    assert result["sessions"] == [SID]
    assert result["seqs"] == [1, 2]
    assert result["exists"] == ("", False, None, None)
    for what in ("add_message", "create", "verify"):
        _assert_refused(result[what], root, what)
    assert result["after"] == ("", False, None, None)
    _set_modes(root, 0o700, 0o600)
    seqs, contents = _fresh_view(root)
    assert (seqs, contents) == ([1, 2], ["hello"])


def test_root_of_another_user_raises_storage_error_on_every_call(
    shared_base: Path, spawned: list[BaseProcess]
) -> None:
    root = _build_shared_root(shared_base)
    os.chmod(root, 0o755)  # noqa: S103 (the root is open; the journal keeps its folders 0700)
    if os.geteuid() != 0:
        pytest.skip("needs a second user: the owner can always read its own 0700 folders")
    result = _probe_as_other_user(root, spawned)
    for what in ("get", "exists", "add_message", "create", "after"):
        _assert_refused(result[what], root, what)
