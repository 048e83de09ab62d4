"""The two processes of a cell: `fit` (has the model) and `score` (never has it).

Started by `benchmark.harness.isolation.supervisor`, never by hand, each inside its own namespaces
(`benchmark.harness.isolation.bwrap`) and Landlock rules (`benchmark.harness.isolation.sandbox`), as
`python -I` (`bwrap.worker_argv`) with fit|score|check. Everything crosses on pipes, as frames
(`benchmark.harness.isolation.channel`); neither process can reach a file the other, or the
supervisor, reads:

    fit   stdin:  HOST (supervisor's identity), PATH (import roots), JOB (torch.save of job + model)
          stdout: ATST (attestation, before method code), then DONE (fit report) + BLOB (pickled method)
                  or FAIL (one-line reason)
    score stdin:  HOST, HEAD (folder, seed, memory), then BLOB or STOP, then per track TRAK ... END
          stdout: ATST, then per track ANSW (torch.save of tensors) or SKIP, or FAIL

The scoring process is started while fit runs, so that importing torch (the bulk of a
fresh interpreter's start-up) overlaps with fit. It receives one track's public rows at a
time, after answering the previous track, so no call can see another track's queries.
Before any method code runs, each worker moves stdout out of the method's way (print()
goes to the log), joins a private session keyring, enters Landlock and attests.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import traceback
from pathlib import Path
from typing import BinaryIO

import torch

from benchmark.errors import one_line
from benchmark.harness import protocol
from benchmark.harness.isolation import attest, bwrap, channel, sandbox


def _limit_memory(gb: float) -> None:
    size = int(gb * 1024**3)
    resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _is_memory_error(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "can't allocate memory" in str(err) or "bad_alloc" in str(err)


def reason(err: BaseException, memory_gb: float) -> str:
    """One line for the record: the error's first line, with its type unless it is ours.
    The whole traceback goes to the worker's log (stderr)."""
    traceback.print_exception(err, file=sys.stderr)
    if _is_memory_error(err):
        return f"exceeded the memory limit of {memory_gb:g} GB (raise it with --memory)"
    return one_line(err)


