"""What survives a power cut: every disk state an operation can leave, opened by a fresh Journal.

Method (see ``tests/crash/powerloss.py``): record every file-system call an operation makes
on a real journal root, then build every tree the disk could hold had the power failed after
any call (un-fsynced data dropped or torn, folder entries not yet fsynced missing, in any
order), write each into a fresh folder and open a fresh ``Journal`` on it.

The oracle, per operation, is what ``docs/guarantees.md`` promises:

* appends: every append whose policy promised durability before the cut is there
  (``fsync="always"``: each one that returned; ``"interval"``: each one the flusher fsynced;
  ``"never"``: none), and what is there is a prefix of the final history, state and events;
  with ``"always"`` ``verify`` is clean, with the other policies damage past the promised
  prefix may be reported (a located ``CorruptLogError``), and ``repair`` then leaves a clean
  prefix that still holds every promised append;
* create, delete, snapshot, pruning (with retention, and ``archive_after``), repair and
  redaction: every session reads as it did before the operation or as it did after it,
  after it once the call returned; ``verify`` is clean, except an interrupted repair that
  never reached its commit point (the old damage, which repairing again fixes);
* repair never loses a byte: each file of the damaged session is in place, or whole in
  quarantine, or (the active log) cut with the cut bytes in quarantine.

Multi-file changes (delete, the archive case of repair, redaction) decide by one commit point
and are finished by the next reader or writer (``journal/intent.py``), so for them too every
state reads as before or after.

Each operation leaves 10 to 110 distinct states (the count moves a little between runs: event
times change line lengths, so sector boundaries fall elsewhere); up to ``LIMIT`` are checked,
so today all of them. Failures are collected over all states of a test and reported together,
each with the call after which the power failed and which candidate state it was.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from journal import CorruptLogError, Journal, Session, SessionNotFoundError
from journal.backends.files.fsio import Folder
from journal.backends.files.layout import Layout
from journal.backends.files.storage import FileStorage
from journal.core.events import Event
from journal.core.reports import VerifyReport
from tests.crash.powerloss import CrashState, Recorder, Tree, materialize, sample

SIDS = ("alpha", "beta", "gamma")
NEW = "delta"
QUIET: dict[str, Any] = {"snapshot_every": 0, "snapshot_bytes": 0}  # no automatic snapshots
LIMIT = 120  # crash states checked per test at most (chosen by ``sample``, the same every run)
TINY = timedelta(microseconds=1)  # a retention under which every archived event is "old"


def secret_of(sid: str) -> str:
    """The content of the message that the redaction tests erase from ``sid``."""
    return f"SECRET-d41d8cd9 of {sid}"


# -- building a journal with some history -----------------------------------------------------


def build_history(root: Path) -> None:
    """alpha: a snapshot and messages after it; beta: an archive segment, a snapshot and
    messages after them; gamma: a plain log. Everything is durable before recording starts."""
    with Journal(root, **QUIET) as j:
        for sid in SIDS:
            j.create(sid)
        for i in range(3):
            j.add_message("alpha", "user", f"alpha {i}")
        j.add_message("alpha", "assistant", secret_of("alpha"))
        j.compact("alpha")
        j.add_message("alpha", "user", "alpha after the snapshot")
        j.add_message("beta", "user", secret_of("beta"))
        for i in range(3):
            j.add_message("beta", "assistant", f"beta {i}")
        j.compact("beta", prune=True)
        j.add_message("beta", "user", "beta after the archive")
        j.add_message("beta", "user", "beta again")
        for i in range(3):
            j.add_message("gamma", "user", f"gamma {i}")


def folder_of(root: Path, sid: str) -> str:
    """The session folder's path relative to the root (named by the library's own layout)."""
    return str(Layout(root).session_dir(sid).relative_to(Layout(root).root))


# -- looking at a state -----------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """A CorruptLogError, located relative to the root (the same in every copy of a state)."""

    file: str
    line: int
    offset: int


Outcome = Session | tuple[Event, ...] | Damage | None  # None: no such session


class Seen(NamedTuple):
    """What a fresh Journal reads of one session: ``get()`` and ``events()``."""

    state: Outcome
    events: Outcome


def attempt(call: Callable[[], Outcome], root: Path) -> Outcome:
    try:
        return call()
    except SessionNotFoundError:
        return None
    except CorruptLogError as exc:
        error = exc
    path = Path(error.path)
    # "Located": the error names a file of this journal, with a line and an offset.
    assert path.is_relative_to(root.absolute()), f"CorruptLogError outside the root: {error}"
    return Damage(str(path.relative_to(root.absolute())), error.line, error.offset)


def look(j: Journal, sid: str, root: Path) -> Seen:
    state = attempt(lambda: j.get(sid), root)
    events = attempt(lambda: tuple(j.events(sid)), root)
    if isinstance(state, Session) and isinstance(events, tuple):
        # A snapshot that does not describe the log would show here: get() trusts snapshots.
        assert state == j.replay(sid), f"{sid}: get() and replay() disagree"
    return Seen(state, events)


def examine(root: Path, sids: tuple[str, ...], **options: Any) -> tuple[dict[str, Seen], VerifyReport]:
    """Reads first (as a restarted service would), then ``verify`` (which may cut a torn tail)."""
    with Journal(root, **QUIET, **options) as j:
        seen = {sid: look(j, sid, root) for sid in sids}
        return seen, j.verify()


def show(seen: Seen) -> str:
    def one(outcome: Outcome) -> str:
        if isinstance(outcome, Session):
            return f"version {outcome.version} ({len(outcome.messages)} messages)"
        if isinstance(outcome, tuple):
            return f"{len(outcome)} events"
        return repr(outcome)

    return f"get: {one(seen.state)}, events: {one(seen.events)}"


def damaged(report: VerifyReport, sids: tuple[str, ...], root: Path) -> list[str]:
    """The ids of the sessions ``report`` names: verify names a session whose id cannot be
    read (its first line lost) by its folder, and repair takes the id."""
    by_folder = {Layout(root).session_dir(sid).name: sid for sid in sids}
    return sorted({by_folder.get(p.session_id, p.session_id) for p in report.problems})


def problems_of(report: VerifyReport) -> list[str]:
    return [f"{p.kind} in {Path(p.file).name}: {p.message}" for p in report.problems]


# -- recording and checking every crash state -------------------------------------------------


@contextmanager
def journal_for(root: Path, **options: Any) -> Iterator[Journal]:
    """A Journal that has read every session already, so the recording holds only the
    operation (its cached descriptors are followed by the recorder all the same)."""
    with Journal(root, **QUIET, **options) as j:
        for sid in SIDS:
            attempt(partial(j.get, sid), root)  # a damaged session (repair's tests) reads later
        yield j


def check_all(
    rec: Recorder,
    tmp_path: Path,
    check: Callable[[CrashState, Path], None],
    *,
    least: int,
) -> None:
    """Run ``check`` on each (sampled) crash state in a fresh folder; report every failure.

    ``least``: the operation must produce at least this many distinct states, or the test
    would prove little (a recorder that saw nothing produces one).
    """
    states = rec.crash_states()
    assert len(states) >= least, f"only {len(states)} crash states: the recorder saw too little"
    chosen = sample(states, LIMIT)
    failures = []
    for i, state in enumerate(chosen):
        copy = materialize(state.tree, tmp_path / f"cut-{i:03d}")
        try:
            check(state, copy)
        except Exception as exc:  # every kind of failure is reported with its state
            failures.append(f"{state}: {type(exc).__name__}: {exc}")
        shutil.rmtree(copy)
    print(f"{len(chosen)} of {len(states)} distinct crash states checked")  # shown with -s
    assert not failures, f"{len(failures)} of {len(chosen)} crash states fail:\n" + "\n".join(failures[:6])


# -- appends under each fsync policy ----------------------------------------------------------


class Final(NamedTuple):
    """The history after the operation: each session's events and its state after each."""

    events: dict[str, tuple[Event, ...]]
    states: dict[str, list[Session | None]]  # index n: the state after n events (0: none)


