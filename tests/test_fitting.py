"""benchmark.harness.fitting: the shared loop and the DAS helpers, on small synthetic data.

Why these tests: baselines and resumable runs (the long-schedule study) take the same steps
through these helpers, and committed curves were re-keyed on the promise that the helpers
reproduce the baselines' old loops exactly. Each test states one such promise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from benchmark.harness.fitting import AdamWSteps, Minibatches, class_mean_rotation, longest_first, position_codes, warmup_cosine


def _problem(seed: int = 0):
    """A tiny regression: fixed data, a linear layer, a loss of the rows `idx`."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 5, generator=gen), torch.randn(64, 2, generator=gen)
    torch.manual_seed(seed)
    layer = nn.Linear(5, 2)
    return layer, lambda idx: ((layer(x[idx]) - y[idx]) ** 2).mean()


def test_warmup_cosine_warms_up_then_decays_to_zero():
    f = warmup_cosine(100, 0.1)
    assert [f(s) for s in (0, 9)] == [0.1, 1.0]
    assert f(10) == 1.0 and abs(f(55) - 0.5) < 1e-12 and f(99) > 0 > -f(99)
    assert warmup_cosine(0, 0.05)(0) == 1.0  # no steps: linear-das scored at its warm start (test_calibration)


def test_a_run_in_pieces_equals_one_run():
    """The resumable-run promise: run(3) then run(4) takes the same steps as run(7)."""
    finals = []
    for pieces in ([7], [3, 4]):
        layer, loss_of = _problem()
        loop = Minibatches(layer.parameters(), loss_of, 64, batch_size=8, lr=1e-2, weight_decay=0.1, clip=0.5,
                           generator=torch.Generator().manual_seed(1))
        for n in pieces:
            loop.run(n)
        finals.append(torch.cat([p.detach().flatten() for p in layer.parameters()]))
    assert torch.equal(*finals)


def test_a_constant_lr_without_a_scheduler_equals_a_factor_of_one():
    """linear-das's constant schedule passes no factor; its old loop stepped a LambdaLR of 1.0."""
    finals = []
    for factor in (None, lambda s: 1.0):
        layer, loss_of = _problem()
        steps = AdamWSteps(layer.parameters(), lr=3e-2, weight_decay=0.1, lr_factor=factor)
        for i in range(5):
            steps.step(loss_of(torch.arange(i, 64, 5)))
        finals.append(torch.cat([p.detach().flatten() for p in layer.parameters()]))
    assert torch.equal(*finals)


def test_position_codes_take_an_owner_vector_or_a_coordinate_mask():
    """linear-das passes each coordinate's owner, linear-das-bigram a (P, N) mask: the same
    codes when the mask is the owner's one-hot."""
    gen = torch.Generator().manual_seed(0)
    z, tokens = torch.randn(300, 6, generator=gen), torch.randint(0, 4, (300, 3), generator=gen)
    lengths, owner = torch.randint(2, 4, (300,), generator=gen), torch.tensor([0, 0, 1, 2, 3, 1])
    by_owner = position_codes(z, tokens, lengths, owner, 4, max_iter=200)
    by_mask = position_codes(z, tokens, lengths, owner[None, :] == torch.arange(3)[:, None], 4, max_iter=200)
    for a, b in zip(by_owner, by_mask, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(by_owner[1][0][:, 2:], torch.zeros(4, 4))  # position 0 reads its own coordinates only


def test_class_mean_rotation_finds_each_positions_own_directions():
    """Tokens at position p move the state along coordinate p: the warm start's strongest
    directions are those coordinates, owned by their positions; with 3 tokens each position
    has at most 2 class-mean directions, so of 8 coordinates 4 at least go to `keep`."""
    gen = torch.Generator().manual_seed(0)
    tokens, lengths = torch.randint(0, 3, (400, 2), generator=gen), torch.full((400,), 2)
    states = 0.01 * torch.randn(400, 8, generator=gen)
    states[:, 0] += tokens[:, 0].float() * 3
    states[:, 1] += tokens[:, 1].float()
    torch.manual_seed(0)
    rotation, owner = class_mean_rotation(states, tokens, lengths, 3, keep=9)
    assert torch.allclose(rotation @ rotation.T, torch.eye(8), atol=1e-5)
    assert owner.tolist()[:2] == [0, 1] and owner.tolist()[4:] == [9] * 4
    assert abs(float(rotation[0, 0])) > 0.99 and abs(float(rotation[1, 1])) > 0.99


def test_longest_first_leaves_a_running_prefix_at_every_position():
    """The probes' unroll runs position p on the first running[p] sorted rows: exactly the rows
    whose length exceeds p, so skipping the rest changes no scored term."""
    lengths = torch.tensor([2, 9, 4, 2, 7, 9, 3])
    order, running = longest_first(lengths, 9)
    assert running == [7, 7, 5, 4, 3, 3, 3, 2, 2]
    for p, k in enumerate(running):
        assert bool((lengths[order][:k] > p).all()) and bool((lengths[order][k:] <= p).all())
    assert order[:2].tolist() == [1, 5]  # stable among equals


PIN = Path(__file__).parent.parent / "leaderboard" / "verification" / "fitting-pin.json"


def test_the_shared_fitting_code_is_pinned_to_its_last_proof():
    """Baselines import fitting.py, and their source hash (which decides whether a row is stale)
    covers only their own folder. So an edit here could move committed fits while the board
    calls every row current. The pin forces the edit past a committed proof or re-score log."""
    pin = json.loads(PIN.read_text())
    current = hashlib.sha256((PIN.parent.parent.parent / pin["file"]).read_bytes()).hexdigest()
    assert current == pin["sha256"], (
        f"{pin['file']} changed since its last proof ({pin['log']}). Prove the change leaves every fitted "
        "tensor byte-identical (leaderboard/verification/issue32-rekey-probes-proof.py shows how) or re-score "
        f"the methods that import it, commit that log, then set {PIN.name}'s sha256 to {current} and its log")
    assert (PIN.parent.parent.parent / pin["log"]).is_file()
