"""What magnitude profile does the onion baseline learn, with the paper's s(p) and a free one?

Fits `baselines/onion` twice per model, once with the paper's scale form
s(p) = g*gamma**p + p*lin + b and once with `free_scale = true` (any per-channel profile
per position), and prints per position
  - the typical size of a layer, mean over tokens of ||tanh(E[t]) * s(p)||, and
  - how much the positions share channels: the mean cosine between |s(p)| and |s(q)|,
    p != q. Near 1: every position uses the same channels at different magnitudes (an
    onion). Low: positions sit on different channels (closer to separate subspaces).

Why: on `ni` models the paper's form writes poorly while the free one writes well, and a
free s(p) can express a channel-partitioned code as well as a magnitude code; this tells
which one the free fit found.

Usage: python benchmarks/onion_profile.py [MODEL ...]   (default: gru-h64-ar-s0 gru-h64-ni-s0)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from benchmark.data import heldout_keys
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.zoo.resolve import load_reference

ONION = Path(__file__).resolve().parents[1] / "baselines" / "onion" / "method.py"


def _onion_class():
    spec = importlib.util.spec_from_file_location("onion_method", ONION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OnionMethod


def profile(name: str, free_scale: bool) -> tuple[list[float], float]:
    """(layer size per position, mean cross-position cosine of |s(p)|) of one fit."""
    model, _ = load_reference(name)
    seed_everything(0)
    data = FitData(model, heldout_keys(), seed=0, budget=1_000_000)
    method = _onion_class()(free_scale=free_scale)
    method.fit(FrozenModel(model, data), data)  # returns the declaration; the fitted tensors stay on `method`
    with torch.no_grad():
        scales = method._scales()
        layers = (torch.tanh(method.embedding_)[:, None, :] * scales[None]).norm(dim=-1).mean(0)
        a = scales.abs() / scales.abs().norm(dim=-1, keepdim=True)
        cos = (a @ a.T)[~torch.eye(scales.shape[0], dtype=torch.bool)]
    return layers.tolist(), float(cos.mean())


def main() -> None:
    torch.set_num_threads(1)
    for name in sys.argv[1:] or ["gru-h64-ar-s0", "gru-h64-ni-s0"]:
        for free in (False, True):
            layers, cos = profile(name, free)
            print(f"{name:15s} {'free ' if free else 'paper'}  shared channels {cos:.2f}  layer size by position: "
                  + " ".join(f"{x:.2f}" for x in layers), flush=True)


if __name__ == "__main__":
    main()