def final_history(root: Path, sids: tuple[str, ...]) -> Final:
    events: dict[str, tuple[Event, ...]] = {}
    states: dict[str, list[Session | None]] = {}
    with Journal(root, **QUIET) as j:
        for sid in sids:
            events[sid] = tuple(j.events(sid))
            states[sid] = [None] + [j.replay(sid, at=e.seq) for e in events[sid]]
    return Final(events, states)


def versions(j: Journal, sids: tuple[str, ...]) -> dict[str, int]:
    return {sid: j.get(sid).version if j.exists(sid) else 0 for sid in sids}


def check_prefix(seen: Seen, sid: str, final: Final, promised: int) -> str | None:
    """None if ``seen`` is the state after the first n >= ``promised`` events; else why not."""
    events, state = seen.events, seen.state
    if state is None and events is None:
        n = 0
    elif isinstance(events, tuple):
        n = len(events)
        if events != final.events[sid][:n]:
            return f"{sid}: events are not a prefix of the history"
    else:
        return f"{sid}: unreadable ({show(seen)})"
    if n < promised:
        return f"{sid}: {n} events, but {promised} were promised (acknowledged appends lost)"
    if state != final.states[sid][n]:
        return f"{sid}: get() is not the state after event {n}"
    return None


def append_workload(j: Journal, rec: Recorder, fsync: str, sids: tuple[str, ...]) -> None:
    """Appends of every shape (single, grouped, to a new session), each followed by the mark
    of what the policy now promises: always, every returned append; interval, what the
    explicit flush fsynced (the background flusher is off); never, nothing."""
    storage = j._storage
    assert isinstance(storage, FileStorage)

    def returned() -> None:
        if fsync == "always":
            rec.mark(versions(j, sids))

    def flush() -> None:
        written = versions(j, sids)  # flush() fsyncs everything written before it began
        storage.flush()
        if fsync == "interval":
            rec.mark(written)

    j.add_message("alpha", "user", "one")
    returned()
    j.add_messages("beta", [{"role": "user", "content": "two"}, {"role": "assistant", "content": "three"}])
    returned()
    flush()
    j.add_message("alpha", "user", "four")
    returned()
    j.create(NEW)
    returned()
    j.add_message(NEW, "user", "five")
    returned()
    flush()
    j.add_message("alpha", "user", "six")
    returned()
    j.add_message("alpha", "user", "seven")
    returned()


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_append_survives_power_loss_as_its_fsync_policy_promises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    root = tmp_path / "journal"
    build_history(root)
    sids = (*SIDS, NEW)
    with journal_for(root, fsync=fsync) as j:
        before = versions(j, sids)
        # The flusher thread would fsync at moments of its own choosing: the test calls
        # flush() itself instead, so every run records the same calls.
        monkeypatch.setattr(j._storage, "_flush_loop", lambda: None)
        with Recorder(root) as rec:
            append_workload(j, rec, fsync, sids)
    final = final_history(root, sids)
    repaired: Counter[str] = Counter()  # what verify reported in the states repair fixed

    def check(state: CrashState, copy: Path) -> None:
        promised = state.marks[-1] if state.marks else before
        assert isinstance(promised, dict)
        seen, report = examine(copy, sids)
        why = [w for sid in sids if (w := check_prefix(seen[sid], sid, final, promised[sid])) is not None]
        if fsync == "always":
            assert not why, why
            assert report.ok, problems_of(report)
            return
        if not why and report.ok:
            return
        # Past the promised prefix anything may be damaged (a write lost before a later one
        # reached the disk leaves a hole of zeros): repair must leave a clean prefix that
        # still holds every promised append.
        repaired.update(f"{p.kind} in {Path(p.file).name}" for p in report.problems)
        with Journal(copy, **QUIET) as fixer:
            for sid in damaged(report, sids, copy):
                fixer.repair(sid)
        seen, report = examine(copy, sids)
        why = [w for sid in sids if (w := check_prefix(seen[sid], sid, final, promised[sid])) is not None]
        assert not why, f"after repair: {why}"
        assert report.ok, f"after repair: {problems_of(report)}"

    check_all(rec, tmp_path, check, least=10)
    print(f"fsync={fsync}: verify reported, and repair fixed: {dict(repaired)}")  # shown with -s


