"""journal.testing tests itself: strategies, the model and the machine, used as users would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from journal import CorruptLogError, InvalidSessionIdError, Journal, MessageAdded, Session, replay
from journal.backends.files.layout import Layout
from journal.testing import InMemoryJournal, JournalMachine, canon, event_facts, strategies
from tests.machines import machine_settings


def test_importing_journal_never_imports_hypothesis() -> None:
    code = "import sys, journal; journal.Journal; assert 'hypothesis' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=40)
@given(sid=strategies.session_ids(), content=strategies.contents, metadata=strategies.metadata)
def test_drawn_values_are_accepted_and_come_back_unchanged(
    tmp_path_factory: pytest.TempPathFactory, sid: str, content: str, metadata: dict[str, Any]
) -> None:
    root = tmp_path_factory.mktemp("values")
    with Journal(root, fsync="never") as journal:
        journal.create(sid)
        message = journal.add_message(sid, "user", content, metadata=metadata)
    with Journal(root) as fresh:
        (got,) = fresh.get(sid).messages
    assert (got.content, got.id) == (content, message.id)
    assert canon(got.metadata) == canon(metadata)


@given(bad=strategies.invalid_session_ids)
def test_invalid_session_ids_are_refused_by_the_journal_and_the_model(bad: Any) -> None:
    with pytest.raises(InvalidSessionIdError):
        InMemoryJournal().create(bad)
    with Journal("unused-root-never-created") as journal, pytest.raises(InvalidSessionIdError):
        journal.create(bad)
    assert not Path("unused-root-never-created").exists()


def _plant(root: Path, sid: str, data: bytes) -> Path:
    path = Layout(root).log_path(sid)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


@settings(max_examples=30)
@given(events=strategies.event_sequences("s"))
def test_event_sequences_are_histories_the_journal_reads_back(
    tmp_path_factory: pytest.TempPathFactory, events: list[Any]
) -> None:
    root = tmp_path_factory.mktemp("seq")
    _plant(root, "s", strategies.encode_log(events))
    with Journal(root) as journal:
        assert [event_facts(e) for e in journal.events("s")] == [event_facts(e) for e in events]
        state = journal.get("s")
        assert journal.verify().ok
    folded = replay(events)
    assert isinstance(folded, Session)
    assert state.version == folded.version == len(events)


@settings(max_examples=40)
@given(damage=strategies.damaged_logs("s"))
def test_damaged_logs_are_always_rejected_and_reported(
    tmp_path_factory: pytest.TempPathFactory, damage: strategies.Damage
) -> None:
    root = tmp_path_factory.mktemp("damage")
    _plant(root, "s", damage.damaged)
    with Journal(root) as journal:
        with pytest.raises(CorruptLogError):
            list(journal.events("s"))
        report = journal.verify()
    assert not report.ok, damage.kind
    assert report.problems[0].line <= damage.line + 1


# -- a user's machine: their handler writes through the journal; the model says what it should do


def chat_handler(journal: Journal, session_id: str, text: str) -> dict[str, Any]:
    """A Flask-style handler: append the user's message and a canned reply."""
    session = journal.get_or_create(session_id)
    journal.add_message(session_id, "user", text, expected_version=session.version)
    reply = journal.add_message(session_id, "assistant", f"echo: {text}")
    return {"version": reply.seq}


class ChatMachine(JournalMachine):
    """The kit's machine plus one rule for the app's own handler."""

    @rule(data=st.data(), text=strategies.short_texts)
    def post_message(self, data: st.DataObject, text: str) -> None:
        sid = data.draw(self.session_ids, label="sid")
        existed = self.model.exists(sid)
        response = chat_handler(self.journal(), sid, text)
        # What the handler should have written, at the times the journal chose.
        events = list(self.journal().events(sid))
        if not existed:
            self.model.create(sid, now=events[-3].at)
        user, reply = events[-2], events[-1]
        assert isinstance(user, MessageAdded)
        assert isinstance(reply, MessageAdded)
        self.model.add_message(sid, "user", text, now=user.at, message_id=user.message_id)
        self.model.add_message(sid, "assistant", f"echo: {text}", now=reply.at, message_id=reply.message_id)
        assert response == {"version": self.model.get(sid).version}


def test_a_users_machine_with_its_own_rule() -> None:
    run_state_machine_as_test(ChatMachine, settings=machine_settings(max_examples=10, stateful_step_count=12))
