"""Record concurrent histories and decide whether they are linearizable.

A history is what several workers (threads or processes) saw: for every operation, when it was
invoked, when it returned, and what it returned (or raised). It is *linearizable* when some
order of the operations, consistent with real time (an operation that returned before another
was invoked comes first), explains every result under the sequential model
(:class:`~journal.testing.model.InMemoryJournal`).

The check is the Wing & Gong search with Lowe's memoisation (as in Knossos and Porcupine):
depth-first over the operations that may come next, pruning every (set of operations done,
model state) configuration seen before. Sessions are independent objects, and linearizability
is compositional, so each session's operations are checked on their own: the search is
exponential only in the concurrency *within* one session.

Results are compared on their deterministic fields only (seq, version, role, content,
metadata, settings, error type and versions), never on generated ids or timestamps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from journal.errors import ConflictError, JournalError
from journal.testing.model import InMemoryJournal, ModelMessage, ModelSession, canon

__all__ = ["OPERATIONS", "CheckResult", "History", "Operation", "check_linearizable", "observe"]

OPERATIONS = (
    "create",
    "get_or_create",
    "add_message",
    "update_settings",
    "clear",
    "delete",
    "get",
    "exists",
    "events",
)
"""The operations the checker knows: every public call that names one session."""


@dataclass(frozen=True)
class Operation:
    """One recorded operation.

    Attributes:
        id: its token, unique within the history.
        worker: who ran it (a thread or process name).
        name: the ``Journal`` method (one of ``OPERATIONS``).
        args, kwargs: its arguments (plain, picklable values).
        invoked: ``time.monotonic_ns()`` just before the call.
        returned: just after it returned or raised; None if it never did (the worker died):
            such an operation may or may not have taken effect.
        result: what it returned or raised, as ``observe`` reduced it.
    """

    id: int
    worker: str
    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    invoked: int
    returned: int | None = None
    result: Any = None

    @property
    def session_id(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        call = ", ".join([*(repr(a) for a in self.args), *(f"{k}={v!r}" for k, v in self.kwargs)])
        outcome = "never returned" if self.returned is None else f"-> {self.result!r}"
        return f"[{self.worker}] {self.name}({call}) {outcome}"


def observe(value: Any) -> Any:
    """The deterministic part of an operation's outcome, as plain comparable values.

    A ``Session`` (or the model's) becomes ``("session", version, messages, settings)`` with
    each message as ``(seq, role, content, metadata, references)``; a ``Message`` that tuple;
    an exception ``("error", type name)`` (plus expected and actual versions for a conflict);
    events ``(seq, type)`` each; anything else is kept as it is.
    """
    if isinstance(value, BaseException):
        if isinstance(value, ConflictError):
            return ("error", type(value).__name__, value.expected, value.actual)
        return ("error", type(value).__name__)
    if isinstance(value, ModelSession) or _is_session(value):
        messages = tuple(observe(m) for m in value.messages)
        return ("session", value.version, messages, _frozen(canon(value.settings)))
    if isinstance(value, ModelMessage) or _is_message(value):
        return (
            value.seq,
            value.role,
            value.content,
            _frozen(canon(value.metadata)),
            _frozen(canon(value.references)),
        )
    if isinstance(value, list) and all(hasattr(e, "seq") and hasattr(e, "type") for e in value):
        return tuple((e.seq, e.type) for e in value)
    return value


def _is_session(value: Any) -> bool:
    return hasattr(value, "version") and hasattr(value, "messages") and hasattr(value, "settings")


def _is_message(value: Any) -> bool:
    return hasattr(value, "seq") and hasattr(value, "role") and hasattr(value, "content")


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


class History:
    """A concurrent history, recorded from any number of threads (thread-safe).

    >>> history = History()
    >>> token = history.invoke("worker-1", "add_message", "s", "user", "hi")
    >>> history.complete(token, journal.add_message("s", "user", "hi"))  # doctest: +SKIP

    Histories recorded in other processes are combined with ``extend`` (operations pickle).
    Times come from ``time.monotonic_ns``, one clock for every process of a machine.
    """

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._lock = threading.Lock()
        self._ops: dict[int, Operation] = {}
        self._next = 0
        self.extend(operations)

    def invoke(self, worker: str, op_name: str, *args: Any, **kwargs: Any) -> int:
        """Record that ``worker`` calls ``op_name(*args, **kwargs)`` now; returns its token."""
        if op_name not in OPERATIONS:
            raise ValueError(f"unknown operation {op_name!r}; the checker knows {', '.join(OPERATIONS)}")
        if not args or not isinstance(args[0], str):
            raise ValueError("the first argument must be the session id")
        with self._lock:
            token = self._next
            self._next += 1
            self._ops[token] = Operation(
                token, worker, op_name, tuple(args), tuple(sorted(kwargs.items())), time.monotonic_ns()
            )
        return token

    def complete(self, token: int, result: Any) -> None:
        """Record that the operation returned ``result`` (its own return value)."""
        self._finish(token, observe(result))

    def fail(self, token: int, exc: BaseException) -> None:
        """Record that the operation raised ``exc`` (a definite outcome, compared with the model's)."""
        self._finish(token, observe(exc))

    def _finish(self, token: int, result: Any) -> None:
        now = time.monotonic_ns()
        with self._lock:
            op = self._ops[token]
            if op.returned is not None:
                raise ValueError(f"operation {token} was already completed")
            self._ops[token] = Operation(
                op.id, op.worker, op.name, op.args, op.kwargs, op.invoked, now, result
            )

    def extend(self, operations: Iterable[Operation]) -> None:
        """Add operations recorded elsewhere (another process); their ids are renumbered."""
        with self._lock:
            for op in operations:
                token = self._next
                self._next += 1
                self._ops[token] = Operation(
                    token, op.worker, op.name, op.args, op.kwargs, op.invoked, op.returned, op.result
                )

    @property
    def operations(self) -> list[Operation]:
        """Every operation, in invocation order."""
        with self._lock:
            return sorted(self._ops.values(), key=lambda op: (op.invoked, op.id))

    def __len__(self) -> int:
        return len(self._ops)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of ``check_linearizable``.

    When no order works, the search reports where it got furthest: the longest sequence of
    operations it could explain (``linearized``), after which none of the operations that
    could come next (``stuck``) returned what the model says they would.

    Attributes:
        ok: some order consistent with real time explains every result.
        session_id: the session whose operations cannot be ordered (None when ok).
        linearized: the deepest explained order, oldest first.
        stuck: the operations that could come next, each with the model's result there.
        explanation: for people: the end of ``linearized`` and every ``stuck`` operation.
    """

    ok: bool
    session_id: str | None = None
    linearized: tuple[Operation, ...] = ()
    stuck: tuple[tuple[Operation, Any], ...] = ()
    explanation: str = ""

    @property
    def counterexample(self) -> tuple[Operation, ...]:
        """The last explained operations and the ones that cannot follow them."""
        return self.linearized[-3:] + tuple(op for op, _ in self.stuck)

    def __bool__(self) -> bool:
        return self.ok


Model = Callable[[], InMemoryJournal]


def check_linearizable(
    history: History | Iterable[Operation],
    *,
    model: Model = InMemoryJournal,
    initial: Mapping[str, Callable[[InMemoryJournal], None]] | None = None,
    max_configurations: int = 2_000_000,
) -> CheckResult:
    """Whether ``history`` is linearizable under the model; where it breaks if not.

    Args:
        history: a ``History`` or its operations.
        model: makes an empty model (the sequential specification).
        initial: per session, a function that brings a fresh model to the state the session
            had before the history started (e.g. created, with two messages).
        max_configurations: a bound on the search per session; exceeding it raises
            RuntimeError rather than guessing.
    """
    ops = history.operations if isinstance(history, History) else sorted(history, key=lambda o: o.invoked)
    by_session: dict[str, list[Operation]] = {}
    for op in ops:
        by_session.setdefault(op.session_id, []).append(op)
    for sid, session_ops in by_session.items():
        setup = (initial or {}).get(sid)
        result = _search(sid, session_ops, model, setup, max_configurations)
        if not result.ok:
            return result
    return CheckResult(True)


def _explain(sid: str, linearized: tuple[Operation, ...], stuck: tuple[tuple[Operation, Any], ...]) -> str:
    lines = [f"no order consistent with real time explains the operations on {sid!r}."]
    if linearized:
        lines.append(f"The longest explained order ({len(linearized)} operations) ends with:")
        lines += [f"  {op}" for op in linearized[-3:]]
    lines.append("and none of the operations that could come next returned what the model says:")
    lines += [f"  {op}\n      model: {want!r}" for op, want in stuck]
    return "\n".join(lines)


def _search(
    sid: str, ops: list[Operation], model: Model, setup: Callable[[InMemoryJournal], None] | None, limit: int
) -> CheckResult:
    start = model()
    if setup is not None:
        setup(start)
    # Operations that never returned may have taken effect at any point after their
    # invocation, or never: they are optional and constrain no other operation.
    required = [op for op in ops if op.returned is not None]
    optional = [op for op in ops if op.returned is None]
    candidates = required + optional
    returns = [op.returned for op in required if op.returned is not None]
    full = (1 << len(required)) - 1
    seen: set[tuple[int, Any]] = set()
    # Each entry: operations done (bit i: candidates[i]), the model after them, and the order
    # that got there as a linked list (newest first), for the report.
    Path = tuple[int, Any] | None
    stack: list[tuple[int, InMemoryJournal, Path]] = [(0, start, None)]
    deepest: tuple[int, int, InMemoryJournal, Path] = (-1, 0, start, None)
    while stack:
        done, state, path = stack.pop()
        if done & full == full:
            return CheckResult(True)
        depth = done.bit_count()
        if depth > deepest[0]:
            deepest = (depth, done, state, path)
        # The next operation must have been invoked before every pending required one
        # returned (otherwise that one would precede it in real time).
        horizon = min(r for i, r in enumerate(returns) if not done >> i & 1)
        for i, op in enumerate(candidates):
            bit = 1 << i
            if done & bit or op.invoked > horizon:
                continue
            after = state.copy()
            if op.returned is not None and _apply(after, op) != op.result:
                continue
            if op.returned is None:
                _apply(after, op)
            key = (done | bit, after.fingerprint(sid))
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > limit:
                raise RuntimeError(f"search for {sid!r} exceeded {limit} configurations")
            stack.append((done | bit, after, (i, path)))
    _, done, state, path = deepest
    order: list[Operation] = []
    while path is not None:
        order.append(candidates[path[0]])
        path = path[1]
    linearized = tuple(reversed(order))
    horizon = min(r for i, r in enumerate(returns) if not done >> i & 1)
    stuck = tuple(
        (op, _apply(state.copy(), op))
        for i, op in enumerate(required)
        if not done >> i & 1 and op.invoked <= horizon
    )
    return CheckResult(False, sid, linearized, stuck, _explain(sid, linearized, stuck))


def _apply(model: InMemoryJournal, op: Operation) -> Any:
    try:
        result = getattr(model, op.name)(*op.args, **dict(op.kwargs))
    except JournalError as exc:
        return observe(exc)
    except ValueError:  # the model's plain argument errors are the journal's InvalidValueError
        return ("error", "InvalidValueError")
    return observe(result)
