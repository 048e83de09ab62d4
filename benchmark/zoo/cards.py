"""Model folders and model cards for reference models of every registered architecture, and the
splits dataset card.

A model folder is what the Hub repo holds: `config.json` (the architecture and its
constructor's arguments) + `model.safetensors` (both written by
`benchmark.zoo.architectures.save_model`), `README.md` (the card below), `training.json`
(recipe, accuracy, timing, hardware, weight sha256) and `learning_curve.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.hashing import file_sha256
from benchmark.task import BENCHMARK_VERSION
from benchmark.zoo.architectures import DEFAULT_ARCHITECTURE, architecture, save_model

if TYPE_CHECKING:
    from torch import nn

PAPER_URL = "https://arxiv.org/abs/2408.10920"

PAPER_BIBTEX = """@inproceedings{csordas2024recurrent,
  title     = {Recurrent Neural Networks Learn to Store and Generate Sequences using Non-Linear Representations},
  author    = {Csord{\\'a}s, R{\\'o}bert and Potts, Christopher and Manning, Christopher D. and Geiger, Atticus},
  booktitle = {Proceedings of the 7th BlackboxNLP Workshop},
  pages     = {248--262},
  year      = {2024}
}"""


def write_model_folder(model: nn.Module, folder: Path, info: dict, curve: list[dict]) -> str:
    """Save weights, config (with its architecture), card, training info and learning curve; return the weight sha256."""
    save_model(model, folder)
    info = dict(info, sha256=file_sha256(folder / "model.safetensors"),
                parameters=sum(p.numel() for p in model.parameters()))
    (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    (folder / "learning_curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    (folder / "README.md").write_text(model_card(info))
    return info["sha256"]


def model_card(info: dict) -> str:
    """A Hub model card: YAML metadata with `model-index`, then what a researcher needs."""
    by_length = " | ".join(f"{n}: {acc:.4f}" for n, acc in info["test_exact_match_by_length"].items())
    recipe = info["recipe"]
    arch = architecture(info.get("architecture", DEFAULT_ARCHITECTURE))
    decoder = ("SOS, then the previous target token (autoregressive)" if info["variant"] == "ar"
               else "SOS, then a constant NO_INPUT token (the decoder must track position itself)")
    return f"""---
library_name: onionbench
license: mit
tags: [onionbench, interpretability, {arch.name}, sequence-repetition]
model-index:
- name: {info['name']}
  results:
  - task: {{type: sequence-repetition, name: Sequence repetition}}
    dataset: {{type: onionbench/onionbench-splits, name: onionbench repeat test v1, split: test}}
    metrics:
    - {{type: exact_match, value: {info['test_exact_match']:.4f}, name: Test exact match}}
---

# {info['name']}

A reference model of [onionbench](https://github.com/onionbench/onionbench): a {arch.title}
(hidden size {info['hidden_size']}, {info['parameters']:,} parameters) shared by encoder and decoder,
trained to repeat a sequence of 2-9 tokens over a 30-token vocabulary, with the task and
recipe of Csordás, Potts, Manning & Geiger (2024), [{PAPER_URL}]({PAPER_URL}).
The decoder reads {decoder}.
The state the benchmark studies is {arch.state} (shape `(batch, {arch.state_dim(info['hidden_size'])})`).

## Intended use
Interpretability research: a frozen model on which methods that read and write the token
stored at each position are scored. It is not a general-purpose model.

## Training
- Data: fresh random sequences (lengths uniform 2-9, tokens uniform), never a sequence of
  the onionbench test or validation split.
- Recipe (the paper's): AdamW, lr {recipe['lr']}, weight decay {recipe['weight_decay']},
  betas {tuple(recipe['betas'])}, batch {recipe['batch_size']}, {recipe['steps']:,} steps, fp32, no gradient clipping,
  token cross-entropy over the output positions. Seed {info['seed']}.
- Steps done: {info['steps_done']:,}. Wall time: {info['train_seconds']:.0f} s for {info['trained_jointly_with']}
  model(s) trained together as one batched ensemble ({info['model_seconds']:.0f} s per model).
- Hardware: {info['hardware']}.

## Evaluation
Test exact match (all positions of a sequence right, greedy decoding) on the 5,000-sequence
onionbench test split v1: **{info['test_exact_match']:.4f}**.

By length: {by_length}

## Files
- `model.safetensors`: sha256 `{info['sha256']}`
- `config.json`: the architecture (`{arch.name}`) and its arguments; load with
  `benchmark.zoo.architectures.load_model(folder)` (strict: a missing or unexpected tensor is an error).
- `training.json`, `learning_curve.json`: recipe, accuracy, timing; validation exact match every
  {recipe['eval_every']:,} steps.

## Citation
```bibtex
{PAPER_BIBTEX}
```
"""


def dataset_card(org: str, files: dict[str, str]) -> str:
    """The dataset card of `{org}/onionbench-splits`: YAML (configs for `load_dataset`), then prose."""
    from benchmark.data import SPLITS  # imported here: data imports torch, cards must not

    rows = "\n".join(f"| `{name}` | `{file}` | {SPLITS[name].size:,} | {SPLITS[name].seed} | `{SPLITS[name].sha256}` |"
                     for name, file in files.items())
    data_files = "\n".join(f"  - split: {name}\n    path: {file}" for name, file in files.items())
    return f"""---
license: mit
pretty_name: onionbench sequence-repetition splits v{BENCHMARK_VERSION}
tags: [onionbench, interpretability, sequence-repetition]
size_categories: [1K<n<10K]
configs:
- config_name: default
  data_files:
{data_files}
---

# onionbench sequence-repetition splits (protocol v{BENCHMARK_VERSION})

The evaluation data of [onionbench](https://github.com/onionbench/onionbench): sequences of
2-9 tokens over a 30-token vocabulary (ids 0-29), lengths uniform, tokens i.i.d. uniform, each
split a pure function of `(seed, version)` (NumPy PCG64) with at most 20 % of the sequences of
any one length. Columns: `tokens` (list of int, length L) and `length` (L). The reference
models of `{org}/gru-h*-*-s*` never saw a sequence of these splits during training.

| split | file | sequences | seed | content sha256 |
|---|---|---|---|---|
{rows}

The content sha256 is computed over a canonical byte layout (`benchmark.data.split_hash`), not
over the Parquet bytes.

## Loading a pinned version
`datasets.load_dataset(repo, revision=...)` ignores the revision when offline, so onionbench
loads a pinned commit with `snapshot_download(repo_type="dataset", revision=COMMIT)` and reads
the Parquet files itself (`benchmark.zoo.hub.load_hub_split`), verifying the content hash.
"""
