"""READ: which token is stored at each position of a state? (PROTOCOL §4)"""

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
    check_predictions,
    mean,
    read_all,
)
from benchmark.task import MAX_LEN


class ReadTrack:
    """Token and sequence accuracy of `read` over all positions < L of the test split."""

    name = "read"
    metric = CATALOGUE["read"].metric  # names and metrics live in the torch-free catalogue
    metric_names: tuple[str, ...] = CATALOGUE["read"].metric_names

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        return "read" in tracks

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        return TrackQueries({"states": ctx.states, "lengths": ctx.lengths})

    def answer(self, method: object, public: Tensors) -> Tensors:
        return {"pred": read_all(method, public["states"], public["lengths"])}

    def check(self, answers: Tensors, public: Tensors) -> None:
        check_predictions(answers.get("pred"), (public["states"].shape[0], MAX_LEN), "read")

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        valid = torch.arange(MAX_LEN)[None, :] < ctx.lengths[:, None]
        correct = (answers["pred"] == ctx.tokens) & valid
        seq = (correct | ~valid).all(1)
        return TrackScore({"token_accuracy": mean(correct[valid]), "sequence_accuracy": mean(seq)},
                          by_length(seq, ctx.lengths), {"read_token": correct[valid].numpy()},
                          by_position(correct[valid], torch.arange(MAX_LEN).expand_as(valid)[valid]))


TRACK = ReadTrack()
