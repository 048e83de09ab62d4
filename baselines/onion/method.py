"""Onion baseline: the paper's magnitude ("onion") hypothesis, read and write.

Hypothesis (Csordás et al. 2024, the paper's §4.2-4.3): the final state is a sum of
per-position layers of different magnitude,

    h ~= c + sum_p tanh(E[x_p]) * s(p),    s(p) = g * gamma**p + p * lin + b,

with one learned token embedding E (30, N) and per-channel vectors g, gamma, lin, b.

WRITE (the paper's onion unigram intervention): h' = h + (tanh E[t] - tanh E[cur]) * s(p).
E and s are trained through the frozen decoder: take a training state h whose token at p
is `cur`, ask for token t instead, decode h' (teacher-forced on the wanted sequence for
the `ar` variant) and minimise the cross-entropy against the wanted sequence. Taking the
*encoded* sequence as the one being edited means only ordinary training sequences are
ever encoded; wanted sequences that happen to be held out are dropped from the batch.

READ (the paper's onion probe, "peeling"): a classifier reads position 0 from h, the
scaled embedding of its *predicted* token is subtracted, position 1 is read from the
remainder, and so on. The peel reuses the write's E and s, so the read agrees with the
write by construction (after a write, the remainder past p is exactly the old one). Only
the classifier is trained for reading, on remainders peeled with the true tokens.

INTERCHANGE: the harness's read-write: peel both states once, then write the source's
token at every masked position where they differ (the scaled-embedding differences add).

A declared method (issue 28): fit returns the forms "onion-peel" (read) and "onion"
(write) with these tensors, and scoring runs only the harness's forms.

Option ``free_scale`` adds a free per-position offset to s(p) (a looser onion: any
magnitude profile over positions). Off by default, to keep the paper's form;
benchmarks/onion_profile.py fits both and compares the profiles they learn.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from benchmark.harness.declared import Declaration
from benchmark.harness.fitting import Minibatches, train_minibatches


class OnionMethod:
    """Onion read (peel) and write (scaled embedding swap) on the final encoder state."""

    def __init__(self, steps: int = 1200, steps_width: int = 192, batch_size: int = 256, lr: float = 6e-2,
                 weight_decay: float = 0.0, warmup: float = 0.0, clip: float = 0.0, lin_init: float = 0.1,
                 pool_size: int = 20000, read_steps: int = 4000, read_hidden: int = 256, read_lr: float = 3e-2,
                 read_warmup: float = 0.05, read_clip: float = 1.0, free_scale: bool = False, seed: int = 0) -> None:
        self.steps = steps
        self.steps_width = steps_width
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.lin_init = lin_init
        self.pool_size = pool_size
        self.read_steps = read_steps
        self.read_warmup = read_warmup
        self.read_clip = read_clip
        self.read_hidden = read_hidden
        self.read_lr = read_lr
        self.free_scale = free_scale
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> Declaration:
        """Draw one pool of training states, learn the write through the decoder, then the read."""
        gen = torch.Generator().manual_seed(self.seed)
        pool = data.sample(self.pool_size)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(pool.tokens.shape[1]), int(model.vocab_size)
        self._init_write(int(model.state_dim), gen)
        self._train_write(model, data, pool, gen)
        self._init_read(int(model.state_dim), gen)
        self._train_read(pool, gen)
        return self.declaration()

    def _init_write(self, n: int, gen: torch.Generator) -> None:
        """E ~ N(0, 1), g = 1, gamma = 0.9, b = 0: the paper's init. lin starts at `lin_init`,
        default 0.1, which is the paper's *probe* init; the paper's *intervention* (the
        write trained here) starts lin at 1.0. 0.1 is kept until a measurement says
        otherwise (baselines/README.md, "onion: lin_init").

        With ``free_scale`` a free (9, N) offset, initialised at 0, is added to s(p): the
        magnitudes may then follow any per-position profile, not only g*gamma**p + p*lin + b.
        """
        self.embedding_ = nn.Parameter(torch.randn(self.vocab_, n, generator=gen))
        self.g_ = nn.Parameter(torch.ones(n))
        self.gamma_ = nn.Parameter(torch.full((n,), 0.9))
        self.lin_ = nn.Parameter(torch.full((n,), float(self.lin_init)))
        self.b_ = nn.Parameter(torch.zeros(n))
        self.offset_ = nn.Parameter(torch.zeros(self.n_pos_, n), requires_grad=bool(self.free_scale))

    def _write_params(self) -> list[nn.Parameter]:
        free = [self.offset_] if self.free_scale else []
        return [self.embedding_, self.g_, self.gamma_, self.lin_, self.b_, *free]

    def _train_write(self, model, data, pool, gen: torch.Generator) -> None:
        """The shared loop (`benchmark.harness.fitting`) on the decoder's cross-entropy after a write."""
        train_minibatches(self._write_params(), lambda idx: self._write_loss(model, data, pool, idx, gen),
                          pool.states.shape[0], steps=self.write_steps(int(model.state_dim)),
                          batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                          warmup=self.warmup, clip=self.clip, generator=gen)
        for p in (*self._write_params(), self.offset_):
            p.requires_grad_(False)

    def write_steps(self, n: int) -> int:
        """The write's steps at state size n: `steps`, times steps_width / n where n is smaller.

        Why more steps for small models only: on `valid` the write of the small `ni` models
        is the slowest to converge (gru-h64-ni-s0: WRITE 0.453 at 1,200 steps, 0.540 at
        4,800, 0.541 at 9,600), while a step costs least there; at N=256 a step costs most
        and the write gains about 0.01 per doubling (gru-h256-ni-s0: 0.913, 0.921, 0.934 at
        1,200, 2,400, 4,800), which the 15-minute core tier cannot buy (issue 34).
        steps_width = 0 keeps `steps` at every size.
        """
        if not self.steps_width:
            return self.steps
        return max(self.steps, round(self.steps * self.steps_width / n))

    def _write_loss(self, model, data, pool, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The pool rows `idx`, a random position < L each and a uniform random wanted token:
        the decoder's sequence cross-entropy after writing it."""
        tokens, lengths, h = pool.tokens[idx], pool.lengths[idx], pool.states[idx]
        position = (torch.rand(idx.shape[0], generator=gen) * lengths).long()
        rows = torch.arange(idx.shape[0])
        current = tokens[rows, position]
        token = torch.randint(0, self.vocab_, (idx.shape[0],), generator=gen)
        wanted = tokens.clone()
        wanted[rows, position] = token
        keep = ~data.is_heldout(wanted, lengths)  # never train towards an evaluation sequence
        logits = model.decode(self._edit(h[keep], position[keep], token[keep], current[keep]), wanted[keep])
        return _sequence_loss(logits, wanted[keep], lengths[keep])

    def _scales(self) -> torch.Tensor:
        """(9, N): s(p) = g * gamma**p + p * lin + b (+ offset[p] with ``free_scale``).

        Powers are taken by repeated product because a learned gamma may turn negative.
        """
        powers = [torch.ones_like(self.gamma_)]
        for _ in range(self.n_pos_ - 1):
            powers.append(powers[-1] * self.gamma_)
        p = torch.arange(self.n_pos_, dtype=torch.float32)[:, None]
        return self.g_ * torch.stack(powers) + p * self.lin_ + self.b_ + self.offset_

    def _edit(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor,
              current: torch.Tensor) -> torch.Tensor:
        codes = torch.tanh(self.embedding_)
        return h + (codes[token] - codes[current]) * self._scales()[position]

    # ----------------------------------------------------------------- read
    def _init_read(self, n: int, gen: torch.Generator) -> None:
        """Classifier on LayerNorm(remainder), shared across positions plus a position embedding."""
        hidden = self.read_hidden
        self.norm_ = nn.LayerNorm(n)
        self.inp_ = nn.Linear(n, hidden)
        self.pos_ = nn.Parameter(torch.zeros(self.n_pos_, hidden))
        self.out_ = nn.Linear(hidden, self.vocab_)
        with torch.no_grad():
            for layer in (self.inp_, self.out_):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)

    def _read_params(self) -> list[nn.Parameter]:
        return [*self.norm_.parameters(), *self.inp_.parameters(), self.pos_, *self.out_.parameters()]

    def _classify(self, remainder: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        return self.out_(torch.relu(self.inp_(self.norm_(remainder)) + self.pos_[position]))

    def _remainder(self, h: torch.Tensor, tokens: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """(batch, N): h with the true tokens of positions q < `position` peeled off."""
        layers = torch.tanh(self.embedding_)[tokens] * self._scales()  # (batch, 9, N)
        earlier = torch.arange(self.n_pos_)[None, :] < position[:, None]
        return h - (layers * earlier[..., None]).sum(1)

    def _train_read(self, pool, gen: torch.Generator) -> None:
        """Teacher-forced peeling: every (sequence, position < L) pair is one example.

        Remainders are built per minibatch, so memory stays small even for N = 1024.
        """
        valid = torch.arange(self.n_pos_)[None, :] < pool.lengths[:, None]
        seq, pos = torch.nonzero(valid, as_tuple=True)

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            s, p = seq[idx], pos[idx]
            return nn.functional.cross_entropy(self._classify(self._remainder(pool.states[s], pool.tokens[s], p), p),
                                               pool.tokens[s, p])

        train_minibatches(self._read_params(), loss_of, seq.shape[0], steps=self.read_steps,
                          batch_size=2 * self.batch_size, lr=self.read_lr, weight_decay=0.01, warmup=self.read_warmup,
                          clip=self.read_clip, generator=gen)
        for p in self._read_params():
            p.requires_grad_(False)

    # ------------------------------------------------------- long schedules
    def resumable(self, model, data) -> OnionRun:
        """The write's training as a run that can stop and resume (`OnionRun`)."""
        return OnionRun(self, model, data)

    # ---------------------------------------------------------- declaration
    def declaration(self) -> Declaration:
        """The fitted onion as forms: the peel reads and the scaled-embedding write share E and s."""
        codes, scales = torch.tanh(self.embedding_).detach(), self._scales().detach()
        peel = {"codes": codes, "scales": scales, "ln_weight": self.norm_.weight, "ln_bias": self.norm_.bias,
                "w1": self.inp_.weight, "b1": self.inp_.bias, "pos": self.pos_, "w2": self.out_.weight,
                "b2": self.out_.bias}
        return Declaration(read=("onion-peel", {k: v.detach().clone() for k, v in peel.items()}),
                           write=("onion", {"codes": codes.clone(), "scales": scales.clone()}),
                           interchange=("read-write", {}))


class OnionRun:
    """`fit`'s write at a constant lr, a few steps at a time, with its state saved and restored.

    Why: the paper trains an intervention for 60,000 steps at a constant lr 1e-3.
    `benchmark.studies.long_schedule` scores one such fit at many points and spreads it over
    several sessions; at a constant lr the first k steps of a long fit *are* a k-step
    constant-lr fit (same init, same batches, same optimiser state), so this is the whole
    learning curve for the price of its last point. The read is trained on a copy at each
    scored point, as `fit` would after k write steps. tests/test_long_schedule.py checks
    that a run stopped and resumed equals one that was not.
    """

    def __init__(self, method: OnionMethod, model, data) -> None:
        if method.warmup:  # a warm-up is a fraction of the total steps, which a resumable run does not know
            raise ValueError("a resumable onion run trains at a constant lr: pass warmup=0 (the paper's recipe has none)")
        self.method, self.model, self.data = method, model, data
        self.gen = torch.Generator().manual_seed(method.seed)
        self.pool = data.sample(method.pool_size)
        method.n_pos_, method.vocab_ = int(self.pool.tokens.shape[1]), int(model.vocab_size)
        method._init_write(int(model.state_dim), self.gen)
        # `fit`'s loop (`train_minibatches`) without its lr schedule: the same draws and steps
        self.loop = Minibatches(method._write_params(), lambda idx: method._write_loss(model, data, self.pool, idx, self.gen),
                                self.pool.states.shape[0], batch_size=method.batch_size, lr=method.lr,
                                weight_decay=method.weight_decay, clip=method.clip, generator=self.gen)

    def steps(self, n: int) -> None:
        """n more write steps (the same draws as `fit`'s loop)."""
        self.loop.run(n)

    def fitted(self) -> Declaration:
        """The method as `fit` would return it now: the write so far, then a read trained on a copy."""
        out = copy.deepcopy(self.method)
        for p in (*out._write_params(), out.offset_):
            p.requires_grad_(False)
        gen = torch.Generator()
        gen.set_state(self.gen.get_state())  # the read's draws continue the write's stream, as in `fit`
        out._init_read(int(self.model.state_dim), gen)
        out._train_read(self.pool, gen)
        return out.declaration()

    def state(self) -> dict:
        """Everything a resumed run needs: the write's tensors, the optimiser and the generator."""
        params = {name: getattr(self.method, name).detach().clone()
                  for name in ("embedding_", "g_", "gamma_", "lin_", "b_", "offset_")}
        return {"params": params, "opt": self.loop.optimiser.state_dict(), "gen": self.gen.get_state()}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for name, value in state["params"].items():
                getattr(self.method, name).copy_(value)
        self.loop.optimiser.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])


def _sequence_loss(logits: torch.Tensor, wanted: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy over positions < L."""
    valid = torch.arange(wanted.shape[1])[None, :] < lengths[:, None]
    return nn.functional.cross_entropy(logits[valid], wanted[valid])
