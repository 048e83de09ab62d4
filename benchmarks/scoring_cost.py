"""Scoring cost: seconds per (method, model) cell, split into fit and evaluation.

For each baseline and each core hidden size, one cell is run the way `onionbench score`
runs it (child process, encoder locked), on the embedded zoo model of that size when it
exists. A size whose model is not trained yet uses a randomly initialised GRU of that size
with every test case kept (an untrained model repeats nothing, so the filter would
otherwise skip the write and interchange work and understate the cost); the table says
which. The projection for the whole core tier is 6 models per size times these cells.

Usage: python benchmarks/scoring_cost.py [--methods onion linear-probe ...] [--sizes 48 64 128 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmark.data import load_split
from benchmark.harness.isolation import run_isolated
from benchmark.zoo.gru import RepeatGRU
from benchmark.harness.plan import make_plan
from benchmark.zoo.registry import load_reference
from benchmark.harness.runner import DEFAULT_BUDGET
from benchmark.harness.scoring import make_queries, model_context, score_outputs
from benchmark.harness.submission import discover


def _model(n: int) -> tuple[torch.nn.Module, bool]:
    try:
        return load_reference(f"gru-h{n}-ar-s0")[0], True
    except Exception:  # noqa: BLE001 - not trained or not embedded yet
        torch.manual_seed(0)
        return RepeatGRU(n, "ar").eval(), False


def time_cell(spec, n: int) -> dict:
    model, trained = _model(n)
    test = load_split("test")
    start = time.perf_counter()
    ctx = model_context(model, test, make_plan(test))
    if not trained:
        ctx.write_keep[:] = True
        ctx.interchange_keep[:] = True
    queries = make_queries(ctx)
    outputs, fit = run_isolated(spec.folder, spec.params, model, queries, seed=0, budget=DEFAULT_BUDGET)
    score_outputs(ctx, queries, outputs)
    total = time.perf_counter() - start
    return {"method": spec.name, "N": n, "model": "gru-h%d-ar-s0" % n if trained else "untrained (all kept)",
            "fit_s": round(fit.seconds, 1), "eval_s": round(total - fit.seconds, 1), "total_s": round(total, 1),
            "sequences_drawn": fit.sequences_drawn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", help="baseline names (default: every discovered baseline)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 128, 256])
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args()
    methods = discover()
    names = args.methods or sorted(n for n, s in methods.items() if s.is_baseline)
    rows = []
    for name in names:
        for n in args.sizes:
            row = time_cell(methods[name], n)
            rows.append(row)
            print(f"{name:16s} N={n:4d} fit {row['fit_s']:7.1f} s  eval {row['eval_s']:6.1f} s  "
                  f"({row['model']}, {row['sequences_drawn']:,} sequences)", flush=True)
    for name in names:
        core = sum(6 * r["total_s"] for r in rows if r["method"] == name)
        print(f"{name:16s} projected core tier (24 cells): {core / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
