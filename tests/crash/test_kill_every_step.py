"""Kill at every step: repair, delete, compaction and redaction, each SIGKILLed at every
file-system call it makes, then opened again.

Method: a forked child runs the operation on a copy of a prepared journal with every call
that changes a file (write, truncate, fsync, rename, link, unlink, mkdir, rmdir: the calls
``tests/crash/powerloss.py`` records) counted; at call ``k`` it sends itself a real SIGKILL
before making it. A first run without a kill counts the calls, so the sweep follows the code
when steps are added or reordered. Unlike a power cut (``test_power_loss``), what was
written stays written: this is the process dying.

The oracle, after each kill, in a fresh Journal (``test_power_loss.look`` and ``examine``):
every session reads as it did before the operation or as it does after it (a copy on which
the operation ran to the end), and ``verify`` is clean, or reports exactly the damage that
was there before a repair, which running ``repair`` again removes. Multi-file changes decide
at one commit point and the next reader or writer finishes them (``journal/intent.py``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from journal import Journal, MessageRedacted, Session
from tests.crash.powerloss import _targets
from tests.crash.test_power_loss import (
    QUIET,
    SIDS,
    TINY,
    Seen,
    build_history,
    damage_line,
    damage_segment,
    examine,
    problems_of,
    secret_of,
    show,
)

CTX = multiprocessing.get_context("fork")  # a real process, started fast: it only runs one call
JOIN_TIMEOUT = 60.0  # only turns a hang into a failure
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CHANGES = {"write", "pwrite", "ftruncate", "truncate", "fsync", "rename", "link", "unlink", "mkdir"}

Operation = Callable[[Journal], object]


def _run_and_die(root: str, operation: Operation, options: dict[str, Any], kill_at: int, count: str) -> None:
    """The child: run ``operation``, killing itself before change ``kill_at`` (0: never);
    the number of changes made is written to ``count`` when it survives."""
    seen = 0

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal seen
            seen += 1
            if seen == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return call

    for owner, name, kind, real in _targets():
        if kind in _CHANGES:
            assert callable(real)
            setattr(owner, name, counted(real))  # the child dies or exits: nothing to restore
    with Journal(root, **options) as journal:
        operation(journal)
    fd = os.open(count, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, str(seen).encode())
    os._exit(0)


def _child(root: Path, operation: Operation, options: dict[str, Any], kill_at: int, count: Path) -> int:
    process = CTX.Process(target=_run_and_die, args=(str(root), operation, options, kill_at, str(count)))
    process.start()
    process.join(JOIN_TIMEOUT)
    if process.is_alive():
        process.kill()
        pytest.fail(f"the child did not end (kill at {kill_at})")
    assert process.exitcode is not None
    return process.exitcode


def sweep(
    tmp_path: Path,
    operation: Operation,
    *,
    prepare: Callable[[Path], None] = build_history,
    options: dict[str, Any] | None = None,
    damaged: str | None = None,
) -> int:
    """Kill ``operation`` before each of its file changes and check every outcome; returns how
    many kills were checked. ``damaged``: the session a repair fixes (before it, damage)."""
    options = {**QUIET, **(options or {})}
    pristine = tmp_path / "pristine"
    prepare(pristine)
    old, old_report = examine(_copy(pristine, tmp_path / "old"), SIDS)
    done = _copy(pristine, tmp_path / "done")
    count = tmp_path / "count"
    assert _child(done, operation, options, 0, count) == 0
    total = int(count.read_text())
    new, new_report = examine(done, SIDS)
    assert new_report.ok, problems_of(new_report)
    assert total >= 3, f"only {total} changes: nothing to sweep"
    failures = []
    for k in range(1, total + 1):
        root = _copy(pristine, tmp_path / f"kill-{k}")
        code = _child(root, operation, options, k, tmp_path / f"count-{k}")
        assert code == -signal.SIGKILL, f"kill at {k} of {total}: exit code {code}"
        try:
            _check(root, old, new, old_report, damaged)
        except AssertionError as exc:
            failures.append(f"killed before change {k} of {total}: {exc}")
        shutil.rmtree(root)
    assert not failures, "\n".join(failures[:8])
    return total


def _timeless(seen: Seen) -> Seen:
    """``seen`` without the times an operation's own event gets (each run stamps its
    redaction event anew), so that runs of one operation compare equal."""
    state, events = seen
    if isinstance(state, Session):
        state = dataclasses.replace(state, updated_at=EPOCH)
    if isinstance(events, tuple):
        events = tuple(
            msgspec.structs.replace(e, at=EPOCH) if isinstance(e, MessageRedacted) else e for e in events
        )
    return Seen(state, events)


def _check(
    root: Path, old: dict[str, Any], new: dict[str, Any], old_report: Any, damaged: str | None
) -> None:
    seen, report = examine(root, SIDS)
    for sid in SIDS:
        assert _timeless(seen[sid]) in (_timeless(old[sid]), _timeless(new[sid])), (
            f"{sid}: {show(seen[sid])}: neither before nor after"
        )
    if report.ok:
        return
    # Only an interrupted repair may leave something to report: the damage it had not yet
    # switched away from, exactly as before, which repairing again removes.
    assert damaged is not None, problems_of(report)
    assert seen[damaged] == old[damaged], f"{damaged}: {problems_of(report)}"
    assert problems_of(report) == problems_of(old_report), problems_of(report)
    with Journal(root, **QUIET) as journal:
        journal.repair(damaged)
    after, report = examine(root, SIDS)
    assert report.ok, f"after repairing again: {problems_of(report)}"
    assert {sid: _timeless(after[sid]) for sid in SIDS} == {sid: _timeless(new[sid]) for sid in SIDS}


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _damaged_log(root: Path) -> None:
    build_history(root)
    damage_line(root, "gamma")


def _damaged_archive(root: Path) -> None:
    build_history(root)
    damage_segment(root, "beta")


def _redact(sid: str) -> Operation:
    def operation(journal: Journal) -> object:
        (secret,) = [m for m in journal.get(sid).messages if m.content == secret_of(sid)]
        return journal.redact_message(sid, secret.id, reason="request")

    return operation


def test_repair_of_the_active_log_killed_at_every_step(tmp_path: Path) -> None:
    sweep(tmp_path, lambda j: j.repair("gamma"), prepare=_damaged_log, damaged="gamma")


def test_repair_of_the_archive_killed_at_every_step(tmp_path: Path) -> None:
    sweep(tmp_path, lambda j: j.repair("beta"), prepare=_damaged_archive, damaged="beta")


def test_delete_killed_at_every_step(tmp_path: Path) -> None:
    sweep(tmp_path, lambda j: j.delete("beta"))


@pytest.mark.parametrize("retention", [None, TINY], ids=["prune", "prune-and-retention"])
def test_compaction_killed_at_every_step(tmp_path: Path, retention: Any) -> None:
    sweep(tmp_path, lambda j: j.compact("beta", prune=True), options={"retention": retention})


@pytest.mark.parametrize("sid", ["alpha", "beta"], ids=["in-the-active-log", "in-the-archive"])
def test_redaction_killed_at_every_step(tmp_path: Path, sid: str) -> None:
    sweep(tmp_path, _redact(sid))
