"""Power-loss crash states, built the way ALICE, CrashMonkey and LazyFS build them.

``Recorder`` watches an operation run on a real journal root and records every file-system
call the journal makes there (open, write, truncate, fsync, rename, link, unlink, mkdir,
rmdir, close). ``crash_states`` then replays the calls on a model file system and lists every
tree the disk could hold had the power failed after any one of them. A test materializes each
tree into a fresh folder and opens a fresh ``Journal`` on it.

The model is as weak as POSIX allows, not as strong as one file system happens to be:

* file data belongs to an inode (so renames and hard links carry it along): a write or a
  truncate becomes durable when that inode is fsynced (``fsync`` or ``fdatasync``, through any
  descriptor);
* a folder entry (create, link, mkdir, unlink, rmdir) becomes durable when its folder is
  fsynced; a rename when its *target* folder is fsynced, both halves at once (a journaling
  file system commits a rename as one transaction, and a rename that only lost its source
  entry would be no rename at all);
* anything not yet durable may or may not have reached the disk, in any order.

That space is too large to list; at each crash point the candidates are the subsets that
find ordering and atomicity bugs: (a) everything applied (what a process crash leaves),
(b) only the durable layer, (c) the durable layer plus each prefix of the pending operations,
(d) the durable layer plus all pending operations but one, and (e) all of them with the last
pending data write torn: cut at a 512- or 4096-byte boundary or in the middle of a line, and
the same with the unwritten part zero-filled (ext4 can leave a file's new size without its
data). States are deduplicated by content; a state reachable at several points is kept with
the latest one, whose promises are the strictest.

Every place the journal calls into the file system is patched through ``PATCH_TARGETS``, the
one table to update when modules move. Two self-checks keep the table honest: a journal module
holding one of the watched ``os`` functions under a name the table does not list is refused
before anything runs, and after the operation the model's tree must equal the real one (a
write the recorder missed would make them differ).
"""

from __future__ import annotations

import importlib
import os
import random
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

__all__ = [
    "PATCH_TARGETS",
    "CrashState",
    "Recorder",
    "RecorderError",
    "Tree",
    "crash_states",
    "materialize",
    "read_tree",
    "sample",
]

# What is patched while recording: (module, attribute inside it, kind of call, required).
# The journal calls ``os.<name>`` at call time almost everywhere; the rows below the first
# block are functions captured at import under another name, which patching ``os`` misses.
# Path.unlink/rename/replace/mkdir (Python 3.11+) and shutil.rmtree call ``os`` at call time,
# so the first block covers them; Python 3.10's pathlib reached ``os`` through an accessor
# class that captured the functions at import, hence the optional rows at the end.
# The journal's own calls are descriptor-relative (``dir_fd=``, ``src_dir_fd=`` and
# ``dst_dir_fd=``, see ``journal/fsio.py``): each is resolved against the model folder its
# descriptor names, including descriptors opened before recording began.
PATCH_TARGETS: tuple[tuple[str, str, str, bool], ...] = (
    ("os", "open", "open", True),
    ("os", "write", "write", True),
    ("os", "pwrite", "pwrite", False),
    ("os", "ftruncate", "ftruncate", True),
    ("os", "truncate", "truncate", True),
    ("os", "fsync", "fsync", True),
    ("os", "fdatasync", "fsync", False),  # absent on macOS
    ("os", "rename", "rename", True),
    ("os", "replace", "rename", True),
    ("os", "link", "link", True),
    ("os", "unlink", "unlink", True),
    ("os", "remove", "unlink", True),
    ("os", "mkdir", "mkdir", True),
    ("os", "rmdir", "unlink", True),
    ("os", "close", "close", True),
    # ``_sync = getattr(os, "fdatasync", os.fsync)``, captured at import.
    ("journal.backends.files.transaction", "_sync", "fsync", True),
    ("journal.backends.files.storage", "_sync", "fsync", True),
    # Python 3.10 only (the accessor is gone in 3.11).
    ("pathlib", "_NormalAccessor.unlink", "unlink", False),
    ("pathlib", "_NormalAccessor.rename", "rename", False),
    ("pathlib", "_NormalAccessor.replace", "rename", False),
    ("pathlib", "_NormalAccessor.mkdir", "mkdir", False),
    ("pathlib", "_NormalAccessor.rmdir", "unlink", False),
    ("pathlib", "_NormalAccessor.link", "link", False),
)

