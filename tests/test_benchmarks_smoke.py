"""The benchmark suite keeps running (its numbers are not checked: speed lives in benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_case_runs_and_reports_a_ratio(tmp_path: Path) -> None:
    # Oracle: the smoke mode runs every case on tiny sizes and writes one row per comparison,
    # each with finite positive samples and a ratio; the table names every case.
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["mode"] == "smoke"
    names = {row["name"] for row in doc["rows"]}
    for expected in (
        "append, fsync=never",
        "append, fsync=always",
        "group commit, 8 threads",
        "4 processes, 1 session",
        "lock acquire + release",
    ):
        assert expected in names, expected
        assert expected in out.stdout
    for row in doc["rows"]:
        assert row["ratio"] > 0
        assert all(sample > 0 for sample in row["ours"] + row["theirs"])
    assert (tmp_path / "latest.md").read_text().count("\n|") >= len(doc["rows"])
