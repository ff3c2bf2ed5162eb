"""Run randomised operations from several processes and record the history they saw.

Workers are started with the ``spawn`` method, so the journal factory travels to them pickled,
and each worker imports the main script anew. A worker that dies without reporting (killed by
a signal, or ended while starting up, typically by a script without an
``if __name__ == '__main__':`` guard) is noticed at once: the parent closes its copies of the
pipes' sending ends, so a dead worker's pipe reads as closed, and it also watches each
process's sentinel.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from multiprocessing.synchronize import Barrier
from typing import Any, TypeAlias

from journal.engine.journal import Journal
from journal.testing.linearizability import History, Operation

__all__ = ["DEFAULT_MIX", "JournalFactory", "run_workers"]

_START_TIMEOUT = 120.0  # only turns a hang into an error
_JOIN_TIMEOUT = 600.0
_REAP_TIMEOUT = 5.0  # a worker whose pipe closed is exiting: wait this long for its exit code

JournalFactory: TypeAlias = Callable[[], Journal] | str | os.PathLike[str]
"""What ``run_workers`` accepts: a picklable callable returning a ``Journal``, or a root."""
_Opener: TypeAlias = Callable[[], Journal] | str  # what a worker gets: a root as a str

_GUARD_HINT = (
    "under the spawn start method every worker imports the script that calls run_workers, so"
    " that script must guard its top level with `if __name__ == '__main__':`; otherwise the"
    " factory ended the process (its error, if any, is on stderr)"
)


def run_workers(
    journal_factory: JournalFactory,
    workers: int = 4,
    ops: int = 200,
    seed: int | None = None,
    *,
    sessions: int = 2,
    mix: Mapping[str, float] | None = None,
) -> History:
    """Run ``ops`` random operations in each of ``workers`` processes; return the history.

    Every process opens its journal once: ``Journal(journal_factory)`` when it is a root (a
    folder, as ``str`` or ``os.PathLike``, or a ``postgresql://`` URL), else
    ``journal_factory()``, which must be picklable (a module-level function or a
    ``functools.partial`` of one; not a lambda or a local function). Then, released together
    with the others, each performs creates, appends (some with ``expected_version``),
    settings changes, clears, deletes and reads on ``sessions`` fresh session ids shared by all
    workers, recording each call with ``History``. ``mix`` changes how often each operation is
    picked (see ``DEFAULT_MIX``; a weight of 0 leaves one out). Pass the result to
    ``check_linearizable``.

    A worker that fails or dies stops the run at once: the others are killed and the error
    names each failed worker, its exit code and the likely cause.

    Raises:
        TypeError: ``journal_factory`` cannot be pickled (nothing was started).
        ValueError: ``workers``, ``ops``, ``sessions`` or ``mix`` out of range.
        RuntimeError: a worker process failed or died (its error or exit code is in the
            message).
    """
    if workers < 1 or ops < 0 or sessions < 1:
        raise ValueError("workers and sessions must be >= 1, ops >= 0")
    weights = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(weights) - set(DEFAULT_MIX)
    if unknown or not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
        raise ValueError(f"mix: weights >= 0 for some of {', '.join(DEFAULT_MIX)}; got {mix!r}")
    factory: _Opener = (
        os.fspath(journal_factory) if isinstance(journal_factory, os.PathLike) else journal_factory
    )
    _check_picklable(factory)
    seed = random.randrange(2**32) if seed is None else seed
    ids = [f"lin-{uuid.uuid4().hex[:12]}-{n}" for n in range(sessions)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(workers)
    pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(factory, f"w{k}", ids, ops, seed * 1000 + k, start, sender, weights),
            name=f"worker w{k}",
            daemon=True,
        )
        for k, (_, sender) in enumerate(pipes)
    ]
    history = History()
    failures = ["interrupted"]
    try:
        for process, (_, sender) in zip(procs, pipes, strict=True):
            process.start()
            # The worker has its own copy now. Holding ours would keep the pipe open after the
            # worker died, and its end of file would never come.
            sender.close()
        failures = _collect(procs, [receiver for receiver, _ in pipes], history)
    finally:
        for process in procs:
            if process.pid is None:
                continue  # never started (start() raised)
            if failures and process.is_alive():
                process.kill()  # a failed run stops at once; the others may wait at the barrier
            process.join(_JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join(_REAP_TIMEOUT)
        for receiver, sender in pipes:
            receiver.close()
            sender.close()
    if failures:
        raise RuntimeError(f"run_workers (seed {seed}): " + "; ".join(failures))
    return history


def _check_picklable(factory: _Opener) -> None:
    """Refuse, before starting anything, a factory that cannot travel to a spawned worker."""
    try:
        ForkingPickler.dumps(factory)
    except Exception as exc:  # PicklingError, AttributeError, TypeError: all mean the same
        raise TypeError(
            f"run_workers: the journal factory {factory!r} cannot be sent to the worker processes"
            f" ({exc}); pass a module-level function (or a functools.partial of one), or the"
            " journal's root (a path or URL) instead"
        ) from None


def _collect(procs: Sequence[BaseProcess], receivers: list[Connection], history: History) -> list[str]:
    """Each worker's recorded operations, into ``history``; the failures (empty: all ok).

    Waits on the pipes and the process sentinels together, and stops at the first failure.
    """
    waiting = dict(enumerate(procs))
    deadline = time.monotonic() + _JOIN_TIMEOUT
    while waiting:
        left = deadline - time.monotonic()
        owner: dict[object, int] = {receivers[k]: k for k in waiting}
        owner.update({p.sentinel: k for k, p in waiting.items()})
        ready = wait(
            [*(receivers[k] for k in waiting), *(p.sentinel for p in waiting.values())], max(left, 0)
        )
        if not ready:
            return [f"{p.name}: no result within {_JOIN_TIMEOUT:g} s" for p in waiting.values()]
        failures = []
        for k in sorted({owner[r] for r in ready}):
            process = waiting.pop(k)
            outcome = _outcome(process, receivers[k])
            if outcome is None:
                failures.append(f"{process.name} (pid {process.pid}) {_died(process)}")
            elif outcome[0] == "ok":
                history.extend(outcome[1])
            else:
                failures.append(f"{process.name}: {outcome[1]}")
        if failures:
            return failures
    return []


def _outcome(process: BaseProcess, receiver: Connection) -> tuple[str, Any] | None:
    """What the worker reported, or None if it reported nothing before its pipe closed."""
    # A worker whose sentinel fired has exited; whatever it sent is already in the pipe.
    if not receiver.poll(0 if process.is_alive() else _REAP_TIMEOUT):
        return None
    try:
        result: tuple[str, Any] = receiver.recv()
    except (EOFError, OSError):
        return None
    return result


def _died(process: BaseProcess) -> str:
    """How a worker that never reported ended, and why that likely happened."""
    process.join(_REAP_TIMEOUT)
    code = process.exitcode
    if code is None:
        return "closed its pipe without reporting a result and did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (
            f"was killed by {name} (exit code {code}) before reporting its result: a signal"
            " ended it (sent by the out-of-memory killer, a timeout or another process)"
        )
    return f"exited with exit code {code} before reporting its result: {_GUARD_HINT}"


def _worker(
    factory: _Opener,
    name: str,
    ids: list[str],
    ops: int,
    seed: int,
    start: Barrier,
    out: Connection,
    mix: dict[str, float],
) -> None:
    try:
        journal = Journal(factory) if isinstance(factory, str) else factory()
        rng = random.Random(seed)
        recorded = _run(journal, name, ids, ops, rng, start, mix)
        journal.close()
        out.send(("ok", recorded))
    except BaseException as exc:  # reported to the parent, which raises
        out.send(("error", f"{type(exc).__name__}: {exc}"))


DEFAULT_MIX: dict[str, float] = {
    "create": 8,
    "get_or_create": 6,
    "add_message": 31,
    "add_message_expected": 10,  # add_message with the expected_version this worker last saw
    "update_settings": 7,
    "clear": 3,
    "delete": 2,
    "get": 23,
    "exists": 5,
    "events": 5,
}
"""How often ``run_workers`` picks each operation (relative weights)."""


def _run(
    journal: Journal,
    name: str,
    ids: list[str],
    ops: int,
    rng: random.Random,
    start: Barrier,
    mix: dict[str, float],
) -> list[Operation]:
    history = History()
    known: dict[str, int] = {}  # the version this worker last saw, for expected_version
    kinds, weights = list(mix), list(mix.values())
    start.wait(_START_TIMEOUT)
    for i in range(ops):
        sid = rng.choice(ids)
        kind = rng.choices(kinds, weights)[0]
        args: tuple[Any, ...] = (sid,)
        kwargs: dict[str, Any] = {}
        op = kind
        if kind == "add_message":
            args = (sid, "user", f"{name}:{i}")
        elif kind == "add_message_expected":
            op, args = "add_message", (sid, "assistant", f"{name}:{i}")
            kwargs["expected_version"] = known.get(sid, 1)
        elif kind == "update_settings":
            args = (sid, {name: i})
        token = history.invoke(name, op, *args, **kwargs)
        try:
            result = getattr(journal, op)(*args, **kwargs)
            if op == "events":
                result = list(result)
        except Exception as exc:  # every outcome is data for the checker
            history.fail(token, exc)
            continue
        history.complete(token, result)
        version = getattr(result, "version", getattr(result, "seq", None))
        if isinstance(version, int):
            known[sid] = version
        time.sleep(0)  # let the others in
    return history.operations
