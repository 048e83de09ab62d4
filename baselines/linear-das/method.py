"""DAS-style linear subspaces (Geiger et al.; the paper's "Linear Unigram" intervention).

Hypothesis: after a learned rotation R, each position's token lives in its own set of
coordinates. The assignment of coordinates to the 9 position variables (or to a "keep the
base" slot) is learned with a straight-through hard Gumbel-softmax, as in the paper's
autosegmentation, with the paper's regulariser ``mask_reg * (mean of the variable columns
of the assignment logits - mean of the keep column)``, which nudges unneeded coordinates
towards "keep the base".

Training: pairs of *already encoded* training states of equal length, drawn from one pool;
each position is taken from the source with probability 0.5, and the intervened state must
decode to the mixed sequence through the frozen decoder. Pairing inside a pool (as the
paper pairs inside a batch) means a step encodes nothing, so the number of steps is not
tied to the encoding budget; only the pool is.

Differences from the paper (table in baselines/README.md): all lengths 2..9 (the
benchmark's INTERCHANGE track), a far shorter schedule at a 10x higher lr with a warm-up and
cosine decay, a rotation started from the class means' directions instead of at random
(issue 34: the paper's 60,000-step plateau in 750 steps), and a Cayley orthogonal map instead
of the matrix exponential (same set of rotations, about 8x cheaper per step at N=256).

A declared method (issue 28): fit returns the forms "linear" (read: the per-position
classifiers folded back through the rotation), "additive-table" (write: the mean-code
differences, rotated back) and "rotation-swap" (interchange: the rotation and each
coordinate's owner), and scoring runs only the harness's forms.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.harness.declared import Declaration
from benchmark.harness.fitting import AdamWSteps, class_mean_rotation, position_codes, warmup_cosine


class _Intervention(nn.Module):
    """Rotation + autosegmentation; used only during fit (parametrised modules do not pickle)."""

    def __init__(self, dim: int, n_vars: int, orthogonal_map: str) -> None:
        super().__init__()
        self.rotation = nn.utils.parametrizations.orthogonal(nn.Linear(dim, dim, bias=False),
                                                             orthogonal_map=orthogonal_map)
        self.assign_logits = nn.Parameter(torch.randn(dim, n_vars + 1) * 0.01)  # the paper's init; last: keep base

    def forward(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Training interchange with a hard Gumbel-softmax assignment (straight-through)."""
        assign = F.gumbel_softmax(self.assign_logits, tau=1.0, hard=True)
        return _interchange(self.rotation.weight, assign[:, :-1], h_base, h_source, mask)

    def keep_penalty(self) -> torch.Tensor:
        """The paper's autosegmentation regulariser (before its 0.001 factor)."""
        return self.assign_logits[:, :-1].mean() - self.assign_logits[:, -1].mean()


def _interchange(rotation: torch.Tensor, owners: torch.Tensor, h_base: torch.Tensor, h_source: torch.Tensor,
                 mask: torch.Tensor) -> torch.Tensor:
    """Swap the rotated coordinates of the masked variables; owners (dim, n_vars) one-hot rows."""
    z_base, z_source = h_base @ rotation.T, h_source @ rotation.T
    take = mask.float() @ owners.T  # (batch, dim): 1 where the source wins
    return (z_base + take * (z_source - z_base)) @ rotation


