"""`journal demo` and `make demo`: a first look that installs little and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_demo_without_root_removes_its_temporary_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "journal.cli", "demo"],
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo finished" in proc.stdout
    assert str(scratch) in proc.stdout  # the tour did run in the temporary folder
    assert list(scratch.iterdir()) == []


MAKE = shutil.which("make")


def make_plan(target: str, venv: Path) -> str:
    """What ``make TARGET`` would run with a venv that does not exist yet (a fresh clone), read
    as a shell would, also when this suite itself runs under make (make test)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(
        [str(MAKE), "--no-print-directory", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
def test_make_demo_installs_the_package_alone(tmp_path: Path) -> None:
    plan = make_plan("demo", tmp_path / "venv")
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert len(installs) == 1, plan
    assert installs[0].rstrip().endswith("-e ."), installs[0]  # no extras: msgspec and filelock only
    assert plan.rstrip().splitlines()[-1].endswith("journal demo")
    assert '-e ".[dev]"' in make_plan("unit", tmp_path / "venv")
