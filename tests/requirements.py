"""What a test needs that a user's machine may lack and CI never does: skip there, fail on CI.

On a user's machine a test whose optional package, outside program or server is missing skips,
with the reason and how to get it. Where ``CI`` or ``JOURNAL_REQUIRE_POSTGRES`` is set
(``.ci/run`` sets the latter), everything is installed (the dev extra, jq, a PostgreSQL server),
so a missing one FAILS instead: CI never passes by skipping. Users of the switch: ``tests/pg.py``
(the server), ``need_programs`` (jq and friends), and the hook in ``tests/conftest.py`` that
turns a test module's ``pytest.importorskip`` (the framework adapters' tests) into a failure.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["need_programs", "required"]


def required() -> bool:
    """Whether everything a test needs must be present here (CI)."""
    return bool(os.environ.get("JOURNAL_REQUIRE_POSTGRES") or os.environ.get("CI"))


def need_programs(*names: str, reason: str) -> list[str]:
    """The paths of the programs ``names`` on PATH; if any is missing, skip or, on CI, fail.

    Args:
        names: the programs to look up.
        reason: how to get them, for the skip (e.g. "apt-get install jq").
    """
    paths = [shutil.which(name) for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if path is None]
    if missing:
        why = f"needs {', '.join(missing)} on PATH ({reason})"
        if required():
            pytest.fail(f"{why}: CI must have it", pytrace=False)
        pytest.skip(why)
    return [path for path in paths if path is not None]
