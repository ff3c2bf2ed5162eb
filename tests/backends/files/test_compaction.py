"""Pruning into archive segments, history read through them, and retention, on real files.

Oracles: the log's bytes before pruning (segments must hold them byte for byte, and archive +
active log must be the log as it would be had nothing been pruned), and the reads of a fresh
Journal taken before pruning (``events``, ``replay(at=k)`` for every k, ``get``), which every
read after pruning must reproduce exactly.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from journal import (
    Compaction,
    CorruptLogError,
    Created,
    Event,
    HistoryPrunedError,
    Journal,
    MessageAdded,
    Session,
    SessionNotFoundError,
)
from journal.core.codec import encode
from tests.helpers_compaction import (
    archived_bytes,
    flip,
    line_ends,
    log_path,
    segment_name,
    segment_names,
    segment_paths,
    session_dir,
    snapshot_name,
    snapshot_names,
)

SID = "s"
TINY = timedelta(microseconds=1)  # a retention under which every archived event is "old"


def quiet(root: Path, **options: Any) -> Journal:
    """A Journal without automatic snapshots: every snapshot seen is one that compact made."""
    return Journal(root, snapshot_every=0, snapshot_bytes=0, **options)


def build(journal: Journal, count: int, session_id: str = SID) -> None:
    """Create the session and append until it holds ``count`` events, of every kind.

    Message ``seq`` reads ``"m<seq> ..."``; seqs 4, 10, ... change settings, 6, 12, ... clear.
    """
    journal.create(session_id, actor="setup")
    for seq in range(2, count + 1):
        if seq % 6 == 4:
            journal.update_settings(session_id, {"k": seq, "nested": {"at": [seq, None]}})
        elif seq % 6 == 0:
            journal.clear(session_id)
        else:
            journal.add_message(session_id, "user", f"m{seq} é\u2028", metadata={"i": seq}, references=[seq])


def build_more(journal: Journal, count: int, session_id: str = SID) -> None:
    """Append ``count`` more messages."""
    for i in range(count):
        journal.add_message(session_id, "user", f"more {i}")


class Reads:
    """Everything a fresh Journal reads of a session: the oracle taken before pruning.

    ``first`` is the earliest seq replayed to (the seq of a retention base, if there is one).
    """

    def __init__(self, root: Path, session_id: str = SID, first: int = 1) -> None:
        with Journal(root) as fresh:
            self.state = fresh.get(session_id)
            assert fresh.replay(session_id) == self.state
            self.events = list(fresh.events(session_id))
            self.at = {k: fresh.replay(session_id, at=k) for k in range(first, self.state.version + 1)}
            self.times = {e.seq: fresh.replay(session_id, at=e.at) for e in self.events}


def assert_reads_unchanged(root: Path, before: Reads, session_id: str = SID) -> None:
    """A fresh Journal reads exactly what it read before: full history, every point, the state."""
    with Journal(root) as fresh:
        assert fresh.get(session_id) == before.state
        assert fresh.replay(session_id) == before.state
        assert list(fresh.events(session_id)) == before.events
        for k, state in before.at.items():
            assert fresh.replay(session_id, at=k) == state, f"replay(at={k})"
        for event in before.events:
            # A time point: the state after the last event at or before that time.
            assert fresh.replay(session_id, at=event.at) == before.times[event.seq]
        with pytest.raises(SessionNotFoundError):
            fresh.replay(session_id, at=0)
        assert session_id in set(fresh.sessions())


def first_line(root: Path, session_id: str = SID) -> dict[str, object]:
    data = log_path(root, session_id).read_bytes()
    parsed: dict[str, object] = json.loads(data[: data.index(b"\n")])
    return parsed


# -- pruning ---------------------------------------------------------------------------------


def test_prune_keeps_only_the_last_line_and_archives_the_rest_byte_for_byte(root: Path) -> None:
    # Oracle: the log's bytes just before compact(prune=True). The segment 1..11 must gunzip to
    # exactly lines 1..11, the active log must be exactly line 12, and the snapshot is at 12.
    with quiet(root) as journal:
        build(journal, 12)
        original = log_path(root, SID).read_bytes()
        cut = line_ends(original)[10]
        result = journal.compact(SID, prune=True)
    assert result == [Compaction(SID, 12, 11, 0)]
    assert segment_names(root, SID) == [segment_name(1, 11)]
    (segment,) = segment_paths(root, SID)
    assert gzip.decompress(segment.read_bytes()) == original[:cut]
    assert log_path(root, SID).read_bytes() == original[cut:]
    assert snapshot_names(root, SID) == [snapshot_name(12)]
    assert first_line(root)["seq"] == 12


def test_history_reads_through_the_archive_and_appends_chain_on(root: Path) -> None:
    # Oracle: the reads of a fresh Journal before pruning (see Reads). After pruning, the
    # session is still listed although the active log no longer starts with `created`; the
    # next append gets seq N + 1 and its prev is the hash of seq N (the active log's line 1).
    with quiet(root) as journal:
        build(journal, 14)
    before = Reads(root)
    with quiet(root) as journal:
        journal.compact(SID, prune=True)
    assert first_line(root)["type"] != "created"
    assert_reads_unchanged(root, before)
    with quiet(root) as journal:
        message = journal.add_message(SID, "user", "after the prune")
        assert message.seq == 15
    lines = log_path(root, SID).read_bytes().split(b"\n")
    assert json.loads(lines[1])["prev"] == json.loads(lines[0])["hash"]
    with Journal(root) as fresh:
        assert [e.seq for e in fresh.events(SID)] == list(range(1, 16))
        assert list(fresh.events(SID))[:14] == before.events
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.get(SID).messages[-1] == message


def test_repeated_prune_adds_segments_and_archive_plus_log_is_the_whole_log(root: Path) -> None:
    # Oracle: `whole`, the log as it would be had nothing been pruned (the original bytes plus
    # every line appended since). After each prune, the gunzipped segments in name order
    # followed by the active log must equal it byte for byte. A prune of a one-line log moves
    # nothing and adds no segment.
    with quiet(root) as journal:
        build(journal, 8)
        whole = log_path(root, SID).read_bytes()
        assert journal.compact(SID, prune=True) == [Compaction(SID, 8, 7, 0)]
        assert archived_bytes(root, SID) + log_path(root, SID).read_bytes() == whole
        active = log_path(root, SID).read_bytes()
        for i in range(5):
            journal.add_message(SID, "user", f"later {i}")
        whole += log_path(root, SID).read_bytes()[len(active) :]
        assert journal.compact(SID, prune=True) == [Compaction(SID, 13, 5, 0)]
        assert segment_names(root, SID) == [segment_name(1, 7), segment_name(8, 12)]
        assert archived_bytes(root, SID) + log_path(root, SID).read_bytes() == whole
        assert journal.compact(SID, prune=True) == [Compaction(SID, 13, 0, 0)]
        assert segment_names(root, SID) == [segment_name(1, 7), segment_name(8, 12)]
    assert snapshot_names(root, SID) == [snapshot_name(13)]
    with Journal(root) as fresh:
        events = list(fresh.events(SID))
        assert [e.seq for e in events] == list(range(1, 14))
        assert fresh.get(SID) == fresh.replay(SID)
        assert [fresh.replay(SID, at=k).version for k in range(1, 14)] == list(range(1, 14))


def test_cached_reader_in_another_instance_follows_prunes_and_appends(root: Path) -> None:
    # Oracle: a fresh Journal's replay at each step. The reader is another Journal instance
    # whose cached view points into the log file that pruning replaces; each of its reads
    # must equal the fresh replay, and its own append must land at the right seq.
    with quiet(root) as writer, quiet(root) as reader:
        build(writer, 10)
        assert reader.get(SID).version == 10
        writer.compact(SID, prune=True)

        def fresh_state() -> Session:
            with Journal(root) as fresh:
                return fresh.replay(SID)

        assert reader.get(SID) == fresh_state()
        for i in range(3):
            writer.add_message(SID, "user", f"after prune {i}")
        assert reader.get(SID) == fresh_state()
        assert reader.get(SID).version == 13
        writer.compact(SID, prune=True)
        writer.add_message(SID, "user", "after the second prune")
        assert reader.get(SID) == fresh_state()
        assert [e.seq for e in reader.events(SID)] == list(range(1, 15))
        message = reader.add_message(SID, "assistant", "from the reader")
        assert message.seq == 15
        assert writer.get(SID) == fresh_state()
        assert writer.get(SID).messages[-1] == message


def test_archive_after_prunes_when_the_writer_crosses_the_mark(root: Path) -> None:
    # Oracle, a simulation of the rule: when an append leaves more than K=4 events in the
    # active log, that writer moves all but the last into a new segment first..last.
    k = 4
    active = 0
    segments: list[str] = []
    with quiet(root, archive_after=k) as journal:
        for seq in range(1, 19):
            if seq == 1:
                journal.create(SID)
            else:
                journal.add_message(SID, "user", f"m{seq}")
            active += 1
            if active > k:
                segments.append(segment_name(seq - active + 1, seq - 1))
                active = 1
            assert segment_names(root, SID) == segments, f"after seq {seq}"
            assert len(line_ends(log_path(root, SID).read_bytes())) == active, f"after seq {seq}"
    assert len(segments) >= 3
    with Journal(root) as fresh:
        assert [e.seq for e in fresh.events(SID)] == list(range(1, 19))
        assert fresh.get(SID) == fresh.replay(SID)
        assert fresh.get(SID).version == 18


def test_compact_every_session_reports_progress(root: Path) -> None:
    # Oracle: one progress call (done, total, id) per session, in the order compact visited
    # them (that of sessions()), done counting 1..total; one Compaction per session.
    with quiet(root) as journal:
        for n, session_id in ((3, "a"), (5, "b"), (7, "c")):
            build(journal, n, session_id)
        listed = list(journal.sessions())
        calls: list[tuple[int, int, str]] = []
        results = journal.compact(prune=True, progress=lambda *call: calls.append(call))
    assert calls == [(i, 3, session_id) for i, session_id in enumerate(listed, 1)]
    assert sorted(results) == [Compaction("a", 3, 2, 0), Compaction("b", 5, 4, 0), Compaction("c", 7, 6, 0)]
    for session_id, n in (("a", 3), ("b", 5), ("c", 7)):
        assert segment_names(root, session_id) == [segment_name(1, n - 1)]


@pytest.mark.parametrize("retention", [False, True], ids=["prune", "prune-and-retention"])
def test_events_iterator_taken_before_a_compaction_reads_a_contiguous_history(
    root: Path, retention: bool
) -> None:
    # Oracle: events() promises every event, streamed, with CorruptLogError only at a damaged
    # line. Nothing is damaged here: another Journal (another process, in real life) compacts
    # the session between the call and the iteration, which compact() says is safe beside
    # readers. Without retention nothing is dropped, so the stream must be seqs 1..10; with
    # retention, history may legitimately start later, but must still be contiguous up to 10.
    with quiet(root) as reader, quiet(root, retention=TINY if retention else None) as compactor:
        build(reader, 8)
        reader.compact(SID, prune=True)
        build_more(reader, 2)
        stream = reader.events(SID)
        compactor.compact(SID, prune=True)
        seqs = [e.seq for e in stream]
    if retention:
        assert seqs == list(range(seqs[0], 11))
    else:
        assert seqs == list(range(1, 11))


def test_compact_of_a_missing_session_raises_and_writes_nothing(root: Path) -> None:
    # Oracle: the session folder does not exist before, and must not after.
    with quiet(root) as journal:
        journal.create("other")
        with pytest.raises(SessionNotFoundError):
            journal.compact("nope", prune=True)
        assert list(journal.sessions()) == ["other"]
    assert not session_dir(root, "nope").exists()


# -- damage in the archive -------------------------------------------------------------------


def _tamper_line(segment: Path) -> None:
    # A valid gzip of the archived lines with one content character changed in line 3: only
    # the line's own checks (content digest) can find it.
    lines = gzip.decompress(segment.read_bytes()).split(b"\n")
    assert b'"content":"m3 ' in lines[2]
    lines[2] = lines[2].replace(b'"content":"m3 ', b'"content":"m9 ')
    segment.write_bytes(gzip.compress(b"\n".join(lines)))


def _flip_segment(segment: Path, where: str) -> None:
    size = segment.stat().st_size
    # 10: first byte of the deflate data (gzip.compress writes no file name); -8: the CRC;
    # -1: the high byte of the length; the middle: inside the compressed lines.
    offset = {"deflate-start": 10, "middle": size // 2, "crc": size - 8, "length": size - 1}[where]
    flip(segment, offset)


def _tamper_seq_of_last_line(segment: Path) -> None:
    # The last line's seq digits "13" respelled "03": a line that no longer checks out (its
    # hash covers the seq), and whose seq now looks like one an earlier segment already held.
    lines = gzip.decompress(segment.read_bytes()).split(b"\n")
    assert lines[-2].startswith(b'{"v":1,"seq":13,')
    lines[-2] = lines[-2].replace(b'"seq":13,', b'"seq":03,', 1)
    segment.write_bytes(gzip.compress(b"\n".join(lines)))


@pytest.mark.parametrize(
    "damage", ["deflate-start", "middle", "crc", "length", "truncated", "tampered-line", "tampered-seq"]
)
def test_damaged_segment_fails_history_reads_naming_it_but_not_get(root: Path, damage: str) -> None:
    # Oracle: segments 1..9 and 10..13 are the only copies of those events. Reading history
    # through the damaged one (events, replay, and for the first segment replay(at=2)) must
    # raise CorruptLogError whose path is that segment; get() starts from the snapshot at 14
    # and reads only the active log, so it still returns the state recorded before.
    with quiet(root) as journal:
        build(journal, 10)
        journal.compact(SID, prune=True)
        for i in range(4):
            journal.add_message(SID, "user", f"later {i}")
        journal.compact(SID, prune=True)
        before = journal.get(SID)
    first, second = segment_paths(root, SID)
    segment = second if damage == "tampered-seq" else first
    if damage == "truncated":
        segment.write_bytes(segment.read_bytes()[:-10])
    elif damage == "tampered-line":
        _tamper_line(segment)
    elif damage == "tampered-seq":
        _tamper_seq_of_last_line(segment)
    else:
        _flip_segment(segment, damage)
    with Journal(root) as fresh:
        assert fresh.get(SID) == before
        reads: list[tuple[str, Callable[[], object]]] = [
            ("events", lambda: list(fresh.events(SID))),
            ("replay", lambda: fresh.replay(SID)),
        ]
        if segment == first:
            reads.append(("replay(at=2)", lambda: fresh.replay(SID, at=2)))
        for name, read in reads:
            with pytest.raises(CorruptLogError) as info:
                read()
            assert info.value.path == str(segment), f"{name}: {info.value}"


# -- retention -------------------------------------------------------------------------------


def test_retention_folds_old_segments_into_the_base(root: Path) -> None:
    # Oracle: the reads before pruning. With a retention of 1 microsecond every archived event
    # is older than the cutoff, so the new segment 1..9 is folded into archive/base.snap and
    # deleted. Then: get() and replay() unchanged, replay(at=k) for k < 9 raises
    # HistoryPrunedError(first_seq=9), replay(at=k >= 9) equals the state before, events()
    # starts at 10, and the session is still listed.
    with quiet(root) as journal:
        build(journal, 10)
    before = Reads(root)
    with quiet(root, retention=TINY) as journal:
        assert journal.compact(SID, prune=True) == [Compaction(SID, 10, 9, 9)]
    archive = session_dir(root, SID) / "archive"
    assert sorted(p.name for p in archive.iterdir() if not p.name.startswith(".")) == ["base.snap"]
    assert_base_at(root, before, 9)

    # More events, pruned again: the base moves up to 13 and covers everything but seq 14.
    with quiet(root) as journal:
        for i in range(4):
            journal.add_message(SID, "user", f"later {i}")
    before = Reads(root, first=9)
    with quiet(root, retention=TINY) as journal:
        assert journal.compact(SID, prune=True) == [Compaction(SID, 14, 4, 4)]
    assert segment_names(root, SID) == []
    assert_base_at(root, before, 13)


def assert_base_at(root: Path, before: Reads, base: int) -> None:
    with Journal(root) as fresh:
        state = before.state
        assert fresh.get(SID) == state
        assert fresh.replay(SID) == state
        assert [e.seq for e in fresh.events(SID)] == list(range(base + 1, state.version + 1))
        for k in range(base):
            with pytest.raises(HistoryPrunedError) as info:
                fresh.replay(SID, at=k)
            assert info.value.first_seq == base
            assert info.value.session_id == SID
        for k in range(base, state.version + 1):
            assert fresh.replay(SID, at=k) == before.at[k], f"replay(at={k})"
        with pytest.raises(HistoryPrunedError):
            fresh.replay(SID, at=state.created_at)
        assert list(fresh.sessions()) == [SID]


def write_old_log(root: Path, count: int, start: datetime) -> None:
    """A session whose first ``count`` events were written one minute apart from ``start``.

    Written with the codec, line by line, chained from GENESIS: a log as an older journal
    would have left it (the only way to have old events without waiting).
    """
    events: list[Event] = [Created(seq=1, at=start, actor=None, session_id=SID)]
    for seq in range(2, count + 1):
        at = start + timedelta(minutes=seq)
        events.append(
            MessageAdded(
                seq=seq, at=at, actor=None, message_id=uuid.uuid4().hex, role="user", content=f"old {seq}"
            )
        )
    prev = "0" * 64
    lines = []
    for event in events:
        line, prev, _ = encode(event, prev)
        lines.append(line)
    session_dir(root, SID).mkdir(parents=True, mode=0o700)
    log_path(root, SID).write_bytes(b"".join(lines))


def test_retention_keeps_segments_holding_any_recent_event(root: Path) -> None:
    # Oracle: seqs 1..6 are dated 2020, later ones now. Segment 1..5 is all old and is folded
    # into the base; segment 6..9 holds seq 6 (old) but also 7..9 (recent), so it stays, and
    # with it the history from seq 6 on.
    write_old_log(root, 6, datetime(2020, 1, 1, tzinfo=timezone.utc))
    with quiet(root) as journal:
        journal.compact(SID, prune=True)
        for i in range(4):
            journal.add_message(SID, "user", f"new {i}")
        journal.compact(SID, prune=True)
    assert segment_names(root, SID) == [segment_name(1, 5), segment_name(6, 9)]
    before = Reads(root)
    with quiet(root, retention=timedelta(days=30)) as journal:
        assert journal.compact(SID, prune=True) == [Compaction(SID, 10, 0, 5)]
    assert segment_names(root, SID) == [segment_name(6, 9)]
    assert (session_dir(root, SID) / "archive" / "base.snap").exists()
    assert_base_at(root, before, 5)


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
def test_damaged_retention_base_is_an_error_not_a_cache(root: Path, damage: str) -> None:
    # Oracle: the base is the only record of events 1..9, so a history read through a damaged
    # (or vanished) base must raise CorruptLogError, never start from nothing. get() may still
    # answer from the snapshot and the active log; without the snapshot it must raise too.
    with quiet(root) as journal:
        build(journal, 10)
        before = journal.get(SID)
    with quiet(root, retention=TINY) as journal:
        journal.compact(SID, prune=True)
    base = session_dir(root, SID) / "archive" / "base.snap"
    if damage == "flipped":
        flip(base, base.stat().st_size // 2)
    elif damage == "truncated":
        base.write_bytes(base.read_bytes()[:-1])
    else:
        base.unlink()
    with Journal(root) as fresh:
        assert fresh.get(SID) == before
        for read in (lambda: fresh.replay(SID), lambda: list(fresh.events(SID))):
            with pytest.raises(CorruptLogError) as info:
                read()
            if damage != "missing":
                assert info.value.path == str(base)
    (session_dir(root, SID) / snapshot_name(10)).unlink()
    with Journal(root) as fresh, pytest.raises(CorruptLogError):
        fresh.get(SID)


# -- a lost active log is damage, never a fresh start -------------------------------------------


@pytest.mark.parametrize("keep", ["archive", "snapshot"])
def test_a_missing_active_log_is_damage_that_repair_restores(root: Path, keep: str) -> None:
    # Oracle: the session's events before the log went missing. Treating the folder as "no
    # such session" would let get_or_create start a new session on top of the old archive,
    # whose first pruning then deleted the archived segments (20 archived events became 5).
    # Instead every read and write raises, naming the missing log; verify reports it;
    # repair makes the last archived event the active log again (the shape pruning leaves),
    # losing nothing; with only a snapshot left there is nothing to restore the log from,
    # and repair quarantines the snapshot.
    with quiet(root, archive_after=5 if keep == "archive" else None) as journal:
        build(journal, 21)
        if keep == "snapshot":
            journal.compact(SID)
        events = list(journal.events(SID))
    archived = archived_bytes(root, SID)
    assert keep == "snapshot" or archived.count(b"\n") >= 15  # most of the history is archived
    log_path(root, SID).unlink()
    with quiet(root, archive_after=5) as journal:
        for call in (
            lambda: journal.exists(SID),
            lambda: journal.get(SID),
            lambda: journal.get_or_create(SID),
            lambda: journal.add_message(SID, "user", "x"),
            lambda: journal.create(SID),
        ):
            with pytest.raises(CorruptLogError, match="active log is missing"):
                call()
        assert SID not in list(journal.sessions())
        assert not log_path(root, SID).exists()
        assert archived_bytes(root, SID) == archived
        assert not journal.verify(SID).ok
        journal.repair(SID)
        assert journal.verify().ok
        if keep == "snapshot":
            assert not journal.exists(SID)
            return
        # Every archived event is kept: the last one is the active log now.
        assert list(journal.events(SID)) == events[: archived.count(b"\n")]
        assert archived_bytes(root, SID) == archived
        assert archived.endswith(log_path(root, SID).read_bytes())
        journal.add_message(SID, "user", "after")
        assert journal.get(SID) == journal.replay(SID)


def test_a_delete_stopped_after_its_commit_point_never_hands_its_archive_to_a_new_session(
    root: Path,
) -> None:
    # Oracle: a folder left as a delete dies right after unlinking the log (its intent says
    # "deleted"): the session reads as absent, and creating it again starts from nothing
    # (one event; none of the old archive, snapshots or seqs), with the old folder gone.
    with quiet(root) as journal:
        build(journal, 12)
        journal.compact(SID, prune=True)
        journal.compact(SID)
    folder = session_dir(root, SID)
    (folder / "intent.json").write_bytes(b'{"type":"delete"}\n')
    log_path(root, SID).unlink()
    with quiet(root) as journal:
        assert not journal.exists(SID)
        assert SID not in list(journal.sessions())
        journal.create(SID)
        assert [e.seq for e in journal.events(SID)] == [1]
        assert segment_names(root, SID) == []
        assert snapshot_names(root, SID) == []
        assert not (folder / "intent.json").exists()
        assert journal.verify().ok


def test_a_delete_stopped_before_its_commit_point_never_happened(root: Path) -> None:
    # Oracle: the intent alone (the log still there) decides nothing: the session reads as
    # before, the next writer drops the intent, and a later loss of the log is damage again.
    with quiet(root) as journal:
        build(journal, 6)
        before = journal.get(SID)
    (session_dir(root, SID) / "intent.json").write_bytes(b'{"type":"delete"}\n')
    with quiet(root) as journal:
        assert journal.get(SID) == before
        journal.add_message(SID, "user", "after")
        assert not (session_dir(root, SID) / "intent.json").exists()
        assert journal.get(SID).version == before.version + 1


def test_pruning_never_deletes_a_segment_that_is_not_a_copy_of_what_it_archives(root: Path) -> None:
    # Oracle: a file under the name of the segment pruning is about to write, but not holding
    # those events (another incarnation's, a restored one): it is moved into the quarantine,
    # byte for byte, with a report; only a leftover identical to the archived lines (what an
    # interrupted pruning leaves) is deleted.
    with quiet(root) as journal:
        build(journal, 9)
    archive = session_dir(root, SID) / "archive"
    archive.mkdir()
    foreign = gzip.compress(b"not these events\n", mtime=0)
    (archive / segment_name(1, 8)).write_bytes(foreign)
    identical = gzip.compress(log_path(root, SID).read_bytes().split(b"\n", 3)[0] + b"\n", mtime=0)
    (archive / segment_name(1, 1)).write_bytes(identical)
    with quiet(root) as journal:
        journal.compact(SID, prune=True)
        assert journal.verify().ok
    assert segment_names(root, SID) == [segment_name(1, 8)]
    assert gzip.decompress(segment_paths(root, SID)[0].read_bytes()) != b"not these events\n"
    kept = list((session_dir(root, SID) / "quarantine").rglob("*.gz"))
    assert [p.read_bytes() for p in kept] == [foreign]
    assert json.loads((kept[0].parent / "repair.json").read_bytes())["moved"][0]["reason"].startswith(
        "an archive segment in the way of pruning"
    )
