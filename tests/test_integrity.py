"""The model is for `fit` only: a cheat gallery, process reaping, method size, fresh splits.

Each cheat is a method folder in tests/cheats/ that a submitter could write against the
documented interface. Each must be refused with a reason naming what it kept, or score at
the floor; none may leave a process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.audit.verify import (
    compare_fresh,
    one_sided_threshold,
    row_verdict,
    verify_evaluation,
    within_interval,
    z_score,
)
from benchmark.data import heldout_keys
from benchmark.harness.cell import fresh_evaluation, run_cell
from benchmark.harness.guard import Forbidden, ForbiddenStateError, inspect_fitted, serialise
from benchmark.harness.interface import FitData
from benchmark.harness.isolation.launch import Limits
from benchmark.harness.isolation.sandbox import abi_version
from benchmark.harness.submission import load_spec
from benchmark.records import record_path, validate, write_atomic
from benchmark.zoo.resolve import load_reference
from tests.sealed import expected_sandbox

ROOT = Path(__file__).parent.parent
CHEATS = Path(__file__).parent / "cheats"
CHECK_AR = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
LIMITS = Limits(timeout_s=120, memory_gb=4)


def _cell(name: str, params: dict | None = None, *, model_name: str = str(CHECK_AR), **kwargs) -> dict:
    model, provenance = load_reference(model_name)
    record = run_cell(load_spec(CHEATS / name), model, provenance, params=params, limits=LIMITS, **kwargs)
    validate(record)
    return record


@pytest.mark.parametrize("name, phrase", [
    ("decoder-at-score", "method.model_ references the reference model"),
    ("gd-through-decoder", "references the reference model"),
    ("private-encoder", "method.net_ references the reference model"),
])
def test_a_method_keeping_the_model_is_refused_with_the_attribute_path(name, phrase):
    rec = _cell(name)
    assert rec["status"] == "failed" and phrase in rec["error"], rec["error"]
    assert rec["metrics"]["read"] is None and rec["metrics"]["write"] is None


def test_a_method_that_switches_off_the_guard_is_still_refused_before_scoring():
    rec = _cell("guard-disabler")  # the supervisor's scan of the pickled bytes runs no method code
    assert rec["status"] == "failed" and "the reference model's module" in rec["error"], rec["error"]
    assert rec["metrics"]["read"] is None


def test_the_trusted_scan_finds_a_weight_inside_a_larger_tensor():
    from benchmark.harness.guard import fingerprints
    from benchmark.harness.isolation.blobscan import scan_blob

    model, _ = load_reference(str(CHECK_AR))
    weight = dict(model.named_parameters())["readout.weight"].detach()
    smuggled = {"x": torch.cat([torch.randn(3, weight.shape[1]), weight]), "y": torch.randn(5)}
    import pickle

    reason = scan_blob(pickle.dumps(smuggled), fingerprints(model))
    assert reason is not None and "readout.weight" in reason
    assert scan_blob(pickle.dumps({"y": torch.randn(40, 16)}), fingerprints(model)) is None


def test_a_model_stashed_in_a_module_global_does_not_reach_scoring():
    rec = _cell("global-stash")
    assert rec["status"] == "failed"
    assert "NoneType" in rec["error"] and "generate" in rec["error"], rec["error"]


@pytest.mark.parametrize("transpose", [False, True])
def test_an_exact_weight_copy_is_refused(transpose):
    rec = _cell("weight-copy", {"transpose": transpose})
    assert rec["status"] == "failed" and "method.readout_ is a copy of a reference-model weight" in rec["error"]


@pytest.mark.slow
def test_a_process_started_during_fit_does_not_outlive_the_cell():
    marker = f"onionbench-orphan-{os.getpid()}-{time.monotonic_ns()}"
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:  # the fit may not write a pid file: find the orphan by its command line
        while not done.is_set():
            seen.update(_pids_with(marker))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        rec = _cell("orphan-process", {"marker": marker})
    finally:
        done.set()
        watcher.join()
    assert rec["status"] == "ok", rec["error"]
    assert rec["environment"]["sandbox"] == expected_sandbox()
    assert seen, "the orphan was never seen running: the test would pass vacuously"
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in seen), f"processes {seen} started by the method's fit are still running"


def _pids_with(marker: str) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_the_memoriser_wins_on_the_public_split_and_fails_a_fresh_one():
    # an embedded N=48 model: the tiny check model forgets early tokens, so distinct sequences share states
    shipped = _cell("memoriser", model_name="gru-h48-ar-s0")
    assert shipped["status"] == "ok", shipped["error"]
    model_accuracy = shipped["bounds"]["oracle"]["read_sequence_accuracy"]
    assert shipped["metrics"]["read"]["sequence_accuracy"] > max(0.99, model_accuracy)
    evaluation, _ = fresh_evaluation(seed=12345)
    fresh = _cell("memoriser", model_name="gru-h48-ar-s0", evaluation=evaluation)
    assert fresh["split"]["name"] == "fresh-12345" and fresh["split"]["sha256"] != shipped["split"]["sha256"]
    assert fresh["metrics"]["read"]["sequence_accuracy"] < 0.05  # the floor: nothing it saw comes back
    verdict = row_verdict([compare_fresh(shipped, fresh)])[0]
    assert not verdict.matches and "read.sequence_accuracy" in verdict.detail


@pytest.mark.slow
def test_verify_fresh_passes_an_honest_method_and_fails_the_memoriser(tmp_path):
    model, provenance = load_reference("gru-h48-ar-s0")
    for folder in (ROOT / "baselines" / "random-subspace", CHEATS / "memoriser"):
        spec = load_spec(folder)
        write_atomic(record_path(tmp_path, spec.name, provenance["name"]),
                     run_cell(spec, model, provenance, limits=LIMITS))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    honest = subprocess.run([sys.executable, "-m", "benchmark.cli", "verify", "random-subspace", "--fresh",
                             "--results", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert "fresh split and plan from seed" in honest.stdout
    cheat = subprocess.run([sys.executable, "-m", "benchmark.cli", "verify", str(CHEATS / "memoriser"), "--fresh",
                            "--results", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert cheat.returncode == 1 and "memorised the public split" in cheat.stdout, cheat.stdout + cheat.stderr


@pytest.mark.slow
def test_an_honest_trained_method_passes_verify_fresh_on_20_fresh_seeds():
    """A fresh score above the committed one is no evidence (one-sided), and the row's many
    tests share one error rate (Bonferroni): the two-sided, per-metric rule flagged honest rows."""
    model, provenance = load_reference("gru-h48-ar-s0")
    spec = load_spec(ROOT / "tests" / "methods" / "declared-means")
    committed = run_cell(spec, model, provenance, isolate=False)
    assert committed["status"] == "ok", committed["error"]
    verdicts = []
    for seed in range(20):
        evaluation, _ = verify_evaluation(seed=1000 + seed)
        verdicts += row_verdict([compare_fresh(committed, run_cell(spec, model, provenance, evaluation=evaluation,
                                                                    isolate=False))])
    assert all(v.matches for v in verdicts), [v.detail for v in verdicts if not v.matches]


def test_the_fresh_verdict_is_one_sided_and_corrected_for_the_rows_tests():
    assert z_score(0.50, 5000, 0.60, 5000) < 0  # fresh far above committed: not memorisation
    assert z_score(0.60, 5000, 0.50, 5000) > one_sided_threshold(216)
    assert one_sided_threshold(216) > one_sided_threshold(1) > 2.3  # 216 = 9 metrics x 24 cells


def test_verify_fresh_repeats_the_committed_fit():
    """verify --fresh scores the committed fit on a fresh split: the training stream must not change.

    Holding the fresh sequences out of fit (as `score --fresh` does) changes the stream, so
    a trained method is re-fitted differently and its fit-to-fit spread is tested as if it
    were sampling noise; that failed honest baselines (onion, linear-das, gru-probe).
    """
    model, _ = load_reference("gru-h48-ar-s0")

    def first_draws(extra: np.ndarray) -> torch.Tensor:
        data = FitData(model, np.concatenate([heldout_keys(), extra]), seed=0, budget=10**6)
        return data.sample(5000).tokens

    committed = first_draws(np.zeros(0, dtype=np.int64))
    for_verify, _ = verify_evaluation(seed=12345)
    assert torch.equal(first_draws(for_verify.extra_heldout), committed)
    for_score, _ = fresh_evaluation(seed=12345)
    assert not torch.equal(first_draws(for_score.extra_heldout), committed)  # why verify must differ
    assert torch.equal(for_verify.test.tokens, for_score.test.tokens)  # the same fresh split either way


def test_sampling_interval_accepts_noise_and_rejects_a_gap():
    assert within_interval(0.90, 5000, 0.91, 5000)
    assert within_interval(1.0, 5000, 1.0, 5000)
    assert not within_interval(1.0, 5000, 0.03, 5000)
    assert not within_interval(0.90, 5000, 0.85, 5000)


def test_method_size_counts_learned_scalars_once():
    model = torch.nn.Linear(3, 2)

    class Method:
        def __init__(self):
            shared = torch.zeros(4, 5)
            self.a_ = shared
            self.b_ = shared  # the same tensor twice counts once
            self.c_ = [torch.ones(3), {"d": torch.ones(2, 2).numpy()}]
            self.net_ = torch.nn.Linear(2, 3)  # 6 + 3

    assert inspect_fitted(Method(), Forbidden.of(model)) == 20 + 3 + 4 + 9


class Hidden:
    """Shows the walk a harmless state and the pickler the model."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.x_ = torch.ones(2)
        self._smuggle = [model]

    def __getstate__(self) -> dict:
        return {"x_": self.x_, "smuggled": self._smuggle[0]}

    def __reduce__(self):
        return (dict, (), self.__getstate__())


