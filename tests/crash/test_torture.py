"""Torture on real files: random byte damage, hostile lines, snapshots that outlive their log.

Part 1 (the sweeps) builds one real journal per module: several sessions with non-ASCII,
U+2028, U+0085 and U+000B content, settings changes and a clear, snapshots every few events,
and one session pruned twice (two archive segments). Each case copies it into a fresh root,
damages one file at a random position (a flipped byte, a cut, a deleted, duplicated or swapped
line; archive segments are decompressed, damaged and recompressed, or flipped raw) and then
checks, with the pristine copy as the oracle:

* reads (``get``, ``events``, ``replay``) either return exactly what the pristine journal
  returned at that version or, for the damaged session only, raise ``CorruptLogError``
  (``SessionNotFoundError`` once no complete line is left, unless a snapshot shows that
  events were stored); never a wrong state, never another
  error, and bystander sessions read in full;
* ``verify`` with the heads exported before the damage reports the damaged session, and only
  it, at the first line that differs from the pristine history (or ``truncated`` when the
  log only lost its end), with that line's file, number and byte offset;
* ``repair`` keeps exactly the pristine lines before that point, moves every other byte into
  the quarantine (nothing is lost: the quarantined bytes are exactly what left each file),
  after which ``verify`` is clean and the session takes a new append.

Positions come from a seeded ``random.Random``; every failure message names the seed and the
damage, and ``JOURNAL_TORTURE_SEED=<seed>`` replays a run. ``JOURNAL_SOAK=1`` multiplies the
sample counts by 10 (and picks a fresh seed unless one is given).

Part 2 plants hostile lines in the middle of a real log: every JSONTestSuite text, valid JSON
of the wrong shape (resealed with a correct hash, so that only the shape check can catch it),
a 20 MB line, 100k-deep nesting, invalid UTF-8; plus Unicode line separators that must
round-trip, and a snapshot copied onto a log that is shorter than it.

The tests at the end pin the bugs this file found, as regression tests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from journal import (
    Anchor,
    CorruptLogError,
    Event,
    Journal,
    Problem,
    RepairReport,
    Session,
    SessionNotFoundError,
    UnsupportedFormatError,
    VersionNotFoundError,
)
from tests.conftest import SOAK, shared_path

SCALE = 10 if SOAK else 1
_SEED_ENV = os.environ.get("JOURNAL_TORTURE_SEED")
_SNAPSHOT = re.compile(r"^snapshot-(\d{20})\.snap$")
SEED = int(_SEED_ENV) if _SEED_ENV else (random.SystemRandom().randrange(2**32) if SOAK else 20250301)

HASH_KEY = b',"hash":"'
LOG = "events.jsonl"
_SEQ = re.compile(rb'^\{"v":1,"seq":(\d+),')
_GZIP_ERRORS = (OSError, EOFError, zlib.error)

ALPHA = "alpha-\u00fc"  # plain log with snapshots
BETA = "beta"  # pruned twice: two archive segments, then an active log
GAMMA = "gamma \u2713"  # a bystander: never damaged
SESSIONS = (ALPHA, BETA, GAMMA)
TRICKY = 'h\u00e9llo \u2028 x\u0085y \u000b z \u2029 \U0001f600 "q" \\ \n\t end'


# -- the pristine journal (part 1) ------------------------------------------------------------


@dataclass(frozen=True)
class Pristine:
    """The undamaged journal and everything the oracle needs to know about it."""

    root: Path
    heads: dict[str, Anchor]
    states: dict[str, dict[int, Session]]  # sid -> seq -> state after that event
    events: dict[str, list[Event]]  # sid -> every event, in seq order
    folders: dict[str, str]  # sid -> its folder name
    stream: dict[str, list[bytes]]  # sid -> every stored line (no newline), archive first

    def folder(self, root: Path, sid: str) -> Path:
        return root / "sessions" / self.folders[sid]


def _history_files(folder: Path) -> list[Path]:
    """A session's files in history order: archive segments (name order is seq order), log."""
    return [*sorted((folder / "archive").glob("*.jsonl.gz")), folder / LOG]


