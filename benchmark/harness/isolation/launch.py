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
- the supervisor (`benchmark.harness.isolation.supervisor`) starts both, keeps the queries away from
  the fit process, scans the fitted bytes for the model's weights and module (a check the
  method's code cannot disable, see `benchmark.harness.isolation.blobscan`), enforces the wall-clock
  limit and reaps every process the method started, even in a new session;
- the harness process decodes the answers with the model and compares them with the
  expected outputs, so a method can neither read the answers nor alter its score. It loads
  the answers with `torch.load(weights_only=True)`: tensors only, never pickled code.

Limits: memory is each worker's address-space rlimit (set before the method is imported);
time is enforced by the supervisor, with the harness as a backstop.

Both workers enter a Landlock sandbox before any method code runs
(`benchmark.harness.isolation.sandbox`): fit may write only in the job folder, scoring may read only
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
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from benchmark.harness.defaults import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT_S
from benchmark.harness.guard import fingerprints
from benchmark.harness.isolation import bwrap, channel
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
    sandbox: str | None = None  # what the workers attested (`benchmark.harness.isolation.attest`)
    description_length: dict | None = None  # lzma bytes of what scoring receives, against the model's bytes
    kind: str = "open"  # "declared" when fit returned a Declaration (`benchmark.harness.declared`)
    declaration: dict | None = None  # declared: {"forms", "parameters", "bytes"}
    blob: bytes | None = field(default=None, repr=False)  # the scanned fitted bytes, when asked for (export)


def run_isolated(job: FitJob, model: torch.nn.Module, public: dict[str, Tensors], *, seed: int,
                 limits: Limits = Limits(), keep_blob: bool = False) -> tuple[dict[str, Tensors], FitInfo]:
    """Fit in one sealed process, answer the queries in another; raises MethodError with a one-line reason.
    keep_blob: return the fitted bytes the supervisor scanned and sent to scoring (FitInfo.blob)."""
    with tempfile.TemporaryDirectory(prefix="onionbench-cell-") as tmp:
        jobdir = Path(tmp)
        timed_out = _supervise(jobdir, _frames(job, model, public, seed, limits, keep_blob), limits)
        try:
            fit = _fit_info(jobdir, limits, timed_out)
            if keep_blob and (jobdir / "fitted.bin").exists():
                fit = replace(fit, blob=(jobdir / "fitted.bin").read_bytes())
            return _answers(jobdir, limits, timed_out, public), fit
        except MethodError as err:  # a failed record says what sandbox it failed in, too, and keeps the traceback
            err.sandbox = sandbox_summary(_supervisor_report(jobdir).get("sandbox"))  # type: ignore[attr-defined]
            err.detail = _traceback_in(jobdir)  # type: ignore[attr-defined]
            raise


def model_bytes(model: torch.nn.Module) -> int:
    """The model's weight bytes: what a method's size is measured against."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _frames(job: FitJob, model: torch.nn.Module, public: dict[str, Tensors], seed: int, limits: Limits,
            keep_blob: bool = False) -> bytes:
    """What the supervisor receives on stdin (see its docstring), as channel frames."""
    fit_job = io.BytesIO()
    torch.save({"job": job, "model": model, "memory_gb": limits.memory_gb}, fit_job)
    root = bwrap.module_root(type(model).__module__)  # a custom model's module must import in the fit process
    meta = {"folder": job.folder, "gpu": job.device != "cpu", "fit_paths": [str(root)] if root else [],
            "model_bytes": model_bytes(model), "keep_blob": keep_blob}
    head = {"folder": job.folder, "seed": seed, "memory_gb": limits.memory_gb,
            "state_dim": int(model.state_dim)}  # type: ignore[arg-type]
    frames = [channel.encode(b"META", json.dumps(meta).encode()), channel.encode(b"PRNT", fingerprints(model).dumps()),
              channel.encode(b"JOB ", fit_job.getvalue()), channel.encode(b"HEAD", json.dumps(head).encode())]
    for name, rows in public.items():  # scoring receives them one track at a time
        buffer = io.BytesIO()
        torch.save(rows, buffer)
        frames.append(channel.encode(b"TRAK", name.encode() + b"\n" + buffer.getvalue()))
    return b"".join(frames)


def _supervise(jobdir: Path, frames: bytes, limits: Limits) -> bool:
    """Run the supervisor; True when the cell timed out."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.harness.isolation.supervisor", str(jobdir),
                             str(limits.timeout_s), str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=open(jobdir / "supervisor.log", "wb"), start_new_session=True)
    try:
        proc.communicate(frames, timeout=limits.timeout_s + BACKSTOP_S)
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
                   sandbox=sandbox_summary(report.get("sandbox")), description_length=report.get("description_length"),
                   kind=str(info.get("kind", "open")), declaration=info.get("declaration"))


