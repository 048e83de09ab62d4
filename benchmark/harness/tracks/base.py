"""The track seam: what one track of PROTOCOL §4 owns, and the checked method calls.

A track owns five things: the queries it builds from a model context, the method calls
that answer them (run in the scoring process), the re-check of those answers in the
harness, the scoring against expected outputs, and its metrics' schema and leaderboard
metric. Adding a track is one module with one `Track` object plus one line in
`benchmark.harness.tracks.TRACKS` (see docs/ARCHITECTURE.md).

Queries are split in two: `public` tensors cross to the method's process (every tensor
shares its first dimension, the rows, which the cell shuffles); `private` ones (rows into
the test split, expected outputs) never leave the harness.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from benchmark.errors import OnionbenchError
from benchmark.task import MAX_LEN, VOCAB_SIZE

CHUNK = 1000  # sequences per method call: bounds memory for large N and large methods
RATE = {"$ref": "#/$defs/rate"}

Tensors = dict[str, torch.Tensor]


class MethodError(OnionbenchError):
    """The method broke the interface contract while being scored."""


@dataclass(frozen=True)
class TrackQueries:
    """public: shown to the method (rows shuffled by the cell); private: kept by the harness."""

    public: Tensors
    private: Tensors = field(default_factory=dict)


@dataclass
class TrackScore:
    """A track's metrics (rates in 0..1), per-length success rates and per-example outcomes."""

    metrics: dict[str, float]
    by_length: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)
    by_position: dict[str, float] = field(default_factory=dict)  # rate per position p (0-based), where it applies


class Track(Protocol):
    """One track of the benchmark. See the module docstring."""

    name: str  # key in records' `metrics` and `by_length`
    metric: str  # the leaderboard metric among this track's metrics
    metric_names: tuple[str, ...]  # every metric the track reports (its schema fragment)

    def attempted(self, tracks: tuple[str, ...], method: object) -> bool:
        """Does a method declaring `tracks` take part in this track?"""
        ...

    def queries(self, ctx: ModelContextLike) -> TrackQueries:
        """Build the queries from the model context (harness side)."""
        ...

    def answer(self, method: object, public: Tensors) -> Tensors:
        """Call the fitted method on every query (scoring process); checked calls only."""
        ...

    def check(self, answers: Tensors, public: Tensors) -> None:
        """Re-check answers that crossed a process boundary (harness side)."""
        ...

    def score(self, ctx: ModelContextLike, q: TrackQueries, answers: Tensors,
              others: dict[str, Tensors]) -> TrackScore:
        """Compare answers with the expected outputs; `others` holds other tracks' answers."""
        ...


class ModelContextLike(Protocol):
    """What tracks read from a model context (see `benchmark.harness.context.ModelContext`)."""

    model: torch.nn.Module
    states: torch.Tensor
    base_correct: torch.Tensor
    write_keep: torch.Tensor
    interchange_keep: torch.Tensor

    @property
    def tokens(self) -> torch.Tensor: ...

    @property
    def lengths(self) -> torch.Tensor: ...


def schema_fragment(track: Track) -> dict:
    """JSON schema of `metrics[track.name]`: null (not attempted) or the track's rates."""
    names = list(track.metric_names)
    return {"oneOf": [{"type": "null"}, {"type": "object", "required": names, "additionalProperties": False,
                                         "properties": dict.fromkeys(names, RATE)}]}


# ---- checked method calls (run in the scoring process) ---------------------------------

