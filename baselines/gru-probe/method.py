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

Training (issue 34): the shared minibatch loop (`benchmark.harness.fitting`), 4,000 * sqrt(96 / N)
steps of 256 states (5,657 at N=48, 2,449 at N=256: `schedule`), lr 3e-2 at N <= 48 and
3e-2 * 48 / N above, a 5 % warm-up, cosine decay and clipping, all chosen on `valid` curves
(baselines/README.md; leaderboard/curves/REPORT.md). Each step runs only the rows still
within their length, which makes a step at N = 256 about 1.6x cheaper than the full
nine-step unroll.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.harness.fitting import longest_first, train_minibatches


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

    def teacher_forced_loss(self, h: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over positions < length, the true previous tokens as inputs
        (training); each step on the rows still running (`fitting.longest_first`)."""
        order, running = longest_first(lengths, self.n_pos)
        h, tokens = h[order], tokens[order]
        prev = torch.cat([torch.full_like(tokens[:, :1], self.sos), tokens[:, :-1]], dim=1)
        states, wanted = [], []
        for step, k in enumerate(running):
            if k == 0:
                break
            h = self.cell(self._input(prev[:k, step]), h[:k])
            states.append(h)
            wanted.append(tokens[:k, step])
        return nn.functional.cross_entropy(self.readout(torch.cat(states)), torch.cat(wanted))

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

    def __init__(self, n_samples: int = 50000, steps: int = 4000, steps_width: int = 96, batch_size: int = 256,
                 lr: float = 3e-2, lr_width: int = 48, weight_decay: float = 0.01, warmup: float = 0.05,
                 clip: float = 1.0, autoregressive: bool = True, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.steps = steps
        self.steps_width = steps_width
        self.batch_size = batch_size
        self.lr = lr
        self.lr_width = lr_width
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.autoregressive = autoregressive
        self.seed = seed

    def fit(self, model, data) -> GRUProbeMethod:
        """Train the decoder with teacher forcing on one pool of encoded training sequences."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        n_pos, self.vocab_ = int(pool.tokens.shape[1]), int(model.vocab_size)
        with torch.random.fork_rng():  # seeded init that leaves the global RNG alone
            torch.manual_seed(self.seed)
            self.net_ = _Decoder(int(model.state_dim), self.vocab_, n_pos, self.autoregressive)
        tokens = pool.tokens.clamp(0, self.vocab_ - 1)  # padding past the length is never read

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            return self.net_.teacher_forced_loss(pool.states[idx], tokens[idx], pool.lengths[idx])

        # The shared loop: AdamW, 5 % warm-up, cosine decay, gradient clipping (issue 34). The lr
        # falls as 1/N above `lr_width`: an Adam step moves every weight by about lr, so an N-wide
        # recurrent layer's output moves about N times that; one lr for all N was either slow at
        # N=48 or unstable at N=256 (valid, gru-h256-ni-s0: 0.940 at lr 2e-2 against 0.969 at 1e-2).
        lr = self.lr * min(1.0, self.lr_width / int(model.state_dim))
        train_minibatches(self.net_.parameters(), loss_of, pool.states.shape[0], steps=self.schedule(model.state_dim),
                          batch_size=self.batch_size, lr=lr, weight_decay=self.weight_decay,
                          warmup=self.warmup, clip=self.clip, generator=gen)
        self.net_.eval()
        return self

    def schedule(self, state_dim: int) -> int:
        """Steps at state size N: `steps` at N = `steps_width`, times sqrt(steps_width / N).

        Why: at one step count for every N the small models were short of their plateau and the
        large ones past it (`valid`, seed-0 curves at 4,000 steps: gru-h48-ni 0.933 against 0.962
        at 2x-4x; gru-h256-ar 0.977 at 0.5x against 0.990 at 2x). Scaling by 96 / N went too far
        at N=256 (1,500 steps: gru-h256-ni 0.972 against 0.992 at 2x); the square root keeps
        about 2,450 steps there and gives N=48 about 5,650. With the lr falling as 1/N as well,
        a small probe gets more of its cheap steps and a large one fewer of its dear ones.
        """
        return max(1, round(self.steps * math.sqrt(self.steps_width / int(state_dim))))

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Greedy-decode all nine steps from h, then each row's own position."""
        with torch.no_grad():
            logits = self.net_.greedy(h.float())
        return logits[torch.arange(h.shape[0]), position]
