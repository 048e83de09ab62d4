"""The paper's long schedule, run for real: one checkpointed fit, scored on `valid` along the way.

Why: issue #13 asks whether our short defaults hide what 60,000 steps at the paper's
lr 1e-3 (constant) and weight decay 0.1 would find, above all whether linear interchange
on length 9 at N=256 exceeds 0.5. At a constant lr the first k steps of a long fit *are*
a k-step fit (same init, same batches, same optimiser state), so one run scored at
k = 1,500, 3,000, ... 60,000 is the whole learning curve for the price of its last point.

    python benchmarks/long_schedule.py linear-das gru-h256-ar-s0            # paper's schedule
    python benchmarks/long_schedule.py onion gru-h64-ar-s0 --at 1500 60000

The fit is the baseline's own, driven step by step so that it can stop and resume: the
run its class returns from a public `resumable(model, data)` (onion's `OnionRun`,
linear-das's `LinearDASRun`). The run's state (parameters, optimiser, RNG) is saved to
`--checkpoints` (default runs/long/) every `--save-every` steps and at every scored point,
and a rerun continues from there. Points go to
leaderboard/curves/<method>/<model>-long.json (atomically, after each one). Scores use the
cell's own scoring (`score_fitted`) on the 1,000-sequence `valid` split, never `test`.
tests/test_long_schedule.py checks that the driven fit equals the baseline's `fit` and
that a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from benchmark.board.stats import wilson
from benchmark.data import heldout_keys, load_split
from benchmark.harness.cell import Evaluation, score_fitted
from benchmark.harness.declared import as_method
from benchmark.harness.defaults import DEFAULT_BUDGET, PROJECT_ROOT
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.plan import PLAN_SEED
from benchmark.harness.submission import discover, resolve
from benchmark.records import ModelProvenance, write_atomic
from benchmark.zoo.resolve import load_reference

ROOT = PROJECT_ROOT
CURVES = ROOT / "leaderboard" / "curves"
PAPER = {"lr": 1e-3, "weight_decay": 0.1}  # the paper's recipe for every intervention (baselines/README.md)
# ... and, where a default departs from it in more than lr and weight decay, the paper's way back
PAPER_EXTRA: dict[str, dict[str, object]] = {"linear-das": {"init": "random", "schedule": "constant"},
                                              "onion": {"warmup": 0.0, "clip": 0.0}}  # PAPER.md: no warm-up, no gradient clipping
AT = (1500, 3000, 6000, 12000, 24000, 36000, 48000, 60000)


def resumable_methods() -> list[str]:
    """The baselines the driver can run: those with a public `resumable` on their class.
    Derived, not listed, so that a baseline that adds `resumable` needs no line in this study.
    Baselines only: a submission's code is never imported to build an argument list."""
    return sorted(name for name, spec in discover().items()
                  if spec.is_baseline and hasattr(spec.load_class(), "resumable"))


def start(spec, model, params: dict, *, seed: int = 0):
    """The method instantiated and its run set up exactly as the harness's `fit_method` would.

    A run has `pool`, `steps(n)`, `fitted()` (the method's Declaration as `fit` would return it
    after the steps so far), `state()` and `load(state)`; a baseline offers one through a public
    `resumable(model, data)` (onion's `OnionRun`, linear-das's `LinearDASRun`).
    """
    method = spec.instantiate(params)
    if not hasattr(method, "resumable"):
        raise SystemExit(f"{spec.name}: no resumable run (a public `resumable(model, data)`); "
                         f"choose one of {', '.join(resumable_methods())}")
    data = FitData(model, heldout_keys(), seed=seed, budget=DEFAULT_BUDGET)
    seed_everything(seed)
    frozen = FrozenModel(model, data)
    return method.resumable(frozen, data)


def pool_sha(run) -> str:
    return hashlib.sha256(run.pool.tokens.numpy().tobytes() + run.pool.states.numpy().tobytes()).hexdigest()


def _save(path: Path, run, step: int, pool: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "pool_sha256": pool, **run.state()}, tmp)
    os.replace(tmp, path)


def resume(run, path: Path, pool: str) -> int:
    """Load the checkpoint at `path` into `run` if there is one for this pool; the step reached."""
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=False)
    if state["pool_sha256"] != pool:
        raise SystemExit(f"{path}: the checkpoint was made on another training pool; delete it to start again")
    run.load(state)
    return int(state["step"])