def _plain(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _write_plain(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their newline) and the bytes after the last newline.

    Only 0x0A ends a line: ``bytes.splitlines`` would also split at 0x0D.
    """
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


def _seq_of(line: bytes) -> int:
    found = _SEQ.match(line)
    assert found is not None, f"not a journal line: {line[:60]!r}"
    return int(found[1])


def _stored_history(folder: Path) -> list[bytes]:
    """Every stored line of a session by seq, checking that overlapping copies agree."""
    by_seq: dict[int, bytes] = {}
    for path in _history_files(folder):
        if not path.exists():
            continue
        lines, tail = _split(_plain(path))
        assert tail == b"", f"{path} ends in {len(tail)} unterminated bytes"
        for line in lines:
            seq = _seq_of(line)
            assert by_seq.setdefault(seq, line) == line, f"{path}: two different lines of seq {seq}"
    assert sorted(by_seq) == list(range(1, len(by_seq) + 1)), f"seqs stored: {sorted(by_seq)}"
    return [by_seq[seq] for seq in sorted(by_seq)]


def _build(root: Path) -> None:
    with Journal(root, snapshot_every=4, fsync="never") as journal:
        for sid in SESSIONS:
            journal.create(sid, actor="setup")
        for i in range(5):
            journal.add_message(
                ALPHA, "user", f"{i}: {TRICKY}", metadata={"n": i, "\u2028": [None, 1.5]}, actor="al\u00efce"
            )
            journal.add_message(BETA, "assistant", f"b{i} \u2028\u0085", references=[{"doc": i}])
            if i == 2:
                journal.update_settings(ALPHA, {"model": "m-\u00e9", "t": 0.5}, remove=["absent"])
                journal.clear(BETA)
        journal.compact(BETA, prune=True)
        for i in range(4):
            journal.add_message(BETA, "user", f"after {i}: {TRICKY}")
        journal.update_settings(BETA, {"x": [1, {"y": None}], "\u0085": "\u000b"})
        journal.compact(BETA, prune=True)
        for i in range(3):
            journal.add_message(BETA, "user", f"tail {i}")
        journal.clear(ALPHA)
        journal.add_message(ALPHA, "user", "end \u2028")
        journal.update_settings(ALPHA, remove=["t"])
        journal.add_message(GAMMA, "user", "bystander \u0085")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("pristine") / "journal"
    _build(root)
    heads: dict[str, Anchor] = {}
    states: dict[str, dict[int, Session]] = {}
    events: dict[str, list[Event]] = {}
    with Journal(root) as journal:
        for sid in SESSIONS:
            heads[sid] = journal.head(sid)
            states[sid] = {seq: journal.replay(sid, at=seq) for seq in range(1, heads[sid].seq + 1)}
            events[sid] = list(journal.events(sid))
            assert states[sid][heads[sid].seq] == journal.get(sid)
        assert journal.verify().ok
    folders = {}
    for folder in (root / "sessions").iterdir():
        first = json.loads(_plain(_history_files(folder)[0]).split(b"\n", 1)[0])
        folders[first["data"]["session_id"]] = folder.name
    stream = {sid: _stored_history(root / "sessions" / folders[sid]) for sid in SESSIONS}
    built = Pristine(root, heads, states, events, folders, stream)
    # Oracle for the fixture itself: the layout the sweeps rely on is there.
    beta = built.folder(root, BETA)
    assert len(list((beta / "archive").glob("*.jsonl.gz"))) == 2
    assert len(_split((beta / LOG).read_bytes())[0]) >= 3
    for sid in (ALPHA, BETA):
        assert list(built.folder(root, sid).glob("snapshot-*.snap")), f"{sid} has no snapshot"
        assert len(stream[sid]) == heads[sid].seq
    return built


# -- damage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """One damage to one file: ``rel`` under the session folder, position in its plain bytes."""

    sid: str
    rel: str
    op: str  # flip, cut, delete, duplicate, swap; rawflip: a byte of the compressed file
    position: int
    mask: int

    def __str__(self) -> str:
        what = f"{self.op} ^ {self.mask:#04x}" if "flip" in self.op else self.op
        return f"{what} at byte {self.position} of {self.sid}/{self.rel}"


def _line_index(lines: list[bytes], position: int) -> int:
    """0-based index of the line (newline included) holding byte ``position``."""
    start = 0
    for index, line in enumerate(lines):
        start += len(line) + 1
        if position < start:
            return index
    return len(lines) - 1


def _damaged(data: bytes, damage: Damage) -> bytes:
    if damage.op in ("flip", "rawflip"):
        out = bytearray(data)
        out[damage.position] ^= damage.mask
        return bytes(out)
    if damage.op == "cut":
        return data[: damage.position]
    lines, tail = _split(data)
    assert tail == b""
    k = _line_index(lines, damage.position)
    if damage.op == "delete":
        del lines[k]
    elif damage.op == "duplicate":
        lines.insert(k + 1, lines[k])
    elif damage.op == "swap":
        k = min(k, len(lines) - 2)
        lines[k], lines[k + 1] = lines[k + 1], lines[k]
    else:
        raise AssertionError(damage.op)
    return b"".join(line + b"\n" for line in lines)


def _pick(rng: random.Random, pristine: Pristine, targets: list[tuple[str, str]], ops: list[str]) -> Damage:
    sid, rel = rng.choice(targets)
    path = pristine.folder(pristine.root, sid) / rel
    op = rng.choice(ops)
    data = path.read_bytes() if op == "rawflip" else _plain(path)
    if op in ("delete", "swap") and len(_split(data)[0]) < 2:
        op = "flip"
    return Damage(sid, rel, op, rng.randrange(len(data)), rng.randrange(1, 256))


class Elem(NamedTuple):
    """One line of a damaged history, where it sits; ``data`` None: not a line (undecodable)."""

    file: str
    line: int
    offset: int
    data: bytes | None


def _elements(folder: Path, pristine_lines: list[bytes]) -> list[Elem]:
    """The damaged session's history as a reader walks it: segments in order, then the log."""
    elems: list[Elem] = []
    for path in _history_files(folder)[:-1]:
        try:
            plain = gzip.decompress(path.read_bytes())
        except _GZIP_ERRORS:
            elems.append(Elem(str(path), 1, -1, None))  # small segments fail before any line
            continue
        lines, tail = _split(plain)
        offset = 0
        for number, line in enumerate(lines, 1):
            elems.append(Elem(str(path), number, offset, line))
            offset += len(line) + 1
        if tail:
            elems.append(Elem(str(path), len(lines) + 1, -1, None))  # a segment has no torn tail
    log = folder / LOG
    lines, tail = _split(log.read_bytes())
    offset = 0
    for number, line in enumerate(lines, 1):
        elems.append(Elem(str(log), number, offset, line))
        offset += len(line) + 1
    if tail:
        expected = pristine_lines[len(elems)] if len(elems) < len(pristine_lines) else None
        if tail == expected:
            elems.append(Elem(str(log), len(lines) + 1, offset, tail))  # only its newline is lost
        elif expected is None or not expected.startswith(tail):
            elems.append(Elem(str(log), len(lines) + 1, offset, None))  # not a torn write
        # else: a torn write (a prefix of the next line): not an event, cut by the next writer
    return elems


class Expect(NamedTuple):
    kept: int  # pristine lines before the first difference: what repair must keep
    where: tuple[Elem, ...]  # where verify must report (empty: nothing or only truncation)
    truncated: bool  # the log lost only its end: the anchor shows it


def _expect(elems: list[Elem], pristine_lines: list[bytes], op: str) -> Expect:
    i = 0
    while i < min(len(elems), len(pristine_lines)) and elems[i].data == pristine_lines[i]:
        i += 1
    if i == len(elems):
        return Expect(i, (), i < len(pristine_lines))
    # Swapped lines k, k+1: line k holds seq k+1 (maybe a gap), line k+1 the missing seq k.
    where = tuple(elems[i : i + 2]) if op == "swap" else (elems[i],)
    return Expect(i, where, False)


# -- the checks of one case --------------------------------------------------------------------


def _check_reads(
    journal: Journal, pristine: Pristine, damaged: str, refusals: tuple[type[Exception], ...]
) -> None:
    """Every read returns the pristine answer at its version; only reads of the damaged session
    may refuse instead, and only with one of ``refusals``."""
    for sid in SESSIONS:
        allowed = refusals if sid == damaged else ()
        final = pristine.heads[sid].seq
        for name, read in (("get", journal.get), ("replay", journal.replay)):
            try:
                state = read(sid)
            except allowed:
                continue
            assert state == pristine.states[sid][state.version], f"{name}({sid!r}): wrong state"
            assert sid == damaged or state.version == final, f"{name}({sid!r}) at {state.version}"
        for at in sorted({1, final // 2, final}):
            ended: VersionNotFoundError | None = None
            try:
                past = journal.replay(sid, at=at)
            except VersionNotFoundError as exc:
                ended = exc
            except allowed:
                continue
            if ended is not None:  # the damaged log now ends before ``at``, and says where
                assert sid == damaged, f"replay({sid!r}, at={at}): {ended}"
                assert ended.version < at, f"replay({sid!r}, at={at}): {ended}"
                continue
            assert past.version <= at, f"replay({sid!r}, at={at}) went past it"
            assert past == pristine.states[sid][past.version], f"replay({sid!r}, at={at}): wrong state"
            assert sid == damaged or past.version == at
        seen: list[Event] = []
        try:
            for event in journal.events(sid):
                seen.append(event)
        except allowed:
            pass
        assert seen == pristine.events[sid][: len(seen)], f"events({sid!r}): a wrong event"
        assert sid == damaged or len(seen) == final


def _refuses(error: type[Exception], call: Callable[[], object]) -> bool:
    """Whether ``call`` raises ``error`` (any other exception propagates).

    Not ``pytest.raises``: its failure is a BaseException, which would end a sweep early.
    """
    try:
        call()
    except error:
        return True
    return False


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a session outside its quarantine, by path."""
    return {
        str(p): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "quarantine" not in p.relative_to(folder).parts
    }


def _check_quarantine(
    folder: Path, report: RepairReport, before: dict[str, bytes], pristine_log: bytes
) -> None:
    """What left each file is exactly what the quarantine holds, and nothing else changed, except
    what any writer does to a log that is a prefix of the pristine one: cut its torn tail, or
    (empty after an intact archive) write it anew. ``_stored_history`` checks the new lines."""
    after = _files(folder)
    by_source = {m.source: m for m in report.moved}
    assert len(by_source) == len(report.moved), f"a file moved twice: {report.moved}"
    assert set(by_source) <= set(before), "repair moved a file that was not there"
    log = str(folder / LOG)
    if log in before and log not in by_source and pristine_log.startswith(before[log]):
        complete = before[log][: before[log].rfind(b"\n") + 1]
        before = {**before, log: complete or after.get(log, b"")}
    if not report.moved:
        assert report.quarantine is None
        assert after == before, "repair changed files without moving anything"
        return
    assert report.quarantine is not None
    quarantine = Path(report.quarantine)
    assert quarantine.parent == folder / "quarantine"
    names = {Path(str(m.destination)).name for m in report.moved}
    assert {p.name for p in quarantine.iterdir()} == names | {"repair.json"}
    assert json.loads((quarantine / "repair.json").read_bytes())["kept"] == report.kept
    for path, data in before.items():
        moved = by_source.get(path)
        if moved is None:
            assert after.get(path) == data, f"{path} changed but nothing of it was quarantined"
            continue
        assert moved.destination is not None
        held = Path(moved.destination).read_bytes()
        assert moved.size == len(data) - moved.offset, f"{path}: not moved to its end"
        assert held == data[moved.offset :], f"{path}: quarantined bytes differ from what left it"
        if moved.destination.endswith(f".from-byte-{moved.offset}"):
            # The log was cut: what stays plus what was quarantined is the file before.
            assert after[path] + held == data, f"{path}: kept + quarantined != before"


def _run_case(pristine: Pristine, base: Path, damage: Damage) -> None:
    root = base / "journal"
    shutil.copytree(pristine.root, root)
    folder = pristine.folder(root, damage.sid)
    path = folder / damage.rel
    if damage.op == "rawflip":
        path.write_bytes(_damaged(path.read_bytes(), damage))
    else:
        _write_plain(path, _damaged(_plain(path), damage))
    lines = pristine.stream[damage.sid]
    elems = _elements(folder, lines)
    expect = _expect(elems, lines, damage.op)
    damaged = path.read_bytes()
    pristine_log = (pristine.folder(pristine.root, damage.sid) / LOG).read_bytes()
    log_holds_lines = any(e.file == str(folder / LOG) for e in elems)
    refusals: tuple[type[Exception], ...] = ()
    snapshots = [int(m[1]) for name in os.listdir(folder) if (m := _SNAPSHOT.match(name))]
    if expect.where:
        refusals = (CorruptLogError,)
    elif expect.truncated and any(seq > expect.kept for seq in snapshots):
        # A snapshot proves the lost events were stored: never a fresh start under them.
        refusals = (CorruptLogError,)
    elif expect.truncated and not expect.kept:
        refusals = (SessionNotFoundError,)  # no complete line left: the session does not exist
    elif expect.truncated and not log_holds_lines:
        refusals = (CorruptLogError,)  # an archive, and an active log without its last event
    labels = {damage.sid, folder.name}
    others = [pristine.heads[sid] for sid in SESSIONS if sid != damage.sid]
    with Journal(root, fsync="never") as journal:
        _check_reads(journal, pristine, damage.sid, refusals)
        if expect.where:
            # A full replay and a full event stream cross the damage, whatever the cache holds.
            assert _refuses(CorruptLogError, lambda: journal.replay(damage.sid)), "replay read past it"
            seen: list[Event] = []
            assert _refuses(CorruptLogError, lambda: seen.extend(journal.events(damage.sid)))
            assert len(seen) <= expect.kept, f"events yielded {len(seen)}, {expect.kept} are intact"

        report = journal.verify(anchors=pristine.heads.values())
        problems = report.problems
        shown = "\n  ".join(str(p) for p in problems) or "(none)"
        assert all(p.session_id in labels for p in problems), f"another session reported:\n  {shown}"
        assert all(Path(p.file).is_relative_to(folder) for p in problems), shown
        assert set(others) <= set(report.heads), "a bystander lost its head"
        if expect.where:
            assert any(
                (p.file, p.line, p.offset) == (e.file, e.line, e.offset)
                for p in problems
                for e in expect.where
            ), f"expected a problem at {[tuple(e[:3]) for e in expect.where]}, got:\n  {shown}"
        elif expect.truncated:
            assert any(
                (p.kind, p.file, p.line, p.offset) == ("truncated", str(folder / LOG), 0, -1)
                for p in problems
            ), f"the anchor did not show the lost events:\n  {shown}"
            assert {p.kind for p in problems} <= (
                {"truncated"} if log_holds_lines else {"truncated", "torn"}
            ), shown
        else:
            assert report.ok, f"undamaged history reported:\n  {shown}"
        if expect.where:
            assert path.read_bytes() == damaged, "verify changed a damaged file"
        elif damage.rel == LOG:
            # The only bytes a verify may remove: a torn tail (or it adds a lost last newline).
            now = path.read_bytes()
            assert pristine_log.startswith(now), "verify wrote into the log"
            assert len(now) >= damaged.rfind(b"\n") + 1, "verify removed complete lines"

        before = _files(folder)
        dry = journal.repair(damage.sid, dry_run=True)
        assert _files(folder) == before, "a dry run changed files"
        assert dry.quarantine is None
        assert all(m.destination is None for m in dry.moved)
        repaired = journal.repair(damage.sid)
        assert repaired.kept == expect.kept, f"kept {repaired.kept}, the intact prefix is {expect.kept}"
        plan = [(m.source, m.offset, m.size, m.reason) for m in dry.moved]
        assert [(m.source, m.offset, m.size, m.reason) for m in repaired.moved] == plan
        _check_quarantine(folder, repaired, before, pristine_log)
        assert _stored_history(folder) == lines[: expect.kept], "repair kept bytes that differ"

        after = journal.verify()
        assert after.ok, "not clean after repair:\n  " + "\n  ".join(map(str, after.problems))
        assert journal.verify(anchors=others).ok
        if expect.kept:
            assert journal.get(damage.sid) == pristine.states[damage.sid][expect.kept]
            journal.add_message(damage.sid, "user", "after the repair \u2028")
        else:
            assert _refuses(SessionNotFoundError, lambda: journal.get(damage.sid))
            journal.create(damage.sid)
        assert journal.get(damage.sid).version == expect.kept + 1
        assert journal.verify().ok
        assert not journal.repair(damage.sid).changed, "a second repair moved more"
    with Journal(root) as fresh:
        state = fresh.get(damage.sid)
        assert state.version == expect.kept + 1
        assert state == fresh.replay(damage.sid)
        assert fresh.verify().ok


def _sweep(
    pristine: Pristine, tmp_path: Path, targets: list[tuple[str, str]], ops: list[str], n: int
) -> None:
    rng = random.Random(f"{SEED}:{targets}")
    failures: list[str] = []
    for index in range(n):
        damage = _pick(rng, pristine, targets, ops)
        try:
            _run_case(pristine, tmp_path / str(index), damage)
        except Exception as exc:
            failures.append(f"case {index}: {damage}: {type(exc).__name__}: {exc}")
    assert not failures, (
        f"seed {SEED} (JOURNAL_TORTURE_SEED={SEED} replays it): {len(failures)} of {n} failed:\n"
        + ("\n".join(failures[:20]))
    )


OPS = ["flip", "cut", "delete", "duplicate", "swap"]


def test_random_damage_to_active_logs(pristine: Pristine, tmp_path: Path) -> None:
    # Oracle: the pristine journal (states, events and stored lines per seq); see the module doc.
    _sweep(pristine, tmp_path, [(ALPHA, LOG), (BETA, LOG)], OPS, 150 * SCALE)


def test_random_damage_to_archive_segments(pristine: Pristine, tmp_path: Path) -> None:
    # The same oracle, for damage inside the gzip segments of the pruned session, including
    # raw flips of the compressed bytes (a flip in the gzip header's mtime changes nothing).
    segments = sorted(p.name for p in (pristine.folder(pristine.root, BETA) / "archive").iterdir())
    targets = [(BETA, f"archive/{name}") for name in segments]
    _sweep(pristine, tmp_path, targets, [*OPS, "rawflip"], 100 * SCALE)


def test_cut_inside_the_last_line_is_a_torn_tail(pristine: Pristine, tmp_path: Path) -> None:
    # Every cut strictly inside the last line of the active log: verify cuts the torn tail (or
    # completes a line that lost only its newline) and is then clean without anchors; the
    # anchor exported before shows the lost event unless only the newline was gone.
    log = pristine.folder(pristine.root, ALPHA) / LOG
    data = log.read_bytes()
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    rng = random.Random(SEED)
    cuts = sorted(
        {start + 1, len(data) - 1, *(rng.randrange(start + 1, len(data)) for _ in range(8 * SCALE))}
    )
    for cut in cuts:
        root = tmp_path / str(cut) / "journal"
        shutil.copytree(pristine.root, root)
        copy = pristine.folder(root, ALPHA) / LOG
        copy.write_bytes(data[:cut])
        lost = cut != len(data) - 1
        with Journal(root) as journal:
            state = journal.get(ALPHA)
            assert state == pristine.states[ALPHA][state.version]
            # A reader never reads an unterminated line, not even a whole one (writers complete it).
            assert state.version == pristine.heads[ALPHA].seq - 1
            assert journal.verify(ALPHA).ok, f"seed {SEED}, cut {cut}"
            assert copy.read_bytes() == (data[:start] if lost else data), f"cut {cut}"
            anchored = journal.verify(anchors=pristine.heads.values())
            assert [p.kind for p in anchored.problems] == (["truncated"] if lost else []), f"cut {cut}"
            assert not journal.repair(ALPHA).changed
            journal.add_message(ALPHA, "user", "next")
            assert journal.verify().ok


# -- part 2: hostile lines -----------------------------------------------------------------------

SID = "hostile"
MIDDLE = 3  # the line hostile bytes are planted at (a message with a body, by alice)


@dataclass(frozen=True)
class Base:
    """A pristine 6-line log without snapshots (a snapshot would let reads skip the damage)."""

    rel: Path
    data: bytes
    lines: list[bytes]  # without newlines

    def offset(self, line: int) -> int:
        return sum(len(x) + 1 for x in self.lines[: line - 1])

    def planted(self, root: Path, data: bytes) -> Path:
        path = root / self.rel
        path.parent.mkdir(parents=True, mode=0o700)
        path.write_bytes(data)
        return path

    def with_line(self, line: int, new: bytes, *, replace: bool = True) -> bytes:
        lines = list(self.lines)
        lines[line - 1 : line if replace else line - 1] = [new]
        return b"".join(x + b"\n" for x in lines)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("hostile") / "journal"
    with Journal(root, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID, actor="setup")
        journal.add_message(SID, "user", "hello")
        journal.add_message(SID, "user", TRICKY, metadata={"k": [1, 2.5]}, actor="alice")
        journal.update_settings(SID, {"model": "m-1"})
        journal.clear(SID, actor="alice")
        journal.add_message(SID, "assistant", "bye")
    (log,) = root.glob("sessions/*/events.jsonl")
    data = log.read_bytes()
    built = Base(log.relative_to(root), data, _split(data)[0])
    assert len(built.lines) == 6
    assert b'"type":"message_added"' in built.lines[MIDDLE - 1]
    assert b'"actor":"alice"' in built.lines[MIDDLE - 1]
    return built


def _assert_rejected(root: Path, path: Path, line: int, offset: int) -> list[Problem]:
    """Reads and a write raise CorruptLogError at the spot (the write appends nothing); verify
    reports its first problem there; then repair cuts the log at that line, keeps everything
    before it byte for byte, quarantines the rest, and the session is writable again.

    Returns verify's problems.
    """
    before = path.read_bytes()
    spot = (str(path), line, offset)
    with Journal(root) as journal:
        reads: dict[str, Callable[[], object]] = {
            "get": lambda: journal.get(SID),
            "events": lambda: list(journal.events(SID)),
            "replay": lambda: journal.replay(SID),
            "add_message": lambda: journal.add_message(SID, "user", "x"),
        }
        for name, read in reads.items():
            with pytest.raises(CorruptLogError) as info:
                read()
            assert (info.value.path, info.value.line, info.value.offset) == spot, f"{name}: {info.value}"
        assert path.read_bytes() == before, "a refused write changed the log"
        report = journal.verify()
        assert report.problems, "verify found nothing"
        first = report.problems[0]
        assert (first.file, first.line, first.offset) == spot, str(first)
        assert {p.session_id for p in report.problems} == {SID}
        repaired = journal.repair(SID)
        assert repaired.kept == line - 1
        assert path.read_bytes() == before[:offset]
        (moved,) = repaired.moved
        assert moved.destination is not None
        assert Path(moved.destination).read_bytes() == before[offset:]
        assert journal.verify().ok
        assert journal.add_message(SID, "user", "again").seq == line
    return list(report.problems)


def test_every_jsontestsuite_text_as_a_middle_line_is_damage(base: Base, tmp_path: Path) -> None:
    # Oracle: no JSON text (valid or not, object or not) is a journal line: none starts with
    # {"v":1, and carries a matching hash. Planted before line 3, each is reported at line 3
    # with line 3's offset, and every read raises CorruptLogError there, never another error.
    folder = shared_path("data/jsontestsuite")
    texts = sorted(folder.rglob("*.json"))
    assert len(texts) > 300, f"only {len(texts)} texts in {folder}"
    failures: list[str] = []
    for index, text in enumerate(texts):
        planted = text.read_bytes()
        planted = planted[:-1] if planted.endswith(b"\n") else planted
        root = tmp_path / str(index)
        path = base.planted(root, base.with_line(MIDDLE, planted, replace=False))
        try:
            _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
        except Exception as exc:
            failures.append(f"{text.name}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(texts)} texts:\n" + "\n".join(failures)


def _reseal(line: bytes, edit: Callable[[bytes], bytes], *, body: bool = True) -> bytes:
    """Edit a line's sealed part and recompute its hash (the forger's move), so that only the
    checks after the hash can catch the edit. ``body=False`` drops a message's body."""
    cut = line.rfind(HASH_KEY)
    sealed = edit(line[:cut])
    rest = line[cut + len(HASH_KEY) + 64 :] if body else b'"}'
    return sealed + HASH_KEY + hashlib.sha256(sealed).hexdigest().encode() + rest


def _members(change: Callable[[dict[str, Any]], object]) -> Callable[[bytes], bytes]:
    """A sealed-part edit on the decoded members, written back as compact (ASCII) JSON."""

    def edit(sealed: bytes) -> bytes:
        members: dict[str, Any] = json.loads(sealed + b"}")
        change(members)
        return json.dumps(members, separators=(",", ":"), ensure_ascii=True).encode()[:-1]

    return edit


def _raw(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(sealed: bytes) -> bytes:
        assert old in sealed
        return sealed.replace(old, new, 1)

    return edit


def _put(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda m: m.__setitem__(key, value)


def _put_data(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda m: m["data"].__setitem__(key, value)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


METADATA = b'"metadata":{"k":[1,2.5]}'

# Valid JSON (or nearly) of the wrong shape under a correct hash: name -> (line 3, the kind
# verify must report). Kinds follow ProblemKind: "unsupported" for an unknown type whose hash
# checks out (format.md section 11), "invalid" for an event that cannot follow the one before.
WRONG_SHAPES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "seq is a string": (_members(_put("seq", "3")), "damaged"),
    "seq is a float": (_members(_put("seq", 3.0)), "damaged"),
    "seq is true": (_members(_put("seq", True)), "damaged"),
    "seq is 0": (_members(_put("seq", 0)), "damaged"),
    "type is a number": (_members(_put("type", 5)), "damaged"),
    "type is null": (_members(_put("type", None)), "damaged"),
    "settings line with a body": (_members(_put("type", "settings_changed")), "damaged"),
    "unknown event type": (_members(_put("type", "message_pinned")), "unsupported"),
    "at is not a time": (_members(_put("at", "yesterday")), "damaged"),
    "at is not UTC": (_members(_put("at", "2030-01-01T10:00:00+01:00")), "damaged"),
    "at is a number": (_members(_put("at", 1_700_000_000)), "damaged"),
    "at is missing": (_members(lambda m: m.pop("at")), "damaged"),
    "actor is a number": (_members(_put("actor", 5)), "damaged"),
    "actor is a list": (_members(_put("actor", ["alice"])), "damaged"),
    "actor is an escaped lone surrogate": (_members(_put("actor", "\ud800")), "damaged"),
    "data is a list": (_members(_put("data", [])), "damaged"),
    "data is null": (_members(_put("data", None)), "damaged"),
    "data is missing": (_members(lambda m: m.pop("data")), "damaged"),
    "role is missing": (_members(lambda m: m["data"].pop("role")), "damaged"),
    "role is a number": (_members(_put_data("role", 5)), "damaged"),
    "metadata is a list": (_members(_put_data("metadata", [])), "damaged"),
    "references is an object": (_members(_put_data("references", {})), "damaged"),
    "NaN in metadata": (_members(_put_data("metadata", {"x": float("nan")})), "damaged"),
    "Infinity in metadata": (_members(_put_data("metadata", {"x": float("inf")})), "damaged"),
    "prev is a number": (_members(_put("prev", 5)), "damaged"),
    "prev is missing": (_members(lambda m: m.pop("prev")), "damaged"),
    "content digest changed": (_members(_put_data("content_sha256", "0" * 64)), "edited"),
    "a created line with a body": (
        _members(lambda m: m.update(type="created", data={"session_id": SID})),
        "damaged",
    ),
    "dated before the event it follows": (_members(_put("at", "2000-01-01T00:00:00Z")), "invalid"),
    "invalid UTF-8 in a string": (_raw(b'"actor":"alice"', b'"actor":"al\xffice"'), "damaged"),
    "overlong UTF-8": (_raw(b'"actor":"alice"', b'"actor":"al\xc0\xafice"'), "damaged"),
    "UTF-8 encoded surrogate": (_raw(b'"actor":"alice"', b'"actor":"al\xed\xa0\x80ice"'), "damaged"),
    "truncated UTF-8 sequence": (_raw(b'"actor":"alice"', b'"actor":"al\xe2\x82"'), "damaged"),
    "raw control character in a string": (_raw(b'"actor":"alice"', b'"actor":"al\x01ice"'), "damaged"),
    "100k-deep nesting": (_raw(METADATA, b'"metadata":{"k":' + _nested(100_000) + b"}"), "damaged"),
}


@pytest.mark.parametrize("name", list(WRONG_SHAPES))
def test_resealed_line_of_the_wrong_shape_is_damage_at_its_line(
    base: Base, tmp_path: Path, name: str
) -> None:
    # Oracle: the hash matches, so only the shape, body and fold checks can catch these; each
    # must be reported at line 3 itself, not first at line 4 (whose prev no longer chains).
    edit, kind = WRONG_SHAPES[name]
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, _reseal(base.lines[MIDDLE - 1], edit)))
    if kind == "unsupported":
        with Journal(root) as journal, pytest.raises(UnsupportedFormatError):
            journal.get(SID)
    problems = _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
    assert problems[0].kind == kind, str(problems[0])


def test_created_event_in_the_middle_cannot_follow(base: Base, tmp_path: Path) -> None:
    # A well-formed, chained-looking `created` line (no body) at line 3: the fold refuses it.
    line = _reseal(
        base.lines[MIDDLE - 1],
        _members(lambda m: m.update(type="created", data={"session_id": SID})),
        body=False,
    )
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, line))
    problems = _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
    assert problems[0].kind == "invalid", str(problems[0])


