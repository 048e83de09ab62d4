"""The trainer learns, writes complete model folders, and resumes exactly."""

from __future__ import annotations

import json

import pytest

from benchmark.data import load_split
from benchmark.hashing import file_sha256
from benchmark.zoo.architectures import load_model
from benchmark.zoo.interface import repeat_correct
from benchmark.zoo.train import TrainConfig, train


def test_tiny_model_learns_short_sequences_well_above_chance(tiny_models):
    test = load_split("test")
    short = test.lengths <= 3
    for folder in tiny_models.values():
        model = load_model(str(folder))
        acc = repeat_correct(model, test.tokens[short], test.lengths[short]).float().mean().item()
        # chance for exact match on lengths 2-3 is below 1/900
        assert acc > 0.03, (folder.name, acc)  # >= 27x chance; `ar` reaches ~0.3, `ni` ~0.07 here


def test_model_folder_is_complete_and_pinned(tiny_models):
    folder = tiny_models["gru-h32-ar-s0"]
    info = json.loads((folder / "training.json").read_text())
    assert info["sha256"] == file_sha256(folder / "model.safetensors")
    assert info["recipe"]["lr"] == 1e-3 and info["recipe"]["weight_decay"] == 0.1
    card = (folder / "README.md").read_text()
    assert "model-index" in card and info["sha256"] in card and "exact_match" in card
    curve = json.loads((folder / "learning_curve.json").read_text())
    assert [c["step"] for c in curve] == [300, 600]


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_training_resumes_to_identical_weights(tmp_path):
    config = TrainConfig(hidden=12, members=(("ar", 5),), steps=40, eval_every=20, checkpoint_every=10)

    def stop_at_25(step: int) -> None:
        if step == 25:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(config, tmp_path / "resumed", progress=False, on_step=stop_at_25)
    assert list((tmp_path / "resumed" / ".checkpoints").glob("*.pt"))
    train(config, tmp_path / "resumed", progress=False)
    train(config, tmp_path / "straight", progress=False)
    a = file_sha256(tmp_path / "resumed" / "gru-h12-ar-s5" / "model.safetensors")
    b = file_sha256(tmp_path / "straight" / "gru-h12-ar-s5" / "model.safetensors")
    assert a == b
    assert not list((tmp_path / "resumed" / ".checkpoints").glob("*.pt"))  # no optimiser state left behind


def test_same_seed_same_weights(tmp_path):
    config = TrainConfig(hidden=12, members=(("ni", 1),), steps=15, eval_every=15)
    train(config, tmp_path / "a", progress=False)
    train(config, tmp_path / "b", progress=False)
    assert file_sha256(tmp_path / "a" / "gru-h12-ni-s1" / "model.safetensors") == \
        file_sha256(tmp_path / "b" / "gru-h12-ni-s1" / "model.safetensors")
