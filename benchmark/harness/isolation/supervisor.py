"""The supervisor of one cell: runs the fit process, then the scoring process, each sealed in
its own namespaces, relays bytes between them, and reaps every process either started (no
torch import: it starts in milliseconds).

    python -m benchmark.harness.isolation.supervisor JOBDIR TIMEOUT_S PARENT_PID   < frames from the harness

The harness writes, as frames (`benchmark.harness.isolation.channel`): META (method folder, device,
import roots for a custom model), PRNT (the model's fingerprints), JOB (fit job with the
model), HEAD (scoring header) and one TRAK per track. The supervisor writes to JOBDIR, which
no worker can reach: fit.json (the fit report), answers-<track>.pt, score_error.txt,
supervisor.json (what it measured itself) and the workers' logs.

Why a supervisor:
- **Sealed workers.** Each worker runs under bubblewrap (`benchmark.harness.isolation.bwrap`) with
  Landlock inside (`benchmark.harness.isolation.sandbox`) and proves it (`benchmark.harness.isolation.attest`)
  before method code runs; the supervisor records the proofs, never a kernel version.
- **Bytes through pipes.** The fitted method reaches the supervisor on fit's stdout, is
  scanned here for the model's weights and module (`blobscan`, a check no method code can
  switch off), and those same bytes go to the scoring process on its stdin. No file lies
  between the scan and the load.
- **Nothing outlives fit.** fit's PID namespace dies with it; the supervisor is also a
  child subreaper and fails the cell if any process of fit's is still alive after that.
- **One track at a time.** The scorer gets a track's queries only after answering the
  previous track's.
- Wall-clock limit for the whole cell.

Exit codes: 0 finished (see the files for success), 3 timed out.
"""

from __future__ import annotations

import ctypes
import json
import lzma
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from benchmark.harness.isolation import bwrap, channel, sandbox
from benchmark.harness.isolation.attest import host_identity
from benchmark.harness.isolation.blobscan import Fingerprints, scan_blob

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
TIMEOUT_EXIT = 3
OUTLIVED = "a process outlived fit (fit's processes must end when fit returns)"


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
    """ppid -> pids, from /proc read as bytes (a process may give itself any name, UTF-8 or not)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
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


def _outside(keep: frozenset[int]) -> list[int]:
    keep_tree = set(keep) | {d for k in keep for d in descendants(k)}
    return [pid for pid in descendants(os.getpid()) if pid not in keep_tree and not _is_zombie(pid)]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def kill_descendants(keep: frozenset[int] = frozenset()) -> None:
    """SIGKILL every descendant except `keep` (and theirs), until none is left; reap them."""
    for _ in range(50):  # a process may fork while we kill: rescan until the tree is empty
        victims = _outside(keep)
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()
        time.sleep(0.01)
    _reap()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class _Reader(threading.Thread):
    """Drains a worker's stdout into frames on a queue (a full pipe must never block the worker)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(daemon=True)
        self.stream, self.frames = stream, queue.Queue()  # type: ignore[var-annotated]

    def run(self) -> None:
        try:
            while (frame := channel.recv(self.stream)) is not None:
                self.frames.put(frame)
        except (channel.ChannelError, OSError, ValueError) as err:
            self.frames.put((b"BAD!", str(err).encode()))
        self.frames.put(None)

    def next(self, deadline: float) -> tuple[bytes, bytes] | None:
        """The next frame; None at end of stream; raises TimeoutError past the deadline."""
        try:
            return self.frames.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise TimeoutError from None

    def rest(self) -> list[tuple[bytes, bytes]]:
        """Every frame still queued (after the writer has exited)."""
        self.join(timeout=5)
        out = []
        while not self.frames.empty():
            frame = self.frames.get()
            if frame is not None:
                out.append(frame)
        return out


