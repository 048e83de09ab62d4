"""The wheel works outside a checkout: baselines found by name, embedded models, results in
the working directory. Built and installed here without the network: the fresh virtual
environment borrows the test environment's dependencies through a .pth file and installs
only the wheel itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test-fast skips this module (make test runs it)

ROOT = Path(__file__).parent.parent


def _run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def test_the_installed_wheel_scores_a_baseline_by_name_from_another_folder(tmp_path):
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools reuses build/lib: a stale copy would ship
    try:
        _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
             str(tmp_path / "dist"), str(ROOT), cwd=tmp_path)
    finally:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheel = next((tmp_path / "dist").glob("onionbench-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    site = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    # the dependencies of this environment, not its editable onionbench (a .pth line adds no site dir)
    (Path(site.stdout.strip()) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel), cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    where = _run(str(python), "-c", "import benchmark, onionbench_baselines; print(benchmark.__file__)",
                 cwd=work, env=env)
    assert str(venv) in where.stdout, where.stdout  # the installed package, not the checkout
    _run(str(venv / "bin" / "onionbench"), "score", "random-subspace", "--models", "gru-h48-ar-s0", "--quiet",
         cwd=work, env=env)
    record = json.loads((work / "runs" / "results" / "random-subspace" / "gru-h48-ar-s0.json").read_text())
    assert record["status"] == "ok" and record["method"]["baseline"]
    assert record["metrics"]["read"]["sequence_accuracy"] < 0.1  # the floor it is
