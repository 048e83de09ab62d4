"""INTERCHANGE: take the masked positions' tokens from a source state, the rest from the base.

Pairs are equal-length test sequences; each position comes from the source with
probability 0.5 (the paper's linear unigram test, on all lengths). Scored on cases the
model repeats correctly (base, source and expected sequence).
"""

from __future__ import annotations

import torch

from benchmark.catalogue import CATALOGUE
from benchmark.harness.tracks.base import (
    ModelContextLike,
    Tensors,
    TrackQueries,
    TrackScore,
    by_length,
    call_interchange,
    check_states,
    decode,
    map_chunks,
    mean,
)
from benchmark.task import MAX_LEN


class InterchangeTrack:
    """IIA of `interchange` (the method's own, or the default built from its read and write)."""

    name = "interchange"
    metric = CATALOGUE["interchange"].metric  # names and metrics live in the torch-free catalogue
    metric_names: tuple[str, ...] = CATALOGUE["interchange"].metric_names

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        return "interchange" in tracks and (hasattr(method, "interchange") or {"read", "write"} <= set(tracks))

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        rows = torch.nonzero(ctx.interchange_keep).squeeze(1)
        partner = ctx.plan.partner[rows]  # type: ignore[attr-defined]
        public = {"base": ctx.states[rows], "source": ctx.states[partner],
                  "mask": ctx.plan.swap_mask[rows], "lengths": ctx.lengths[rows]}  # type: ignore[attr-defined]
        expected = ctx.plan.interchange_targets(ctx.tokens)[rows]  # type: ignore[attr-defined]
        return TrackQueries(public, {"rows": rows, "expected": expected})

    def answer(self, method: object, public: Tensors) -> Tensors:
        swapped = map_chunks(lambda b, s, m: call_interchange(method, b, s, m), public["base"].shape[0],
                             public["base"], public["source"], public["mask"])
        return {"swapped": swapped}

    def check(self, answers: Tensors, public: Tensors) -> None:
        check_states(answers.get("swapped"), tuple(public["base"].shape), "interchange")

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        lengths, expected = q.public["lengths"], q.private["expected"]
        valid = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
        success = ((decode(ctx.model, answers["swapped"]) == expected) | ~valid).all(1)
        return TrackScore({"iia": mean(success), "kept_fraction": mean(ctx.interchange_keep)},
                          by_length(success, lengths), {"interchange": success.numpy()})


TRACK = InterchangeTrack()
