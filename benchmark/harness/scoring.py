"""The four tracks of PROTOCOL §4, as functions of tensors.

The harness encodes the test split itself (the method never sees test tokens), calls the
method's read / write / interchange on states, decodes the results with the frozen model,
and compares with the expected sequences. Every method call is checked (shape, dtype,
finite values, input left untouched) and a violation is a `MethodError` with a one-line
reason.

Filtering (as MIB does): WRITE and INTERCHANGE use only the cases where the model repeats
the base sequence *and* the expected edited sequence correctly (for INTERCHANGE also the
source), so a failure is the method's, not the model's. The kept fraction is reported.
By construction the oracle (re-encode the edited sequence) then scores 1.0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.data import Sequences
from benchmark.errors import OnionbenchError
from benchmark.harness.interface import default_interchange, method_tracks
from benchmark.zoo.gru import correct_sequences, repeat_correct
from benchmark.harness.plan import EvalPlan
from benchmark.task import MAX_LEN, VOCAB_SIZE

CHUNK = 1000  # sequences per method call: bounds memory for large N and large methods


class MethodError(OnionbenchError):
    """The method broke the interface contract while being scored."""


@dataclass
class ModelContext:
    """Everything about (model, test split, plan) that does not depend on the method."""

    model: torch.nn.Module
    test: Sequences
    plan: EvalPlan
    states: torch.Tensor  # (batch, state_dim) final encoder states of the test split
    base_correct: torch.Tensor  # (batch,) bool: model repeats the sequence
    write_keep: torch.Tensor  # (batch,) bool: base and edited sequence repeated
    interchange_keep: torch.Tensor  # (batch,) bool: base, source and expected sequence repeated


def model_context(model: torch.nn.Module, test: Sequences, plan: EvalPlan) -> ModelContext:
    """Encode the test split and find the cases the model itself gets right."""
    with torch.no_grad():
        states = torch.cat([model.encode(test.tokens[i : i + CHUNK], test.lengths[i : i + CHUNK])
                            for i in range(0, len(test), CHUNK)])
    base = repeat_correct(model, test.tokens, test.lengths)
    edited = repeat_correct(model, plan.write_targets(test), test.lengths)
    swapped = repeat_correct(model, plan.interchange_targets(test), test.lengths)
    return ModelContext(model, test, plan, states, base, base & edited, base & base[plan.partner] & swapped)


@dataclass
class TrackResult:
    """Metrics (floats in 0..1), per-length breakdown and per-example outcomes of one cell."""

    metrics: dict[str, dict[str, float] | None] = field(default_factory=dict)
    by_length: dict[str, dict[str, float]] = field(default_factory=dict)
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)

    def outcomes_sha256(self) -> str:
        """Hash of every per-example outcome, so two records can be compared case by case."""
        digest = hashlib.sha256()
        for name in sorted(self.outcomes):
            digest.update(name.encode())
            digest.update(np.packbits(self.outcomes[name].astype(bool)).tobytes())
        return digest.hexdigest()


def _check_tensor(out: object, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise MethodError(f"{what} returned {type(out).__name__}, expected a torch.Tensor of shape {shape}")
    if tuple(out.shape) != shape:
        raise MethodError(f"{what} returned shape {tuple(out.shape)}, expected {shape}")
    if not out.is_floating_point():
        raise MethodError(f"{what} returned dtype {out.dtype}, expected a float tensor")
    if not torch.isfinite(out).all():
        raise MethodError(f"{what} returned NaN or inf values")
    return out.detach().float()


def call_read(method, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Checked `read`: logits (batch, 30)."""
    with torch.no_grad():
        out = method.read(h.clone(), position.clone())
    return _check_tensor(out, (h.shape[0], VOCAB_SIZE), "read")


def call_write(method, h: torch.Tensor, position, token, current) -> torch.Tensor:
    """Checked `write`: new state (batch, state_dim); the input must be left untouched."""
    given = h.clone()
    with torch.no_grad():
        out = method.write(given, position.clone(), token.clone(), current=current.clone())
    if not torch.equal(given, h):
        raise MethodError("write modified its input h in place; return a new tensor (e.g. h = h.clone() first)")
    return _check_tensor(out, tuple(h.shape), "write")


