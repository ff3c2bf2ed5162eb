"""Tools to test concurrency in your own chat service, with the journal as the oracle.

Install with ``pip install "chat-journal[testing]"`` (it needs Hypothesis; ``import journal`` never
imports this package). What is here:

* ``strategies``: Hypothesis strategies for session ids (ordinary and hostile), roles,
  contents, metadata, settings, valid event sequences and damaged logs;
* ``InMemoryJournal``: the reference model, a plain in-memory implementation of the public API
  with the same semantics and errors;
* ``JournalMachine``: a state machine base class that drives real Journals beside the model;
* ``History`` and ``check_linearizable``: record a concurrent history and decide whether some
  order consistent with real time explains every result; ``run_workers`` records one from
  several processes.

See ``docs/testing.md``.
"""

from __future__ import annotations

from journal.testing import strategies
from journal.testing.compare import (
    assert_same_error,
    assert_same_message,
    assert_same_session,
    event_facts,
    visible_ids,
)
from journal.testing.linearizability import (
    OPERATIONS,
    CheckResult,
    History,
    Operation,
    check_linearizable,
    observe,
)
from journal.testing.machine import JournalMachine, default_configs
from journal.testing.model import InMemoryJournal, ModelEvent, ModelMessage, ModelSession, canon, plain
from journal.testing.workers import DEFAULT_MIX, run_workers

__all__ = [
    "DEFAULT_MIX",
    "OPERATIONS",
    "CheckResult",
    "History",
    "InMemoryJournal",
    "JournalMachine",
    "ModelEvent",
    "ModelMessage",
    "ModelSession",
    "Operation",
    "assert_same_error",
    "assert_same_message",
    "assert_same_session",
    "canon",
    "check_linearizable",
    "default_configs",
    "event_facts",
    "observe",
    "plain",
    "run_workers",
    "strategies",
    "visible_ids",
]