def test_unknown_member_is_ignored_and_the_next_line_no_longer_chains(base: Base, tmp_path: Path) -> None:
    # Schema evolution (format.md section 11): an unknown member is ignored, so resealed line 3
    # is a valid event; what the reseal breaks is line 4's prev, reported there as "edited".
    line = _reseal(base.lines[MIDDLE - 1], _members(_put("future", {"x": 1})))
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, line))
    problems = _assert_rejected(root, path, MIDDLE + 1, base.offset(MIDDLE) + len(line) + 1)
    assert problems[0].kind == "edited", str(problems[0])


def test_invalid_utf8_in_a_message_body_is_damage(base: Base, tmp_path: Path) -> None:
    # The body is outside the hash: invalid UTF-8 there is caught by the shape check alone.
    line = base.lines[MIDDLE - 1]
    assert line.count("h\u00e9llo".encode()) == 1
    for index, bad in enumerate((b"h\xffllo", b"h\xc3llo", b"h\xc0\xa9llo", b"h\xed\xa0\x80llo")):
        root = tmp_path / str(index)
        path = base.planted(root, base.with_line(MIDDLE, line.replace("h\u00e9llo".encode(), bad)))
        problems = _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
        assert problems[0].kind == "damaged", f"{bad!r}: {problems[0]}"


