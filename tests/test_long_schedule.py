"""benchmarks/long_schedule.py: the driven fit is the baseline's own, and a resumed run is an uninterrupted one.

Both claims carry the issue #13 long-schedule numbers: a curve read off one long fit only
stands for k-step fits if the first k driven steps equal `fit` with steps=k, and a run
spread over several sessions only counts if resuming changes nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from benchmark.data import load_split
from benchmark.harness.cell import Evaluation, run_cell
from benchmark.harness.plan import PLAN_SEED
from benchmark.harness.submission import resolve
from benchmark.zoo.resolve import load_reference

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
SMALL = {"linear-das": {"pool_size": 800, "read_samples": 800, "lr": 1e-2, "init": "random", "schedule": "constant"},
         "onion": {"pool_size": 800, "read_steps": 20, "lr": 1e-2, "weight_decay": 0.1, "warmup": 0.0, "clip": 0.0}}


def _benchmark_script(name: str):
    """The study behind benchmarks/<name>.py (a thin script since issue 32)."""
    return importlib.import_module(f"benchmark.studies.{name}")


@pytest.fixture(scope="module")
def script():
    return _benchmark_script("long_schedule")


@pytest.fixture(scope="module")
def paper_finding():
    return _benchmark_script("paper_finding")


@pytest.fixture(scope="module")
def check_model():
    return load_reference(str(CHECK))


def test_linear_das_driven_fit_equals_the_harness_fit(script, check_model, tmp_path):
    """Same valid-split metrics as `run_cell` (the baseline's own fit, pickled and scored) at steps=12."""
    model, provenance = check_model
    spec = resolve("linear-das")
    params = SMALL["linear-das"]
    curve = script.run_schedule(spec, model, provenance, params, [12], tmp_path / "c.pt", tmp_path / "c.json",
                                save_every=5)
    valid = Evaluation(load_split("valid"), PLAN_SEED, name="valid")
    record = run_cell(spec, model, provenance, params={**params, "steps": 12}, evaluation=valid, isolate=False)
    assert record["status"] == "ok", record["error"]
    assert curve["points"][0]["metrics"] == record["metrics"]
    assert curve["points"][0]["by_length"] == record["by_length"]


@pytest.mark.parametrize("method", ["linear-das", "onion"])
def test_a_resumed_run_equals_an_uninterrupted_one(script, check_model, tmp_path, method):
    model, provenance = check_model
    spec = resolve(method)
    params = SMALL[method]
    whole = script.run_schedule(spec, model, provenance, params, [4, 10], tmp_path / "a.pt", tmp_path / "a.json",
                                save_every=3)
    script.run_schedule(spec, model, provenance, params, [4, 10], tmp_path / "b.pt", tmp_path / "b.json",
                        save_every=3, stop_after=7)  # as if the session ended at step 7
    assert torch.load(tmp_path / "b.pt", weights_only=False)["step"] == 7
    assert [p["steps"] for p in json.loads((tmp_path / "b.json").read_text())["points"]] == [4]
    resumed = script.run_schedule(spec, model, provenance, params, [4, 10], tmp_path / "b.pt", tmp_path / "b.json",
                                  save_every=3)
    strip = [{k: v for k, v in p.items() if k != "seconds_since_start"} for p in whole["points"]]
    assert [{k: v for k, v in p.items() if k != "seconds_since_start"} for p in resumed["points"]] == strip
    a, b = (torch.load(tmp_path / f"{x}.pt", weights_only=False) for x in "ab")
    assert a["step"] == b["step"] == 10
    tensors = "net" if method == "linear-das" else "params"
    for name, value in a[tensors].items():
        assert torch.equal(value, b[tensors][name]), name


def test_a_checkpoint_from_another_pool_is_refused(script, check_model, tmp_path):
    model, provenance = check_model
    spec = resolve("linear-das")
    script.run_schedule(spec, model, provenance, SMALL["linear-das"], [3], tmp_path / "c.pt", tmp_path / "c.json")
    with pytest.raises(SystemExit, match="another training pool"):
        script.run_schedule(spec, model, provenance, {**SMALL["linear-das"], "pool_size": 900}, [6],
                            tmp_path / "c.pt", tmp_path / "d.json")


def test_wilson_interval():
    from benchmark.board.stats import wilson

    lo, hi = wilson(0.5, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.404, 0.596)
    lo, hi = wilson(0.0, 136)
    assert lo == 0.0 and 0.02 < hi < 0.03  # an observed zero still leaves an upper bound


@pytest.mark.parametrize(("rate", "n", "verdict"), [(0.9, 200, "exceeds 0.5"), (0.05, 136, "below 0.5"),
                                                     (0.5, 10, "undecided")])
def test_paper_finding_gives_the_length_9_verdict_with_its_interval(paper_finding, tmp_path, rate, n, verdict):
    point = {"steps": 60000, "metrics": {"read": None, "write": {"iia": 0.4}, "interchange": {"iia": 0.5}},
             "by_length": {"interchange": {"9": rate}}, "kept_by_length": {"interchange": {"9": n}}}
    curve = {"method": "linear-das", "model": "m", "params": {"steps": 60000}, "points": [point]}
    (tmp_path / "linear-das").mkdir()
    (tmp_path / "linear-das" / "m-long.json").write_text(json.dumps(curve))
    table = paper_finding.long_schedule(paper_finding.long_runs(tmp_path))
    row = next(line for line in table.splitlines() if line.startswith("| linear-das"))
    assert row.rstrip(" |").endswith(verdict)
    assert f"n={n}" in row


def test_paper_finding_pairs_only_complete_long_runs(paper_finding, tmp_path):
    """Verdicts under the paper's schedule: a run still under way must not count, and the
    pairing must follow the models (onion far ahead on two models -> "onion better")."""

    def curve(method: str, model: str, write: float, steps: int, l9: float = 0.1) -> None:
        point = {"steps": steps, "metrics": {"read": None, "write": {"iia": write}, "interchange": {"iia": write / 2}},
                 "by_length": {"interchange": {"9": l9}}, "kept_by_length": {"interchange": {"9": 138}}}
        (tmp_path / method).mkdir(exist_ok=True)
        (tmp_path / method / f"{model}-long.json").write_text(json.dumps(
            {"method": method, "model": model, "params": {"steps": 60000}, "points": [point]}))

    def verdicts() -> str:
        return paper_finding.long_verdicts(paper_finding.long_runs(tmp_path))

    curve("onion", "gru-h256-ar-s0", 0.94, 60000)
    curve("onion", "gru-h256-ar-s1", 0.95, 60000)
    curve("linear-das", "gru-h256-ar-s0", 0.37, 60000)
    curve("linear-das", "gru-h256-ar-s1", 0.40, 60000)
    curve("linear-das", "gru-h256-ar-s2", 0.99, 12000, l9=0.99)  # under way: ignored
    line = next(x for x in verdicts().splitlines() if "N=256 ar" in x)
    assert "write: onion better" in line and "2 models" in line
    assert "exceeds 0.5 on 0 of 2 models, is below it on 2" in line
    curve("linear-das", "gru-h256-ar-s2", 0.99, 60000, l9=0.99)  # now finished, and linear on length 9
    line = next(x for x in verdicts().splitlines() if "N=256 ar" in x)
    assert "exceeds 0.5 on 1 of 3 models" in line


@pytest.mark.slow
def test_paper_finding_md_is_what_the_script_makes_of_the_committed_records_and_curves(paper_finding):
    from benchmark.board.leaderboard import load_records

    text = paper_finding.report(load_records(ROOT / "leaderboard" / "results")[0])
    assert (ROOT / "docs" / "PAPER_FINDING.md").read_text() == paper_finding.document(text), (
        "docs/PAPER_FINDING.md is stale: run python benchmarks/paper_finding.py --out docs/PAPER_FINDING.md")


def test_the_length_9_protocol_section_reports_every_model_and_marks_unfinished_runs(paper_finding, tmp_path):
    curve = {"method": "linear-das", "model": "gru-h256-ar-s1", "params": {"steps": 60000, "lengths": [9]},
             "points": [{"steps": 12000, "metrics": {}, "by_length": {"interchange": {"9": 0.2}},
                         "kept_by_length": {"interchange": {"9": 100}}}]}
    (tmp_path / "linear-das").mkdir()
    (tmp_path / "linear-das" / "gru-h256-ar-s1-lengths9-long.json").write_text(json.dumps(curve))
    text = paper_finding.length_9_protocol(paper_finding.long_runs(tmp_path, protocol="length 9"))
    assert text.count("not run yet") == 5 and "below 0.5 so far (run unfinished)" in text
    assert paper_finding.long_runs(tmp_path) == []  # not a mixed-length run


def test_the_driver_refuses_the_defaults_start_and_schedule_it_cannot_replay(script, check_model):
    """The driver's loop is the paper's: random start, constant lr. Given linear-das's default
    (class-means start, cosine decay) it would silently train something else under the
    default's name; it stops instead, and `main` passes the paper's two (PAPER_EXTRA)."""
    model, _ = check_model
    spec = resolve("linear-das")
    with pytest.raises(ValueError, match="paper's start and constant lr only"):
        script.start(spec, model, {"pool_size": 800})
    assert script.PAPER_EXTRA["linear-das"] == {"init": "random", "schedule": "constant"}


def test_each_run_is_its_baselines_public_resumable_and_a_method_without_one_is_refused(script, check_model):
    """Issue 32: the driver reaches onion's and linear-das's fits through a public
    `resumable(model, data)`, not through private names; a method without one is refused in one line."""
    model, _ = check_model
    for method, name in (("onion", "OnionRun"), ("linear-das", "LinearDASRun")):
        run = script.start(resolve(method), model, SMALL[method])
        assert type(run).__name__ == name and type(run).__module__ == type(run.method).__module__
    assert script.resumable_methods() == ["linear-das", "onion"]  # derived from the classes, no list in the study
    with pytest.raises(SystemExit, match="no resumable run"):
        script.start(resolve("mlp-probe"), model, {})
    # a warm-up is a fraction of a total the run does not know: refused, not silently dropped
    with pytest.raises(ValueError, match="constant lr: pass warmup=0"):
        script.start(resolve("onion"), model, {**SMALL["onion"], "warmup": 0.05})
    assert script.PAPER_EXTRA["onion"] == {"warmup": 0.0, "clip": 0.0}  # PAPER.md: none of either
