"""The architecture registry: naming, counts, strict folders, dispatch, the LSTM, and adding a family."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from benchmark.data import TrainSampler, heldout_keys, load_split
from benchmark.errors import OnionbenchError
from benchmark.task import MAX_LEN, VOCAB_SIZE
from benchmark.zoo.architectures import (
    ARCHITECTURES,
    Architecture,
    ModelName,
    WeightsMismatchError,
    load_model,
    model_name,
    parse_name,
    recurrent_parameters,
    save_model,
)
from benchmark.zoo.ensemble import sort_by_length
from benchmark.zoo.gru import RepeatGRU
from benchmark.zoo.interface import check_variant, decoder_inputs, embedding_rows, repeat_correct
from benchmark.zoo.lstm import LSTMEnsemble, RepeatLSTM
from benchmark.zoo.registry import ZOO_DIR
from benchmark.zoo.resolve import load_reference
from benchmark.zoo.train import TrainConfig, train


@pytest.fixture
def batch():
    return TrainSampler(0, heldout_keys()).sample(64)


# --- naming ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("parts", [("gru", 64, "ar", 0), ("lstm", 1024, "ni", 2), ("toy_rnn2", 5, "ar", 17)])
def test_names_round_trip(parts):
    name = model_name(*parts)
    assert parse_name(name) == ModelName(*parts)
    assert model_name(*parse_name(name)) == name


@pytest.mark.parametrize("name", ["gru-h16-ar-check", "my-model", "gru-h064-ar-s0", "gru-h64-xx-s0", "gru-h64-ar-s01",
                                  "GRU-h64-ar-s0", "gru-h64-ar-s0/"])
def test_names_outside_the_scheme_parse_to_none(name):
    assert parse_name(name) is None


def test_an_unnameable_model_is_refused():
    with pytest.raises(ValueError, match="variant one of ar, ni"):
        model_name("gru", 64, "xx", 0)
    with pytest.raises(ValueError):
        model_name("my-gru", 64, "ar", 0)


# --- state size and parameter counts ----------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("variant", ["ar", "ni"])
def test_counts_follow_from_hidden_size_and_variant(arch, variant):
    family = ARCHITECTURES[arch]
    for n in (8, 48):
        model = family.build(n, variant)
        assert family.parameters(n, variant) == sum(p.numel() for p in model.parameters())
        assert family.state_dim(n) == model.state_dim
    assert ARCHITECTURES["lstm"].state_dim(48) == 96  # (h, c)


# --- the LSTM -------------------------------------------------------------------------------------

def test_lstm_state_is_h_then_c_and_the_decoder_uses_both(batch):
    torch.manual_seed(0)
    model = RepeatLSTM(16, "ar")
    state = model.encode(batch.tokens, batch.lengths)
    assert state.shape == (64, 32) and model.state_dim == 32
    first = batch.tokens[:, :1]  # after one token, h and c follow from one LSTM step from zero
    _, (h, c) = model.lstm(model.embedding(first))
    assert torch.allclose(model.encode(first, torch.ones(64, dtype=torch.int64)), torch.cat([h[0], c[0]], -1))
    for half in (slice(0, 16), slice(16, 32)):
        edited = state.clone()
        edited[:, half] += 1.0
        assert not torch.allclose(model.decode(edited, batch.tokens), model.decode(state, batch.tokens))


def test_lstm_encode_ignores_padding_and_generation_is_greedy(batch):
    for variant in ("ar", "ni"):
        model = RepeatLSTM(16, variant)
        noisy = batch.tokens.clone()
        noisy[torch.arange(MAX_LEN)[None, :] >= batch.lengths[:, None]] = 7
        state = model.encode(batch.tokens, batch.lengths)
        assert torch.equal(model.encode(noisy, batch.lengths), state)
        generated = model.generate(state)
        assert torch.equal(model.decode(state, generated).argmax(-1), generated)


def test_lstm_ensemble_computes_what_its_members_compute(batch):
    torch.manual_seed(1)
    members = [RepeatLSTM(20, "ar"), RepeatLSTM(20, "ni"), RepeatLSTM(20, "ar")]
    ens = LSTMEnsemble(members)
    k = len(members)
    tokens, lengths = batch.tokens.expand(k, -1, -1).clone(), batch.lengths.expand(k, -1).clone()
    sorted_t, sorted_l = sort_by_length(tokens, lengths)
    tokens[2], lengths[2] = sorted_t[2], sorted_l[2]  # unsorted and sorted batches must both be exact
    logits = ens(tokens, lengths)
    valid = torch.arange(MAX_LEN) < lengths.unsqueeze(-1)
    for i, m in enumerate(members):
        ref = m.decode(m.encode(tokens[i], lengths[i]), tokens[i])
        assert torch.allclose(logits[i][valid[i]], ref[valid[i]], atol=1e-5)
        exported = ens.member(i)
        assert torch.equal(exported.decode(exported.encode(tokens[i], lengths[i]), tokens[i]), ref)


def test_lstm_save_load_is_bit_identical_and_strict(tmp_path, batch):
    torch.manual_seed(0)
    model = RepeatLSTM(24, "ni").eval()
    save_model(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"architecture": "lstm", "hidden_size": 24,
                                                                  "variant": "ni"}
    loaded = load_model(tmp_path)
    assert isinstance(loaded, RepeatLSTM) and not loaded.training
    state = model.encode(batch.tokens, batch.lengths)
    assert torch.equal(loaded.encode(batch.tokens, batch.lengths), state)
    assert torch.equal(loaded.generate(state), model.generate(state))
    weights = load_file(tmp_path / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k != "lstm.bias_hh_l0"}, tmp_path / "model.safetensors")
    with pytest.raises(WeightsMismatchError, match="lstm.bias_hh_l0"):
        load_model(tmp_path)
    save_file({**weights, "extra.weight": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="extra.weight"):  # also a RuntimeError, as torch's strict loading
        load_model(tmp_path)


# --- dispatch on config.json ------------------------------------------------------------------------

def test_a_config_without_architecture_is_a_gru():
    folder = ZOO_DIR / "gru-h48-ar-s0"
    assert "architecture" not in json.loads((folder / "config.json").read_text())  # committed before the key
    assert type(load_model(folder)) is RepeatGRU


def test_dispatch_follows_config_json(tmp_path):
    save_model(RepeatLSTM(8, "ar"), tmp_path)
    assert type(load_model(tmp_path)) is RepeatLSTM
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "gru"}))
    with pytest.raises(WeightsMismatchError, match="gru model"):  # LSTM weights do not fit a GRU
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "transformer"}))
    with pytest.raises(OnionbenchError, match="known: gru, lstm"):
        load_model(tmp_path)


# --- training ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_lstm_learns_in_seconds_and_its_folder_says_lstm(tmp_path):
    config = TrainConfig(hidden=32, members=(("ar", 0),), steps=500, eval_every=250, architecture="lstm")
    (folder,) = train(config, tmp_path, progress=False)
    assert folder.name == "lstm-h32-ar-s0"
    model, provenance = load_reference(str(folder))
    assert isinstance(model, RepeatLSTM)
    assert provenance | {"sha256": None} == {"name": "lstm-h32-ar-s0", "sha256": None, "architecture": "lstm",
                                             "hidden_size": 32, "variant": "ar", "seed": 0, "tier": None}
    test = load_split("test")
    short = test.lengths <= 3
    accuracy = repeat_correct(model, test.tokens[short], test.lengths[short]).float().mean().item()
    assert accuracy > 0.05, accuracy  # chance is below 1/900; about 0.3 here
    info = json.loads((folder / "training.json").read_text())
    assert info["architecture"] == "lstm" and info["state_dim"] == 64 and info["recipe"]["architecture"] == "lstm"
    card = (folder / "README.md").read_text()
    assert "single-layer LSTM" in card and "GRU" not in card.split("## Citation")[0]


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_lstm_training_resumes_to_identical_weights(tmp_path):
    config = TrainConfig(hidden=8, members=(("ni", 3),), steps=30, eval_every=30, checkpoint_every=10,
                         architecture="lstm")

    def stop_at_15(step: int) -> None:
        if step == 15:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(config, tmp_path / "resumed", progress=False, on_step=stop_at_15)
    train(config, tmp_path / "resumed", progress=False)
    train(config, tmp_path / "straight", progress=False)
    name = "lstm-h8-ni-s3/model.safetensors"
    assert (tmp_path / "resumed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()


# --- the recipe of docs/ARCHITECTURE.md, "Adding an architecture" -----------------------------------

class ToyRNN(nn.Module):
    """A new family in a few lines: a vanilla tanh RNN with the reference-model interface."""

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__()
        check_variant(variant)
        self.hidden_size, self.variant = hidden_size, variant
        self.embedding = nn.Embedding(embedding_rows(variant), hidden_size)
        self.rnn = nn.RNN(hidden_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, VOCAB_SIZE)

    @property
    def state_dim(self) -> int:
        return self.hidden_size

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.embedding(tokens))
        return outputs[torch.arange(len(lengths)), lengths - 1]

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        inputs = decoder_inputs(self.variant, targets, h.shape[0])
        return self.readout(self.rnn(self.embedding(inputs), h.unsqueeze(0).contiguous())[0])

    @torch.no_grad()
    def generate(self, h: torch.Tensor) -> torch.Tensor:
        tokens = torch.zeros(h.shape[0], MAX_LEN, dtype=torch.int64)
        for t in range(MAX_LEN):  # position t reads only tokens before t
            tokens[:, t] = self.decode(h, tokens)[:, t].argmax(-1)
        return tokens


def test_a_new_architecture_is_one_class_plus_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "toy", Architecture(
        "toy", ToyRNN, state_dim=lambda n: n, parameters=recurrent_parameters(1), title="single-layer tanh RNN",
        state="the final encoder state `h`"))  # no batched ensemble: trained in a plain loop
    assert ARCHITECTURES["toy"].parameters(12, "ni") == sum(p.numel() for p in ToyRNN(12, "ni").parameters())
    config = TrainConfig(hidden=12, members=(("ar", 0), ("ni", 1)), steps=20, eval_every=20, architecture="toy")
    folders = train(config, tmp_path, progress=False)
    assert [f.name for f in folders] == ["toy-h12-ar-s0", "toy-h12-ni-s1"]
    model, provenance = load_reference(str(folders[1]))
    assert type(model) is ToyRNN and model.variant == "ni"
    assert (provenance["architecture"], provenance["seed"]) == ("toy", 1)
    assert "single-layer tanh RNN" in (folders[1] / "README.md").read_text()
