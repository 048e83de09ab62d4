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

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from benchmark.zoo.recurrent import RepeatRNN


class RepeatGRU(
    RepeatRNN,
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

    RNN_NAME = "gru"
    RNN_CLASS = nn.GRU

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__(hidden_size, variant)  # the Hub mixin records these two arguments as the config

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final encoder state. tokens (batch, pos) int64, lengths (batch,) -> h (batch, N) float32."""
        outputs, _ = self.recurrence(self.embedding(tokens))  # (batch, pos, N); output t == state after t+1 tokens
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.hidden_size)
        return outputs.gather(1, index).squeeze(1)

    def recurrent_state(self, state: torch.Tensor) -> torch.Tensor:
        """(batch, N) -> nn.GRU's initial state (1, batch, N)."""
        return state.unsqueeze(0).contiguous()
