"""The recipes of docs/ARCHITECTURE.md, exercised: a toy track and a toy executor defined
here only, plus the executors' result-identity test and the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch

from benchmark.harness import tracks as track_registry
from benchmark.harness.cell import run_cell
from benchmark.harness.executors import CellTask, LocalExecutor, SequentialExecutor, execute
from benchmark.harness.runner import score_many
from benchmark.harness.schema import build_schema, schema_text
from benchmark.harness.submission import load_spec
from benchmark.harness.tracks.base import TrackQueries, TrackScore, call_read, mean
from benchmark.records import SCHEMA_PATH, seal
from tests.toy import OneHotModel

ROOT = Path(__file__).parent.parent
CHECK = ROOT / "benchmark" / "zoo" / "check"
METHODS = Path(__file__).parent / "methods"


class FirstTokenTrack:
    """A toy track: read only position 0 of every test state."""

    name = "first"
    metric = "accuracy"
    metric_names = ("accuracy",)

    def attempted(self, tracks, method):
        return "read" in tracks

    def queries(self, ctx):
        return TrackQueries({"states": ctx.states}, {"expected": ctx.tokens[:, 0]})

    def answer(self, method, public):
        h = public["states"]
        return {"pred": call_read(method, h, torch.zeros(h.shape[0], dtype=torch.int64)).argmax(-1)}

    def check(self, answers, public):
        assert answers["pred"].shape == public["states"].shape[:1]

    def score(self, ctx, q, answers, others):
        return TrackScore({"accuracy": mean(answers["pred"] == q.private["expected"])})


def test_a_new_track_is_one_object_plus_one_registry_line(monkeypatch):
    monkeypatch.setitem(track_registry.TRACKS, "first", FirstTokenTrack())  # the "one line"
    spec = load_spec(METHODS / "onehot-perfect")
    rec = run_cell(spec, OneHotModel(), {"name": "toy", "sha256": "0" * 64}, isolate=False)
    assert rec["status"] == "ok", rec["error"]
    assert rec["metrics"]["first"] == {"accuracy": 1.0}
    jsonschema.validate(rec, build_schema())  # the schema fragment comes with the track


def test_the_published_schema_is_built_from_the_track_registry():
    assert SCHEMA_PATH.read_text() == schema_text(), "run `python -m benchmark.harness.schema` to refresh it"


def test_every_hypothesis_a_method_may_declare_is_one_a_record_may_carry():
    """reencode-distil declares "none"; its records were refused when the schema's list was a copy."""
    import json

    from benchmark.harness.submission import HYPOTHESES

    assert json.loads(SCHEMA_PATH.read_text())["properties"]["method"]["properties"]["hypothesis"]["enum"] == list(HYPOTHESES)


class ReversedExecutor:
    """A toy executor: the cells in reverse order, one at a time."""

    def run(self, tasks):
        for task in reversed(tasks):
            yield task, execute(task)


def _comparable(record: dict) -> tuple:
    return record["metrics"], record["outcomes_sha256"], record["status"], record["method_parameters"]


def _cells(tmp_path: Path, executor, name: str) -> dict:
    spec = load_spec(ROOT / "baselines" / "random-subspace")
    models = [str(CHECK / "gru-h16-ar-check"), str(CHECK / "gru-h16-ni-check")]
    out = score_many(spec, models, tmp_path / name, progress=False, executor=executor)
    assert [reused for _, _, reused in out] == [False, False]
    return {model: _comparable(rec) for model, rec, _ in out}


@pytest.mark.slow
def test_every_executor_gives_the_sequential_records(tmp_path):
    sequential = _cells(tmp_path, SequentialExecutor(), "sequential")
    assert _cells(tmp_path, ReversedExecutor(), "reversed") == sequential
    assert _cells(tmp_path, LocalExecutor(2), "local") == sequential
    for name in ("sequential", "reversed", "local"):
        for path in (tmp_path / name).rglob("*.json"):
            assert json.loads(path.read_text())["status"] == "ok"


def test_a_cell_task_is_plain_data():
    import pickle

    from benchmark.harness.cell import ScoreSettings
    from benchmark.harness.isolation.launch import Limits

    task = CellTask(str(ROOT / "baselines" / "random-subspace"), "gru-h48-ar-s0", {}, ScoreSettings(), Limits())
    assert pickle.loads(pickle.dumps(task)) == task  # it can cross to a worker process or a cluster node
    assert seal({"a": 1})["record_sha256"]


def test_a_registered_executor_is_chosen_by_name_from_the_command_line(tmp_path, monkeypatch):
    """The executor recipe's last step: one registry line, and `score --executor NAME` runs it."""
    from benchmark import cli
    from benchmark.harness import backends

    used = []

    class Counting(ReversedExecutor):
        def run(self, tasks):
            used.append(len(tasks))
            yield from super().run(tasks)

    monkeypatch.setitem(backends.EXECUTORS, "counting", lambda workers=1, address=None: Counting())
    check = Path(__file__).parent.parent / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
    code = cli.main(["score", str(Path(__file__).parent / "gallery" / "good"), "--models", str(check), "--results",
                     str(tmp_path), "--executor", "counting", "--quiet", "--no-check"])
    assert code == 0 and used == [1] and list(tmp_path.rglob("gru-h16-ar-check.json"))
    assert cli.main(["score", "tests/gallery/good", "--executor", "nope", "--no-check"]) == 2
