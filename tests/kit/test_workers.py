"""run_workers and the checker together, on real processes and real files.

The real journal must always produce linearizable histories; a journal without its writer
lock must be caught.
"""

from __future__ import annotations

import functools
from pathlib import Path

from journal import Journal
from journal.testing import check_linearizable, run_workers
from tests.kit.doubles import durable_journal, unlocked_journal


def test_histories_of_the_real_journal_are_linearizable(tmp_path: Path) -> None:
    history = run_workers(functools.partial(durable_journal, str(tmp_path)), workers=4, ops=150)
    assert len(history) == 600
    names = {op.name for op in history.operations}
    assert {"create", "add_message", "get", "update_settings"} <= names
    # Real contention happened: some conditional appends lost their race.
    errors = [
        op.result[1]
        for op in history.operations
        if isinstance(op.result, tuple) and op.result[:1] == ("error",)
    ]
    assert "ConflictError" in errors
    result = check_linearizable(history)
    assert result.ok, result.explanation
    with Journal(tmp_path) as journal:
        assert journal.verify().ok


def test_a_journal_without_its_writer_lock_is_caught(tmp_path: Path) -> None:
    history = run_workers(functools.partial(unlocked_journal, str(tmp_path)), workers=4, ops=150, sessions=1)
    result = check_linearizable(history)
    assert not result.ok
    assert result.counterexample, "a failing verdict names the operations no order explains"
    assert result.session_id is not None
    assert result.session_id in result.explanation
