"""additive-table: the WRITE ceiling of additive codes, as a declared method (issue 30 item 3).

Why a reference: WRITE given the current token mostly asks whether *some* additive
per-(position, token) edit moves the decoder, and both the onion (V[p, t] = s(p) * tanh E[t])
and a linear code (V[p, t] = the token's mean code in position p's subspace) are such edits.
A free table V (9 x 30 x N) is the largest additive form: no additive hypothesis can WRITE
better on the same fit budget, so each method's WRITE is read against it.

Fit: one pool of encoded training states; V starts at the per-(position, token) class means
of h and is trained with AdamW (cosine decay) on the decoder's cross-entropy after a write,
like `onion`'s write. READ: nearest class mean (a linear form). INTERCHANGE: read both
states, write the source's tokens (the harness's read-write form). The fit returns a
`Declaration`: nothing of this file runs while the method is scored.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.harness.declared import Declaration


class AdditiveTable:
    def __init__(self, steps: int = 1500, batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 0.0,
                 pool_size: int = 20000, seed: int = 0) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.pool_size = pool_size
        self.seed = seed

    def fit(self, model, data) -> Declaration:
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.pool_size)
        means = _class_means(pool, int(model.vocab_size))
        table = nn.Parameter(means.clone())
        opt = torch.optim.AdamW([table], lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, self.steps) / max(self.steps, 1))))
        for _ in range(self.steps):
            h, position, token, current, wanted, lengths = _write_batch(data, pool, gen, self.batch_size,
                                                                         int(model.vocab_size))
            edited = h + table[position, token] - table[position, current]
            logits = model.decode(edited, wanted)
            valid = torch.arange(wanted.shape[1])[None, :] < lengths[:, None]
            loss = nn.functional.cross_entropy(logits[valid], wanted[valid])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        # nearest class mean: argmin |h - mu|^2 = argmax (mu . h - |mu|^2 / 2)
        return Declaration(read=("linear", {"weight": means, "bias": -0.5 * (means**2).sum(-1)}),
                           write=("additive-table", {"table": table.detach().clone()}),
                           interchange=("read-write", {}))


def _class_means(pool, vocab: int) -> torch.Tensor:
    """(P, V, N) mean state of the pool's sequences with token t at position p (0 where none)."""
    n_pos, dim = pool.tokens.shape[1], pool.states.shape[1]
    means = torch.zeros(n_pos, vocab, dim)
    for p in range(n_pos):
        rows = pool.lengths > p
        for t in range(vocab):
            hit = rows & (pool.tokens[:, p] == t)
            if hit.any():
                means[p, t] = pool.states[hit].mean(0)
    return means


def _write_batch(data, pool, gen: torch.Generator, size: int, vocab: int):
    """A random pool batch, a random position < L each, a uniform random wanted token; never
    towards an evaluation sequence."""
    idx = torch.randint(0, pool.states.shape[0], (size,), generator=gen)
    tokens, lengths, h = pool.tokens[idx], pool.lengths[idx], pool.states[idx]
    position = (torch.rand(size, generator=gen) * lengths).long()
    rows = torch.arange(size)
    current = tokens[rows, position]
    token = torch.randint(0, vocab, (size,), generator=gen)
    wanted = tokens.clone()
    wanted[rows, position] = token
    keep = ~data.is_heldout(wanted, lengths)
    return h[keep], position[keep], token[keep], current[keep], wanted[keep], lengths[keep]
