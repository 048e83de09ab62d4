"""Learning curves: a baseline's scores against its fit steps, on the `valid` split.

Why: a default schedule is only defensible if more steps would not change the verdict
(issue #13: each default within 0.02 of the plateau of the metric it trains for). This
fits one method on one reference model with increasing `steps` and scores every fit on
the 1,000-sequence `valid` split, never on `test`, so choosing a default from the curve
does not tune on the leaderboard's data.

    python benchmarks/learning_curves.py linear-das gru-h256-ar-s0 --steps 250 500 1000 1500 3000
    python benchmarks/learning_curves.py onion gru-h48-ar-s0 --factors 1 2 4    # varies steps and read_steps
    python benchmarks/learning_curves.py linear-probe gru-h48-ar-s0 --factors 1 2 4  # varies n_samples

`--factors` multiplies the method's defaults of every `--vary` parameter together (onion
trains its write and its read in two schedules; a probe without steps learns from
`n_samples`), so factor 1 is the default the leaderboard scores. Without `--vary`, a
method's schedule parameters come from `VARY` (`steps` for a method not listed there).

    python benchmarks/learning_curves.py report [--write]  # each default against its curve (-> REPORT.md)

The report reads only curves of the current method code at its current fixed params, and
compares each default with the best point of the metric the method trains for. A curve is
keyed by the code without its defaults (`code_sha256`), so moving a default along its own
curve (the point of measuring it) keeps the curve: every point stores its own values, and
the factors are taken against whatever the default is now.

Writes leaderboard/curves/<method>/<model>.json after every point (atomically), and skips
points already there for the same method source and params, so an interrupted run resumes
where it stopped. One torch thread by default (the development machine is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.data import load_split
from benchmark.errors import OnionbenchError
from benchmark.harness.defaults import PROJECT_ROOT
from benchmark.harness.submission import MethodSpec, resolve
from benchmark.records import ModelProvenance, record_files, write_atomic
from benchmark.zoo.resolve import load_reference

CURVES = PROJECT_ROOT / "leaderboard" / "curves"


def score_on_valid(spec, model, provenance: ModelProvenance, params: dict) -> dict:
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


def code_sha256(spec) -> str:
    """sha256 of a method folder as `folder_sha256`, except that method.toml counts without [params].

    Why: choosing a default from its curve edits [params], which changes the folder's hash,
    but not one point measured before: each point stores the values it ran with. Every other
    change (code, entry, check params) still makes the curve history.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in spec.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel, data = path.relative_to(spec.folder).as_posix(), path.read_bytes()
        if rel == "method.toml":
            meta = tomllib.loads(data.decode())
            meta.pop("params", None)
            data = json.dumps(meta, sort_keys=True).encode()
        digest.update(rel.encode() + b"\0" + data)
    return digest.hexdigest()


def identity(curve: dict) -> dict:
    """What makes two curves one experiment: method code, model, split, what varies and what is fixed.

    The defaults of the varied parameters are left out (each point has its own values), so
    a curve survives moving its default. A curve from before `code_sha256` existed has none
    and matches nothing current.
    """
    vary = curve.get("vary", ["steps"])  # older curves vary `steps` alone and have no such key
    return {"method": curve["method"], "model": curve["model"], "model_sha256": curve.get("model_sha256"),
            "split": curve["split"], "code_sha256": curve.get("code_sha256"), "vary": vary,
            "fixed": {k: v for k, v in curve["params"].items() if k not in vary}}


def _load(path: Path, key: dict) -> dict:
    """The curve so far, or a fresh one when the method code or a fixed param changed."""
    if path.exists():
        curve = json.loads(path.read_text())
        if identity(curve) == identity(key):
            return curve
        print(f"{path}: method code or a fixed param changed; starting the curve again")
    return {**key, "points": []}


