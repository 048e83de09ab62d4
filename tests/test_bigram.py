"""benchmark/studies/bigram.py: the paper's bigram test (issue 30 item 2), its inputs, its
calibration, and that the committed data are current."""

from __future__ import annotations

import pytest
import torch

from benchmark.studies import bigram
from benchmark.task import MAX_LEN, VOCAB_SIZE

P, V = MAX_LEN, VOCAB_SIZE


def test_the_inputs_are_the_papers():
    """Base: the original but at p; source: the original at p-1, p, p+1, random elsewhere."""
    tokens = torch.randint(0, V, (400, P), generator=torch.Generator().manual_seed(0))
    base, source, p = bigram.bigram_inputs(tokens, torch.Generator().manual_seed(1))
    cols = torch.arange(P)[None, :]
    assert bool(((base == tokens) | (cols == p[:, None])).all())
    near = (cols - p[:, None]).abs() <= 1
    assert bool((source[near] == tokens[near]).all())
    assert float((source[~near] != tokens[~near]).float().mean()) > 0.9
    assert set(p.tolist()) == set(range(P))


class _OneHotModel:
    """A toy model with an exact unigram code: coordinate p * V + t is 1 when position p holds t."""

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(tokens, V).float().flatten(1)

    def generate(self, h: torch.Tensor) -> torch.Tensor:
        return h.view(-1, P, V).argmax(-1)


def _pairs_owner(keep_all: bool = False) -> torch.Tensor:
    """Position p's coordinates owned by pair min(p, 7); or all kept from the base."""
    owner = torch.arange(P * V) // V
    return torch.full_like(owner, P - 1) if keep_all else owner.clamp(max=P - 2)


def test_a_unigram_code_written_as_pairs_passes_and_keeping_everything_fails():
    """The test is right on an exact code, and fails when no pair moves (a mutation of the swap)."""
    tokens = torch.randint(0, V, (300, P), generator=torch.Generator().manual_seed(2))
    model, rotation = _OneHotModel(), torch.eye(P * V)
    hits, cases = bigram.bigram_test(model, rotation, _pairs_owner(), tokens)
    assert cases == 300 and hits == 300
    hits, _ = bigram.bigram_test(model, rotation, _pairs_owner(keep_all=True), tokens)
    assert hits < 30  # only where the random replacement drew the original token


def test_the_committed_data_are_current_and_in_paper_finding():
    """Each committed file was made by this study version from these weights and this method source."""
    from benchmark.harness.submission import resolve
    from benchmark.zoo.registry import load_registry

    registry, method_sha = load_registry(), resolve(bigram.METHOD).source_sha256()
    control_sha = resolve(bigram.CONTROL).source_sha256()
    entries = bigram.load_all()
    assert entries, "no bigram data: run python -m benchmark.studies.bigram MODEL ..."
    for e in entries:
        path = bigram.OUT / f"{e['model']}.json"
        assert bigram.is_current(path, registry[e["model"]].sha256 or "", method_sha, control_sha), (
            f"{e['model']}: stale bigram data; rerun python -m benchmark.studies.bigram {e['model']}")
    from benchmark.studies.paper_finding import CURVES  # noqa: F401  (the document is checked in test_long_schedule)
    assert bigram.paper_section(entries) in (bigram.OUT.parents[1] / "docs" / "PAPER_FINDING.md").read_text()


@pytest.mark.parametrize("pair, control, expected", [
    ([0.8, 0.95], [0.7, 0.9], "one position moves linearly alone (pairs not needed)"),
    ([0.8, 0.95], [0.1, 0.3], "linear as pairs, not alone"),
    ([0.1, 0.3], [0.7, 0.9], "not linear as pairs"),
    ([0.4, 0.6], [0.1, 0.3], "undecided"),
])
def test_the_verdict_needs_the_bigram_test_and_its_control(pair, control, expected):
    assert bigram.verdict({"wilson": pair, "unigram_control": {"wilson": control}}) == expected


@pytest.mark.slow
def test_the_calibration_models_get_their_verdicts():
    """Linear by construction: both tests pass (a unigram code needs no pairs); onion-coded: neither."""
    linear = {**bigram.measure("linear_coded-h64-ni-s0"), "unigram_control": bigram.measure_control("linear_coded-h64-ni-s0")}
    onion = bigram.measure("onion_coded-h64-ar-s0")
    assert bigram.verdict(linear) == "one position moves linearly alone (pairs not needed)" and linear["iia"] > 0.95
    assert bigram.verdict(onion) == "not linear as pairs" and onion["iia"] < 0.2
