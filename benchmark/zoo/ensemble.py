"""K reference models of one hidden size trained as one batched ensemble.

The ensemble contract every family's trainer relies on (`LoopEnsemble` is the reference
implementation, correct for any family; `GRUEnsemble` and `benchmark.zoo.lstm.LSTMEnsemble`
are the fast ones): ``Ensemble(members)``, ``forward(tokens, lengths)`` -> teacher-forced
logits (K, batch, MAX_LEN, 30) for tokens (K, batch, MAX_LEN), ``member(k)`` -> a standalone
copy of member k, ``variants`` (list of str), ``state_dict``/``parameters`` for AdamW and
checkpoints.

Why: at N <= 128 a GRU training step on a CPU is dominated by per-operation overhead, not
arithmetic. Stacking the K members' weights and running every step as one batched matrix
product (``baddbmm``) pays that overhead once for all K models. Each member keeps its own
initialisation, its own data stream and its own loss term, and AdamW is elementwise, so
the ensemble computes exactly what K separate runs would (up to float summation order).

The GRU equations are PyTorch's (gate order r, z, n):
    r = sig(W_ir x + b_ir + W_hr h + b_hr);  z = sig(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
The input projection of a token is a row of ``E W_ih^T + b_ih``, computed once per step of
the optimiser as a (K, rows, 3N) table, so the input side of the GRU costs one gather.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.task import MAX_LEN, NO_INPUT, SOS, VOCAB_SIZE
from benchmark.zoo.gru import RepeatGRU
from benchmark.zoo.recurrent import StackedWeights, padded_embedding  # noqa: F401  (padded_embedding: re-export)


class GRUEnsemble(StackedWeights):
    """Stacked parameters of K `RepeatGRU` members (same hidden size, any variants)."""

    MEMBER = RepeatGRU

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (K, batch, MAX_LEN, 30) for tokens (K, batch, MAX_LEN), lengths (K, batch).

        Logits at positions >= length are zero. Batches sorted by length, longest first (see
        `sort_by_length`), run fastest: step t then touches only the rows still running.
        """
        table = torch.baddbmm(self.b_ih.unsqueeze(1), self.embedding, self.w_ih.transpose(1, 2))  # (K, rows, 3N)
        rows = rows_running(lengths)
        h = self._encode(lookup_rows(table, tokens), lengths, rows)
        outputs = self._decode(lookup_rows(table, teacher_inputs(tokens, self.is_ni)), h, rows)  # (K, batch, MAX_LEN, N)
        return torch.einsum("kbtn,kvn->kbtv", outputs, self.w_out) + self.b_out[:, None, None, :]

    def _step(self, gi: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gh = torch.baddbmm(self.b_hh.unsqueeze(1), h, self.w_hh.transpose(1, 2))
        n_ = self.hidden_size
        r, z = torch.sigmoid(gi[..., : 2 * n_] + gh[..., : 2 * n_]).chunk(2, dim=-1)
        n = torch.tanh(gi[..., 2 * n_ :] + r * gh[..., 2 * n_ :])
        return n + z * (h - n)

    def _encode(self, gi: torch.Tensor, lengths: torch.Tensor, rows: list[int]) -> torch.Tensor:
        k, batch = lengths.shape
        h = gi.new_zeros(k, batch, self.hidden_size)
        # unbind, not gi[:, :, t]: indexing's backward allocates a full zero tensor per step.
        for t, (gi_t, m) in enumerate(zip(gi.unbind(2), rows)):
            head = h[:, :m]
            # Freezing the state once a sequence has ended makes h its final encoder state.
            new = torch.where((t < lengths[:, :m]).unsqueeze(-1), self._step(gi_t[:, :m], head), head)
            h = new if m == batch else torch.cat([new, h[:, m:]], dim=1)
        return h

    def _decode(self, gi: torch.Tensor, h: torch.Tensor, rows: list[int]) -> torch.Tensor:
        batch, outputs = h.shape[1], []
        for gi_t, m in zip(gi.unbind(2), rows):
            h = self._step(gi_t[:, :m], h[:, :m])  # rows >= m have ended: their outputs are ignored
            outputs.append(F.pad(h, (0, 0, 0, batch - m)))
        return torch.stack(outputs, dim=2)


class LoopEnsemble(nn.Module):
    """K members of any family trained side by side, one after the other in each step.

    Why: a new family trains before anyone writes a batched ensemble for it (the
    architecture registry falls back to this); it is the ensemble contract at its plainest.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.variants = [m.variant for m in members]

    def member(self, k: int) -> nn.Module:
        """Member k as a standalone model (a copy of the current weights)."""
        return copy.deepcopy(self.members[k])

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (K, batch, MAX_LEN, 30); positions >= length are ignored by the loss."""
        return torch.stack([m.decode(m.encode(t, n), t) for m, t, n in zip(self.members, tokens, lengths)])


def teacher_inputs(tokens: torch.Tensor, is_ni: torch.Tensor) -> torch.Tensor:
    """Decoder inputs (K, batch, MAX_LEN) of every member: SOS, then the previous token (ar) or NO_INPUT (ni)."""
    dec_in = torch.roll(tokens, 1, dims=2)
    dec_in = torch.where(is_ni.view(-1, 1, 1), torch.full_like(dec_in, NO_INPUT), dec_in)
    dec_in[:, :, 0] = SOS
    return dec_in


def rows_running(lengths: torch.Tensor) -> list[int]:
    """For each step t, 1 + the last row index (over all members) whose sequence is still running."""
    index = torch.arange(1, lengths.shape[1] + 1, device=lengths.device)
    return [int(((lengths > t) * index).max()) for t in range(MAX_LEN)]


def sort_by_length(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder each member's batch longest-first (the loss does not depend on row order)."""
    order = lengths.argsort(dim=1, descending=True, stable=True)
    return tokens.gather(1, order.unsqueeze(-1).expand_as(tokens)), lengths.gather(1, order)


def lookup_rows(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Look up per-member rows: table (K, rows, D), ids (K, batch, T) -> (K, batch, T, D)."""
    k, rows, width = table.shape
    # One flat embedding lookup (offset ids) is much faster than gather, forward and backward.
    offsets = torch.arange(k, device=ids.device).view(k, 1, 1) * rows
    return F.embedding(ids + offsets, table.reshape(k * rows, width))


def masked_loss(logits: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean token cross-entropy over positions < length.

    Summing (not averaging) over members gives every member the gradient it would get alone.
    """
    valid = torch.arange(MAX_LEN, device=lengths.device) < lengths.unsqueeze(-1)  # (K, batch, MAX_LEN)
    ce = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), tokens.reshape(-1), reduction="none").view(valid.shape)
    per_member = (ce * valid).sum(dim=(1, 2)) / valid.sum(dim=(1, 2))
    return per_member.sum()
