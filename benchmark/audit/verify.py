"""`onionbench verify`: re-score a leaderboard row and compare it with its records.

Two modes:
- exact (default): re-score each cell with the recorded settings on the shipped split and
  plan; metrics and per-example outcomes must be identical.
- fresh (`--fresh`): re-score on a test split and edit plan drawn from a seed taken from
  the OS (printed, so the run can be repeated). A memoriser does *better* on the public
  split than on a fresh one, so the test is one-sided: for every metric, the z statistic
  of (p_committed - p_fresh) over sqrt(p(1-p) (1/n1 + 1/n2)), with the pooled p (floored at
  0.5/(n1+n2), so that two perfect scores still agree). One decision per row: the row
  fails when any z exceeds the one-sided 99 % quantile after a Bonferroni correction over
  every (cell, metric) test of the row, and the cells whose z did are named. A fresh score
  *above* the committed one is no evidence of memorisation: short fresh sequences (at
  length 2 there are only 900) may well have been in the training stream, which excludes
  the public split but not a split drawn later. Fresh records never go to the committed
  results.

Why the fresh re-score repeats the committed fit exactly: the interval above covers the
sampling of test sequences only. If the fresh split's sequences were also held out from
fit (as `score --fresh` does), the training stream would differ, the method would be
fitted anew, and its own fit-to-fit spread would be tested as if it were sampling noise:
honest trained baselines then "fail" (onion, linear-das and gru-probe did, on
gru-h48-ar-s0, by 0.01-0.03). So verify holds out exactly what the committed cell held
out: the fit is the committed one (the exact mode checks that it reproduces), and only
the split and plan it is scored on change. The method never sees the fresh split, which
is drawn from an OS seed after the method was written, so it cannot train on it by design.
Token accuracy is tested with n = sequences, not tokens: a sequence's tokens are
correlated, so counting them as independent cases would make the interval too narrow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from benchmark.errors import OnionbenchError
from benchmark.harness.cell import Evaluation, ScoreSettings, fresh_evaluation, run_cell
from benchmark.harness.isolation.launch import Limits
from benchmark.harness.submission import MethodSpec, load_spec, readable_methods

Z99 = 2.576  # two-sided 99 % normal quantile (`within_interval`)
ALPHA = 0.01  # the row's family-wise error rate for `--fresh`


@dataclass(frozen=True)
class CellCheck:
    """The verdict on one cell."""

    model: str
    matches: bool
    detail: str
    z: tuple[tuple[str, float], ...] = ()  # --fresh: (metric, z of committed - fresh) for every metric tested


def _spec_for(wanted: str, method: str) -> MethodSpec:
    if Path(wanted).is_dir():
        return load_spec(wanted)
    methods, refused = readable_methods()  # another folder's broken method.toml must not stop this row
    if method in refused:
        raise OnionbenchError(f"method {method!r}: {refused[method]}")
    if method not in methods:
        raise OnionbenchError(f"method {method!r} is not in baselines/ or submissions/; pass its folder instead")
    return methods[method]


def verify(results: Path, wanted: str, *, models: list[str] | None = None, fresh_seed: int | None = None,
           fresh: bool = False, limits: Limits = Limits(), progress: bool = True) -> tuple[str, list[CellCheck], int | None]:
    """Re-score a row's cells (or those on `models`); returns (row id, checks, fresh seed or None).

    `wanted` is a row id (`onion@v1`), a method name, or a method folder (its records are
    looked up by the folder's method name in `results`).
    """
    from benchmark.zoo.resolve import load_reference

    name = load_spec(wanted).name if Path(wanted).is_dir() else wanted
    row = _row_records(results, name)
    records = row.records
    spec = _spec_for(wanted, row.method)
    chosen = sorted((r for r in records if models is None or r["model"]["name"] in models), key=lambda r: r["model"]["name"])
    if not chosen:
        raise OnionbenchError(f"row {row.row_id} has no record on {', '.join(models or [])}")
    evaluation, seed = verify_evaluation(fresh_seed) if fresh else (None, None)
    checks = []
    for rec in chosen:
        if spec.source_sha256() != rec["method"]["source_sha256"]:
            checks.append(CellCheck(rec["model"]["name"], False, "the method's source changed since this record"))
            continue
        model, prov = load_reference(rec["model"]["name"])
        settings = ScoreSettings(seed=rec["seed"], budget=rec["fit"]["budget"], plan_seed=rec["plan_seed"],
                                 device=rec["fit"].get("device", "cpu"))  # a GPU record is repeated on a GPU
        if progress:
            print(f"  re-scoring {row.method} on {rec['model']['name']} ...", flush=True)
        with recorded_threads(rec):
            new = run_cell(spec, model, prov, settings=settings, params=rec["method"]["params"],
                           evaluation=evaluation, limits=limits)
        checks.append(compare_fresh(rec, new) if fresh else compare_exact(rec, new))
    return row.row_id, row_verdict(checks) if fresh else checks, seed


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # what a cell's processes read for their thread count


@contextlib.contextmanager
def recorded_threads(record: dict) -> Iterator[None]:
    """Re-score with the record's torch threads (its `hardware` ends "..., N threads"), here and in
    the cell's processes (OMP_NUM_THREADS), then restore. Why: `score --workers 2` records one
    thread per cell; a sequential verify on the same machine used every core, and a different
    thread count changes float sums, so an exact repeat on the recording machine failed."""
    import torch

    match = re.search(r"(\d+) threads?$", record.get("hardware") or "")
    if not match:
        yield
        return
    before, env = torch.get_num_threads(), {k: os.environ.get(k) for k in THREAD_VARS}
    torch.set_num_threads(int(match.group(1)))
    os.environ.update(dict.fromkeys(THREAD_VARS, match.group(1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class _Row:
    row_id: str
    method: str
    records: list[dict]


def _row_records(results: Path, wanted: str) -> _Row:
    """A row's successful records, by row id (`onion@v1`) or method name.

    Read here, not through the board: the harness sits below the board (docs/ARCHITECTURE.md)."""
    from benchmark.records import read_record, record_files
    from benchmark.task import BENCHMARK_VERSION

    method = wanted.rsplit("@v", 1)[0] if "@v" in wanted else wanted
    methods, mine = set(), []
    for path in record_files(results):
        try:
            rec = read_record(path)
        except OnionbenchError:
            continue  # the leaderboard reports refused files; verify needs the readable ones
        methods.add(rec["method"]["name"])
        if rec["method"]["name"] == method and rec["status"] == "ok":
            mine.append(rec)
    if method not in methods:
        rows = ", ".join(f"{m}@v{BENCHMARK_VERSION}" for m in sorted(methods)) or "none"
        raise OnionbenchError(f"no leaderboard row {wanted!r}; rows: {rows}")
    return _Row(f"{method}@v{BENCHMARK_VERSION}", method, mine)


def verify_evaluation(seed: int | None = None) -> tuple[Evaluation, int]:
    """A fresh split and plan (from `seed`, else the OS) that leave the committed fit unchanged.

    Unlike `fresh_evaluation` for `score --fresh`, the fresh sequences are not added to
    what fit must not encode, so the training stream, and with it the fit, is the committed
    cell's (module docstring).
    """
    evaluation, seed = fresh_evaluation(seed)
    return dataclasses.replace(evaluation, extra_heldout=np.zeros(0, dtype=np.int64)), seed


def compare_exact(old: dict, new: dict) -> CellCheck:
    """Identical metrics and per-example outcomes (a track missing on either side is a difference)."""
    name = old["model"]["name"]
    if new["status"] != "ok":
        return CellCheck(name, False, f"re-score failed: {new['error']}")
    diffs = []
    for track, metrics in old["metrics"].items():
        now = new["metrics"].get(track)
        if (metrics is None) != (now is None):
            diffs.append(f"{track}: recorded {'not attempted' if metrics is None else 'scored'}, now "
                         f"{'not attempted' if now is None else 'scored'}")
            continue
        diffs += [f"{track}.{k}: recorded {v} vs now {now.get(k)}" for k, v in (metrics or {}).items()
                  if now.get(k) != v]
    if old["model"]["sha256"] != new["model"]["sha256"]:
        diffs.insert(0, "model weights differ")
    if not diffs and old["outcomes_sha256"] != new["outcomes_sha256"]:
        diffs.append("per-example outcomes differ (same aggregate metrics)")
    if diffs and old.get("hardware") != new.get("hardware") and old["model"]["sha256"] == new["model"]["sha256"]:
        return _across_machines(old, new)
    return CellCheck(name, not diffs, "; ".join(diffs) or "metrics and outcomes identical")


def _across_machines(old: dict, new: dict) -> CellCheck:
    """Another CPU: floats differ (Intel-made records re-scored on an AMD machine differ in the third
    decimal with the same code), so an exact repeat cannot be asked for. Pass with tolerance when
    every metric lies within the 99 % two-sample interval of the other (the fresh test's interval,
    two-sided here: a difference either way is float noise or a real change); say which it was."""
    name, where = old["model"]["name"], f"recorded on {old.get('hardware')}, re-scored on {new.get('hardware')}"
    worst, outside = 0.0, []
    outside += [f"{t}: attempted on one machine only" for t, m in old["metrics"].items()
                if (m is None) != (new["metrics"].get(t) is None)]
    for label, p1, n1, p2, n2 in _rate_pairs(old, new):
        worst = max(worst, abs(p1 - p2))
        if not within_interval(p1, n1, p2, n2):
            outside.append(f"{label}: recorded {p1:.4f} vs now {p2:.4f}")
    if outside:
        return CellCheck(name, False, f"{where}: beyond the 99 % tolerance: " + "; ".join(outside))
    return CellCheck(name, True, f"pass with tolerance ({where}; not an exact repeat): largest metric difference "
                                 f"{worst:.4f}, every metric within the 99 % interval")


def _cases(rec: dict, track: str, metric: str) -> int:
    """How many cases a metric is a rate over (for its sampling interval)."""
    size = rec["split"]["size"]
    if track == "read":
        return size  # token accuracy too: a sequence's tokens are not independent cases (module docstring)
    kept = rec["metrics"].get("write" if track == "consistency" else track) or {}
    return max(1, round(kept.get("kept_fraction", 1.0) * size))


def within_interval(p1: float, n1: int, p2: float, n2: int) -> bool:
    """The two-sample 99 % test of the module docstring."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = max(pooled * (1 - pooled), 0.5 / (n1 + n2))
    return abs(p1 - p2) <= Z99 * math.sqrt(var * (1 / n1 + 1 / n2))


def z_score(p1: float, n1: int, p2: float, n2: int) -> float:
    """(p1 - p2) over its standard error under the pooled proportion (floored as in `within_interval`)."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = max(pooled * (1 - pooled), 0.5 / (n1 + n2))
    return (p1 - p2) / math.sqrt(var * (1 / n1 + 1 / n2))


def compare_fresh(old: dict, new: dict) -> CellCheck:
    """Every metric's z (committed above fresh is positive); the verdict is the row's (`row_verdict`)."""
    name = old["model"]["name"]
    if new["status"] != "ok":
        return CellCheck(name, False, f"fresh re-score failed: {new['error']}")
    zs = tuple((label, z_score(p1, n1, p2, n2)) for label, p1, n1, p2, n2 in _rate_pairs(old, new))
    return CellCheck(name, True, "", zs)


def _rate_pairs(old: dict, new: dict):
    """("track.metric", old rate, its cases, new rate, its cases) for every rate both records have."""
    for track, metrics in old["metrics"].items():
        now = new["metrics"].get(track) or {}
        for key, value in (metrics or {}).items():
            if key != "kept_fraction" and key in now:
                yield f"{track}.{key}", value, _cases(old, track, key), now[key], _cases(new, track, key)


def one_sided_threshold(tests: int, alpha: float = ALPHA) -> float:
    """The z a committed score must exceed the fresh one by to count as memorised, Bonferroni over `tests`."""
    return NormalDist().inv_cdf(1 - alpha / max(tests, 1))


def row_verdict(checks: list[CellCheck], alpha: float = ALPHA) -> list[CellCheck]:
    """One decision for the row: a cell fails when one of its metrics is above the fresh score by more
    than the Bonferroni-corrected one-sided threshold over all the row's tests."""
    threshold = one_sided_threshold(sum(len(c.z) for c in checks), alpha)
    out = []
    for c in checks:
        if not c.z and not c.matches:
            out.append(c)  # the fresh re-score failed
            continue
        high = [(k, z) for k, z in c.z if z > threshold]
        worst = max((z for _, z in c.z), default=0.0)
        detail = (f"committed above fresh beyond chance (z > {threshold:.2f}; memorised the public split or plan?): "
                  + "; ".join(f"{k} z={z:.2f}" for k, z in high)) if high else \
            f"no metric above the fresh one beyond chance (largest z {worst:.2f}, threshold {threshold:.2f})"
        out.append(dataclasses.replace(c, matches=not high, detail=detail))
    return out
