"""The architecture registry: every model family of the zoo, its naming scheme, saving and loading.

Why one registry: a family (GRU, LSTM, ...) is described once, by an `Architecture` record,
and everything else (training, model folders, cards, the model registry, loading a folder)
asks the record instead of naming a class. Adding a family is one new module (the model
class, optionally a batched training ensemble) plus one line in `ARCHITECTURES`; see
`docs/ARCHITECTURE.md`, "Adding an architecture".

This module imports no torch at import time (model classes are named as ``"module:Class"``
and imported on first use), so naming, parameter counts and the registry stay cheap for
commands that never touch a model.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from benchmark.errors import OnionbenchError
from benchmark.task import MAX_LEN, VARIANTS, VOCAB_SIZE, embedding_rows
from benchmark.zoo.calibration import GAMMA, HYBRID_LINEAR, coded_parameters

if TYPE_CHECKING:
    from torch import nn

DEFAULT_ARCHITECTURE = "gru"  # what a config.json without "architecture" is: the 24 GRUs saved before the key existed
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class Architecture:
    """One model family. Its constructor is ``model(hidden_size, variant)``; its models implement
    the reference-model interface (`benchmark.zoo.interface`)."""

    name: str  # the model names' prefix (`lstm-h64-ar-s0`) and config.json's "architecture"
    model: type | str  # the class, or "module:Class" imported on first use (keeps torch out of cheap commands)
    state_dim: Callable[[int], int]  # hidden size -> size of the state a method reads and writes
    parameters: Callable[[int, str], int]  # (hidden size, variant) -> learned scalars, without building the model
    title: str  # what the model card calls it, e.g. "single-layer GRU"
    state: str  # what the card says the state is, e.g. "the final encoder state `h`"
    # K members of one hidden size trained as one module (contract: `benchmark.zoo.ensemble.LoopEnsemble`);
    # None trains them side by side in a plain loop, which is always correct, only slower.
    ensemble: type | str | None = None

    @property
    def model_class(self) -> type:
        return _resolve(self.model)

    @property
    def ensemble_class(self) -> type:
        if self.ensemble is None:
            from benchmark.zoo.ensemble import LoopEnsemble

            return LoopEnsemble
        return _resolve(self.ensemble)

    def build(self, hidden_size: int, variant: str) -> nn.Module:
        """A freshly initialised model (the caller seeds torch first for a reproducible init)."""
        return self.model_class(hidden_size, variant)


def _resolve(target: type | str) -> type:
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def recurrent_parameters(gates: int) -> Callable[[int, str], int]:
    """Parameter count of embedding + one recurrent layer with `gates` gate blocks + read-out.

    Why closed form: the registry lists counts for N up to 1024 without allocating models;
    `tests/test_architectures.py` checks each formula against the built model.
    """
    def count(hidden: int, variant: str) -> int:
        recurrent = gates * hidden * (2 * hidden + 2)  # W_ih, W_hh (gates*N x N each), b_ih, b_hh
        return embedding_rows(variant) * hidden + recurrent + VOCAB_SIZE * (hidden + 1)
    return count


ARCHITECTURES: dict[str, Architecture] = {
    "gru": Architecture("gru", "benchmark.zoo.gru:RepeatGRU", state_dim=lambda n: n, parameters=recurrent_parameters(3),
                        title="single-layer GRU", state="the final encoder state `h`",
                        ensemble="benchmark.zoo.ensemble:GRUEnsemble"),
    "lstm": Architecture("lstm", "benchmark.zoo.lstm:RepeatLSTM", state_dim=lambda n: 2 * n,
                         parameters=recurrent_parameters(4), title="single-layer LSTM",
                         state="the final encoder state: `h` and the cell state `c` concatenated, `h` first",
                         ensemble="benchmark.zoo.lstm:LSTMEnsemble"),
    # the calibration tier (benchmark.zoo.calibration): codes known by construction, built by benchmark.zoo.calibrate
    "onion_coded": Architecture("onion_coded", "benchmark.zoo.coded:OnionCoded", state_dim=lambda n: n,
                                parameters=coded_parameters(0), title="calibration model with an onion code",
                                state=f"h = sum_p {GAMMA}^p e(x_p) (every position in one subspace, by magnitude)"),
    "linear_coded": Architecture("linear_coded", "benchmark.zoo.coded:LinearCoded", state_dim=lambda n: n,
                                 parameters=coded_parameters(MAX_LEN), title="calibration model with a linear code",
                                 state="h = sum_p codes[p, x_p] (one rotated subspace per position)"),
    "hybrid_coded": Architecture("hybrid_coded", "benchmark.zoo.coded:HybridCoded", state_dim=lambda n: n,
                                 parameters=coded_parameters(HYBRID_LINEAR), title="calibration model with a hybrid code",
                                 state=f"positions 0-{HYBRID_LINEAR - 1} in linear subspaces, the others an onion "
                                       "in the rest"),
}


def architecture(name: str) -> Architecture:
    """The registered family called `name`; an unknown name lists the known ones."""
    if name not in ARCHITECTURES:
        raise OnionbenchError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)} (a new family is "
                              "registered in benchmark.zoo.architectures.ARCHITECTURES)")
    return ARCHITECTURES[name]


def architecture_of(model: Any) -> Architecture:
    """The family a model object belongs to (by its exact class)."""
    for arch in ARCHITECTURES.values():
        if type(model) is arch.model_class:
            return arch
    raise OnionbenchError(f"{type(model).__name__} is not a registered architecture; register it in "
                          "benchmark.zoo.architectures.ARCHITECTURES before saving it as a model folder")


# --- naming scheme (PROTOCOL §2): {architecture}-h{N}-{variant}-s{seed} -----------------------------

class ModelName(NamedTuple):
    """A zoo name taken apart; `model_name(*parsed)` rebuilds it."""

    architecture: str
    hidden: int
    variant: str
    seed: int


_NAME = re.compile(r"(?P<architecture>[a-z][a-z0-9_]*)-h(?P<hidden>[1-9][0-9]*)-(?P<variant>[a-z]+)"
                   r"-s(?P<seed>0|[1-9][0-9]*)")


def model_name(architecture: str, hidden: int, variant: str, seed: int) -> str:
    """`gru-h64-ar-s0`: the one place names are built, so `parse_name` always takes them apart."""
    name = f"{architecture}-h{hidden}-{variant}-s{seed}"
    if parse_name(name) != (architecture, hidden, variant, seed):
        raise ValueError(f"cannot name a model ({architecture!r}, {hidden!r}, {variant!r}, {seed!r}): the architecture "
                         f"is lowercase letters, digits and _, hidden size >= 1, variant one of {', '.join(VARIANTS)}, "
                         "seed >= 0")
    return name


def parse_name(name: str) -> ModelName | None:
    """The parts of a zoo-scheme name, or None for any other name (e.g. a user's own model folder)."""
    match = _NAME.fullmatch(name)
    if match is None or match["variant"] not in VARIANTS:
        return None
    return ModelName(match["architecture"], int(match["hidden"]), match["variant"], int(match["seed"]))


# --- model folders: config.json (+ "architecture") and model.safetensors ------------------------------

class WeightsMismatchError(OnionbenchError, RuntimeError):
    """A model folder's tensors do not fit its config (missing, unexpected or mis-shaped tensors).

    Also a RuntimeError, which is what torch's strict `load_state_dict` raises.
    """


def model_config(model: Any) -> dict:
    """What config.json holds: the architecture and the constructor's arguments."""
    return {"architecture": architecture_of(model).name, "hidden_size": int(model.hidden_size),
            "variant": str(model.variant)}


def save_model(model: nn.Module, folder: Path) -> None:
    """Write config.json and model.safetensors (the weights exactly as `PyTorchModelHubMixin` writes them)."""
    from safetensors.torch import save_model as save_safetensors

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(model_config(model), indent=2) + "\n")
    save_safetensors(model, str(folder / WEIGHTS_FILE))