def test_huge_middle_line_is_damage(base: Base, tmp_path: Path) -> None:
    # 20 MB in one line that looks like a journal line up to a wrong hash: it spans many of the
    # reader's 1 MiB chunks; reported at its start, and repair quarantines all of it.
    filler = b"\xe2\x80\xa8" * (20 * 2**20 // 3)  # U+2028, which must not split the line
    start = b'{"v":1,"seq":3,"type":"message_added","data":{"x":"'
    huge = start + filler + b'"}' + HASH_KEY + b"0" * 64 + b'"}'
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, huge, replace=False))
    problems = _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
    assert problems[0].kind in ("damaged", "edited"), str(problems[0])


def test_deep_nesting_without_a_hash_is_damage(base: Base, tmp_path: Path) -> None:
    # 100k open brackets in a line that starts like a journal line (the JSONTestSuite texts do
    # not): the hash check refuses it before any parser sees it.
    line = b'{"v":1,"seq":3,"data":' + _nested(100_000) + HASH_KEY + b"f" * 64 + b'"}'
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, line, replace=False))
    _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))


def _chained_settings(after: bytes, value: bytes) -> bytes:
    """A settings_changed line setting ``deep`` to ``value``, validly chained after ``after``."""
    previous = json.loads(after)
    sealed = b"".join(
        (
            b'{"v":1,"seq":%d,"type":"settings_changed",' % (previous["seq"] + 1),
            b'"at":"%s","actor":null,' % previous["at"].encode(),
            b'"data":{"set":{"deep":%s}},' % value,
            b'"prev":"%s"' % previous["hash"].encode(),
        )
    )
    return sealed + HASH_KEY + hashlib.sha256(sealed).hexdigest().encode() + b'"}'


