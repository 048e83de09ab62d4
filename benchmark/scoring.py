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
from benchmark.methods import default_interchange, method_tracks
from benchmark.model import correct_sequences, repeat_correct
from benchmark.plan import EvalPlan
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


def score_read(method, ctx: ModelContext, result: TrackResult) -> None:
    valid = torch.arange(MAX_LEN)[None, :] < ctx.test.lengths[:, None]
    correct = (read_all(method, ctx.states, ctx.test.lengths) == ctx.test.tokens) & valid
    seq = (correct | ~valid).all(1)
    result.metrics["read"] = {"token_accuracy": _mean(correct[valid]), "sequence_accuracy": _mean(seq)}
    result.by_length["read"] = _by_length(seq, ctx.test.lengths)
    result.outcomes["read_token"] = correct[valid].numpy()


def _written_states(method, ctx: ModelContext, idx: torch.Tensor) -> torch.Tensor:
    plan, test = ctx.plan, ctx.test
    position = plan.write_position[idx]
    current = test.tokens[idx, position]
    parts = [call_write(method, ctx.states[idx[s]], position[s], plan.write_token[idx[s]], current[s])
             for s in _chunks(idx.numel())]
    return torch.cat(parts) if parts else ctx.states[:0]


def score_write(method, ctx: ModelContext, result: TrackResult, tracks: tuple[str, ...]) -> None:
    idx = torch.nonzero(ctx.write_keep).squeeze(1)
    h2 = _written_states(method, ctx, idx)
    lengths, position = ctx.test.lengths[idx], ctx.plan.write_position[idx]
    expected = ctx.plan.write_targets(ctx.test)[idx]
    with torch.no_grad():
        decoded = torch.cat([ctx.model.generate(h2[s]) for s in _chunks(idx.numel())]) if idx.numel() else expected
    hit = decoded == expected
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
    if "read" in tracks:
        _score_consistency(method, ctx, result, idx, h2, expected, others)


def _score_consistency(method, ctx, result, idx, h2, expected, others) -> None:
    """After write(h, p, t): does the method's own read see t at p and the old tokens elsewhere?"""
    read_back = read_all(method, h2, ctx.test.lengths[idx])
    rows = torch.arange(idx.numel())
    position = ctx.plan.write_position[idx]
    cause = read_back[rows, position] == expected[rows, position]
    isolate = ((read_back == expected) | ~others).all(1)
    result.metrics["consistency"] = {"cause": _mean(cause), "isolate": _mean(isolate), "both": _mean(cause & isolate)}
    result.outcomes["consistency"] = (cause & isolate).numpy()


def score_interchange(method, ctx: ModelContext, result: TrackResult) -> None:
    idx = torch.nonzero(ctx.interchange_keep).squeeze(1)
    partner, mask = ctx.plan.partner[idx], ctx.plan.swap_mask[idx]
    parts = [call_interchange(method, ctx.states[idx[s]], ctx.states[partner[s]], mask[s]) for s in _chunks(idx.numel())]
    expected = ctx.plan.interchange_targets(ctx.test)[idx]
    lengths = ctx.test.lengths[idx]
    with torch.no_grad():
        decoded = torch.cat([ctx.model.generate(p) for p in parts]) if parts else expected
    success = correct_sequences(decoded, expected, lengths)
    result.metrics["interchange"] = {"iia": _mean(success), "kept_fraction": _mean(ctx.interchange_keep)}
    result.by_length["interchange"] = _by_length(success, lengths)
    result.outcomes["interchange"] = success.numpy()


def score_method(method, ctx: ModelContext) -> TrackResult:
    """Score a fitted method on every track it attempts; others are None (not attempted)."""
    tracks = method_tracks(method)
    result = TrackResult(metrics={"read": None, "write": None, "interchange": None, "consistency": None})
    if "read" in tracks:
        score_read(method, ctx, result)
    if "write" in tracks:
        score_write(method, ctx, result, tracks)
    can_interchange = hasattr(method, "interchange") or {"read", "write"} <= set(tracks)
    if "interchange" in tracks and can_interchange:
        score_interchange(method, ctx, result)
    return result


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


def _mean(x: torch.Tensor) -> float:
    return float(x.float().mean()) if x.numel() else 0.0


def _by_length(success: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
    return {str(n): _mean(success[lengths == n]) for n in sorted(set(lengths.tolist()))}
