"""Sealed cells: a cheat gallery for the routes that are not files (kernel objects, sockets,
processes, the result channel), each with its mutation check.

Every cheat carries the reference model itself from fit to scoring and decodes with it, so
a route that works reads as well as the model repeats. Each test asserts the cheat reads
at the floor under the sealed cell; its mutation twin removes the one restriction that
stops it (`ONIONBENCH_SANDBOX_WEAKEN`) and asserts the cheat then wins, so the refusal is
the restriction's doing, not a bug in the cheat.
"""

from __future__ import annotations

import ctypes
import io
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
import torch

from benchmark.harness.cell import run_cell
from benchmark.harness.isolation import bwrap, channel, supervisor
from benchmark.harness.isolation.launch import Limits
from benchmark.harness.submission import load_spec
from benchmark.records import validate
from benchmark.zoo.resolve import load_reference
from tests.sealed import SEALED, expected_sandbox

pytestmark = pytest.mark.slow  # make test-fast skips this module (make test runs it)

ROOT = Path(__file__).parent.parent
CHEATS = Path(__file__).parent / "cheats"
CHECK_AR = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
LIMITS = Limits(timeout_s=120, memory_gb=4)
sealed = pytest.mark.skipif(not SEALED, reason=f"no bubblewrap sandbox here: {bwrap.unavailable()}")


def _smuggle(route: str, address: str = "", weaken: str = "", monkeypatch=None) -> dict:
    if weaken:
        monkeypatch.setenv(bwrap.WEAKEN_ENV, weaken)
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(CHEATS / "smuggler"), model, provenance, params={"route": route, "address": address},
                   limits=LIMITS)
    validate(rec)
    return rec


def _won(rec: dict) -> bool:
    """The cheat read as well as the model repeats: the route carried the model."""
    return (rec["status"] == "ok" and
            rec["metrics"]["read"]["sequence_accuracy"] >= rec["bounds"]["oracle"]["read_sequence_accuracy"] - 1e-6)


def _refused_or_at_floor(rec: dict) -> bool:
    """The route is closed: fit could not leave the object (a named reason), or scoring found nothing."""
    named = ("Permission denied", "PermissionError", "Read-only file system", "No such file")
    return _at_floor(rec) or (rec["status"] == "failed" and any(n in rec["error"] for n in named))


def _at_floor(rec: dict) -> bool:
    return rec["status"] == "ok" and rec["metrics"]["read"]["token_accuracy"] < 0.1  # zeros read token 0: ~1/30


# ----------------------------------------------------------- kernel objects
KERNEL = [("shm", "ipc,landlock"), ("mq", "ipc,landlock"), ("keyring", "user,keyring,landlock"),
          ("devshm", "dev,landlock")]


@sealed
@pytest.mark.parametrize("route, _weaken", KERNEL)
def test_kernel_objects_left_by_fit_are_gone_for_scoring(route, _weaken):
    rec = _smuggle(route, f"{os.getpid()}-{time.monotonic_ns()}")
    assert _refused_or_at_floor(rec), rec["error"] or rec["metrics"]
    assert rec["environment"]["sandbox"] == expected_sandbox()


@sealed
@pytest.mark.parametrize("route, weaken", KERNEL)
def test_mutation_without_its_namespace_the_kernel_object_carries_the_model(route, weaken, monkeypatch):
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    try:
        assert _won(_smuggle(route, marker, weaken=weaken, monkeypatch=monkeypatch))
    finally:
        _remove_leftovers(marker)


