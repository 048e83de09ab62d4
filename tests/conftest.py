"""Shared fixtures: small trained models, built once per test session."""

from __future__ import annotations

import pytest

from benchmark.zoo.train import TrainConfig, train


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """A N=32 `ar` and `ni` pair trained for a few seconds (far from converged, but learned)."""
    out = tmp_path_factory.mktemp("tiny")
    config = TrainConfig(hidden=32, members=(("ar", 0), ("ni", 0)), steps=600, eval_every=300)
    folders = train(config, out, progress=False)
    return {folder.name: folder for folder in folders}
