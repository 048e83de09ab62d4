"""`onionbench check`: small named conformance checks, one property each (scikit-learn style).

They run on two tiny shipped models (N=16, `ar` and `ni`, in `benchmark/zoo/check/`) in
seconds, with the method's `[check_params]` from method.toml (e.g. fewer training steps)
over its `[params]`. The same checks run in pytest over every discovered method.

The method is fitted through the cell's own fit protocol (`benchmark.harness.protocol`):
fit, the guard against keeping the model, serialisation, and loading the fitted copy that
the checks then call, so a method that would be refused by `score` fails here first. A
check that does not apply to the method (a write check on a read-only probe) is SKIP.
"""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.data import heldout_keys, load_split
from benchmark.errors import OnionbenchError, first_line
from benchmark.harness.interface import TRACKS, method_tracks, seed_everything
from benchmark.harness.protocol import FitJob, fit_method, load_fitted
from benchmark.harness.submission import MethodSpec, SubmissionError
from benchmark.harness.tracks import MethodError
from benchmark.harness.tracks.base import call_interchange, call_read, call_write
from benchmark.task import MAX_LEN, VOCAB_SIZE
from benchmark.zoo.architectures import load_model

CHECK_MODELS = Path(__file__).resolve().parents[1] / "zoo" / "check"
CHECK_BUDGET = 300_000


class CheckFailed(Exception):
    """A conformance property does not hold; the message is the one-line reason."""


