"""A toy model with a known, perfectly linear code, implementing the reference-model interface.

h is the concatenation of 9 one-hot blocks (one per position, zero beyond the length), so
the right read and write are known exactly and metrics can be computed by hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.task import MAX_LEN, VOCAB_SIZE


class OneHotModel(torch.nn.Module):
    """state_dim = 9 * 30; generate() reads each block's argmax."""

    variant = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(10.0))  # a parameter, so it can be frozen like a GRU

    @property
    def state_dim(self) -> int:
        return MAX_LEN * VOCAB_SIZE

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = (torch.arange(MAX_LEN) < lengths[:, None]).float()
        return (F.one_hot(tokens, VOCAB_SIZE).float() * valid[..., None]).reshape(len(tokens), -1)

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        return h.view(-1, MAX_LEN, VOCAB_SIZE) * self.scale

    def generate(self, h: torch.Tensor) -> torch.Tensor:
        return self.decode(h).argmax(-1)
