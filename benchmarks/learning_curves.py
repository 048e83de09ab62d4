"""Learning curves: a baseline's scores against its fit steps, on the `valid` split.

Why: a default schedule is only defensible if more steps would not change the verdict
(issue #13: each default within 0.02 of the plateau of the metric it trains for). This
fits one method on one reference model with increasing `steps` and scores every fit on
the 1,000-sequence `valid` split, never on `test`, so choosing a default from the curve
does not tune on the leaderboard's data.

    python benchmarks/learning_curves.py linear-das gru-h256-ar-s0 --steps 250 500 1000 1500 3000

Writes leaderboard/curves/<method>/<model>.json after every point (atomically), and skips
points already there for the same method source and params, so an interrupted run resumes
where it stopped. One torch thread by default (the development machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from benchmark.data import load_split
from benchmark.harness.submission import resolve
from benchmark.zoo.resolve import load_reference

CURVES = Path(__file__).resolve().parents[1] / "leaderboard" / "curves"


def score_on_valid(spec, model, provenance: dict, params: dict) -> dict:
    """One fit and score on `valid`, in this process (no child, no timeout: a trusted baseline).

    This is the one harness call the script needs, so an API change breaks here, loudly,
    rather than somewhere in the bookkeeping.
    """
    from benchmark.harness.cell import Evaluation, run_cell
    from benchmark.harness.plan import PLAN_SEED

    valid = Evaluation(load_split("valid"), PLAN_SEED, name="valid")
    return run_cell(spec, model, provenance, params=params, evaluation=valid, isolate=False)


def _point(record: dict, steps: int, wall: float) -> dict:
    if record["status"] != "ok":
        raise SystemExit(f"steps={steps}: the fit failed: {record['error']}")
    return {"steps": steps, "fit_seconds": record["fit"]["seconds"],
            "sequences_drawn": record["fit"]["sequences_drawn"], "wall_seconds": round(wall, 1),
            "metrics": record["metrics"], "by_length": record["by_length"]}  # length 9 is the paper's view


def _load(path: Path, key: dict) -> dict:
    """The curve so far, or a fresh one when the method source or params changed."""
    if path.exists():
        curve = json.loads(path.read_text())
        if {k: curve.get(k) for k in key} == key:
            return curve
        print(f"{path}: method source or params changed; starting the curve again")
    return {**key, "points": []}


def _write_atomic(path: Path, curve: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(curve, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", help="method name or folder (e.g. linear-das)")
    parser.add_argument("model", help="reference model name (e.g. gru-h256-ar-s0)")
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="values of the method's `steps`")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="another fixed override, e.g. --param lr=0.01 (part of the curve's key)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = resolve(args.method)
    fixed = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    model, provenance = load_reference(args.model)
    key = {"method": spec.name, "model": provenance["name"], "model_sha256": provenance["sha256"],
           "split": "valid", "method_sha256": spec.source_sha256(), "params": {**spec.params, **fixed}}
    suffix = "".join(f"-{k}{v}" for k, v in sorted(fixed.items()))
    path = CURVES / spec.name / f"{provenance['name']}{suffix}.json"
    curve = _load(path, key)
    done = {p["steps"] for p in curve["points"]}
    for steps in sorted(set(args.steps) - done):
        start = time.perf_counter()
        record = score_on_valid(spec, model, provenance, {**fixed, "steps": steps})
        curve["points"] = sorted([*curve["points"], _point(record, steps, time.perf_counter() - start)],
                                 key=lambda p: p["steps"])
        _write_atomic(path, curve)
        print(f"{spec.name} {provenance['name']} steps={steps}: {_summary(record['metrics'])} "
              f"(fit {record['fit']['seconds']:.0f} s)", flush=True)
    print(f"wrote {path}")


def _summary(metrics: dict) -> str:
    parts = []
    for track, key in (("read", "sequence_accuracy"), ("write", "iia"), ("interchange", "iia")):
        if metrics.get(track):
            parts.append(f"{track} {metrics[track][key]:.3f}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