Tree = Mapping[str, "bytes | None"]
"""A folder's content: relative path -> the file's bytes, or None for a folder."""

ROOT = 0  # the model inode of the journal root
_MAX_CUTS = 3  # torn-write cuts kept per kind (4096, 512, mid-line): enough to hit each case


class RecorderError(AssertionError):
    """The recorder met something it does not model: the crash states would be wrong."""


# -- the operations of the model --------------------------------------------------------------


class Write(NamedTuple):
    ino: int
    offset: int
    data: bytes


class Truncate(NamedTuple):
    ino: int
    size: int


class Link(NamedTuple):
    """A new name: a created file, a hard link or a new folder (``folder``)."""

    parent: int
    name: str
    ino: int
    folder: bool


class Unlink(NamedTuple):
    parent: int
    name: str
    ino: int


class Rename(NamedTuple):
    src: int
    src_name: str
    dst: int
    dst_name: str
    ino: int


class Sync(NamedTuple):
    """fsync or fdatasync of an inode (a file's data, or a folder's entries)."""

    ino: int


class Mark(NamedTuple):
    """A point the test labelled (an operation returned, a flush completed)."""

    payload: object


Op = Write | Truncate | Link | Unlink | Rename
Action = Op | Sync | Mark


class _Layer:
    """One version of the disk: file data and folder entries, both by model inode."""

    __slots__ = ("dirs", "files")

    def __init__(self, files: dict[int, bytes], dirs: dict[int, dict[str, int]]) -> None:
        self.files = files
        self.dirs = dirs

    def copy(self) -> _Layer:
        return _Layer(dict(self.files), {d: dict(entries) for d, entries in self.dirs.items()})

    def apply(self, op: Op) -> None:
        if isinstance(op, Write):
            old = self.files.get(op.ino, b"")
            if op.offset > len(old):
                old += bytes(op.offset - len(old))  # a write past the end leaves a hole of zeros
            self.files[op.ino] = old[: op.offset] + op.data + old[op.offset + len(op.data) :]
        elif isinstance(op, Truncate):
            old = self.files.get(op.ino, b"")
            self.files[op.ino] = old[: op.size] + bytes(max(0, op.size - len(old)))
        elif isinstance(op, Link):
            self.dirs.setdefault(op.parent, {})[op.name] = op.ino
            if op.folder:
                self.dirs.setdefault(op.ino, {})
        elif isinstance(op, Unlink):
            entries = self.dirs.get(op.parent, {})
            if entries.get(op.name) == op.ino:
                del entries[op.name]
        else:
            # The target gets the inode even if the source's own creation never became
            # durable: the rename names the inode, not the old name.
            self.dirs.setdefault(op.dst, {})[op.dst_name] = op.ino
            source = self.dirs.get(op.src, {})
            if source.get(op.src_name) == op.ino and (op.src, op.src_name) != (op.dst, op.dst_name):
                del source[op.src_name]

    def tree(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}

        def walk(ino: int, prefix: str) -> None:
            for name, child in sorted(self.dirs.get(ino, {}).items()):
                path = prefix + name
                if child in self.dirs:
                    out[path] = None
                    walk(child, path + "/")
                else:
                    out[path] = self.files.get(child, b"")

        walk(ROOT, "")
        return out


def _is_data(op: Op, ino: int) -> bool:
    return isinstance(op, (Write, Truncate)) and op.ino == ino


def _in_folder(op: Op, folder: int) -> bool:
    if isinstance(op, (Link, Unlink)):
        return op.parent == folder
    return isinstance(op, Rename) and op.dst == folder


# -- recording ---------------------------------------------------------------------------------


class Step(NamedTuple):
    """One recorded call and what it did to the model."""

    call: str
    actions: tuple[Action, ...]


