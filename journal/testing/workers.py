"""Run randomised operations from several processes and record the history they saw."""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from journal.store import Journal
from journal.testing.linearizability import History, Operation

__all__ = ["DEFAULT_MIX", "run_workers"]

_START_TIMEOUT = 120.0  # only turns a hang into an error
_JOIN_TIMEOUT = 600.0


def run_workers(
    journal_factory: Callable[[], Journal],
    workers: int = 4,
    ops: int = 200,
    seed: int | None = None,
    *,
    sessions: int = 2,
    mix: Mapping[str, float] | None = None,
) -> History:
    """Run ``ops`` random operations in each of ``workers`` processes; return the history.

    Every process calls ``journal_factory()`` once (it must be picklable: a module-level
    function or a ``functools.partial``), then, released together with the others, performs
    creates, appends (some with ``expected_version``), settings changes, clears, deletes and
    reads on ``sessions`` fresh session ids shared by all workers, recording each call with
    ``History``. ``mix`` changes how often each operation is picked (see ``DEFAULT_MIX``; a
    weight of 0 leaves one out). Pass the result to ``check_linearizable``.

    Raises:
        RuntimeError: a worker process failed (its error is in the message).
    """
    if workers < 1 or ops < 0 or sessions < 1:
        raise ValueError("workers and sessions must be >= 1, ops >= 0")
    weights = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(weights) - set(DEFAULT_MIX)
    if unknown or not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
        raise ValueError(f"mix: weights >= 0 for some of {', '.join(DEFAULT_MIX)}; got {mix!r}")
    seed = random.randrange(2**32) if seed is None else seed
    ids = [f"lin-{uuid.uuid4().hex[:12]}-{n}" for n in range(sessions)]
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(workers)
    pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(journal_factory, f"w{k}", ids, ops, seed * 1000 + k, start, sender, weights),
            daemon=True,
        )
        for k, (_, sender) in enumerate(pipes)
    ]
    for process in procs:
        process.start()
    history = History()
    failures = []
    try:
        for (receiver, _), process in zip(pipes, procs, strict=True):
            if not receiver.poll(_JOIN_TIMEOUT):
                failures.append(f"{process.name}: no result within {_JOIN_TIMEOUT} s")
                continue
            try:
                outcome: tuple[str, Any] = receiver.recv()
            except EOFError:
                failures.append(f"{process.name}: died (exit code {process.exitcode})")
                continue
            if outcome[0] == "ok":
                history.extend(outcome[1])
            else:
                failures.append(f"{process.name}: {outcome[1]}")
    finally:
        for process in procs:
            process.join(_JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
    if failures:
        raise RuntimeError(f"run_workers (seed {seed}): " + "; ".join(failures))
    return history


def _worker(
    factory: Callable[[], Journal],
    name: str,
    ids: list[str],
    ops: int,
    seed: int,
    start: Barrier,
    out: Connection,
    mix: dict[str, float],
) -> None:
    try:
        journal = factory()
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
