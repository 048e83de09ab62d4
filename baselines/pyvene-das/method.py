"""DAS written in pyvene (issue 33): the rotation is pyvene's own intervention module.

What a pyvene user writes for distributed alignment search (Geiger et al.), adapted to a
state that holds a whole sequence: one `pyvene.RotatedSpaceIntervention` on the final
encoder state (or `LowRankRotatedSpaceIntervention`, option ``intervention``), whose
rotated coordinates are split by pyvene's ``subspace_partition`` into 9 blocks of k
(k = N // 9 unless ``dims_per_position`` says otherwise), block p standing for position p.
It is trained as linear-das is: pairs of equal-length encoded training states from one
pool, the positions in a random mask taken from the source, the intervened state decoded
by the frozen decoder towards the mixed sequence.

Where it differs from linear-das (the comparison this baseline exists for):
- a fixed, equal partition instead of a learned assignment of coordinates to positions;
- pyvene's start (a random orthogonal matrix) and pyvene's orthogonal parametrisation
  (torch's default, the matrix exponential) instead of the class-means start and Cayley;
- one mask per step for the whole batch: pyvene takes a batch's subspaces as one list
  per example and runs a vectorised swap only when every example swaps the same blocks
  (otherwise a Python loop over the batch). Each step draws a new mask.

pyvene is an optional extra (``pip install 'onionbench[pyvene]'``); it is imported inside
`fit`, which runs in the sealed fit process, so nothing else needs it. What the fit returns
is plain data: the trained rotation (completed to N x N for the low-rank form) declared as
the reviewed "rotation-swap" interchange, with the per-position codes and read-outs every
DAS baseline ends with (`benchmark.harness.fitting.position_codes`). Scoring never runs
pyvene code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.harness.declared import Declaration
from benchmark.harness.fitting import position_codes, train_minibatches

INTERVENTIONS = ("rotated", "low-rank")


class PyveneDAS:
    """pyvene's rotated-space intervention, one block of coordinates per position."""

    def __init__(self, steps: int = 1500, batch_size: int = 256, lr: float = 1e-2, weight_decay: float = 0.0,
                 warmup: float = 0.05, intervention: str = "rotated", dims_per_position: int = 0,
                 pool_size: int = 100000, read_samples: int = 20000, read_max_iter: int = 1000, seed: int = 0) -> None:
        if intervention not in INTERVENTIONS:
            raise ValueError(f"intervention={intervention!r}: choose one of {', '.join(INTERVENTIONS)}")
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.intervention = intervention
        self.dims_per_position = dims_per_position
        self.pool_size = pool_size
        self.read_samples = read_samples
        self.read_max_iter = read_max_iter
        self.seed = seed

    def fit(self, model, data) -> Declaration:
        """Encode one pool, train pyvene's intervention through the decoder, declare plain tensors."""
        pool = data.sample(self.pool_size)
        dim, self.n_pos_, self.vocab_ = int(model.state_dim), int(pool.tokens.shape[1]), int(model.vocab_size)
        k = self.dims_per_position or dim // self.n_pos_
        if not 1 <= k * self.n_pos_ <= dim:
            raise ValueError(f"dims_per_position={k}: {self.n_pos_} blocks of it must fit in N={dim}")
        with torch.random.fork_rng():  # seeded init, pairs and masks; the global RNG is left alone
            torch.manual_seed(self.seed)
            iv = self._intervention(dim, k)
            partners = _same_length_partners(pool.lengths)
            train_minibatches(iv.parameters(), lambda idx: self._loss(iv, model, data, pool, partners, idx),
                              int(pool.lengths.shape[0]), steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                              weight_decay=self.weight_decay, warmup=self.warmup)
            self.rotation_, self.owner_ = as_rotation_swap(iv.rotate_layer.weight.detach(), k, self.n_pos_)
        n = min(self.read_samples, pool.lengths.shape[0])
        self.means_, self.read_weight_, self.read_bias_ = position_codes(
            pool.states[:n] @ self.rotation_.T, pool.tokens[:n], pool.lengths[:n], self.owner_, self.vocab_,
            max_iter=self.read_max_iter, seed=self.seed)
        return self.declaration()

    def _intervention(self, dim: int, k: int):
        """pyvene's module with the 9 position blocks as its subspace partition."""
        import pyvene  # the optional extra; only the fit process imports it

        partition = [[p * k, (p + 1) * k] for p in range(self.n_pos_)]
        if self.intervention == "rotated":
            return pyvene.RotatedSpaceIntervention(embed_dim=dim, subspace_partition=partition)
        return pyvene.LowRankRotatedSpaceIntervention(embed_dim=dim, low_rank_dimension=k * self.n_pos_,
                                                      subspace_partition=partition)

    def _loss(self, iv, model, data, pool, partners, idx: torch.Tensor) -> torch.Tensor:
        """Bases `idx`, an equal-length source each, one random mask (at least one position)
        for the batch; the decoder's cross-entropy towards the mixed sequence. A target that
        is an evaluation sequence is dropped (never train towards one)."""
        lengths = pool.lengths[idx]
        source = partners(lengths)
        mask = torch.rand(self.n_pos_) < 0.5
        mask[torch.randint(0, self.n_pos_, (1,))] = True
        inside = torch.arange(self.n_pos_)[None, :] < lengths[:, None]
        target = torch.where(mask[None, :] & inside, pool.tokens[source], pool.tokens[idx])
        keep = ~data.is_heldout(target, lengths)
        blocks = torch.nonzero(mask).flatten().tolist()
        h = iv(pool.states[idx][keep], pool.states[source][keep], subspaces=[blocks] * int(keep.sum()))
        logits = model.decode(h, target[keep])
        valid = inside[keep]
        return F.cross_entropy(logits[valid], target[keep][valid])

    def declaration(self) -> Declaration:
        """Read: (W[p] R) h + c[p]. Write: h + (m[p, t] - m[p, cur]) R. Interchange: swap each
        masked position's block of rotated coordinates (the trained pyvene swap, as data)."""
        r = self.rotation_
        return Declaration(read=("linear", {"weight": self.read_weight_ @ r, "bias": self.read_bias_.clone()}),
                           write=("additive-table", {"table": self.means_ @ r}),
                           interchange=("rotation-swap", {"rotation": r.clone(), "owner": self.owner_.clone()}))


