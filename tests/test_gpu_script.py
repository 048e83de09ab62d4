"""The extended tier's GPU script (benchmarks/gpu_extended.sh), dry-run on the CPU with tiny sizes and steps."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test-fast skips this module (make test runs it)

ROOT = Path(__file__).parent.parent


def test_the_gpu_script_trains_packs_and_brings_back_on_the_cpu(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    env = {**os.environ, "PY": sys.executable, "DEVICE": "cpu", "SIZES": "8 12", "STEPS": "3", "BUDGET_S": "240",
           "WORK": str(work), "OUT": str(out), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_extended.sh"), "train"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (out / "throughput.json").exists() and (out / "throughput.txt").exists()
    parts = sorted(out.glob("part-*"))
    assert parts, sorted(p.name for p in out.iterdir())
    packed = tmp_path / "packed.tar.gz"
    packed.write_bytes(b"".join(p.read_bytes() for p in sorted(work.glob("part-*"))))
    with tarfile.open(packed) as tar:
        names = tar.getnames()
    for n in (8, 12):  # ar first, then ni; three seeds each
        for v in ("ar", "ni"):
            for s in range(3):
                assert f"zoo/gru-h{n}-{v}-s{s}/model.safetensors" in names, names
    fetched = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_extended.sh"), "fetch", "0"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert fetched.returncode == 0 and (out / "part-00").exists()
