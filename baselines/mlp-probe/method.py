"""MLP-probe baseline: a read-only, one-shot non-linear decoder of the state.

The paper's "MLP" probe: Linear(N, N) - ReLU - Linear(N, 9 * 30) on the final state h,
trained with cross-entropy on every position < the sequence's length. It tests whether
all tokens are decodable from h at once; it makes no claim about how they are stored, so
it has no write and declares only the READ track.

Training uses one fixed pool of encoded training sequences (drawn once, so the budget is
`n_samples`) and a cosine-decayed AdamW, which converges in a few thousand steps on a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.harness.declared import Declaration


class MLPProbeMethod:
    """One MLP reads all nine positions from h; read only."""

    tracks = ("read",)

    def __init__(self, n_samples: int = 50000, steps: int = 6000, batch_size: int = 512,
                 lr: float = 3e-3, weight_decay: float = 0.01, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, model, data) -> Declaration:
        """Standardise the states, then train the MLP on random minibatches of the pool."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(pool.tokens.shape[1]), int(model.vocab_size)
        self.mean_ = pool.states.mean(0)
        self.scale_ = pool.states.std(0) + 1e-6
        x = (pool.states - self.mean_) / self.scale_
        targets = torch.where(torch.arange(self.n_pos_)[None, :] < pool.lengths[:, None], pool.tokens, -100)
        self.net_ = self._build(int(model.state_dim), gen)
        self._train(x, targets, gen)
        self.net_.eval()
        return self.declaration()

    def _build(self, n: int, gen: torch.Generator) -> nn.Sequential:
        net = nn.Sequential(nn.Linear(n, n), nn.ReLU(), nn.Linear(n, self.n_pos_ * self.vocab_))
        with torch.no_grad():  # seeded init, independent of the global RNG
            for layer in (net[0], net[2]):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)
        return net

    def _train(self, x: torch.Tensor, targets: torch.Tensor, gen: torch.Generator) -> None:
        """Minibatch AdamW with cosine decay; positions >= length are ignored (-100)."""
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / self.steps)))
        for _ in range(self.steps):
            idx = torch.randint(0, x.shape[0], (self.batch_size,), generator=gen)
            logits = self.net_(x[idx]).view(-1, self.n_pos_, self.vocab_)
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab_), targets[idx].reshape(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    def declaration(self) -> Declaration:
        """The MLP as the "mlp" read form, the standardisation folded into the first layer:
        W1 ((h - m) / s) + b1 = (W1 / s) h + (b1 - W1 (m / s))."""
        first, last = self.net_[0], self.net_[2]
        w1 = first.weight / self.scale_[None, :]
        b1 = first.bias - first.weight @ (self.mean_ / self.scale_)
        return Declaration(read=("mlp", {
            "w1": w1.detach().clone(), "b1": b1.detach().clone(),
            "w2": last.weight.detach().view(self.n_pos_, self.vocab_, -1).clone(),
            "b2": last.bias.detach().view(self.n_pos_, self.vocab_).clone()}))
