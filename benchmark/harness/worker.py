"""The two processes of a cell: `fit` (has the model) and `score` (never has it).

Started by `benchmark.harness.supervisor`, never by hand:

    python -m benchmark.harness.worker fit JOBDIR    # reads fit_job.pt, writes fitted.pkl + fit.json
    python -m benchmark.harness.worker score JOBDIR  # imports, waits for "go" + the score job on
                                                     # stdin, reads fitted.pkl, writes answers.pt

Each process enters its `benchmark.harness.sandbox` before any method code runs (fit may
write only in JOBDIR; scoring reads only code and the fitted pickle). The scoring process
is started while fit runs, so that importing torch (the bulk of a fresh interpreter's
start-up) overlaps with fit; it receives its job through a pipe, only
once fit is over and the supervisor has deleted the fit job (which holds the model). It writes plain
tensors with `torch.save`; the harness reads them with `weights_only=True`.
"""

from __future__ import annotations

import io
import json
import resource
import sys
from pathlib import Path

import torch

from benchmark.errors import OnionbenchError
from benchmark.harness import protocol, sandbox


def _limit_memory(gb: float) -> None:
    size = int(gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _is_memory_error(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "can't allocate memory" in str(err) or "bad_alloc" in str(err)


def reason(err: BaseException, memory_gb: float) -> str:
    """One line for the record: the error's first line, with its type unless it is ours."""
    if _is_memory_error(err):
        return f"exceeded the memory limit of {memory_gb:g} GB (raise it with --memory)"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (text if isinstance(err, OnionbenchError) else f"{type(err).__name__}: {text}")[:500]


def fit_main(jobdir: Path) -> None:
    """Fit, check and serialise; fit.json says how it went."""
    job = torch.load(jobdir / "fit_job.pt", weights_only=False)  # written by the harness: trusted
    if job["job"].device == "cpu":  # CUDA reserves far more address space than any sensible limit
        _limit_memory(job["memory_gb"])
    info: dict = {"status": "failed", "seconds": 0.0, "sequences_drawn": 0}
    data: list = []
    try:
        sandbox.restrict(sandbox.fit_rules(jobdir), sandbox.WRITE)  # before any method code runs
        result = protocol.fit_method(job["job"], job["model"], data_out=data)
        (jobdir / "fitted.pkl").write_bytes(result.blob)
        info.update(status="ok", seconds=result.seconds, sequences_drawn=result.sequences_drawn,
                    method_parameters=result.method_parameters, tracks=list(result.tracks))
    except BaseException as err:  # noqa: BLE001 - every failure becomes a one-line reason
        info.update(error=reason(err, job["memory_gb"]), sequences_drawn=data[0].drawn if data else 0)
    (jobdir / "fit.json").write_text(json.dumps(info))


def score_main(jobdir: Path) -> None:
    """Wait for the go, then answer every query with the fitted method."""
    if sys.stdin.buffer.readline().strip() != b"go":
        return  # fit failed: nothing to score
    job = torch.load(io.BytesIO(sys.stdin.buffer.read()), weights_only=True)
    memory_gb = float(job["memory_gb"])
    _limit_memory(memory_gb)
    try:
        sandbox.restrict(sandbox.score_rules(jobdir, Path(job["folder"]), sandbox.hidden_from_scoring()),
                         sandbox.READ | sandbox.WRITE)  # before the method's module is imported
        method = protocol.load_fitted(job["folder"],
                                      (jobdir / "fitted.pkl").read_bytes())
        answers = protocol.answer_queries(method, job["public"], seed=int(job["seed"]))
        torch.save({"status": "ok", "answers": answers}, jobdir / "answers.pt")
    except BaseException as err:  # noqa: BLE001
        (jobdir / "score_error.txt").write_text(reason(err, memory_gb))


if __name__ == "__main__":
    {"fit": fit_main, "score": score_main}[sys.argv[1]](Path(sys.argv[2]))