def test_guard_refuses_the_model_even_behind_reduce():
    model = torch.nn.Linear(3, 2)
    method = Hidden(model)
    method.__dict__.pop("_smuggle")  # the walk sees only x_ ...
    method.__class__ = type("Sneaky", (Hidden,), {"__reduce__": lambda self: (dict, (), {"m": model})})
    with pytest.raises(ForbiddenStateError, match="__reduce__/__getstate__"):  # ... the pickler sees the model
        serialise(method, Forbidden.of(model))


def test_scored_rows_arrive_shuffled(tmp_path):
    seen = tmp_path / "first_rows.pt"
    folder = tmp_path / "spy"
    folder.mkdir()
    (folder / "method.toml").write_text('name = "spy"\ndescription = "records the row order"\nauthors = ["t"]\n'
                                        'url = "u"\nhypothesis = "other"\nentry = "method.py:Spy"\n'
                                        f'[params]\nout = "{seen}"\n')
    (folder / "method.py").write_text(
        "import torch\n\nclass Spy:\n    tracks = ('read',)\n\n    def __init__(self, out=''):\n"
        "        self.out = out\n\n    def fit(self, model, data):\n        return self\n\n"
        "    def read(self, h, position):\n        if int(position[0]) == 0:\n"
        "            import os\n            if not os.path.exists(self.out):\n"
        "                torch.save(h[:50].clone(), self.out)\n        return torch.zeros(h.shape[0], 30)\n")
    model, provenance = load_reference(str(CHECK_AR))
    # In-process: the spy writes what it saw to a file, which the sandboxed scorer may not;
    # the rows are shuffled by the cell (`cell._prepare`) before either path runs.
    rec = run_cell(load_spec(folder), model, provenance, isolate=False)
    assert rec["status"] == "ok", rec["error"]
    from benchmark.data import load_split

    test = load_split("test")
    with torch.no_grad():
        in_test_order = model.encode(test.tokens[:50], test.lengths[:50])
    assert not torch.allclose(torch.load(seen), in_test_order)


