"""The frozen evaluation plan: which edit every test sequence gets (PROTOCOL §4).

The paper redrew positions, tokens and pairings at every evaluation, so its test was itself
random. Here they are a pure function of the test split and `PLAN_SEED`, so every method
is scored on identical cases and a re-score gives identical numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.data import Sequences
from benchmark.task import MAX_LEN, VOCAB_SIZE

PLAN_SEED = 2024


@dataclass(frozen=True)
class EvalPlan:
    """Per test sequence i (all tensors have batch = len(test)):

    - write_position (batch,) int64 < length, write_token (batch,) int64 != the current token;
    - partner (batch,) int64: the source sequence (same length, another sequence) whose
      tokens base i receives where swap_mask (batch, 9) bool is True (prob. 0.5 per position < L).
    """

    write_position: torch.Tensor
    write_token: torch.Tensor
    partner: torch.Tensor
    swap_mask: torch.Tensor

    def write_targets(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, 9): each test sequence (tokens (batch, 9)) with its write position set to the write token."""
        expected = tokens.clone()
        expected[torch.arange(tokens.shape[0]), self.write_position] = self.write_token
        return expected

    def interchange_targets(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, 9): the base with its masked positions taken from the partner."""
        return torch.where(self.swap_mask, tokens[self.partner], tokens)


def make_plan(test: Sequences, seed: int = PLAN_SEED) -> EvalPlan:
    """Draw the plan; each length group is shuffled and each base paired with its successor."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lengths = test.lengths.numpy()
    tokens = test.tokens.numpy()
    n = len(lengths)
    position = (rng.random(n) * lengths).astype(np.int64)  # uniform in [0, L)
    current = tokens[np.arange(n), position]
    token = (current + rng.integers(1, VOCAB_SIZE, size=n)) % VOCAB_SIZE  # uniform over the 29 others
    partner = np.empty(n, dtype=np.int64)
    for length in np.unique(lengths):
        members = rng.permutation(np.flatnonzero(lengths == length))
        partner[members] = np.roll(members, -1)
    mask = (rng.random((n, MAX_LEN)) < 0.5) & (np.arange(MAX_LEN)[None, :] < lengths[:, None])
    return EvalPlan(torch.from_numpy(position), torch.from_numpy(token), torch.from_numpy(partner),
                    torch.from_numpy(mask))