def test_deepest_value_a_writer_accepts_round_trips(base: Base, tmp_path: Path) -> None:
    # The writer accepts 64 levels inside a settings value (format.md section 5.2: readers
    # should accept lines nested 67 deep); a line written by hand just as deep reads back too.
    root = tmp_path / "journal"
    path = base.planted(root, base.data)
    value: Any = []
    for _ in range(63):
        value = [value]
    with Journal(root) as journal:
        written = journal.update_settings(SID, {"deep": value})
    by_hand = _chained_settings(_split(path.read_bytes())[0][-1], _nested(64))
    with path.open("ab") as log:
        log.write(by_hand + b"\n")
    expected: Any = ()
    for _ in range(63):
        expected = (expected,)
    with Journal(root) as journal:
        state = journal.get(SID)
        assert state.version == len(base.lines) + 2
        assert state.settings["deep"] == expected
        assert journal.replay(SID, at=written.version) == written
        assert journal.verify().ok


# -- separators that are not line ends ----------------------------------------------------------

SEPARATORS = "\u2028\u2029\u0085\u000b\u000c\u001c\u001d\u001e\r\n\r"


def test_unicode_line_separators_round_trip_through_log_and_archive(tmp_path: Path) -> None:
    # Oracle: only 0x0A ends a line. U+2028, U+2029 and U+0085 are written as their UTF-8
    # bytes, control characters escaped; all come back exactly, from the log, after a reopen,
    # and through an archive segment.
    sid = f"id {SEPARATORS} end"
    contents = [SEPARATORS, "a\u2028b", "c\u0085d", "e\u000bf", "\u2029" * 1000, f"{TRICKY}{SEPARATORS}"]
    root = tmp_path / "journal"
    with Journal(root) as journal:
        journal.create(sid)
        for content in contents:
            journal.add_message(sid, f"role{SEPARATORS}", content, metadata={SEPARATORS: SEPARATORS})
        journal.update_settings(sid, {SEPARATORS: [SEPARATORS]}, actor=SEPARATORS)
        written = journal.get(sid)
    (log,) = root.glob("sessions/*/events.jsonl")
    data = log.read_bytes()
    assert data.count(b"\n") == written.version == len(contents) + 2
    for raw in ("\u2028", "\u2029", "\u0085"):
        assert raw.encode() in data, f"{raw!r} not written as its UTF-8 bytes"
    for control in (b"\\u000b", b"\\f", b"\\u001c", b"\\r", b"\\n"):
        assert control in data
    assert b"\x0b" not in data
    assert b"\r" not in data
    assert len(data.decode().splitlines()) > written.version  # the hazard is really there
    with Journal(root) as journal:
        assert journal.get(sid) == written == journal.replay(sid)
        assert [m.content for m in journal.get(sid).messages] == contents
        assert journal.get(sid).settings[SEPARATORS] == (SEPARATORS,)
        assert list(journal.sessions()) == [sid]
        assert journal.verify().ok
        journal.compact(sid, prune=True)
    with Journal(root) as journal:
        assert journal.replay(sid) == written
        assert [e.seq for e in journal.events(sid)] == list(range(1, written.version + 1))
        assert journal.verify(anchors=[journal.head(sid)]).ok


