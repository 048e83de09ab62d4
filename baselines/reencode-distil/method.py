"""reencode-distil: the hypothesis-free reference row (issue 28 item 5).

What it shows: how much of WRITE and INTERCHANGE a method reaches *without* saying where a
token lives. It reads the whole sequence out of h, edits the tokens, and produces a new
state from scratch with an encoder of its own:

- READ: a GRU(N, N) started from h, fed SOS then the previous token (the gru-probe recipe:
  teacher-forced in training, greedy on its own predictions at test time), and a linear
  read of the length from h (re-encoding needs it; the decoder's outputs past the length
  are unconstrained).
- Encoder: a fresh embedding + GRU(N), trained through the *frozen* decoder so that the
  model decodes its state to the sequence it was given (token cross-entropy on positions
  < L). It never sees the model's own states or weights: it is distilled through the
  decoder's behaviour only.
- WRITE(h, p, t): read tokens and length, set position p to t, re-encode (a row whose t is
  already there is returned unchanged). INTERCHANGE: read both states, take the source's
  tokens where masked, re-encode with the base's length.

An open method (code runs at scoring), with hypothesis "none": it is ranked on the open
board only and drawn as a reference line, never on the hypothesis board.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _Reader(nn.Module):
    """Recurrent read-out from h, plus the length (2..9) as a linear read of h."""

    def __init__(self, n: int, vocab: int, n_pos: int) -> None:
        super().__init__()
        self.sos, self.n_pos = vocab, n_pos
        self.embedding = nn.Embedding(vocab + 1, n)
        self.gru = nn.GRU(n, n, batch_first=True)
        self.readout = nn.Linear(n, vocab)
        self.length = nn.Linear(n, n_pos + 1)

    def teacher_forced(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        prev = torch.cat([torch.full_like(tokens[:, :1], self.sos), tokens[:, :-1]], dim=1)
        out, _ = self.gru(self.embedding(prev), h[None])
        return self.readout(out)

    def greedy(self, h: torch.Tensor) -> torch.Tensor:
        prev, state, out = torch.full((h.shape[0], 1), self.sos, dtype=torch.long), h[None], []
        for _ in range(self.n_pos):
            step, state = self.gru(self.embedding(prev), state)
            logits = self.readout(step[:, 0])
            out.append(logits)
            prev = logits.argmax(-1, keepdim=True)
        return torch.stack(out, dim=1)


class _Encoder(nn.Module):
    """Embedding + GRU(N); the state after the L-th token."""

    def __init__(self, n: int, vocab: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, n)
        self.gru = nn.GRU(n, n, batch_first=True)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embedding(tokens))
        return out[torch.arange(tokens.shape[0]), lengths - 1]


class ReencodeDistil:
    """Read everything, edit the tokens, re-encode with a student encoder."""

    def __init__(self, n_samples: int = 50000, read_steps: int = 3000, encode_steps: int = 2000,
                 batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 0.01, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.read_steps = read_steps
        self.encode_steps = encode_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed

    def fit(self, model, data) -> ReencodeDistil:
        pool = data.sample(self.n_samples)
        n, vocab, n_pos = int(model.state_dim), int(model.vocab_size), int(pool.tokens.shape[1])
        valid = torch.arange(n_pos)[None, :] < pool.lengths[:, None]
        with torch.random.fork_rng():  # seeded init and minibatches; the global RNG is left alone
            torch.manual_seed(self.seed)
            self.reader_ = _Reader(n, vocab, n_pos)
            self._train(self.reader_, self.read_steps, pool.lengths.shape[0],
                        lambda i: self._read_loss(pool.states[i], pool.tokens[i], pool.lengths[i], valid[i]))
            self.encoder_ = _Encoder(n, vocab)
            self._train(self.encoder_, self.encode_steps, pool.lengths.shape[0],
                        lambda i: _token_loss(model.decode(self.encoder_(pool.tokens[i], pool.lengths[i]),
                                                          pool.tokens[i]), pool.tokens[i], valid[i]))
        self.reader_.eval().requires_grad_(False)
        self.encoder_.eval().requires_grad_(False)
        return self

    def _read_loss(self, h, tokens, lengths, valid) -> torch.Tensor:
        return (_token_loss(self.reader_.teacher_forced(h, tokens), tokens, valid)
                + nn.functional.cross_entropy(self.reader_.length(h), lengths))

    def _train(self, net: nn.Module, steps: int, rows: int, loss_of) -> None:
        """Minibatch AdamW with cosine decay (a short CPU schedule: a high start, a quiet finish)."""
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(steps, 1))))
        for _ in range(steps):
            loss = loss_of(torch.randint(0, rows, (self.batch_size,)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()

    # ---------------------------------------------------- public interface
    def _read_all(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.reader_.greedy(h.float()).argmax(-1), self.reader_.length(h.float()).argmax(-1).clamp(min=1)

    def _encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.encoder_(tokens, lengths)

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.reader_.greedy(h.float())
        return logits[torch.arange(h.shape[0]), position]

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor:
        tokens, lengths = self._read_all(h)
        tokens[torch.arange(h.shape[0]), position] = token
        return torch.where((token == current)[:, None], h.float(), self._encode(tokens, lengths))

    def interchange(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        base, lengths = self._read_all(h_base)
        source, _ = self._read_all(h_source)
        return self._encode(torch.where(mask, source, base), lengths)


def _token_loss(logits: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy over positions < L."""
    return nn.functional.cross_entropy(logits[valid], tokens[valid])