def test_a_method_cannot_score_itself_on_the_test_split_inside_fit():
    """score_fitted (for research scripts) needs to encode the test split, which fit may not."""
    rec = _cell("self-scorer")
    assert rec["status"] == "failed", rec["metrics"]
    assert "held-out" in rec["error"], rec["error"]


landlock = pytest.mark.skipif(abi_version() == 0, reason="this kernel has no Landlock: cells run unsandboxed")


@landlock
def test_fit_cannot_leave_the_model_on_disk_for_scoring(tmp_path):
    """The disk route around the two processes: fit saves the model, read loads it."""
    stash = tmp_path / "stash.pt"
    rec = _cell("disk-stash", {"stash": str(stash)})
    assert rec["status"] == "failed" and _denied(rec["error"]), rec
    assert not stash.exists()


@landlock
@pytest.mark.parametrize("where", ["zoo", pytest.param("embedded", marks=pytest.mark.slow), "planted"])
def test_scoring_cannot_read_the_model_from_disk(tmp_path, where):
    """No stash needed: the zoo lies on disk (the check models, and the embedded ones in
    zoo/models/ since issue 32 moved them), and a copy may have been put there before the run.
    Were zoo/models readable, the embedded N=48 model would load and fail on the check model's
    16-wide states with a shape error, not a denial."""
    from benchmark.zoo.registry import ZOO_DIR

    path = str(CHECK_AR) if where != "embedded" else str(ZOO_DIR / "gru-h48-ar-s0")
    if where == "planted":
        path = str(tmp_path / "planted.pt")
        torch.save(load_reference(str(CHECK_AR))[0], path)
    rec = _cell("zoo-at-score", {"path": path})
    assert rec["status"] == "failed" and _denied(rec["error"]), rec
    assert rec["metrics"]["read"] is None