def check_tensor(out: object, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """A method's output: a finite float tensor of the expected shape (as float32)."""
    if not isinstance(out, torch.Tensor):
        raise MethodError(f"{what} returned {type(out).__name__}, expected a torch.Tensor of shape {shape}")
    if tuple(out.shape) != shape:
        raise MethodError(f"{what} returned shape {tuple(out.shape)}, expected {shape}")
    if not out.is_floating_point():
        raise MethodError(f"{what} returned dtype {out.dtype}, expected a float tensor")
    if not torch.isfinite(out).all():
        raise MethodError(f"{what} returned NaN or inf values")
    return out.detach().float()


def call_read(method: object, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Checked `read`: logits (batch, 30)."""
    with torch.no_grad():
        out = method.read(h.clone(), position.clone())  # type: ignore[attr-defined]
    return check_tensor(out, (h.shape[0], VOCAB_SIZE), "read")


def call_write(method: object, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor,
               current: torch.Tensor) -> torch.Tensor:
    """Checked `write`: new state (batch, state_dim); the input must be left untouched."""
    given = h.clone()
    with torch.no_grad():
        out = method.write(given, position.clone(), token.clone(), current=current.clone())  # type: ignore[attr-defined]
    if not torch.equal(given, h):
        raise MethodError("write modified its input h in place; return a new tensor (e.g. h = h.clone() first)")
    return check_tensor(out, tuple(h.shape), "write")


def call_interchange(method: object, h_base: torch.Tensor, h_source: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """Checked `interchange` (the method's own, or the default built from read and write)."""
    from benchmark.harness.interface import default_interchange

    base, source = h_base.clone(), h_source.clone()
    with torch.no_grad():
        if hasattr(method, "interchange"):
            out = method.interchange(base, source, mask.clone())
        else:
            out = default_interchange(method, base, source, mask.clone())  # type: ignore[arg-type]
    if not (torch.equal(base, h_base) and torch.equal(source, h_source)):
        raise MethodError("interchange modified an input state in place; return a new tensor")
    return check_tensor(out, tuple(h_base.shape), "interchange")


def chunks(n: int) -> Iterator[slice]:
    """Row slices of at most CHUNK rows."""
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


def read_all(method: object, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, 9) int64 predicted token per position (-1 at positions >= length)."""
    pred = torch.full((states.shape[0], MAX_LEN), -1, dtype=torch.int64)
    for p in range(MAX_LEN):
        rows = torch.nonzero(lengths > p).squeeze(1)
        for part in chunks(rows.numel()):
            r = rows[part]
            pred[r, p] = call_read(method, states[r], torch.full((r.numel(),), p, dtype=torch.int64)).argmax(-1)
    return pred


def map_chunks(fn, n: int, *tensors: torch.Tensor) -> torch.Tensor:
    """Apply `fn` to CHUNK-row slices of `tensors` and concatenate (an empty input gives 0 rows)."""
    parts = [fn(*(t[s] for t in tensors)) for s in chunks(n)]
    return torch.cat(parts) if parts else tensors[0][:0].float()


# ---- harness-side checks and statistics ---------------------------------------------------

def check_states(value: object, shape: tuple[int, ...], what: str) -> None:
    """States that came back from the method's process: finite float32 of the right shape."""
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        raise MethodError(f"{what} outputs have the wrong shape; expected {shape}")
    if not (value.dtype == torch.float32 and torch.isfinite(value).all()):
        raise MethodError(f"{what} outputs must be finite float32 states")


def check_predictions(value: object, shape: tuple[int, ...], what: str) -> None:
    """Token predictions that came back: int64 ids in -1..29 of the right shape."""
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
        raise MethodError(f"{what} outputs have the wrong shape; expected {shape}")
    if value.dtype != torch.int64 or (value.numel() and (value.min() < -1 or value.max() >= VOCAB_SIZE)):
        raise MethodError(f"{what} predictions must be int64 token ids")


def mean(x: torch.Tensor) -> float:
    """Mean of a bool/float tensor (0.0 when empty)."""
    return float(x.float().mean()) if x.numel() else 0.0


def by_position(success: torch.Tensor, position: torch.Tensor) -> dict[str, float]:
    """Success rate per position present (0-based). Why: later positions sitting in smaller
    magnitudes, so harder to read and write, is the onion's central quantitative prediction."""
    return {str(p): mean(success[position == p]) for p in sorted(set(position.tolist()))}


def by_length(success: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
    """Success rate per sequence length present."""
    return {str(n): mean(success[lengths == n]) for n in sorted(set(lengths.tolist()))}


def decode(model: torch.nn.Module, states: torch.Tensor) -> torch.Tensor:
    """Greedy decoding of states with the reference model, in chunks."""
    with torch.no_grad():
        parts = [model.generate(states[s]) for s in chunks(states.shape[0])]  # type: ignore[operator]
    return torch.cat(parts) if parts else torch.zeros(0, MAX_LEN, dtype=torch.int64)


def decode_forced(model: torch.nn.Module, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each position's prediction with the decoder fed the `targets` prefix (teacher forcing).

    Why: under greedy decoding an `ar` model's error at one position changes the input of
    every later one, so a per-position count (cause, isolate) would also count errors that
    only propagated. Fed the expected prefix, each position is judged on its own. A whole
    sequence is right under one exactly when it is right under the other, so IIA is the same."""
    with torch.no_grad():
        parts = [model.decode(states[s], targets[s]).argmax(-1) for s in chunks(states.shape[0])]  # type: ignore[operator]
    return torch.cat(parts) if parts else torch.zeros(0, MAX_LEN, dtype=torch.int64)
