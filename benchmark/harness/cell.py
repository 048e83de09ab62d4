"""One cell: fit a method on one reference model and score it on every track (the one
function runner, conformance, verify and benchmarks use).

    context -> queries -> shuffle rows -> fit | serialise | answer (two processes) ->
    unshuffle -> check -> score -> sealed record

`run_cell` accepts any model implementing the reference-model interface (see
docs/MODEL_INTERFACE.md), not only the zoo. With `isolate=False` the two halves run in
this process (for debugging and library use): the method still crosses a pickle round
trip, so it cannot keep the model on itself, but its module globals survive. Only
isolated cells go on the leaderboard (`onionbench score` always isolates).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.data import Sequences, heldout_keys, load_split, split_hash
from benchmark.errors import one_line
from benchmark.harness import declared
from benchmark.harness.context import (
    ModelContext,
    identity_by_length,
    identity_metrics,
    kept_by_length,
    model_context,
    oracle_metrics,
)
from benchmark.harness.defaults import DEFAULT_BUDGET
from benchmark.harness.isolation.launch import FitInfo, Limits, run_isolated
from benchmark.harness.plan import PLAN_SEED, make_plan
from benchmark.harness.protocol import FitJob, answer_queries, fit_method, load_fitted
from benchmark.harness.record_fields import base_record, outcomes_sha256
from benchmark.harness.submission import MethodSpec
from benchmark.harness.tracks import TRACKS, TrackQueries
from benchmark.harness.tracks.base import Tensors
from benchmark.records import ModelProvenance, seal


@dataclass(frozen=True)
class ScoreSettings:
    """What, besides method and model, determines a cell's metrics."""

    seed: int = 0  # torch seed before fit and before scoring; also the fit data stream
    budget: int = DEFAULT_BUDGET
    plan_seed: int = PLAN_SEED
    device: str = "cpu"  # torch device for fit (`--device`); floats differ across devices, so it is in the key


@dataclass(frozen=True)
class Evaluation:
    """The test split and plan a cell is scored on (the shipped one, or a fresh draw)."""

    test: Sequences
    plan_seed: int
    name: str = "test"  # "test", or "fresh-<seed>" for a fresh draw (never committed)
    extra_heldout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def shipped_evaluation(settings: ScoreSettings) -> Evaluation:
    """The public test split and the plan of `settings.plan_seed`."""
    return Evaluation(load_split("test"), settings.plan_seed)


def run_cell(spec: MethodSpec, model: torch.nn.Module, provenance: ModelProvenance, *,
             settings: ScoreSettings = ScoreSettings(), params: dict | None = None,
             evaluation: Evaluation | None = None, isolate: bool = True, limits: Limits = Limits(),
             fitted_out: list | None = None) -> dict:
    """Fit `spec`'s method on `model` and score it; returns a sealed record (status ok or failed).

    provenance: the model's `ModelProvenance` (`benchmark.zoo.resolve.load_reference`); only
    "name" and "sha256" are required.
    fitted_out: when given, receives the fitted bytes that were scored (`onionbench export`).
    """
    evaluation = evaluation or shipped_evaluation(settings)
    params = {**spec.params, **(params or {})}
    record = base_record(spec, provenance, model, evaluation.test, evaluation.name, params,
                         seed=settings.seed, budget=settings.budget, plan_seed=evaluation.plan_seed)
    if settings.device != "cpu":  # absent means the CPU, as in every record before `--device`
        record["fit"]["device"] = settings.device
    try:
        _fit_and_score(spec, model, evaluation, settings, params, record, isolate, limits, fitted_out)
    except Exception as err:  # a broken method must not stop the run
        record.update(status="failed", error=one_line(err), outcomes_sha256=None,
                      metrics=dict.fromkeys(TRACKS), by_length={})
        if getattr(err, "sandbox", None):
            record["environment"]["sandbox"] = err.sandbox  # type: ignore[attr-defined]
        if getattr(err, "detail", None):
            record["error_detail"] = err.detail  # type: ignore[attr-defined]
    return seal(record)


