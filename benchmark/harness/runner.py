"""`onionbench score`: plan the stale cells, run them through an executor, write the records.

An interrupted run resumes where it stopped: a cell whose record is up to date (same
method source, params, model weights, split, plan, seed, budget and scoring version) is
skipped, and every record is written atomically by this driver as soon as its cell ends.
A failing cell is recorded as failed without stopping the run.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from benchmark.data import load_split
from benchmark.errors import OnionbenchError
from benchmark.harness.cell import ScoreSettings, cell_inputs
from benchmark.harness.defaults import DEFAULT_BUDGET, default_results
from benchmark.harness.executors import CellTask, Executor, SequentialExecutor
from benchmark.harness.isolation.launch import Limits
from benchmark.harness.submission import MethodSpec
from benchmark.records import cell_key, read_record, record_path, write_atomic

__all__ = ["DEFAULT_BUDGET", "ScoreSettings", "default_results", "is_up_to_date", "score_many"]


def is_up_to_date(path: Path, inputs: dict, model_sha: str) -> bool:
    """A valid, successful record exists for exactly these inputs (see `cell_inputs`)."""
    if not path.exists():
        return False
    try:
        old = read_record(path)
    except OnionbenchError:
        return False
    return old["status"] == "ok" and cell_key(old) == {**inputs, "model_sha256": model_sha}


def _model_sha(name: str) -> str:
    from benchmark.hashing import file_sha256
    from benchmark.zoo.registry import load_registry

    entries = load_registry()
    entry = entries.get(name)
    return entry.sha256 if entry and entry.sha256 else file_sha256(Path(name) / "model.safetensors")


def plan_cells(spec: MethodSpec, models: list[str], results: Path, *, settings: ScoreSettings, params: dict,
               force: bool, limits: Limits, fresh_seed: int | None = None) -> tuple[list[CellTask], list[tuple[str, dict]]]:
    """Split the cells into those to run and those whose record is up to date (model, record)."""
    inputs = cell_inputs(spec, load_split("test"), settings, params)
    todo, reused = [], []
    for name in models:
        path = record_path(results, spec.name, Path(name).name)
        if fresh_seed is None and not force and is_up_to_date(path, inputs, _model_sha(name)):
            reused.append((name, json.loads(path.read_text())))
        else:
            todo.append(CellTask(str(spec.folder), name, params, settings, limits, fresh_seed))
    return todo, reused


def score_many(spec: MethodSpec, models: list[str], results: Path, *, settings: ScoreSettings = ScoreSettings(),
               params: dict | None = None, force: bool = False, progress: bool = True,
               limits: Limits = Limits(), executor: Executor | None = None,
               fresh_seed: int | None = None) -> list[tuple[str, dict, bool]]:
    """Score `spec` on each model; returns (model, record, reused) per cell, in `models` order."""
    params = {**spec.params, **(params or {})}
    todo, reused = plan_cells(spec, models, results, settings=settings, params=params, force=force,
                              limits=limits, fresh_seed=fresh_seed)
    done: dict[str, tuple[dict, bool]] = {name: (rec, True) for name, rec in reused}
    bar = tqdm(total=len(todo), desc=f"score {spec.name}", unit="cell", disable=not progress or not todo,
               dynamic_ncols=True)
    for task, record in (executor or SequentialExecutor()).run(todo):
        write_atomic(record_path(results, spec.name, record["model"]["name"]), record)
        done[task.model] = (record, False)
        bar.set_postfix_str(f"{task.model}: {record['status']}")
        bar.update(1)
    bar.close()
    return [(name, *done[name]) for name in models if name in done]