@landlock
def test_scoring_cannot_forge_the_supervisors_report(tmp_path):
    """The scorer may create files in its job folder (TMPDIR); the supervisor's report, the
    trusted fit wall time and pickle size, is written again after scoring."""
    folder = tmp_path / "forger"
    folder.mkdir()
    (folder / "method.toml").write_text('name = "forger"\ndescription = "forges supervisor.json"\nauthors = ["t"]\n'
                                        'url = "u"\nhypothesis = "other"\nentry = "method.py:Forger"\n')
    (folder / "method.py").write_text(
        "import json, os\nimport torch\n\nclass Forger:\n    tracks = ('read',)\n\n"
        "    def fit(self, model, data):\n        return self\n\n    def read(self, h, position):\n"
        "        forged = {'fit_wall_s': 0.001, 'fitted_bytes': 1, 'refused': None, 'sandbox': 'landlock 99'}\n"
        "        with open(os.path.join(os.environ['TMPDIR'], 'supervisor.json'), 'w') as f:\n"
        "            json.dump(forged, f)\n        return torch.zeros(h.shape[0], 30)\n")
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(folder), model, provenance, limits=LIMITS)
    assert rec["status"] == "ok", rec["error"]
    assert rec["fit"]["serialised_bytes"] != 1 and rec["environment"]["sandbox"] != "landlock 99"


def test_without_the_sandbox_the_disk_route_would_win(tmp_path):
    """The same cheat in one process (no sandbox): it reads as well as the model repeats, so
    the refusals above are the sandbox's doing, not the cheat's bug."""
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(CHEATS / "zoo-at-score"), model, provenance, params={"path": str(CHECK_AR)},
                   isolate=False)
    assert rec["status"] == "ok", rec["error"]
    assert rec["metrics"]["read"]["sequence_accuracy"] >= rec["bounds"]["oracle"]["read_sequence_accuracy"] - 1e-6


def _denied(error: str) -> bool:
    """Landlock says PermissionError (torch's C++ writer: 'Permission denied'); under bubblewrap
    the path is not there at all (a private /tmp, an emptied model folder: "unknown model") or is read-only."""
    return any(p in error for p in ("PermissionError", "Permission denied", "No such file", "does not exist", "unknown model",
                                    "Read-only file system"))