# -- a snapshot that outlives its log -------------------------------------------------------------


@dataclass(frozen=True)
class Stale:
    root: Path  # a journal whose log ends at seq 5, holding a snapshot of seq 9 from a later copy
    folder: Path
    snapshot: Path  # the planted snapshot
    states: dict[int, Session]  # of the longer log
    events: list[Event]


@pytest.fixture
def stale(tmp_path: Path) -> Stale:
    sid = "snap"
    full = tmp_path / "full"
    early = tmp_path / "journal"
    with Journal(full, snapshot_every=3) as journal:
        journal.create(sid)
        for i in range(4):
            journal.add_message(sid, "user", f"m{i} {TRICKY}")
        shutil.copytree(full, early)
        journal.update_settings(sid, {"model": "x"})
        for i in range(5):
            journal.add_message(sid, "user", f"later {i}")
        states = {seq: journal.replay(sid, at=seq) for seq in range(1, 12)}
        events = list(journal.events(sid))
    (folder,) = (early / "sessions").iterdir()
    assert [p.name for p in folder.glob("*.snap")] == [f"snapshot-{3:020d}.snap"]
    (later,) = (full / "sessions" / folder.name).glob("*.snap")
    assert later.name == f"snapshot-{9:020d}.snap"
    planted = folder / later.name
    shutil.copyfile(later, planted)
    return Stale(early, folder, planted, states, events)


