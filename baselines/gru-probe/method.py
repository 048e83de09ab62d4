"""GRU-probe baseline: a read-only recurrent decoder trained on the frozen state.

The paper's "GRU" probe (the paper's probe table): a *fresh* GRU(N, N) whose initial hidden state is
h, fed the embedding of SOS and then the previous token (``autoregressive = true``) or a
zero vector at every step (``false``), with a Linear(N, 30) read-out. It is trained with
teacher forcing on frozen training states, as in the paper.

Why it is here: it is the strongest read-out the paper reports, so it bounds from above
what any READ of h can recover, whatever the code's geometry. It says nothing about where
a token lives and declares only the READ track.

At test time the probe does not know the true tokens, so the autoregressive variant feeds
back its own greedy predictions (like `onion`'s peeling uses its own reads). Its READ at
position p is therefore the logits at decoding step p given its own guesses at 0..p-1.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _Decoder(nn.Module):
    """GRU(N, N) started from h; input = embedding of SOS / previous token, or zeros.

    The probe's own SOS is the extra embedding row `vocab` (it shares nothing with the
    reference model's embedding).
    """

    def __init__(self, n: int, vocab: int, n_pos: int, autoregressive: bool) -> None:
        super().__init__()
        self.autoregressive = autoregressive
        self.sos, self.n_pos = vocab, n_pos
        self.embedding = nn.Embedding(vocab + 1, n)
        self.cell = nn.GRUCell(n, n)
        self.readout = nn.Linear(n, vocab)

    def _input(self, prev: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(prev)
        return emb if self.autoregressive else torch.zeros_like(emb)

    def teacher_forced(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 9, 30) with the true previous tokens as inputs (training)."""
        prev = torch.cat([torch.full_like(tokens[:, :1], self.sos), tokens[:, :-1]], dim=1)
        out = []
        for step in range(self.n_pos):
            h = self.cell(self._input(prev[:, step]), h)
            out.append(self.readout(h))
        return torch.stack(out, dim=1)

    def greedy(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (batch, 9, 30) feeding back the probe's own argmax (test time)."""
        prev = torch.full((h.shape[0],), self.sos, dtype=torch.long)
        out = []
        for _ in range(self.n_pos):
            h = self.cell(self._input(prev), h)
            logits = self.readout(h)
            out.append(logits)
            prev = logits.argmax(-1)
        return torch.stack(out, dim=1)


class GRUProbeMethod:
    """A recurrent decoder reads the positions in order from h; read only."""

    tracks = ("read",)

    def __init__(self, n_samples: int = 50000, steps: int = 2000, batch_size: int = 256,
                 lr: float = 3e-3, weight_decay: float = 0.01, autoregressive: bool = True,
                 seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.autoregressive = autoregressive
        self.seed = seed

    def fit(self, model, data) -> GRUProbeMethod:
        """Train the decoder with teacher forcing on one pool of encoded training sequences."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        n_pos, self.vocab_ = int(pool.tokens.shape[1]), int(model.vocab_size)
        targets = torch.where(torch.arange(n_pos)[None, :] < pool.lengths[:, None], pool.tokens, -100)
        with torch.random.fork_rng():  # seeded init that leaves the global RNG alone
            torch.manual_seed(self.seed)
            self.net_ = _Decoder(int(model.state_dim), self.vocab_, n_pos, self.autoregressive)
        self._train(pool.states, pool.tokens, targets, gen)
        self.net_.eval()
        return self

    def _train(self, states: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor,
               gen: torch.Generator) -> None:
        """Minibatch AdamW with cosine decay; positions >= length are ignored (-100)."""
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / self.steps)))
        # Tokens past the length are padding; feed 0 there (their outputs are ignored).
        tokens = tokens.clamp(0, self.vocab_ - 1)
        for _ in range(self.steps):
            idx = torch.randint(0, states.shape[0], (self.batch_size,), generator=gen)
            logits = self.net_.teacher_forced(states[idx], tokens[idx])
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab_), targets[idx].reshape(-1), ignore_index=-100)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Greedy-decode all nine steps from h, then each row's own position."""
        with torch.no_grad():
            logits = self.net_.greedy(h.float())
        return logits[torch.arange(h.shape[0]), position]
