"""Splits are deterministic, pinned, capped and disjoint from training data."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.data import (
    SPLITS,
    TrainSampler,
    build_split,
    heldout_keys,
    load_split,
    read_parquet,
    split_hash,
    write_parquet,
)
from benchmark.errors import OnionbenchError
from benchmark.task import MAX_LEN, MIN_LEN, VOCAB_SIZE


@pytest.mark.parametrize("name", list(SPLITS))
def test_split_regenerates_to_pinned_hash(name):
    assert split_hash(build_split(name)) == SPLITS[name].sha256


@pytest.mark.parametrize("name", list(SPLITS))
def test_shipped_split_matches_generator(name):
    shipped, fresh = load_split(name), build_split(name)
    assert (shipped.tokens == fresh.tokens).all() and (shipped.lengths == fresh.lengths).all()


def test_test_split_shape_caps_and_uniqueness():
    test = load_split("test")
    assert len(test) == 5000
    assert set(test.lengths.tolist()) == set(range(MIN_LEN, MAX_LEN + 1))
    assert (test.lengths == 2).sum() == 180  # 20 % of 900
    assert len(np.unique(test.keys())) == 5000
    assert test.tokens.max() < VOCAB_SIZE


def test_valid_split_excludes_test():
    assert not np.isin(load_split("valid").keys(), load_split("test").keys()).any()


def test_sampler_never_yields_a_heldout_sequence():
    held = heldout_keys()
    sampler = TrainSampler(0, held)
    keys = np.concatenate([sampler.sample(4096).keys() for _ in range(30)])
    assert not np.isin(keys, held).any()
    # length 2 is where 20 % of all sequences are held out, so exclusion is really exercised
    assert len(np.unique(keys[keys < 3 * VOCAB_SIZE**MAX_LEN])) > 500


def test_sampler_state_resumes_the_same_stream():
    held = heldout_keys()
    a = TrainSampler(3, held)
    a.sample(100)
    state = a.state()
    first = a.sample(50)
    b = TrainSampler(3, held)
    b.load_state(state)
    assert (b.sample(50).tokens == first.tokens).all()


def test_parquet_round_trip(tmp_path):
    test = load_split("test")
    write_parquet(test[:100], tmp_path / "x.parquet")
    back = read_parquet(tmp_path / "x.parquet")
    assert split_hash(back) == split_hash(test[:100])


def test_edited_split_file_is_rejected(tmp_path):
    test = load_split("test")
    edited = test[:]
    edited.tokens[0, 0] = (edited.tokens[0, 0] + 1) % VOCAB_SIZE
    write_parquet(edited, tmp_path / "test-v1.parquet")
    with pytest.raises(OnionbenchError, match="hash"):
        load_split("test", tmp_path)
