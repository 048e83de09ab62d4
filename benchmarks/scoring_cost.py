"""Scoring cost of the two-process cell, against the one-process cell it replaced.

Runs the same cells with this checkout's `onionbench score` and with the harness of an
earlier commit (default 4e38d64, the last one-process cell), checked out into a temporary
git worktree, alternating old and new per cell in one run on one machine. Reports each
cell's fit and evaluation seconds (evaluation = everything but fit: start-up, the model
context, the method's calls, decoding) and the ratio new/old of the evaluation time.

Usage: python benchmarks/scoring_cost.py [--methods random-subspace onion] [--models gru-h48-ar-s0 gru-h48-ni-s0]
       [--old COMMIT] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _score(checkout: Path, method: str, model: str, results: Path) -> dict:
    """One cell through the CLI of `checkout`; returns its record."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(checkout)}
    method_folder = ROOT / "baselines" / method  # the same method source for both harnesses
    subprocess.run([sys.executable, "-m", "benchmark.cli", "score", str(method_folder), "--models", model,
                    "--results", str(results), "--quiet", "--force"], cwd=checkout, env=env, check=True,
                   capture_output=True)
    return json.loads((results / method / f"{model}.json").read_text())


def _worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), commit], cwd=ROOT, check=True,
                   capture_output=True)
    return where


def measure(methods: list[str], models: list[str], old: str, repeats: int) -> list[dict]:
    """Alternate old and new on every cell `repeats` times; median seconds per cell."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="onionbench-cost-") as tmp:
        old_tree = _worktree(old, Path(tmp) / "old")
        try:
            for method in methods:
                for model in models:
                    times: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
                    for i in range(repeats):
                        for label, tree in (("old", old_tree), ("new", ROOT)):
                            rec = _score(tree, method, model, Path(tmp) / f"{label}-{i}")
                            times[label].append((rec["fit"]["seconds"], rec["eval_seconds"]))
                    row = {"method": method, "model": model}
                    for label in ("old", "new"):
                        row[f"{label}_fit_s"] = statistics.median(f for f, _ in times[label])
                        row[f"{label}_eval_s"] = statistics.median(e for _, e in times[label])
                    row["eval_ratio"] = round(row["new_eval_s"] / row["old_eval_s"], 2)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, capture_output=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["random-subspace", "onion"])
    parser.add_argument("--models", nargs="+", default=["gru-h48-ar-s0", "gru-h48-ni-s0"])
    parser.add_argument("--old", default="4e38d64", help="commit of the one-process harness")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = measure(args.methods, args.models, args.old, args.repeats)
    ratios = [r["eval_ratio"] for r in rows]
    print(f"evaluation time new/old: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}) over {len(rows)} cells")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