class Cell:
    """One cell's two workers and what the supervisor measured about them."""

    def __init__(self, jobdir: Path, meta: dict, timeout_s: float) -> None:
        self.jobdir, self.meta = jobdir, meta
        self.deadline = time.monotonic() + timeout_s
        why = bwrap.unavailable()
        self.sealed = why is None
        self.host = host_identity(self.sealed)
        self.report: dict = {"fit_wall_s": None, "fitted_bytes": None, "refused": None, "sandbox": None,
                             "bwrap": "ok" if why is None else why}

    def start(self, kind: str) -> subprocess.Popen:
        folder = Path(self.meta["folder"])
        argv = bwrap.worker_argv(kind)
        env = None
        if self.sealed:
            readable = [folder] + ([Path(p) for p in self.meta["fit_paths"]] if kind == "fit" else [])
            hide = sandbox.hidden_from_scoring() if kind == "score" else []
            argv = bwrap.command(argv, readable=readable, hide=hide, gpu=kind == "fit" and self.meta["gpu"])
        else:  # Landlock alone: a private folder for TMPDIR
            tmp = self.jobdir / f"tmp-{kind}"
            tmp.mkdir(exist_ok=True)
            env = {**os.environ, "TMPDIR": str(tmp)}
        log = open(self.jobdir / f"{kind}.log", "wb")  # noqa: SIM115 - closed when the process ends
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, env=env)

    def wait(self, proc: subprocess.Popen) -> bool:
        try:
            proc.wait(timeout=max(self.deadline - time.monotonic(), 0.01))
            return True
        except subprocess.TimeoutExpired:
            return False


def _feed(proc: subprocess.Popen, frames: list[tuple[bytes, bytes]], close: bool) -> None:
    try:
        assert proc.stdin is not None
        for kind, payload in frames:
            channel.send(proc.stdin, kind, payload)  # type: ignore[arg-type]
        if close:
            proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # the worker died; its log says why


def supervise(jobdir: Path, timeout_s: float, harness: dict[bytes, list[bytes]]) -> int:
    """Fit, scan, then score one track at a time; returns the exit code (module docstring)."""
    become_subreaper()
    meta = json.loads(harness[b"META"][0])
    cell = Cell(jobdir, meta, timeout_s)
    host = json.dumps(cell.host).encode()
    scorer = cell.start("score")  # starts importing while fit runs
    _feed(scorer, [(b"HOST", host), (b"HEAD", harness[b"HEAD"][0])], close=False)
    scored = _Reader(scorer.stdout)  # type: ignore[arg-type]
    scored.start()
    start = time.monotonic()
    fitter = cell.start("fit")
    fitted = _Reader(fitter.stdout)  # type: ignore[arg-type]
    fitted.start()
    _feed(fitter, [(b"HOST", host), (b"PATH", json.dumps(meta["fit_paths"]).encode()), (b"JOB ", harness[b"JOB "][0])],
          close=True)
    finished = cell.wait(fitter)
    cell.report["fit_wall_s"] = round(time.monotonic() - start, 3)
    if not finished:
        _write_report(jobdir, cell.report)
        return TIMEOUT_EXIT
    blob = _after_fit(cell, fitted, scorer.pid, Fingerprints.loads(harness[b"PRNT"][0]))
    _write_report(jobdir, cell.report)
    if blob is not None and meta.get("keep_blob"):  # `onionbench export`: the scanned bytes, exactly as scored
        (jobdir / "fitted.bin").write_bytes(blob)
    if blob is None:
        _feed(scorer, [(b"STOP", b"")], close=True)
        cell.wait(scorer)
        return 0
    code = _score(cell, scorer, scored, blob, harness[b"TRAK"])
    _write_report(jobdir, cell.report)
    return code


def _after_fit(cell: Cell, fitted: _Reader, scorer: int, prints: Fingerprints) -> bytes | None:
    """Check that fit left nothing running and said exactly its part; scan the bytes. The blob, or None."""
    deadline = time.monotonic() + 1.0
    while (alive := _outside(frozenset({scorer}))) and time.monotonic() < deadline:
        time.sleep(0.02)
        _reap()
    if alive:
        kill_descendants(keep=frozenset({scorer}))
        return _refuse(cell, OUTLIVED)
    frames = fitted.rest()
    kinds = [k for k, _ in frames]
    if kinds[:1] == [b"ATST"]:
        cell.report["sandbox"] = {"fit": frames[0][1].decode(errors="replace")}
    if kinds == [b"ATST", b"FAIL"] or kinds == [b"FAIL"]:
        (cell.jobdir / "fit.json").write_bytes(json.dumps({"status": "failed", **json.loads(frames[-1][1])}).encode())
        return None
    if kinds == []:
        return None  # died without a word: the harness reads fit.log
    if kinds != [b"ATST", b"DONE", b"BLOB"]:
        return _refuse(cell, f"fit wrote to its result channel out of turn ({b','.join(kinds).decode(errors='replace')})")
    info, blob = json.loads(frames[1][1]), frames[2][1]
    cell.report["fitted_bytes"] = len(blob)
    cell.report["description_length"] = description_length(blob, Path(cell.meta["folder"]), cell.meta["model_bytes"])
    (cell.jobdir / "fit.json").write_bytes(json.dumps(info).encode())
    refused = scan_blob(blob, prints)
    return blob if refused is None else _refuse(cell, refused)


