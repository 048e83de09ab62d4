"""Untrusted methods: a gallery of broken ones scored in one run with a good one; kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.records import TEMPORARY_PREFIX, read_record, record_files

pytestmark = pytest.mark.slow  # make test-fast skips this module (make test runs it)

ROOT = Path(__file__).parent.parent
GALLERY = Path(__file__).parent / "gallery"
CHECK_AR = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
CHECK_NI = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ni-check"

EXPECTED = {  # gallery folder -> a phrase its one-line reason must contain
    "syntax-error": "syntax error",
    "missing-class": "no class 'Missing'",
    "fit-raises": "ValueError: bad hyperparameters",
    "wrong-shape": "read returned shape",
    "nan-output": "NaN",
    "modifies-input": "modified its input h in place",
    "sleeps": "timed out after",
    "allocates": "memory limit",
    "calls-encoder": "references the reference model",
}


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, **kwargs)


def test_broken_methods_are_reported_and_the_good_one_is_scored(tmp_path):
    folders = [str(GALLERY / name) for name in ["good", *EXPECTED]]
    # two cells at a time (the sleeper waits out its limit beside the others); each cell is single-threaded
    run = _cli("score", *folders, "--models", str(CHECK_AR), "--results", str(tmp_path), "--quiet", "--no-check",
               "--timeout", "25", "--memory", "3", "--workers", "2", timeout=400)
    assert run.returncode == 1, run.stdout + run.stderr
    good = read_record(tmp_path / "good" / "gru-h16-ar-check.json")
    assert good["status"] == "ok" and good["metrics"]["write"]["iia"] > 0.2
    for name, phrase in EXPECTED.items():
        rec = read_record(tmp_path / name / "gru-h16-ar-check.json")
        assert rec["status"] == "failed" and phrase in rec["error"], (name, rec["error"])
        assert rec["metrics"] == {"read": None, "write": None, "interchange": None, "consistency": None}
        assert name in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert not list(tmp_path.rglob(f"{TEMPORARY_PREFIX}*"))


def _records(folder: Path) -> dict:
    out = {}
    for path in record_files(folder):
        rec = read_record(path)
        out[path.name] = (rec["metrics"], rec["outcomes_sha256"], rec["status"])
    return out


def test_killed_run_resumes_to_the_same_records(tmp_path):
    models = [str(CHECK_AR), str(CHECK_NI), str(CHECK_AR), str(CHECK_NI)]
    copies = []
    for i, model in enumerate(models):  # four distinct cells: copies of the two check models
        dst = tmp_path / "models" / f"m{i}-{Path(model).name}"
        dst.mkdir(parents=True)
        for f in Path(model).iterdir():
            (dst / f.name).write_bytes(f.read_bytes())
        copies.append(str(dst))
    method = str(GALLERY / "good")
    straight = tmp_path / "straight"
    assert _cli("score", method, "--models", *copies, "--results", str(straight), "--quiet", "--no-check",
                "--workers", "2", timeout=300).returncode == 0  # the reference; executors agree (test_seams)

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "score", method, "--no-check", "--models", *copies,
                             "--results", str(killed), "--quiet"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 200
    while len(record_files(killed)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, child included, mid-way
    proc.wait()
    done = len(record_files(killed))
    assert 2 <= done < 4, done
    assert not [p for p in killed.rglob("*") if p.is_file() and not p.name.endswith(".json")
                and not p.name.startswith(TEMPORARY_PREFIX)]
    rerun = _cli("score", method, "--models", *copies, "--results", str(killed), "--quiet", "--no-check", timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("ok (up to date)") == done
    assert _records(killed) == _records(straight)