# -- operations that change one session: the old state or the new one -------------------------

Check = Callable[[CrashState, Path, dict[str, Seen], VerifyReport], None]
Settle = Callable[[CrashState, Path, dict[str, Seen], VerifyReport], None]


def old_or_new(
    old: Mapping[str, Seen],
    new: Mapping[str, Seen],
    *,
    invariant: Check | None = None,
    settle: Settle | None = None,
) -> Callable[[CrashState, Path], None]:
    """Every session reads as before or as after the operation (after, once it returned),
    and ``verify`` is clean.

    ``invariant`` is checked on every state. A state that is not clean passes only through
    ``settle``, which raises unless the documentation allows the state as an interrupted
    operation, then runs the operation again on the copy (the copy must then read as after
    it, and verify clean).
    """
    sids = tuple(old)

    def check(state: CrashState, copy: Path) -> None:
        seen, report = examine(copy, sids)
        if invariant is not None:
            invariant(state, copy, seen, report)
        done = "returned" in state.marks
        off = [sid for sid in sids if not (seen[sid] == new[sid] or (seen[sid] == old[sid] and not done))]
        if not off and report.ok:
            return
        if settle is None:
            expected = "the new state" if done else "the old or the new state"
            assert not off, [f"{sid}: {show(seen[sid])}, not {expected} ({show(new[sid])})" for sid in off]
            raise AssertionError(problems_of(report))
        settle(state, copy, seen, report)
        again, report = examine(copy, sids)
        assert again == dict(new), [f"{sid}: {show(again[sid])} after running it again" for sid in sids]
        assert report.ok, f"after running it again: {problems_of(report)}"

    return check