def run_schedule(spec, model, provenance: ModelProvenance, params: dict, at: list[int], ckpt: Path, out: Path,
                 save_every: int = 1000, stop_after: int | None = None) -> dict:
    """Train to max(at), scoring on `valid` at every step in `at`; resumable. Returns the curve.

    stop_after: stop (checkpointed) once that many steps are done, to fit a session's time;
    the same call without it continues from there.
    """
    key = {"method": spec.name, "model": provenance["name"], "model_sha256": provenance["sha256"],
           "split": "valid", "method_sha256": spec.source_sha256(),
           "params": {**spec.params, **params, "steps": max(at)},
           "schedule": "one constant-lr fit, scored at each point"}
    curve = json.loads(out.read_text()) if out.exists() else {}
    if {k: curve.get(k) for k in key} != key:
        curve = {**key, "points": []}
    done = {p["steps"] for p in curve["points"]}
    run = start(spec, model, {**params, "steps": max(at)})
    pool = pool_sha(run)
    step = resume(run, ckpt, pool)
    valid = Evaluation(load_split("valid"), PLAN_SEED, name="valid")
    bar = tqdm(total=max(at), initial=step, desc=f"{spec.name} {provenance['name']}", unit="step")
    clock = time.perf_counter()
    end = max(at) if stop_after is None else min(max(at), stop_after)
    for target in sorted(set(at)):
        while step < min(target, end):
            n = min(save_every - step % save_every, min(target, end) - step)
            run.steps(n)
            step += n
            bar.update(n)
            _save(ckpt, run, step, pool)
        if step < target:
            break  # stopped early by stop_after
        if target in done:
            continue
        scored = score_fitted(as_method(run.fitted(), int(model.state_dim)), model, valid)
        curve["points"] = sorted([*curve["points"], {"steps": target, **scored,
                                  "seconds_since_start": round(time.perf_counter() - clock, 1)}],
                                 key=lambda p: p["steps"])
        write_atomic(out, curve)
        bar.write(f"steps={target}: {summary(scored)}")
    bar.close()
    return curve


def summary(scored: dict) -> str:
    m, parts = scored["metrics"], []
    for track, name in (("read", "sequence_accuracy"), ("write", "iia"), ("interchange", "iia")):
        if m.get(track):
            parts.append(f"{track} {m[track][name]:.3f}")
    l9 = scored["by_length"].get("interchange", {}).get("9")
    if l9 is not None:
        parts.append(f"interchange L=9 {l9:.3f}")
    return ", ".join(parts)


def report() -> str:
    """Markdown: every long curve's points, with the length-9 INTERCHANGE rate and its 95 % interval."""
    rows = ["| method | model | params | steps | READ seq. | WRITE | INTERCHANGE | INTERCHANGE L=9 (95 % CI, n) |",
            "|---|---|---|---|---|---|---|---|"]
    for path in sorted(CURVES.glob("*/*-long.json")):
        curve = json.loads(path.read_text())
        extra = ", ".join(f"{k} {v}" for k, v in sorted(curve["params"].items()) if k in ("lr", "weight_decay", "lin_init"))
        for p in curve["points"]:
            m = p["metrics"]
            cells = [f"{m[t][k]:.3f}" if m.get(t) else "-" for t, k in
                     (("read", "sequence_accuracy"), ("write", "iia"), ("interchange", "iia"))]
            l9 = p["by_length"].get("interchange", {}).get("9")
            if l9 is not None:
                n = p["kept_by_length"]["interchange"]["9"]  # stored with every point by score_fitted
                lo, hi = wilson(l9, n)
                cells.append(f"{l9:.3f} ({lo:.3f}-{hi:.3f}, {n})")
            else:
                cells.append("-")
            rows.append(f"| {curve['method']} | {curve['model']} | {extra} | {p['steps']:,} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _label(value) -> str:
    """A parameter value in a file name: lists joined by '+' (lengths=[9] -> "lengths9")."""
    return "+".join(map(str, value)) if isinstance(value, list) else str(value)


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["report"]:
        print(report())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="`python benchmarks/long_schedule.py report` prints every curve as Markdown.")
    parser.add_argument("method", choices=resumable_methods())
    parser.add_argument("model", help="reference model name (e.g. gru-h256-ar-s0)")
    parser.add_argument("--at", type=int, nargs="+", default=list(AT), help="steps at which to score")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="override on top of the paper's lr 1e-3 and weight decay 0.1")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "runs" / "long")
    parser.add_argument("--save-every", type=int, default=1000)
    parser.add_argument("--stop-after", type=int, help="stop (checkpointed) after this many steps; rerun to go on")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = resolve(args.method)
    paper: dict[str, object] = {**PAPER, **PAPER_EXTRA.get(spec.name, {})}
    params = {**paper, **{k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}}
    model, provenance = load_reference(args.model)
    suffix = "".join(f"-{k}{_label(v)}" for k, v in sorted(params.items()) if paper.get(k) != v)
    name = f"{provenance['name']}{suffix}"
    out = CURVES / spec.name / f"{name}-long.json"
    run_schedule(spec, model, provenance, params, args.at, args.checkpoints / spec.name / f"{name}.pt", out,
                 args.save_every, args.stop_after)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
