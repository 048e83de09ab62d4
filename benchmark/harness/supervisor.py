"""The supervisor of one cell: runs the fit process, then the scoring process, and reaps
every process either of them started (no torch import: it starts in milliseconds).

    python -m benchmark.harness.supervisor JOBDIR TIMEOUT_S PARENT_PID   < score job bytes

Why a supervisor: a method may start processes of its own, even in a new session, where a
process-group kill does not reach them. The supervisor marks itself a *child subreaper*
(Linux `PR_SET_CHILD_SUBREAPER`), so every orphan of the cell is re-parented to it, and it
kills all its descendants twice: after fit (so nothing started during fit, which saw the
model, is alive while the method is scored) and at the end. It also enforces the cell's
wall-clock limit, deletes the fit job (which holds the model) before scoring starts, and
scans the fitted method's bytes for the model's weights and module (`blobscan`): a check
the method's own code cannot switch off, since none of it runs here.

The score job (the queries) reaches the supervisor on its stdin and the scoring process
through a pipe, only after fit has ended: it is never a file the fit process could read,
so a method cannot look at the queries while it still has the model.

Exit codes: 0 finished (see the workers' files for success), 3 timed out.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmark.harness.blobscan import Fingerprints, scan_blob
from benchmark.harness.sandbox import abi_version

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
TIMEOUT_EXIT = 3


def _prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Ask Linux to re-parent our orphaned descendants to us (False where unsupported)."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def follow_parent(parent: int) -> None:
    """SIGTERM us when the harness process dies (a killed Ray worker, say): the cell then stops
    and reaps itself instead of running on unobserved."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    """Every live descendant of `root` (from /proc)."""
    tree, out, todo = _children_map(), [], [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_descendants(keep: frozenset[int] = frozenset()) -> None:
    """SIGKILL every descendant except `keep` (and theirs), until none is left; reap them."""
    for _ in range(50):  # a process may fork while we kill: rescan until the tree is empty
        keep_tree = set(keep) | {d for k in keep for d in descendants(k)}
        victims = [pid for pid in descendants(os.getpid()) if pid not in keep_tree]
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(keep)
        time.sleep(0.01)
    _reap(keep)


def _reap(keep: frozenset[int]) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _worker(kind: str, jobdir: Path, **kwargs) -> subprocess.Popen:
    log = open(jobdir / f"{kind}.log", "wb")  # noqa: SIM115 - closed when the process ends
    env = {**os.environ, "TMPDIR": str(jobdir)}  # the one folder the sandboxed fit may write in
    return subprocess.Popen([sys.executable, "-m", "benchmark.harness.worker", kind, str(jobdir)], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env, **kwargs)


def _wait(proc: subprocess.Popen, deadline: float) -> bool:
    """Wait for `proc` until the deadline; False on timeout."""
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        return True
    except subprocess.TimeoutExpired:
        return False


def supervise(jobdir: Path, timeout_s: float, fingerprints: Fingerprints, score_job: bytes) -> int:
    """Fit, scan, then score; returns the exit code (see the module docstring)."""
    become_subreaper()
    report: dict = {"fit_wall_s": None, "fitted_bytes": None, "refused": None,
                    "sandbox": f"landlock {abi}" if (abi := abi_version()) else "none"}
    deadline = time.monotonic() + timeout_s
    scorer = _worker("score", jobdir, stdin=subprocess.PIPE)  # starts importing while fit runs
    start = time.monotonic()
    fitter = _worker("fit", jobdir)
    finished = _wait(fitter, deadline)
    report["fit_wall_s"] = round(time.monotonic() - start, 3)
    if not finished:
        _write_report(jobdir, report)
        return TIMEOUT_EXIT
    (jobdir / "fit_job.pt").unlink(missing_ok=True)  # the model never sits beside the scoring process
    kill_descendants(keep=frozenset({scorer.pid}))  # nothing that saw the model outlives fit
    for forged in ("answers.pt", "score_error.txt"):  # only the scoring process may write these
        (jobdir / forged).unlink(missing_ok=True)
    go = _scan(jobdir, fingerprints, report)
    _write_report(jobdir, report)
    try:
        assert scorer.stdin is not None
        scorer.stdin.write(b"go\n" + score_job if go else b"stop\n")
        scorer.stdin.close()
    except BrokenPipeError:
        pass  # the scoring process already died; its log says why
    finished = _wait(scorer, deadline)
    _write_report(jobdir, report)  # again: the scoring process may write in the job folder
    return 0 if finished else TIMEOUT_EXIT


def _scan(jobdir: Path, fingerprints: Fingerprints, report: dict) -> bool:
    """The trusted check of the fitted bytes (`blobscan`); True when scoring may start."""
    fitted = jobdir / "fitted.pkl"
    if not fitted.is_file() or fitted.is_symlink():
        return False
    blob = fitted.read_bytes()
    report["fitted_bytes"] = len(blob)
    report["refused"] = scan_blob(blob, fingerprints)
    return report["refused"] is None


def _write_report(jobdir: Path, report: dict) -> None:
    """supervisor.json, replacing anything the method's processes left under that name."""
    tmp = jobdir / f".supervisor-{os.getpid()}.json"
    tmp.write_text(json.dumps(report))
    os.replace(tmp, jobdir / "supervisor.json")


def _read_stdin() -> tuple[Fingerprints, bytes]:
    """The harness writes: 8-byte length, the fingerprints, then the score job."""
    data = sys.stdin.buffer.read()
    size = int.from_bytes(data[:8], "big")
    return Fingerprints.loads(data[8 : 8 + size]), data[8 + size :]


def main() -> int:
    """Entry point: always reap the cell's processes, also on SIGTERM from the harness."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(TIMEOUT_EXIT))
    follow_parent(int(sys.argv[3]))
    code = TIMEOUT_EXIT
    try:
        fingerprints, score_job = _read_stdin()  # before fit starts: the harness writes it, then closes
        code = supervise(Path(sys.argv[1]), float(sys.argv[2]), fingerprints, score_job)
    finally:
        kill_descendants()
    return code


if __name__ == "__main__":
    sys.exit(main())