class CheckSkipped(Exception):
    """The property does not apply to this method (e.g. a write check on a read-only probe)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str = ""
    traceback: str = ""  # shown by `onionbench --verbose check`
    skipped: bool = False

    @property
    def status(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"


@dataclass
class Fitted:
    """A method fitted on one check model (the serialised copy scoring would get), with probe inputs."""

    method: object
    model: torch.nn.Module
    h: torch.Tensor  # (64, N) states of held-out-free training sequences
    tokens: torch.Tensor
    lengths: torch.Tensor
    method_parameters: int = 0


def check_models() -> list[torch.nn.Module]:
    """The two tiny shipped check models (see `make_check_models`)."""
    return [load_model(CHECK_MODELS / f"gru-h16-{v}-check") for v in ("ar", "ni")]


def _fit(spec: MethodSpec, model: torch.nn.Module, seed: int = 0) -> Fitted:
    params = {**spec.params, **spec.check_params}
    result = fit_method(FitJob(str(spec.folder), params, seed, CHECK_BUDGET, heldout_keys()), model)
    method = load_fitted(spec.folder, result.blob, int(model.state_dim))  # type: ignore[arg-type]
    seed_everything(seed)
    probe = load_split("valid")[:64]
    with torch.no_grad():
        h = model.encode(probe.tokens, probe.lengths)  # type: ignore[operator]
    return Fitted(method, model, h, probe.tokens, probe.lengths, result.method_parameters)


def _positions(f: Fitted) -> torch.Tensor:
    return (torch.arange(f.h.shape[0]) * 7) % f.lengths  # spread over 0..L-1


def _current_and_new(f: Fitted) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pos = _positions(f)
    current = f.tokens[torch.arange(len(pos)), pos]
    return pos, current, (current + 1 + torch.arange(len(pos)) % (VOCAB_SIZE - 1)) % VOCAB_SIZE


def check_declares_known_tracks(spec, f: Fitted, fit_again) -> None:
    try:
        tracks = method_tracks(f.method)
    except Exception as err:  # noqa: BLE001 - reported as the reason
        raise CheckFailed(str(err)) from err
    if not tracks:
        raise CheckFailed(f"`tracks` is empty; attempt at least one of {', '.join(TRACKS)}")


def _requires(f: Fitted, track: str) -> None:
    if track not in method_tracks(f.method):
        raise CheckSkipped(f"the method does not attempt {track}")


def check_read_shape_dtype_finite(spec, f: Fitted, fit_again) -> None:
    _requires(f, "read")
    call_read(f.method, f.h, _positions(f))


def check_write_shape_dtype_finite(spec, f: Fitted, fit_again) -> None:
    _requires(f, "write")
    pos, cur, new = _current_and_new(f)
    call_write(f.method, f.h, pos, new, cur)  # also checks that h is not modified in place


def check_interchange_shape_dtype_finite(spec, f: Fitted, fit_again) -> None:
    tracks = method_tracks(f.method)
    if not ("interchange" in tracks and (hasattr(f.method, "interchange") or {"read", "write"} <= set(tracks))):
        raise CheckSkipped("the method does not attempt interchange")
    if True:
        mask = (torch.rand(f.h.shape[0], MAX_LEN, generator=torch.Generator().manual_seed(0)) < 0.5)
        mask &= torch.arange(MAX_LEN) < f.lengths[:, None]
        call_interchange(f.method, f.h, f.h.roll(1, 0), mask)


def _batch_sizes(f: Fitted, n: int) -> None:
    reps = (n + f.h.shape[0] - 1) // f.h.shape[0]
    g = Fitted(f.method, f.model, f.h.repeat(reps, 1)[:n], f.tokens.repeat(reps, 1)[:n], f.lengths.repeat(reps)[:n])
    for check in (check_read_shape_dtype_finite, check_write_shape_dtype_finite, check_interchange_shape_dtype_finite):
        try:
            check(None, g, None)
        except CheckSkipped:
            continue


def check_batch_size_1(spec, f: Fitted, fit_again) -> None:
    _batch_sizes(f, 1)


def check_batch_size_257(spec, f: Fitted, fit_again) -> None:
    _batch_sizes(f, 257)


def check_writing_current_token_keeps_output(spec, f: Fitted, fit_again) -> None:
    _requires(f, "write")
    pos, cur, _ = _current_and_new(f)
    h2 = call_write(f.method, f.h, pos, cur, cur)
    before, after = f.model.generate(f.h), f.model.generate(h2)  # type: ignore[operator]
    valid = torch.arange(MAX_LEN) < f.lengths[:, None]
    changed = ((before != after) & valid).any(1).sum().item()
    if changed:
        raise CheckFailed(f"write(h, p, current, current=current) changed the decoded output of {changed} of "
                          f"{len(pos)} states; writing the token already there must be a no-op")


def check_deterministic_under_fixed_seed(spec, f: Fitted, fit_again) -> None:
    g = fit_again()
    tracks = method_tracks(f.method)
    pos, cur, new = _current_and_new(f)
    if "read" in tracks and not torch.equal(call_read(f.method, f.h, pos), call_read(g.method, f.h, pos)):
        raise CheckFailed("two fits with the same seed give different read outputs; seed every random source "
                          "(torch.manual_seed is set before fit; seed numpy / sklearn from the method's params)")
    if "write" in tracks and not torch.equal(call_write(f.method, f.h, pos, new, cur),
                                             call_write(g.method, f.h, pos, new, cur)):
        raise CheckFailed("two fits with the same seed give different write outputs; seed every random source")


CHECKS: list[Callable] = [
    check_declares_known_tracks, check_read_shape_dtype_finite,
    check_write_shape_dtype_finite, check_interchange_shape_dtype_finite, check_batch_size_1,
    check_batch_size_257, check_writing_current_token_keeps_output, check_deterministic_under_fixed_seed,
]


def run_checks(spec: MethodSpec) -> list[CheckResult]:
    """Every check, run in a worker sealed like a cell's fit (no method code runs in this process).

    A method that writes outside its private /tmp, plants files in its folder or in
    site-packages, or leaves a process behind fails here as it would when scored, and
    leaves nothing on this machine. The first result says what the worker attested."""
    from benchmark.harness.isolation.launch import run_sealed_check

    try:
        attested, results = run_sealed_check(str(spec.folder))
    except MethodError as err:
        return [CheckResult("check_sandboxed_run", False, str(err))]
    return [CheckResult("check_sandboxed_run", True, attested), *(CheckResult(**r) for r in results)]


def run_checks_here(spec: MethodSpec) -> list[CheckResult]:
    """Run every check on both check models, in this process; a check passes only if it passes on both."""
    try:
        spec.load_class()
    except SubmissionError as err:
        return [CheckResult("check_imports", False, str(err))]
    results: dict[str, CheckResult] = {}
    for model in check_models():
        try:
            fitted = _fit(spec, model)
        except Exception as err:  # noqa: BLE001 - any failure of fit (or of its guard) is the method's
            what = str(err) if isinstance(err, OnionbenchError) else f"fit raised {type(err).__name__}: {first_line(err)}"
            results.setdefault("check_fit_runs", CheckResult(
                "check_fit_runs", False, f"{model.variant} model: {what}", traceback.format_exc()))
            continue
        for check in CHECKS:
            _run_one(check, spec, fitted, model, results)
    results.setdefault("check_fit_runs", CheckResult("check_fit_runs", True))
    return list(results.values())


def _run_one(check: Callable, spec: MethodSpec, fitted: Fitted, model: torch.nn.Module, results: dict) -> None:
    name = check.__name__
    if name in results and not results[name].passed:
        return  # already failed on the other model
    try:
        check(spec, fitted, lambda: _fit(spec, model))
        results[name] = CheckResult(name, True)
    except CheckSkipped as err:
        results[name] = CheckResult(name, True, str(err), skipped=True)
    except (CheckFailed, MethodError) as err:
        results[name] = CheckResult(name, False, f"{model.variant} model: {err}", traceback.format_exc())
    except Exception as err:  # noqa: BLE001 - an exception in the method is a failed check
        results[name] = CheckResult(name, False, f"{model.variant} model: {type(err).__name__}: {first_line(err)}",
                                    traceback.format_exc())


def make_check_models(out: Path = CHECK_MODELS) -> None:
    """Maintainers: (re)train the two tiny check models (about 10 s)."""
    from benchmark.zoo.train import TrainConfig, train

    folders = train(TrainConfig(hidden=16, members=(("ar", 0), ("ni", 0)), steps=1500, eval_every=500),
                    out / "_tmp", progress=False)
    for folder in folders:
        variant = folder.name.split("-")[2]
        folder.rename(out / f"gru-h16-{variant}-check")
    shutil.rmtree(out / "_tmp")  # only the empty checkpoint folder is left


if __name__ == "__main__":
    make_check_models()
