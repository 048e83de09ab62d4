"""CONSISTENCY: after write(h, p, t), does the method's own read see t at p, and at every
other position what it read there before the write?

Against its own earlier read, not the true tokens, so that READ errors are not counted
twice. Uses the write cases; not a leaderboard column of its own. The reads before the
write are the READ track's own answers on those sequences (the harness maps them back), so
the method's process only reads the written states.
"""

from __future__ import annotations

import torch

from benchmark.harness.tracks.base import (
    ModelContextLike,
    Tensors,
    TrackQueries,
    TrackScore,
    check_predictions,
    mean,
    read_all,
)
from benchmark.harness.tracks.write import answer_writes, write_queries
from benchmark.task import MAX_LEN


class ConsistencyTrack:
    """Does `read` agree with `write`? (cause, isolate, both)"""

    name = "consistency"
    metric = "both"
    metric_names: tuple[str, ...] = ("cause", "isolate", "both")

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        return {"read", "write"} <= set(tracks)

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        return write_queries(ctx)

    def answer(self, method: object, public: Tensors) -> Tensors:
        return {"after": read_all(method, answer_writes(method, public), public["lengths"])}

    def check(self, answers: Tensors, public: Tensors) -> None:
        check_predictions(answers.get("after"), (public["states"].shape[0], MAX_LEN), "consistency")

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        position, lengths = q.public["position"], q.public["lengths"]
        rows = torch.arange(position.numel())
        after, before = answers["after"], others["read"]["pred"][q.private["rows"]]
        others_mask = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
        others_mask[rows, position] = False
        cause = after[rows, position] == q.public["token"]
        isolate = ((after == before) | ~others_mask).all(1)
        return TrackScore({"cause": mean(cause), "isolate": mean(isolate), "both": mean(cause & isolate)},
                          outcomes={"consistency": (cause & isolate).numpy()})


TRACK = ConsistencyTrack()
