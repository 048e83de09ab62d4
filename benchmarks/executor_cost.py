"""Whole-tier wall time of one method under each executor, in one run on one machine.

Scores METHOD on a model set with `--workers 1`, `--workers 2` and `--ray` (a local Ray
instance, started by the run: its start-up is part of the cost), each into a fresh results
folder with `--force`, and reports wall seconds and the ratios to `--workers 1`. The
records must agree (same metrics and outcomes); the script checks it.

Usage: python benchmarks/executor_cost.py [--method random-subspace] [--models core] [--no-ray] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(method: str, models: list[str], results: Path, extra: list[str]) -> float:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmark.cli", "score", method, "--models", *models, "--results",
                    str(results), "--quiet", "--force", *extra], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _outcomes(results: Path) -> dict:
    return {p.name: (json.loads(p.read_text())["metrics"], json.loads(p.read_text())["outcomes_sha256"])
            for p in sorted(results.rglob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="random-subspace")
    parser.add_argument("--models", nargs="+", default=["core"])
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    runs = [("workers 1", ["--workers", "1"]), ("workers 2", ["--workers", "2"])]
    if not args.no_ray:
        runs.append(("ray (local)", ["--ray"]))
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="onionbench-exec-") as tmp:
        for label, extra in runs:
            results = Path(tmp) / label.replace(" ", "-")
            seconds = _run(args.method, args.models, results, extra)
            outcomes = _outcomes(results)
            reference = reference or outcomes
            rows.append({"executor": label, "wall_s": round(seconds, 1), "same_records": outcomes == reference})
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_workers_1"] = round(row["wall_s"] / base, 2)
        print(f"{row['executor']:12s} {row['wall_s']:7.1f} s  {row['ratio_to_workers_1']:.2f}x  "
              f"records identical: {row['same_records']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
