"""Run a method's fit and its calls in a child process with a wall-clock and a memory limit.

Why: a leaderboard runs code it did not write. The child (`python -m benchmark.harness.isolation`)
gets only what the protocol gives a method: the frozen model, the fit data stream, and the
`Queries` (states and edit instructions, never the expected outputs). It sends back the
method's outputs; decoding them and comparing with the expected sequences happens in the
parent, so a method can neither read the answers nor alter its score. The parent loads the
child's results with `torch.load(weights_only=True)`: plain tensors and numbers, no pickled
code.

Limits: the memory limit is the child's address-space rlimit (set by the child before the
method is imported); the time limit is enforced by the parent, which kills the child's
whole process group after the deadline. What this does not do: sandbox the file system or
the network (run untrusted submissions in a container), or stop a deliberately hostile
method from reaching the encoder through private attributes (review the code of a PR).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from benchmark.harness.scoring import MethodError, MethodOutputs, Queries

DEFAULT_TIMEOUT_S = 1800  # per (method, model) cell, fit included: 30x the baselines' slowest cell
DEFAULT_MEMORY_GB = 8.0  # address space; importing torch alone takes ~1 GB of it


@dataclass(frozen=True)
class Limits:
    """Per-cell limits for an isolated run."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_gb: float = DEFAULT_MEMORY_GB


@dataclass(frozen=True)
class FitInfo:
    seconds: float
    sequences_drawn: int


def run_isolated(folder: Path, params: dict, model: torch.nn.Module, queries: Queries, *, seed: int, budget: int,
                 limits: Limits = Limits()) -> tuple[MethodOutputs, FitInfo]:
    """Fit and query the method in a child process; raises MethodError with a one-line reason."""
    with tempfile.TemporaryDirectory(prefix="onionbench-cell-") as tmp:
        job, result, log = Path(tmp) / "job.pt", Path(tmp) / "result.pt", Path(tmp) / "child.log"
        torch.save({"folder": str(folder), "params": params, "model": model, "seed": seed, "budget": budget,
                    "queries": asdict(queries), "memory_gb": limits.memory_gb}, job)
        start = time.perf_counter()
        _run_child(job, result, log, limits)
        elapsed = time.perf_counter() - start
        if not result.exists():
            raise MethodError(_crash_reason(log, limits))
        data = torch.load(result, weights_only=True)
    if data.get("status") != "ok":
        raise MethodError(str(data.get("error", "the method's process failed"))[:500])
    tracks = tuple(str(t) for t in data["tracks"].split(",") if t)
    outputs = MethodOutputs(tracks, data.get("read"), data.get("written"), data.get("read_back"), data.get("swapped"))
    return outputs, FitInfo(min(float(data["fit_seconds"]), elapsed), int(data["sequences_drawn"]))


def _run_child(job: Path, result: Path, log: Path, limits: Limits) -> None:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.harness.isolation", str(job), str(result)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise MethodError(f"timed out after {limits.timeout_s:g} s (fit and scoring of one cell; "
                              "raise it with --timeout)") from None
        except BaseException:  # Ctrl-C or a kill of the parent: leave no orphan behind
            _kill(proc)
            raise


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _crash_reason(log: Path, limits: Limits) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "MemoryError" in text or "can't allocate memory" in text or "std::bad_alloc" in text:
        return f"exceeded the memory limit of {limits.memory_gb:g} GB (raise it with --memory)"
    last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return f"the method's process died without a result: {last[0][:300]}"


# ---- the child side -------------------------------------------------------------------

def _limit_memory(gb: float) -> None:
    size = int(gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _is_memory_error(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "can't allocate memory" in str(err) or "bad_alloc" in str(err)


def child_main(job_path: str, result_path: str) -> None:
    """Entry point of the child: fit, lock the encoder, answer the queries, save outputs."""
    from benchmark.data import heldout_keys
    from benchmark.harness.interface import FitData, FrozenModel, seed_everything
    from benchmark.harness.scoring import collect_outputs
    from benchmark.harness.submission import load_spec

    job = torch.load(job_path, weights_only=False)  # written by the parent: trusted
    _limit_memory(job["memory_gb"])
    info = {"fit_seconds": 0.0, "sequences_drawn": 0}
    data = None
    try:
        method = load_spec(job["folder"]).instantiate(job["params"])
        data = FitData(job["model"], heldout_keys(), seed=job["seed"], budget=job["budget"])
        frozen = FrozenModel(job["model"], data)
        seed_everything(job["seed"])
        start = time.perf_counter()
        fitted = method.fit(frozen, data)
        info.update(fit_seconds=time.perf_counter() - start, sequences_drawn=data.drawn)
        if fitted is not method:
            raise MethodError("fit must return self (scikit-learn convention)")
        frozen.lock()
        seed_everything(job["seed"])
        out = collect_outputs(method, Queries(**job["queries"]))
        payload = {name: getattr(out, name) for name in ("read", "written", "read_back", "swapped")
                   if getattr(out, name) is not None}
        torch.save({"status": "ok", "tracks": ",".join(out.tracks), **info, **payload}, result_path)
    except BaseException as err:  # noqa: BLE001 - every failure becomes a one-line reason
        if data is not None and not info["sequences_drawn"]:
            info["sequences_drawn"] = data.drawn
        torch.save({"status": "failed", "error": _reason(err, job["memory_gb"]), **info}, result_path)


def _reason(err: BaseException, memory_gb: float) -> str:
    from benchmark.errors import OnionbenchError

    if _is_memory_error(err):
        return f"exceeded the memory limit of {memory_gb:g} GB (raise it with --memory)"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (text if isinstance(err, OnionbenchError) else f"{type(err).__name__}: {text}")[:500]


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])