class LinearDAS:
    """Rotation + learned per-position subspaces; a native (rotation-swap) interchange."""

    def __init__(self, steps: int = 750, batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 0.1,
                 mask_reg: float = 1e-3, pool_size: int = 100000, read_samples: int = 20000,
                 read_max_iter: int = 1000, orthogonal_map: str = "cayley", seed: int = 0,
                 lengths: list[int] | None = None, init: str = "class-means", schedule: str = "cosine",
                 warmup: float = 0.05, init_samples: int = 20000, init_logit: float = 6.0) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.mask_reg = mask_reg
        self.pool_size = pool_size
        self.read_samples = read_samples
        self.read_max_iter = read_max_iter
        self.orthogonal_map = orthogonal_map
        self.seed = seed
        # Train on pairs of these lengths only; None or [] = every length 2..9 (the INTERCHANGE
        # track's mix). The paper trains and tests its linear intervention on length 9: [9].
        self.lengths = lengths
        # Issue 34: start from the class means' directions and decay the lr (see `_warm_start`
        # and `_train`); "random" and "constant" are the paper's start and schedule.
        if init not in ("class-means", "random") or schedule not in ("cosine", "constant"):
            raise ValueError(f"init={init!r} (class-means or random), schedule={schedule!r} (cosine or constant)")
        self.init = init
        self.schedule = schedule
        self.warmup = warmup
        self.init_samples = init_samples
        self.init_logit = init_logit

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> Declaration:
        """Encode one pool, train the intervention on pairs from it, declare plain tensors."""
        pool = data.sample(self.pool_size)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(pool.tokens.shape[1]), int(model.vocab_size)
        with torch.random.fork_rng():  # seeded init, pairs and Gumbel noise; the global RNG is left alone
            torch.manual_seed(self.seed)
            net = _Intervention(int(model.state_dim), self.n_pos_, self.orthogonal_map)
            if self.init == "class-means":
                self._warm_start(net, pool)
            self._train(net, model, data, pool)
        with torch.no_grad():
            self.rotation_ = net.rotation.weight.detach().clone()
            self.owner_ = net.assign_logits.argmax(-1)  # (dim,) variable per coordinate; n_pos_ = keep
        self._fit_codes(pool)
        return self.declaration()

    def _train(self, net: _Intervention, model, data, pool) -> None:
        """AdamW (the paper's weight decay) on the decoder's cross-entropy; the lr constant
        (the paper's) or on `fitting.warmup_cosine` (a linear warm-up over `warmup` of the
        steps, then a cosine decay to 0). Measured on `valid` (issue 34): at lr 1e-2 a
        constant schedule stalls below the paper's 60,000-step plateau on gru-h256-ar-s0
        (0.290 against 0.353); decaying the lr reaches it (0.338 at 3,000 steps from a
        random start).

        The lr is 10x the paper's 1e-3 because the schedule is 40x shorter: at 1e-3 and 1,500
        steps the coordinate assignment (logits start at N(0, 0.01^2) against Gumbel noise of
        scale 1) barely moves, and the baseline missed its own calibration model (INTERCHANGE
        0.176 on the linear code). The lr was chosen on `valid` curves (baselines/README.md).
        """
        factor = warmup_cosine(self.steps, self.warmup) if self.schedule == "cosine" else None
        optimiser = AdamWSteps(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, lr_factor=factor)
        by_length = _length_index(pool.lengths, self.lengths)
        for _ in range(self.steps):
            optimiser.step(self._loss(net, model, data, pool, by_length))

    def _loss(self, net: _Intervention, model, data, pool, by_length) -> torch.Tensor:
        """One batch of pairs: the decoder's cross-entropy after the interchange, plus the
        paper's keep penalty. `fit` and `LinearDASRun` both step on it."""
        h_base, h_source, mask, target, lengths = self._batch(data, pool, by_length)
        logits = model.decode(net(h_base, h_source, mask), target)
        valid = torch.arange(self.n_pos_)[None, :] < lengths[:, None]
        return F.cross_entropy(logits[valid], target[valid]) + self.mask_reg * net.keep_penalty()

    def _warm_start(self, net: _Intervention, pool) -> None:
        """Start the rotation on the directions along which each position's token means differ.

        `fitting.class_mean_rotation` gives those directions, each owned by its position, and
        completes the space at random as "keep the base". Where positions have subspaces of
        their own (an `ni` model at N=256) this alone scores INTERCHANGE 0.984 on `valid`
        before any step; on an `ar` model it halves the steps to the plateau (issue 34).

        Each owner starts at logit `init_logit` against 0 for the other nine slots. The hard
        Gumbel-softmax draws a slot with probability softmax(logits): at 3.0 a coordinate
        trains under another owner in 31 % of steps, at 6.0 in 2 %. On `valid`, 750 steps,
        gru-h256-ar-s0: 0.328 at 3.0, 0.349 at 6.0, 0.344 at 10.0 (the paper's 60,000-step
        plateau: 0.353); gru-h64-ni-s0 0.646 at 3.0, 0.671 at 6.0.
        """
        n = min(self.init_samples, pool.lengths.shape[0])
        rotation, owner = class_mean_rotation(pool.states[:n].float(), pool.tokens[:n], pool.lengths[:n], self.vocab_,
                                              keep=self.n_pos_)
        with torch.no_grad():
            net.rotation.weight = rotation
            logits = torch.zeros_like(net.assign_logits)
            logits[torch.arange(rotation.shape[0]), owner] = self.init_logit
            net.assign_logits.copy_(logits)

    def _batch(self, data, pool, by_length):
        """Random equal-length (base, source) pairs from the pool and a random position mask.

        The target is the base with the masked positions taken from the source; a target
        that happens to be an evaluation sequence is dropped (never train towards one).
        """
        order, starts, counts, bases = by_length
        base = (torch.randint(0, pool.lengths.shape[0], (self.batch_size,)) if bases is None
                else bases[torch.randint(0, bases.shape[0], (self.batch_size,))])
        lengths = pool.lengths[base]
        source = order[starts[lengths] + (torch.rand(self.batch_size) * counts[lengths]).long()]
        positions = torch.arange(self.n_pos_)[None, :] < lengths[:, None]
        mask = (torch.rand(self.batch_size, self.n_pos_) < 0.5) & positions
        target = torch.where(mask, pool.tokens[source], pool.tokens[base])
        keep = ~data.is_heldout(target, lengths)
        return pool.states[base][keep], pool.states[source][keep], mask[keep], target[keep], lengths[keep]

    def _fit_codes(self, pool) -> None:
        """Per position: mean code of each token on its coordinates, and a linear read-out
        (`benchmark.harness.fitting.position_codes`, the closing step of every DAS baseline).

        Both come from the training pool (no extra encoding). The read-outs are stored as
        (n_pos, vocab, dim) weights in rotated coordinates, zero outside the position's own.
        """
        n = min(self.read_samples, pool.lengths.shape[0])
        self.means_, self.read_weight_, self.read_bias_ = position_codes(
            pool.states[:n] @ self.rotation_.T, pool.tokens[:n], pool.lengths[:n], self.owner_, self.vocab_,
            max_iter=self.read_max_iter, seed=self.seed)

    def resumable(self, model, data) -> LinearDASRun:
        """The paper's fit (random start, constant lr) as a run that can stop and resume."""
        return LinearDASRun(self, model, data)

    # ---------------------------------------------------------- declaration
    def declaration(self) -> Declaration:
        """Read: logits = W[p] (R h) + c[p] = (W[p] R) h + c[p]. Write: h + (m[p, t] - m[p, cur]) R.
        Interchange: swap the rotated coordinates each masked position owns."""
        r = self.rotation_
        return Declaration(read=("linear", {"weight": self.read_weight_ @ r, "bias": self.read_bias_.clone()}),
                           write=("additive-table", {"table": self.means_ @ r}),
                           interchange=("rotation-swap", {"rotation": r.clone(), "owner": self.owner_.clone()}))