def _fit_and_score(spec: MethodSpec, model: torch.nn.Module, evaluation: Evaluation, settings: ScoreSettings,
                   params: dict, record: dict, isolate: bool, limits: Limits, fitted_out: list | None = None) -> None:
    ctx, queries, orders, public = _prepare(model, evaluation)
    record["bounds"] = {"oracle": oracle_metrics(ctx), "identity": identity_metrics(ctx),
                        "identity_by_length": identity_by_length(ctx)}
    record["kept_by_length"] = kept_by_length(ctx)
    heldout = np.concatenate([heldout_keys(), evaluation.extra_heldout])
    job = FitJob(str(spec.folder), params, settings.seed, settings.budget, heldout, settings.device)
    start = time.perf_counter()
    answers, fit = (run_isolated(job, model, public, seed=settings.seed, limits=limits, keep_blob=fitted_out is not None)
                    if isolate else _run_in_process(job, model, public, settings.seed))
    if fitted_out is not None and fit.blob is not None:
        fitted_out.append(fit.blob)
    record["fit"].update(seconds=round(fit.seconds, 2), sequences_drawn=fit.sequences_drawn)
    if fit.wall_seconds is not None:
        record["fit"].update(wall_seconds=round(fit.wall_seconds, 2), serialised_bytes=fit.serialised_bytes)
    if fit.description_length is not None:
        record["fit"]["description_length"] = fit.description_length
    record["method_parameters"] = fit.method_parameters
    record["method_kind"] = fit.kind
    if fit.declaration is not None:
        record["fit"]["declaration"] = fit.declaration
    record["interchange_reads"] = interchange_reads(spec, fit.declaration)
    if fit.sandbox is not None:
        record["environment"]["sandbox"] = fit.sandbox
    answers = {name: _unshuffle(a, orders[name]) for name, a in answers.items() if name in TRACKS}
    _score(ctx, queries, answers, record)
    record["eval_seconds"] = round(max(time.perf_counter() - start - fit.seconds, 0.0), 2)


def _prepare(model: torch.nn.Module, evaluation: Evaluation) -> tuple[
        ModelContext, dict[str, TrackQueries], dict[str, torch.Tensor], dict[str, Tensors]]:
    """The model's context on the evaluation split, every track's queries, and their shuffled public rows."""
    ctx = model_context(model, evaluation.test, make_plan(evaluation.test, evaluation.plan_seed))
    queries = {name: track.queries(ctx) for name, track in TRACKS.items()}
    orders = {name: _order(q) for name, q in queries.items()}
    public = {name: {k: v[orders[name]] for k, v in q.public.items()} for name, q in queries.items()}
    return ctx, queries, orders, public


def score_in_process(method: object, model: torch.nn.Module, evaluation: Evaluation, record: dict, *,
                     seed: int = 0) -> ModelContext:
    """Answer every track with an already fitted `method` in this process and score it into `record`
    (metrics, by_length, by_position, tracks_attempted, outcomes_sha256); returns the model's context.

    Why it exists: the two callers that hold a fitted method rather than a sealed cell (a research
    script's snapshots, and `score --fitted` of a declared artifact) score exactly as the cell does:
    the same queries, shuffle, checks and metrics. There is no isolation and no pickle round trip,
    so only trusted objects (baselines, or the harness's own DeclaredMethod) come here.
    """
    ctx, queries, orders, public = _prepare(model, evaluation)
    answers = answer_queries(method, public, seed=seed)
    answers = {name: _unshuffle(a, orders[name]) for name, a in answers.items() if name in TRACKS}
    _score(ctx, queries, answers, record)
    return ctx


def score_fitted(method: object, model: torch.nn.Module, evaluation: Evaluation, *, seed: int = 0) -> dict:
    """{"metrics", "by_length", "kept_by_length"} of an already fitted method, scored in this process.

    kept_by_length gives the number of cases behind each per-length rate (for intervals).
    For research scripts (benchmarks/long_schedule.py scores snapshots of one long fit without
    re-fitting each); never for the leaderboard (see `score_in_process`).
    """
    out: dict = {"metrics": dict.fromkeys(TRACKS), "by_length": {}}
    ctx = score_in_process(method, model, evaluation, out, seed=seed)
    return {"metrics": out["metrics"], "by_length": out["by_length"], "kept_by_length": kept_by_length(ctx)}


