"""verify, head anchors and repair on real files: every kind of damage, named where it is.

Each test builds a real journal, damages its files the way a disk, an operator or an attacker
would, and checks what ``verify`` reports and what ``repair`` keeps and moves. Reads of damaged
data must keep raising until the repair, and a repaired session must take new appends.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import stat
from pathlib import Path

import msgspec
import pytest

from journal import (
    Anchor,
    CorruptLogError,
    Journal,
    Problem,
    SessionNotFoundError,
    VerifyReport,
)
from journal.core.codec import decode, encode
from journal.core.events import MessageAdded
from journal.core.snapshot import decode_snapshot, encode_snapshot
from journal.core.state import Message
from tests.contract.stored import Stored, stored_at
from tests.helpers_compaction import log_path, session_dir

SID = "s"


def build(root: Path, messages: int = 8, *, snapshot_every: int = 0, prune: bool = False) -> Anchor:
    """A session with ``messages`` messages (and optionally snapshots / an archive); its head."""
    with Journal(root, snapshot_every=snapshot_every) as journal:
        journal.create(SID)
        for i in range(messages):
            journal.add_message(SID, "user" if i % 2 == 0 else "assistant", f"message {i} \u2028 ü")
            if prune and i == messages // 2:
                journal.compact(SID, prune=True)
        journal.create("other")
        journal.add_message("other", "user", "untouched")
        return journal.head(SID)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def verify(root: Path, *anchors: Anchor) -> VerifyReport:
    with Journal(root) as journal:
        return journal.verify(anchors=anchors)


def kinds(report: VerifyReport) -> list[tuple[str, str, int]]:
    return [(p.session_id, p.kind, p.line) for p in report.problems]


def test_an_intact_journal_verifies_clean_and_reports_every_head(root: Path) -> None:
    anchor = build(root, snapshot_every=3, prune=True)
    report = verify(root, anchor)
    assert report.ok, report.problems
    assert report.sessions == 2
    heads = {a.session_id: a for a in report.heads}
    assert heads[SID] == anchor
    assert anchor.seq == 9  # created + 8 messages
    with Journal(root) as journal:
        assert journal.head("other") == heads["other"]
        with pytest.raises(SessionNotFoundError):
            journal.head("missing")
        with pytest.raises(SessionNotFoundError):
            journal.verify("missing")


def test_verify_of_one_session_checks_only_that_one(root: Path) -> None:
    build(root)
    with Journal(root) as journal:
        report = journal.verify(SID)
        seen: list[tuple[int, int, str]] = []
        everything = journal.verify(progress=lambda done, total, sid: seen.append((done, total, sid)))
    assert (report.sessions, report.events) == (1, 9)
    assert (everything.sessions, everything.events) == (2, 11)
    assert sorted(s for _, _, s in seen) == ["other", SID]
    assert [d for d, _, _ in seen] == [1, 2]


@pytest.mark.parametrize(
    ("damage", "kind", "line"),
    [
        ("flip", "edited", 4),
        ("garbage", "damaged", 4),
        ("delete", "gap", 4),
        ("duplicate", "duplicate", 5),
        ("swap", "reordered", 5),
    ],
)
def test_each_kind_of_line_damage_is_named_at_its_line(root: Path, damage: str, kind: str, line: int) -> None:
    build(root)
    path = log_path(root, SID)
    lines = lines_of(path)
    if damage == "flip":
        lines[3] = lines[3].replace(b"message 2", b"message X")
    elif damage == "garbage":
        lines[3] = b'{"v":1,"not":"an event"}\n'
    elif damage == "delete":
        del lines[3]
    elif damage == "duplicate":
        lines.insert(4, lines[3])
    elif damage == "swap":
        lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    report = verify(root)
    assert not report.ok
    assert {p.session_id for p in report.problems} == {SID}
    first = report.problems[0]
    assert (first.kind, first.line, first.file) == (kind, line, str(path))
    assert first.offset == sum(len(x) for x in lines[: line - 1])
    assert all(h.session_id != SID for h in report.heads)


def test_every_problem_is_reported_not_only_the_first(root: Path) -> None:
    build(root, 12)
    path = log_path(root, SID)
    lines = lines_of(path)
    lines[2] = lines[2].replace(b"message 1", b"message Y")
    del lines[7]
    lines.append(lines[9])
    path.write_bytes(b"".join(lines))
    found = [(k, n) for _, k, n in kinds(verify(root))]
    assert found == [("edited", 3), ("duplicate", 13), ("gap", 8)]


def forge(stored: Stored, sid: str, seq: int, content: str) -> None:
    """Rewrite message event ``seq`` with ``content`` and recompute its hash, as an attacker
    with write access to the store would: the line still names the hash of the line before
    it, and its own hash is right for its new bytes."""
    original = decode(stored.event_line(sid, seq))
    assert isinstance(original.event, MessageAdded)
    forged = msgspec.structs.replace(original.event, content=content)
    line, digest, _ = encode(forged, original.prev)
    assert digest != original.hash
    stored.rewrite_event(sid, seq, line, digest)


def build_at(url: str) -> Anchor:
    """``build`` on any backend: a session of 8 messages (seqs 1..9) beside another; its head."""
    with Journal.from_url(url) as journal:
        journal.create(SID)
        for i in range(8):
            journal.add_message(SID, "user" if i % 2 == 0 else "assistant", f"message {i} \u2028 ü")
        journal.create("other")
        journal.add_message("other", "user", "untouched")
        return journal.head(SID)


def test_a_line_rewritten_with_its_hash_recomputed_breaks_the_chain_at_the_next_line(
    store_url: str,
) -> None:
    # Oracle: the chain. The rewritten line (seq 4) checks out on its own, so it is not the
    # one reported: the next line (seq 5) names the old hash of seq 4 and is reported as not
    # chaining, on every backend; reads that fold it refuse it; the other session is clean.
    stored = stored_at(store_url)
    anchor = build_at(store_url)
    forge(stored, SID, 4, "forged in the middle")
    with Journal.from_url(store_url) as journal:
        report = journal.verify()
        assert [(p.kind, p.session_id, p.line) for p in report.problems] == [("edited", SID, 5)]
        assert "does not chain to seq 4" in report.problems[0].message
        assert [h.session_id for h in report.heads] == ["other"]
        # The exported head (seq 9) still matches its line: the break is found by the chain.
        assert journal.verify(anchors=[anchor]).problems == report.problems
        with pytest.raises(CorruptLogError) as info:
            journal.replay(SID)
        assert info.value.line == 5


def test_a_rewritten_last_line_is_caught_by_the_exported_head_only(store_url: str) -> None:
    # Oracle: the head exported before the rewrite. The last line (seq 9) is rewritten with
    # its hash recomputed: it checks out and chains, and no line after it names its old hash,
    # so verify without the anchor is clean (by design: docs/audit.md) and only the anchor
    # tells, on every backend.
    stored = stored_at(store_url)
    anchor = build_at(store_url)
    forge(stored, SID, 9, "something else entirely")
    with Journal.from_url(store_url) as journal:
        assert journal.verify().ok
        assert journal.get(SID).messages[-1].content == "something else entirely"
        report = journal.verify(anchors=[anchor])
        assert [(p.kind, p.session_id) for p in report.problems] == [("edited", SID)]
        assert "seq 9 is not the event the exported head names" in report.problems[0].message
        assert journal.head(SID) != anchor


def test_a_cut_at_a_line_boundary_is_caught_by_a_snapshot_or_an_anchor(root: Path) -> None:
    anchor = build(root, snapshot_every=4)
    path = log_path(root, SID)
    lines = lines_of(path)
    path.write_bytes(b"".join(lines[:-1]))  # seq 9 is gone, but no snapshot covered it
    assert verify(root).ok
    path.write_bytes(b"".join(lines[:-2]))  # seq 8 is gone: the snapshot at 8 covered it
    report = verify(root)
    assert [(p.kind, Path(p.file).name) for p in report.problems] == [
        ("truncated", "snapshot-00000000000000000008.snap")
    ]
    assert "log ends at seq 7" in report.problems[0].message
    for snapshot in session_dir(root, SID).glob("snapshot-*.snap"):
        snapshot.unlink()
    assert verify(root).ok  # nothing left that covers the lost events: by design (docs/audit.md)
    report = verify(root, anchor)
    assert [p.kind for p in report.problems] == ["truncated"]
    assert "ends at seq 7" in report.problems[0].message


def test_a_cut_inside_the_last_line_is_a_torn_write_cut_and_logged(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build(root)
    path = log_path(root, SID)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with caplog.at_level(logging.WARNING, logger="journal"):
        report = verify(root)
    assert report.ok, report.problems
    assert any("torn" in r.getMessage() for r in caplog.records)
    assert path.read_bytes() == data[: data.rfind(b"\n", 0, len(data) - 1) + 1]


def test_a_damaged_snapshot_and_a_forged_one_are_reported(root: Path) -> None:
    build(root, snapshot_every=4)
    folder = session_dir(root, SID)
    snapshot = folder / "snapshot-00000000000000000008.snap"
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert [p.kind for p in verify(root).problems] == ["snapshot_damaged"]
    # A forged snapshot: right seq and hash, a different message, valid checksum.
    state, head = decode_snapshot(data)
    forged = list(state.messages)
    forged[0] = msgspec.structs.replace(forged[0], content="forged")
    snapshot.write_bytes(encode_snapshot(dataclasses.replace(state, messages=forged), head))
    report = verify(root)
    assert [p.kind for p in report.problems] == ["snapshot_mismatch"]
    with Journal(root) as journal:
        assert journal.get(SID).messages[0].content == "forged"  # readers trust a valid cache...
        repaired = journal.repair(SID)
        assert [Path(m.source).name for m in repaired.moved] == [snapshot.name]
        assert journal.get(SID).messages[0].content.startswith("message 0")  # ...until repaired
        assert journal.verify().ok


def test_repair_keeps_the_intact_prefix_and_quarantines_the_rest_byte_for_byte(root: Path) -> None:
    build(root, snapshot_every=3)
    path = log_path(root, SID)
    original = path.read_bytes()
    lines = lines_of(path)
    lines[5] = lines[5].replace(b"message 4", b"message Z")
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    folder = session_dir(root, SID)
    snaps_before = sorted(p.name for p in folder.glob("snapshot-*.snap"))
    with Journal(root) as journal:
        with pytest.raises(CorruptLogError):
            journal.replay(SID)
        plan = journal.repair(SID, dry_run=True)
        assert path.read_bytes() == damaged  # a dry run changes nothing
        assert not (folder / "quarantine").exists()
        assert plan.dry_run
        assert plan.kept == 5
        assert all(m.destination is None for m in plan.moved)
        report = journal.repair(SID)
        assert report.kept == 5
        assert [(m.source, m.offset, m.size) for m in report.moved] == [
            (m.source, m.offset, m.size) for m in plan.moved
        ]
        cut = sum(len(x) for x in lines[:5])
        kept = path.read_bytes()
        assert kept == damaged[:cut]
        moved = report.moved[0]
        assert moved.destination is not None
        assert report.quarantine is not None
        assert kept + Path(moved.destination).read_bytes() == damaged  # nothing lost
        # Snapshots beyond the kept prefix moved too, and are still there, in quarantine.
        assert sorted(p.name for p in folder.glob("snapshot-*.snap")) == [
            n for n in snaps_before if int(n[9:29]) <= 5
        ]
        assert {Path(m.destination or "").name for m in report.moved[1:]} == {
            n for n in snaps_before if int(n[9:29]) > 5
        }
        recorded = json.loads((Path(report.quarantine) / "repair.json").read_text())
        assert recorded["kept"] == 5
        assert len(recorded["moved"]) == len(report.moved)
        for entry in Path(report.quarantine).iterdir():
            assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        assert stat.S_IMODE(os.stat(report.quarantine).st_mode) == 0o700
        assert journal.verify().ok
        assert journal.get(SID).version == 5
        assert journal.add_message(SID, "user", "after repair").seq == 6
        again = journal.repair(SID)
        assert not again.changed
        assert again.quarantine is None
    with Journal(root) as fresh:
        assert [m.content for m in fresh.get(SID).messages][-1] == "after repair"
        assert original.startswith(path.read_bytes()[:cut])


def test_repair_of_damage_in_the_archive_keeps_what_precedes_it(root: Path) -> None:
    build(root, 10, prune=True)
    folder = session_dir(root, SID)
    (segment,) = (folder / "archive").glob("*.jsonl.gz")
    lines = gzip.decompress(segment.read_bytes()).splitlines(keepends=True)
    assert len(lines) >= 4
    lines[3] = lines[3].replace(b"message 2", b"message Q")
    damaged = gzip.compress(b"".join(lines))
    segment.write_bytes(damaged)
    log_before = log_path(root, SID).read_bytes()
    with Journal(root) as journal:
        report = journal.verify()
        assert [(p.kind, p.file, p.line) for p in report.problems] == [("edited", str(segment), 4)]
        with pytest.raises(CorruptLogError):
            list(journal.events(SID))
        repaired = journal.repair(SID)
        assert repaired.kept == 3
        names = {Path(m.source).name for m in repaired.moved}
        assert {segment.name, "events.jsonl"} <= names
        quarantined = {Path(m.destination or "").name: Path(m.destination or "") for m in repaired.moved}
        assert quarantined["events.jsonl"].read_bytes() == log_before
        assert quarantined[f"archive-{segment.name}"].read_bytes() == damaged
        assert not segment.exists()
        assert journal.verify().ok, journal.verify().problems
        assert [e.seq for e in journal.events(SID)] == [1, 2, 3]
        assert journal.get(SID).version == 3
        assert journal.add_message(SID, "user", "on").seq == 4
        assert journal.verify().ok


def test_a_session_whose_id_cannot_be_read_is_verified_under_its_folder_name(root: Path) -> None:
    build(root)
    path = log_path(root, SID)
    lines = lines_of(path)
    lines[0] = b"garbage\n"
    path.write_bytes(b"".join(lines))
    with Journal(root) as journal:
        assert list(journal.sessions()) == ["other"]
        report = journal.verify()
    (problem,) = [p for p in report.problems if p.line == 1]
    assert problem == Problem(
        session_id=path.parent.name, kind="damaged", file=str(path), line=1, offset=0, message=problem.message
    )
    with Journal(root) as journal:
        report_one = journal.repair(SID)
        assert report_one.kept == 0
        assert not journal.exists(SID)  # nothing was provably intact: all of it is in quarantine
        assert journal.verify().ok
        assert journal.create(SID).version == 1


def test_messages_compare_equal_whatever_their_storage(root: Path) -> None:
    # The snapshot comparison relies on Message equality across lazily decoded snapshots.
    build(root, snapshot_every=4)
    with Journal(root) as journal:
        state = journal.get(SID)
        assert isinstance(state.messages[0], Message)
        assert journal.replay(SID) == state
