"""Training throughput: onionbench's ensemble trainer vs the straightforward recipe.

Measures model-steps per second (one optimiser step of one model = one model-step) for
N in {48, 64, 128, 256} on this machine, in one run, for
  - `packed`: one model at a time, nn.Embedding + nn.GRU (or nn.LSTM) over
    `pack_padded_sequence` for the encoder and the decoder, as the paper's code does;
  - `ensemble-K`: K models of one size (3 seeds x 2 variants) stacked into one batched
    module (the architecture's ensemble class, e.g. `benchmark.zoo.ensemble.GRUEnsemble`),
    the trainer the reference zoo uses.
Both use the paper's recipe (AdamW lr 1e-3, wd 0.1, batch 256, lengths 2..9, fp32).

Usage: python benchmarks/train_throughput.py [--architecture gru|lstm] [--steps 30] [--sizes 48 64 128 256]
       [--device cpu|cuda] [--json out.json]

On a GPU (issue #16: GPU vs CPU model-steps/s at N = 256, 512, 1024), run it twice in one
session, `--device cpu` and `--device cuda`, with the same `--sizes`; batches are drawn on
the CPU and copied to the device inside the timed loop, as the zoo's trainer does.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from benchmark.data import TrainSampler, heldout_keys
from benchmark.task import MAX_LEN, SOS, VOCAB_SIZE
from benchmark.zoo.architectures import architecture
from benchmark.zoo.ensemble import masked_loss, sort_by_length

RECURRENT = {"gru": nn.GRU, "lstm": nn.LSTM}  # the packed baseline's layer per architecture


class PackedGRU(nn.Module):
    """The paper-style implementation: packed variable-length encoder and decoder.

    `layer` is nn.GRU or nn.LSTM: the final packed state (h, or (h, c)) seeds the decoder either way.
    """

    def __init__(self, n: int, layer: type[nn.Module] = nn.GRU) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB_SIZE + 1, n)
        self.gru = layer(n, n, batch_first=True)
        self.readout = nn.Linear(n, VOCAB_SIZE)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        dec_in = torch.roll(tokens, 1, dims=1)
        dec_in[:, 0] = SOS
        packed = pack_padded_sequence(self.embedding(dec_in), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed, h)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=MAX_LEN)
        return self.readout(out)


def _optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.999))


def _sync(device: str) -> None:
    """Wait for queued GPU work, so that the clock measures it (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_packed(n: int, steps: int, sampler: TrainSampler, arch: str = "gru", device: str = "cpu") -> float:
    """Model-steps per second of the packed single-model recipe."""
    torch.manual_seed(0)
    model = PackedGRU(n, RECURRENT[arch]).to(device)
    opt = _optimizer(model.parameters())
    batches = [sampler.sample(256) for _ in range(steps + 3)]
    for i, b in enumerate(batches):
        if i == 3:
            _sync(device)
            start = time.perf_counter()
        tokens = b.tokens.to(device)
        logits = model(tokens, b.lengths)  # pack_padded_sequence wants the lengths on the CPU
        valid = torch.arange(MAX_LEN, device=device) < b.lengths.to(device)[:, None]
        loss = F.cross_entropy(logits[valid], tokens[valid])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def time_ensemble(n: int, steps: int, sampler: TrainSampler, k: int = 6, arch: str = "gru",
                  device: str = "cpu") -> float:
    """Model-steps per second of the batched ensemble (k members)."""
    torch.manual_seed(0)
    family = architecture(arch)
    ens = family.ensemble_class([family.build(n, "ar" if i % 2 == 0 else "ni") for i in range(k)]).to(device)
    opt = _optimizer(ens.parameters())
    batches = [[sampler.sample(256) for _ in range(k)] for _ in range(steps + 3)]
    for i, group in enumerate(batches):
        if i == 3:
            _sync(device)
            start = time.perf_counter()
        tokens, lengths = sort_by_length(torch.stack([b.tokens for b in group]), torch.stack([b.lengths for b in group]))
        tokens, lengths = tokens.to(device), lengths.to(device)
        loss = masked_loss(ens(tokens, lengths), tokens, lengths)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return k * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=list(RECURRENT), default="gru")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 128, 256])
    parser.add_argument("--device", default="cpu", help="torch device for both recipes (default cpu)")
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args()
    sampler = TrainSampler(0, heldout_keys())
    rows = []
    for n in args.sizes:
        packed = time_packed(n, args.steps, sampler, args.architecture, args.device)
        ens = time_ensemble(n, args.steps, sampler, arch=args.architecture, device=args.device)
        rows.append({"N": n, "packed_steps_per_s": round(packed, 1), "ensemble6_steps_per_s": round(ens, 1),
                     "ratio": round(ens / packed, 2)})
        print(f"N={n:4d}  packed {packed:7.1f} model-steps/s  ensemble-6 {ens:7.1f} model-steps/s  "
              f"ratio {ens / packed:5.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"architecture": args.architecture, "device": args.device,
                       "torch_threads": torch.get_num_threads(), "rows": rows},
                      f, indent=2)


if __name__ == "__main__":
    main()
