"""A hostile root: symlinks and hard links planted below it, and temporary files left in it.

Method: a journal with every kind of file (active log, snapshot, archive segment, quarantine,
lock file) is built, then one of its folders or files is replaced by a symlink to a copy of
it in a sibling folder outside the root (so following the link would work, and any write
through it would land outside), or hard links to a file outside the root are planted at
names the journal could open. Every public operation then runs in a fresh Journal.

The oracle: each operation returns or raises ``StorageError`` / ``CorruptLogError`` (never
a bare ``OSError``, never anything else), and the outside folder is byte for byte what it was
(names, modes and contents of its whole tree, taken without following links): nothing was
written, created, removed or chmodded through a link.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from journal import CorruptLogError, Journal, StorageError
from journal.backends.files.layout import Layout

SID = "victim"
OTHER = "bystander"
SECRET = "a secret worth redacting"  # noqa: S105 (message content, not a password)
QUIET: dict[str, Any] = {"snapshot_every": 0, "snapshot_bytes": 0}
HOUR = 3600.0


def tree_digest(top: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``top`` (itself included), links not followed: its mode, and the
    SHA-256 of a file's bytes or a symlink's target."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in ["", *dirnames, *filenames]:
            path = Path(dirpath) / name if name else Path(dirpath)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            else:
                digest = ""
            out[str(path.relative_to(top))] = (st.st_mode, digest)
    return out


def build(root: Path) -> None:
    """A session with a log, a snapshot, an archive segment and a quarantine, and another."""
    with Journal(root, **QUIET) as j:
        j.create(SID)
        j.add_message(SID, "user", SECRET)
        for i in range(3):
            j.add_message(SID, "assistant", f"reply {i}")
        j.compact(SID, prune=True)
        j.add_message(SID, "user", "after the pruning")
        folder = Layout(root).session_dir(SID)
        # A snapshot under the wrong name (it shows the secret): repair moves it into the
        # quarantine, where a redaction of the secret must find it and delete it.
        (snapshot,) = folder.glob("snapshot-*.snap")
        shutil.copy(snapshot, folder / "snapshot-00000000000000000002.snap")
        j.repair(SID)
        j.compact(SID)  # a snapshot of the current head
        j.create(OTHER)
        j.add_message(OTHER, "user", "hello")
    folder = Layout(root).session_dir(SID)
    assert list((folder / "archive").glob("*.jsonl.gz"))
    assert list(folder.glob("snapshot-*.snap"))
    (moved,) = (folder / "quarantine").iterdir()
    assert SECRET.encode() in (moved / "snapshot-00000000000000000002.snap").read_bytes()


def _places(root: Path) -> dict[str, Path]:
    layout = Layout(root)
    folder = layout.session_dir(SID)
    return {
        "sessions": layout.sessions,
        "locks": layout.locks,
        "session folder": folder,
        "archive": folder / "archive",
        "quarantine": folder / "quarantine",
        "snapshot": next(folder.glob("snapshot-*.snap")),
        "segment": next((folder / "archive").glob("*.jsonl.gz")),
        "log": layout.log_path(SID),
        "lock file": layout.lock_path(SID),
    }


PLACES = [
    "sessions",
    "locks",
    "session folder",
    "archive",
    "quarantine",
    "snapshot",
    "segment",
    "log",
    "lock file",
]


def _redact(j: Journal) -> object:
    (secret,) = [m for m in j.get(SID).messages if m.content == SECRET]
    return j.redact_message(SID, secret.id, reason="request")


OPERATIONS: dict[str, tuple[dict[str, Any], Callable[[Journal], object]]] = {
    "get": ({}, lambda j: j.get(SID)),
    "events": ({}, lambda j: list(j.events(SID))),
    "sessions": ({}, lambda j: list(j.sessions())),
    "verify": ({}, lambda j: j.verify(SID)),
    "verify all": ({}, lambda j: j.verify()),
    "add_message": ({}, lambda j: j.add_message(SID, "user", "more")),
    "create": ({}, lambda j: j.create("newcomer")),
    "compact": ({}, lambda j: j.compact(SID)),
    "compact with prune": ({}, lambda j: j.compact(SID, prune=True)),
    "retention": ({"retention": timedelta(microseconds=1)}, lambda j: j.compact(SID, prune=True)),
    "redact_message": ({}, _redact),
    "repair": ({}, lambda j: j.repair(SID)),
    "delete": ({}, lambda j: j.delete(SID)),
}


def _attempt(root: Path, options: dict[str, Any], operation: Callable[[Journal], object]) -> str:
    """Run ``operation`` in a fresh Journal: "ok", or the name of the error it raised (only
    the two the oracle allows; anything else fails the test)."""
    try:
        with Journal(root, **QUIET, **options) as j:
            operation(j)
    except (StorageError, CorruptLogError) as exc:
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize("place", PLACES)
def test_a_symlink_below_the_root_is_never_followed(tmp_path: Path, place: str) -> None:
    pristine, outside = tmp_path / "pristine", tmp_path / "outside"
    build(pristine)
    outside.mkdir()
    (outside / "canary").write_bytes(b"canary")
    target = _places(pristine)[place]
    # A copy outside the root stands where the link points: following it would work, and
    # whatever followed it would write there.
    copy = outside / "copy"
    if target.is_dir():
        shutil.copytree(target, copy, symlinks=True)
        shutil.rmtree(target)
    else:
        shutil.copy2(target, copy)
        target.unlink()
    target.symlink_to(copy)
    before = tree_digest(outside)
    outcomes = {}
    for k, (name, (options, operation)) in enumerate(OPERATIONS.items()):
        # Each operation on its own copy of the planted root (the links still point outside).
        root = shutil.copytree(pristine, tmp_path / f"root-{k}", symlinks=True)
        outcomes[name] = _attempt(root, options, operation)
        assert tree_digest(outside) == before, f"{name} ({outcomes[name]}) changed the outside folder"
    # Reading never needs the lock: with only locks/ in the way, reads still work.
    if place == "locks":
        assert outcomes["get"] == outcomes["events"] == "ok"
    # A link inside one session hides only that session from listings, and others are
    # created as ever.
    if place != "sessions":
        assert outcomes["sessions"] == "ok"
    if place not in ("sessions", "locks"):
        assert outcomes["create"] == "ok"


def test_a_redaction_the_quarantine_would_refuse_is_refused_before_its_event(tmp_path: Path) -> None:
    # Once the redaction event is stored, every writer must finish the erasure: a quarantine
    # it cannot open must stop the redaction before that, leaving the session as it was.
    root, outside = tmp_path / "root", tmp_path / "outside"
    build(root)
    quarantine = Layout(root).session_dir(SID) / "quarantine"
    shutil.move(quarantine, outside)
    quarantine.symlink_to(outside)
    with Journal(root) as j:
        version = j.get(SID).version
        with pytest.raises(StorageError):
            _redact(j)
        assert j.get(SID).version == version
        j.add_message(SID, "user", "writes go on")


def test_a_symlink_in_the_way_is_reported_with_its_path(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    build(root)
    archive = Layout(root).session_dir(SID) / "archive"
    shutil.move(archive, outside)
    archive.symlink_to(outside)
    with Journal(root) as j, pytest.raises(StorageError) as caught:
        j.compact(SID, prune=True)
    assert caught.value.path == str(archive)
    assert "symbolic link" in caught.value.cause
    assert isinstance(caught.value, OSError)


def test_a_root_that_is_a_symlink_is_followed(tmp_path: Path) -> None:
    # Where the journal lives is the user's choice: only what is below the root is guarded.
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    with Journal(link) as j:
        j.create(SID)
        j.add_message(SID, "user", "through the link")
        j.compact(SID, prune=True)
        assert j.verify().ok
    with Journal(real) as j:
        assert [m.content for m in j.get(SID).messages] == ["through the link"]


def _hard_link_names(root: Path) -> list[Path]:
    """Names the journal opens or could create: the lock file, temporary names of the shapes
    it writes (``.<name>.<random>.tmp``, so these are guesses), and a staged name."""
    layout = Layout(root)
    folder = layout.session_dir(SID)
    return [
        layout.lock_path(SID),
        folder / ".events.jsonl.tmp",
        folder / ".intent.json.tmp",
        folder / ".staged.tmp",
        folder / ".snapshot-00000000000000000007.snap.tmp",
        folder / "archive" / ".base.snap.tmp",
        folder / "archive" / ".00000000000000000001-00000000000000000006.jsonl.gz.tmp",
    ]


def test_planted_hard_links_are_never_written_through(tmp_path: Path) -> None:
    pristine, outside = tmp_path / "pristine", tmp_path / "outside"
    build(pristine)
    outside.mkdir()
    canary = outside / "canary"
    canary.write_bytes(b"canary")
    os.chmod(canary, 0o644)
    before = tree_digest(outside)
    for k, (name, (options, operation)) in enumerate(OPERATIONS.items()):
        root = shutil.copytree(pristine, tmp_path / f"root-{k}")
        for planted in _hard_link_names(root):
            planted.unlink(missing_ok=True)
            os.link(canary, planted)
        outcome = _attempt(root, options, operation)
        assert tree_digest(outside) == before, f"{name} ({outcome}) changed the outside file"
    assert canary.read_bytes() == b"canary"
    assert stat.S_IMODE(canary.stat().st_mode) == 0o644  # not even chmodded


# -- stale temporary files ---------------------------------------------------------------------


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def test_stale_temporary_files_are_swept_at_the_next_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Oracle: a hidden *.tmp file older than an hour in the session folder, its archive or
    # its quarantine is a crashed writer's leftover and goes; a younger one may be another
    # process's write in progress and stays; nothing else is touched, however old.
    root, outside = tmp_path / "root", tmp_path / "outside"
    build(root)
    outside.mkdir()
    folder = Layout(root).session_dir(SID)
    (moved,) = (folder / "quarantine").iterdir()
    stale = [folder / ".x.tmp", folder / "archive" / ".y.tmp", moved / ".z.tmp"]
    fresh = [folder / ".fresh.tmp", folder / "archive" / ".fresh.tmp"]
    kept = [folder / "notes.tmp", folder / ".hidden", folder / "archive" / "keep.tmp"]
    for path in [*stale, *fresh, *kept]:
        path.write_bytes(b"leftover")
    (folder / ".dir.tmp").mkdir()
    (outside / "target").write_bytes(b"outside")
    (folder / ".link.tmp").symlink_to(outside / "target")
    for path in [*stale, *kept, folder / ".dir.tmp", folder / ".link.tmp"]:
        _age(path, 2 * HOUR)
    with Journal(root) as j:
        assert j.get(SID).version > 0  # a read sweeps nothing
        assert all(path.exists() for path in stale)
        with caplog.at_level(logging.INFO, logger="journal"):
            j.add_message(SID, "user", "the next write")
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in [*fresh, *kept])
    assert (folder / ".dir.tmp").is_dir()
    assert (folder / ".link.tmp").is_symlink()
    assert (outside / "target").read_bytes() == b"outside"
    removed = [r.getMessage() for r in caplog.records if "stale temporary file" in r.getMessage()]
    assert sorted(removed) == sorted(f"{path}: removed a stale temporary file" for path in stale)
    assert all(r.levelno == logging.INFO for r in caplog.records if "stale temporary" in r.getMessage())
