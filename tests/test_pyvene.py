"""pyvene-das (issue 33 item 8): an intervention trained in pyvene, declared as data.

The adapter's one claim is that the declared "rotation-swap" does what pyvene's module did
during training; if it did not, the scores would belong to some other intervention. The
sealed fit itself runs in tests/test_conformance.py (every discovered method) and
tests/test_declared.py (what the fit returns). pyvene is in the `test` extra, so CI runs
this for real.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import pyvene  # not skipped when missing: the `test` extra installs it, and CI must run this
import torch

from benchmark.harness.forms import rotation_swap
from benchmark.harness.submission import resolve


@pytest.fixture(scope="module")
def adapter():
    spec = resolve("pyvene-das")
    loaded = importlib.util.spec_from_file_location("pyvene_das_method", spec.folder / "method.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["rotated", "low-rank"])
def test_the_declared_swap_is_pyvenes_own_forward(adapter, kind):
    torch.manual_seed(0)
    dim, k, positions = 40, 4, 9
    partition = [[p * k, (p + 1) * k] for p in range(positions)]
    if kind == "rotated":
        iv = pyvene.RotatedSpaceIntervention(embed_dim=dim, subspace_partition=partition)
    else:
        iv = pyvene.LowRankRotatedSpaceIntervention(embed_dim=dim, low_rank_dimension=k * positions,
                                                    subspace_partition=partition)
    rotation, owner = adapter.as_rotation_swap(iv.rotate_layer.weight.detach(), k, positions)
    assert torch.allclose(rotation @ rotation.T, torch.eye(dim), atol=1e-5)
    base, source = torch.randn(16, dim), torch.randn(16, dim)
    for blocks in ([0], [2, 5], list(range(positions))):
        mask = torch.zeros(16, positions, dtype=torch.bool)
        mask[:, blocks] = True
        with torch.no_grad():
            theirs = iv(base.clone(), source.clone(), subspaces=[blocks] * 16)
        ours = rotation_swap({"rotation": rotation, "owner": owner}, base, source, mask)
        assert torch.allclose(ours, theirs, atol=1e-5), (kind, blocks)


def test_an_unknown_intervention_is_a_one_line_error(adapter):
    with pytest.raises(ValueError, match="choose one of rotated, low-rank"):
        adapter.PyveneDAS(intervention="boundless")


def test_the_low_rank_module_fits_on_the_check_model_into_an_accepted_declaration(adapter):
    """The low-rank module is an option, not the default (which the conformance suite and
    test_declared fit in the sealed cell): fit it too, so it cannot rot unseen."""
    kind = "low-rank"
    from benchmark.data import heldout_keys
    from benchmark.harness import declared
    from benchmark.harness.interface import FitData, FrozenModel, seed_everything
    from benchmark.zoo.resolve import load_reference

    spec = resolve("pyvene-das")
    model, _ = load_reference(str(Path(__file__).resolve().parents[1] / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"))
    data = FitData(model, heldout_keys(), seed=0, budget=1_000_000)
    seed_everything(0)
    method = spec.instantiate({**spec.check_params, "intervention": kind})
    decl = declared.check(method.fit(FrozenModel(model, data), data), int(model.state_dim))
    rotation, owner = decl.interchange[1]["rotation"], decl.interchange[1]["owner"]
    assert torch.allclose(rotation @ rotation.T, torch.eye(rotation.shape[0]), atol=1e-4)
    k = int(model.state_dim) // 9
    assert owner.tolist() == [i // k for i in range(9 * k)] + [9] * (int(model.state_dim) - 9 * k)
