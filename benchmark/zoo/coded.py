"""Calibration models: the reference-model interface on states whose code is known by construction.

One class, `CodedModel`, stores positions ``0 .. linear-1`` linearly and the rest as an onion;
the three calibration families only choose ``linear`` (see `benchmark.zoo.calibration`):

- a **linear position** p has its own subspace; the state gets ``codes[p, x_p]`` and the decoder
  reads ``logits_p = LINEAR_SCALE * codes[p] @ h`` (cosines with the unit code: linear in h);
- the **onion positions** q = linear..8 share one subspace (columns of ``basis``; all of h for
  `OnionCoded`) as ``u = sum_q GAMMA**(q - linear) e(x_q)`` (the paper's vecsum); decoder step q
  peels the earlier onion tokens and rescales: ``logits_q = readout((u - sum_(linear<=j<q)
  GAMMA**(j - linear) e(y_j)) / GAMMA**(q - linear))``, where y is the teacher-forced target
  (`ar`) or the decoder's own greedy prediction (`ni`, and `generate` in both variants).

Everything fixed by the construction is either a constant of `benchmark.zoo.calibration` or
a buffer saved with the weights (``codes``, ``basis``), so the weight file's sha256 pins the
whole model; only the onion part's embedding and read-out are parameters (learned). The
constructor makes a valid but unrefined code (random unit codes behind a random rotation);
`benchmark.zoo.calibrate` spreads the codes and trains the onion part.

No buffer holds a trivial tensor (an identity, zeros, the powers of GAMMA): the harness
refuses a fitted method that holds a copy of a model tensor, and a method may well compute
one of those itself.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.task import MAX_LEN, VOCAB_SIZE
from benchmark.zoo.calibration import GAMMA, HYBRID_LINEAR, LINEAR_SCALE, linear_block_sizes, onion_dim
from benchmark.zoo.interface import check_variant


class CodedModel(nn.Module):
    """Positions below `LINEAR` in their own linear subspaces, the others an onion in the rest.

    Args:
        hidden_size: N = state_dim.
        variant: ``"ar"`` (the onion decoder peels the teacher-forced previous tokens) or ``"ni"``
            (it peels its own predictions); linear positions need no decoder input either way.
    """

    LINEAR = 0  # how many leading positions are linear; subclasses set it
    codes: torch.Tensor  # (LINEAR, 30, N) buffer: each linear position's unit codes, already rotated
    basis: torch.Tensor  # (N, onion_size) buffer: the onion subspace (hybrid only; all of h for OnionCoded)
    embedding: nn.Parameter  # (30, onion_size): the onion's token embedding e (learned)
    readout: nn.Linear  # onion_size -> 30 (learned)

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__()
        check_variant(variant)
        self.hidden_size = hidden_size
        self.variant = variant
        self.sizes = linear_block_sizes(hidden_size, self.LINEAR)
        self.onion_size = onion_dim(hidden_size, self.LINEAR)
        if self.onion_size:
            self.embedding = nn.Parameter(torch.randn(VOCAB_SIZE, self.onion_size) / self.onion_size ** 0.5)
            self.readout = nn.Linear(self.onion_size, VOCAB_SIZE)
        if self.LINEAR:
            self.register_buffer("codes", torch.empty(self.LINEAR, VOCAB_SIZE, hidden_size))
            if self.onion_size:
                self.register_buffer("basis", torch.empty(hidden_size, self.onion_size))
            rotation, _ = torch.linalg.qr(torch.randn(hidden_size, hidden_size))
            codebooks = [nn.functional.normalize(torch.randn(VOCAB_SIZE, k), dim=1) for k in self.sizes]
            self.set_code(rotation, codebooks)

    @property
    def state_dim(self) -> int:
        return self.hidden_size

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def set_code(self, rotation: torch.Tensor, codebooks: list[torch.Tensor]) -> None:
        """Place codebook p (30, k_p) in rotation columns of block p; the onion gets the remaining columns.

        rotation (N, N) orthogonal: block p's subspace is spanned by its columns, so positions
        never overlap, and no coordinate of h belongs to one position alone.
        """
        start = 0
        with torch.no_grad():
            for p, (k, book) in enumerate(zip(self.sizes, codebooks)):
                self.codes[p] = book @ rotation[:, start : start + k].T
                start += k
            if self.onion_size:
                self.basis.copy_(rotation[:, start:])

    # --- the interface --------------------------------------------------------------------------

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (batch, pos) int64, lengths (batch,) -> h (batch, N) float32; tokens past L are ignored."""
        device = tokens.device
        valid = (torch.arange(MAX_LEN, device=device)[None, :] < lengths[:, None]).float()
        h = torch.zeros(tokens.shape[0], self.hidden_size, device=device)
        if self.LINEAR:
            picked = self.codes[torch.arange(self.LINEAR, device=device)[None, :], tokens[:, : self.LINEAR]]
            h = h + (picked * valid[:, : self.LINEAR, None]).sum(1)
        if self.onion_size:
            weights = valid[:, self.LINEAR :] * self._powers()
            h = h + self._from_onion((self.embedding[tokens[:, self.LINEAR : MAX_LEN]] * weights[..., None]).sum(1))
        return h

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, MAX_LEN, 30) from h (batch, N); differentiable in h and in the learned weights.

        targets (batch, MAX_LEN) int64: the `ar` onion decoder peels them (teacher forcing).
        """
        parts = []
        if self.LINEAR:
            parts.append(LINEAR_SCALE * torch.einsum("pvn,bn->bpv", self.codes, h))
        if self.onion_size:
            if self.variant == "ni":
                parts.append(self._peel_greedy(self._to_onion(h)))
            elif targets is None:
                raise ValueError("the `ar` decoder peels the previous tokens: pass targets (teacher forcing) "
                                 "or use generate() for greedy decoding")
            else:
                parts.append(self._peel_teacher(self._to_onion(h), targets[:, self.LINEAR : MAX_LEN]))
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def generate(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: tokens (batch, MAX_LEN) int64 (the onion peels its own predictions)."""
        parts = []
        if self.LINEAR:
            parts.append(LINEAR_SCALE * torch.einsum("pvn,bn->bpv", self.codes, h))
        if self.onion_size:
            parts.append(self._peel_greedy(self._to_onion(h)))
        return torch.cat(parts, dim=1).argmax(-1)

    # --- the onion part -------------------------------------------------------------------------

    def _powers(self) -> torch.Tensor:
        """(k,) GAMMA**i for the k onion positions; computed, never stored (see the module docstring)."""
        return GAMMA ** torch.arange(MAX_LEN - self.LINEAR, dtype=torch.float32, device=self.embedding.device)

    def _to_onion(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.basis if self.LINEAR else h

    def _from_onion(self, u: torch.Tensor) -> torch.Tensor:
        return u @ self.basis.T if self.LINEAR else u

    def _peel_teacher(self, u: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Step i reads u minus the layers of previous[:, :i], rescaled by GAMMA**-i: (batch, k, 30)."""
        powers = self._powers()
        layers = self.embedding[previous] * powers[:, None]  # (batch, k, m)
        remainders = u[:, None, :] - (torch.cumsum(layers, dim=1) - layers)
        return self.readout(remainders / powers[:, None])

    def _peel_greedy(self, u: torch.Tensor) -> torch.Tensor:
        """Read, subtract the predicted token's layer, read on: (batch, k, 30), differentiable in u."""
        out = []
        for power in self._powers().tolist():
            logits = self.readout(u / power)
            out.append(logits)
            u = u - power * self.embedding[logits.argmax(-1)]
        return torch.stack(out, dim=1)


class OnionCoded(CodedModel):
    """Every position in one shared subspace, told apart by magnitude: h = sum_p GAMMA**p e(x_p)."""

    LINEAR = 0


class LinearCoded(CodedModel):
    """Every position in its own subspace behind a random rotation, read linearly; nothing is learned."""

    LINEAR = MAX_LEN


class HybridCoded(CodedModel):
    """Positions 0..3 linear (as `LinearCoded`), positions 4..8 an onion in the remaining subspace."""

    LINEAR = HYBRID_LINEAR
