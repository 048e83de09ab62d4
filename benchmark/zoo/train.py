"""The paper's training recipe for reference models of any registered family, resumable, as an ensemble.

One call trains every (variant, seed) member of one architecture and hidden size together
(the family's ensemble class, see `benchmark.zoo.ensemble`): each member is initialised
from its own seed exactly as a lone model would be, reads its own data stream, and gets
its own loss term, so the ensemble is K independent runs sharing one loop. Checkpoints
(weights, AdamW state, data streams, learning curves) are written atomically every
`checkpoint_every` steps; rerunning the same command continues from the last one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from benchmark.data import Sequences, TrainSampler, heldout_keys, load_split
from benchmark.hardware import hardware_summary
from benchmark.zoo.architectures import architecture, model_name
from benchmark.zoo.cards import write_model_folder
from benchmark.zoo.ensemble import masked_loss, sort_by_length
from benchmark.zoo.interface import repeat_correct


@dataclass(frozen=True)
class TrainConfig:
    """The paper's recipe (PROTOCOL §2); only `steps` is meant to be changed, for tests."""

    hidden: int
    members: tuple[tuple[str, int], ...]  # (variant, seed) of every model trained together
    architecture: str = "gru"  # a key of `benchmark.zoo.architectures.ARCHITECTURES`; the recipe is the same for all
    steps: int = 40_000  # the paper's GRU training length
    batch_size: int = 256
    lr: float = 1e-3  # constant: the paper's scheduler has no steps
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eval_every: int = 1_000  # validation exact match on the `valid` split (never test)
    checkpoint_every: int = 1_000

    @property
    def names(self) -> list[str]:
        return [model_name(self.architecture, self.hidden, v, s) for v, s in self.members]

    def recipe(self) -> dict:
        """What a model card records (everything but the member list)."""
        d = asdict(self)
        d.pop("members")
        d.update(optimizer="AdamW", precision="fp32", grad_clip=None, lengths="2..9", loss="token cross-entropy")
        return d


@dataclass
class TrainState:
    """Everything a checkpoint holds besides the weights and the optimiser."""

    step: int = 0
    seconds: float = 0.0  # training wall time so far, summed over resumed runs
    curves: list[list[dict]] = field(default_factory=list)  # per member: [{step, loss, valid_exact_match}]


def _init_members(config: TrainConfig) -> list[nn.Module]:
    arch, members = architecture(config.architecture), []
    for variant, seed in config.members:
        torch.manual_seed(seed)  # the same init a lone model of this family gets under this seed
        members.append(arch.build(config.hidden, variant))
    return members


