"""Onion probe: the paper's "Onion" read-out (the paper's probe table, `decode.type=godel` in its repository).

Hypothesis (read side of the onion): the final state is a sum of per-position layers of
different magnitude, h ~= c + sum_p E[x_p] * s(p), so the tokens can be *peeled* in order:

    logits_p = MLP(LayerNorm(r_p)),   r_0 = h,   r_{p+1} = r_p - E[x_p] * s(p),
    s(p) = g * gamma**p + p * lin + b,

with a learned token embedding E (30, N) used as is (no tanh, unlike the onion
intervention), per-channel vectors g, gamma, lin, b, and one MLP Linear(N, N)-ReLU-
Linear(N, 30) shared by all positions (no position input: the peel alone tells positions
apart). The LayerNorm undoes the shrinking magnitude of the later layers.

Training peels the *true* tokens (teacher forcing, as the paper). At test time the probe
does not know them, so it peels its own greedy predictions; a wrong read at p then spoils
the later ones (the paper evaluated with teacher forcing; here that would be cheating).

Read only: unlike the `onion` baseline, E and s are fitted for reading, not through the
decoder, so the probe makes no claim that editing h along them changes the output.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.harness.declared import Declaration


class _Peeler(nn.Module):
    """E, s(p) and the shared MLP classifier; the paper's initialisation."""

    def __init__(self, n: int, vocab: int, n_pos: int, lin_init: float) -> None:
        super().__init__()
        self.n_pos = n_pos
        self.embedding = nn.Embedding(vocab, n)  # N(0, 1), PyTorch's (and the paper's) default
        self.g = nn.Parameter(torch.ones(n))
        self.gamma = nn.Parameter(torch.full((n,), 0.9))
        self.lin = nn.Parameter(torch.full((n,), float(lin_init)))
        self.b = nn.Parameter(torch.zeros(n))
        self.norm = nn.LayerNorm(n)
        self.classify = nn.Sequential(nn.Linear(n, n), nn.ReLU(), nn.Linear(n, vocab))

    def scales(self) -> torch.Tensor:
        """(n_pos, N) s(p); powers by repeated product because a learned gamma may turn negative."""
        powers = [torch.ones_like(self.gamma)]
        for _ in range(self.n_pos - 1):
            powers.append(powers[-1] * self.gamma)
        p = torch.arange(self.n_pos, dtype=torch.float32)[:, None]
        return self.g * torch.stack(powers) + p * self.lin + self.b

    def forward(self, h: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, n_pos, vocab): peel `tokens` if given (training), else own argmax."""
        scales, out = self.scales(), []
        for p in range(self.n_pos):
            logits = self.classify(self.norm(h))
            out.append(logits)
            peeled = tokens[:, p] if tokens is not None else logits.argmax(-1)
            h = h - self.embedding(peeled) * scales[p]
        return torch.stack(out, dim=1)


class OnionProbe:
    """Peel the positions in order with a learned embedding and per-position scales; read only."""

    tracks = ("read",)

    def __init__(self, n_samples: int = 50000, steps: int = 2000, batch_size: int = 256, lr: float = 3e-2,
                 weight_decay: float = 0.01, lin_init: float = 0.1, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lin_init = lin_init
        self.seed = seed

    def fit(self, model, data) -> Declaration:
        """Train the peeler with teacher forcing on one pool of encoded training sequences."""
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_ = int(pool.tokens.shape[1])
        targets = torch.where(torch.arange(self.n_pos_)[None, :] < pool.lengths[:, None], pool.tokens, -100)
        with torch.random.fork_rng():  # seeded init and minibatches; the global RNG is left alone
            torch.manual_seed(self.seed)
            self.net_ = _Peeler(int(model.state_dim), int(model.vocab_size), self.n_pos_, self.lin_init)
            self._train(pool.states, pool.tokens, targets)
        self.net_.eval().requires_grad_(False)
        return self.declaration()

    def _train(self, states: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor) -> None:
        """Minibatch AdamW with cosine decay (a short CPU schedule needs a high start and a
        quiet finish); positions >= length are ignored (-100). Padding tokens (0) are
        peeled too, but only after the last real position, so they change no scored logit."""
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / self.steps)))
        for _ in range(self.steps):
            idx = torch.randint(0, states.shape[0], (self.batch_size,))
            logits = self.net_(states[idx], tokens[idx])
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), targets[idx].flatten(), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    def declaration(self) -> Declaration:
        """The peeler as the "onion-peel" read form (no position embedding: zeros)."""
        net, hidden = self.net_, self.net_.classify[0].out_features
        tensors = {"codes": net.embedding.weight, "scales": net.scales(), "ln_weight": net.norm.weight,
                   "ln_bias": net.norm.bias, "w1": net.classify[0].weight, "b1": net.classify[0].bias,
                   "pos": torch.zeros(self.n_pos_, hidden), "w2": net.classify[2].weight, "b2": net.classify[2].bias}
        return Declaration(read=("onion-peel", {k: v.detach().clone() for k, v in tensors.items()}))