def _private_stdout() -> BinaryIO:
    """The result channel on a private descriptor; fd 1 becomes the log, for the method's print()."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return out


def _tmpdir() -> Path:
    """The worker's one writable folder: its private /tmp under bwrap, else the supervisor's choice."""
    return Path(os.environ.get("TMPDIR", bwrap.INSIDE_TMP))


def _expect(stream: BinaryIO, kind: bytes) -> bytes:
    frame = channel.recv(stream)
    if frame is None or frame[0] != kind:
        raise channel.ChannelError(f"expected a {kind!r} frame, got {frame[0] if frame else 'end of stream'!r}")
    return frame[1]


def _enter(host: dict, rules: list, handled: int, no_write: list[Path], no_read: list[Path]) -> str:
    """Private keyring, Landlock, then the attestation string (raises if a restriction is open)."""
    if "keyring" not in host["weakened"]:
        attest.join_private_keyring()
    landlock = "none" if "landlock" in host["weakened"] else sandbox.restrict(rules, handled)
    return str(attest.attest(host, landlock=landlock, no_write=no_write, no_read=no_read))


def fit_main() -> None:
    """Fit, check and serialise; the report and the bytes go to the supervisor on the pipe."""
    out, stdin = _private_stdout(), sys.stdin.buffer
    host = json.loads(_expect(stdin, b"HOST"))
    sys.path[:0] = json.loads(_expect(stdin, b"PATH"))  # roots of a custom model's module (bound read-only)
    job = torch.load(io.BytesIO(_expect(stdin, b"JOB ")), weights_only=False)  # the harness's bytes: trusted
    if job["job"].device == "cpu":  # CUDA reserves far more address space than any sensible limit
        _limit_memory(job["memory_gb"])
    data: list = []
    try:
        folder = Path(job["job"].folder)
        channel.send(out, b"ATST", _enter(host, sandbox.fit_rules(_tmpdir()), sandbox.WRITE,
                                          [folder, sandbox.PACKAGE], []).encode())
        result = protocol.fit_method(job["job"], job["model"], data_out=data)
        info = {"status": "ok", "seconds": result.seconds, "sequences_drawn": result.sequences_drawn,
                "method_parameters": result.method_parameters, "tracks": list(result.tracks),
                "kind": result.kind, "declaration": result.declaration}
        channel.send(out, b"DONE", json.dumps(info).encode())
        channel.send(out, b"BLOB", result.blob)
    except BaseException as err:  # noqa: BLE001 - every failure becomes a one-line reason
        failure = {"error": reason(err, job["memory_gb"]), "sequences_drawn": data[0].drawn if data else 0}
        channel.send(out, b"FAIL", json.dumps(failure).encode())


def score_main() -> None:
    """Attest, wait for the fitted bytes, then answer one track at a time."""
    out, stdin = _private_stdout(), sys.stdin.buffer
    host = json.loads(_expect(stdin, b"HOST"))
    head = json.loads(_expect(stdin, b"HEAD"))
    memory_gb, folder = float(head["memory_gb"]), Path(head["folder"])
    try:
        hidden = sandbox.hidden_from_scoring()
        rules = sandbox.score_rules(_tmpdir(), folder, hidden)
        probe = [f for h in hidden for f in sorted(h.glob("*"))[:1] if f.is_file()][:2]
        channel.send(out, b"ATST", _enter(host, rules, sandbox.READ | sandbox.WRITE, [folder, sandbox.PACKAGE],
                                          probe).encode())
    except BaseException as err:  # noqa: BLE001
        channel.send(out, b"FAIL", reason(err, memory_gb).encode())
        return
    frame = channel.recv(stdin)
    if frame is None or frame[0] != b"BLOB":
        return  # fit failed: nothing to score
    _limit_memory(memory_gb)
    try:
        method = protocol.load_fitted(str(folder), frame[1], head.get("state_dim"))
        while (frame := channel.recv(stdin)) is not None and frame[0] == b"TRAK":
            name, _, rows = frame[1].partition(b"\n")
            public = torch.load(io.BytesIO(rows), weights_only=True)
            answers = protocol.answer_track(method, name.decode(), public, seed=int(head["seed"]))
            if answers is None:
                channel.send(out, b"SKIP")
                continue
            buffer = io.BytesIO()
            torch.save(answers, buffer)
            channel.send(out, b"ANSW", buffer.getvalue())
    except BaseException as err:  # noqa: BLE001
        channel.send(out, b"FAIL", reason(err, memory_gb).encode())


def check_main() -> None:
    """`onionbench check` and the conformance tests: the whole suite, sealed like fit."""
    from dataclasses import asdict

    from benchmark.harness.conformance import run_checks_here
    from benchmark.harness.submission import load_spec

    out, stdin = _private_stdout(), sys.stdin.buffer
    host = json.loads(_expect(stdin, b"HOST"))
    folder = Path(_expect(stdin, b"FOLD").decode())
    try:
        channel.send(out, b"ATST", _enter(host, sandbox.fit_rules(_tmpdir()), sandbox.WRITE,
                                          [folder, sandbox.PACKAGE], []).encode())
        results = [asdict(r) for r in run_checks_here(load_spec(folder))]
        channel.send(out, b"RSLT", json.dumps(results).encode())
    except BaseException as err:  # noqa: BLE001
        channel.send(out, b"FAIL", reason(err, 0).encode())


def main() -> None:
    """Run one worker, then leave at once: every frame is flushed (`channel.send`), the logs are
    flushed here, and the sandbox's /tmp dies with the namespace.

    Why `os._exit`: a normal exit tears down an interpreter holding torch, 0.3-0.9 s on 2
    cores, and the supervisor waits for fit's exit (nothing may outlive fit) and for the
    scorer's, so a cell paid that twice; it also cuts short any thread the method left.
    An exception still exits through Python (traceback to the log, status 1).
    """
    {"fit": fit_main, "score": score_main, "check": check_main}[sys.argv[1]]()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