def _same_length_partners(lengths: torch.Tensor):
    """A function from lengths to random pool rows of those lengths (a base's source)."""
    order = torch.argsort(lengths, stable=True)
    counts = torch.bincount(lengths)
    starts = torch.cumsum(counts, 0) - counts
    return lambda want: order[starts[want] + (torch.rand(want.shape[0]) * counts[want]).long()]


def as_rotation_swap(weight: torch.Tensor, k: int, positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """pyvene's rotate-layer weight -> the "rotation-swap" form's (rotation, owner).

    pyvene rotates by z = h @ W (W: N x N, or N x m with orthonormal columns for the
    low-rank form) and swaps the partition's coordinates of z; the form rotates by
    z = h @ R.T, so R's rows are W's columns. Coordinate i belongs to position i // k;
    those past the 9 blocks, and the directions a low-rank W leaves out (any orthonormal
    completion: they are kept from the base either way), are owned by no one (`positions`).
    tests/test_pyvene.py checks the declared swap against pyvene's own forward.
    """
    rows = weight.T.clone()
    m, dim = rows.shape
    if m < dim:
        q = torch.linalg.qr(torch.cat([rows.T, torch.randn(dim, dim - m)], 1))[0]
        rows = torch.cat([rows, q[:, m:].T])
    owner = torch.full((dim,), positions, dtype=torch.long)
    owner[: k * positions] = torch.arange(k * positions) // k
    return rows, owner
