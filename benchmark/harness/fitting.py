"""The shared minibatch loop for methods that train a small network on frozen states.

Why one loop: the probes each carried a copy of the same loop (random rows of a fixed pool,
AdamW, cosine decay), differing only in where the random rows came from. One loop keeps
their schedules comparable and gives every method the same two levers that issue 34 found
on `valid`: a linear warm-up before the cosine decay, and gradient-norm clipping. Both
default to off, in which case the loop is step for step the old copies (same random draws,
same learning-rate factors), so a method that adopts it without changing its parameters
fits the same numbers.

A submission may import it too (it runs inside the fit process like `declared`); it uses
only torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["train_minibatches", "warmup_cosine"]


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
