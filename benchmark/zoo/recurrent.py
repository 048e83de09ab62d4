"""What the GRU and the LSTM families share: the model around the recurrence, and the ensemble's weights.

Why one base class: `RepeatGRU` and `RepeatLSTM` were the same model line for line (one
embedding of width N, one recurrence shared by encoder and decoder, a linear read-out, the
`ar`/`ni` decoder inputs, greedy decoding) except for the recurrence and how the state a
method sees maps onto it. A family now states only those two things:

- ``RNN_NAME``: the attribute holding its `nn.GRU`/`nn.LSTM` (and so its state-dict prefix,
  which the embedded weights and the Hub files use: it cannot change);
- ``recurrent_state(state)``: the method-facing state (batch, state_dim) as the recurrence's
  initial state; and ``encode``, which differs in how the final state is collected.

`StackedWeights` is the same for the fast ensembles: stacking K members' weights and taking
member k back out were copies too; each ensemble keeps its own step, whose arithmetic is
family-specific and performance-critical.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.task import MAX_LEN, SOS, VOCAB_SIZE
from benchmark.zoo.interface import check_variant, decoder_inputs, embedding_rows


class RepeatRNN(nn.Module):
    """A single-layer recurrent model trained to repeat its input (Csordás et al., 2024).

    Args:
        hidden_size: N, the size of the recurrent state and of the embedding.
        variant: ``"ar"`` (decoder reads SOS, then the previous target token) or ``"ni"``
            (decoder reads SOS, then NO_INPUT: it must count positions itself).
    """

    RNN_NAME: ClassVar[str]
    RNN_CLASS: ClassVar[type[nn.Module]]

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__()
        check_variant(variant)
        self.hidden_size = hidden_size
        self.variant = variant
        self.embedding = nn.Embedding(embedding_rows(variant), hidden_size)
        setattr(self, self.RNN_NAME, self.RNN_CLASS(hidden_size, hidden_size, batch_first=True))
        self.readout = nn.Linear(hidden_size, VOCAB_SIZE)

    @property
    def recurrence(self) -> nn.Module:
        return getattr(self, self.RNN_NAME)

    @property
    def state_dim(self) -> int:
        return self.hidden_size

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def recurrent_state(self, state: torch.Tensor) -> Any:
        """The method-facing state (batch, state_dim) as the recurrence's initial state."""
        raise NotImplementedError

    def decoder_inputs(self, targets: torch.Tensor | None, batch: int,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """Decoder input ids (batch, MAX_LEN): SOS, then previous targets (ar) or NO_INPUT (ni)."""
        return decoder_inputs(self.variant, targets, batch, device)

    def decode(self, state: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, MAX_LEN, 30) from the state (batch, state_dim); differentiable in it and the weights.

        targets (batch, MAX_LEN) int64 are needed only by the `ar` variant (teacher forcing);
        the `ni` variant ignores them.
        """
        inputs = self.decoder_inputs(targets, state.shape[0], state.device)
        outputs, _ = self.recurrence(self.embedding(inputs), self.recurrent_state(state))
        return self.readout(outputs)

    @torch.no_grad()
    def generate(self, state: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: tokens (batch, MAX_LEN) int64 from the state (batch, state_dim)."""
        if self.variant == "ni":
            return self.decode(state).argmax(-1)
        token = torch.full((state.shape[0], 1), SOS, dtype=torch.int64, device=state.device)
        carried, out = self.recurrent_state(state), []
        for _ in range(MAX_LEN):
            step, carried = self.recurrence(self.embedding(token), carried)
            token = self.readout(step).argmax(-1)
            out.append(token)
        return torch.cat(out, dim=1)


_ROWS = VOCAB_SIZE + 2  # every member gets the `ni` table size; `ar` members never use the last row


def padded_embedding(model: Any) -> torch.Tensor:
    """A member's embedding table padded to the `ni` size, so members of both variants stack."""
    weight = model.embedding.weight.detach()
    return torch.cat([weight, weight.new_zeros(_ROWS - weight.shape[0], weight.shape[1])])


class StackedWeights(nn.Module):
    """K members' weights stacked for one batched step (the fast ensembles' shared half).

    Parameters: embedding (K, rows, N), padded to the `ni` table so both variants stack;
    w_ih, w_hh, b_ih, b_hh, the recurrence's; w_out, b_out, the read-out's. Their names are
    the checkpoints' keys.
    """

    MEMBER: ClassVar[type[RepeatRNN]]

    def __init__(self, members: list[Any]) -> None:
        super().__init__()
        sizes = {m.hidden_size for m in members}
        if len(sizes) != 1:
            raise ValueError(f"an ensemble needs one hidden size, got {sorted(sizes)}")
        self.hidden_size = sizes.pop()
        self.variants = [m.variant for m in members]
        self.embedding = nn.Parameter(torch.stack([padded_embedding(m) for m in members]))
        def stack(name: str) -> nn.Parameter:
            return nn.Parameter(torch.stack([getattr(m.recurrence, f"{name}_l0").detach() for m in members]))

        self.w_ih, self.w_hh = stack("weight_ih"), stack("weight_hh")  # this order: the checkpoints' keys
        self.b_ih, self.b_hh = stack("bias_ih"), stack("bias_hh")
        self.w_out = nn.Parameter(torch.stack([m.readout.weight.detach() for m in members]))
        self.b_out = nn.Parameter(torch.stack([m.readout.bias.detach() for m in members]))
        self.register_buffer("is_ni", torch.tensor([v == "ni" for v in self.variants]))

    def member(self, k: int) -> Any:
        """Member k as a standalone model of the family (a copy of the current weights)."""
        model = self.MEMBER(self.hidden_size, self.variants[k])
        rows = model.embedding.weight.shape[0]
        prefix = model.RNN_NAME
        state = {
            "embedding.weight": self.embedding[k, :rows], f"{prefix}.weight_ih_l0": self.w_ih[k],
            f"{prefix}.weight_hh_l0": self.w_hh[k], f"{prefix}.bias_ih_l0": self.b_ih[k],
            f"{prefix}.bias_hh_l0": self.b_hh[k], "readout.weight": self.w_out[k], "readout.bias": self.b_out[k],
        }
        model.load_state_dict({name: t.detach().clone() for name, t in state.items()}, strict=True)
        return model