def test_snapshot_past_the_end_of_the_log_is_reported_and_repair_clears_it(stale: Stale) -> None:
    # Oracle: the log holds seqs 1..5; the planted snapshot claims seq 9 at a position past the
    # log's end: evidence that events 6..9 were stored and lost. get() and events() raise
    # naming the snapshot (replay folds the stored lines alone, without snapshots); verify names the
    # snapshot as "truncated"; repair moves exactly that file and nothing else, after which
    # the session reads as the log's state again.
    with Journal(stale.root) as journal:
        for read in (lambda: journal.get("snap"), lambda: list(journal.events("snap"))):
            with pytest.raises(CorruptLogError) as info:
                read()
            assert info.value.path == str(stale.snapshot)
        assert journal.replay("snap") == stale.states[5]  # a fold of the stored lines alone
        report = journal.verify()
        assert [(p.kind, p.file, p.line) for p in report.problems] == [("truncated", str(stale.snapshot), 0)]
        planted = stale.snapshot.read_bytes()
        repaired = journal.repair("snap")
        assert repaired.kept == 5
        (moved,) = repaired.moved
        assert (moved.source, moved.offset, moved.size) == (str(stale.snapshot), 0, len(planted))
        assert moved.destination is not None
        assert Path(moved.destination).read_bytes() == planted
        assert not stale.snapshot.exists()
        assert journal.verify().ok
        assert journal.get("snap") == stale.states[5]


def test_no_writer_regrows_the_log_under_a_snapshot_past_its_end(stale: Stale) -> None:
    # Appending seq 6 after a log that ends at 5, beside a snapshot of seq 9, would store a
    # second, different seq 6..9: a fork of the history the snapshot records. Every write
    # refuses, and leaves the log as it was; after repair the session takes appends again.
    log = stale.snapshot.parent / LOG
    before = log.read_bytes()
    with Journal(stale.root) as journal:
        for _ in range(2):
            with pytest.raises(CorruptLogError):
                journal.add_message("snap", "user", "other")
        assert log.read_bytes() == before
        journal.repair("snap")
        assert journal.add_message("snap", "user", "other").seq == 6
    with Journal(stale.root) as fresh:
        assert fresh.get("snap") == fresh.replay("snap")
        assert fresh.verify().ok


# -- regressions: bugs this file found ------------------------------------------------------------
# Each was found against the tree as it was when this file was written and fixed in the tree
# meanwhile; the tests stay as regression tests, each naming what went wrong.


def _copy(pristine: Pristine, tmp_path: Path) -> Path:
    root = tmp_path / "journal"
    shutil.copytree(pristine.root, root)
    return root


def test_verify_of_all_sessions_checks_the_anchor_of_a_log_cut_to_nothing(
    pristine: Pristine, tmp_path: Path
) -> None:
    # Bug 1: verify() over every session skipped a folder whose log held no complete line, so
    # an exported head of that session was silently never checked (verify(sid) did report it).
    root = _copy(pristine, tmp_path)
    log = pristine.folder(root, ALPHA) / LOG
    log.write_bytes(log.read_bytes()[:10])
    with Journal(root) as journal:
        for report in (
            journal.verify(ALPHA, anchors=pristine.heads.values()),
            journal.verify(anchors=pristine.heads.values()),
        ):
            assert ("truncated", str(log)) in [(p.kind, p.file) for p in report.problems]
            assert {p.session_id for p in report.problems} == {ALPHA}


@pytest.mark.parametrize("cut", [0, 5])
def test_repair_restores_a_pruned_session_whose_active_log_was_emptied(
    pristine: Pristine, tmp_path: Path, cut: int
) -> None:
    # Bug 2: with the archive intact and the active log emptied (or torn inside its only
    # first line), repair reported the archive as kept but left the session unreadable and
    # unwritable (SessionNotFoundError).
    root = _copy(pristine, tmp_path)
    folder = pristine.folder(root, BETA)
    archived = sum(len(_split(_plain(p))[0]) for p in _history_files(folder)[:-1])
    log = folder / LOG
    log.write_bytes(log.read_bytes()[:cut])
    with Journal(root) as journal:
        with pytest.raises(CorruptLogError):
            journal.get(BETA)  # not "no such session": the archive holds its events
        assert not journal.verify(anchors=[pristine.heads[BETA]]).ok
        repaired = journal.repair(BETA)
        assert repaired.kept == archived
        assert journal.get(BETA) == pristine.states[BETA][archived]
        journal.add_message(BETA, "user", "after the repair")
        assert journal.verify().ok


