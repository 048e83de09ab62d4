"""The Ray executor against a real local Ray instance on 127.0.0.1 (no mock): the records
equal the sequential executor's, and a run whose worker is killed mid-cell completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # an optional extra; CI installs it with the test extra

ROOT = Path(__file__).parent.parent
CHECK = ROOT / "benchmark" / "zoo" / "check"
METHOD = ROOT / "baselines" / "random-subspace"


def _models(tmp_path: Path) -> list[str]:
    """Three distinct cells: the two check models and a copy of one under another name."""
    copy = tmp_path / "models" / "gru-h16-ar-copy"
    copy.mkdir(parents=True)
    for f in (CHECK / "gru-h16-ar-check").iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    return [str(CHECK / "gru-h16-ar-check"), str(CHECK / "gru-h16-ni-check"), str(copy)]


def _score(models: list[str], results: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "score", str(METHOD), "--models", *models,
                             "--results", str(results), "--quiet", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(results: Path) -> dict:
    out = {}
    for path in sorted(results.rglob("*.json")):
        rec = json.loads(path.read_text())
        out[path.name] = (rec["status"], rec["metrics"], rec["outcomes_sha256"], rec["method_parameters"])
    return out


def _ray_cell_workers() -> list[int]:
    """Ray worker processes currently running a cell (Ray titles them `ray::_run_cell`)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("ray::_run_cell"):
                pids.append(int(entry.name))
    return pids


def test_ray_gives_the_sequential_records_and_survives_a_killed_worker(tmp_path):
    models = _models(tmp_path)
    sequential = _score(models, tmp_path / "sequential")
    out, err = sequential.communicate(timeout=600)
    assert sequential.returncode == 0, out + err

    run = _score(models, tmp_path / "ray", "--ray")
    killed, deadline = None, time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        workers = _ray_cell_workers()
        if workers:
            time.sleep(1.0)  # let the cell get under way, then kill its worker
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.2)
    out, err = run.communicate(timeout=600)
    assert killed is not None, "no Ray worker was seen running a cell: " + out + err
    assert run.returncode == 0, out + err
    assert _records(tmp_path / "ray") == _records(tmp_path / "sequential")
    assert len(_records(tmp_path / "ray")) == 3  # every cell written once
    assert not list((tmp_path / "ray").rglob(".tmp-*"))
