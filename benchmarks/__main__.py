"""Run the benchmarks: ``python -m benchmarks [--quick]`` (also ``make bench``, ``make bench-quick``).

Every figure is the median over repeats with the min..max range. Every ratio is journal /
baseline measured in this same run: absolute times on a shared machine are not comparable
across runs. Results are printed as one table and written to ``benchmarks/results/latest.json``
and ``latest.md``, with ``growth.png`` (latency and bytes written as one session grows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from benchmarks import cases
from benchmarks.common import Row, median
from benchmarks.history import long_session
from benchmarks.langgraph import langgraph
from benchmarks.postgres import postgres
from benchmarks.web import web

RESULTS = Path(__file__).parent / "results"


def fmt(samples: list[float], unit: str) -> str:
    if unit == "B":
        return f"{samples[0] / 1e6:.2f} MB"
    if unit == "ops/s":
        return f"{median(samples):,.0f} ops/s"
    scale, suffix = (1e3, "ms") if median(samples) >= 1e-3 else (1e6, "us")
    low, high = min(samples) * scale, max(samples) * scale
    return f"{median(samples) * scale:.1f} {suffix} ({low:.1f}..{high:.1f})"


def verdict(row: Row, ratio: float) -> str:
    if row.target is None:
        return ""
    met = ratio <= row.target if row.at_most else ratio >= row.target
    sign = "<=" if row.at_most else ">="
    return f"{sign} {row.target:.3g}: {'met' if met else 'MISSED'}"


class Mode(NamedTuple):
    """Sizes and repeats of one run."""

    append: list[int]
    loads: list[int]
    repeats: int
    durable: int
    threads: int
    procs: int
    load_repeats: int
    memory: int
    history: int


# The full run (under 10 minutes), --quick (about a minute) and --smoke (seconds: only proves
# every case still runs, as the test suite does).
MODES = {
    "full": Mode([100, 1_000, 10_000], [1_000, 10_000, 100_000], 2000, 500, 200, 2000, 7, 10_000, 50_000),
    "quick": Mode([100, 1_000, 10_000], [1_000, 10_000], 300, 100, 50, 300, 3, 2_000, 10_000),
    "smoke": Mode([10, 100], [100, 200], 20, 5, 5, 10, 1, 100, 100),
}


def collect(tmp: Path, mode: Mode, output: Path) -> list[Row]:
    rows: list[Row] = []
    rows += cases.append_no_fsync(tmp, mode.append, mode.repeats)
    rows += cases.append_durable(tmp, mode.durable)
    rows += cases.group_commit(tmp, mode.threads)
    rows += cases.contention(tmp, mode.procs)
    rows += cases.loads(tmp, mode.loads, mode.load_repeats)
    rows += cases.catch_up(tmp, max(mode.loads), mode.durable)
    rows += cases.memory(tmp, mode.memory)
    rows += cases.lock_floor(tmp, 10 * mode.repeats)
    rows += long_session(tmp, mode.history, plot_to=output / "growth.png")
    load_size = 10_000 if 10_000 in mode.loads else max(mode.loads)
    rows += postgres(tmp, mode.durable, mode.threads, load_size, mode.load_repeats)
    rows += langgraph(tmp, mode.durable)
    # 10,000 sessions and 50,000 events in the full run (the sizes of memory and history).
    rows += web(tmp, mode.memory, mode.history)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (about a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only checks every case runs")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for latest.json and latest.md")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp:
        rows = collect(Path(tmp), MODES[mode], args.output)
    records = []
    lines = []
    width = max(len(r.name) for r in rows)
    print(f"{'benchmark':<{width}}  {'journal':<30} {'baseline (same run)':<56} {'ratio':>8}  target")
    for row in rows:
        ratio = median(row.ours) / median(row.theirs)
        against = f"{row.baseline}: {fmt(row.theirs, row.unit)}"
        goal = verdict(row, ratio)
        print(f"{row.name:<{width}}  {fmt(row.ours, row.unit):<30} {against:<56} {ratio:>7.3g}x  {goal}")
        lines.append(f"| {row.name} | {fmt(row.ours, row.unit)} | {against} | {ratio:.3g}x | {goal} |")
        records.append(row._asdict() | {"ratio": ratio, "verdict": goal})
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    args.output.mkdir(parents=True, exist_ok=True)
    doc = {"when": stamp, "machine": machine, "mode": mode, "rows": records}
    (args.output / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.output / "latest.md").write_text(
        f"Run {stamp} on {machine} ({mode} mode).\n\n"
        "| benchmark | journal | baseline (same run) | ratio | target |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(lines)
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
