"""The executor registry: which executors `onionbench score` can run cells with.

Adding an executor is one class (see `benchmark.harness.executors`) plus one line here.
Optional engines (Ray) are imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmark.harness.executors import Executor, LocalExecutor, SequentialExecutor


def _ray_executor(workers: int = 1, address: str | None = None) -> Executor:
    from benchmark.harness.ray_executor import RayExecutor  # Ray is an optional extra: imported on use

    return RayExecutor(address)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "sequential": lambda workers=1, address=None: SequentialExecutor(),
    "local": lambda workers=1, address=None: LocalExecutor(workers),
    "ray": _ray_executor,
}