def _remove_leftovers(marker: str) -> None:
    """What the weakened cheat left on this machine's kernel (the sealed one leaves nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    for ring in (-4, -3):
        while (key := libc.syscall(250, 10, ring, b"user", f"onionbench-smuggler-{marker}".encode(), 0)) > 0:
            libc.syscall(250, 3, key)  # KEYCTL_REVOKE
            libc.syscall(250, 9, key, ring)  # KEYCTL_UNLINK
    shm = libc.shmget(0x6F6E696F, 0, 0)
    if shm >= 0:
        libc.shmctl(shm, 0, None)  # IPC_RMID
    ctypes.CDLL("librt.so.1").mq_unlink(b"/onionbench-smuggler")
    Path(f"/dev/shm/onionbench-smuggler-{marker}").unlink(missing_ok=True)


# ------------------------------------------------------------------ sockets
def _model_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(load_reference(str(CHECK_AR))[0], buffer)
    return zlib.compress(buffer.getvalue(), 9)


class _Accomplice:
    """A server outside the cell that hands the model's bytes to whoever asks."""

    def __init__(self, route: str, tmp_path: Path) -> None:
        self.payload, self.stop = _model_bytes(), threading.Event()
        if route == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = str(self.sock.getsockname()[1])
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.address = str(tmp_path / "accomplice.sock") if route == "unix" else f"onionbench-{os.getpid()}"
            self.sock.bind(self.address if route == "unix" else "\0" + self.address)
            self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, args=(route,), daemon=True)
        self.thread.start()

    def _serve(self, route: str) -> None:
        while not self.stop.is_set():
            try:
                if route == "udp":
                    _, peer = self.sock.recvfrom(64)
                    self.sock.sendto(self.payload, peer)
                else:
                    conn, _ = self.sock.accept()
                    conn.sendall(self.payload)
                    conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


SOCKETS = [("udp", "net,landlock"), ("unix", "tmp,landlock"), ("abstract", "net,landlock")]


@sealed
@pytest.mark.parametrize("route, _weaken", SOCKETS)
def test_scoring_reaches_no_server_outside_the_cell(route, _weaken, tmp_path):
    accomplice = _Accomplice(route, tmp_path)
    try:
        rec = _smuggle(route, accomplice.address)
    finally:
        accomplice.close()
    assert _at_floor(rec), rec["error"] or rec["metrics"]


@sealed
@pytest.mark.parametrize("route, weaken", SOCKETS)
def test_mutation_with_its_network_back_the_server_hands_over_the_model(route, weaken, tmp_path, monkeypatch):
    accomplice = _Accomplice(route, tmp_path)
    try:
        assert _won(_smuggle(route, accomplice.address, weaken=weaken, monkeypatch=monkeypatch))
    finally:
        accomplice.close()


# ---------------------------------------------------------------- processes
def _pids_with(marker: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                out.append(int(entry))
        except OSError:
            continue
    return out


@sealed
def test_a_failed_record_says_what_sandbox_it_failed_in(tmp_path):
    model, provenance = load_reference(str(CHECK_AR))
    body = "class Cheat:\n    tracks = ('read',)\n\n    def fit(self, model, data):\n        raise ValueError('no')\n"
    rec = run_cell(load_spec(_method(tmp_path, "raiser", body)), model, provenance, limits=LIMITS)
    assert rec["status"] == "failed" and "ValueError: no" in rec["error"]
    assert rec["environment"]["sandbox"] == expected_sandbox()


def test_a_fork_chain_started_in_fit_dies_with_fits_namespace():
    marker = f"onionbench-chain-{os.getpid()}-{time.monotonic_ns()}"
    rec = _smuggle("chain", marker)
    assert _at_floor(rec), rec["error"] or rec["metrics"]
    assert _pids_with(marker) == []


@sealed
def test_mutation_without_a_pid_namespace_the_chain_outlives_fit(monkeypatch):
    marker = f"onionbench-chain-{os.getpid()}-{time.monotonic_ns()}"
    try:
        rec = _smuggle("chain", marker, weaken="pid", monkeypatch=monkeypatch)
        assert rec["status"] == "failed" and rec["error"] == supervisor.OUTLIVED, rec["error"]
    finally:
        for pid in _pids_with(marker):
            os.kill(pid, 9)


# ------------------------------------------------------- the result channel
def _method(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "method.toml").write_text(f'name = "{name}"\ndescription = "cheat"\nauthors = ["t"]\nurl = "u"\n'
                                        f'hypothesis = "other"\nentry = "method.py:Cheat"\n')
    (folder / "method.py").write_text(body)
    return folder


FORGER = '''
import json, os, threading, time
import torch

def frame(kind, payload):
    return kind + len(payload).to_bytes(8, "big") + payload

def forge():
    time.sleep(0.3)  # after fit has returned, while the harness serialises and reports
    forged = frame(b"DONE", json.dumps({"status": "ok", "seconds": 0.0, "sequences_drawn": 0,
                                        "method_parameters": 64, "tracks": ["read"]}).encode())
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "pipe" in os.readlink(f"/proc/self/fd/{fd}") and int(fd) > 0:
                os.write(int(fd), forged)
        except OSError:
            pass

class Cheat:
    tracks = ("read",)

    def fit(self, model, data):
        self.w_ = torch.zeros(10000)
        threading.Thread(target=forge, daemon=True).start()
        time.sleep(0.6)
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)
'''


def test_a_thread_left_by_fit_cannot_forge_the_fit_report(tmp_path):
    """The report travels on a pipe as frames in a fixed order: an extra DONE frame is refused."""
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(_method(tmp_path, "forger", FORGER)), model, provenance, limits=LIMITS)
    validate(rec)
    assert rec["method_parameters"] != 64 and rec["fit"]["sequences_drawn"] != 0 or rec["status"] == "failed"
    if rec["status"] == "failed":
        assert "out of turn" in rec["error"], rec["error"]


