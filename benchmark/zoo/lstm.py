"""The `lstm` family: the paper's task and recipe with a single-layer LSTM instead of a GRU.

Why: the onion code was found in GRUs; an LSTM has a second state (the cell state c) with
additive updates and an output gate, exactly where a magnitude code might or might not
appear. Everything but the recurrence is the GRU's (PROTOCOL §2): one `nn.LSTM` shared by
encoder and decoder, one embedding table of width N, a linear read-out N -> 30, variants
`ar` / `ni`, PyTorch's default initialisation (no forget-gate bias trick: the same recipe).

The state a method sees is the final encoder state ``(h, c)`` concatenated, hidden state
first: ``state_dim = 2N``. Why both: the decoder continues from both, so a token can be kept
in either; a method that edits h alone would leave half of the decoder's input untouched.
The alternative (h only, c passed through unseen) would hide the cell state from methods
and is not what this family scores.
"""

from __future__ import annotations

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from benchmark.zoo.ensemble import lookup_rows, rows_running, teacher_inputs
from benchmark.zoo.recurrent import RepeatRNN, StackedWeights

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, batch, N): nn.LSTM's layout


class RepeatLSTM(
    RepeatRNN,
    PyTorchModelHubMixin,
    library_name="onionbench",
    tags=["onionbench", "interpretability", "lstm", "sequence-repetition"],
    license="mit",
):
    """Single-layer LSTM trained to repeat its input; the reference-model interface of `RepeatGRU`.

    Args:
        hidden_size: N, the size of h, of c and of the embedding (state_dim is 2N).
        variant: ``"ar"`` (decoder reads SOS, then the previous target token) or ``"ni"``
            (decoder reads SOS, then NO_INPUT: it must count positions itself).
    """

    RNN_NAME = "lstm"
    RNN_CLASS = nn.LSTM

    def __init__(self, hidden_size: int, variant: str = "ar") -> None:
        super().__init__(hidden_size, variant)  # the Hub mixin records these two arguments as the config

    @property
    def state_dim(self) -> int:
        return 2 * self.hidden_size

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final encoder state (h, c) concatenated: tokens (batch, pos) int64, lengths (batch,) -> (batch, 2N).

        Step by step, freezing a row once its sequence has ended: nn.LSTM returns c only after
        the last step, and the cell state after L tokens is part of the state.
        """
        x = self.embedding(tokens)
        h = x.new_zeros(1, tokens.shape[0], self.hidden_size)
        c = torch.zeros_like(h)
        steps = int(lengths.max()) if lengths.numel() else 0
        for t in range(steps):
            _, (h_new, c_new) = self.recurrence(x[:, t : t + 1], (h, c))
            running = (t < lengths).view(1, -1, 1)
            h, c = torch.where(running, h_new, h), torch.where(running, c_new, c)
        return torch.cat([h[0], c[0]], dim=-1)

    def recurrent_state(self, state: torch.Tensor) -> State:
        """(batch, 2N) -> nn.LSTM's (h, c), each (1, batch, N)."""
        h, c = state.split(self.hidden_size, dim=-1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    split_state = recurrent_state  # the name MODEL_INTERFACE.md's LSTM section uses


class LSTMEnsemble(StackedWeights):
    """Stacked parameters of K `RepeatLSTM` members (same N, any variants), one batched matmul per step.

    Why: as for the GRU (`benchmark.zoo.ensemble`), a small LSTM's step on a CPU is per-op
    overhead; batching K members pays it once. PyTorch's LSTM (gate order i, f, g, o):
        i, f, o = sig(W_i* x + b_i* + W_h* h + b_h*);  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
        c' = f * c + i * g;  h' = o * tanh(c')
    Both biases enter additively, so they are folded into the per-token input table
    (E W_ih^T + b_ih + b_hh): each still gets its own gradient and weight decay, as alone.
    """

    MEMBER = RepeatLSTM

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (K, batch, MAX_LEN, 30) for tokens (K, batch, MAX_LEN), lengths (K, batch).

        Batches sorted longest-first (`benchmark.zoo.ensemble.sort_by_length`) run fastest.
        """
        bias = (self.b_ih + self.b_hh).unsqueeze(1)
        table = torch.baddbmm(bias, self.embedding, self.w_ih.transpose(1, 2))  # (K, rows, 4N)
        rows = rows_running(lengths)
        h, c = self._encode(lookup_rows(table, tokens), lengths, rows)
        outputs = self._decode(lookup_rows(table, teacher_inputs(tokens, self.is_ni)), h, c, rows)
        return torch.einsum("kbtn,kvn->kbtv", outputs, self.w_out) + self.b_out[:, None, None, :]

    def _step(self, gi: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = torch.baddbmm(gi, h, self.w_hh.transpose(1, 2))  # (K, rows, 4N)
        n = self.hidden_size
        i, f = torch.sigmoid(gates[..., : 2 * n]).chunk(2, dim=-1)
        g, o = torch.tanh(gates[..., 2 * n : 3 * n]), torch.sigmoid(gates[..., 3 * n :])
        c = f * c + i * g
        return o * torch.tanh(c), c

    def _encode(self, gi: torch.Tensor, lengths: torch.Tensor, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        k, batch = lengths.shape
        h = gi.new_zeros(k, batch, self.hidden_size)
        c = torch.zeros_like(h)
        for t, (gi_t, m) in enumerate(zip(gi.unbind(2), rows)):
            head_h, head_c = h[:, :m], c[:, :m]
            new_h, new_c = self._step(gi_t[:, :m], head_h, head_c)
            running = (t < lengths[:, :m]).unsqueeze(-1)  # freeze ended sequences at their final state
            new_h, new_c = torch.where(running, new_h, head_h), torch.where(running, new_c, head_c)
            h = new_h if m == batch else torch.cat([new_h, h[:, m:]], dim=1)
            c = new_c if m == batch else torch.cat([new_c, c[:, m:]], dim=1)
        return h, c

    def _decode(self, gi: torch.Tensor, h: torch.Tensor, c: torch.Tensor, rows: list[int]) -> torch.Tensor:
        batch, outputs = h.shape[1], []
        for gi_t, m in zip(gi.unbind(2), rows):
            h, c = self._step(gi_t[:, :m], h[:, :m], c[:, :m])  # rows >= m have ended: outputs ignored
            outputs.append(torch.nn.functional.pad(h, (0, 0, 0, batch - m)))
        return torch.stack(outputs, dim=2)
