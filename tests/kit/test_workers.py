"""run_workers and the checker together, on real processes and real files.

The real journal must always produce linearizable histories; a journal without its writer
lock must be caught. A worker that dies is reported at once, with its exit code and the likely
cause, never after a long wait.
"""

from __future__ import annotations

import functools
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from journal import Journal
from journal.testing import check_linearizable, run_workers
from tests.kit.doubles import durable_journal, exiting_journal, killed_journal, unlocked_journal


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


# -- workers that die, roots given as strings, factories that cannot reach a worker -----------
# The timeouts below only turn a hang (run_workers waiting for a dead worker) into a failure.


@pytest.mark.timeout(120)
def test_a_worker_that_exits_at_once_is_reported_with_its_exit_code() -> None:
    with pytest.raises(RuntimeError) as info:
        run_workers(functools.partial(exiting_journal, 3), workers=3, ops=10)
    message = str(info.value)
    assert "exit code 3" in message
    assert "if __name__ == '__main__':" in message  # the likely cause, named


@pytest.mark.timeout(120)
def test_a_worker_killed_by_a_signal_is_reported_as_such() -> None:
    with pytest.raises(RuntimeError, match="killed by SIGKILL"):
        run_workers(killed_journal, workers=2, ops=10)


@pytest.mark.parametrize("as_path", [False, True])
def test_a_root_string_or_path_is_a_factory(tmp_path: Path, as_path: bool) -> None:
    root: str | Path = tmp_path if as_path else str(tmp_path)
    history = run_workers(root, workers=3, ops=60, seed=7)
    assert len(history) == 180
    result = check_linearizable(history)
    assert result.ok, result.explanation


def test_a_postgres_url_is_a_factory(pg_url: str) -> None:
    history = run_workers(pg_url, workers=2, ops=40, seed=11)
    assert len(history) == 80
    assert check_linearizable(history).ok


def test_a_factory_that_cannot_be_pickled_is_refused_before_any_process_starts(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot be sent to the worker processes") as info:
        run_workers(lambda: Journal(tmp_path), workers=2, ops=10)
    assert "module-level function" in str(info.value)
    assert multiprocessing.active_children() == []


SCRIPT_WITHOUT_GUARD = """
import sys
from journal.testing import run_workers

run_workers(sys.argv[1], workers=2, ops=5)
print("finished")
"""


@pytest.mark.timeout(180)
def test_a_script_without_a_main_guard_fails_at_once_naming_the_guard(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT_WITHOUT_GUARD)
    # Under spawn, each worker re-runs the unguarded script, which starts workers of its own
    # during bootstrapping: multiprocessing ends those workers before they report.
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "journal")],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode != 0
    assert "finished" not in proc.stdout
    assert "if __name__ == '__main__':" in proc.stderr
