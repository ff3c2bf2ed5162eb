"""The linearizability checker: accepts what some real-time order explains, rejects the rest.

Histories here are written by hand, with explicit invoke and return times, in the shapes the
literature names: sequential, overlapping, lost update, stale read, and operations whose
worker died before they returned.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any

import pytest

from journal import ConflictError, Journal, SessionNotFoundError
from journal.testing import History, InMemoryJournal, Operation, check_linearizable, observe

S = "s"


def session(version: int, *messages: tuple[int, str, str], settings: dict[str, Any] | None = None) -> Any:
    """The observed form of a session state (what ``observe`` makes of a Session)."""
    model = InMemoryJournal()
    model.create(S)
    for _, role, content in messages:
        model.add_message(S, role, content)
    if settings:
        model.update_settings(S, settings)
    state = model.get(S)
    assert state.version <= version
    observed = observe(state)
    return (observed[0], version, *observed[2:])


def message(seq: int, content: str, role: str = "user") -> Any:
    return (seq, role, content, (), ())


def op(
    i: int, name: str, args: tuple[Any, ...], start: int, end: int | None, result: Any, **kw: Any
) -> Operation:
    return Operation(i, f"w{i}", name, args, tuple(sorted(kw.items())), start, end, result)


def created() -> Operation:
    return op(0, "create", (S,), 0, 1, session(1))


def test_a_sequential_history_is_linearizable() -> None:
    history = [
        created(),
        op(1, "add_message", (S, "user", "a"), 2, 3, message(2, "a")),
        op(2, "get", (S,), 4, 5, session(2, (2, "user", "a"))),
    ]
    assert check_linearizable(history).ok


def test_overlapping_appends_may_land_in_either_order() -> None:
    # b was invoked before a returned: b first is allowed even though a was invoked first.
    history = [
        created(),
        op(1, "add_message", (S, "user", "a"), 10, 20, message(3, "a")),
        op(2, "add_message", (S, "user", "b"), 11, 21, message(2, "b")),
        op(3, "get", (S,), 30, 31, session(3, (2, "user", "b"), (3, "user", "a"))),
    ]
    assert check_linearizable(history).ok


def test_the_same_order_is_refused_when_the_operations_do_not_overlap() -> None:
    history = [
        created(),
        op(1, "add_message", (S, "user", "a"), 10, 20, message(3, "a")),
        op(2, "add_message", (S, "user", "b"), 21, 30, message(2, "b")),  # invoked after a returned
    ]
    result = check_linearizable(history)
    assert not result.ok
    assert result.session_id == S
    # Only the create can be explained; then a must come first (b was invoked after a
    # returned), and the model gives it seq 2, not 3.
    assert [o.id for o in result.linearized] == [0]
    assert [(o.id, want) for o, want in result.stuck] == [(1, message(2, "a"))]


def test_lost_update_two_appends_with_one_seq() -> None:
    history = [
        created(),
        op(1, "add_message", (S, "user", "a"), 10, 20, message(2, "a")),
        op(2, "add_message", (S, "user", "b"), 11, 21, message(2, "b")),
        op(3, "get", (S,), 30, 31, session(2, (2, "user", "b"))),
    ]
    result = check_linearizable(history)
    assert not result.ok
    # One of the appends can take seq 2; then the other one is stuck: the model says seq 3.
    assert len(result.linearized) == 2
    ((stuck, want),) = result.stuck
    assert stuck.name == "add_message"
    assert want == message(3, stuck.args[2])
    assert "model: (3, 'user'" in result.explanation


def test_stale_read_after_a_completed_write() -> None:
    history = [
        created(),
        op(1, "add_message", (S, "user", "a"), 10, 20, message(2, "a")),
        op(2, "get", (S,), 25, 26, session(1)),  # invoked after the append returned
    ]
    assert not check_linearizable(history).ok
    concurrent = [*history[:2], op(2, "get", (S,), 15, 26, session(1))]  # overlapping: fine
    assert check_linearizable(concurrent).ok


def test_conflicts_are_results_too() -> None:
    ok = [
        created(),
        op(1, "add_message", (S, "user", "a"), 10, 20, message(2, "a"), expected_version=1),
        op(2, "add_message", (S, "user", "b"), 11, 21, ("error", "ConflictError", 1, 2), expected_version=1),
    ]
    assert check_linearizable(ok).ok
    # Both conditional appends cannot succeed against version 1.
    both = [*ok[:2], op(2, "add_message", (S, "user", "b"), 11, 21, message(3, "b"), expected_version=1)]
    assert not check_linearizable(both).ok


def test_an_operation_that_never_returned_may_or_may_not_have_happened() -> None:
    crashed = op(1, "add_message", (S, "user", "a"), 10, None, None)
    took_effect = [created(), crashed, op(2, "get", (S,), 30, 31, session(2, (2, "user", "a")))]
    did_not = [created(), crashed, op(2, "get", (S,), 30, 31, session(1))]
    assert check_linearizable(took_effect).ok
    assert check_linearizable(did_not).ok
    # But it cannot have happened before it was invoked.
    early = [
        created(),
        op(2, "get", (S,), 2, 3, session(2, (2, "user", "a"))),
        op(1, "add_message", (S, "user", "a"), 10, None, None),
    ]
    assert not check_linearizable(early).ok


def test_sessions_are_checked_independently() -> None:
    other = op(9, "get", ("t",), 5, 6, ("error", "SessionNotFoundError"))
    assert check_linearizable([created(), other]).ok
    bad = op(9, "get", ("t",), 5, 6, session(1))
    result = check_linearizable([created(), bad])
    assert (result.ok, result.session_id) == (False, "t")


def test_history_records_real_calls_from_threads() -> None:
    # Real Journals in threads: every recorded history must be linearizable.
    history = History()
    with tempfile.TemporaryDirectory() as root, Journal(root, fsync="never") as journal:
        token = history.invoke("main", "create", S)
        history.complete(token, journal.create(S))

        def work(name: str) -> None:
            for i in range(30):
                token = history.invoke(name, "add_message", S, "user", f"{name}{i}")
                history.complete(token, journal.add_message(S, "user", f"{name}{i}"))
                token = history.invoke(name, "get", S)
                history.complete(token, journal.get(S))
                token = history.invoke(name, "add_message", S, "user", "x", expected_version=3)
                try:
                    history.complete(token, journal.add_message(S, "user", "x", expected_version=3))
                except ConflictError as exc:
                    history.fail(token, exc)

        threads = [threading.Thread(target=work, args=(f"t{k}",)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(history) == 1 + 3 * 90
    assert check_linearizable(history).ok


def test_history_refuses_what_the_checker_cannot_model() -> None:
    history = History()
    with pytest.raises(ValueError, match="unknown operation"):
        history.invoke("w", "sessions")
    with pytest.raises(ValueError, match="session id"):
        history.invoke("w", "get")
    token = history.invoke("w", "get", S)
    history.fail(token, SessionNotFoundError(S))
    with pytest.raises(ValueError, match="already completed"):
        history.complete(token, None)
