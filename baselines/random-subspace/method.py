"""Random-subspace baseline: the floor every real hypothesis should beat.

Hypothesis (deliberately uninformed): a fixed random orthogonal rotation R of the state,
cut into 9 equal blocks of rotated coordinates, holds position p in block p; the leftover
coordinates (state_dim mod 9) belong to no position and are always kept.

Nothing about the rotation is learned. The only statistics estimated from training states
are the class means of each block: mean of block p over states whose token at p is t.
That makes read a nearest-class-mean classifier and write a "paste the average code"
edit, so the method measures how far one gets by chance alignment alone.
"""

from __future__ import annotations

import torch

from benchmark.harness.declared import Declaration


class RandomSubspaceMethod:
    """Read, write and interchange in 9 random orthogonal blocks of the state."""

    def __init__(self, n_samples: int = 20000, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> Declaration:
        """Draw the rotation (seeded, independent of the data), then the class means."""
        n = int(model.state_dim)
        gen = torch.Generator().manual_seed(self.seed)
        q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))[None, :]  # Haar-uniform rotation
        self.rotation_ = q.T.contiguous().float()  # z = h @ rotation_.T, h = z @ rotation_
        batch = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(batch.tokens.shape[1]), int(model.vocab_size)
        self.block_ = n // self.n_pos_
        self.means_ = self._class_means(self._rotate(batch.states), batch.tokens, batch.lengths)
        return self.declaration()

    def _class_means(self, z: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(9, 30, block) mean of block p over states with token t at p.

        A (position, token) pair never seen (possible only with a tiny sample) falls back
        to the block's overall mean at that position, so read and write stay defined.
        """
        means = torch.zeros(self.n_pos_, self.vocab_, self.block_)
        for p in range(self.n_pos_):
            rows = lengths > p
            zp, tp = z[rows][:, self._cols(p)], tokens[rows, p]
            sums = torch.zeros(self.vocab_, self.block_).index_add_(0, tp, zp)
            counts = torch.bincount(tp, minlength=self.vocab_).float()[:, None]
            fallback = zp.mean(0) if zp.shape[0] else torch.zeros(self.block_)
            means[p] = torch.where(counts > 0, sums / counts.clamp(min=1), fallback)
        return means

    # ---------------------------------------------------------- declaration
    def declaration(self) -> Declaration:
        """The blocks as forms, all in rotated coordinates z = R h (block p = columns p*k .. p*k+k).

        Read ("linear"): the nearest class mean in block p. -|z_p - mu|^2 = 2 mu.z_p - |mu|^2 - |z_p|^2,
        and the last term is the same for every token, so the linear form has the same argmax.
        Write ("block-replace"): set block p to the token's mean. Interchange ("rotation-swap"):
        each block's coordinates belong to its position; the n mod 9 left over keep the base."""
        n = self.rotation_.shape[0]
        mask = torch.zeros(self.n_pos_, n)
        full = torch.zeros(self.n_pos_, self.vocab_, n)  # each position's means, in its own block's columns
        owner = torch.full((n,), self.n_pos_, dtype=torch.int64)
        for p in range(self.n_pos_):
            cols = self._cols(p)
            mask[p, cols], full[p, :, cols], owner[cols] = 1.0, self.means_[p], p
        r = self.rotation_
        return Declaration(read=("linear", {"weight": 2 * full @ r, "bias": -(self.means_ ** 2).sum(-1)}),
                           write=("block-replace", {"rotation": r.clone(), "mask": mask, "codes": full}),
                           interchange=("rotation-swap", {"rotation": r.clone(), "owner": owner}))

    # -------------------------------------------------------------- helpers
    def _cols(self, p: int) -> slice:
        return slice(p * self.block_, (p + 1) * self.block_)

    def _rotate(self, h: torch.Tensor) -> torch.Tensor:
        return h.float() @ self.rotation_.T
