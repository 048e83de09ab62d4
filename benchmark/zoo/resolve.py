"""Resolving and loading reference models: the embedded zoo, the Hugging Face cache, the Hub.

`benchmark.zoo.registry` is the data (what each model is, pinned by sha256); this module
finds a model's files (embedded copy, else the cache at the pinned commit, else a download
unless offline), verifies the weights against the pin, and loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import OnionbenchError
from benchmark.hashing import file_sha256
from benchmark.records import ModelProvenance
from benchmark.zoo.architectures import load_model, parse_name, read_config
from benchmark.zoo.hub import cached_folder, resolve_folder
from benchmark.zoo.registry import ModelEntry, load_registry

if TYPE_CHECKING:
    from torch import nn


def model_folder(name: str, entries: dict[str, ModelEntry] | None = None) -> Path:
    """Where a registry model's files are: the embedded copy, else the Hugging Face cache at the pinned
    commit, else a download (not when HF_HUB_OFFLINE is set: then the error says what to run)."""
    entries = entries or load_registry()
    entry = entries[name]
    if not entry.trained:
        raise OnionbenchError(f"{name} is not trained yet (tier {entry.tier}); see README 'Reference models'")
    if (entry.embedded_folder / "model.safetensors").exists():
        return entry.embedded_folder
    return resolve_folder(entry)


def require_available(names: list[str]) -> None:
    """Fail before any work starts if a named registry model cannot be loaded."""
    entries = load_registry()
    for name in names:
        if name in entries:
            model_folder(name, entries)


def availability(entry: ModelEntry) -> str:
    """'embedded', 'cached' (Hugging Face cache at the pinned commit), 'on the Hub', or 'not trained'."""
    if not entry.trained:
        return "not trained"
    if (entry.embedded_folder / "model.safetensors").exists():
        return "embedded"
    if cached_folder(entry) is not None:
        return "cached"
    return "on the Hub" if entry.hub_revision else "not published"


def load_reference(name_or_folder: str) -> tuple[nn.Module, ModelProvenance]:
    """Load a registry model (sha256-verified) or a model folder; returns (model, provenance).

    provenance: a `ModelProvenance` with every key; for a plain folder the tier is None and
    the seed is read from a zoo-scheme folder name (None otherwise).
    """
    path = Path(name_or_folder)
    if path.is_dir():
        config, parsed = read_config(path), parse_name(path.name)
        return load_model(path), {"name": path.name, "sha256": file_sha256(path / "model.safetensors"),
                                  "architecture": config["architecture"], "hidden_size": config["hidden_size"],
                                  "variant": config["variant"], "seed": parsed.seed if parsed else None, "tier": None}
    entries = load_registry()
    if name_or_folder not in entries:
        raise OnionbenchError(f"unknown model {name_or_folder!r}; valid names: {', '.join(entries)}")
    entry = entries[name_or_folder]
    folder = model_folder(name_or_folder, entries)
    actual = file_sha256(folder / "model.safetensors")
    if actual != entry.sha256:
        raise OnionbenchError(f"{folder / 'model.safetensors'} has sha256 {actual[:12]}..., the registry pins "
                              f"{(entry.sha256 or '')[:12]}...; the file is corrupt or was replaced: restore or re-download it")
    return load_model(folder), {"name": entry.name, "sha256": entry.sha256, "architecture": entry.architecture,
                                "hidden_size": entry.hidden_size, "variant": entry.variant, "seed": entry.seed,
                                "tier": entry.tier}
