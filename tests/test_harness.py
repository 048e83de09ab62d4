"""Scoring harness: metrics on hand-computed cases, bounds, determinism, resumption, cheats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from benchmark.data import load_split
from benchmark.harness.cell import run_cell
from benchmark.harness.context import model_context, oracle_metrics
from benchmark.harness.plan import make_plan
from benchmark.harness.runner import ScoreSettings, score_many
from benchmark.harness.submission import load_spec
from benchmark.records import read_record, record_files, validate
from benchmark.task import MAX_LEN
from benchmark.zoo.architectures import load_model
from benchmark.zoo.interface import correct_sequences
from benchmark.zoo.resolve import load_reference
from tests.toy import OneHotModel

METHODS = Path(__file__).parent / "methods"
TOY = {"name": "toy-onehot", "sha256": "0" * 64}


def _score_toy(method: str) -> dict:
    return run_cell(load_spec(METHODS / method), OneHotModel(), TOY, isolate=False)


def test_correct_sequences_ignores_positions_past_the_length():
    expected = torch.tensor([[1, 2, 0, 0, 0, 0, 0, 0, 0], [1, 2, 3, 0, 0, 0, 0, 0, 0]])
    predicted = torch.tensor([[1, 2, 9, 9, 9, 9, 9, 9, 9], [1, 2, 4, 0, 0, 0, 0, 0, 0]])
    assert correct_sequences(predicted, expected, torch.tensor([2, 3])).tolist() == [True, False]


def test_exact_method_on_the_toy_model_scores_one_everywhere():
    rec = _score_toy("onehot-perfect")
    assert rec["status"] == "ok", rec["error"]
    m = rec["metrics"]
    assert m["read"] == {"token_accuracy": 1.0, "sequence_accuracy": 1.0}
    assert m["write"] == {"iia": 1.0, "cause": 1.0, "isolate": 1.0, "kept_fraction": 1.0}
    assert m["interchange"] == {"iia": 1.0, "kept_fraction": 1.0}  # the default interchange, from read + write
    assert m["consistency"] == {"agreement": 1.0, "token_agreement": 1.0, "at_written": 1.0}


def test_write_at_the_wrong_position_matches_a_hand_computation():
    rec = _score_toy("onehot-wrong-position")
    test = load_split("test")
    plan = make_plan(test)
    n = len(test)
    rows = torch.arange(n)
    target = (plan.write_position + 1) % MAX_LEN
    # cause: position p keeps its old token, never the new one (new != old by construction)
    # isolate: position p+1 is changed unless p+1 >= L (then the write lands in an unused block)
    # or the token there already equals the new token.
    past_end = target >= test.lengths
    same = test.tokens[rows, target] == plan.write_token
    isolate = (past_end | same).float().mean().item()
    m = rec["metrics"]["write"]
    assert m["cause"] == 0.0 and m["iia"] == 0.0
    assert m["isolate"] == pytest.approx(isolate, abs=1e-12)


def test_random_method_scores_near_chance():
    rec = _score_toy("random-guess")
    m = rec["metrics"]
    assert abs(m["read"]["token_accuracy"] - 1 / 30) < 0.01
    assert m["write"]["iia"] < 0.01
    # chance: masks that pick nothing or only equal tokens, which doing nothing also gets right
    assert m["interchange"]["iia"] <= rec["bounds"]["identity"]["interchange_iia"] + 0.02


def test_oracle_scores_one_on_a_small_trained_model(tiny_models):
    model = load_model(tiny_models["gru-h32-ar-s0"])
    test = load_split("test")
    ctx = model_context(model, test, make_plan(test))
    assert ctx.write_keep.sum() > 100 and ctx.interchange_keep.sum() > 50
    bounds = oracle_metrics(ctx)
    assert bounds["write_iia"] == 1.0 and bounds["interchange_iia"] == 1.0


@pytest.mark.slow
def test_scoring_twice_gives_identical_metrics(tiny_models):
    spec = load_spec(Path(__file__).parent.parent / "baselines" / "random-subspace")
    model, prov = load_reference(str(tiny_models["gru-h32-ni-s0"]))
    a = run_cell(spec, model, prov)  # isolated, with a fresh random row order each time
    model, prov = load_reference(str(tiny_models["gru-h32-ni-s0"]))
    b = run_cell(spec, model, prov)
    assert a["status"] == "ok", a["error"]
    assert a["metrics"] == b["metrics"] and a["outcomes_sha256"] == b["outcomes_sha256"]


def test_a_method_keeping_the_model_is_refused_even_in_process():
    rec = _score_toy("encoder-cheat")
    assert rec["status"] == "failed"
    assert "method.model_ references the reference model" in rec["error"]
    assert rec["metrics"]["write"] is None and rec["outcomes_sha256"] is None
    validate(rec)


def test_records_carry_the_method_size_and_the_model_family():
    rec = _score_toy("onehot-perfect")
    assert rec["method_parameters"] == 0  # a hand-written method with no learned state
    assert rec["model"]["architecture"] == "custom" and rec["model"]["state_dim"] == 270


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_finished_cells(tiny_models, tmp_path):
    spec = load_spec(Path(__file__).parent.parent / "baselines" / "random-subspace")
    models = [str(tiny_models["gru-h32-ar-s0"]), str(tiny_models["gru-h32-ni-s0"])]
    first = score_many(spec, models[:1], tmp_path, progress=False)  # the run "stopped" after one cell
    path = tmp_path / "random-subspace" / "gru-h32-ar-s0.json"
    stamp = path.stat().st_mtime_ns
    second = score_many(spec, models, tmp_path, progress=False)
    assert [reused for _, _, reused in second] == [True, False]
    assert path.stat().st_mtime_ns == stamp
    assert second[0][1]["metrics"] == first[0][1]["metrics"]
    for name in ("gru-h32-ar-s0", "gru-h32-ni-s0"):
        read_record(tmp_path / "random-subspace" / f"{name}.json")  # schema + hash valid
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.slow
def test_changed_params_make_a_record_stale(tiny_models, tmp_path):
    spec = load_spec(Path(__file__).parent.parent / "baselines" / "random-subspace")
    model = [str(tiny_models["gru-h32-ar-s0"])]
    score_many(spec, model, tmp_path, progress=False)
    again = score_many(spec, model, tmp_path, progress=False, settings=ScoreSettings(seed=1))
    assert again[0][2] is False


def test_hand_edited_record_fails_validation(tmp_path):
    rec = _score_toy("onehot-perfect")
    rec["metrics"]["write"]["iia"] = 0.5
    with pytest.raises(Exception, match="record_sha256"):
        validate(rec)


def test_validation_reads_the_schema_as_it_is_now(tmp_path, monkeypatch):
    """The validator is built once per schema text (a leaderboard build validates 450-odd
    records); a schema edited in between is still the one applied."""
    import json

    from benchmark import records

    rec = _score_toy("onehot-perfect")
    validate(rec)
    schema = json.loads(records.SCHEMA_PATH.read_text())
    schema["required"] = [*schema["required"], "a_field_no_record_has"]
    stricter = tmp_path / "record.schema.json"
    stricter.write_text(json.dumps(schema))
    monkeypatch.setattr(records, "SCHEMA_PATH", stricter)
    with pytest.raises(Exception, match="a_field_no_record_has"):
        validate(rec)


COMMITTED = record_files(Path(__file__).parent.parent / "leaderboard" / "results")


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_records_match_the_schema(path):
    read_record(path)


def test_verify_compares_a_record_whose_track_went_missing_without_crashing():
    from benchmark.audit.verify import compare_exact

    old = _score_toy("onehot-perfect")
    new = {**old, "metrics": {**old["metrics"], "write": None}}
    check = compare_exact(old, new)
    assert not check.matches and "write: recorded scored, now not attempted" in check.detail


def test_verify_names_the_two_machines_when_a_record_differs_across_them():
    """Exact repeats hold on the recording machine; across CPUs the third decimal may move."""
    from benchmark.audit.verify import compare_exact

    old = _score_toy("onehot-perfect")
    moved = {**old["metrics"], "read": {**old["metrics"]["read"], "token_accuracy": 0.5}}
    same_machine = compare_exact(old, {**old, "metrics": moved})
    other_machine = compare_exact(old, {**old, "metrics": moved, "hardware": "another CPU, 1 threads"})
    assert not same_machine.matches and "note: recorded on" not in same_machine.detail
    assert not other_machine.matches and "re-scored on another CPU, 1 threads" in other_machine.detail
    assert "beyond the 99 % tolerance" in other_machine.detail  # 1.0 -> 0.5 is no float noise
    assert compare_exact(old, {**old, "hardware": "another CPU"}).matches  # identical results need no note
    base = {**old, "metrics": {**old["metrics"], "read": {**old["metrics"]["read"], "token_accuracy": 0.9}}}
    nudged = {**base["metrics"], "read": {**base["metrics"]["read"], "token_accuracy": 0.897}}  # float noise size
    across = compare_exact(base, {**base, "metrics": nudged, "hardware": "another CPU, 1 threads"})
    assert across.matches and across.detail.startswith("pass with tolerance"), across.detail
    assert not compare_exact(base, {**base, "metrics": nudged}).matches  # the recording machine: exact or nothing


def test_records_are_written_with_the_usual_file_mode(tmp_path):
    """mkstemp creates 0600 files; a record must be as readable as any file the user writes."""
    from benchmark.records import write_atomic

    path = tmp_path / "m" / "x.json"
    old = os.umask(0o022)
    try:
        write_atomic(path, {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_record_of_an_older_scoring_version_that_fails_the_schema_says_to_re_score():
    """After a scoring change the old records fail on some new metric field; the message names the cause."""
    rec = _score_toy("onehot-perfect")
    old = {**rec, "scoring_version": "3", "metrics": {**rec["metrics"], "consistency": {"both": 0.5}}}
    with pytest.raises(Exception, match=r"scoring version 3, this harness's is \d+: re-score it"):
        validate(old)
    with pytest.raises(Exception, match="record schema") as err:
        validate({**old, "scoring_version": rec["scoring_version"]})
    assert "re-score" not in str(err.value)


def test_fit_data_encodes_a_large_pool_in_chunks_and_gets_the_same_states(monkeypatch):
    """A sealed fit of linear-probe at 160,000 states failed on gru-h256-ar-s0: one encoder call
    over every row needed more than the 8 GB address space (nn.GRU projects all steps' inputs
    at once). `sample` encodes in chunks, and a chunk must not move a state by one bit, or a
    committed fit would change (leaderboard/verification/encode-chunks-s37.log: all 39
    embedded models at 100,000 and 200,000 rows)."""
    import benchmark.harness.interface as interface
    from benchmark.data import heldout_keys

    model, _ = load_reference("gru-h48-ar-s0")
    real, calls = model.encode, []

    def counted(tokens, lengths):
        calls.append(int(tokens.shape[0]))
        return real(tokens, lengths)

    monkeypatch.setattr(interface, "ENCODE_CHUNK", 1000)
    monkeypatch.setattr(model, "encode", counted)  # the real encoder, counted
    data = interface.FitData(model, heldout_keys(), seed=0, budget=10**6)
    batch = data.sample(2500)
    assert calls == [1000, 1000, 500]
    with torch.no_grad():
        assert torch.equal(batch.states, real(batch.tokens, batch.lengths))
    # A method's own encoder calls (FrozenModel.encode) are chunked the same way.
    calls.clear()
    h = interface.FrozenModel(model, data).encode(batch.tokens[:1500], batch.lengths[:1500])
    assert calls == [1000, 500] and torch.equal(h, batch.states[:1500])


def test_seed_everything_asks_for_deterministic_kernels_without_importing_inductor():
    """Every fit and scoring worker seeds before method code runs. The public
    `torch.use_deterministic_algorithms` imports inductor, dynamo and sympy (1-2 s per fresh
    process); the harness sets the same flags without them, inductor's included."""
    import subprocess
    import sys

    code = ("import sys, torch; from benchmark.harness.interface import seed_everything; seed_everything(0); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(), "
            "'torch._dynamo' in sys.modules, 'sympy' in sys.modules); "
            "import torch._inductor.config as c; print(c.deterministic)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent,
                         env={k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_DETERMINISTIC"}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True", "False", "False", "True"], run.stdout
