"""The reference-model registry (PROTOCOL §2): data next to the code, in `registry.json`.

Each entry pins a model: name, size, variant, seed, tier, parameter count, weight sha256,
test exact match, training time and hardware, Hub repo id and revision. The core tier is
embedded in `benchmark/zoo/models/<name>/` so scoring works offline; loading verifies the sha256.

Maintainers: `embed(Path("runs/zoo"))` copies finished model folders into the zoo and
refreshes their entries (the command line's `onionbench models embed`).

This module imports no torch at import time: listing the registry is cheap.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmark.errors import OnionbenchError
from benchmark.hashing import file_sha256
from benchmark.task import VARIANTS
from benchmark.zoo import calibration
from benchmark.zoo.architectures import ModelName, architecture, model_name, read_config

REGISTRY_PATH = Path(__file__).parent / "registry.json"
ZOO_DIR = Path(__file__).parent / "models"  # generated model folders, apart from the zoo's source modules
# A trained model whose weights are larger is pinned (sha256, records) but not copied into the package:
# the wheel stays small, and `models download` fetches it from the Hub once published (issue 31 item 3).
EMBED_LIMIT_BYTES = 20 * 2**20
CORE_SIZES = (48, 64, 128, 256)
EXTENDED_SIZES = (512, 1024)
SEEDS = (0, 1, 2)
FULL_RECIPE_STEPS = 40_000  # only models trained with the whole recipe enter the zoo
HUB_ORG = "onionbench"
MODEL_FILES = ("config.json", "model.safetensors", "README.md", "training.json", "learning_curve.json")
SMOKE = ("gru-h48-ar-s0", "gru-h48-ni-s0")  # the `smoke` set: a few minutes on 2 cores


@dataclass
class ModelEntry:
    """One registry row. `sha256` is None while the model is not trained."""

    name: str
    hidden_size: int
    variant: str
    seed: int
    tier: str  # a `TIERS` name: "core" (embedded), "extended" (Hub), "lstm" (embedded), "calibration" (embedded)
    parameters: int
    sha256: str | None = None
    test_accuracy: float | None = None
    train_seconds: float | None = None
    hardware: str | None = None
    hub_repo: str = ""
    hub_revision: str = ""  # commit id pinned at publication; empty until published
    plan: str = ""  # for a model not trained yet: how and where it will be; empty once trained
    architecture: str = "gru"  # a key of `benchmark.zoo.architectures.ARCHITECTURES`

    @property
    def trained(self) -> bool:
        return self.sha256 is not None

    @property
    def embedded_folder(self) -> Path:
        return ZOO_DIR / self.name


@dataclass(frozen=True)
class Tier:
    """A group of registry models: one architecture, its hidden sizes, and the plan while untrained."""

    name: str  # also a `select` group: `onionbench score ... --models lstm`
    architecture: str  # unused when `members` is given
    sizes: tuple[int, ...]
    plan: str  # what an untrained entry says about how and where it will be trained (README 'Reference models')
    # explicit models instead of sizes x variants x seeds: a tier of several families, one variant each (calibration)
    members: tuple[ModelName, ...] = ()

    def models(self) -> list[ModelName]:
        """The tier's models in registry order."""
        if self.members:
            return list(self.members)
        return [ModelName(self.architecture, n, v, s) for n in self.sizes for v in VARIANTS for s in SEEDS]


TIERS = (
    Tier("core", "gru", CORE_SIZES, "to be trained on CPU with `onionbench models train`, then embedded"),
    Tier("extended", "gru", EXTENDED_SIZES,
         "extended tier: to be trained with `onionbench models train` (benchmarks/gpu_extended.sh on a GPU), then "
         "`models embed` (N=512 is embedded in the repository, N=1024 pinned only: over 20 MB) and published to the "
         "Hub (`onionbench models publish --from`); not shipped in the wheel"),
    Tier("lstm", "lstm", CORE_SIZES,
         "lstm tier: to be trained on CPU with `onionbench models train --architecture lstm`, then embedded"),
    Tier(calibration.TIER, "", (), "calibration tier: to be built with `python -m benchmark.zoo.calibrate runs/"
         "calibration`, then embedded", members=tuple(ModelName(m.architecture, m.hidden, m.variant, m.seed)
                                                      for m in calibration.MEMBERS)),
)


def untrained_plan(tier: str) -> str:
    """What the registry says about a model of `tier` until it is trained."""
    return next(t.plan for t in TIERS if t.name == tier)


def _entry(tier: Tier, model: ModelName) -> ModelEntry:
    name = model_name(*model)
    return ModelEntry(name=name, hidden_size=model.hidden, variant=model.variant, seed=model.seed, tier=tier.name,
                      parameters=architecture(model.architecture).parameters(model.hidden, model.variant),
                      hub_repo=f"{HUB_ORG}/{name}", plan=tier.plan, architecture=model.architecture)