def test_mutation_a_supervisor_taking_the_last_report_would_take_the_forgery():
    """The same stream, parsed by "keep the last DONE frame": the forged count wins."""
    honest = channel.encode(b"DONE", b'{"method_parameters": 10000}')
    forged = channel.encode(b"DONE", b'{"method_parameters": 64}')
    frames = channel.split(channel.encode(b"ATST", b"x") + honest + forged + channel.encode(b"BLOB", b"..."))
    last = [payload for kind, payload in frames if kind == b"DONE"][-1]
    assert b"64" in last
    assert [k for k, _ in frames] != [b"ATST", b"DONE", b"BLOB"]  # what the supervisor demands


LINGERER = '''
import threading, time
import torch

class Cheat:
    tracks = ("read",)

    def fit(self, model, data):
        self.w_ = torch.zeros(3)
        threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon: a normal exit would wait for it
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)
'''


def test_a_thread_left_running_by_fit_neither_hangs_the_cell_nor_reaches_scoring(tmp_path):
    """The workers leave with os._exit once their frames are flushed: a thread the method left
    behind is cut short, rather than holding fit open until the time limit fails the cell."""
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(_method(tmp_path, "lingerer", LINGERER)), model, provenance,
                   limits=Limits(timeout_s=30, memory_gb=4))
    validate(rec)
    assert rec["status"] == "ok", rec["error"]
    assert rec["fit"]["wall_seconds"] < 25


PEEKER = '''
import gc
import torch

class Cheat:
    tracks = ("read", "write")

    def fit(self, model, data):
        return self

    def read(self, h, position):
        # The first call answers the READ track (later ones come from CONSISTENCY, after WRITE).
        # The write track's rows carry `current`, the true token at a position: a READ answer.
        if not getattr(self, "looked_", False):
            self.looked_ = True
            for obj in gc.get_objects():
                if type(obj) is dict and isinstance(dict.get(obj, "current"), torch.Tensor) and "token" in obj:
                    raise RuntimeError("saw the write track's queries while reading")
        return torch.zeros(h.shape[0], 30)

    def write(self, h, position, token, *, current):
        return h
'''


def test_scoring_sees_one_tracks_queries_at_a_time(tmp_path):
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(_method(tmp_path, "peeker", PEEKER)), model, provenance, limits=LIMITS)
    assert rec["status"] == "ok", rec["error"]


def test_mutation_all_tracks_at_once_lets_read_see_the_write_queries(tmp_path):
    """In one process every track's rows are in memory together: the peek succeeds."""
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(_method(tmp_path, "peeker", PEEKER)), model, provenance, isolate=False)
    assert rec["status"] == "failed" and "saw the write track" in rec["error"], rec["error"]


