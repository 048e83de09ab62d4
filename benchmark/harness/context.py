"""Everything about (model, test split, plan) that does not depend on the method.

The harness encodes the test split itself (a method never sees test tokens), finds the
cases the model repeats correctly, and computes the bounds every cell is read against.
Filtering (as MIB does): WRITE and INTERCHANGE use only the cases where the model repeats
the base sequence *and* the expected edited sequence, so a failure is the method's, not
the model's. By construction the oracle (re-encode the edited sequence) then scores 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.data import Sequences
from benchmark.harness.plan import EvalPlan
from benchmark.harness.tracks.base import CHUNK, by_length, mean
from benchmark.zoo.interface import correct_sequences, repeat_correct


@dataclass
class ModelContext:
    """The method-independent half of a cell."""

    model: torch.nn.Module
    test: Sequences
    plan: EvalPlan
    states: torch.Tensor  # (batch, state_dim) final encoder states of the test split
    base_correct: torch.Tensor  # (batch,) bool: model repeats the sequence
    write_keep: torch.Tensor  # (batch,) bool: base and edited sequence repeated
    interchange_keep: torch.Tensor  # (batch,) bool: base, source and expected sequence repeated

    @property
    def tokens(self) -> torch.Tensor:
        return self.test.tokens

    @property
    def lengths(self) -> torch.Tensor:
        return self.test.lengths


def model_context(model: torch.nn.Module, test: Sequences, plan: EvalPlan) -> ModelContext:
    """Encode the test split and find the cases the model itself gets right."""
    with torch.no_grad():
        states = torch.cat([model.encode(test.tokens[i : i + CHUNK], test.lengths[i : i + CHUNK])  # type: ignore[operator]
                            for i in range(0, len(test), CHUNK)])
    base = repeat_correct(model, test.tokens, test.lengths)
    edited = repeat_correct(model, plan.write_targets(test.tokens), test.lengths)
    swapped = repeat_correct(model, plan.interchange_targets(test.tokens), test.lengths)
    return ModelContext(model, test, plan, states.float(), base, base & edited, base & base[plan.partner] & swapped)


def oracle_metrics(ctx: ModelContext) -> dict[str, float]:
    """Re-encode the edited sequence (a cheat methods are not allowed) and decode.

    Off the leaderboard. For READ this is the model's own exact match ("model accuracy"),
    which a probe can exceed: not a ceiling. For WRITE and INTERCHANGE it is 1.0 on the
    kept cases by construction.
    """
    tokens, lengths = ctx.tokens, ctx.lengths
    idx = torch.nonzero(ctx.write_keep).squeeze(1)
    write = repeat_correct(ctx.model, ctx.plan.write_targets(tokens)[idx], lengths[idx])
    idx = torch.nonzero(ctx.interchange_keep).squeeze(1)
    swap = repeat_correct(ctx.model, ctx.plan.interchange_targets(tokens)[idx], lengths[idx])
    return {"read_sequence_accuracy": mean(ctx.base_correct), "write_iia": mean(write), "interchange_iia": mean(swap)}


def identity_metrics(ctx: ModelContext) -> dict[str, float]:
    """The floor of doing nothing (return the base state unchanged), on the same kept cases.

    WRITE: 0 by construction (the new token always differs). INTERCHANGE: the share of cases
    whose mask selects no position where base and source differ (about 5 %: short sequences
    often draw an empty mask).
    """
    return {"write_iia": 0.0, "interchange_iia": mean(_identity_interchange(ctx)[0])}


def _identity_interchange(ctx: ModelContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(success, lengths) of returning the base state unchanged, on the kept interchange cases."""
    idx = torch.nonzero(ctx.interchange_keep).squeeze(1)
    same = correct_sequences(ctx.plan.interchange_targets(ctx.tokens)[idx], ctx.tokens[idx], ctx.lengths[idx])
    return same, ctx.lengths[idx]


def identity_by_length(ctx: ModelContext) -> dict[str, dict[str, float]]:
    """The identity floor per sequence length (WRITE: 0 at every length)."""
    same, lengths = _identity_interchange(ctx)
    kept = ctx.lengths[ctx.write_keep]
    return {"write": {str(n): 0.0 for n in sorted(set(kept.tolist()))}, "interchange": by_length(same, lengths)}


def kept_by_length(ctx: ModelContext) -> dict[str, dict[str, int]]:
    """How many WRITE and INTERCHANGE cases are scored at each length (the model repeats them)."""
    out = {}
    for track, keep in (("write", ctx.write_keep), ("interchange", ctx.interchange_keep)):
        lengths = ctx.lengths[keep]
        out[track] = {str(n): int((lengths == n).sum()) for n in sorted(set(ctx.lengths.tolist()))}
    return out