def standard_set() -> list[ModelEntry]:
    """The standard set v1, untrained (what the registry holds before any training), tier by tier."""
    return [_entry(tier, model) for tier in TIERS for model in tier.models()]


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, ModelEntry]:
    """All entries by name."""
    if not path.exists():
        return {e.name: e for e in standard_set()}
    return {row["name"]: ModelEntry(**row) for row in json.loads(path.read_text())}


def save_registry(entries: dict[str, ModelEntry], path: Path = REGISTRY_PATH) -> None:
    """Write atomically: a scoring run reading the registry never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([asdict(e) for e in entries.values()], indent=1) + "\n")
    os.replace(tmp, path)


def select(spec: list[str], entries: dict[str, ModelEntry] | None = None) -> list[str]:
    """Expand tier names (`core`, `extended`, `lstm`, `calibration`), `smoke`, `all` and model names; unknown names
    list the valid ones."""
    entries = entries or load_registry()
    groups = {t.name: [n for n, e in entries.items() if e.tier == t.name] for t in TIERS}
    groups.update(smoke=list(SMOKE), all=list(entries))
    names: list[str] = []
    for item in spec:
        if item in groups:
            trained = [n for n in groups[item] if entries[n].sha256 is not None]
            if not trained:
                raise OnionbenchError(f"the {item!r} selection has no trained model yet ({len(groups[item])} "
                                      "registered, 0 trained); `onionbench models list` shows what is available")
            names += trained  # a tier's untrained sizes are registered but cannot be scored
        elif item in entries or Path(item).is_dir():
            names.append(item)
        else:
            close = difflib.get_close_matches(item, [*groups, *entries], n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise OnionbenchError(f"unknown model {item!r}{hint} (selections: {', '.join(groups)}; a model folder; "
                                  "or a name from `onionbench models list`)")
    return list(dict.fromkeys(names))


def finished(info: dict, entry: ModelEntry) -> bool:
    """Is a model folder's training.json a finished build for this entry?

    Zoo tiers: the full 40,000-step recipe only. The calibration tier: a finished calibration
    build (`benchmark.zoo.calibrate`, recipe kind "calibration"), never a zoo training run.
    """
    recipe = info["recipe"]
    if entry.tier == calibration.TIER:
        return recipe.get("kind") == calibration.TIER and info["steps_done"] == recipe["steps"]
    return recipe.get("kind") is None and info["steps_done"] == recipe["steps"] == FULL_RECIPE_STEPS


def embed(source: Path, registry_path: Path = REGISTRY_PATH, zoo_dir: Path | None = None) -> list[str]:
    """Copy finished model folders from `source` into the zoo and refresh their entries.

    A model over EMBED_LIMIT_BYTES (N=1024: ~50 MB) is pinned only: its sha256 and accuracy go into
    the registry, its folder stays where it is, to be published (`models publish --from SOURCE`)."""
    entries = load_registry(registry_path)
    zoo_dir = ZOO_DIR if zoo_dir is None else zoo_dir
    done = []
    for folder in sorted(p for p in source.iterdir() if (p / "training.json").exists()):
        info = json.loads((folder / "training.json").read_text())
        if folder.name not in entries or not finished(info, entries[folder.name]):
            continue  # only the full recipe (or a finished calibration build) enters the zoo
        target = zoo_dir / folder.name
        entry = entries[folder.name]
        found = read_config(folder)["architecture"]
        if found != entry.architecture:
            raise OnionbenchError(f"{folder} holds a {found} model but the registry's {entry.name} is "
                                  f"{entry.architecture}; rename the folder or fix its config.json")
        if entry.sha256 is not None and entry.sha256 == info["sha256"] and target.exists():
            continue  # already embedded: nothing to copy or refresh
        if (folder / "model.safetensors").stat().st_size > EMBED_LIMIT_BYTES:
            _pin(entry, folder, info)
            done.append(f"{folder.name} (pinned, not embedded: over {EMBED_LIMIT_BYTES // 2**20} MB; "
                        f"publish it with `onionbench models publish --from {source}`)")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for file in MODEL_FILES:
            shutil.copy2(folder / file, target / file)
        _pin(entry, target, info)
        entry.plan = ""
        done.append(folder.name)
    save_registry(entries, registry_path)
    return done


def _pin(entry: ModelEntry, folder: Path, info: dict) -> None:
    """The registry facts of a finished model folder: weight sha256, test accuracy, training cost."""
    entry.sha256 = file_sha256(folder / "model.safetensors")
    entry.test_accuracy = round(info["test_exact_match"], 4)
    entry.train_seconds = info["model_seconds"]
    entry.hardware = info["hardware"]
    if not (entry.embedded_folder / "model.safetensors").exists():
        entry.plan = "pinned, not embedded (too large for the package): onionbench models download " + entry.name

