"""Redaction, integrity, compaction and retention, the same on every backend.

Oracles: what the backend stores, read around the library (``Stored``: the files, or the
table rows via psycopg), for "the content is gone" and "nothing changed"; reads before an
operation for "compaction changes nothing observable"; damage planted in one stored event line
for "damage is detected, located and repaired"; and a fresh Journal for "what is stored agrees".
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from journal import (
    Anchor,
    Compaction,
    CorruptLogError,
    HistoryPrunedError,
    InvalidValueError,
    Journal,
    MessageAdded,
    MessageEdited,
    MessageNotFoundError,
    MessageRedacted,
    Session,
    SessionNotFoundError,
)
from tests.contract.stored import Stored

SID = "s"
TINY = timedelta(microseconds=1)  # a retention under which every archived event is "old"


def contents(session: Session) -> list[str]:
    return [m.content for m in session.messages]


def build(journal: Journal, messages: int, sid: str = SID) -> None:
    journal.create(sid)
    for i in range(messages):
        journal.add_message(sid, "user" if i % 2 == 0 else "assistant", f"message {i} \u2028 ü")


class Reads:
    """Everything observable about one session, to compare before and after an operation."""

    def __init__(self, journal: Journal, sid: str = SID) -> None:
        self.state = journal.get(sid)
        self.events = list(journal.events(sid))
        self.at = {k: journal.replay(sid, at=k) for k in range(1, self.state.version + 1)}
        self.moments = {e.seq: journal.replay(sid, at=e.at) for e in self.events}

    def assert_same(self, journal: Journal, sid: str = SID) -> None:
        assert journal.get(sid) == self.state
        assert journal.replay(sid) == self.state
        assert list(journal.events(sid)) == self.events
        assert {k: journal.replay(sid, at=k) for k in self.at} == self.at
        assert {e.seq: journal.replay(sid, at=e.at) for e in self.events} == self.moments


# -- redaction ------------------------------------------------------------------------------


def test_redaction_erases_the_content_from_what_the_backend_stores(store_url: str, stored: Stored) -> None:
    # The secret's versions sit in the archive (pruned), in the active log and in a snapshot;
    # after the redaction no stored byte holds any of them, every other message's content is
    # still stored, and the chain (and an anchor exported before) still verifies.
    with Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        keep = journal.add_message(SID, "user", "keep me")
        secret = journal.add_message(SID, "user", "card 4111-1111", metadata={"lang": "en"}, references=[1])
        journal.add_message(SID, "assistant", "noted")
        journal.compact(SID, prune=True)  # version 1 of the secret goes into the archive
        journal.edit_message(SID, secret.id, "card 4111-2222")
        journal.add_message(SID, "user", "after the edit")
        journal.compact(SID)  # a snapshot holding version 2
        head = journal.head(SID)
        assert stored.holders("4111-1111")
        assert stored.holders("4111-2222")
        others = {text: stored.holders(text) for text in ("keep me", "noted", "after the edit")}
        assert all(others.values())
        assert stored.snapshot_seqs(SID) == [head.seq]

        returned = journal.redact_message(SID, secret.id, reason="GDPR art. 17", actor="dpo")
        state = journal.get(SID)
        assert returned == state.messages[1]

        # Whole texts: a bare "4111" also turns up inside hex hashes and ids, by chance.
        assert stored.holders("card 4111-1111") == stored.holders("card 4111-2222") == set()
        for text in others:
            assert stored.holders(text), f"{text!r} was erased too"
        assert state == journal.get(SID) == journal.replay(SID)
        erased = state.messages[1]
        assert (erased.id, erased.content, erased.redacted) == (secret.id, "", True)
        assert (dict(erased.metadata), erased.references) == ({"lang": "en"}, (1,))
        assert state.messages[0] == keep
        events = list(journal.events(SID))
        redaction = events[-1]
        assert isinstance(redaction, MessageRedacted)
        assert (redaction.message_id, redaction.reason, redaction.actor) == (secret.id, "GDPR art. 17", "dpo")
        edits = [
            e for e in events if isinstance(e, (MessageAdded, MessageEdited)) and e.message_id == secret.id
        ]
        assert [(e.content, e.redacted_by) for e in edits] == [("", redaction.seq), ("", redaction.seq)]
        for seq in range(3, head.seq + 1):
            assert journal.replay(SID, at=seq).messages[1].content == ""
        report = journal.verify(anchors=[head])
        assert report.ok, [str(p) for p in report.problems]
    with Journal.from_url(store_url) as fresh:
        assert fresh.get(SID) == state
        assert list(fresh.events(SID)) == events


def test_redaction_reaches_the_retention_base_and_hidden_messages(store_url: str, stored: Stored) -> None:
    with Journal.from_url(store_url, retention=TINY) as journal:
        journal.create(SID)
        based = journal.add_message(SID, "user", "base secret")
        journal.add_message(SID, "user", "visible")
        journal.compact(SID, prune=True)  # seqs 1..2 fold into the retention base
        cleared = journal.add_message(SID, "user", "cleared secret")
        journal.clear(SID)
        journal.add_message(SID, "user", "still here")
        assert stored.holders("base secret")
        assert stored.holders("cleared secret")
        shown = journal.get(SID)
        for message_id in (based.id, cleared.id):
            returned = journal.redact_message(SID, message_id, reason="asked")
            assert (returned.id, returned.content, returned.redacted) == (message_id, "", True)
            assert journal.get(SID).messages == shown.messages  # nothing visible changes
        assert stored.holders("secret") == set()
        assert stored.holders("still here")
        assert journal.verify().ok
        assert journal.replay(SID, at=4).messages[-1].redacted


def test_redacting_twice_appends_nothing_and_refusals_write_nothing(journal: Journal, stored: Stored) -> None:
    journal.create(SID)
    message = journal.add_message(SID, "user", "secret")
    first = journal.redact_message(SID, message.id, reason="one")
    before = stored.dump()
    assert journal.redact_message(SID, message.id, reason="two", actor="other") == first
    with pytest.raises(MessageNotFoundError) as info:
        journal.redact_message(SID, "never-added", reason="asked")
    assert (info.value.session_id, info.value.message_id) == (SID, "never-added")
    for reason in ("", None):
        with pytest.raises(InvalidValueError) as invalid:
            journal.redact_message(SID, message.id, reason=reason)  # type: ignore[arg-type]
        assert invalid.value.field == "reason"
    with pytest.raises(InvalidValueError):
        journal.edit_message(SID, message.id, "back again")  # a redacted message cannot be edited
    assert stored.dump() == before
    assert [e.reason for e in journal.events(SID) if isinstance(e, MessageRedacted)] == ["one"]


# -- head, verify, damage, repair ------------------------------------------------------------


def test_head_and_verify_with_anchors_on_a_clean_store(journal: Journal) -> None:
    build(journal, 5)
    build(journal, 2, "other")
    head = journal.head(SID)
    assert head == Anchor(session_id=SID, seq=6, hash=head.hash)
    assert len(head.hash) == 64
    report = journal.verify(anchors=[head, journal.head("other")])
    assert report.ok
    assert (report.sessions, report.events) == (2, 9)
    assert set(report.heads) == {head, journal.head("other")}
    assert journal.verify(SID).heads == (head,)
    with pytest.raises(SessionNotFoundError):
        journal.verify("missing")
    with pytest.raises(SessionNotFoundError):
        journal.head("missing")
    # An anchor whose hash the stored chain does not hold is reported, named by session.
    forged = Anchor(session_id=SID, seq=3, hash="0" * 64)
    problems = journal.verify(anchors=[forged]).problems
    assert [p.session_id for p in problems] == [SID]


def test_a_damaged_line_is_detected_located_and_repaired(store_url: str, stored: Stored) -> None:
    # Oracle: one stored event line (seq 5) edited. Reads that fold it raise CorruptLogError
    # naming line 5 (the seq: no pruning happened, so line and seq coincide on every backend);
    # verify reports it; repair keeps seqs 1..4, moves the rest aside without deleting it, and
    # the session takes the next append at seq 5. The head exported before the damage now
    # shows the cut.
    with Journal.from_url(store_url) as journal:
        build(journal, 7)
        build(journal, 1, "other")
        head = journal.head(SID)
        kept = journal.replay(SID, at=4)
    stored.tamper(SID, b"message 3 ", b"massage 3 ")
    with Journal.from_url(store_url) as journal:
        for read in (
            lambda: journal.get(SID),
            lambda: journal.replay(SID),
            lambda: list(journal.events(SID)),
        ):
            with pytest.raises(CorruptLogError) as info:
                read()
            assert isinstance(info.value, ValueError)
            assert info.value.line == 5
        assert journal.get("other").version == 2  # other sessions read on
        report = journal.verify()
        assert not report.ok
        assert {(p.session_id, p.line) for p in report.problems} >= {(SID, 5)}
        assert all(p.session_id == SID for p in report.problems)
        dry = journal.repair(SID, dry_run=True)
        assert (dry.kept, dry.dry_run) == (4, True)
        assert journal.verify().problems == report.problems  # a dry run changes nothing
        repaired = journal.repair(SID)
        assert (repaired.kept, repaired.changed) == (4, True)
        assert repaired.moved
        assert stored.holders("massage 3"), "repair must move damaged lines aside, never delete them"
        assert journal.get(SID) == kept
        assert journal.add_message(SID, "user", "after repair").seq == 5
        assert journal.verify().ok
        cut = journal.verify(anchors=[head]).problems
        assert [p.session_id for p in cut] == [SID]


def test_redaction_keeps_other_messages_in_the_quarantine(
    request: pytest.FixtureRequest, store_url: str, stored: Stored
) -> None:
    # Repair moved seqs 4..5 aside; seq 5 is another message inserted before the secret, so
    # its line names the secret's id. Redacting the secret erases the secret's content only:
    # the quarantined lines keep every other message's content (repair never loses a byte).
    with Journal.from_url(store_url) as journal:
        journal.create(SID)
        journal.add_message(SID, "user", "a")
        secret = journal.add_message(SID, "user", "the secret")
        journal.add_message(SID, "user", "damaged")
        journal.add_message(SID, "user", "inserted other", before=secret.id)
    stored.tamper(SID, b'"damaged"', b'"DAMAGED"')
    with Journal.from_url(store_url) as journal:
        assert journal.repair(SID).kept == 3
        assert stored.holders("inserted other")
        journal.redact_message(SID, secret.id, reason="asked")
        assert stored.holders("the secret") == set()
        assert stored.holders("DAMAGED")
        assert stored.holders("inserted other"), "a quarantined line of another message was lost"


def test_delete_leaves_nothing_of_the_session_stored(
    request: pytest.FixtureRequest, store_url: str, stored: Stored
) -> None:
    # After delete() no stored byte belongs to the session: not its events, snapshots, base,
    # nor what repair moved aside; a session created again under the id starts empty.
    with Journal.from_url(store_url, snapshot_every=2, retention=TINY) as journal:
        build(journal, 6)
        journal.compact(SID, prune=True)
        journal.add_message(SID, "user", "kept then damaged")
        journal.add_message(SID, "user", "quarantined tail")
        build(journal, 1, "other")
    stored.tamper(SID, b"kept then damaged", b"KEPT THEN DAMAGED")
    with Journal.from_url(store_url) as journal:
        assert journal.repair(SID).changed
        assert stored.holders("quarantined tail")
        journal.delete(SID)
        assert not journal.exists(SID)
        assert stored.holders("message 1 ") == stored.holders("quarantined tail") == set()
        assert stored.holders("DAMAGED") == set()
        assert journal.get("other").version == 2
        journal.create(SID)
        assert [e.seq for e in journal.events(SID)] == [1]
        assert journal.verify().ok


def test_repair_of_a_clean_session_changes_nothing(store_url: str, stored: Stored) -> None:
    with Journal.from_url(store_url, snapshot_every=3) as journal:
        build(journal, 6)
        journal.compact(SID, prune=True)
        journal.add_message(SID, "user", "after")
        before, reads = stored.dump(), Reads(journal)
        for dry_run in (True, False):
            report = journal.repair(SID, dry_run=dry_run)
            assert (report.kept, report.changed, report.problems, report.moved) == (8, False, (), ())
        assert stored.dump() == before
        reads.assert_same(journal)
        with pytest.raises(SessionNotFoundError):
            journal.repair("missing")


# -- snapshots, pruning, retention ----------------------------------------------------------


def test_compact_keeps_every_read_whole(store_url: str, stored: Stored) -> None:
    # A snapshot and pruning change nothing observable: state, events, replay at every seq and
    # every event's time are those before, for this Journal and a fresh one.
    with Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as journal:
        build(journal, 9)
        journal.update_settings(SID, {"k": [1, 2]})
        journal.clear(SID)
        build(journal, 1, "other")
        reads = Reads(journal)
        assert stored.snapshot_seqs(SID) == []
        assert journal.compact(SID) == [Compaction(SID, 12, 0, 0)]
        assert stored.snapshot_seqs(SID) == [12]
        reads.assert_same(journal)
        assert journal.compact(SID, prune=True) == [Compaction(SID, 12, 11, 0)]
        assert stored.active_events(SID) == 1
        reads.assert_same(journal)
        assert journal.compact(SID, prune=True) == [Compaction(SID, 12, 0, 0)]  # nothing left to move
        journal.add_message(SID, "user", "after pruning")
        reads = Reads(journal)
        assert sorted(journal.compact(prune=True)) == [
            Compaction("other", 2, 1, 0),
            Compaction(SID, 13, 1, 0),
        ]
        reads.assert_same(journal)
        with pytest.raises(SessionNotFoundError):
            journal.compact("missing")
        assert journal.verify().ok
    with Journal.from_url(store_url) as fresh:
        reads.assert_same(fresh)


def test_automatic_pruning_keeps_the_active_log_short_and_the_history_whole(
    store_url: str, stored: Stored
) -> None:
    with Journal.from_url(store_url, archive_after=4, snapshot_every=3) as journal:
        journal.create(SID)
        for i in range(15):
            journal.add_message(SID, "user", f"m{i}")
            assert 1 <= stored.active_events(SID) <= 4
        assert [e.seq for e in journal.events(SID)] == list(range(1, 17))
        assert contents(journal.replay(SID, at=3)) == ["m0", "m1"]
        reads = Reads(journal)
        assert journal.verify().ok
    with Journal.from_url(store_url, max_cached_sessions=0) as fresh:
        reads.assert_same(fresh)


def test_retention_drops_history_before_the_base_and_keeps_the_state(store_url: str) -> None:
    # Oracle: with a retention of 1 microsecond, pruning at version 10 folds seqs 1..9 into
    # the base: state and replays from 9 on are those before, events start at 10, and every
    # point before 9 (by seq or by time) raises HistoryPrunedError(first_seq=9).
    with Journal.from_url(store_url) as journal:
        build(journal, 9)
        before = Reads(journal)
    with Journal.from_url(store_url, retention=TINY) as journal:
        assert journal.compact(SID, prune=True) == [Compaction(SID, 10, 9, 9)]
    with Journal.from_url(store_url) as fresh:
        assert fresh.get(SID) == fresh.replay(SID) == before.state
        assert list(fresh.events(SID)) == before.events[9:]
        assert list(fresh.events(SID, after=3)) == before.events[9:]
        for k in range(9):
            with pytest.raises(HistoryPrunedError) as info:
                fresh.replay(SID, at=k)
            assert isinstance(info.value, LookupError)
            assert (info.value.session_id, info.value.first_seq) == (SID, 9)
        with pytest.raises(HistoryPrunedError):
            fresh.replay(SID, at=before.state.created_at)
        for k in (9, 10):
            assert fresh.replay(SID, at=k) == before.at[k]
        assert list(fresh.sessions()) == [SID]
        assert fresh.verify().ok
        # Writes go on after the base; pruning again moves the base up.
        fresh.add_message(SID, "user", "later")
    with Journal.from_url(store_url, retention=TINY, archive_after=1) as journal:
        journal.add_message(SID, "user", "later still")  # crosses archive_after: prunes
        assert journal.get(SID).version == 12
        assert [e.seq for e in journal.events(SID)] == [12]
        assert journal.replay(SID, at=11).messages[-1].content == "later"


def test_a_cold_load_reads_the_snapshot_and_only_the_events_after_it(store_url: str, stored: Stored) -> None:
    # Oracle: damage an event before the snapshot (seq 3; snapshot at 8). A fresh get() that
    # uses the snapshot reads only seqs 9.. and still returns the state before the damage;
    # replay() and events() fold from seq 1 and raise. Control: without the snapshot, get()
    # raises too, so it really was the snapshot that served the cold load.
    with Journal.from_url(store_url, snapshot_every=8, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(11):
            journal.add_message(SID, "user", f"m{i}")
        before = journal.get(SID)
    assert stored.snapshot_seqs(SID) == [8]
    stored.tamper(SID, b'"m1"', b'"M1"')
    with Journal.from_url(store_url) as fresh:
        assert fresh.get(SID) == before
        for read in (lambda: fresh.replay(SID), lambda: list(fresh.events(SID))):
            with pytest.raises(CorruptLogError) as info:
                read()
            assert info.value.line == 3
    stored.drop_snapshots(SID)
    with Journal.from_url(store_url) as fresh, pytest.raises(CorruptLogError):
        fresh.get(SID)


@pytest.mark.parametrize("keep", [0, 5])
def test_events_lost_under_a_snapshot_are_damage_that_no_writer_builds_on(
    store_url: str, stored: Stored, keep: int
) -> None:
    # Oracle: the snapshot at seq 8 proves events up to 8 were stored. With the events after
    # ``keep`` lost (a restored backup, a truncated file), serving the shorter history would
    # hide the loss, and appending seq ``keep + 1`` would fork the history the snapshot (and
    # any anchor taken since) records. Reads and writes raise, naming both seqs, and write
    # nothing; verify reports the loss; repair quarantines the snapshot, and the session goes
    # on from what is stored.
    with Journal.from_url(store_url, snapshot_every=8, snapshot_bytes=0) as journal:
        journal.create(SID)
        for i in range(8):
            journal.add_message(SID, "user", f"m{i}")
        states = {k: journal.replay(SID, at=k) for k in range(1, 10)}
    assert stored.snapshot_seqs(SID) == [8]
    stored.cut_events(SID, keep)
    before = stored.dump()
    with Journal.from_url(store_url) as fresh:
        for call in (lambda: fresh.get(SID), lambda: fresh.add_message(SID, "user", "fork")):
            with pytest.raises(CorruptLogError) as info:
                call()
            assert "run repair" in info.value.reason
            if keep:
                assert re.search(f"up to seq 8 but the .* ends? at seq {keep}", info.value.reason)
        assert stored.dump() == before
        assert "truncated" in [p.kind for p in fresh.verify(SID).problems]
        fresh.repair(SID)
        assert stored.snapshot_seqs(SID) == []
        if keep:
            assert fresh.verify(SID).ok
            assert fresh.get(SID) == states[keep]
            assert fresh.add_message(SID, "user", "next").seq == keep + 1


@pytest.mark.parametrize("where", ["only-in-quarantine", "edit-in-quarantine"])
def test_redaction_reaches_damaged_copies_in_the_quarantine(
    store_url: str, stored: Stored, where: str
) -> None:
    # Oracle: a raw search of everything the backend stores, quarantine included, for each
    # version of the secret. The damage is one byte of a line's type: the line no longer
    # checks, so repair moves it (and what follows) into the quarantine, where it still holds
    # the content. "only-in-quarantine": the secret's own line went there, so the stored
    # history no longer holds the message at all; "edit-in-quarantine": its edit did, with
    # a second version of the content. Either way redact_message must find the message and
    # erase every copy, and verify must be clean afterwards (and would name a copy left).
    secret_v1, secret_v2 = "card 4111-1111-1111-1111", "card 5500-0000-0000-0004"
    with Journal.from_url(store_url, snapshot_every=0, snapshot_bytes=0) as journal:
        journal.create(SID)
        journal.add_message(SID, "user", "before")
        secret = journal.add_message(SID, "user", secret_v1)
        journal.edit_message(SID, secret.id, secret_v2)
        journal.add_message(SID, "assistant", "after")
    damaged = b'"type":"message_added"' if where == "only-in-quarantine" else b'"type":"message_edited"'
    if where == "only-in-quarantine":
        stored.tamper(SID, b'"seq":3,"type":"message_added"', b'"seq":3,"type":"message_aDded"')
    else:
        stored.tamper(SID, damaged, b'"type":"message_eDited"')
    with Journal.from_url(store_url) as journal:
        report = journal.repair(SID)
        assert report.kept == (2 if where == "only-in-quarantine" else 3)
        assert stored.holders(secret_v2), "the damaged copy is in the quarantine"
        returned = journal.redact_message(SID, secret.id, reason="erasure request", actor="dpo")
        assert (returned.id, returned.content, returned.redacted) == (secret.id, "", True)
        if where == "only-in-quarantine":  # nothing stored but the quarantine knew the message
            assert (returned.seq, returned.role) == (0, "")
        state = journal.get(SID)
        assert state.version == report.kept + 1
        assert stored.holders(secret_v1) == set()
        assert stored.holders(secret_v2) == set()
        assert stored.holders("before")
        assert stored.holders("after")
        assert journal.verify(SID).ok
        assert journal.redact_message(SID, secret.id, reason="again") == returned
        assert journal.get(SID).version == state.version  # nothing appended the second time


def test_redacting_a_message_never_stored_anywhere_still_raises(journal: Journal, stored: Stored) -> None:
    # The quarantine is searched for the message's own lines, not for any mention: a reply
    # naming the message in its metadata does not make an unknown id redactable.
    journal.create(SID)
    journal.add_message(SID, "user", "reply", metadata={"reply_to": "f" * 32})
    before = stored.dump()
    with pytest.raises(MessageNotFoundError):
        journal.redact_message(SID, "f" * 32, reason="r")
    assert stored.dump() == before


def test_verify_names_a_quarantined_copy_that_still_holds_redacted_content(
    journal: Journal, stored: Stored
) -> None:
    # Oracle: a copy of the secret's line (taken before the redaction) put into the quarantine
    # afterwards: the content is on disk again, so verify may not say ok; it names the copy
    # as "unerased", and redacting again erases it (with no second event).
    journal.create(SID)
    secret = journal.add_message(SID, "user", "quarantined secret copy")
    copy = stored.line_holding(SID, b"quarantined secret copy")
    journal.redact_message(SID, secret.id, reason="request")
    assert journal.verify(SID).ok
    stored.plant_quarantine(SID, copy)
    assert stored.holders("quarantined secret copy")
    problems = journal.verify(SID).problems
    assert [p.kind for p in problems] == ["unerased"]
    assert "quarantine" in problems[0].file
    version = journal.get(SID).version
    assert journal.redact_message(SID, secret.id, reason="again").id == secret.id
    assert journal.get(SID).version == version
    assert stored.holders("quarantined secret copy") == set()
    assert journal.verify(SID).ok


@pytest.mark.parametrize("retention", [True, False], ids=["retention", "never-configured"])
def test_a_forged_retention_base_is_never_vouched_for_by_an_anchor(
    store_url: str, stored: Stored, retention: bool
) -> None:
    # Oracle: an exported head pins the whole history up to it. A base holding the real hash
    # of seq 8 and a made-up state (every message reads "forged"), with the lines up to 8
    # gone, keeps the chain consistent from seq 9 on: nothing stored tells it from a real
    # base. So verify with the head may never say ok: it names the base "unverifiable";
    # without anchors, like a wholly rewritten log, it is consistent. The same whether a
    # retention policy ran (a real base at seq 6 here) or never did.
    options: dict[str, Any] = {"snapshot_every": 0, "snapshot_bytes": 0}
    if retention:
        options.update(archive_after=6, retention=TINY)
    with Journal.from_url(store_url, **options) as journal:
        build(journal, 7)
        at8 = journal.get(SID)
        hash8 = journal.head(SID).hash
        for i in range(3):
            journal.add_message(SID, "user", f"later {i}")
        head = journal.head(SID)
        assert journal.verify(SID, anchors=[head]).ok != retention  # a real base: not vouched either
    assert at8.version == 8
    forged = dataclasses.replace(
        at8, messages=[msgspec.structs.replace(m, content="forged") for m in at8.messages]
    )
    stored.forge_base(SID, forged, 8, hash8)
    with Journal.from_url(store_url) as fresh:
        assert {m.content for m in fresh.get(SID).messages[: len(at8.messages)]} == {"forged"}
        report = fresh.verify(SID, anchors=[head])
        assert not report.ok
        assert [p.kind for p in report.problems] == ["unverifiable"]
        assert "seq 8" in report.problems[0].message
        assert fresh.verify(SID).ok
