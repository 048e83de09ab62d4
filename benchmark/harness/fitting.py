"""The shared minibatch loop for methods that train a small network on frozen states.

Why one loop: the probes each carried a copy of the same loop (random rows of a fixed pool,
AdamW, cosine decay), differing only in where the random rows came from. One loop keeps
their schedules comparable and gives every method the same two levers that issue 34 found
on `valid`: a linear warm-up before the cosine decay, and gradient-norm clipping. Both
default to off, in which case the loop is step for step the old copies (same random draws,
same learning-rate factors), so a method that adopts it without changing its parameters
fits the same numbers.

A submission may import it too (it runs inside the fit process like `declared`); the loop
uses only torch, and `position_codes` (the DAS baselines' closing read-out) adds scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["position_codes", "train_minibatches", "warmup_cosine"]


def warmup_cosine(steps: int, warmup: float = 0.0) -> Callable[[int], float]:
    """The learning-rate factor at step s: linear from 1/w to 1 over the first
    w = round(warmup * steps) steps, then a cosine from 1 down to 0 over the rest.

    With warmup = 0 it is 0.5 (1 + cos(pi s / steps)), the probes' old schedule exactly.
    """
    if steps < 1 or not 0.0 <= warmup < 1.0:
        raise ValueError(f"steps must be >= 1 and warmup in [0, 1); got steps={steps}, warmup={warmup}")
    w = round(warmup * steps)

    def factor(step: int) -> float:
        if step < w:
            return (step + 1) / w
        return 0.5 * (1 + math.cos(math.pi * (step - w) / (steps - w)))

    return factor


def train_minibatches(params: Iterable[nn.Parameter], loss_of: Callable[[torch.Tensor], torch.Tensor],
                      rows: int, *, steps: int, batch_size: int, lr: float, weight_decay: float,
                      warmup: float = 0.0, clip: float = 0.0, generator: torch.Generator | None = None) -> None:
    """AdamW for `steps` steps, each on `batch_size` rows drawn with replacement from `rows`.

    `loss_of(idx)` returns the scalar loss of the rows `idx` (the caller owns the data, so
    the loop needs no knowledge of states, tokens or masks). `clip` > 0 clips the gradient's
    global norm to it. `generator` None draws from the global RNG, which callers seed inside
    `torch.random.fork_rng()` so the global state is left alone.
    """
    params = list(params)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, warmup))
    for _ in range(steps):
        idx = torch.randint(0, rows, (batch_size,), generator=generator)
        loss = loss_of(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        sched.step()


def position_codes(z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, owner: torch.Tensor, vocab: int,
                   *, max_iter: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per position p, on the rotated coordinates it owns (`owner == p`): each token's mean
    code (a DAS method's write) and a logistic regression (its read).

    z: (rows, N) states in rotated coordinates; tokens (rows, P); lengths (rows,). Returns
    (means (P, V, N), weight (P, V, N), bias (P, V)), zero outside each position's own
    coordinates. Why here: the DAS baselines all end this way once their rotation is
    trained, and the read-out should not differ between them for reasons of copying
    (linear-das-bigram still carries its own copy, kept until its code next changes because
    its committed bigram study is keyed on its source).
    """
    positions, dim = tokens.shape[1], z.shape[1]
    means, weight, bias = torch.zeros(positions, vocab, dim), torch.zeros(positions, vocab, dim), torch.zeros(positions, vocab)
    for p in range(positions):
        rows, coords = lengths > p, owner == p
        zp, y = z[rows] * coords, tokens[rows, p]
        for t in range(vocab):
            if (y == t).any():
                means[p, t] = zp[y == t].mean(0)
        weight[p][:, coords], bias[p] = _logistic(zp[:, coords], y, vocab, max_iter, seed)
    return means, weight, bias


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