class LinearDASRun:
    """`fit`'s training at the paper's random start and constant lr, a few steps at a time,
    with its state saved and restored.

    Why: the paper trains its intervention for 60,000 steps at a constant lr 1e-3, and
    `benchmark.studies.long_schedule` scores one such fit at many points over several
    sessions. At a constant lr the first k steps of a long fit *are* a k-step fit (same
    start, same pairs, same optimiser state), so one run is the whole curve. The run draws
    from the global RNG, seeded as `fit` seeds it, and keeps that RNG's state between calls
    so that other work in the process cannot shift its pairs. tests/test_long_schedule.py
    checks that it equals the harness's fit and that a resumed run equals an uninterrupted one.
    """

    def __init__(self, method: LinearDAS, model, data) -> None:
        if (method.init, method.schedule) != ("random", "constant"):  # this run replays neither a warm start nor a decay
            raise ValueError("a resumable linear-das run replays the paper's start and constant lr only: "
                             "pass init=\"random\" and schedule=\"constant\"")
        self.method, self.model, self.data = method, model, data
        self.pool = data.sample(method.pool_size)
        method.n_pos_, method.vocab_ = int(self.pool.tokens.shape[1]), int(model.vocab_size)
        torch.manual_seed(method.seed)  # as `fit`'s forked, seeded RNG
        self.net = _Intervention(int(model.state_dim), method.n_pos_, method.orthogonal_map)
        self.optimiser = AdamWSteps(self.net.parameters(), lr=method.lr, weight_decay=method.weight_decay)
        self.by_length = _length_index(self.pool.lengths, method.lengths)
        self.rng = torch.get_rng_state()

    def steps(self, n: int) -> None:
        """n more training steps (the same pairs and loss as `fit`'s loop)."""
        torch.set_rng_state(self.rng)
        for _ in range(n):
            self.optimiser.step(self.method._loss(self.net, self.model, self.data, self.pool, self.by_length))
        self.rng = torch.get_rng_state()

    def fitted(self) -> Declaration:
        """The method as `fit` would return it now: the rotation so far, then its codes and read-outs."""
        out = copy.copy(self.method)
        with torch.no_grad():
            out.rotation_ = self.net.rotation.weight.detach().clone()
            out.owner_ = self.net.assign_logits.argmax(-1)
        out._fit_codes(self.pool)
        return out.declaration()

    def state(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.optimiser.state_dict(), "rng": self.rng}

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimiser.load_state_dict(state["opt"])
        self.rng = state["rng"]


def _length_index(lengths: torch.Tensor, only: list[int] | None = None) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Pool indices sorted by length, and each length's start and count in that order,
    so that a same-length partner is one random offset away; and the pool rows a base may
    be drawn from (None: any row, which keeps the default's random stream unchanged)."""
    order = torch.argsort(lengths, stable=True)
    counts = torch.bincount(lengths, minlength=int(lengths.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    if not only:
        return order, starts, counts, None
    bases = torch.nonzero(torch.isin(lengths, torch.tensor(sorted(only)))).flatten()
    if bases.numel() == 0:
        raise ValueError(f"lengths={list(only)}: no sequence of those lengths in the pool; choose from 2..9")
    return order, starts, counts, bases
