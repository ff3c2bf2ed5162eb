"""Run the benchmarks: ``python -m benchmarks [--quick]`` (also ``make bench``, ``make bench-quick``).

Every figure is the median over repeats with the min..max range. Every ratio is journal /
baseline measured in this same run: absolute times on a shared machine are not comparable
across runs. Results are printed as one table and written to ``benchmarks/results/latest.json``
and ``latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.cases import Row, append_vs_rewrite, cold_loads, durable_append, median, memory

RESULTS = Path(__file__).parent / "results"


def fmt(samples: list[float], unit: str) -> str:
    if unit == "B":
        return f"{samples[0] / 1e6:.2f} MB"
    scale, suffix = (1e3, "ms") if median(samples) >= 1e-3 else (1e6, "us")
    return f"{median(samples) * scale:.1f} {suffix} ({min(samples) * scale:.1f}..{max(samples) * scale:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (about a minute)")
    args = parser.parse_args(argv)
    quick = args.quick
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="journal-bench-") as tmp_name:
        tmp = Path(tmp_name)
        rows += append_vs_rewrite(
            tmp, [100, 1_000] if quick else [100, 1_000, 10_000], 200 if quick else 1000
        )
        rows += durable_append(tmp, 50 if quick else 300)
        rows += cold_loads(tmp, [1_000, 10_000] if quick else [1_000, 10_000, 100_000], 3 if quick else 7)
        rows += memory(tmp, 2_000 if quick else 10_000)
    table: list[dict[str, object]] = [
        {
            "name": r.name,
            "journal": fmt(r.ours, r.unit),
            "baseline": r.baseline,
            "baseline_value": fmt(r.theirs, r.unit),
            "ratio": median(r.ours) / median(r.theirs),
            "journal_samples": r.ours,
            "baseline_samples": r.theirs,
        }
        for r in rows
    ]
    width = max(len(r.name) for r in rows)
    header = f"{'benchmark':<{width}}  {'journal':<28} {'baseline':<36} ratio"
    print(header)
    print("-" * len(header))
    lines = []
    for t in table:
        against = f"{t['baseline']}: {t['baseline_value']}"
        ratio = float(t["ratio"])  # type: ignore[arg-type]
        print(f"{t['name']!s:<{width}}  {t['journal']!s:<28} {against:<36} {ratio:.3g}x")
        lines.append(f"| {t['name']} | {t['journal']} | {against} | {ratio:.3g}x |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps({"when": stamp, "machine": machine, "quick": quick, "rows": table}, indent=2) + "\n"
    )
    (RESULTS / "latest.md").write_text(
        f"Run {stamp} on {machine}{' (quick)' if quick else ''}.\n\n"
        "| benchmark | journal | baseline (same run) | ratio |\n| --- | --- | --- | --- |\n"
        + "\n".join(lines)
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
