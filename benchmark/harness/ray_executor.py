"""Cells as Ray tasks: the same command on a laptop, a cloud cluster or a SLURM allocation.

Each cell is one Ray task running `benchmark.harness.executors.execute`, so the cell's own
isolation (its supervisor, fit and scoring processes) runs inside the task, on whichever
node Ray places it. A task declares its resources (CPUs, memory, a GPU if asked). A task
whose worker process dies (killed, out of memory, node lost) is retried once by Ray; if
it dies again the cell is recorded as failed with the reason, never lost and never
written twice: the driver (`benchmark.harness.runner`) writes each record atomically as it
arrives, so an interrupted run resumes.

Ray is an optional extra: `pip install 'onionbench[ray]'`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from benchmark.errors import OnionbenchError, first_line
from benchmark.harness.executors import CellTask, execute, failed_record

RETRIES = 1  # a cell whose worker dies is run once more, then recorded as failed
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class RayResources:
    """What one cell asks of the cluster."""

    cpus: float = 1.0
    memory_gb: float = 4.0  # Ray's scheduling hint; the cell's own limit is --memory
    gpus: float = 0.0


def _ray():
    try:
        import ray
    except ImportError as err:
        raise OnionbenchError("--ray needs Ray, an optional extra: pip install 'onionbench[ray]'") from err
    return ray


def connect(address: str | None) -> None:
    """Join a cluster (`auto` or `host:port`), or start a local instance bound to 127.0.0.1."""
    ray = _ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)


def _run_cell(task: CellTask) -> dict:
    """The Ray task: one whole cell (its supervisor and two processes run here)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return execute(task)


class RayExecutor:
    """Every cell a Ray task; yields records as tasks finish."""

    def __init__(self, address: str | None = None, resources: RayResources = RayResources()) -> None:
        self.address = address
        self.resources = resources

    def run(self, tasks: list[CellTask]) -> Iterator[tuple[CellTask, dict]]:
        on_gpu = any(t.settings.device != "cpu" for t in tasks)  # `--device cuda`: each cell asks for one GPU
        resources = replace(self.resources, gpus=max(self.resources.gpus, 1.0)) if on_gpu else self.resources
        for task, record, error in map_tasks(_run_cell, tasks, resources, self.address):
            yield task, record if record is not None else _died(task, error)


def _died(task: CellTask, error: Exception | None) -> dict:
    """The failed record of a cell whose worker died twice, or whose node was lost."""
    reason = first_line(error, type(error).__name__) if error is not None else "no error was reported"
    return failed_record(task, f"the cell's Ray worker died (retried {RETRIES}x): {reason}")


def map_tasks(fn: Callable[[T], R], items: list[T], resources: RayResources,
              address: str | None = None) -> Iterator[tuple[T, R | None, Exception | None]]:
    """Run ``fn(item)`` as one Ray task per item; yield ``(item, result, None)`` or
    ``(item, None, error)`` as tasks finish.

    The one place that talks to Ray: cells (`RayExecutor`) and training one ensemble per
    hidden size (`onionbench models train --ray`) both go through it, with the same retry
    rule: a task whose worker dies runs once more, then comes back as its error instead of
    taking the other tasks down. `fn` must be importable by the workers (a module-level
    function of the installed package).
    """
    ray = _ray()
    connect(address)
    remote = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus,
                        memory=int(resources.memory_gb * 1024**3), max_retries=RETRIES)(fn)
    pending = {remote.remote(item): item for item in items}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except ray.exceptions.RayError as err:  # the task raised, or its worker died twice
            yield item, None, err
        else:
            yield item, result, None
