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

pytestmark = pytest.mark.slow  # make test-fast skips this module (make test runs it)

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
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "score", str(METHOD), "--no-check", "--models", *models,
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


def _train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", "models", "train", "--hidden", "8", "12",
                           "--variant", "ar", "ni", "--steps", "40", "--threads", "1", "--out", str(out), "--quiet",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_models_train_on_ray_gives_the_sequential_weights(tmp_path):
    """One Ray task per hidden size; on one CPU thread each the weights equal a sequential run's."""
    from benchmark.hashing import file_sha256
    from benchmark.zoo.architectures import load_model

    sequential, on_ray = _train(tmp_path / "seq"), _train(tmp_path / "ray", "--ray")
    assert sequential.returncode == 0, sequential.stdout + sequential.stderr
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    names = [f"gru-h{n}-{v}-s0" for n in (8, 12) for v in ("ar", "ni")]
    for name in names:
        assert name in on_ray.stdout, on_ray.stdout
        load_model(tmp_path / "ray" / name)  # strict load: every tensor present, shapes right
        weights = [file_sha256(root / name / "model.safetensors") for root in (tmp_path / "seq", tmp_path / "ray")]
        assert weights[0] == weights[1], name