def _order(q: TrackQueries) -> torch.Tensor:
    """A per-run random order of the query rows (from the OS, so a method cannot predict it)."""
    rows = next(iter(q.public.values())).shape[0]
    return torch.randperm(rows, generator=torch.Generator().manual_seed(secrets.randbits(63)))


def _unshuffle(answers: Tensors, order: torch.Tensor) -> Tensors:
    out = {}
    for key, value in answers.items():
        if not isinstance(value, torch.Tensor) or value.shape[:1] != order.shape:
            out[key] = value  # the track's check reports the malformed answer
            continue
        restored = torch.empty_like(value)
        restored[order] = value
        out[key] = restored
    return out


def _score(ctx: ModelContext, queries: dict[str, TrackQueries], answers: dict[str, Tensors], record: dict) -> None:
    """Check every attempted track's answers, then score them."""
    for name, a in answers.items():
        TRACKS[name].check(a, queries[name].public)
    outcomes: dict[str, np.ndarray] = {}
    for name, a in answers.items():
        result = TRACKS[name].score(ctx, queries[name], a, answers)
        record["metrics"][name] = result.metrics
        if result.by_length:
            record["by_length"][name] = result.by_length
        if result.by_position:
            record.setdefault("by_position", {})[name] = result.by_position
        outcomes.update(result.outcomes)
    record["tracks_attempted"] = [t for t in ("read", "write", "interchange") if t in answers]
    record["outcomes_sha256"] = outcomes_sha256(outcomes)


def _run_in_process(job: FitJob, model: torch.nn.Module, public: dict[str, Tensors],
                    seed: int) -> tuple[dict[str, Tensors], FitInfo]:
    fitted = fit_method(job, model)
    method = load_fitted(job.folder, fitted.blob, int(model.state_dim))  # type: ignore[arg-type]
    answers = answer_queries(method, public, seed=seed)
    return answers, FitInfo(fitted.seconds, fitted.sequences_drawn, fitted.method_parameters,
                            kind=fitted.kind, declaration=fitted.declaration, blob=fitted.blob)


def interchange_reads(spec: MethodSpec | None, declaration: dict | None) -> bool | None:
    """Does the method's INTERCHANGE call its own read (issue 29 item 5)? A declaration's
    interchange form says so; an open method states it in method.toml (None: not stated,
    or no interchange). Reading both states and rewriting is a different operation from
    swapping a subspace without reading, so the board marks such rows."""
    if declaration is not None:
        form = declaration["forms"].get("interchange")
        return None if form is None else form in declared.READ_WRITE
    return None if spec is None else spec.interchange_reads


def fresh_evaluation(seed: int | None = None) -> tuple[Evaluation, int]:
    """A test split and plan drawn from an OS seed (or `seed`), disjoint from the shipped splits.

    A method that memorised the public split or plan meets sequences it has never seen;
    fit may not encode them either. Returns (evaluation, seed).
    """
    from benchmark.data import SPLITS, SplitSpec, generate_split

    seed = secrets.randbits(31) if seed is None else seed
    shipped = SPLITS["test"]
    spec = SplitSpec(f"fresh-{seed}", shipped.size, seed, shipped.max_fraction_per_length, (), "")
    test = generate_split(spec, heldout_keys())
    return Evaluation(test, seed, name=f"fresh-{seed}", extra_heldout=test.keys()), seed


def cell_inputs(spec: MethodSpec, test: Sequences, settings: ScoreSettings, params: dict) -> dict:
    """The parts of a cell's key shared by every model of one run (hashed once, not per model)."""
    from benchmark.records import SCORING_VERSION
    from benchmark.task import BENCHMARK_VERSION

    return {"benchmark_version": BENCHMARK_VERSION, "scoring_version": SCORING_VERSION,
            "method_sha256": spec.source_sha256(), "params": json.loads(json.dumps(params)),
            "split_sha256": split_hash(test), "plan_seed": settings.plan_seed, "seed": settings.seed,
            "budget": settings.budget, "device": settings.device}


__all__ = ["DEFAULT_BUDGET", "Evaluation", "ScoreSettings", "cell_inputs", "fresh_evaluation",
           "run_cell", "score_fitted", "score_in_process", "shipped_evaluation"]
