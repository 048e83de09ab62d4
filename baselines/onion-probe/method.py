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

Training (issue 34): the shared minibatch loop (`benchmark.harness.fitting`) at lr 3e-2 with a
5 % warm-up, cosine decay and gradient clipping, for 8,000 * 192 / N steps (`schedule`),
each peel running only on the rows still within their length. The first default (2,000
steps for every N, no warm-up or clipping) was up to 0.122 below its own longer schedules:
short on the small models (gru-h48-ni-s0 0.789 against 0.907 at 8x) and, without the
warm-up, unsteady on the large ones (gru-h256-ni-s0 0.835, 0.957 at 2x, 0.931 at 4x). At the
new recipe, on `valid`: gru-h48-ni-s0 0.920, gru-h48-ar-s0 0.933, gru-h64-ni-s0 0.999,
gru-h256-ni-s0 0.997. Issue 30 (read probes at their plateau) then doubled the steps, from
4,000 * 192 / N: gru-h48-ni-s0 was still 0.021 below its 2x point (0.920 against 0.941; 0.931
at 4x). That costs the core tier about twice the fit time, over issue 34's 15 minutes; issue
30 lets the read board's probes take what their plateau needs and state the cost
(baselines/README.md).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.harness.declared import Declaration
from benchmark.harness.fitting import longest_first, train_minibatches


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

    def loss(self, h: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over positions < length, peeling the true tokens (training); each
        peel on the rows still running (`fitting.longest_first`)."""
        order, running = longest_first(lengths, self.n_pos)
        h, tokens = h[order], tokens[order]
        scales, logits, wanted = self.scales(), [], []
        for p, k in enumerate(running):
            if k == 0:
                break
            h = h[:k]
            logits.append(self.classify(self.norm(h)))
            wanted.append(tokens[:k, p])
            h = h - self.embedding(tokens[:k, p]) * scales[p]
        return nn.functional.cross_entropy(torch.cat(logits), torch.cat(wanted))



class OnionProbe:
    """Peel the positions in order with a learned embedding and per-position scales; read only."""

    tracks = ("read",)

    def __init__(self, n_samples: int = 50000, steps: int = 8000, steps_width: int = 192, batch_size: int = 256,
                 lr: float = 3e-2, weight_decay: float = 0.01, warmup: float = 0.05, clip: float = 1.0,
                 lin_init: float = 0.1, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.steps_width = steps_width
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.lin_init = lin_init
        self.seed = seed

    def fit(self, model, data) -> Declaration:
        """Train the peeler with teacher forcing on one pool of encoded training sequences."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_ = int(pool.tokens.shape[1])
        with torch.random.fork_rng():  # seeded init that leaves the global RNG alone
            torch.manual_seed(self.seed)
            self.net_ = _Peeler(int(model.state_dim), int(model.vocab_size), self.n_pos_, self.lin_init)
        tokens = pool.tokens.clamp(0, int(model.vocab_size) - 1)  # padding past the length is never read

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            return self.net_.loss(pool.states[idx], tokens[idx], pool.lengths[idx])

        # The shared loop (issue 34): AdamW, 5 % warm-up, cosine decay, gradient clipping.
        train_minibatches(self.net_.parameters(), loss_of, pool.states.shape[0], steps=self.schedule(model.state_dim),
                          batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                          warmup=self.warmup, clip=self.clip, generator=gen)
        self.net_.eval().requires_grad_(False)
        return self.declaration()

    def schedule(self, state_dim: int) -> int:
        """Steps at state size N: `steps` at N = `steps_width`, times steps_width / N (32,000 at
        N=48, 24,000 at N=64, 12,000 at N=128, 6,000 at N=256).

        Why 1 / N and not the GRU probes' square root: the peeler's step is cheap at every N
        (an N x N MLP, no recurrence through N x 3N weights), and on the small models the read
        kept rising with steps long after the large ones had stopped (`valid`, lr 3e-2 with
        warm-up and clipping: gru-h48-ni-s0 0.865 at 4,000 steps, 0.897 at 8,000, 0.920 at
        16,000; gru-h256-ni-s0 0.997 at 3,000 and 0.999 at 4,000).
        """
        return max(1, round(self.steps * self.steps_width / int(state_dim)))

    def declaration(self) -> Declaration:
        """The peeler as the "onion-peel" read form (no position embedding: zeros)."""
        net, hidden = self.net_, self.net_.classify[0].out_features
        tensors = {"codes": net.embedding.weight, "scales": net.scales(), "ln_weight": net.norm.weight,
                   "ln_bias": net.norm.bias, "w1": net.classify[0].weight, "b1": net.classify[0].bias,
                   "pos": torch.zeros(self.n_pos_, hidden), "w2": net.classify[2].weight, "b2": net.classify[2].bias}
        return Declaration(read=("onion-peel", {k: v.detach().clone() for k, v in tensors.items()}))