def record_one(
    tmp_path: Path, operation: Callable[[Journal], object], sids: tuple[str, ...] = SIDS, **options: Any
) -> tuple[Recorder, dict[str, Seen], dict[str, Seen]]:
    """Run ``operation`` on a journal with history, recorded; the views before and after."""
    root = tmp_path / "journal"
    if not root.exists():
        build_history(root)
    with journal_for(root, **options) as j:
        old = {sid: look(j, sid, root) for sid in sids}
        with Recorder(root) as rec:
            operation(j)
            rec.mark("returned")
        new = {sid: look(j, sid, root) for sid in sids}
    return rec, old, new


def test_create_is_absent_or_complete_and_durable_once_returned(tmp_path: Path) -> None:
    rec, old, new = record_one(tmp_path, lambda j: j.create(NEW), (*SIDS, NEW))
    assert old[NEW] == Seen(None, None)
    assert isinstance(new[NEW].state, Session)
    check_all(rec, tmp_path, old_or_new(old, new), least=5)


def test_delete_is_all_or_nothing_and_durable_once_returned(tmp_path: Path) -> None:
    # beta has everything a session can have: an archive, a snapshot, an active log. Before
    # the unlink of its log (the commit point) it reads as it was; after it, as deleted, and
    # the next writer (here verify) removes the rest of the folder.
    rec, old, new = record_one(tmp_path, lambda j: j.delete("beta"))
    assert new["beta"] == Seen(None, None)
    check_all(rec, tmp_path, old_or_new(old, new), least=5)


def test_snapshot_never_changes_what_is_read(tmp_path: Path) -> None:
    rec, old, new = record_one(tmp_path, lambda j: j.compact("gamma"))
    assert old == new
    check_all(rec, tmp_path, old_or_new(old, new), least=5)


@pytest.mark.parametrize("retention", [None, TINY], ids=["prune", "prune-and-retention"])
def test_pruning_reads_the_same_history_whatever_step_reached_the_disk(
    tmp_path: Path, retention: timedelta | None
) -> None:
    # beta already has a segment: a second one is added (and, with a retention, both are
    # folded into the base, which moves where events() starts: the old or the new view).
    rec, old, new = record_one(tmp_path, lambda j: j.compact("beta", prune=True), retention=retention)
    assert old["beta"].state == new["beta"].state
    check_all(rec, tmp_path, old_or_new(old, new), least=10)


def test_auto_prune_by_archive_after_keeps_the_append_that_triggered_it(tmp_path: Path) -> None:
    # The append that crosses archive_after pays for a pruning (segment, snapshot, new active
    # log): the append returned, so it must be there whatever the pruning had reached.
    rec, old, new = record_one(tmp_path, lambda j: j.add_message("alpha", "user", "over"), archive_after=3)
    archive = rec.root / folder_of(rec.root, "alpha") / "archive"
    assert len(list(archive.iterdir())) == 1, "no pruning happened"
    check_all(rec, tmp_path, old_or_new(old, new), least=10)


# -- repair -----------------------------------------------------------------------------------


def damage_line(root: Path, sid: str) -> None:
    """Flip one byte inside the content of the active log's second line (an edited event)."""
    path = root / folder_of(root, sid) / "events.jsonl"
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    at = data.index(b'"content":', second) + 12
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def damage_segment(root: Path, sid: str) -> None:
    """Flip one byte inside the content of the archive segment's third line."""
    (segment,) = (root / folder_of(root, sid) / "archive").glob("*.jsonl.gz")
    data = bytearray(gzip.decompress(segment.read_bytes()))
    third = data.index(b"\n", data.index(b"\n") + 1) + 1
    at = data.index(b'"content":', third) + 12
    data[at] ^= 0x01
    segment.write_bytes(gzip.compress(bytes(data), mtime=0))


