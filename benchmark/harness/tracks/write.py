"""WRITE: put token t at position p of a state; the model must then decode the edited sequence.

Scored only on cases the model itself repeats correctly (base and edited sequence), as MIB
does; the kept fraction is reported. IIA: the greedy decode of the written state is the
expected sequence. cause (position p decodes to t) and isolate (every other position < L
unchanged) are judged with the decoder fed the expected prefix (`decode_forced`), so an
`ar` model's propagated errors are not counted at every later position.
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
    by_position,
    call_write,
    check_states,
    decode,
    decode_forced,
    map_chunks,
    mean,
)
from benchmark.task import MAX_LEN


def write_queries(ctx: ModelContextLike) -> TrackQueries:
    """The kept write cases: public (state, position, token, current); private rows and targets."""
    rows = torch.nonzero(ctx.write_keep).squeeze(1)
    position = ctx.plan.write_position[rows]  # type: ignore[attr-defined]
    public = {"states": ctx.states[rows], "position": position, "token": ctx.plan.write_token[rows],  # type: ignore[attr-defined]
              "current": ctx.tokens[rows, position], "lengths": ctx.lengths[rows]}
    expected = ctx.plan.write_targets(ctx.tokens)[rows]  # type: ignore[attr-defined]
    return TrackQueries(public, {"rows": rows, "expected": expected})


def answer_writes(method: object, public: Tensors) -> torch.Tensor:
    """Checked writes of every query, in chunks."""
    return map_chunks(lambda h, p, t, c: call_write(method, h, p, t, c), public["states"].shape[0],
                      public["states"], public["position"], public["token"], public["current"])


class WriteTrack:
    """IIA, cause and isolate of `write`, decoded by the reference model."""

    name = "write"
    metric = CATALOGUE["write"].metric  # names and metrics live in the torch-free catalogue
    metric_names: tuple[str, ...] = CATALOGUE["write"].metric_names

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        return "write" in tracks

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        return write_queries(ctx)

    def answer(self, method: object, public: Tensors) -> Tensors:
        return {"written": answer_writes(method, public)}

    def check(self, answers: Tensors, public: Tensors) -> None:
        check_states(answers.get("written"), tuple(public["states"].shape), "write")

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        position, lengths, expected = q.public["position"], q.public["lengths"], q.private["expected"]
        valid = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
        success = ((decode(ctx.model, answers["written"]) == expected) | ~valid).all(1)
        forced = decode_forced(ctx.model, answers["written"], expected) == expected
        rows = torch.arange(position.numel())
        cause = forced[rows, position]
        others_mask = valid.clone()
        others_mask[rows, position] = False
        isolate = (forced | ~others_mask).all(1)
        return TrackScore({"iia": mean(success), "cause": mean(cause), "isolate": mean(isolate),
                           "kept_fraction": mean(ctx.write_keep)}, by_length(success, lengths),
                          {"write": success.numpy()}, by_position(success, position))


TRACK = WriteTrack()