def read_config(folder: str | Path) -> dict:
    """config.json of a model folder, with "architecture" filled in (missing = the GRU)."""
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise OnionbenchError(f"{path} not found: a model folder holds {CONFIG_FILE} and {WEIGHTS_FILE} "
                              "(written by `onionbench models train`)")
    return {"architecture": DEFAULT_ARCHITECTURE, **json.loads(path.read_text())}


def load_model(folder: str | Path) -> nn.Module:
    """Build the folder's architecture from config.json and load its weights strictly, in eval mode.

    Strict: a missing, unexpected or mis-shaped tensor raises `WeightsMismatchError` instead
    of leaving part of the model at its random initialisation.
    """
    from safetensors.torch import load_file

    config = read_config(folder)
    arch = architecture(config.pop("architecture"))
    try:
        model = arch.model_class(**config)
    except TypeError as err:
        raise OnionbenchError(f"{Path(folder) / CONFIG_FILE} does not fit a {arch.name} model: {err}") from err
    weights = Path(folder) / WEIGHTS_FILE
    if not weights.exists():
        raise OnionbenchError(f"{weights} not found: the model folder is incomplete; restore or re-download it")
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as err:
        raise WeightsMismatchError(f"{weights} does not fit a {arch.name} model with config {config}: {err}; the file "
                                   "is corrupt or belongs to another model: restore or re-download it") from err
    return model.eval()