class Recorder:
    """Record the file-system calls made under ``root`` while the ``with`` block runs.

    ``root`` must exist (a journal with some history); its tree at entry is the durable
    starting point. Calls made from any thread are recorded in the order they happened.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.steps: list[Step] = []
        self._base = os.path.abspath(root)  # as Layout builds paths: absolute, not resolved
        self._initial = self._live = _Layer({}, {ROOT: {}})
        self._inodes: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> model inode
        self._fds: dict[int, int] = {}  # descriptor -> model inode
        self._names: dict[int, str] = {}  # model inode -> a path, for messages
        self._next = 1
        self._lock = threading.RLock()
        self._saved: list[tuple[object, str, object]] = []

    def __repr__(self) -> str:
        return f"Recorder({str(self.root)!r}, {len(self.steps)} steps)"

    # -- entering and leaving

    def __enter__(self) -> Recorder:
        check_aliases()
        self._live = _Layer({}, {ROOT: {}})
        self._register(os.stat(self._base), ROOT, "")
        self._scan(ROOT, self._base, "")
        self._initial = self._live.copy()
        self._adopt_open_descriptors()
        self._install()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._uninstall()
        if kind is None:
            real, model = read_tree(self.root), self._live.tree()
            if real != model:
                differ = sorted(p for p in real.keys() | model.keys() if real.get(p, 0) != model.get(p, 0))
                raise RecorderError(f"a file-system call escaped the recorder; the trees differ at {differ}")

    def mark(self, payload: object) -> None:
        """Label this point: crash states after it carry ``payload`` in ``marks``."""
        with self._lock:
            self.steps.append(Step(f"mark {payload!r}", (Mark(payload),)))

    def crash_states(self) -> list[CrashState]:
        return crash_states(self._initial, self.steps)

    # -- the model's bookkeeping

    def _register(self, st: os.stat_result, ino: int, name: str) -> None:
        self._inodes[(st.st_dev, st.st_ino)] = ino
        self._names[ino] = name

    def _new(self, st: os.stat_result, name: str) -> int:
        ino, self._next = self._next, self._next + 1
        self._register(st, ino, name)  # replaces a reused inode number's old meaning
        return ino

    def _scan(self, ino: int, path: str, rel: str) -> None:
        with os.scandir(path) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                linked = self._inodes.get((st.st_dev, st.st_ino))
                if linked is not None and stat.S_ISREG(st.st_mode):
                    self._live.dirs[ino][entry.name] = linked  # a second name of one inode
                    continue
                child = self._new(st, rel + entry.name)
                self._live.dirs[ino][entry.name] = child
                if stat.S_ISDIR(st.st_mode):
                    self._live.dirs[child] = {}
                    self._scan(child, entry.path, rel + entry.name + "/")
                elif stat.S_ISREG(st.st_mode):
                    with open(entry.path, "rb") as f:
                        self._live.files[child] = f.read()
                else:
                    raise RecorderError(f"{entry.path}: neither a file nor a folder")

    def _adopt_open_descriptors(self) -> None:
        # Descriptors the journal opened before recording (its cached log, its lock files).
        try:
            fds = [int(n) for n in os.listdir("/proc/self/fd")]
        except OSError:
            fds = list(range(1024))
        for fd in fds:
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            ino = self._inodes.get((st.st_dev, st.st_ino))
            if ino is not None:
                self._fds[fd] = ino

    def _record(self, call: str, actions: Iterable[Action]) -> None:
        acts = tuple(actions)
        for act in acts:
            if isinstance(act, (Write, Truncate, Link, Unlink, Rename)):
                self._live.apply(act)
        self.steps.append(Step(call, acts))

    def _where(self, path: Any, dir_fd: int | None) -> tuple[int, list[str]] | None:
        """The model folder a path starts from and its components; None outside the root."""
        text = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(text):
            base = self._folder_of(dir_fd)
            if base is None:
                return None
            return base, [p for p in text.split("/") if p not in ("", ".")]
        full = os.path.abspath(text)
        if full == self._base:
            return ROOT, []
        if not full.startswith(self._base + os.sep):
            return None
        return ROOT, full[len(self._base) + 1 :].split(os.sep)

    def _folder_of(self, dir_fd: int) -> int | None:
        """The model folder a descriptor names; None if it is outside the root.

        A descriptor the recorder did not see opened (the journal opened it before recording
        began and it was not adopted, or it came from ``dup``) is recognised by its inode, so
        a call relative to it is never mistaken for one outside the root.
        """
        known = self._fds.get(dir_fd)
        if known is not None:
            return known
        try:
            st = os.fstat(dir_fd)
        except OSError:
            return None  # not open: the real call fails (EBADF) and changes nothing
        found = self._inodes.get((st.st_dev, st.st_ino))
        if found is None:
            return None
        if found not in self._live.dirs:
            raise RecorderError(
                f"descriptor {dir_fd} ({self._names.get(found)}) is used as a folder: not modelled"
            )
        self._fds[dir_fd] = found
        return found

    def _locate(self, path: Any, dir_fd: int | None = None) -> tuple[int, str] | None:
        """(folder inode, name) of a path under the root; None outside it."""
        where = self._where(path, dir_fd)
        if where is None:
            return None
        folder, parts = where
        if not parts or ".." in parts:
            raise RecorderError(f"{path!r}: the recorder does not model this path")
        for part in parts[:-1]:
            child = self._live.dirs.get(folder, {}).get(part)
            if child is None or child not in self._live.dirs:
                return -1, parts[-1]  # a missing folder: the real call fails too
            folder = child
        return folder, parts[-1]

    def _entry(self, where: tuple[int, str]) -> int | None:
        return self._live.dirs.get(where[0], {}).get(where[1])

    def _label(self, where: tuple[int, str]) -> str:
        folder = self._names.get(where[0], "?")
        return f"{folder}/{where[1]}" if folder else where[1]

    # -- the patched calls

    def _open(self, real: Callable[..., int], path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        with self._lock:
            dir_fd = kw.get("dir_fd")
            where = self._where(path, dir_fd)
            if where is None:
                return real(path, flags, mode, **kw)
            if not where[1]:  # the root itself (fsync_dir of the root)
                fd = real(path, flags, mode, **kw)
                self._fds[fd] = where[0]
                return fd
            located = self._locate(path, dir_fd)
            assert located is not None
            before = self._entry(located)
            fd = real(path, flags, mode, **kw)
            st = os.fstat(fd)
            label = self._label(located)
            if before is None:
                if not flags & os.O_CREAT:
                    raise RecorderError(f"{label}: opened, but the model holds no such file")
                ino = self._new(st, label)
                self._record(f"open(O_CREAT) {label}", [Link(located[0], located[1], ino, False)])
            else:
                ino = before
                self._register(st, ino, label)
                writable = flags & (os.O_WRONLY | os.O_RDWR)
                if flags & os.O_TRUNC and writable and self._live.files.get(ino):
                    self._record(f"open(O_TRUNC) {label}", [Truncate(ino, 0)])
            self._fds[fd] = ino
            return fd

    def _write(self, real: Callable[..., int], fd: int, data: Any) -> int:
        with self._lock:
            n = real(fd, data)
            ino = self._fds.get(fd)
            if ino is not None:
                end = os.lseek(fd, 0, os.SEEK_CUR)
                chunk = bytes(memoryview(data)[:n])
                self._record(f"write {self._names[ino]} ({n} bytes)", [Write(ino, end - n, chunk)])
            return n

    def _pwrite(self, real: Callable[..., int], fd: int, data: Any, offset: int) -> int:
        with self._lock:
            n = real(fd, data, offset)
            ino = self._fds.get(fd)
            if ino is not None:
                chunk = bytes(memoryview(data)[:n])
                self._record(f"pwrite {self._names[ino]} ({n} bytes)", [Write(ino, offset, chunk)])
            return n

    def _ftruncate(self, real: Callable[..., None], fd: int, size: int) -> None:
        with self._lock:
            real(fd, size)
            ino = self._fds.get(fd)
            if ino is not None:
                self._record(f"ftruncate {self._names[ino]} to {size}", [Truncate(ino, size)])

    def _truncate(self, real: Callable[..., None], path: Any, size: int) -> None:
        if isinstance(path, int):
            self._ftruncate(real, path, size)
            return
        with self._lock:
            located = self._locate(path)
            real(path, size)
            if located is not None:
                ino = self._entry(located)
                if ino is None:
                    raise RecorderError(f"{path}: truncated, but the model holds no such file")
                self._record(f"truncate {self._label(located)} to {size}", [Truncate(ino, size)])

    def _fsync(self, real: Callable[..., None], fd: Any) -> None:
        with self._lock:
            real(fd)
            num = fd if isinstance(fd, int) else fd.fileno()
            ino = self._fds.get(num)
            if ino is not None:
                what = "folder " if ino in self._live.dirs else ""
                self._record(f"fsync {what}{self._names[ino] or '<root>'}", [Sync(ino)])

    def _rename(self, real: Callable[..., None], src: Any, dst: Any, **kw: Any) -> None:
        with self._lock:
            a = self._locate(src, kw.get("src_dir_fd"))
            b = self._locate(dst, kw.get("dst_dir_fd"))
            if a is None and b is None:
                real(src, dst, **kw)
                return
            if a is None or b is None:
                raise RecorderError(f"rename {src} -> {dst} crosses the root: not modelled")
            ino = self._entry(a)
            real(src, dst, **kw)
            if ino is None:
                raise RecorderError(f"{src}: renamed, but the model holds no such file")
            self._record(
                f"rename {self._label(a)} -> {self._label(b)}", [Rename(a[0], a[1], b[0], b[1], ino)]
            )
            self._names[ino] = self._label(b)

    def _link(self, real: Callable[..., None], src: Any, dst: Any, **kw: Any) -> None:
        with self._lock:
            a = self._locate(src, kw.get("src_dir_fd"))
            b = self._locate(dst, kw.get("dst_dir_fd"))
            if a is None and b is None:
                real(src, dst, **kw)
                return
            if a is None or b is None:
                raise RecorderError(f"link {src} -> {dst} crosses the root: not modelled")
            ino = self._entry(a)
            real(src, dst, **kw)
            if ino is None:
                raise RecorderError(f"{src}: linked, but the model holds no such file")
            self._record(f"link {self._label(a)} -> {self._label(b)}", [Link(b[0], b[1], ino, False)])

    def _unlink(self, real: Callable[..., None], path: Any, **kw: Any) -> None:
        with self._lock:
            located = self._locate(path, kw.get("dir_fd"))
            if located is None:
                real(path, **kw)
                return
            ino = self._entry(located)
            real(path, **kw)
            if ino is None:
                raise RecorderError(f"{path}: removed, but the model holds no such entry")
            self._record(f"unlink {self._label(located)}", [Unlink(located[0], located[1], ino)])

    def _mkdir(self, real: Callable[..., None], path: Any, mode: int = 0o777, **kw: Any) -> None:
        with self._lock:
            located = self._locate(path, kw.get("dir_fd"))
            real(path, mode, **kw)
            if located is not None:
                st = os.stat(path, dir_fd=kw.get("dir_fd"), follow_symlinks=False)
                label = self._label(located)
                ino = self._new(st, label)
                self._record(f"mkdir {label}", [Link(located[0], located[1], ino, True)])

    def _close(self, real: Callable[..., None], fd: int) -> None:
        with self._lock:
            real(fd)
            ino = self._fds.pop(fd, None)
            if ino is not None:
                self._record(f"close {self._names[ino] or '<root>'}", ())

    # -- installing the patches

    def _install(self) -> None:
        handlers: dict[str, Callable[..., Any]] = {
            "open": self._open,
            "write": self._write,
            "pwrite": self._pwrite,
            "ftruncate": self._ftruncate,
            "truncate": self._truncate,
            "fsync": self._fsync,
            "rename": self._rename,
            "link": self._link,
            "unlink": self._unlink,
            "mkdir": self._mkdir,
            "close": self._close,
        }
        for owner, attr, kind, real in _targets():
            wrapper = _bind(handlers[kind], real)
            # A function stored on a class would be bound as a method: keep it plain.
            patched: object = staticmethod(wrapper) if isinstance(owner, type) else wrapper
            self._saved.append((owner, attr, owner.__dict__[attr] if isinstance(owner, type) else real))
            setattr(owner, attr, patched)

    def _uninstall(self) -> None:
        while self._saved:
            owner, attr, original = self._saved.pop()
            setattr(owner, attr, original)


def _bind(handler: Callable[..., Any], real: object) -> Callable[..., Any]:
    def call(*args: Any, **kw: Any) -> Any:
        return handler(real, *args, **kw)

    return call


def _resolve(module: str, attr: str) -> tuple[Any, str] | None:
    """The object holding ``attr`` (a dotted path inside ``module``), or None if absent."""
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return None
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, name) if hasattr(owner, name) else None


def _targets() -> Iterator[tuple[Any, str, str, object]]:
    for module, attr, kind, required in PATCH_TARGETS:
        found = _resolve(module, attr)
        if found is None:
            if required:
                raise RecorderError(
                    f"{module}.{attr} is in PATCH_TARGETS but does not exist: update the table"
                )
            continue
        owner, name = found
        yield owner, name, kind, getattr(owner, name)


def check_aliases() -> None:
    """Refuse a journal module that holds a watched ``os`` function under an unlisted name.

    Such an alias (``_sync = os.fdatasync``, ``from os import replace``) would call the real
    function while the recorder watches ``os``: its effects would be missing from every crash
    state. This is what makes moving modules safe: the table must follow them.
    """
    watched = {id(getattr(os, a)): a for m, a, _, _ in PATCH_TARGETS if m == "os" and hasattr(os, a)}
    listed = {(m, a) for m, a, _, _ in PATCH_TARGETS}
    missing = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "journal" or name.startswith("journal.")):
            continue
        for attr, value in vars(module).items():
            if id(value) in watched and (name, attr) not in listed:
                missing.append(f"{name}.{attr} (os.{watched[id(value)]})")
    if missing:
        raise RecorderError(f"add to PATCH_TARGETS in {__name__}: {', '.join(sorted(missing))}")


# -- crash states ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashState:
    """One tree the disk could hold after a power cut, and where the cut happened."""

    point: int  # index of the step after which the power failed (-1: before the first)
    call: str  # that step, for messages
    how: str  # which candidate (see the module docstring)
    marks: tuple[object, ...]  # the payloads marked before the cut, oldest first
    tree: Tree

    def __str__(self) -> str:
        return f"power cut after step {self.point} ({self.call}), {self.how}"


def crash_states(initial: _Layer, steps: list[Step]) -> list[CrashState]:
    """Every distinct tree a power cut after any step can leave, in order of first appearance."""
    durable = initial.copy()
    pending: list[Op] = []
    marks: list[object] = []
    found: dict[tuple[tuple[str, bytes | None], ...], CrashState] = {}
    order: dict[tuple[tuple[str, bytes | None], ...], tuple[int, int]] = {}
    last: list[tuple[str, dict[str, bytes | None]]] = []
    for point, step in [(-1, Step("nothing", ())), *enumerate(steps)]:
        changed = point < 0
        for act in step.actions:
            if isinstance(act, Mark):
                marks.append(act.payload)
            elif isinstance(act, Sync):
                keep = []
                for op in pending:
                    if _is_data(op, act.ino) or _in_folder(op, act.ino):
                        durable.apply(op)
                    else:
                        keep.append(op)
                changed = changed or len(keep) != len(pending)
                pending = keep
            else:
                pending.append(act)
                changed = True
        if changed:
            last = list(_candidates(durable, pending))
        for rank, (how, tree) in enumerate(last):
            key = tuple(sorted(tree.items(), key=lambda item: item[0]))
            order.setdefault(key, (point, rank))
            found[key] = CrashState(point, step.call, how, tuple(marks), tree)
    return [found[k] for k in sorted(found, key=lambda k: order[k])]


def _candidates(durable: _Layer, pending: list[Op]) -> Iterator[tuple[str, dict[str, bytes | None]]]:
    def with_ops(ops: Iterable[Op]) -> dict[str, bytes | None]:
        layer = durable.copy()
        for op in ops:
            layer.apply(op)
        return layer.tree()

    n = len(pending)
    yield "process crash (every call applied)", with_ops(pending)
    yield "only what was made durable", durable.tree()
    for k in range(1, n):
        yield f"durable + first {k} of {n} pending", with_ops(pending[:k])
    if n > 1:
        for j in range(n):
            yield f"durable + all pending but #{j + 1} of {n}", with_ops(pending[:j] + pending[j + 1 :])
    writes = [i for i, op in enumerate(pending) if isinstance(op, Write)]
    if writes:
        k = writes[-1]
        torn = pending[k]
        assert isinstance(torn, Write)
        for cut, why in _cuts(torn.offset, torn.data):
            head = Write(torn.ino, torn.offset, torn.data[:cut])
            zeros = Write(torn.ino, torn.offset, torn.data[:cut] + bytes(len(torn.data) - cut))
            if cut:
                yield f"last write torn at {why}", with_ops([*pending[:k], head, *pending[k + 1 :]])
            yield (
                f"last write torn at {why}, rest zero-filled",
                with_ops([*pending[:k], zeros, *pending[k + 1 :]]),
            )


def _cuts(offset: int, data: bytes) -> list[tuple[int, str]]:
    """Where a write of ``data`` at ``offset`` may be cut short, each with why."""
    pages = [c for c in range(1, len(data)) if (offset + c) % 4096 == 0]
    sectors = [c for c in range(1, len(data)) if (offset + c) % 512 == 0 and (offset + c) % 4096]
    lines = []
    start = 0
    for line in data.splitlines(keepends=True):
        if len(line) > 1:
            lines.append(start + len(line) // 2)
        start += len(line)
    out = [(0, "its start")]
    for kind, cuts in (
        ("a 4096-byte boundary", pages),
        ("a 512-byte boundary", sectors),
        ("mid-line", lines),
    ):
        for cut in _spread(cuts, _MAX_CUTS):
            out.append((cut, f"{kind} (byte {offset + cut})"))
    return out


def _spread(items: list[int], limit: int) -> list[int]:
    if len(items) <= limit:
        return items
    return [items[i * (len(items) - 1) // (limit - 1)] for i in range(limit)]


def sample(states: list[CrashState], limit: int, seed: int = 0) -> list[CrashState]:
    """At most ``limit`` states, the same ones on every run: at least half of them (or all)
    from those after the last mark, which carry the strictest promises, the rest from the
    others."""
    if len(states) <= limit:
        return states
    rng = random.Random(seed)
    most = max(len(s.marks) for s in states)
    strict = [s for s in states if len(s.marks) == most]
    rest = [s for s in states if len(s.marks) < most]
    take = min(len(strict), max(limit // 2, limit - len(rest)))
    keep = rng.sample(strict, take) + rng.sample(rest, min(len(rest), limit - take))
    return sorted(keep, key=states.index)


# -- trees on disk -----------------------------------------------------------------------------


def read_tree(root: Path) -> dict[str, bytes | None]:
    """The content of a folder as a ``Tree`` (symlinks and other special files are refused)."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel + "/"
        for name in dirnames:
            out[prefix + name] = None
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                out[prefix + name] = f.read()
    return dict(sorted(out.items()))


def materialize(tree: Tree, target: Path) -> Path:
    """Write ``tree`` into the new folder ``target``: folders 0700, files 0600, as the journal
    makes them (two names of one inode become two files: a fresh Journal cannot tell).
    Returns ``target``."""
    os.mkdir(target, 0o700)
    os.chmod(target, 0o700)
    for rel, data in sorted(tree.items()):
        path = target / rel
        if data is None:
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
            finally:
                os.close(fd)
    return target
