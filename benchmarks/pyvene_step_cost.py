"""Milliseconds per training step, pyvene-das against linear-das, measured in one run.

Usage: python benchmarks/pyvene_step_cost.py [MODEL ...]   (default gru-h256-ar-s0 gru-h256-ni-s0)

Each method is fitted twice on the same model, at `short` and `long` steps with a small pool
and read-out sample (so that the fixed costs are small), one torch thread; the difference of
the two fit times over the difference of the steps is the cost of one step of its training
loop (a batch of 256 interchanges through the frozen decoder). The fixed costs (encoding the
pool, the start, the read-out) cancel. Issue 33 asks for this figure beside INTERCHANGE.
"""

from __future__ import annotations

import argparse
import time

import torch
from tabulate import tabulate

from benchmark.data import heldout_keys
from benchmark.harness.defaults import DEFAULT_BUDGET
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.submission import resolve
from benchmark.zoo.resolve import load_reference

SMALL = {"pool_size": 20000, "read_samples": 2000}


def fit_seconds(name: str, model_name: str, steps: int) -> float:
    """Wall seconds of one fit at `steps`, everything else at the method's defaults but SMALL."""
    spec = resolve(name)
    model, _ = load_reference(model_name)
    data = FitData(model, heldout_keys(), seed=0, budget=DEFAULT_BUDGET)
    seed_everything(0)
    method = spec.instantiate({**SMALL, "steps": steps})
    start = time.perf_counter()
    method.fit(FrozenModel(model, data), data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["gru-h256-ar-s0", "gru-h256-ni-s0"])
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--long", type=int, default=220)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for model_name in args.models:
        for name in ("linear-das", "pyvene-das"):
            short, long = (fit_seconds(name, model_name, s) for s in (args.short, args.long))
            rows.append([name, model_name, f"{1000 * (long - short) / (args.long - args.short):.1f}"])
            print(rows[-1], flush=True)
    print(tabulate(rows, headers=["method", "model", "ms per step (batch 256, 1 thread)"], tablefmt="github"))


if __name__ == "__main__":
    main()
