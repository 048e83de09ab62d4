"""What every reference-model family shares: the decoder's inputs and the exact-match helpers.

Why a module of its own: the GRU, the LSTM and any later family implement the same
reference-model interface (``state_dim``, ``vocab_size``, ``variant``, ``encode``,
``decode(h, targets=None)``, ``generate``; see `docs/MODEL_INTERFACE.md`), so what does not
depend on the recurrence lives here once instead of in each family's module.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.task import MAX_LEN, NO_INPUT, SOS, VARIANTS, embedding_rows  # noqa: F401  (embedding_rows: re-export)


def check_variant(variant: str) -> None:
    """Refuse an unknown decoder variant with the list of valid ones."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")


def decoder_inputs(variant: str, targets: torch.Tensor | None, batch: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Decoder input ids (batch, MAX_LEN) on `device`: SOS, then previous targets (ar) or NO_INPUT (ni)."""
    if variant == "ni":
        inputs = torch.full((batch, MAX_LEN), NO_INPUT, dtype=torch.int64, device=device)
    else:
        if targets is None:
            raise ValueError("the `ar` decoder reads its previous token: pass targets (teacher forcing) "
                             "or use generate() for greedy decoding")
        inputs = torch.roll(targets[:, :MAX_LEN], 1, dims=1).clone()
    inputs[:, 0] = SOS
    return inputs


def correct_sequences(predicted: torch.Tensor, expected: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch,) bool: every position < length matches. Both token tensors (batch, >=L) int64."""
    valid = torch.arange(MAX_LEN, device=lengths.device)[None, :] < lengths[:, None]
    return ((predicted[:, :MAX_LEN] == expected[:, :MAX_LEN]) | ~valid).all(dim=1)


@torch.no_grad()
def repeat_correct(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, *,
                   batch_size: int = 2048) -> torch.Tensor:
    """(batch,) bool: does the model repeat each sequence exactly (greedy decoding)?"""
    parts = [torch.zeros(0, dtype=torch.bool)]  # so that an empty batch gives an empty result
    for start in range(0, tokens.shape[0], batch_size):
        t, n = tokens[start : start + batch_size], lengths[start : start + batch_size]
        parts.append(correct_sequences(model.generate(model.encode(t, n)), t, n))
    return torch.cat(parts)
