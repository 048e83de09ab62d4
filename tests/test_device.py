"""`--device`: the reference models are device-clean, a GPU cell is its own cell, and a bad
device is one clear line before any cell runs.

Tests run on the CPU (CI has no GPU). Device-cleanliness is checked on PyTorch's `meta`
device under `_one_device`, which refuses any torch call whose tensor arguments sit on two
devices (meta alone lets a CPU index into a meta embedding through; CUDA would not): a
model that builds a CPU tensor inside `encode`, `decode` or `generate` fails here as it
would on a GPU. The tests marked `cuda` run a whole cell on a GPU, only where one is present.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from benchmark.data import load_split
from benchmark.errors import OnionbenchError
from benchmark.hardware import check_device
from benchmark.harness.cell import ScoreSettings, cell_inputs, run_cell
from benchmark.harness.submission import load_spec, resolve
from benchmark.records import cell_key
from benchmark.zoo.resolve import load_reference

ROOT = Path(__file__).parent.parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _one_device(TorchFunctionMode):  # noqa: N801 - used as a context manager
    """Refuse a torch call that mixes devices (0-dim CPU tensors aside, as CUDA allows them)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        devices = {t.device.type for t in tensors if t.dim() or t.device.type != "cpu"}
        if len(devices) > 1:
            raise AssertionError(f"{getattr(func, '__name__', func)} mixes devices {sorted(devices)}")
        return func(*args, **kwargs)


def _meta_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, 30, (4, 9), device="meta")
    return tokens, torch.empty(4, dtype=torch.int64, device="meta")


@pytest.mark.parametrize("name", ["gru-h48-ar-s0", "gru-h48-ni-s0", "linear_coded-h64-ni-s0"])
def test_every_model_call_stays_on_the_model_device(name):
    model = load_reference(name)[0].to("meta")
    tokens, lengths = _meta_inputs()
    with _one_device():
        h = model.encode(tokens, lengths)
        outputs = (h, model.decode(h, tokens), model.generate(h))
    assert all(t.device.type == "meta" for t in outputs)
    assert outputs[1].shape == (4, 9, 30) and outputs[2].shape == (4, 9)


@pytest.mark.parametrize("name", ["lstm-h48-ar-s0", "lstm-h48-ni-s0", "onion_coded-h64-ar-s0",
                                  "hybrid_coded-h64-ar-s0"])
def test_decoders_stay_on_the_model_device(name):
    """The calls that depend on values (the LSTM's loop over lengths, the onion's greedy peel)
    cannot run on `meta`; the decoders that the harness trains through still must."""
    model = load_reference(name)[0].to("meta")
    tokens, _ = _meta_inputs()
    h = torch.empty(4, model.state_dim, device="meta")
    with _one_device():
        assert model.decode(h, tokens).device.type == "meta"
        if name.startswith("lstm"):
            assert model.generate(h).device.type == "meta"


def test_a_device_this_machine_lacks_is_refused_with_what_to_do():
    with pytest.raises(OnionbenchError, match="not a torch device"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(OnionbenchError, match="no CUDA GPU"):
            check_device("cuda")
    assert check_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_score_on_a_missing_gpu_is_one_line_and_runs_nothing(tmp_path):
    run = subprocess.run([sys.executable, "-m", "benchmark.cli", "score", "random-subspace", "--models",
                          "gru-h48-ar-s0", "--device", "cuda", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if line.strip()] == [
        line for line in run.stderr.splitlines() if "--device cuda" in line]
    assert not any(tmp_path.iterdir())


def test_a_gpu_record_is_not_up_to_date_for_a_cpu_run():
    """Floats differ across devices, so the device is part of the cell's key; a CPU record
    (no `fit.device`) keeps the key it always had, so no committed record went stale."""
    spec = resolve("random-subspace")
    test = load_split("test")
    cpu = cell_inputs(spec, test, ScoreSettings(), spec.params)
    gpu = cell_inputs(spec, test, ScoreSettings(device="cuda"), spec.params)
    record = {"benchmark_version": cpu["benchmark_version"], "scoring_version": cpu["scoring_version"],
              "method": {"source_sha256": cpu["method_sha256"], "params": cpu["params"]},
              "model": {"sha256": "0" * 64}, "split": {"sha256": cpu["split_sha256"]},
              "plan_seed": cpu["plan_seed"], "seed": cpu["seed"], "fit": {"budget": cpu["budget"]}}
    assert cell_key(record) == {**cpu, "model_sha256": "0" * 64}
    assert cell_key(record) != {**gpu, "model_sha256": "0" * 64}
    record["fit"]["device"] = "cuda"
    assert cell_key(record) == {**gpu, "model_sha256": "0" * 64}


@cuda
def test_a_cell_fitted_on_the_gpu_is_scored_on_the_cpu_like_a_cpu_cell():
    """onion fits on the GPU through the device-following FrozenModel; scoring on the CPU
    loads it. Floats differ, so the metrics are compared with a tolerance, not exactly."""
    spec = load_spec(ROOT / "baselines" / "onion")
    model, provenance = load_reference("gru-h48-ar-s0")
    params = {**spec.params, "steps": 300, "read_steps": 300}
    cpu = run_cell(spec, model, provenance, params=params)
    gpu = run_cell(spec, model, provenance, params=params, settings=ScoreSettings(device="cuda"))
    assert gpu["status"] == "ok", gpu["error"]
    assert gpu["fit"]["device"] == "cuda" and "device" not in cpu["fit"]
    assert abs(gpu["metrics"]["write"]["iia"] - cpu["metrics"]["write"]["iia"]) < 0.05
    assert next(model.parameters()).device.type == "cpu"  # the caller's model was not moved


@cuda
def test_a_weight_copy_made_on_the_gpu_is_still_refused():
    from benchmark.harness.guard import Forbidden, ForbiddenStateError, serialise

    model = load_reference("gru-h48-ar-s0")[0].to("cuda")

    class Keeper:
        pass

    keeper = Keeper()
    keeper.w = model.readout.weight.detach().clone().cpu()  # a CPU copy of a GPU weight
    with pytest.raises(ForbiddenStateError, match="copy of a reference-model weight"):
        serialise(keeper, Forbidden.of(model))
    keeper.w = torch.randn(3, 3, device="cuda")
    blob, _ = serialise(keeper, Forbidden.of(model))
    assert pickle.loads(blob).w.device.type == "cpu"  # the scoring process has no GPU to load it on
