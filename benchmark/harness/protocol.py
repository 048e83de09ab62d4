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

from benchmark.harness import declared
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
    kind: str = "open"  # "declared": fit returned a Declaration (scored by harness code only)
    declaration: dict | None = None  # declared: {"forms", "parameters", "bytes"}


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
    if isinstance(fitted, declared.Declaration):
        return _declared_result(fitted, model, seconds, data.drawn)
    if fitted is not method:
        raise MethodError("fit must return self (scikit-learn convention) or a Declaration")
    tracks = method_tracks(method)
    blob, size = serialise(method, Forbidden.of(model, frozen, data))
    return FitResult(blob, seconds, data.drawn, size, tracks)


def _declared_result(decl: declared.Declaration, model: torch.nn.Module, seconds: float, drawn: int) -> FitResult:
    """Check the declaration against its forms and serialise it (safetensors, no pickle)."""
    try:
        declared.check(decl, int(model.state_dim))  # type: ignore[arg-type]
    except declared.DeclarationError as err:
        raise MethodError(f"the declaration is refused: {err}") from None
    blob, size = declared.serialise(decl), declared.size(decl)
    forms = {op: name for op, (name, _) in decl.operations().items()}
    return FitResult(blob, seconds, drawn, size["parameters"], tuple(forms), "declared",
                     {"forms": forms, **size})


def load_fitted(folder: str | Path, blob: bytes, state_dim: int | None = None) -> object:
    """The fitted method for scoring: a declaration becomes the harness's `DeclaredMethod` (the
    method's code is never imported); otherwise import the method's code (under its private
    module name), then unpickle."""
    if declared.is_declared(blob):
        if state_dim is None:
            raise MethodError("a declared method needs the model's state size to be loaded")
        try:
            return declared.DeclaredMethod(declared.load(blob, state_dim))
        except declared.DeclarationError as err:
            raise MethodError(f"the declaration is refused: {err}") from None
    load_spec(folder).load_class()
    try:
        return pickle.loads(blob)
    except Exception as err:  # noqa: BLE001 - the method's own __setstate__ or imports failed
        raise MethodError(f"the fitted method could not be loaded in the scoring process "
                          f"({type(err).__name__}: {err}); keep its state picklable") from err


def answer_queries(method: object, public: dict[str, Tensors], *, seed: int) -> dict[str, Tensors]:
    """Call the fitted method on every attempted track's public queries."""
    answers: dict[str, Tensors] = {}
    for name in TRACKS:
        if name in public and (answer := answer_track(method, name, public[name], seed=seed)) is not None:
            answers[name] = answer
    return answers


def answer_track(method: object, name: str, public: Tensors, *, seed: int) -> Tensors | None:
    """One track's answers, or None when the method does not take part in it.

    The isolated scorer calls this one track at a time, so that no call of the method can
    find another track's queries on the stack or in memory."""
    track = TRACKS[name]
    if not track.attempted(method_tracks(method), method):
        return None
    seed_everything(seed)  # each track starts from the same seed: order does not matter
    return track.answer(method, public)