def sandbox_summary(attested: dict | None) -> str | None:
    """One string for the record: the workers' attestations (one when both say the same)."""
    if not attested:
        return None
    texts = {kind: attested[kind] for kind in ("fit", "score") if attested.get(kind)}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return " | ".join(f"{kind}: {text}" for kind, text in texts.items())


def _answers(jobdir: Path, limits: Limits, timed_out: bool, public: dict[str, Tensors]) -> dict[str, Tensors]:
    """Every answered track's tensors, as the supervisor stored them from the scorer's pipe."""
    if (jobdir / "score_error.txt").exists():
        raise MethodError((jobdir / "score_error.txt").read_text(errors="replace")[:500])
    if timed_out:
        raise MethodError(f"timed out after {limits.timeout_s:g} s while scored (raise it with --timeout)")
    if not _supervisor_report(jobdir).get("scored"):
        raise MethodError(_crash_reason(jobdir / "score.log", limits, "scoring"))
    answers = {}
    for name in public:
        path = jobdir / f"answers-{name}.pt"
        if path.exists():
            data = torch.load(path, weights_only=True)
            if not isinstance(data, dict):
                raise MethodError("the scoring process wrote malformed answers")
            answers[name] = data
    return answers


DETAIL_CHARS = 4000  # how much of a failing worker's traceback a record keeps


def _traceback_in(jobdir: Path) -> str | None:
    """The last traceback a worker printed to its log (workers print one for every failure), truncated."""
    for name in ("score.log", "fit.log"):
        text = (jobdir / name).read_text(errors="replace") if (jobdir / name).exists() else ""
        at = text.rfind("Traceback (most recent call last)")
        if at >= 0:
            tail = text[at:]
            return tail if len(tail) <= DETAIL_CHARS else "...\n" + tail[-DETAIL_CHARS:]
    return None


def _crash_reason(log: Path, limits: Limits, phase: str) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "MemoryError" in text or "can't allocate memory" in text or "std::bad_alloc" in text:
        return f"exceeded the memory limit of {limits.memory_gb:g} GB (raise it with --memory)"
    last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return f"the method's {phase} process died without a result: {last[0][:300]}"


def run_sealed_check(folder: str, timeout_s: float = 900) -> tuple[str, list[dict]]:
    """The conformance suite on `folder` in a worker sealed like fit (`worker check`).

    Returns (attestation, results as dicts of `conformance.CheckResult`); raises MethodError
    with a one-line reason if the worker failed, timed out or said something else.
    """
    from benchmark.harness.isolation.attest import host_identity

    sealed = bwrap.unavailable() is None
    argv = bwrap.worker_argv("check")
    with tempfile.TemporaryDirectory(prefix="onionbench-check-") as tmp:
        env = None
        if sealed:
            argv = bwrap.command(argv, readable=[Path(folder)])
        else:
            env = {**os.environ, "TMPDIR": tmp}
        frames = channel.encode(b"HOST", json.dumps(host_identity(sealed)).encode()) + channel.encode(b"FOLD", folder.encode())
        log = Path(tmp) / "check.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                    start_new_session=True, env=env)
            try:
                out, _ = proc.communicate(frames, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise MethodError(f"the checks timed out after {timeout_s:g} s") from None
            finally:
                _killpg(proc.pid)
        try:
            got = {kind: payload for kind, payload in channel.split(out)}
        except channel.ChannelError as bad:
            raise MethodError(f"the check process wrote a malformed result ({bad})") from None
        if b"FAIL" in got:
            raise MethodError(got[b"FAIL"].decode(errors="replace"))
        if b"RSLT" not in got or b"ATST" not in got:
            raise MethodError(_crash_reason(log, Limits(), "check"))
        return got[b"ATST"].decode(errors="replace"), json.loads(got[b"RSLT"])


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
