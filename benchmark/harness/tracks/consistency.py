"""CONSISTENCY: after its own write, does the method's read agree with the model?

For every write case the method writes h' and reads every position of h'; the harness
decodes h' greedily with the reference model. `agreement`: the read matches the model's
decode at every position < L; `token_agreement`: the share of positions where it does;
`at_written`: at the written position.

Why against the model and not against the method's own earlier read (scoring version 3):
a method that writes and reads in the same private code (random-subspace pastes a class
mean into a block and reads the nearest class mean there) agrees with itself perfectly
whatever the model makes of the state, so the old score was 1.00 for the floor. Grounded in
the model's decode, a read that says "t" where the model sees something else counts as a
disagreement. Uses the write cases; not a leaderboard column of its own.
"""

from __future__ import annotations

import torch

from benchmark.catalogue import CATALOGUE
from benchmark.harness.tracks.base import (
    ModelContextLike,
    Tensors,
    TrackQueries,
    TrackScore,
    check_predictions,
    check_states,
    decode,
    mean,
    read_all,
)
from benchmark.harness.tracks.write import answer_writes, write_queries
from benchmark.task import MAX_LEN


class ConsistencyTrack:
    """Does `read` see in a written state what the model decodes from it?"""

    name = "consistency"
    metric = CATALOGUE["consistency"].metric  # names and metrics live in the torch-free catalogue
    metric_names: tuple[str, ...] = CATALOGUE["consistency"].metric_names

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        return {"read", "write"} <= set(tracks)

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        return write_queries(ctx)

    def answer(self, method: object, public: Tensors) -> Tensors:
        written = answer_writes(method, public)
        return {"written": written, "after": read_all(method, written, public["lengths"])}

    def check(self, answers: Tensors, public: Tensors) -> None:
        check_states(answers.get("written"), tuple(public["states"].shape), "consistency")
        check_predictions(answers.get("after"), (public["states"].shape[0], MAX_LEN), "consistency")

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        position, lengths = q.public["position"], q.public["lengths"]
        valid = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
        agree = answers["after"] == decode(ctx.model, answers["written"])
        whole = (agree | ~valid).all(1)
        at_written = agree[torch.arange(position.numel()), position]
        return TrackScore({"agreement": mean(whole), "token_agreement": mean(agree[valid]),
                           "at_written": mean(at_written)}, outcomes={"consistency": whole.numpy()})


TRACK = ConsistencyTrack()