def test_repair_keeps_the_intact_lines_of_a_segment_that_ends_inside_a_line(
    pristine: Pristine, tmp_path: Path
) -> None:
    # Bug 3: repair (even a dry run) raised EOFError, not even a JournalError: planning the
    # archive cut re-read the whole segment, including the damage the check had stopped at.
    root = _copy(pristine, tmp_path)
    folder = pristine.folder(root, BETA)
    first = _history_files(folder)[0]
    lines, _ = _split(_plain(first))
    _write_plain(first, b"".join(x + b"\n" for x in lines[:2]) + lines[2][:40])
    with Journal(root) as journal:
        problems = journal.verify().problems
        assert (problems[0].file, problems[0].line, problems[0].offset) == (str(first), 3, -1)
        assert journal.repair(BETA, dry_run=True).kept == 2
        repaired = journal.repair(BETA)
        assert repaired.kept == 2
        assert _stored_history(folder) == pristine.stream[BETA][:2]
        assert journal.verify().ok


def test_repair_keeps_the_lines_read_before_a_gzip_error(tmp_path: Path) -> None:
    # Bug 3 for real gzip damage: a segment larger than one read fails its CRC only at the end,
    # after lines were read and checked; repair raised StorageError instead of keeping them.
    root = tmp_path / "journal"
    with Journal(root, fsync="never") as journal:
        journal.create("big")
        for i in range(24):  # more than one 1 MiB read of the segment
            journal.add_message("big", "user", f"{i} " + "x" * 60_000)
        journal.compact("big", prune=True)
    (segment,) = root.glob("sessions/*/archive/*.jsonl.gz")
    damaged = bytearray(segment.read_bytes())
    damaged[-6] ^= 0x10  # the CRC32 in the gzip trailer: every line decompresses intact
    segment.write_bytes(bytes(damaged))
    with Journal(root) as journal:
        problems = journal.verify().problems
        (where,) = [p for p in problems if p.file == str(segment)]
        assert where.kind == "damaged"
        assert where.line > 1  # some lines were read before the stream failed
        repaired = journal.repair("big")
        assert repaired.kept == where.line - 1
        assert journal.verify().ok
        assert journal.add_message("big", "user", "after").seq == where.line


def test_resealed_line_nested_600_deep_is_damage_not_recursion_error(base: Base, tmp_path: Path) -> None:
    # Bug 4: a hash-valid line nested ~600 deep passes msgspec's depth limit but overflowed the
    # recursive freeze of decoded values: RecursionError escaped from reads, verify and writes.
    line = _reseal(base.lines[MIDDLE - 1], _raw(METADATA, b'"metadata":{"k":' + _nested(600) + b"}"))
    root = tmp_path / "journal"
    path = base.planted(root, base.with_line(MIDDLE, line))
    problems = _assert_rejected(root, path, MIDDLE, base.offset(MIDDLE))
    assert problems[0].kind == "damaged"


_HUGE_SEQ_CHILD = """
import json, resource, sys
from journal import Journal
with open("/proc/self/status") as status:
    size = next(int(x.split()[1]) * 1024 for x in status if x.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), resource.RLIM_INFINITY))
with Journal(sys.argv[1]) as journal:
    problems = journal.verify().problems
print(json.dumps([[p.kind, p.line] for p in problems]))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_verify_of_a_line_with_a_huge_seq_stays_bounded(base: Base, tmp_path: Path) -> None:
    # Bug 5: verify recorded every seq of a gap one by one, so one hash-valid line claiming seq
    # 2**62 took memory in proportion. Run in a child with a 256 MB address-space margin, so a
    # regression fails fast (MemoryError) instead of taking the machine's memory.
    line = _reseal(base.lines[MIDDLE - 1], _members(_put("seq", 2**62)))
    root = tmp_path / "journal"
    base.planted(root, base.with_line(MIDDLE, line))
    child = subprocess.run(
        [sys.executable, "-c", _HUGE_SEQ_CHILD, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert ["gap", MIDDLE] in json.loads(child.stdout)


@pytest.mark.parametrize("lost", [20, 1], ids=["torn-last-line", "lost-newline"])
def test_dry_run_repair_changes_no_file(pristine: Pristine, tmp_path: Path, lost: int) -> None:
    # Bug 6: a dry run read the log with the writer's read, which cuts a torn last line (or
    # adds the missing newline of a whole one): "nothing was changed" did not hold.
    root = _copy(pristine, tmp_path)
    log = pristine.folder(root, ALPHA) / LOG
    data = log.read_bytes()[:-lost]
    log.write_bytes(data)
    with Journal(root) as journal:
        report = journal.repair(ALPHA, dry_run=True)
        assert report.dry_run
        assert not report.changed
        assert log.read_bytes() == data, "a dry run changed the log"


# -- files of the wrong type in place of journal files ---------------------------------------------

HANG_TIMEOUT = 5.0  # only turns a read blocked forever into a failure; a fixed read takes ms


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("which", ["snapshot", "segment"])
def test_a_fifo_in_place_of_a_snapshot_or_segment_does_not_block_reads(
    pristine: Pristine, tmp_path: Path, which: str
) -> None:
    root = _copy(pristine, tmp_path)
    if which == "snapshot":
        sid = ALPHA
        (target,) = pristine.folder(root, sid).glob("snapshot-*.snap")
    else:
        sid = BETA
        target = _history_files(pristine.folder(root, sid))[0]
    target.unlink()
    os.mkfifo(target, 0o600)
    outcome: list[object] = []

    def read() -> None:
        try:
            with Journal(root) as journal:
                outcome.append(list(journal.events(sid)))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(HANG_TIMEOUT)
    hung = thread.is_alive()
    if hung:
        # Release the reader: a writer that opens and closes the FIFO gives it end-of-file.
        with contextlib.suppress(OSError):
            os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(HANG_TIMEOUT)
    assert not hung, f"a read blocked on a FIFO in place of the {which}"
    if which == "snapshot":  # a snapshot is only a cache: the log has every event
        assert outcome == [pristine.events[sid]]
    else:  # the segment holds events 1..: no event can be read without it
        (error,) = outcome
        assert isinstance(error, CorruptLogError)
        assert error.path == str(target)


def test_repair_clears_a_directory_in_place_of_a_snapshot(pristine: Pristine, tmp_path: Path) -> None:
    root = _copy(pristine, tmp_path)
    (snapshot,) = pristine.folder(root, ALPHA).glob("snapshot-*.snap")
    snapshot.unlink()
    snapshot.mkdir()
    with Journal(root) as journal:
        assert journal.get(ALPHA) == pristine.states[ALPHA][pristine.heads[ALPHA].seq]
        problems = journal.verify().problems
        assert [(p.kind, p.file) for p in problems] == [("snapshot_damaged", str(snapshot))]
        journal.repair(ALPHA)
        assert journal.verify().ok
