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


class RandomSubspaceMethod:
    """Read, write and interchange in 9 random orthogonal blocks of the state."""

    def __init__(self, n_samples: int = 20000, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> RandomSubspaceMethod:
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
        return self

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

    # -------------------------------------------------------------- helpers
    def _cols(self, p: int) -> slice:
        return slice(p * self.block_, (p + 1) * self.block_)

    def _rotate(self, h: torch.Tensor) -> torch.Tensor:
        return h.float() @ self.rotation_.T

    def _unrotate(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.rotation_

    def _block_of(self, z: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """(batch, block): each row's block at its own position."""
        index = position[:, None] * self.block_ + torch.arange(self.block_)[None, :]
        return z.gather(1, index)

    # ------------------------------------------------------- read / write
    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Logits = minus the squared distance to each token's class mean in block p."""
        zp = self._block_of(self._rotate(h), position)  # (batch, block)
        centres = self.means_[position]  # (batch, 30, block)
        return -((zp[:, None, :] - centres) ** 2).sum(-1)

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor:
        """Replace block p by the mean code of `token` at p.

        `current` is used only to leave rows untouched where token == current: writing the
        token already there must change nothing, and pasting the class mean would.
        """
        z = self._rotate(h)  # a new tensor: h itself is never modified
        index = position[:, None] * self.block_ + torch.arange(self.block_)[None, :]
        z.scatter_(1, index, self.means_[position, token])
        return torch.where((token == current)[:, None], h.float(), self._unrotate(z))

    def interchange(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Take block p from the source wherever mask[:, p] is True; keep the rest of the base."""
        zb, zs = self._rotate(h_base), self._rotate(h_source)
        coord_mask = torch.zeros_like(zb, dtype=torch.bool)
        coord_mask[:, : self.n_pos_ * self.block_] = mask.repeat_interleave(self.block_, dim=1)
        return self._unrotate(torch.where(coord_mask, zs, zb))
