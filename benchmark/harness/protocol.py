"""The fit protocol and the scoring protocol, written once (PROTOCOL §3).

`fit_method` runs where the reference model is: instantiate, seed, fit (on `job.device`),
check that `fit` returned self, then serialise the fitted method after
`benchmark.harness.guard` has checked that it holds neither the model nor a copy of its
weights; serialising moves every tensor to the CPU, where scoring runs. `answer_queries` runs
where the model is not: it loads the fitted method from those bytes and calls it on every
track's public queries. The cell (`benchmark.harness.cell`) runs the two in separate
processes; conformance checks and library users may run them in one.
"""

from __future__ import annotations

import copy
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.harness.guard import Forbidden, serialise
from benchmark.harness.interface import FitData, FrozenModel, method_tracks, seed_everything
from benchmark.harness.submission import load_spec
from benchmark.harness.tracks import TRACKS, MethodError
from benchmark.harness.tracks.base import Tensors


@dataclass(frozen=True)
class FitResult:
    """A fitted, checked and serialised method, and what its fit cost."""

    blob: bytes  # the pickled method (never unpickled by the harness process)
    seconds: float
    sequences_drawn: int
    method_parameters: int  # learned scalars in the fitted state
    tracks: tuple[str, ...]  # the tracks the method declares


@dataclass(frozen=True)
class FitJob:
    """Everything the fit side needs besides the model."""

    folder: str
    params: dict
    seed: int
    budget: int
    heldout: np.ndarray  # keys of sequences fit may not encode (test, valid, and a fresh split)
    device: str = "cpu"  # where fit runs (`onionbench score --device`); scoring is always on the CPU


def fit_method(job: FitJob, model: torch.nn.Module, *, data_out: list | None = None) -> FitResult:
    """Fit the method on `model`, check what it keeps, and serialise it.

    `data_out`, when given, receives the FitData (so a caller can report sequences drawn
    even when fit raises).
    """
    method = load_spec(job.folder).instantiate(job.params)
    if job.device != "cpu":  # a copy: an in-process caller keeps its CPU model
        model = copy.deepcopy(model).to(job.device)
    data = FitData(model, job.heldout, seed=job.seed, budget=job.budget)
    if data_out is not None:
        data_out.append(data)
    frozen = FrozenModel(model, data)
    seed_everything(job.seed)
    start = time.perf_counter()
    fitted = method.fit(frozen, data)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    if fitted is not method:
        raise MethodError("fit must return self (scikit-learn convention)")
    tracks = method_tracks(method)
    blob, size = serialise(method, Forbidden.of(model, frozen, data))
    return FitResult(blob, seconds, data.drawn, size, tracks)


def load_fitted(folder: str | Path, blob: bytes) -> object:
    """Import the method's code (under its private module name), then unpickle the fitted method."""
    load_spec(folder).load_class()
    try:
        return pickle.loads(blob)
    except Exception as err:  # noqa: BLE001 - the method's own __setstate__ or imports failed
        raise MethodError(f"the fitted method could not be loaded in the scoring process "
                          f"({type(err).__name__}: {err}); keep its state picklable") from err


def answer_queries(method: object, public: dict[str, Tensors], *, seed: int) -> dict[str, Tensors]:
    """Call the fitted method on every attempted track's public queries."""
    tracks = method_tracks(method)
    answers: dict[str, Tensors] = {}
    for name, track in TRACKS.items():
        if name in public and track.attempted(tracks, method):
            seed_everything(seed)  # each track starts from the same seed: order does not matter
            answers[name] = track.answer(method, public[name])
    return answers
