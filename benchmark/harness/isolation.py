"""Run one cell's method code in two fresh processes under a supervisor, with limits.

Why: a leaderboard runs code it did not write, and a score must come from a hypothesis,
not from the reference model (PROTOCOL §3). So:

- the *fit* process gets the frozen model and the fit data, fits, and hands back only the
  serialised method, after `benchmark.harness.guard` checked that it holds neither the
  model nor a copy of its weights;
- the *scoring* process is a fresh interpreter that never receives the model, the fit
  data, the split or the plan: it loads the fitted method and answers the public queries,
  whose rows the cell has shuffled. Anything the method stashed in module globals during
  fit is gone;
- the supervisor (`benchmark.harness.supervisor`) starts both, keeps the queries away from
  the fit process, scans the fitted bytes for the model's weights and module (a check the
  method's code cannot disable, see `benchmark.harness.blobscan`), enforces the wall-clock
  limit and reaps every process the method started, even in a new session;
- the harness process decodes the answers with the model and compares them with the
  expected outputs, so a method can neither read the answers nor alter its score. It loads
  the answers with `torch.load(weights_only=True)`: tensors only, never pickled code.

Limits: memory is each worker's address-space rlimit (set before the method is imported);
time is enforced by the supervisor, with the harness as a backstop.

Both workers enter a Landlock sandbox before any method code runs
(`benchmark.harness.sandbox`): fit may write only in the job folder, scoring may read only
code and the fitted pickle (never the zoo, the splits, /tmp or the home folder), and
neither may use TCP. Where the kernel has no Landlock the cell runs unsandboxed and its
record says `environment.sandbox = none`; run untrusted submissions in a container there.
Review still covers what a method folder ships (submissions/README.md, "Accepting a
submission").
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.harness.defaults import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT_S
from benchmark.harness.guard import fingerprints
from benchmark.harness.protocol import FitJob
from benchmark.harness.tracks import MethodError
from benchmark.harness.tracks.base import Tensors

BACKSTOP_S = 30  # the supervisor enforces the limit; the harness kills it only if it hangs too


@dataclass(frozen=True)
class Limits:
    """Per-cell limits for an isolated run."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_gb: float = DEFAULT_MEMORY_GB


@dataclass(frozen=True)
class FitInfo:
    """What the fit side reports back (never the method itself)."""

    seconds: float
    sequences_drawn: int
    method_parameters: int = 0
    wall_seconds: float | None = None  # the fit process's wall time, start-up included (supervisor's clock)
    serialised_bytes: int | None = None  # size of the pickled fitted method
    sandbox: str | None = None  # the supervisor's word: "landlock N" or "none" (`benchmark.harness.sandbox`)


def run_isolated(job: FitJob, model: torch.nn.Module, public: dict[str, Tensors], *, seed: int,
                 limits: Limits = Limits()) -> tuple[dict[str, Tensors], FitInfo]:
    """Fit in one process, answer the queries in another; raises MethodError with a one-line reason."""
    with tempfile.TemporaryDirectory(prefix="onionbench-cell-") as tmp:
        jobdir = Path(tmp)
        torch.save({"job": job, "model": model, "memory_gb": limits.memory_gb}, jobdir / "fit_job.pt")
        score_job = io.BytesIO()
        torch.save({"folder": job.folder, "public": public, "seed": seed, "memory_gb": limits.memory_gb}, score_job)
        prints = fingerprints(model).dumps()
        timed_out = _supervise(jobdir, len(prints).to_bytes(8, "big") + prints + score_job.getvalue(), limits)
        fit = _fit_info(jobdir, limits, timed_out)
        return _answers(jobdir, limits, timed_out), fit


def _supervise(jobdir: Path, score_job: bytes, limits: Limits) -> bool:
    """Run the supervisor; True when the cell timed out."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.harness.supervisor", str(jobdir),
                             str(limits.timeout_s), str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=open(jobdir / "supervisor.log", "wb"), start_new_session=True)
    try:
        proc.communicate(score_job, timeout=limits.timeout_s + BACKSTOP_S)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return True
    except BaseException:  # Ctrl-C or a kill of the harness: the supervisor reaps the cell
        _stop(proc)
        raise
    return proc.returncode == 3


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the supervisor then kills the cell's processes), SIGKILL if it does not exit."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _supervisor_report(jobdir: Path) -> dict:
    path = jobdir / "supervisor.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _fit_info(jobdir: Path, limits: Limits, timed_out: bool) -> FitInfo:
    report = _supervisor_report(jobdir)
    if report.get("refused"):
        raise MethodError(str(report["refused"]))
    path = jobdir / "fit.json"
    if not path.exists():
        if timed_out:
            raise MethodError(f"timed out after {limits.timeout_s:g} s during fit (raise it with --timeout)")
        raise MethodError(_crash_reason(jobdir / "fit.log", limits, "fit"))
    info = json.loads(path.read_text())
    if info["status"] != "ok":
        raise MethodError(str(info.get("error", "fit failed"))[:500])
    # `seconds` is measured inside the fit process (the method's own); `wall_seconds` by the supervisor,
    # start-up included, which the method cannot alter.
    return FitInfo(float(info["seconds"]), int(info["sequences_drawn"]), int(info["method_parameters"]),
                   wall_seconds=report.get("fit_wall_s"), serialised_bytes=report.get("fitted_bytes"),
                   sandbox=report.get("sandbox"))


def _answers(jobdir: Path, limits: Limits, timed_out: bool) -> dict[str, Tensors]:
    if (jobdir / "score_error.txt").exists():
        raise MethodError((jobdir / "score_error.txt").read_text()[:500])
    if not (jobdir / "answers.pt").exists():
        if timed_out:
            raise MethodError(f"timed out after {limits.timeout_s:g} s while scored (raise it with --timeout)")
        raise MethodError(_crash_reason(jobdir / "score.log", limits, "scoring"))
    data = torch.load(jobdir / "answers.pt", weights_only=True)
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        raise MethodError("the scoring process wrote malformed answers")
    return data["answers"]


def _crash_reason(log: Path, limits: Limits, phase: str) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "MemoryError" in text or "can't allocate memory" in text or "std::bad_alloc" in text:
        return f"exceeded the memory limit of {limits.memory_gb:g} GB (raise it with --memory)"
    last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return f"the method's {phase} process died without a result: {last[0][:300]}"