def nothing_lost(before: Tree, folder: str) -> Check:
    """Repair's promise: every byte of the damaged session's files is still somewhere: in
    place, whole in quarantine, or (the active log) cut with the cut bytes in quarantine."""
    originals = {p: d for p, d in before.items() if p.startswith(folder + "/") and d is not None}

    def check(state: CrashState, copy: Path, seen: dict[str, Seen], report: VerifyReport) -> None:
        tree = state.tree
        moved = [d for p, d in tree.items() if p.startswith(folder + "/quarantine/") and d is not None]
        for path, data in originals.items():
            now = tree.get(path)
            if now == data or data in moved:
                continue
            if isinstance(now, bytes) and data.startswith(now) and data[len(now) :] in moved:
                continue
            raise AssertionError(f"bytes of {path} are neither in place nor in quarantine")

    return check


def finished_by_repairing_again(sid: str, old: Mapping[str, Seen], new: Mapping[str, Seen]) -> Settle:
    """The damaged state (before the repair began) is repaired by repairing again; no other
    state may be left: the archive case switches through an intent the next writer finishes."""

    def settle(state: CrashState, copy: Path, seen: dict[str, Seen], report: VerifyReport) -> None:
        done = "returned" in state.marks
        assert not done, f"repair returned, but {sid} reads {show(seen[sid])}: {problems_of(report)}"
        assert seen[sid] != new[sid], f"repaired, but verify reports {problems_of(report)}"
        with Journal(copy, **QUIET) as j:
            j.repair(sid)
        assert seen[sid] == old[sid], f"{sid} reads {show(seen[sid])}: neither damaged nor repaired"
        # still the damaged state, as before the repair began: documented

    return settle