# ------------------------------------------------------------------- /proc
def test_the_reaper_reads_proc_as_bytes_and_finds_a_process_with_a_non_utf8_name():
    code = ("import ctypes, time; ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b'\\xff\\xfe\\x80 odd'), 0, 0, 0);"
            "print('named', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"named"
        assert b"\xff" in Path(f"/proc/{proc.pid}/stat").read_bytes()
        assert proc.pid in supervisor.descendants(os.getpid())
        with pytest.raises(UnicodeDecodeError):  # mutation: the old reader of /proc as text
            Path(f"/proc/{proc.pid}/stat").read_text()
    finally:
        proc.kill()
        proc.wait()


def test_keyring_ids_are_read_with_the_right_syscall():
    """The attestation compares keyring ids: they must be real ids on this machine (or -1)."""
    from benchmark.harness.isolation.attest import keyrings

    ids = keyrings()
    assert set(ids) == {"session", "user"} and all(isinstance(v, int) for v in ids.values())
    libc = ctypes.CDLL(None)
    assert ids["user"] == -1 or ids["user"] > 0 and libc is not None


# -------------------------------------------------------- `onionbench check`
PLANTER = '''
import sys
from pathlib import Path
import torch

class Cheat:
    tracks = ("read",)

    def fit(self, model, data):
        site = [p for p in sys.path if p.endswith("site-packages")]
        for target in [Path(__file__).parent / "planted-model.pt", *(Path(p) / "onionbench-planted.pth" for p in site)]:
            try:
                if target.suffix == ".pth":
                    target.write_text("# a .pth runs its import lines in every later interpreter\\n")
                else:
                    torch.save(model._model, target)
            except Exception as err:
                raise OSError(f"plant refused: {err}") from None
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)
'''


def _planted(folder: Path) -> list[Path]:
    site = [Path(p) / "onionbench-planted.pth" for p in sys.path if p.endswith("site-packages")]
    return [p for p in [folder / "planted-model.pt", *site] if p.exists()]


@sealed
def test_check_runs_fit_sealed_so_a_plant_fails_the_check_and_leaves_nothing(tmp_path):
    from benchmark.harness.conformance import run_checks

    folder = _method(tmp_path, "planter", PLANTER)
    try:
        results = {r.name: r for r in run_checks(load_spec(folder))}
        assert results["check_sandboxed_run"].passed and results["check_sandboxed_run"].reason == expected_sandbox()
        assert not results["check_fit_runs"].passed
        assert "plant refused" in results["check_fit_runs"].reason and "Read-only" in results["check_fit_runs"].reason
        assert _planted(folder) == []
    finally:
        for path in _planted(folder):
            path.unlink()


@sealed
def test_mutation_with_writable_binds_the_check_plants_the_model(tmp_path, monkeypatch):
    from benchmark.harness.conformance import run_checks

    folder = _method(tmp_path, "planter", PLANTER.replace("site-packages", "no-such-folder"))
    monkeypatch.setenv(bwrap.WEAKEN_ENV, "ro,landlock")
    run_checks(load_spec(folder))
    assert (folder / "planted-model.pt").exists()


# ------------------------------------------------------------------ the board
def _toy_record(method: str, sandbox: str) -> dict:
    return {"benchmark_version": "1", "scoring_version": "3", "plan_seed": 0, "fit": {"budget": 1},
            "model": {"name": "m", "sha256": "a" * 64}, "method": {"name": method}, "environment": {"sandbox": sandbox}}


def test_the_board_refuses_records_whose_sandbox_was_open_naming_them():
    from benchmark.board.rules import check_comparable
    from benchmark.errors import OnionbenchError

    sealed_text = "bwrap+landlock7; denied: fs,net,ipc,keyring,pid"
    check_comparable([_toy_record("a", sealed_text), _toy_record("b", "landlock 7")])  # before attestation: ranked
    with pytest.raises(OnionbenchError, match=r"b/m ran without a verified sandbox.*bubblewrap"):
        check_comparable([_toy_record("a", sealed_text), _toy_record("b", "landlock7; denied: fs; open: net,ipc")])
