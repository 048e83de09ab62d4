"""What a new record holds: the fields a cell fills in before and after scoring.

Separate from `benchmark.records` (reading, validating, writing records), which
the leaderboard uses and which must not import torch.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from benchmark.data import Sequences, split_hash
from benchmark.hardware import hardware_summary
from benchmark.records import RECORD_VERSION, SCORING_VERSION, ModelProvenance, harness_commit, library_versions
from benchmark.task import BENCHMARK_VERSION


def _model_meta(provenance: ModelProvenance, model: torch.nn.Module) -> dict:
    """The record's `model` block: registry facts when known, else what the model says."""
    from benchmark.zoo.architectures import parse_name

    parts = parse_name(provenance["name"])
    return {"name": provenance["name"], "sha256": provenance["sha256"],
            "architecture": provenance.get("architecture") or (parts.architecture if parts else "custom"),
            "hidden_size": int(provenance.get("hidden_size") or (parts.hidden if parts else model.state_dim)),  # type: ignore[arg-type]
            "state_dim": int(model.state_dim),  # type: ignore[arg-type]
            "variant": str(provenance.get("variant") or getattr(model, "variant", "custom")),
            "seed": provenance.get("seed", parts.seed if parts else None), "tier": provenance.get("tier")}


def base_record(spec, provenance: ModelProvenance, model: torch.nn.Module, test: Sequences, split_name: str, params: dict, *,
                seed: int, budget: int, plan_seed: int) -> dict:
    """A record with every field set but the results (filled in by the cell)."""
    return {
        "record_version": RECORD_VERSION, "benchmark_version": BENCHMARK_VERSION, "scoring_version": SCORING_VERSION,
        "harness_commit": harness_commit(), "status": "ok", "error": None,
        "method": {"name": spec.name, "hypothesis": spec.hypothesis, "baseline": spec.is_baseline,
                   "source_sha256": spec.source_sha256(), "params": params, "entry": spec.entry, "url": spec.url,
                   "authors": list(spec.authors)},
        "model": _model_meta(provenance, model),
        "split": {"name": split_name, "sha256": split_hash(test), "size": len(test)},
        "plan_seed": plan_seed, "seed": seed, "environment": library_versions(),
        "hardware": hardware_summary(), "fit": {"seconds": 0.0, "sequences_drawn": 0, "budget": budget},
        "eval_seconds": 0.0, "tracks_attempted": [], "method_parameters": 0,
        "metrics": {name: None for name in _track_names()}, "by_length": {}, "kept_by_length": {}, "bounds": {"oracle": {}},
        "outcomes_sha256": None,
    }


def _track_names() -> list[str]:
    from benchmark.harness.tracks import TRACKS

    return list(TRACKS)


def outcomes_sha256(outcomes: dict[str, np.ndarray]) -> str:
    """Hash of every per-example outcome, so two records can be compared case by case."""
    digest = hashlib.sha256()
    for name in sorted(outcomes):
        digest.update(name.encode())
        digest.update(np.packbits(outcomes[name].astype(bool)).tobytes())
    return digest.hexdigest()