def _refuse(cell: Cell, why: str) -> bytes | None:
    """Record why scoring may not start; None (no bytes go to scoring)."""
    cell.report["refused"] = why
    return None


def description_length(blob: bytes, folder: Path | None, model_bytes: int) -> dict:
    """lzma bytes of what scoring receives (the fitted bytes and the method folder, if any), against the model's."""
    files = b"" if folder is None else b"".join(
        p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)
    size = len(lzma.compress(blob + files, preset=6))
    return {"bytes": size, "model_bytes": model_bytes, "ratio": round(size / model_bytes, 4) if model_bytes else None}


def _score(cell: Cell, scorer: subprocess.Popen, scored: _Reader, blob: bytes, tracks: list[bytes]) -> int:
    """Send the scanned bytes, then each track's rows after the previous track's answers."""
    try:
        first = scored.next(cell.deadline)
        if first is None or first[0] != b"ATST":
            _score_error(cell, first)
            _feed(scorer, [(b"STOP", b"")], close=True)
            return 0 if cell.wait(scorer) else TIMEOUT_EXIT
        cell.report["sandbox"] = {**(cell.report["sandbox"] or {}), "score": first[1].decode(errors="replace")}
        _feed(scorer, [(b"BLOB", blob)], close=False)
        for track in tracks:
            _feed(scorer, [(b"TRAK", track)], close=False)
            frame = scored.next(cell.deadline)
            name = track.partition(b"\n")[0].decode()
            if frame is not None and frame[0] == b"ANSW":
                (cell.jobdir / f"answers-{name}.pt").write_bytes(frame[1])
            elif frame is None or frame[0] != b"SKIP":
                _score_error(cell, frame)
                break
        else:
            cell.report["scored"] = True
        _feed(scorer, [(b"END ", b"")], close=True)
    except TimeoutError:
        return TIMEOUT_EXIT
    return 0 if cell.wait(scorer) else TIMEOUT_EXIT


def _score_error(cell: Cell, frame: tuple[bytes, bytes] | None) -> None:
    if frame is not None and frame[0] in (b"FAIL", b"BAD!"):
        (cell.jobdir / "score_error.txt").write_bytes(frame[1][:500])


def _write_report(jobdir: Path, report: dict) -> None:
    """supervisor.json, atomically (no worker can reach the job folder)."""
    tmp = jobdir / f".supervisor-{os.getpid()}.json"
    tmp.write_text(json.dumps(report))
    os.replace(tmp, jobdir / "supervisor.json")


def _read_stdin() -> dict[bytes, list[bytes]]:
    """Every frame the harness wrote, by kind (TRAK may repeat)."""
    out: dict[bytes, list[bytes]] = {}
    for kind, payload in channel.split(sys.stdin.buffer.read()):
        out.setdefault(kind, []).append(payload)
    out.setdefault(b"TRAK", [])
    return out


def main() -> int:
    """Entry point: always reap the cell's processes, also on SIGTERM from the harness."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(TIMEOUT_EXIT))
    follow_parent(int(sys.argv[3]))
    code = TIMEOUT_EXIT
    try:
        harness = _read_stdin()  # before fit starts: the harness writes it, then closes
        code = supervise(Path(sys.argv[1]), float(sys.argv[2]), harness)
    finally:
        kill_descendants()
    return code


if __name__ == "__main__":
    sys.exit(main())
