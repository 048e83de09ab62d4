"""What the leaderboard may compare: the core tier, model groups, and comparable records.

A number on a board is only meaningful next to another one measured the same way, on the
same models. So the core tier comes from the registry (a record counts as a core cell only
when its model's weights are the pinned ones), and a build refuses record sets that mix
scoring versions, edit plans, fit budgets or weights of one model, or that ran without a
verified sandbox, naming the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.errors import OnionbenchError

HEADLINE_GROUP = ("gru", "core")  # the GRU core tier: the headline and both boards
TIER_LABEL = {"core": "core tier", "extended": "extended tier", "calibration": "calibration tier",
              None: "custom models"}


@dataclass(frozen=True)
class Pin:
    """What the registry pins for one model: its tier, weights and architecture."""

    tier: str
    sha256: str | None
    architecture: str


def pins_from_registry(registry: Mapping[str, Any] | None = None) -> dict[str, Pin]:
    """Registry entries (`load_registry()` by default) reduced to what the board needs.

    Imported lazily: the registry module loads torch, which `build` must not need when the
    caller passes the registry itself.
    """
    if registry is None:
        from benchmark.zoo.registry import load_registry

        registry = load_registry()
    return {name: Pin(e.tier, e.sha256, getattr(e, "architecture", "gru")) for name, e in registry.items()}


def core_models(pins: dict[str, Pin]) -> dict[str, str]:
    """The GRU core tier as trained today: model name -> pinned sha256 (untrained models are not cells)."""
    return {name: p.sha256 for name, p in sorted(pins.items())
            if (p.architecture, p.tier) == HEADLINE_GROUP and p.sha256 is not None}


def group_of(rec: dict, pins: dict[str, Pin]) -> tuple[str, str | None]:
    """(architecture, tier) of a record's model.

    The registry decides for a registry model with the pinned weights; a registry name with
    other weights is a custom model (tier None), whatever the record claims; a model the
    registry does not know keeps the record's own `architecture` and `tier`.
    """
    model = rec["model"]
    pin = pins.get(model["name"])
    if pin is not None:
        return (pin.architecture, pin.tier) if pin.sha256 == model["sha256"] else (pin.architecture, None)
    return model.get("architecture", "gru"), model.get("tier")


def group_label(group: tuple[str, str | None]) -> str:
    """'GRU extended tier', 'LSTM', 'GRU calibration tier', 'GRU custom models'."""
    arch, tier = group
    if tier == arch:
        return arch.upper()
    return f"{arch.upper()} {TIER_LABEL.get(tier, f'{tier} tier')}"


def cell_name(rec: dict) -> str:
    """How a record is named in messages: its path under the results folder, without `.json`."""
    return f"{rec['method']['name']}/{rec['model']['name']}"


# what every record of one build must share; the value is read from each record
SHARED_FIELDS = {
    "benchmark_version": lambda r: r["benchmark_version"],
    "scoring_version": lambda r: r["scoring_version"],
    "plan_seed": lambda r: r["plan_seed"],
    "fit budget": lambda r: r["fit"]["budget"],
}


def check_comparable(records: list[dict]) -> None:
    """Raise OnionbenchError listing every disagreement on one line (all problems at once, records named)."""
    problems = [p for field, get in SHARED_FIELDS.items() if (p := _disagreement(records, field, get))]
    problems += _model_hash_disagreements(records)
    problems += _duplicates(records)
    problems += _unsealed(records)
    if problems:
        raise OnionbenchError("the records are not comparable, so no leaderboard was built: " + ". ".join(problems)
                              + ". Re-score the odd records with the settings of the others (`onionbench score "
                              "FOLDER`), or move them out of the results folder.")


def _disagreement(records: list[dict], field: str, get) -> str | None:
    """'scoring_version differs: '1' in a/m, b/m; '2' in 142 records (c/m, ...)' or None."""
    by_value: dict[str, list[str]] = {}
    for rec in records:
        by_value.setdefault(repr(get(rec)), []).append(cell_name(rec))
    if len(by_value) < 2:
        return None
    return f"{field} differs: " + "; ".join(f"{value} in {_names(names)}" for value, names in _minority_first(by_value))


def _minority_first(by_value: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    return sorted(by_value.items(), key=lambda kv: (len(kv[1]), kv[0]))


def _names(names: list[str], limit: int = 12) -> str:
    """Every name when few, else a count and the first ones (the odd records come first anyway)."""
    names = sorted(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{len(names)} records ({', '.join(names[:3])}, ...)"


def _model_hash_disagreements(records: list[dict]) -> list[str]:
    """Records on one model name must hold the same weights (else they measured different models)."""
    by_model: dict[str, dict[str, list[str]]] = {}
    for rec in records:
        by_model.setdefault(rec["model"]["name"], {}).setdefault(rec["model"]["sha256"][:12], []).append(cell_name(rec))
    return [f"model {name} has different weights (sha256) across records: "
            + "; ".join(f"{sha}... in {_names(names)}" for sha, names in _minority_first(hashes))
            for name, hashes in sorted(by_model.items()) if len(hashes) > 1]


def _unsealed(records: list[dict]) -> list[str]:
    """Records whose workers attested an open restriction (no bubblewrap, say) are not ranked.

    Records from before attestation carry the kernel's Landlock ABI instead ("landlock 7"):
    they are ranked until the sealed re-score replaces them."""
    open_ = sorted(cell_name(r) for r in records if "open:" in r.get("environment", {}).get("sandbox", ""))
    if not open_:
        return []
    return [f"{_names(open_)} ran without a verified sandbox (their environment.sandbox says which restrictions were "
            "open); install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and re-score them"]


def _duplicates(records: list[dict]) -> list[str]:
    counts = Counter(cell_name(r) for r in records)
    return [f"{name} has {n} records (one per method and model is allowed)"
            for name, n in sorted(counts.items()) if n > 1]
