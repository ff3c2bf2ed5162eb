"""A redaction that dies part way: real SIGKILL at random moments, and every file step one by one.

The promise under test (``Journal.redact_message``, ``journal/erasure.py`` and
``journal/intent.py``): the erasure is decided (its intent written) before the
``message_redacted`` event is durably in the log, then rewrites one file at a time, each
atomically. Stopped anywhere, the session still reads, and once the event is there the next
reader or writer finishes the erasure: no history file holds the content, ``verify`` is
clean (but for what every retention base meets with an exported head, ``unverifiable``), and
redacting again appends no second event, while every other message stays.

Two methods, as in ``test_compaction_crash``: a child process SIGKILLed at random moments of a
slowed-down redaction (what really happens), and a deterministic sweep that stops a real
redaction just before and just after each file-system step (rename into place, deletion).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from journal import Journal, Session
from journal.core.events import MessageRedacted
from tests.backends.files.test_compaction import TINY
from tests.crash.test_compaction_crash import Crash, count_steps
from tests.engine.test_message_events import (
    SID,
    Spread,
    history_holders,
    holders,
    spread_everywhere,
)
from tests.helpers_compaction import copy_root, session_dir, snapshot_names
from tests.helpers_proc import BARRIER_TIMEOUT

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0  # only turns a hang into a failure
PAUSE = 0.03  # seconds the killed child sleeps before each file step, so kills land mid-erasure


def drop_snapshots(root: Path) -> None:
    """Delete the session's snapshots (caches: the history reads the same without them)."""
    for name in snapshot_names(root, SID):
        (session_dir(root, SID) / name).unlink()


def only_in_the_base(root: Path) -> Spread:
    """A session whose secret message lives only in the retention base (its lines folded)."""
    marker = "BASE-ONLY-SECRET"
    with Journal(root, snapshot_every=0, snapshot_bytes=0, retention=TINY) as journal:
        journal.create(SID)
        journal.add_message(SID, "user", "other 1")
        secret = journal.add_message(SID, "user", f"{marker} v0")
        journal.edit_message(SID, secret.id, f"{marker} v1")
        journal.add_message(SID, "user", "other 2")
        journal.compact(SID, prune=True)
    with Journal(root) as journal:
        journal.add_message(SID, "user", "other 3")
        head = journal.head(SID)
    drop_snapshots(root)
    assert {Path(name).name for name in holders(root, marker)} == {"base.snap"}
    return Spread(secret.id, marker, ["other 1", "other 2", "other 3"], head)


def everywhere(root: Path) -> Spread:
    spread = spread_everywhere(root)
    drop_snapshots(root)
    return spread


LAYOUTS: dict[str, Callable[[Path], Spread]] = {
    "everywhere": everywhere,
    "everywhere-with-snapshots": spread_everywhere,
    "only-in-the-base": only_in_the_base,
}


class Before(NamedTuple):
    """What a fresh Journal reads of the prepared session, and where every other content is."""

    state: Session
    kept: dict[str, set[str]]


def read_before(root: Path, spread: Spread) -> Before:
    with Journal(root) as fresh:
        state = fresh.get(SID)
    return Before(state, {text: history_holders(root, text) for text in spread.others})


def stored_history(root: Path, text: str) -> set[str]:
    """The files ``verify`` reads as history (logs, archive, base) that hold ``text``."""
    return {name for name in history_holders(root, text) if "quarantine" not in Path(name).parts}


def check_interrupted(root: Path, spread: Spread, before: Before, where: str) -> None:
    """The checks after a redaction stopped at ``where`` (see the module docstring)."""
    with Journal(root) as fresh:
        state = fresh.get(SID)
        assert state == fresh.replay(SID), where
        redactions = [e for e in fresh.events(SID) if isinstance(e, MessageRedacted)]
        report = fresh.verify(anchors=[spread.head])
    assert len(redactions) <= 1, where
    shown = {m.id: m for m in state.messages}
    secret = shown[spread.message_id]
    if redactions:
        assert (secret.content, secret.redacted) == ("", True), where
        assert state.version == spread.head.seq + 1, where
        # Decided before the event was written: the reads above finished the erasure.
        assert not stored_history(root, spread.token), where
    else:
        # Killed before the event was written: nothing changed at all.
        assert state == before.state, where
    expected = [m.content for m in before.state.messages if m.id != spread.message_id]
    assert [m.content for m in state.messages if m.id != spread.message_id] == expected, where
    kinds = {p.kind for p in report.problems}
    assert kinds <= {"unverifiable"}, f"{where}: {[str(p) for p in report.problems]}"