def call_interchange(method, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Checked `interchange` (the method's own, or the default built from read and write)."""
    base, source = h_base.clone(), h_source.clone()
    with torch.no_grad():
        if hasattr(method, "interchange"):
            out = method.interchange(base, source, mask.clone())
        else:
            out = default_interchange(method, base, source, mask.clone())
    if not (torch.equal(base, h_base) and torch.equal(source, h_source)):
        raise MethodError("interchange modified an input state in place; return a new tensor")
    return _check_tensor(out, tuple(h_base.shape), "interchange")


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


def read_all(method, states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, 9) int64 predicted token per position (-1 at positions >= length)."""
    pred = torch.full((states.shape[0], MAX_LEN), -1, dtype=torch.int64)
    for p in range(MAX_LEN):
        rows = torch.nonzero(lengths > p).squeeze(1)
        for part in _chunks(rows.numel()):
            r = rows[part]
            pred[r, p] = call_read(method, states[r], torch.full((r.numel(),), p, dtype=torch.int64)).argmax(-1)
    return pred


@dataclass(frozen=True)
class Queries:
    """Everything a method is shown while scored: states and edit instructions, never the
    expected outputs. (This is all an isolated scoring process receives.)

    states (n, state_dim) and lengths (n,) of the test split; write_* for the kept write
    cases (rows into states, position, new token, current token); swap_* for the kept
    interchange cases (base row, source row, mask (k, 9)).
    """

    states: torch.Tensor
    lengths: torch.Tensor
    write_rows: torch.Tensor
    write_position: torch.Tensor
    write_token: torch.Tensor
    write_current: torch.Tensor
    swap_rows: torch.Tensor
    swap_partner: torch.Tensor
    swap_mask: torch.Tensor


def make_queries(ctx: ModelContext) -> Queries:
    """The method-facing half of a ModelContext."""
    w = torch.nonzero(ctx.write_keep).squeeze(1)
    x = torch.nonzero(ctx.interchange_keep).squeeze(1)
    position = ctx.plan.write_position[w]
    return Queries(ctx.states, ctx.test.lengths, w, position, ctx.plan.write_token[w], ctx.test.tokens[w, position],
                   x, ctx.plan.partner[x], ctx.plan.swap_mask[x])


@dataclass
class MethodOutputs:
    """What the method produced for the queries (None for a track not attempted).

    read (n, 9) int64 predictions; written (k, state_dim); read_back (k, 9) predictions on
    the written states; swapped (m, state_dim).
    """

    tracks: tuple[str, ...]
    read: torch.Tensor | None = None
    written: torch.Tensor | None = None
    read_back: torch.Tensor | None = None
    swapped: torch.Tensor | None = None


def collect_outputs(method, q: Queries) -> MethodOutputs:
    """Call the fitted method on every query (checked calls); no scoring happens here."""
    tracks = method_tracks(method)
    out = MethodOutputs(tracks)
    if "read" in tracks:
        out.read = read_all(method, q.states, q.lengths)
    if "write" in tracks:
        parts = [call_write(method, q.states[q.write_rows[s]], q.write_position[s], q.write_token[s],
                            q.write_current[s]) for s in _chunks(q.write_rows.numel())]
        out.written = torch.cat(parts) if parts else q.states[:0]
        if "read" in tracks:
            out.read_back = read_all(method, out.written, q.lengths[q.write_rows])
    if "interchange" in tracks and (hasattr(method, "interchange") or {"read", "write"} <= set(tracks)):
        parts = [call_interchange(method, q.states[q.swap_rows[s]], q.states[q.swap_partner[s]], q.swap_mask[s])
                 for s in _chunks(q.swap_rows.numel())]
        out.swapped = torch.cat(parts) if parts else q.states[:0]
    return out


def check_outputs(out: MethodOutputs, q: Queries) -> None:
    """Re-check outputs that crossed a process boundary: shapes, dtypes, ranges, finiteness."""
    n, k, m, dim = q.states.shape[0], q.write_rows.numel(), q.swap_rows.numel(), q.states.shape[1]
    for name, value, shape, is_state in (("read", out.read, (n, MAX_LEN), False),
                                         ("write", out.written, (k, dim), True),
                                         ("read after write", out.read_back, (k, MAX_LEN), False),
                                         ("interchange", out.swapped, (m, dim), True)):
        if value is None:
            continue
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            raise MethodError(f"{name} outputs have the wrong shape; expected {shape}")
        if is_state and not (value.dtype == torch.float32 and torch.isfinite(value).all()):
            raise MethodError(f"{name} outputs must be finite float32 states")
        if not is_state and (value.dtype != torch.int64 or value.min() < -1 or value.max() >= VOCAB_SIZE):
            raise MethodError(f"{name} predictions must be int64 token ids")


def _decode(model, states: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        parts = [model.generate(states[s]) for s in _chunks(states.shape[0])]
    return torch.cat(parts) if parts else torch.zeros(0, MAX_LEN, dtype=torch.int64)


def score_outputs(ctx: ModelContext, q: Queries, out: MethodOutputs) -> TrackResult:
    """Decode the method's states with the model and compare with the expected sequences."""
    result = TrackResult(metrics={"read": None, "write": None, "interchange": None, "consistency": None})
    if out.read is not None:
        _score_read(ctx, out.read, result)
    if out.written is not None:
        _score_write(ctx, q, out, result)
    if out.swapped is not None:
        _score_interchange(ctx, q, out.swapped, result)
    return result


def _score_read(ctx: ModelContext, pred: torch.Tensor, result: TrackResult) -> None:
    valid = torch.arange(MAX_LEN)[None, :] < ctx.test.lengths[:, None]
    correct = (pred == ctx.test.tokens) & valid
    seq = (correct | ~valid).all(1)
    result.metrics["read"] = {"token_accuracy": _mean(correct[valid]), "sequence_accuracy": _mean(seq)}
    result.by_length["read"] = _by_length(seq, ctx.test.lengths)
    result.outcomes["read_token"] = correct[valid].numpy()


def _score_write(ctx: ModelContext, q: Queries, out: MethodOutputs, result: TrackResult) -> None:
    idx, position = q.write_rows, q.write_position
    lengths = ctx.test.lengths[idx]
    expected = ctx.plan.write_targets(ctx.test)[idx]
    hit = _decode(ctx.model, out.written) == expected
    rows = torch.arange(idx.numel())
    cause = hit[rows, position]
    others = torch.arange(MAX_LEN)[None, :] < lengths[:, None]
    others[rows, position] = False
    isolate = (hit | ~others).all(1)
    success = cause & isolate
    result.metrics["write"] = {"iia": _mean(success), "cause": _mean(cause), "isolate": _mean(isolate),
                               "kept_fraction": _mean(ctx.write_keep)}
    result.by_length["write"] = _by_length(success, lengths)
    result.outcomes["write"] = success.numpy()
    if out.read_back is not None and out.read is not None:
        # consistency: after write(h, p, t), does the method's own read see t at p, and at every other
        # position what it read there before the write? (Against its own earlier read, not the true
        # tokens, so that READ errors are not counted twice.)
        before = out.read[idx]
        cause = out.read_back[rows, position] == expected[rows, position]
        isolate = ((out.read_back == before) | ~others).all(1)
        result.metrics["consistency"] = {"cause": _mean(cause), "isolate": _mean(isolate),
                                         "both": _mean(cause & isolate)}
        result.outcomes["consistency"] = (cause & isolate).numpy()


def _score_interchange(ctx: ModelContext, q: Queries, swapped: torch.Tensor, result: TrackResult) -> None:
    expected = ctx.plan.interchange_targets(ctx.test)[q.swap_rows]
    lengths = ctx.test.lengths[q.swap_rows]
    success = correct_sequences(_decode(ctx.model, swapped), expected, lengths)
    result.metrics["interchange"] = {"iia": _mean(success), "kept_fraction": _mean(ctx.interchange_keep)}
    result.by_length["interchange"] = _by_length(success, lengths)
    result.outcomes["interchange"] = success.numpy()


def score_method(method, ctx: ModelContext) -> TrackResult:
    """Score a fitted method in this process on every track it attempts (None: not attempted)."""
    q = make_queries(ctx)
    return score_outputs(ctx, q, collect_outputs(method, q))


def oracle_metrics(ctx: ModelContext) -> dict[str, float]:
    """The ceiling: re-encode the edited sequence (a cheat methods are not allowed) and decode.

    Off the leaderboard; reported next to every cell so a score can be read against it.
    """
    test, plan = ctx.test, ctx.plan
    idx = torch.nonzero(ctx.write_keep).squeeze(1)
    write = repeat_correct(ctx.model, plan.write_targets(test)[idx], test.lengths[idx])
    idx = torch.nonzero(ctx.interchange_keep).squeeze(1)
    swap = repeat_correct(ctx.model, plan.interchange_targets(test)[idx], test.lengths[idx])
    return {"read_sequence_accuracy": _mean(ctx.base_correct), "write_iia": _mean(write), "interchange_iia": _mean(swap)}


def identity_metrics(ctx: ModelContext) -> dict[str, float]:
    """The floor of doing nothing (return the base state unchanged), on the same kept cases.

    WRITE: 0 by construction (the new token always differs). INTERCHANGE: the share of cases
    whose mask selects no position where base and source differ (about 5 %: short sequences
    often draw an empty mask).
    """
    idx = torch.nonzero(ctx.interchange_keep).squeeze(1)
    base = ctx.test.tokens[idx]
    same = correct_sequences(ctx.plan.interchange_targets(ctx.test)[idx], base, ctx.test.lengths[idx])
    return {"write_iia": 0.0, "interchange_iia": _mean(same)}


def _mean(x: torch.Tensor) -> float:
    return float(x.float().mean()) if x.numel() else 0.0


def _by_length(success: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
    return {str(n): _mean(success[lengths == n]) for n in sorted(set(lengths.tolist()))}
