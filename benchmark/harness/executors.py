"""The executor seam: how a list of cells is run (one after another, N at a time, ...).

A cell task is plain data (`CellTask`); `execute` turns one into a sealed record anywhere
the package is installed, loading the method and the model itself. An executor maps tasks
to records and yields each as it finishes; the driver (`benchmark.harness.runner`) writes
them. Adding an executor is one class with `run(tasks)` plus one line in
`benchmark.harness.backends.EXECUTORS` (see docs/ARCHITECTURE.md). Every executor must give records identical to the sequential
one apart from timings: each cell runs in its own supervised processes either way.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from benchmark.errors import one_line
from benchmark.harness.cell import ScoreSettings, fresh_evaluation, run_cell
from benchmark.harness.isolation.launch import Limits


@dataclass(frozen=True)
class CellTask:
    """One (method, model) cell, as data that can cross to another process or machine."""

    method: str  # method folder (absolute path)
    model: str  # registry name or model folder
    params: dict
    settings: ScoreSettings
    limits: Limits
    fresh_seed: int | None = None  # score on a fresh split and plan drawn from this seed


def execute(task: CellTask) -> dict:
    """Run one cell from scratch and return its sealed record (never raises for a method's fault)."""
    from benchmark.harness.submission import load_spec
    from benchmark.zoo.resolve import load_reference

    spec = load_spec(task.method)
    model, provenance = load_reference(task.model)
    evaluation = fresh_evaluation(task.fresh_seed)[0] if task.fresh_seed is not None else None
    return run_cell(spec, model, provenance, settings=task.settings, params=task.params, evaluation=evaluation,
                    isolate=True, limits=task.limits)


class Executor(Protocol):
    """Runs cells; yields (task, record) as each finishes, in any order."""

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, dict]]: ...


class SequentialExecutor:
    """One cell after another in this process (the default)."""

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, dict]]:
        for task in tasks:
            yield task, execute(task)


def _init_worker(threads: int) -> None:
    """In each worker: its torch threads, and death with the driver (a killed `score` must not
    leave workers running cells nobody will record)."""
    import torch

    from benchmark.harness.isolation.supervisor import follow_parent

    torch.set_num_threads(threads)
    follow_parent(os.getppid())


class LocalExecutor:
    """N cells at once on this machine, each driven by its own worker process.

    Each worker gets cores // N torch threads (at least 1), and the cell's fit and scoring
    processes inherit that through OMP_NUM_THREADS, so N cells do not oversubscribe the CPU.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.workers = workers

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, dict]]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state shared with the driver
        with cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                    initargs=(threads,)) as pool:
            futures = {pool.submit(execute, task): task for task in tasks}
            for future in cf.as_completed(futures):
                yield futures[future], _result(future, futures[future])


def _result(future: cf.Future, task: CellTask) -> dict:
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - a worker died (killed, out of memory): record it
        return failed_record(task, f"the cell's worker died: {one_line(err)}")


def failed_record(task: CellTask, reason: str) -> dict:
    """A sealed failed record for a cell whose worker could not produce one."""
    from benchmark.harness.cell import shipped_evaluation
    from benchmark.harness.record_fields import base_record
    from benchmark.harness.submission import load_spec
    from benchmark.harness.tracks import TRACKS
    from benchmark.records import seal
    from benchmark.zoo.resolve import load_reference

    spec = load_spec(task.method)
    model, provenance = load_reference(task.model)
    evaluation = shipped_evaluation(task.settings)
    record = base_record(spec, provenance, model, evaluation.test, evaluation.name, {**spec.params, **task.params},
                         seed=task.settings.seed, budget=task.settings.budget, plan_seed=evaluation.plan_seed)
    record.update(status="failed", error=reason[:500], metrics=dict.fromkeys(TRACKS))
    return seal(record)