def test_repair_of_the_active_log_is_all_or_nothing_and_loses_no_byte(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    build_history(root)
    damage_line(root, "gamma")
    rec, old, new = record_one(tmp_path, lambda j: j.repair("gamma"))
    assert isinstance(old["gamma"].state, Damage)
    assert isinstance(new["gamma"].state, Session)
    lost = nothing_lost(rec.crash_states()[0].tree, folder_of(root, "gamma"))
    check = old_or_new(old, new, invariant=lost, settle=finished_by_repairing_again("gamma", old, new))
    check_all(rec, tmp_path, check, least=5)


def test_repair_of_the_archive_is_all_or_nothing_and_loses_no_byte(tmp_path: Path) -> None:
    root = tmp_path / "journal"
    build_history(root)
    damage_segment(root, "beta")
    rec, old, new = record_one(tmp_path, lambda j: j.repair("beta"))
    assert isinstance(old["beta"].events, Damage)
    assert isinstance(new["beta"].events, tuple)
    lost = nothing_lost(rec.crash_states()[0].tree, folder_of(root, "beta"))
    check = old_or_new(old, new, invariant=lost, settle=finished_by_repairing_again("beta", old, new))
    check_all(rec, tmp_path, check, least=5)


# -- redaction ---------------------------------------------------------------------------------


def holders(tree: Tree, secret: str) -> list[str]:
    """Files holding ``secret`` (archive segments gunzipped; a torn one is skipped)."""
    found = []
    for path, data in tree.items():
        if data is None:
            continue
        if path.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                continue
        if secret.encode() in data:
            found.append(path)
    return found


def erased_once_returned(secret: str) -> Check:
    def check(state: CrashState, copy: Path, seen: dict[str, Seen], report: VerifyReport) -> None:
        if "returned" in state.marks:
            left = holders(state.tree, secret)
            assert not left, f"the redaction returned, but {left} hold the content"

    return check


@pytest.mark.parametrize("sid", ["alpha", "beta"], ids=["in-the-active-log", "in-the-archive"])
def test_redaction_erases_durably_or_is_finished_by_the_next_writer(tmp_path: Path, sid: str) -> None:
    # alpha: the message is in the active log and a snapshot; beta: in an archive segment
    # and a snapshot, the active log only gets the redaction event. Once the event is on
    # disk the erasure's intent is too: the next cold read or writer finishes it, so every
    # state reads as before or after, and verify (a writer) leaves no file holding it.
    root = tmp_path / "journal"
    build_history(root)
    with Journal(root, **QUIET) as j:
        (secret,) = [m for m in j.get(sid).messages if m.content == secret_of(sid)]
    rec, old, new = record_one(tmp_path, lambda j: j.redact_message(sid, secret.id, reason="request"))
    assert holders(rec.crash_states()[0].tree, secret.content), "the content was never on disk"
    check = old_or_new(old, new, invariant=erased_once_returned(secret.content))
    check_all(rec, tmp_path, check, least=10)


# -- the model itself --------------------------------------------------------------------------


def test_the_model_loses_what_was_not_fsynced_and_keeps_what_was(tmp_path: Path) -> None:
    # The oracle's own oracle: a file written without any fsync may vanish or come back
    # empty; one put in place by write_atomic is there, whole, once the call returned.
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as rec:
        fd = os.open(root / "plain", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x" * 1000)
        os.close(fd)
        rec.mark("plain written")
        top = Folder.root(root, create=False)
        assert top is not None
        with top:
            top.write_atomic("atomic", b"y" * 1000)
        rec.mark("returned")
    states = rec.crash_states()
    plain = {s.tree.get("plain") for s in states}
    assert {None, b"", b"x" * 1000, b"x" * 512} <= plain
    assert b"\0" * 1000 in plain  # the size reached the disk, the data did not
    after = [s for s in states if "returned" in s.marks]
    assert after
    assert all(s.tree.get("atomic") == b"y" * 1000 for s in after)
    assert {s.tree.get("atomic") for s in states} == {None, b"y" * 1000}


def test_the_model_follows_pathlib_shutil_renames_and_hard_links(tmp_path: Path) -> None:
    # Path.unlink and shutil.rmtree (descriptor-relative unlink and rmdir) reach os at call
    # time and are recorded; removals stay undoable until their folder is fsynced; a hard
    # link and a renamed name show the data fsynced through the first name.
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_bytes(b"f")
    (root / "gone").write_bytes(b"g")
    with Recorder(root) as rec:
        (root / "gone").unlink()
        shutil.rmtree(root / "sub")
        fd = os.open(root / "a", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.fsync(fd)
        os.close(fd)
        os.link(root / "a", root / "b")
        os.rename(root / "a", root / "c")
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        rec.mark("synced")
    assert [step.call for step in rec.steps if step.call.startswith("unlink")] == [
        "unlink gone",
        "unlink sub/f",
        "unlink sub",
    ]
    states = rec.crash_states()
    assert any("gone" in s.tree for s in states)
    assert any(s.tree.get("sub") is None and "sub" in s.tree and "c" in s.tree for s in states)
    assert any(s.tree.get("a") == b"" for s in states)  # created, its data not yet durable
    final = [dict(s.tree) for s in states if "synced" in s.marks]
    assert final == [{"b": b"data", "c": b"data"}]


def test_the_model_follows_descriptor_relative_calls(tmp_path: Path) -> None:
    # The journal reaches every file through held folder descriptors (journal/fsio.py):
    # openat, mkdirat, renameat, linkat and unlinkat relative to them, and fsync of them. A
    # call the model placed outside the root would go unrecorded, and the recorder's own
    # check (the model's tree equals the real one at exit) would fail. The descriptors
    # include one opened before recording and a dup the recorder never saw opened.
    root = tmp_path / "root"
    (root / "old" / "deep").mkdir(parents=True)
    (root / "old" / "deep" / "f").write_bytes(b"f")
    (root / "gone").write_bytes(b"g")
    top = Folder.root(root, create=False)
    assert top is not None
    with top, Recorder(root) as rec:
        sub = top.child("sub", create=True)
        assert sub is not None
        sub.write_atomic("a", b"data")
        assert not sub.write_atomic("a", b"other", replace=False)  # linkat refuses: a stays
        assert sub.write_atomic("b", b"new", replace=False)
        unseen = Folder(os.dup(top.fd), root)  # never opened through os.open
        with unseen:
            sub.rename("a", unseen, "c")
            unseen.unlink("gone")
            unseen.remove_tree("old")
            unseen.fsync()
        sub.fsync()
        rec.mark("synced")
    calls = [step.call for step in rec.steps]
    assert "mkdir sub" in calls
    assert "rename sub/a -> c" in calls
    assert [c for c in calls if c.startswith("unlink ") and "tmp" not in c] == [
        "unlink gone",
        "unlink old/deep/f",
        "unlink old/deep",
        "unlink old",
    ]
    states = rec.crash_states()
    final = [dict(s.tree) for s in states if "synced" in s.marks]
    assert final == [{"c": b"data", "sub": None, "sub/b": b"new"}]
    # Before the folders were fsynced the removals and the rename could each be undone.
    assert any("gone" in s.tree for s in states)
    assert any("sub/a" in s.tree and "c" not in s.tree for s in states)
