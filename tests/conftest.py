"""Shared fixtures and Hypothesis profiles.

Profiles: ``ci`` (default; sized so the whole suite stays well under 10 minutes on 2 cores) and
``dev`` (more examples, for soak runs: ``HYPOTHESIS_PROFILE=dev`` or ``JOURNAL_SOAK=1``).
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Callable, Generator, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from journal import Journal
from journal.backends.memory import drop_store
from tests.requirements import required

pytest_plugins = ["pytester"]

for _name, _examples in (("ci", 60), ("dev", 500)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        # The state machines draw long texts at many steps: a run that draws more than
        # Hypothesis' buffer is cut short (and its example discarded), never a failure here.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        print_blob=True,
    )
SOAK = os.environ.get("JOURNAL_SOAK") == "1"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev" if SOAK else "ci"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
JOIN_TIMEOUT = 60.0  # only ever turns a hang into a failure, never a speed assertion


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """On CI, a test module that skips while it is imported (``pytest.importorskip`` of a
    framework the dev extra installs) fails instead: CI never passes by skipping."""
    report = yield
    if report.skipped and isinstance(collector, pytest.Module) and required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} skipped on import, which CI does not allow: {reason}"
    return report


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A journal root that does not exist yet (the journal creates it)."""
    return tmp_path / "journal"


@pytest.fixture
def spawned() -> Iterator[list[BaseProcess]]:
    """Processes the test started; any left alive by a failing test are killed at teardown."""
    processes: list[BaseProcess] = []
    yield processes
    for process in processes:
        if process.is_alive():
            process.kill()
        process.join(JOIN_TIMEOUT)


Spawn = Callable[..., BaseProcess]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a worker in a fresh interpreter (``spawn`` context: nothing inherited from the
    test's open journals); any still alive at teardown (a failed test) is killed."""
    context = multiprocessing.get_context("spawn")
    started: list[BaseProcess] = []

    def start(target: Callable[..., None], *args: Any) -> BaseProcess:
        process = context.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(JOIN_TIMEOUT)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema (skips without a server; fails on CI)."""
    from tests.pg import fresh_schema, need_server

    with fresh_schema(need_server()) as url:
        yield url


@pytest.fixture(params=["files", "postgres", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a Journal lives, once per backend: a folder, a PostgreSQL schema, then a memory
    store of its own (shared by every Journal of the test that names it)."""
    if request.param == "files":
        yield str(tmp_path / "journal")
        return
    if request.param == "memory":
        name = uuid.uuid4().hex
        yield f"memory:{name}"
        drop_store(name)
        return
    from tests.pg import fresh_schema, need_server

    with fresh_schema(need_server()) as url:
        yield url


@pytest.fixture
def journal(root: Path) -> Iterator[Journal]:
    """A Journal with the default (durable) settings, closed after the test."""
    with Journal(root) as j:
        yield j


def shared_path(*parts: str) -> Path:
    """A path under ../shared/, skipping the test where it is absent (a user's clone).

    On CI (``CI`` set) the folder is always present, so a missing one fails instead.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing on CI, where ../shared/ is always present")
        pytest.skip(f"{path} not found: ../shared/ is only present in the project's workspace")
    return path