def _batch(samplers: list[TrainSampler], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [s.sample(size) for s in samplers]
    return sort_by_length(torch.stack([b.tokens for b in batches]), torch.stack([b.lengths for b in batches]))


def _checkpoint_path(config: TrainConfig, out: Path) -> Path:
    return out / ".checkpoints" / f"h{config.hidden}-{'_'.join(config.names)}.pt"  # names carry the architecture


def _save_checkpoint(path: Path, config: TrainConfig, ens, opt, samplers, state: TrainState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"config": asdict(config), "model": ens.state_dict(), "optimizer": opt.state_dict(),
                "samplers": [s.state() for s in samplers], "state": asdict(state)}, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the previous checkpoint intact


def _load_checkpoint(path: Path, config: TrainConfig, ens, opt, samplers) -> TrainState:
    ckpt = torch.load(path, weights_only=False, map_location="cpu")  # resumable on any device
    ckpt["config"].setdefault("architecture", "gru")  # checkpoints written before the field existed
    if ckpt["config"] != asdict(config):
        raise ValueError(f"checkpoint {path} was made with another configuration; delete it to start over")
    ens.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    for sampler, s in zip(samplers, ckpt["samplers"]):
        sampler.load_state(s)
    return TrainState(**ckpt["state"])


@torch.no_grad()
def _validate(ens: nn.Module, valid: Sequences) -> list[float]:
    return [repeat_correct(ens.member(k), valid.tokens, valid.lengths).float().mean().item()
            for k in range(len(ens.variants))]


def train(config: TrainConfig, out: Path, *, progress: bool = True,
          on_step: Callable[[int], None] | None = None, device: str = "cpu") -> list[Path]:
    """Train (or resume) every member of `config`; returns the finished model folders.

    `on_step(step)` is called after every optimiser step (tests use it to interrupt a run).
    `device` runs the ensemble's steps there (e.g. "cuda"); the data streams, validation,
    export and checkpoints stay on the CPU, so a run may resume on another device. A GPU
    reproduces the recipe's accuracy, not bit-identical weights (other kernels, other
    summation order).
    """
    out = Path(out)
    done = [out / name for name in config.names]
    if all(_finished(folder, config) for folder in done):
        return done
    ens = architecture(config.architecture).ensemble_class(_init_members(config)).to(device)
    opt = torch.optim.AdamW(ens.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
    exclude = heldout_keys()
    samplers = [TrainSampler(seed, exclude) for _, seed in config.members]
    ckpt = _checkpoint_path(config, out)
    state = _load_checkpoint(ckpt, config, ens, opt, samplers) if ckpt.exists() else TrainState(
        curves=[[] for _ in config.members])
    valid = load_split("valid")
    _loop(config, ens, opt, samplers, state, valid, ckpt, progress, on_step, device)
    _export(config, ens, state, out)
    ckpt.unlink(missing_ok=True)  # final weights only: optimiser state is not kept
    return done


def _loop(config, ens, opt, samplers, state: TrainState, valid: Sequences, ckpt: Path, progress: bool,
          on_step, device: str = "cpu") -> None:
    bar = tqdm(total=config.steps, initial=state.step, disable=not progress, dynamic_ncols=True, mininterval=2.0,
               desc=f"train {config.architecture}-h{config.hidden} x{len(samplers)}")
    last_acc = [c[-1]["valid_exact_match"] for c in state.curves] if state.curves and state.curves[0] else None
    start = time.perf_counter() - state.seconds
    while state.step < config.steps:
        tokens, lengths = (t.to(device) for t in _batch(samplers, config.batch_size))
        loss = masked_loss(ens(tokens, lengths), tokens, lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state.step += 1
        if state.step % config.eval_every == 0 or state.step == config.steps:
            last_acc = _validate(ens, valid)
            for curve, acc in zip(state.curves, last_acc):
                curve.append({"step": state.step, "loss": round(loss.item() / len(samplers), 5), "valid_exact_match": acc})
        if state.step % config.checkpoint_every == 0 and state.step < config.steps:
            state.seconds = time.perf_counter() - start
            _save_checkpoint(ckpt, config, ens, opt, samplers, state)
        bar.update(1)
        if on_step is not None:
            on_step(state.step)
        if state.step % 50 == 0:
            shown = "-" if last_acc is None else ", ".join(f"{a:.3f}" for a in last_acc)
            bar.set_postfix_str(f"loss {loss.item() / len(samplers):.4f} valid-em [{shown}]")
    bar.close()
    state.seconds = time.perf_counter() - start


def _export(config: TrainConfig, ens: nn.Module, state: TrainState, out: Path) -> None:
    test = load_split("test")
    hardware = hardware_summary()
    for k, name in enumerate(config.names):
        model = ens.member(k).eval()
        correct = repeat_correct(model, test.tokens, test.lengths)
        info = {
            "name": name, "architecture": config.architecture, "hidden_size": config.hidden,
            "state_dim": int(model.state_dim), "variant": config.members[k][0], "seed": config.members[k][1],
            "recipe": config.recipe(), "steps_done": state.step,
            "test_exact_match": correct.float().mean().item(),
            "test_exact_match_by_length": _by_length(correct, test.lengths),
            "train_seconds": round(state.seconds, 1), "trained_jointly_with": len(config.members),
            "model_seconds": round(state.seconds / len(config.members), 1), "hardware": hardware,
        }
        write_model_folder(model, out / name, info, state.curves[k])


def _by_length(correct: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
    return {str(n): round(correct[lengths == n].float().mean().item(), 4) for n in sorted(set(lengths.tolist()))}


def _finished(folder: Path, config: TrainConfig) -> bool:
    info = folder / "training.json"
    if not info.exists():
        return False
    return json.loads(info.read_text()).get("steps_done") == config.steps


@dataclass(frozen=True)
class TrainJob:
    """One ensemble to train somewhere else (a Ray task): everything `train` needs, as plain data."""

    config: TrainConfig
    out: str
    device: str = "cpu"
    threads: int = 1


def run_job(job: TrainJob) -> list[dict]:
    """Train (or resume) one ensemble without a progress bar; its members' training.json contents.

    The remote side of `onionbench models train --ray`: one task per hidden size, so a
    cluster trains the sizes at once while each ensemble keeps its batched speed-up.
    Checkpoints go to the shared `out`, so a task that is retried, or a later run of the
    same command, resumes where the last one stopped.
    """
    torch.set_num_threads(job.threads)
    folders = train(job.config, Path(job.out), progress=False, device=job.device)
    return [json.loads((folder / "training.json").read_text()) | {"folder": str(folder)} for folder in folders]
