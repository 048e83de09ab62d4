"""The reference GRU: save/load, strict loading, variants, the training ensemble."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from benchmark.data import TrainSampler, heldout_keys
from benchmark.task import MAX_LEN
from benchmark.zoo.architectures import load_model
from benchmark.zoo.ensemble import GRUEnsemble, sort_by_length
from benchmark.zoo.gru import RepeatGRU


@pytest.fixture
def batch():
    return TrainSampler(0, heldout_keys()).sample(64)


def test_save_load_round_trip_is_bit_identical(tmp_path, batch):
    torch.manual_seed(0)
    model = RepeatGRU(24, "ar").eval()
    model.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    h1, h2 = model.encode(batch.tokens, batch.lengths), loaded.encode(batch.tokens, batch.lengths)
    assert torch.equal(h1, h2)
    assert torch.equal(model.decode(h1, batch.tokens), loaded.decode(h2, batch.tokens))
    assert torch.equal(model.generate(h1), loaded.generate(h2))


def test_strict_loading_rejects_a_missing_tensor(tmp_path):
    RepeatGRU(24, "ni").save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["readout.bias"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="readout.bias"):
        load_model(str(tmp_path))


def test_ni_variant_ignores_decoder_inputs(batch):
    model = RepeatGRU(24, "ni")
    h = model.encode(batch.tokens, batch.lengths)
    other = torch.randint(0, 30, batch.tokens.shape)
    assert torch.equal(model.decode(h, batch.tokens), model.decode(h, other))
    assert torch.equal(model.decode(h), model.decode(h, other))


def test_ar_variant_reads_decoder_inputs(batch):
    model = RepeatGRU(24, "ar")
    h = model.encode(batch.tokens, batch.lengths)
    other = (batch.tokens + 1) % 30
    assert not torch.equal(model.decode(h, batch.tokens)[:, 1:], model.decode(h, other)[:, 1:])
    with pytest.raises(ValueError, match="teacher forcing"):
        model.decode(h)


def test_encode_uses_only_the_first_length_tokens(batch):
    model = RepeatGRU(24, "ar")
    noisy = batch.tokens.clone()
    pad = torch.arange(MAX_LEN)[None, :] >= batch.lengths[:, None]
    noisy[pad] = 7
    assert torch.equal(model.encode(batch.tokens, batch.lengths), model.encode(noisy, batch.lengths))


def test_greedy_generation_matches_teacher_forcing_on_its_own_output(batch):
    model = RepeatGRU(24, "ar")
    h = model.encode(batch.tokens, batch.lengths)
    generated = model.generate(h)
    assert torch.equal(model.decode(h, generated).argmax(-1), generated)


def test_ensemble_computes_what_its_members_compute(batch):
    torch.manual_seed(1)
    members = [RepeatGRU(20, "ar"), RepeatGRU(20, "ni"), RepeatGRU(20, "ar")]
    ens = GRUEnsemble(members)
    k = len(members)
    # unsorted for members 0 and 1, sorted longest-first for member 2: both must be exact
    tokens, lengths = batch.tokens.expand(k, -1, -1).clone(), batch.lengths.expand(k, -1).clone()
    sorted_t, sorted_l = sort_by_length(tokens, lengths)
    tokens[2], lengths[2] = sorted_t[2], sorted_l[2]
    logits = ens(tokens, lengths)
    valid = torch.arange(MAX_LEN) < lengths.unsqueeze(-1)
    for i, m in enumerate(members):
        ref = m.decode(m.encode(tokens[i], lengths[i]), tokens[i])
        assert torch.allclose(logits[i][valid[i]], ref[valid[i]], atol=1e-5)
        exported = ens.member(i)
        assert torch.equal(exported.decode(exported.encode(tokens[i], lengths[i]), tokens[i]), ref)
