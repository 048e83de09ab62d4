"""No-input GRU probe: the paper's "GRU - no input" read-out (the paper's probe table).

A *fresh* GRU whose initial hidden state is h is unrolled for nine steps with a zero input
vector at every step; a Linear(N, 30) read-out of each step's state gives the token at
that position. Unlike `gru-probe` (the autoregressive row of the paper's table) it never
sees a token, neither the true previous one in training nor its own guess at test time,
so it reads exactly the same way in training and in scoring and cannot lean on feedback:
it asks whether h alone carries the sequence in a form a recurrence can unroll.

Read only: it says nothing about where a token lives, so it declares only the READ track.

One deliberate difference from the paper's module: the paper's GRU(N, N) has N x N input
weights that only ever multiply zeros. Here the input is one zero scalar, which keeps every
term that acts (the input-side biases included) and leaves out 3N^2 dead weights, so the
recorded method size counts only scalars that matter. The function computed is the same.

Training (issue 34): `gru-probe`'s recipe, which brought that probe to its plateau on every
curve: the shared minibatch loop (`benchmark.harness.fitting`) with a 5 % warm-up, cosine
decay and clipping, lr 3e-2 at N <= 48 and 3e-2 * 48 / N above, and steps * sqrt(96 / N)
(`schedule`). Each step unrolls only the rows still within their length. One addition of its
own: a step's batch grows as 256 * 192 / N below N = 192 (`batch`), because this probe, unlike
gru-probe, is short of sequences rather than steps on the small models (`valid`, gru-h64-ar-s0
at the same steps: batch 256 0.428, 768 0.436, 1,024 0.450; gru-h128-ar-s0: 256 0.728,
384 0.774), and a small model's step costs little more at four times the batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.harness.fitting import longest_first, train_minibatches


class _Unroller(nn.Module):
    """GRU cell started from h, zero input at every step, linear read-out of each state.

    A cell loop, not nn.GRU over the sequence: with one thread it is the faster of the two
    for this shape (measured 66 vs 75 ms per training step at N=256, batch 256), and it lets
    a training step stop each row at its length.
    """

    def __init__(self, n: int, vocab: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(1, n)
        self.readout = nn.Linear(n, vocab)

    def forward(self, h: torch.Tensor, steps: int) -> torch.Tensor:
        """Logits (batch, steps, vocab) of the full unroll (test time)."""
        zeros, out = torch.zeros(h.shape[0], 1), []
        for _ in range(steps):
            h = self.cell(zeros, h)
            out.append(h)
        return self.readout(torch.stack(out, dim=1))

    def loss(self, h: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over positions < length (training); each step on the rows still
        running (`fitting.longest_first`)."""
        order, running = longest_first(lengths, tokens.shape[1])
        h, tokens = h[order], tokens[order]
        zeros, states, wanted = torch.zeros(h.shape[0], 1), [], []
        for step, k in enumerate(running):
            if k == 0:
                break
            h = self.cell(zeros[:k], h[:k])
            states.append(h)
            wanted.append(tokens[:k, step])
        return nn.functional.cross_entropy(self.readout(torch.cat(states)), torch.cat(wanted))


class GRUProbeNoInput:
    """A recurrence without inputs unrolls the positions in order from h; read only."""

    tracks = ("read",)

    def __init__(self, n_samples: int = 50000, steps: int = 4000, steps_width: int = 96, batch_size: int = 256,
                 batch_width: int = 192, lr: float = 3e-2, lr_width: int = 48, weight_decay: float = 0.01,
                 warmup: float = 0.05, clip: float = 1.0, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.steps_width = steps_width
        self.batch_size = batch_size
        self.batch_width = batch_width
        self.lr = lr
        self.lr_width = lr_width
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.seed = seed

    def fit(self, model, data) -> GRUProbeNoInput:
        """Train the unroller on one pool of encoded training sequences."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_ = int(pool.tokens.shape[1])
        with torch.random.fork_rng():  # seeded init that leaves the global RNG alone
            torch.manual_seed(self.seed)
            self.net_ = _Unroller(int(model.state_dim), int(model.vocab_size))
        tokens = pool.tokens.clamp(0, int(model.vocab_size) - 1)  # padding past the length is never read

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            return self.net_.loss(pool.states[idx], tokens[idx], pool.lengths[idx])

        # lr falls as 1/N above `lr_width`, for gru-probe's reason: an Adam step moves every
        # weight by about lr, so an N-wide recurrent layer's output moves about N times that.
        lr = self.lr * min(1.0, self.lr_width / int(model.state_dim))
        train_minibatches(self.net_.parameters(), loss_of, pool.states.shape[0], steps=self.schedule(model.state_dim),
                          batch_size=self.batch(model.state_dim), lr=lr, weight_decay=self.weight_decay,
                          warmup=self.warmup, clip=self.clip, generator=gen)
        self.net_.eval().requires_grad_(False)
        return self

    def schedule(self, state_dim: int) -> int:
        """Steps at state size N: `steps` at N = `steps_width`, times sqrt(steps_width / N).

        Why: a small model's unroller needs more steps to its plateau, and its steps are cheap;
        the square root is gru-probe's choice, measured there on all eight seed-0 curves.
        """
        return max(1, round(self.steps * math.sqrt(self.steps_width / int(state_dim))))

    def batch(self, state_dim: int) -> int:
        """Sequences per step at state size N: `batch_size` at N >= `batch_width`, times
        batch_width / N below it (1,024 at N=48, 768 at N=64, 384 at N=128, 256 at N=256).

        Why: at N=48 the no-input unroller gained more from sequences than from steps
        (`valid`, gru-h48-ni-s0: 5,657 steps of 256 read 0.881, 16,000 of 256 0.888, 5,657 of
        1,024 0.892; gru-h48-ar-s0 0.384 and 0.399), and there a step is mostly fixed cost, so
        the larger batch costs about 2.3x time for 4x the sequences. At N=256 a step is all
        arithmetic and 256 is enough (gru-h256-ar-s0: 0.947, and 0.957 at about 3x the steps).
        `batch_width` 192, not 256: at 256 the core tier's fit took 16 wall-minutes on 2 cores
        (records from c358d6e), over the 15-minute goal, for at most 0.014 on `valid`.
        """
        return max(self.batch_size, round(self.batch_size * self.batch_width / int(state_dim)))

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Unroll all nine steps from h, then each row's own position."""
        with torch.no_grad():
            logits = self.net_(h.float(), self.n_pos_)
        return logits[torch.arange(h.shape[0]), position]
