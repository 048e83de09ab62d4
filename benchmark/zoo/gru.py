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

from benchmark.task import MAX_LEN, SOS, VOCAB_SIZE
from benchmark.zoo.interface import check_variant, decoder_inputs, embedding_rows


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
        check_variant(variant)
        self.hidden_size = hidden_size
        self.variant = variant
        self.embedding = nn.Embedding(embedding_rows(variant), hidden_size)
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

    def decoder_inputs(self, targets: torch.Tensor | None, batch: int,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """Decoder input ids (batch, MAX_LEN): SOS, then previous targets (ar) or NO_INPUT (ni)."""
        return decoder_inputs(self.variant, targets, batch, device)

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, MAX_LEN, 30) from state h (batch, N); differentiable in h and weights.

        targets (batch, MAX_LEN) int64 are needed only by the `ar` variant (teacher forcing);
        the `ni` variant ignores them.
        """
        inputs = self.decoder_inputs(targets, h.shape[0], h.device)
        outputs, _ = self.gru(self.embedding(inputs), h.unsqueeze(0).contiguous())
        return self.readout(outputs)

    @torch.no_grad()
    def generate(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: tokens (batch, MAX_LEN) int64 from h (batch, N)."""
        if self.variant == "ni":
            return self.decode(h).argmax(-1)
        token = torch.full((h.shape[0], 1), SOS, dtype=torch.int64, device=h.device)
        state, out = h.unsqueeze(0).contiguous(), []
        for _ in range(MAX_LEN):
            step, state = self.gru(self.embedding(token), state)
            token = self.readout(step).argmax(-1)
            out.append(token)
        return torch.cat(out, dim=1)
