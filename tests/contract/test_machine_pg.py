"""The kit's state machine on PostgreSQL: real Journals on one schema beside the model.

Oracle: ``journal.testing.JournalMachine`` (every public call made on the Journal and on
``InMemoryJournal`` must agree; after every step the state, the full history, replays and
``verify`` of every open Journal must match the model). The files variant runs in
``tests/property/test_machine.py``; here every run gets a schema of its own, created when the
machine is made and dropped at its teardown, so no run sees another's sessions.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, ClassVar

from hypothesis.stateful import run_state_machine_as_test

from journal import Journal
from journal.testing import JournalMachine
from tests.machines import machine_settings
from tests.pg import fresh_schema, need_server


class PgJournalMachine(JournalMachine):
    """``JournalMachine`` whose Journals live in a fresh PostgreSQL schema."""

    server: ClassVar[str] = ""  # set by the test, after it skipped (or failed) without a server

    def __init__(self) -> None:
        super().__init__()
        self.schema = ExitStack()
        self.url = self.schema.enter_context(fresh_schema(self.server))

    def open_journal(self, config: dict[str, Any]) -> Journal:
        return Journal.from_url(self.url, **config)

    def teardown(self) -> None:
        try:
            super().teardown()  # closes the Journals (and their pools) first
        finally:
            self.schema.close()


def test_postgres_journals_agree_with_the_model() -> None:
    # 10 runs of 20 steps: each run starts with messages and most message writes succeed,
    # so a run does more than the 15 did when most of them missed, in about the same time.
    PgJournalMachine.server = need_server()
    run_state_machine_as_test(
        PgJournalMachine, settings=machine_settings(max_examples=10, stateful_step_count=20)
    )
