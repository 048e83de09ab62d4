"""Building the calibration models (`benchmark.zoo.calibration.MEMBERS`) and writing their folders.

A calibration model is *built*, not trained with the zoo recipe: the construction fixes the
code (a random rotation and, for linear positions, a spread unit codebook per position), and
only the onion part's token embedding and read-out are trained, with the code and the
peeling decoder fixed. Everything is seeded and single-threaded, so a rebuild gives the
same weights on the same torch build.

    python -m benchmark.zoo.calibrate runs/calibration      # build every member (about 2 minutes)
    onionbench models embed runs/calibration                # copy them into the zoo, pin their sha256

The folders have the zoo's files (config.json, model.safetensors, README.md, training.json,
learning_curve.json); training.json's recipe says ``"kind": "calibration"``, which is how
`registry.embed` tells a finished calibration build from an unfinished zoo training.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from benchmark.data import TrainSampler, heldout_keys, load_split
from benchmark.hardware import hardware_summary
from benchmark.hashing import file_sha256
from benchmark.task import MAX_LEN, VOCAB_SIZE
from benchmark.zoo.architectures import architecture, save_model
from benchmark.zoo.calibration import GAMMA, LINEAR_SCALE, MEMBERS, Member
from benchmark.zoo.coded import CodedModel
from benchmark.zoo.interface import repeat_correct


@dataclass(frozen=True)
class BuildRecipe:
    """How the learned part of a calibration model is trained (the code itself is fixed)."""

    steps: int = 2_000  # reaches exact match 1.0 on the 64-dim onion in ~1,000 steps; the rest adds margin
    batch_size: int = 256
    lr: float = 1e-2  # cosine to 0: only ~4k scalars on a fixed, smooth decoder
    weight_decay: float = 0.0  # the read-out must stay sharp at the deepest (smallest) layer
    code_steps: int = 2_000  # repulsion steps that spread each linear position's 30 unit codes
    curve_every: int = 250

    def record(self) -> dict:
        """What training.json and the card state (`kind` marks a calibration build for `registry.embed`)."""
        return {"kind": "calibration", **asdict(self), "optimizer": "AdamW", "schedule": "cosine to 0",
                "gamma": GAMMA, "linear_scale": LINEAR_SCALE, "loss": "token cross-entropy, lengths 2..9"}


def spread_code(k: int, generator: torch.Generator, steps: int) -> torch.Tensor:
    """(30, k) unit vectors spread over the sphere: minimise a soft maximum of their pairwise cosines.

    Why spread: the decoder reads a linear position by cosine with each code, so the margin
    between tokens is 1 - (largest cosine between two codes); random codes in 7 dimensions
    leave some pairs nearly parallel, spread ones keep every pair below ~0.26.
    """
    x = torch.randn(VOCAB_SIZE, k, generator=generator)
    if k < 2:
        return nn.functional.normalize(x, dim=1)
    x = nn.Parameter(x)
    opt = torch.optim.Adam([x], lr=1e-2)
    off_diagonal = ~torch.eye(VOCAB_SIZE, dtype=torch.bool)
    for _ in range(steps):
        unit = nn.functional.normalize(x, dim=1)
        loss = torch.logsumexp(20 * (unit @ unit.T)[off_diagonal], dim=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return nn.functional.normalize(x.detach(), dim=1)


def construct(member: Member, recipe: BuildRecipe) -> CodedModel:
    """The member's model with its fixed code in place (seeded by the member's seed), not yet trained."""
    torch.manual_seed(member.seed)
    model = architecture(member.architecture).build(member.hidden, member.variant)
    assert isinstance(model, CodedModel)
    if model.LINEAR:
        gen = torch.Generator().manual_seed(member.seed)
        rotation, _ = torch.linalg.qr(torch.randn(member.hidden, member.hidden, generator=gen))
        model.set_code(rotation, [spread_code(k, gen, recipe.code_steps) for k in model.sizes])
    return model


def train_onion(model: CodedModel, recipe: BuildRecipe, seed: int) -> list[dict]:
    """Train the learned parameters (onion embedding and read-out) through the fixed decoder; returns the curve."""
    params = list(model.parameters())
    if not params:
        return []
    sampler = TrainSampler(seed, heldout_keys())
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / recipe.steps)))
    curve = []
    for step in range(1, recipe.steps + 1):
        batch = sampler.sample(recipe.batch_size)
        logits = model.decode(model.encode(batch.tokens, batch.lengths), batch.tokens)
        valid = torch.arange(MAX_LEN)[None, :] < batch.lengths[:, None]
        loss = nn.functional.cross_entropy(logits[valid], batch.tokens[valid])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % recipe.curve_every == 0:
            curve.append({"step": step, "loss": round(loss.item(), 6)})
    return curve


def build(member: Member, recipe: BuildRecipe = BuildRecipe()) -> tuple[CodedModel, dict, list[dict]]:
    """Construct and train one member; returns (model in eval mode, training.json fields, learning curve)."""
    start = time.perf_counter()
    model = construct(member, recipe)
    curve = train_onion(model, recipe, member.seed)
    seconds = round(time.perf_counter() - start, 1)
    model.eval()
    test = load_split("test")
    correct = repeat_correct(model, test.tokens, test.lengths)
    info = {"name": member.name, "architecture": member.architecture, "hidden_size": member.hidden,
            "state_dim": member.hidden, "variant": member.variant, "seed": member.seed, "tier": "calibration",
            "learned": member.learned, "fixed": member.fixed, "recipe": recipe.record(),
            "steps_done": recipe.steps, "test_exact_match": correct.float().mean().item(),
            "test_exact_match_by_length": _by_length(correct, test.lengths), "train_seconds": seconds,
            "model_seconds": seconds, "hardware": hardware_summary()}
    return model, info, curve


def _by_length(correct: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
    return {str(n): round(correct[lengths == n].float().mean().item(), 4) for n in sorted(set(lengths.tolist()))}


def write_folder(model: CodedModel, folder: Path, info: dict, curve: list[dict]) -> str:
    """The zoo's five files for a calibration model; returns the weight sha256."""
    save_model(model, folder)
    info = dict(info, sha256=file_sha256(folder / "model.safetensors"),
                parameters=sum(p.numel() for p in model.parameters()))
    (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    (folder / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    (folder / "README.md").write_text(card(info))
    return info["sha256"]


def card(info: dict) -> str:
    """The model card: what is known by construction, what was learned, and what it is for."""
    recipe = info["recipe"]
    by_length = " | ".join(f"{n}: {acc:.4f}" for n, acc in info["test_exact_match_by_length"].items())
    trained = (f"AdamW, lr {recipe['lr']} (cosine to 0), weight decay {recipe['weight_decay']}, batch "
               f"{recipe['batch_size']}, {recipe['steps']:,} steps, token cross-entropy" if info["parameters"]
               else "nothing is trained")
    return f"""---
library_name: onionbench
license: mit
tags: [onionbench, interpretability, calibration, {info['architecture']}]
---

# {info['name']}

A **calibration model** of [onionbench](https://github.com/onionbench/onionbench): it repeats a
sequence of 2-9 tokens (30-token vocabulary) like the zoo's GRUs, but the way its state
(`state_dim` {info['state_dim']}) stores each position is known by construction, so the benchmark can
check that the right hypothesis wins on it and the wrong one does not (docs/PROTOCOL.md, "Calibration").
It is not a trained recurrent network and is not part of the headline.

- Fixed by construction: {info['fixed']}.
- Learned: {info['learned']} ({info['parameters']:,} scalars); {trained}.
- Decoder variant: `{info['variant']}`. Build: `python -m benchmark.zoo.calibrate` (seed {info['seed']},
  {info['train_seconds']:.0f} s on {info['hardware']}).

## Evaluation
Test exact match on the 5,000-sequence onionbench test split v1: **{info['test_exact_match']:.4f}**.

By length: {by_length}

## Files
- `model.safetensors`: sha256 `{info['sha256']}` (the fixed code is stored with the learned weights)
- `config.json`: the architecture (`{info['architecture']}`); load with `benchmark.zoo.architectures.load_model`.
"""


def main(argv: list[str] | None = None) -> None:
    """Build the calibration members into OUT/NAME/ (then `onionbench models embed OUT`)."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.zoo.calibrate", description=main.__doc__)
    parser.add_argument("out", type=Path, help="folder for the model folders (e.g. runs/calibration)")
    parser.add_argument("--names", nargs="+", help="build only these members (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the same weights on every machine with this torch build
    for member in MEMBERS:
        if args.names and member.name not in args.names:
            continue
        model, info, curve = build(member)
        sha = write_folder(model, args.out / member.name, info, curve)
        print(f"{member.name}: test exact match {info['test_exact_match']:.4f}, {info['train_seconds']:.0f} s, "
              f"sha256 {sha[:12]}... -> {args.out / member.name}")


if __name__ == "__main__":
    main()
