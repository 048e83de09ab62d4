"""Learning curves: a baseline's scores against its fit steps, on the `valid` split.

Why: a default schedule is only defensible if more steps would not change the verdict
(issue #13: each default within 0.02 of the plateau of the metric it trains for). This
fits one method on one reference model with increasing `steps` and scores every fit on
the 1,000-sequence `valid` split, never on `test`, so choosing a default from the curve
does not tune on the leaderboard's data.

    python benchmarks/learning_curves.py linear-das gru-h256-ar-s0 --steps 250 500 1000 1500 3000
    python benchmarks/learning_curves.py onion gru-h48-ar-s0 --vary steps read_steps --factors 1 2 4
    python benchmarks/learning_curves.py linear-probe gru-h48-ar-s0 --vary n_samples --factors 1 2 4

`--factors` multiplies the method's defaults of every `--vary` parameter together (onion
trains its write and its read in two schedules; a probe without steps learns from
`n_samples`), so factor 1 is the default the leaderboard scores.

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


def _point(record: dict, values: dict, wall: float) -> dict:
    """One curve point; `steps` is the value of the first varied parameter (the x axis)."""
    if record["status"] != "ok":
        raise SystemExit(f"{values}: the fit failed: {record['error']}")
    return {"steps": next(iter(values.values())), "values": values, "fit_seconds": record["fit"]["seconds"],
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
    parser.add_argument("--steps", type=int, nargs="+", help="values of the first --vary parameter")
    parser.add_argument("--vary", nargs="+", default=["steps"], metavar="PARAM",
                        help="the integer parameters that make the schedule longer (default: steps)")
    parser.add_argument("--factors", type=float, nargs="+",
                        help="multiply the defaults of every --vary parameter by these (instead of --steps)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="another fixed override, e.g. --param lr=0.01 (part of the curve's key)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = resolve(args.method)
    fixed = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    model, provenance = load_reference(args.model)
    params = {**spec.params, **fixed}
    key = {"method": spec.name, "model": provenance["name"], "model_sha256": provenance["sha256"],
           "split": "valid", "method_sha256": spec.source_sha256(), "params": params}
    if args.vary != ["steps"]:  # older curves vary `steps` alone and have no such key
        key["vary"] = args.vary
    suffix = "".join(f"-{k}{v}" for k, v in sorted(fixed.items()))
    path = CURVES / spec.name / f"{provenance['name']}{suffix}.json"
    curve = _load(path, key)
    done = {p["steps"] for p in curve["points"]}
    for values in _schedule(args, params):
        if values[args.vary[0]] in done:
            continue
        start = time.perf_counter()
        record = score_on_valid(spec, model, provenance, {**fixed, **values})
        curve["points"] = sorted([*curve["points"], _point(record, values, time.perf_counter() - start)],
                                 key=lambda p: p["steps"])
        _write_atomic(path, curve)
        print(f"{spec.name} {provenance['name']} {values}: {_summary(record['metrics'])} "
              f"(fit {record['fit']['seconds']:.0f} s)", flush=True)
    print(f"wrote {path}")


def _schedule(args: argparse.Namespace, params: dict) -> list[dict]:
    """The parameter values of every point asked for, shortest schedule first."""
    missing = [k for k in args.vary if not isinstance(params.get(k), int)]
    if missing:
        raise SystemExit(f"--vary {' '.join(missing)}: not an integer parameter of this method "
                         f"(its parameters: {', '.join(sorted(params))})")
    if (args.steps is None) == (args.factors is None):
        raise SystemExit("give exactly one of --steps (values of the first --vary parameter) or --factors")
    if args.steps is not None:
        if len(args.vary) > 1:
            raise SystemExit("--steps sets one parameter; with several --vary parameters use --factors")
        return [{args.vary[0]: s} for s in sorted(set(args.steps))]
    return [{k: max(1, round(params[k] * f)) for k in args.vary} for f in sorted(set(args.factors))]


def _summary(metrics: dict) -> str:
    parts = []
    for track, key in (("read", "sequence_accuracy"), ("write", "iia"), ("interchange", "iia")):
        if metrics.get(track):
            parts.append(f"{track} {metrics[track][key]:.3f}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
