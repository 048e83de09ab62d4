"""Fit and score a method on reference models, one result record per (method, model).

`score_cell` is the library entry point and accepts any model implementing the
reference-model interface (see `benchmark.zoo.gru`), not only the zoo. `score_many` is what
`onionbench score` runs: it skips cells whose record is up to date, so an interrupted run
resumes where it stopped, and a failing cell is recorded as failed without stopping the run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from benchmark.data import Sequences, heldout_keys, load_split, split_hash
from benchmark.errors import OnionbenchError
from benchmark.hardware import hardware_summary
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.plan import PLAN_SEED, make_plan
from benchmark.harness.records import (RECORD_VERSION, SCORING_VERSION, cell_key, harness_commit, library_versions,
                               read_record, record_path, seal, write_atomic)
from benchmark.zoo.registry import load_reference
from benchmark.harness.isolation import FitInfo, Limits, run_isolated
from benchmark.harness.scoring import (MethodError, MethodOutputs, Queries, check_outputs, collect_outputs, make_queries,
                               identity_metrics, model_context, oracle_metrics, score_outputs)
from benchmark.harness.submission import MethodSpec
from benchmark.task import BENCHMARK_VERSION

DEFAULT_BUDGET = 1_000_000  # sequences through the encoder during fit (the paper's onion run used 15 M)
DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / "leaderboard" / "results"


@dataclass(frozen=True)
class ScoreSettings:
    """What, besides method and model, determines a cell's metrics."""

    seed: int = 0  # torch seed before fit and before scoring; also the fit data stream
    budget: int = DEFAULT_BUDGET
    plan_seed: int = PLAN_SEED


def _model_meta(model: torch.nn.Module, provenance: dict) -> dict:
    name = provenance["name"]
    seed = int(name.rsplit("-s", 1)[1]) if name.rsplit("-s", 1)[-1].isdigit() else None
    return {"name": name, "sha256": provenance["sha256"], "hidden_size": int(model.state_dim),
            "variant": str(getattr(model, "variant", "custom")), "seed": seed}


def _base_record(spec: MethodSpec, model_meta: dict, test: Sequences, settings: ScoreSettings,
                 params: dict) -> dict:
    return {
        "record_version": RECORD_VERSION, "benchmark_version": BENCHMARK_VERSION, "scoring_version": SCORING_VERSION,
        "harness_commit": harness_commit(), "status": "ok", "error": None,
        "method": {"name": spec.name, "hypothesis": spec.hypothesis, "baseline": spec.is_baseline,
                   "source_sha256": spec.source_sha256(), "params": params, "entry": spec.entry, "url": spec.url,
                   "authors": list(spec.authors)},
        "model": model_meta, "split": {"name": "test", "sha256": split_hash(test), "size": len(test)},
        "plan_seed": settings.plan_seed, "seed": settings.seed, "environment": library_versions(),
        "hardware": hardware_summary(), "fit": {"seconds": 0.0, "sequences_drawn": 0, "budget": settings.budget},
        "eval_seconds": 0.0, "tracks_attempted": [],
        "metrics": {"read": None, "write": None, "interchange": None, "consistency": None},
        "by_length": {}, "bounds": {"oracle": {}}, "outcomes_sha256": None,
    }


def score_cell(spec: MethodSpec, model: torch.nn.Module, provenance: dict, *,
               settings: ScoreSettings = ScoreSettings(), params: dict | None = None,
               test: Sequences | None = None, isolate: bool = False, limits: Limits = Limits()) -> dict:
    """Fit `spec`'s method on `model` and score it; returns a sealed record (status ok or failed).

    provenance: {"name": ..., "sha256": ...} of the model's weights. With `isolate`, fit and
    the method's calls run in a child process under `limits` (see `benchmark.harness.isolation`);
    the model must then be picklable (any importable `torch.nn.Module` is).
    """
    test = test if test is not None else load_split("test")
    params = {**spec.params, **(params or {})}
    record = _base_record(spec, _model_meta(model, provenance), test, settings, params)
    try:
        _fit_and_score(spec, model, test, settings, params, record, isolate, limits)
    except Exception as err:  # a broken method must not stop the run
        record.update(status="failed", error=_one_line(err), outcomes_sha256=None,
                      metrics={"read": None, "write": None, "interchange": None, "consistency": None}, by_length={})
    return seal(record)


