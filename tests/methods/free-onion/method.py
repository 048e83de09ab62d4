"""A free-form onion write: the true form of an onion code, with nothing tied (calibration aid, not a baseline).

Why it exists: before blaming the `onion` baseline for missing an onion-coded calibration
model, show that the model is fittable at all. The write is the form such a model obeys,

    h' = h + (c[t] - c[cur]) * s[p],

with a free token code c (30, N) and a free per-position, per-channel scale s (9, N), kept
positive through a log parametrisation (a sign can live in c), so no profile over positions
is imposed (the baseline ties s(p) = g * gamma**p + p * lin + b). Trained as the baseline's
write: a training state, a random position and token, decode the edited state through the
frozen decoder (teacher-forced on the wanted sequence) and minimise the cross-entropy.
Why log space: the scales of an onion span orders of magnitude (0.5**8 = 0.004), and Adam's
steps are absolute; in log space every position's scale moves by relative steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FreeOnionWrite:
    """WRITE only: h + (c[t] - c[cur]) * exp(log_s[p])."""

    tracks = ("write",)

    def __init__(self, steps: int = 1500, batch_size: int = 256, lr: float = 3e-2, pool_size: int = 20000,
                 seed: int = 0) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.pool_size = pool_size
        self.seed = seed

    def fit(self, model, data) -> FreeOnionWrite:
        """Train c and log s through the frozen decoder on states of one training pool."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.pool_size)
        n_pos, dim = int(pool.tokens.shape[1]), int(model.state_dim)
        self.code_ = nn.Parameter(0.1 * torch.randn(int(model.vocab_size), dim, generator=gen))
        self.log_scale_ = nn.Parameter(torch.zeros(n_pos, dim))
        opt = torch.optim.Adam([self.code_, self.log_scale_], lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / self.steps)))
        for _ in range(self.steps):
            h, position, token, current, wanted, lengths = self._batch(data, pool, gen)
            logits = model.decode(self._edit(h, position, token, current), wanted)
            valid = torch.arange(n_pos)[None, :] < lengths[:, None]
            loss = nn.functional.cross_entropy(logits[valid], wanted[valid])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        self.code_.requires_grad_(False)
        self.log_scale_.requires_grad_(False)
        return self

    def _batch(self, data, pool, gen: torch.Generator):
        """Random pool states, a position < L each and a new token; wanted sequences held out are dropped."""
        idx = torch.randint(0, pool.states.shape[0], (self.batch_size,), generator=gen)
        tokens, lengths = pool.tokens[idx], pool.lengths[idx]
        rows = torch.arange(idx.shape[0])
        position = (torch.rand(idx.shape[0], generator=gen) * lengths).long()
        current = tokens[rows, position]
        token = torch.randint(0, self.code_.shape[0], (idx.shape[0],), generator=gen)
        wanted = tokens.clone()
        wanted[rows, position] = token
        keep = ~data.is_heldout(wanted, lengths)
        return pool.states[idx][keep], position[keep], token[keep], current[keep], wanted[keep], lengths[keep]

    def _edit(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor,
              current: torch.Tensor) -> torch.Tensor:
        return h + (self.code_[token] - self.code_[current]) * self.log_scale_.exp()[position]

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._edit(h.float(), position, token, current)
