"""pyvene-das (issue 33 item 8): an intervention trained in pyvene, declared as data.

The adapter's one claim is that the declared "rotation-swap" does what pyvene's module did
during training; if it did not, the scores would belong to some other intervention. The
sealed fit itself runs in tests/test_conformance.py (every discovered method) and
tests/test_declared.py (what the fit returns). pyvene is in the `test` extra, so CI runs
this for real.
"""

from __future__ import annotations

import importlib.util

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
