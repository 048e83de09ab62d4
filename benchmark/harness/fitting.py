"""What the baselines share when they train on frozen states: one minibatch loop, and the DAS
rotations' warm start and read-out.

Why one loop: the probes each carried a copy of the same loop (random rows of a fixed pool,
AdamW, cosine decay), differing only in where the random rows came from. One loop keeps
their schedules comparable and gives every method the same two levers that issue 34 found
on `valid`: a linear warm-up before the cosine decay, and gradient-norm clipping. Both
default to off, in which case the loop is step for step the old copies (same random draws,
same learning-rate factors), so a method that adopts it without changing its parameters
fits the same numbers. The loop is also an object (`Minibatches`, its step `AdamWSteps`)
so that a resumable run of the long-schedule study takes the fit's own steps, not a copy.

Why the DAS helpers: linear-das, linear-das-bigram and pyvene-das end the same way once
their rotation is trained (`position_codes`), and the two autosegmenting ones start the
same way (`class_mean_rotation`); a copy per baseline let them drift apart.

A submission may import this module too (it runs inside the fit process like `declared`);
it uses only torch, and `position_codes` adds scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["AdamWSteps", "Minibatches", "class_mean_rotation", "longest_first", "position_codes", "train_minibatches",
           "warmup_cosine"]


def warmup_cosine(steps: int, warmup: float = 0.0) -> Callable[[int], float]:
    """The learning-rate factor at step s: linear from 1/w to 1 over the first
    w = round(warmup * steps) steps, then a cosine from 1 down to 0 over the rest.

    With warmup = 0 it is 0.5 (1 + cos(pi s / steps)), the probes' old schedule exactly.
    steps = 0 is an empty schedule (a fit that takes no step, e.g. linear-das scored at its
    warm start alone); its factor is 1 at step 0, where the optimiser reads it once.
    """
    if steps < 0 or not 0.0 <= warmup < 1.0:
        raise ValueError(f"steps must be >= 0 and warmup in [0, 1); got steps={steps}, warmup={warmup}")
    w = round(warmup * steps)

    def factor(step: int) -> float:
        if step < w:
            return (step + 1) / w
        return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))

    return factor


class AdamWSteps:
    """AdamW, an optional learning-rate factor per step, and gradient-norm clipping: the
    optimiser step every fit in the house takes.

    Why a class: a long fit (`benchmark.studies.long_schedule`) drives a method's training a
    few steps at a time and saves the optimiser between sessions, so the step must live
    outside any one loop. `lr_factor` None is a constant lr (no scheduler, which equals a
    factor of 1.0 exactly); `clip` > 0 clips the gradient's global norm to it.
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, weight_decay: float,
                 lr_factor: Callable[[int], float] | None = None, clip: float = 0.0) -> None:
        self.params = list(params)
        self.clip = clip
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor) if lr_factor else None

    def step(self, loss: torch.Tensor) -> None:
        """One update on `loss` (computed by the caller, before this call, as every loop here did)."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        if self.sched is not None:
            self.sched.step()

    def state_dict(self) -> dict:
        """The optimiser's state (AdamW's own format); a resumable run saves it between sessions."""
        return self.opt.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state)


class Minibatches:
    """The shared loop as an object: each step draws `batch_size` rows with replacement from
    `rows` and takes one `AdamWSteps` step on `loss_of(idx)`. `run(n)` takes n more steps,
    so `train_minibatches` and a resumable run (onion's `OnionRun`) are the same code."""

    def __init__(self, params: Iterable[nn.Parameter], loss_of: Callable[[torch.Tensor], torch.Tensor], rows: int, *,
                 batch_size: int, lr: float, weight_decay: float, lr_factor: Callable[[int], float] | None = None,
                 clip: float = 0.0, generator: torch.Generator | None = None) -> None:
        self.loss_of, self.rows, self.batch_size, self.generator = loss_of, rows, batch_size, generator
        self.optimiser = AdamWSteps(params, lr=lr, weight_decay=weight_decay, lr_factor=lr_factor, clip=clip)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            idx = torch.randint(0, self.rows, (self.batch_size,), generator=self.generator)
            self.optimiser.step(self.loss_of(idx))


def train_minibatches(params: Iterable[nn.Parameter], loss_of: Callable[[torch.Tensor], torch.Tensor],
                      rows: int, *, steps: int, batch_size: int, lr: float, weight_decay: float,
                      warmup: float = 0.0, clip: float = 0.0, generator: torch.Generator | None = None) -> None:
    """AdamW for `steps` steps, each on `batch_size` rows drawn with replacement from `rows`,
    the lr on `warmup_cosine(steps, warmup)`.

    `loss_of(idx)` returns the scalar loss of the rows `idx` (the caller owns the data, so
    the loop needs no knowledge of states, tokens or masks). `clip` > 0 clips the gradient's
    global norm to it. `generator` None draws from the global RNG, which callers seed inside
    `torch.random.fork_rng()` so the global state is left alone.
    """
    Minibatches(params, loss_of, rows, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                lr_factor=warmup_cosine(steps, warmup), clip=clip, generator=generator).run(steps)


def longest_first(lengths: torch.Tensor, positions: int) -> tuple[torch.Tensor, list[int]]:
    """The order that sorts rows longest first, and how many rows still run at each position.

    Why: a position past a row's length is not scored, so a recurrent probe's step (or a
    peel) there need not run. With the rows sorted longest first, the rows still running at
    position p are the first `running[p]`, and each step runs on that prefix alone: 5.5 of 9
    steps' work for lengths uniform on 2..9, and the same loss as the full unroll masked.
    gru-probe, gru-probe-ni and onion-probe train this way.
    """
    order = lengths.argsort(descending=True, stable=True)
    return order, (lengths[None, :] > torch.arange(positions)[:, None]).sum(1).tolist()


def position_codes(z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, owner: torch.Tensor, vocab: int,
                   *, max_iter: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position p, on the rotated coordinates it owns: each token's mean code (a DAS
    method's write) and a logistic regression (its read).

    z: (rows, N) states in rotated coordinates; tokens (rows, P); lengths (rows,). `owner` is
    either (N,) the position owning each coordinate (p's coordinates: `owner == p`) or a
    (P, N) boolean mask of each position's coordinates (linear-das-bigram: the coordinates of
    both pairs holding p). Returns (means (P, V, N), weight (P, V, N), bias (P, V)), zero
    outside each position's coordinates. Why here: the DAS baselines all end this way once
    their rotation is trained, and the read-out should not differ between them for reasons
    of copying.
    """
    positions, dim = tokens.shape[1], z.shape[1]
    coords_of = owner if owner.dim() == 2 else owner[None, :] == torch.arange(positions)[:, None]
    means, weight, bias = torch.zeros(positions, vocab, dim), torch.zeros(positions, vocab, dim), torch.zeros(positions, vocab)
    for p in range(positions):
        rows, coords = lengths > p, coords_of[p]
        zp, y = z[rows] * coords, tokens[rows, p]
        for t in range(vocab):
            if (y == t).any():
                means[p, t] = zp[y == t].mean(0)
        weight[p][:, coords], bias[p] = _logistic(zp[:, coords], y, vocab, max_iter, seed)
    return means, weight, bias


def class_mean_rotation(states: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, vocab: int, keep: int,
                        owner_of: Callable[[int], int] = lambda p: p) -> tuple[torch.Tensor, torch.Tensor]:
    """A DAS rotation's warm start: the directions along which each position's token means differ.

    For every position p, the SVD of its centred class means (vocab x N) gives directions
    ranked by how far apart they put that position's tokens. Taken over all positions in
    order of singular value, each direction is orthogonalised against those already taken
    and kept (owned by `owner_of(p)`) unless little of it is new (norm <= 0.3 after the
    projection). The rest of the space is completed at random (the global RNG) and owned by
    `keep`. Returns the rotation (N, N; rows are the rotated coordinates) and each row's
    owner (N,). Why shared: linear-das (owner p) and linear-das-bigram (pair min(p, 7))
    start the same way, and issue 34 measured what it buys on linear-das.
    """
    dim = states.shape[1]
    candidates = []
    for p in range(tokens.shape[1]):
        rows = lengths > p
        hp, y = states[rows], tokens[rows, p]
        means = torch.stack([hp[y == t].mean(0) if (y == t).any() else hp.mean(0) for t in range(vocab)])
        _, sv, vt = torch.linalg.svd(means - means.mean(0), full_matrices=False)
        candidates += [(float(sv[i]), owner_of(p), vt[i]) for i in range(sv.shape[0])]
    basis: list[torch.Tensor] = []
    owner: list[int] = []
    for _, who, v in sorted(candidates, key=lambda c: -c[0]):
        for b in basis:
            v = v - (v @ b) * b
        if len(basis) < dim and v.norm() > 0.3:  # most of it new: a direction of its own
            basis.append(v / v.norm())
            owner.append(who)
    taken = torch.stack(basis) if basis else torch.zeros(0, dim)
    rest = torch.linalg.qr(torch.cat([taken.T, torch.randn(dim, dim - taken.shape[0])], 1))[0][:, taken.shape[0]:]
    return torch.cat([taken, rest.T]), torch.tensor(owner + [keep] * (dim - len(owner)))


def _logistic(x: torch.Tensor, y: torch.Tensor, vocab: int, max_iter: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(vocab, k) weights and (vocab,) bias of a logistic regression on k coordinates. No
    coordinates or a single class: zero logits. A token absent from the sample gets a very
    negative bias, so it is never read."""
    from sklearn.linear_model import LogisticRegression  # imported here: the training loop above needs torch only

    w, b = torch.zeros(vocab, x.shape[1]), torch.zeros(vocab)
    if x.shape[1] == 0 or y.unique().numel() < 2:
        return w, b
    clf = LogisticRegression(max_iter=max_iter, random_state=seed).fit(x.numpy(), y.numpy())
    classes = torch.from_numpy(clf.classes_).long()
    coef, intercept = torch.from_numpy(clf.coef_).float(), torch.from_numpy(clf.intercept_).float()
    b[:] = -1e4
    if classes.numel() == 2:  # binary sklearn model: one row for class 1 against class 0
        w[classes[1]], b[classes[1]] = coef[0] / 2, intercept[0] / 2
        w[classes[0]], b[classes[0]] = -coef[0] / 2, -intercept[0] / 2
    else:
        w[classes], b[classes] = coef, intercept
    return w, b