def check_redacted_again(root: Path, spread: Spread, before: Before, where: str) -> None:
    """Redact again: no trace of the content, every other content kept, one event, verify clean."""
    with Journal(root) as journal:
        returned = journal.redact_message(SID, spread.message_id, reason="finish", actor="parent")
        state = journal.get(SID)
        assert (returned.id, returned.content, returned.redacted) == (spread.message_id, "", True), where
        redactions = [e for e in journal.events(SID) if isinstance(e, MessageRedacted)]
    assert len(redactions) == 1, where
    assert state.version == spread.head.seq + 1, where
    assert holders(root, spread.token) == set(), where
    assert {text: history_holders(root, text) for text in spread.others} == before.kept, where
    with Journal(root) as fresh:
        assert fresh.get(SID) == state == fresh.replay(SID), where
        report = fresh.verify(anchors=[spread.head])
        assert {p.kind for p in report.problems} <= {"unverifiable"}, f"{where}: {report.problems}"
        assert fresh.add_message(SID, "user", "after").seq == state.version + 1, where
    secret = next(m for m in state.messages if m.id == spread.message_id)
    assert (secret.content, secret.redacted) == ("", True), where
    assert [m.content for m in state.messages if m.id != spread.message_id] == [
        m.content for m in before.state.messages if m.id != spread.message_id
    ], where


# -- every step, deterministically -----------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        "everywhere",
        "everywhere-with-snapshots",
        "only-in-the-base",
    ],
)
def test_redaction_stopped_at_each_step_is_finished_by_redacting_again(tmp_path: Path, layout: str) -> None:
    # Oracle: check_interrupted and check_redacted_again. The steps are counted on a full
    # redaction of the same files (not assumed), so the sweep follows the code if steps are
    # added or reordered; each is stopped just before it (its temporary file left behind, as
    # by a kill) and just after it.
    source = tmp_path / "source"
    spread = LAYOUTS[layout](source)
    before = read_before(source, spread)
    with pytest.MonkeyPatch.context() as monkeypatch:
        root = copy_root(source, tmp_path / "count")
        steps = count_steps(monkeypatch, None, False)
        with Journal(root) as journal:
            journal.redact_message(SID, spread.message_id, reason="count")
        total = steps()
    assert total >= 2
    for k in range(1, total + 1):
        for after in (False, True):
            where = f"{layout}: {'after' if after else 'before'} step {k} of {total}"
            root = copy_root(source, tmp_path / f"{k}-{after}")
            with pytest.MonkeyPatch.context() as monkeypatch:
                count_steps(monkeypatch, k, after)
                with Journal(root) as journal, pytest.raises(Crash):
                    journal.redact_message(SID, spread.message_id, reason="stopped", actor="child")
            check_interrupted(root, spread, before, where)
            check_redacted_again(root, spread, before, where)


# -- real SIGKILL ----------------------------------------------------------------------------


def slow_redact_worker(root: str, message_id: str, progress: str, start: Barrier) -> None:
    """Redact the message, sleeping before each file step; each step started adds a byte to
    ``progress`` first, so the parent knows how far the erasure got when it killed us."""
    real_replace, real_unlink = os.replace, Path.unlink
    fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def step() -> None:
        os.write(fd, b".")
        time.sleep(PAUSE)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        step()
        real_replace(src, dst, **kwargs)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        step()
        real_unlink(self, missing_ok=missing_ok)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(Path, "unlink", unlink)
        journal = Journal(root)
        journal.get(SID)
        start.wait(BARRIER_TIMEOUT)
        journal.redact_message(SID, message_id, reason="killed", actor="child")
        os.write(fd, b"done")
        time.sleep(JOIN_TIMEOUT)  # wait to be killed, so every round ends the same way


def test_sigkill_during_redaction_never_leaves_more_than_unerased_lines(
    tmp_path: Path, spawned: list[BaseProcess]
) -> None:
    # Oracle: check_interrupted after each kill, then check_redacted_again. Each round starts
    # from a copy of the same prepared session (content in the retention base, a segment, the
    # log, the quarantine, leftovers; no snapshot: the sweep above covers that case)
    # and kills the redacting child at a random moment: before the event is written, between
    # file steps, or after it finished.
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    source = tmp_path / "source"
    spread = everywhere(source)
    before = read_before(source, spread)
    with pytest.MonkeyPatch.context() as monkeypatch:
        counted = copy_root(source, tmp_path / "count")
        steps = count_steps(monkeypatch, None, False)
        with Journal(counted) as journal:
            journal.redact_message(SID, spread.message_id, reason="count")
        total = steps()
    rounds = 8
    reached = []
    for r in range(rounds):
        root = copy_root(source, tmp_path / f"round-{r}")
        progress = tmp_path / f"progress-{r}"
        start = CTX.Barrier(2)
        child = CTX.Process(
            target=slow_redact_worker, args=(str(root), spread.message_id, str(progress), start), daemon=True
        )
        child.start()
        spawned.append(child)
        start.wait(BARRIER_TIMEOUT)
        # Spread over the whole erasure (total steps of PAUSE each), a little before and after.
        time.sleep(rng.uniform(0, PAUSE * (total + 2)))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(JOIN_TIMEOUT)
        assert child.exitcode == -signal.SIGKILL, f"seed {seed}: the child failed: {child.exitcode}"
        done = progress.read_bytes() if progress.exists() else b""
        reached.append(-1 if done.endswith(b"done") else len(done))
        where = f"seed {seed}, round {r}, killed after {done.count(b'.')} of {total} steps"
        check_interrupted(root, spread, before, where)
        check_redacted_again(root, spread, before, where)
    # Most kills must land inside the erasure, or the test proved little.
    assert any(0 < n < total for n in reached), f"seed {seed}: kills at {reached} of {total} steps"