def main(argv: list[str] | None = None) -> None:
    argv = argv if argv is not None else sys.argv[1:]
    if argv[:1] == ["report"]:
        text = committed_report()
        if argv[1:2] == ["--write"]:
            REPORT.write_text(text)
            print(f"wrote {REPORT}")
        else:
            print(text, end="")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", help="method name or folder (e.g. linear-das)")
    parser.add_argument("model", help="reference model name (e.g. gru-h256-ar-s0)")
    parser.add_argument("--steps", type=int, nargs="+", help="values of the first --vary parameter")
    parser.add_argument("--vary", nargs="+", metavar="PARAM",
                        help="the integer parameters that make the schedule longer (default: the method's "
                             "entry in VARY, else steps)")
    parser.add_argument("--factors", type=float, nargs="+",
                        help="multiply the defaults of every --vary parameter by these (instead of --steps)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="another fixed override, e.g. --param lr=0.01 (part of the curve's key)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    spec = resolve(args.method)
    args.vary = args.vary or default_vary(spec.name)
    fixed = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    model, provenance = load_reference(args.model)
    params = {**spec.params, **fixed}
    key = {"method": spec.name, "model": provenance["name"], "model_sha256": provenance["sha256"],
           "split": "valid", "method_sha256": spec.source_sha256(), "code_sha256": code_sha256(spec),
           "params": params, "vary": args.vary}  # method_sha256 and params: as when the curve began
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
        write_atomic(path, curve)
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


# The parameters that make each baseline's schedule longer, where `steps` alone does not:
# onion trains its read and its write in two schedules (a curve over `steps` alone scales
# only the write); the sklearn probes learn from `n_samples` and have no steps.
VARY = {"onion": ["steps", "read_steps"], "linear-probe": ["n_samples"], "random-subspace": ["n_samples"]}


def default_vary(method: str) -> list[str]:
    """What `--factors` scales for `method` when `--vary` is not given."""
    return list(VARY.get(method, ["steps"]))


# The metric each baseline's schedule trains for (issue #13: "within 0.02 of the plateau of
# the metric it trains for"); a submission's curves are reported on READ.
TRAINS_FOR = {"onion": (("write", "iia"), ("read", "sequence_accuracy")), "linear-das": (("interchange", "iia"),),
              "additive-table": (("write", "iia"),)}
TOLERANCE = 0.02


@dataclass(frozen=True)
class Gap:
    """One default against its curve, on one metric."""

    method: str
    model: str
    metric: str
    by_factor: dict[float, float]  # schedule multiple -> score on valid
    paper: tuple[float, int] | None = None  # best score of a long run at the paper's recipe, steps it reached
    other: tuple[float, str] | None = None  # best score of a curve at other fixed params, and those params

    @property
    def paper_gap(self) -> float | None:
        """The paper recipe's best point minus the default: a plateau that a flat curve at our lr can hide."""
        return None if self.paper is None else round(self.paper[0] - self.default, 3)

    @property
    def other_gap(self) -> float | None:
        """Another recipe's best point minus the default: a plateau that the default's pool or lr can hide."""
        return None if self.other is None else round(self.other[0] - self.default, 3)

    @property
    def default(self) -> float:
        return self.by_factor[1.0]

    @property
    def best(self) -> float:
        return max(v for f, v in self.by_factor.items() if f >= 1)

    @property
    def gap(self) -> float:
        return round(self.best - self.default, 3)  # rates of 1,000 cases: the third decimal is the resolution

    @property
    def needed(self) -> float:
        """The shortest schedule within TOLERANCE of the best point (1.0: the default is)."""
        return min(f for f, v in self.by_factor.items() if f >= 1 and round(self.best - v, 3) <= TOLERANCE)

    @property
    def still_rising(self) -> bool:
        """The longest schedule is still more than TOLERANCE above the one before it: no plateau in sight."""
        longer = sorted(f for f in self.by_factor if f >= 1)
        return len(longer) > 1 and round(self.by_factor[longer[-1]] - self.by_factor[longer[-2]], 3) > TOLERANCE


Current = Callable[[str], "tuple[MethodSpec, str] | None"]


def current_code() -> Current:
    """method -> (its spec now, its code_sha256), or None when no such method exists any more;
    each method resolved and hashed once. Why a fresh one per report, not a module cache: the
    report must see a default moved since the last one (and the tests move one)."""
    seen: dict[str, tuple[MethodSpec, str] | None] = {}

    def current(method: str) -> tuple[MethodSpec, str] | None:
        if method not in seen:
            try:
                spec = resolve(method)
                seen[method] = (spec, code_sha256(spec))
            except OnionbenchError:
                seen[method] = None
        return seen[method]

    return current


def paper_runs(curves: Path = CURVES, current: Current | None = None
               ) -> dict[tuple[str, str, str, str], tuple[float, int]]:
    """(method, model, track, metric) -> (best score, steps reached) over the current code's long runs.

    Why: a curve over steps at our own lr can be flat below the plateau of the paper's recipe
    (lr 1e-3, weight decay 0.1): linear-das on gru-h64-ni-s0 is flat at 0.57-0.61 at lr 1e-2
    and reaches 0.65 at 1e-3. benchmarks/long_schedule.py measures that second reference.
    """
    current = current or current_code()
    best: dict[tuple[str, str, str, str], tuple[float, int]] = {}
    for path in sorted(curves.glob("*/*-long.json")):
        curve = json.loads(path.read_text())
        now = current(curve["method"])
        if now is None or curve.get("method_sha256") != now[0].source_sha256() or not curve["points"]:
            continue  # older method code: history
        if curve["params"].get("lengths"):
            continue  # another protocol (linear-das trained on length 9 only), not the default's at another recipe
        reached = max(p["steps"] for p in curve["points"])
        for key, value in _scores(curve):
            if key not in best or value > best[key][0]:
                best[key] = (value, max(reached, best.get(key, (0, 0))[1]))
    return best


def _scores(curve: dict) -> Iterator[tuple[tuple[str, str, str, str], float]]:
    """((method, model, track, metric), score) for every score of every point of a curve."""
    for p in curve["points"]:
        for track, values in p["metrics"].items():
            for metric, value in (values or {}).items():
                if value is not None:
                    yield (curve["method"], curve["model"], track, metric), value


def other_recipes(curves: Path = CURVES, current: Current | None = None
                  ) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """(method, model, track, metric) -> (best score, its fixed overrides) over the current code's
    curves at fixed params other than the defaults (`--param`), at any schedule.

    Why: a curve over steps can be flat below a plateau that another recipe of the same code
    reaches. gru-probe-ni on gru-h128-ar-s0 is flat at 0.77-0.78 from 50,000 states, and reads
    0.94 from 200,000: the flat curve alone would call the default converged. A curve of
    another protocol (linear-das trained on length 9 only) answers another question and is left out.
    """
    current = current or current_code()
    best: dict[tuple[str, str, str, str], tuple[float, str]] = {}
    for path in sorted(curves.glob("*/*.json")):
        curve = json.loads(path.read_text())
        if path.name.endswith("-long.json") or not curve.get("points"):
            continue  # long runs are the paper's recipe (paper_runs)
        now = current(curve["method"])
        if now is None:
            continue
        spec, code = now
        fixed = identity(curve)["fixed"]
        moved = {k: v for k, v in fixed.items() if spec.params.get(k) != v}
        if curve.get("code_sha256") != code or not moved or "lengths" in moved:
            continue  # older code (history), the default's own curve, or another protocol
        label = ", ".join(f"{k}={v}" for k, v in sorted(moved.items()))
        for key, value in _scores(curve):
            if key not in best or value > best[key][0]:
                best[key] = (value, label)
    return best


def current_gaps(curves: Path = CURVES) -> list[Gap]:
    """Every current curve (this method code, these fixed params) with a factor-1 point, per trained metric."""
    gaps: list[Gap] = []
    current = current_code()
    paper, other = paper_runs(curves, current), other_recipes(curves, current)
    for path in sorted(curves.glob("*/*.json")):
        curve = json.loads(path.read_text())
        if path.name.endswith("-long.json"):
            continue  # one long fit at the paper's recipe: benchmarks/long_schedule.py report
        resolved = current(curve["method"])
        if resolved is None:
            continue
        spec, code = resolved
        vary = identity(curve)["vary"]
        now = {**curve, "code_sha256": code, "params": spec.params}
        if identity(curve) != identity(now):
            continue  # older code or another fixed setting: history, not the current default
        factors = {round(p.get("values", {"steps": p["steps"]})[vary[0]] / spec.params[vary[0]], 3): p
                   for p in curve["points"]}
        if 1.0 not in factors:
            continue
        for track, metric in TRAINS_FOR.get(spec.name, (("read", "sequence_accuracy"),)):
            by_factor = {f: p["metrics"][track][metric] for f, p in factors.items() if p["metrics"].get(track)}
            if 1.0 in by_factor:
                key = (spec.name, curve["model"], track, metric)
                gaps.append(Gap(spec.name, curve["model"], f"{track.upper()} {metric}", by_factor,
                                paper.get(key), other.get(key)))
    return gaps


def report(gaps: list[Gap], tier_seconds: dict[str, float]) -> str:
    """Markdown: one row per (method, metric, model), then what closing each method's gap costs."""
    shown = sorted({f for g in gaps for f in g.by_factor})
    rows = ["| method | trains for | model | " + " | ".join(f"{f:g}x" for f in shown)
            + " | gap | default | paper's recipe (steps) | gap to it | another recipe | gap to it |",
            "|---|---|---|" + "---|" * len(shown) + "---|---|---|---|---|---|"]
    for g in gaps:
        cells = [f"{g.by_factor[f]:.3f}" if f in g.by_factor else "" for f in shown]
        verdict = ("within 0.02" if g.gap <= TOLERANCE else f"needs {g.needed:g}x") + (
            ", still rising" if g.still_rising else "")
        paper = (f"{g.paper[0]:.3f} ({g.paper[1]:,}) | {g.paper_gap:+.3f}" if g.paper else " | ")
        other = (f"{g.other[0]:.3f} ({g.other[1]}) | {g.other_gap:+.3f}" if g.other else " | ")
        rows.append(f"| {g.method} | {g.metric} | {g.model} | " + " | ".join(cells)
                    + f" | {g.gap:+.3f} | {verdict} | {paper} | {other} |")
    rows += ["", "| method | largest gap | schedule within 0.02 of the best point | core tier now (2 cores) "
             "| core tier at that schedule | largest gap to the paper's recipe | largest gap to another recipe |",
             "|---|---|---|---|---|---|---|"]
    for method in sorted({g.method for g in gaps}):
        mine = [g for g in gaps if g.method == method]
        worst, needed = max(g.gap for g in mine), max(g.needed for g in mine)
        now = tier_seconds.get(method)
        cost = (f"{now / 120:.0f} min | {now * needed / 120:.0f} min" if now else "? | ?")
        rising = " (a curve still rising: more)" if any(g.still_rising for g in mine) else ""
        vs_paper = [g for g in mine if g.paper_gap is not None]
        paper_gaps = [g.paper_gap for g in vs_paper if g.paper_gap is not None]
        others = [g for g in mine if g.other is not None]
        other_gaps = [g.other_gap for g in others if g.other_gap is not None]
        rows.append(f"| {method} | {worst:+.3f} | {needed:g}x{rising} | {cost} | "
                    + (f"{max(paper_gaps):+.3f} ({len({g.model for g in vs_paper})} of its models run)"
                       if vs_paper else "not run") + " | "
                    + (f"{max(other_gaps):+.3f} ({len({g.model for g in others})} of its models run)"
                       if others else "not run") + " |")
    uncurved = sorted(set(tier_seconds) - {g.method for g in gaps})
    if uncurved:  # a method the tables leave out would read as "at its plateau"
        rows += ["", f"No curve at the current code (not shown above, so not known to be at a plateau): "
                     f"{', '.join(uncurved)}. Older curves of theirs are history; "
                     "`python benchmarks/learning_curves.py METHOD MODEL --factors 0.5 1 2 4` measures one."]
    return "\n".join(rows)


def core_tier_seconds(results: Path) -> dict[str, float]:
    """Each method's summed fit seconds over its committed core-tier records (one core's time)."""
    totals: dict[str, float] = {}
    for path in record_files(results):
        record = json.loads(path.read_text())
        if record.get("model", {}).get("tier") == "core" and record.get("status") == "ok":
            totals[record["method"]["name"]] = totals.get(record["method"]["name"], 0.0) + record["fit"]["seconds"]
    return totals


REPORT = CURVES / "REPORT.md"


def committed_report() -> str:
    """leaderboard/curves/REPORT.md: the report on the committed curves and records."""
    from benchmark.harness.defaults import default_results

    head = ("# Learning curves: each default against its curve\n\n"
            "Generated by `python benchmarks/learning_curves.py report --write` from the committed curves\n"
            "(`leaderboard/curves/`, the `valid` split) and records (core-tier fit seconds, one core's time;\n"
            "halved for 2 cores). A factor multiplies the default schedule (`steps`; onion's `steps` and\n"
            "`read_steps` together; `n_samples` for linear-probe and random-subspace). The gap is the best\n"
            "point's score minus the default's, on the metric the schedule trains for; \"still rising\" means\n"
            "the longest schedule measured is more than 0.02 above the one before it, so the plateau is\n"
            "higher still and the gap a lower bound. \"Paper's recipe\" is the best point of the long run\n"
            "on the same model at lr 1e-3, weight decay 0.1 (`benchmarks/long_schedule.py`, up to 60,000\n"
            "steps; the steps it reached in brackets): a second plateau that a flat curve at the\n"
            "default's own lr cannot show. \"Another recipe\" is the best point, at any schedule, of the\n"
            "current code's curves at other fixed params (`--param`, named in brackets), e.g. a larger\n"
            "pool: a third plateau, which a flat curve from the default's own pool cannot show.\n\n"
            "Each point is one fit scored on the 1,000 `valid` sequences: its binomial standard error\n"
            "is up to 0.016 (at 0.5; 0.007 at 0.95), so a gap near 0.02 is within the spread of two\n"
            "fits, and the best of several points sits above the plateau by part of that spread\n"
            "(mlp-probe on gru-h128-ar-s0 at one recipe: 0.771 and 0.758 from two fit seeds).\n\n")
    return head + report(current_gaps(), core_tier_seconds(default_results())) + "\n"


def _summary(metrics: dict) -> str:
    parts = []
    for track, key in (("read", "sequence_accuracy"), ("write", "iia"), ("interchange", "iia")):
        if metrics.get(track):
            parts.append(f"{track} {metrics[track][key]:.3f}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