def _fit_and_score(spec, model, test, settings: ScoreSettings, params: dict, record: dict, isolate: bool,
                   limits: Limits) -> None:
    ctx = model_context(model, test, make_plan(test, settings.plan_seed))
    record["bounds"] = {"oracle": oracle_metrics(ctx), "identity": identity_metrics(ctx)}
    queries = make_queries(ctx)
    start = time.perf_counter()
    if isolate:
        outputs, fit = run_isolated(spec.folder, params, model, queries, seed=settings.seed,
                                    budget=settings.budget, limits=limits)
    else:
        outputs, fit = _run_in_process(spec, params, model, queries, settings)
    record["fit"].update(seconds=round(fit.seconds, 2), sequences_drawn=fit.sequences_drawn)
    check_outputs(outputs, queries)
    result = score_outputs(ctx, queries, outputs)
    record["eval_seconds"] = round(time.perf_counter() - start - fit.seconds, 2)
    record.update(tracks_attempted=list(outputs.tracks), metrics=result.metrics, by_length=result.by_length,
                  outcomes_sha256=result.outcomes_sha256())


def _run_in_process(spec, params: dict, model, queries: Queries, settings: ScoreSettings) -> tuple[MethodOutputs, FitInfo]:
    method = spec.instantiate(params)
    data = FitData(model, heldout_keys(), seed=settings.seed, budget=settings.budget)
    frozen = FrozenModel(model, data)
    seed_everything(settings.seed)
    start = time.perf_counter()
    fitted = method.fit(frozen, data)
    fit = FitInfo(time.perf_counter() - start, data.drawn)
    if fitted is not method:
        raise MethodError("fit must return self (scikit-learn convention)")
    frozen.lock()
    seed_everything(settings.seed)
    return collect_outputs(method, queries), fit


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    kind = "" if isinstance(err, OnionbenchError) else f"{type(err).__name__}: "
    return f"{kind}{text}"[:500]


def cell_inputs(spec: MethodSpec, test: Sequences, settings: ScoreSettings, params: dict) -> dict:
    """The parts of a cell's key shared by every model of one run (hashed once, not per model)."""
    return {"benchmark_version": BENCHMARK_VERSION, "scoring_version": SCORING_VERSION,
            "method_sha256": spec.source_sha256(), "params": json.loads(json.dumps(params)),
            "split_sha256": split_hash(test), "plan_seed": settings.plan_seed, "seed": settings.seed,
            "budget": settings.budget}


def is_up_to_date(path: Path, inputs: dict, model_sha: str) -> bool:
    """A valid, successful record exists for exactly these inputs (see `cell_inputs`)."""
    if not path.exists():
        return False
    try:
        old = read_record(path)
    except OnionbenchError:
        return False
    return old["status"] == "ok" and cell_key(old) == {**inputs, "model_sha256": model_sha}


def score_many(spec: MethodSpec, models: list[str], results: Path, *, settings: ScoreSettings = ScoreSettings(),
               params: dict | None = None, force: bool = False, progress: bool = True, isolate: bool = True,
               limits: Limits = Limits()) -> list[tuple[str, dict, bool]]:
    """Score `spec` on each model (each cell in its own child process unless `isolate` is
    False); returns (model, record, reused) per cell."""
    test = load_split("test")
    params = {**spec.params, **(params or {})}
    inputs = cell_inputs(spec, test, settings, params)
    out = []
    bar = tqdm(models, desc=f"score {spec.name}", unit="model", disable=not progress, dynamic_ncols=True)
    for name in bar:
        bar.set_postfix_str(name)
        model, provenance = load_reference(name)
        path = record_path(results, spec.name, provenance["name"])
        if not force and is_up_to_date(path, inputs, provenance["sha256"]):
            out.append((name, json.loads(path.read_text()), True))
            continue
        record = score_cell(spec, model, provenance, settings=settings, params=params, test=test, isolate=isolate,
                            limits=limits)
        write_atomic(path, record)
        out.append((name, record, False))
    return out
