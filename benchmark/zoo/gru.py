"""The reference model of PROTOCOL §2: one GRU shared by encoder and decoder.

`RepeatGRU` is also the *reference-model interface*: any recurrent model a researcher wants
to score must offer the same four members (see `docs/MODEL_INTERFACE.md`):

- ``state_dim`` (int) and ``vocab_size`` (int, 30),
- ``encode(tokens, lengths) -> h``  tokens (batch, pos) int64, lengths (batch,) int64,
  h (batch, state_dim) float32: the state the whole benchmark is about,
- ``decode(h, targets=None) -> logits``  (batch, MAX_LEN, vocab) float32, differentiable in h,
  teacher-forced on ``targets`` (batch, MAX_LEN) when the decoder reads its previous token,
- ``generate(h) -> tokens``  (batch, MAX_LEN) int64, greedy decoding.

Outputs at positions >= a sequence's length are meaningless and ignored by every metric;
running all MAX_LEN steps for every sequence keeps the batch rectangular (no packing),
which is both simpler and faster on a CPU.
"""

from __future__ import annotations

import contextlib
import io

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from benchmark.task import MAX_LEN, NO_INPUT, SOS, VARIANTS, VOCAB_SIZE

PAPER_URL = "https://arxiv.org/abs/2408.10920"


class RepeatGRU(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="onionbench",
    tags=["onionbench", "interpretability", "gru", "sequence-repetition"],
    license="mit",
):
    """Single-layer GRU trained to repeat its input (Csordás et al., 2024).

    Args:
        hidden_size: N, the size of the GRU state and of the embedding.
        variant: ``"ar"`` (decoder reads SOS, then the previous target token) or ``"ni"``
            (decoder reads SOS, then NO_INPUT: it must count positions itself).
    """

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
        self.hidden_size = hidden_size
        self.variant = variant
        self.embedding = nn.Embedding(VOCAB_SIZE + (1 if variant == "ar" else 2), hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, VOCAB_SIZE)

    @property
    def state_dim(self) -> int:
        return self.hidden_size

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final encoder state. tokens (batch, pos) int64, lengths (batch,) -> h (batch, N) float32."""
        outputs, _ = self.gru(self.embedding(tokens))  # (batch, pos, N); output t == state after t+1 tokens
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        return outputs.gather(1, index).squeeze(1)

    def decoder_inputs(self, targets: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Decoder input ids (batch, MAX_LEN): SOS, then previous targets (ar) or NO_INPUT (ni)."""
        if self.variant == "ni":
            inputs = torch.full((batch, MAX_LEN), NO_INPUT, dtype=torch.int64)
        else:
            if targets is None:
                raise ValueError("the `ar` decoder reads its previous token: pass targets (teacher forcing) "
                                 "or use generate() for greedy decoding")
            inputs = torch.roll(targets[:, :MAX_LEN], 1, dims=1).clone()
        inputs[:, 0] = SOS
        return inputs

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, MAX_LEN, 30) from state h (batch, N); differentiable in h and weights.

        targets (batch, MAX_LEN) int64 are needed only by the `ar` variant (teacher forcing);
        the `ni` variant ignores them.
        """
        inputs = self.decoder_inputs(targets, h.shape[0])
        outputs, _ = self.gru(self.embedding(inputs), h.unsqueeze(0).contiguous())
        return self.readout(outputs)

    @torch.no_grad()
    def generate(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: tokens (batch, MAX_LEN) int64 from h (batch, N)."""
        if self.variant == "ni":
            return self.decode(h).argmax(-1)
        token = torch.full((h.shape[0], 1), SOS, dtype=torch.int64)
        state, out = h.unsqueeze(0).contiguous(), []
        for _ in range(MAX_LEN):
            step, state = self.gru(self.embedding(token), state)
            token = self.readout(step).argmax(-1)
            out.append(token)
        return torch.cat(out, dim=1)


def correct_sequences(predicted: torch.Tensor, expected: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch,) bool: every position < length matches. Both token tensors (batch, >=L) int64."""
    valid = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
    return ((predicted[:, :MAX_LEN] == expected[:, :MAX_LEN]) | ~valid).all(dim=1)


@torch.no_grad()
def repeat_correct(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """(batch,) bool: does the model repeat each sequence exactly (greedy decoding)?"""
    parts = [torch.zeros(0, dtype=torch.bool)]  # so that an empty batch gives an empty result
    for start in range(0, tokens.shape[0], batch_size):
        t, n = tokens[start : start + batch_size], lengths[start : start + batch_size]
        parts.append(correct_sequences(model.generate(model.encode(t, n)), t, n))
    return torch.cat(parts)


def load_model(folder: str, **kwargs) -> RepeatGRU:
    """Load a model folder strictly: a missing or unexpected tensor is an error, not a warning."""
    with contextlib.redirect_stdout(io.StringIO()):  # huggingface_hub prints "Loading weights from ..."
        return RepeatGRU.from_pretrained(folder, strict=True, **kwargs)
