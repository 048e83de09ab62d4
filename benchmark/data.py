"""Deterministic data for the repetition task (PROTOCOL §1).

Why this module generates its own data instead of the paper's sampler: the paper's splits
depend on the CPU count and on Python's salted ``hash``, so they are not reproducible
across machines. Here every split is a pure function of ``(seed, version)``, driven by
NumPy's PCG64, and its content hash is pinned in ``SPLITS`` below. The splits are shipped
as Parquet in ``benchmark/splits/`` so nothing needs the network.

Arrays use one layout everywhere: ``tokens`` (batch, MAX_LEN) int64, padded with 0 after
each sequence's length; ``lengths`` (batch,) int64.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
import torch

if TYPE_CHECKING:  # `datasets` takes ~1.5 s to import: only publishing and Parquet writing need it
    from datasets import Dataset

from benchmark.errors import OnionbenchError
from benchmark.task import BENCHMARK_VERSION, MAX_LEN, MIN_LEN, VOCAB_SIZE

SPLIT_DIR = Path(__file__).parent / "splits"
_POWERS = VOCAB_SIZE ** np.arange(MAX_LEN, dtype=np.int64)  # base-30 place values
_LENGTH_WEIGHT = VOCAB_SIZE**MAX_LEN  # key = L * 30^9 + sum tok_i 30^i: unique per sequence


@dataclass(frozen=True)
class SplitSpec:
    """How one evaluation split is generated, and the hash it must have."""

    name: str
    size: int
    seed: int
    max_fraction_per_length: float  # PROTOCOL §1: caps length 2 at 180 of 900
    excludes: tuple[str, ...]  # splits whose sequences this one must not contain
    sha256: str  # content hash (see `split_hash`), pinned so drift is caught


SPLITS: dict[str, SplitSpec] = {
    # The scored test split (the paper's "valid" set: 5,000 sequences, seed 123).
    "test": SplitSpec("test", 5000, 123, 0.2, (), "7fce6ddab0aa0527379213a5980de1066c901447a8fadfbb1bdfa7d5527b7075"),
    # A small monitoring split for learning curves, disjoint from test, so training never
    # looks at the test split.
    "valid": SplitSpec("valid", 1000, 7, 0.2, ("test",), "ecd58fc6431badadf14b57383973e3e81db4b6ab609a72c2810fb28a77e4f0f6"),
}


@dataclass(frozen=True)
class Sequences:
    """A batch of sequences: tokens (batch, MAX_LEN) int64 zero-padded, lengths (batch,) int64."""

    tokens: torch.Tensor
    lengths: torch.Tensor

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def __getitem__(self, index: slice | torch.Tensor) -> Sequences:
        return Sequences(self.tokens[index], self.lengths[index])

    def keys(self) -> np.ndarray:
        """One int64 per sequence, unique per distinct sequence (used for exclusion)."""
        return sequence_keys(self.tokens.numpy(), self.lengths.numpy())


def sequence_keys(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Injective int64 code of each sequence; tokens past the length are ignored."""
    valid = np.arange(MAX_LEN)[None, :] < lengths[:, None]
    return (tokens.astype(np.int64) * _POWERS * valid).sum(axis=1) + lengths.astype(np.int64) * _LENGTH_WEIGHT


def _rng(seed: int, stream: int = 0) -> np.random.Generator:
    """Seeded by (version, seed, stream) so a protocol version bump changes every split."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(BENCHMARK_VERSION), seed, stream])))


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n raw sequences: lengths uniform in MIN_LEN..MAX_LEN, tokens i.i.d. uniform."""
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n)
    tokens = rng.integers(0, VOCAB_SIZE, size=(n, MAX_LEN))
    tokens[np.arange(MAX_LEN)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


def generate_split(spec: SplitSpec, exclude_keys: np.ndarray | None = None) -> Sequences:
    """Rejection-sample `spec.size` unique sequences, capping each length's share.

    The cap (a fraction of all 30^L sequences of length L) matters only for lengths 2 and
    3, where uniform lengths would otherwise exhaust or dominate the short sequences.
    """
    rng = _rng(spec.seed)
    caps = {n: int(spec.max_fraction_per_length * VOCAB_SIZE**n) for n in range(MIN_LEN, MAX_LEN + 1)}
    counts = dict.fromkeys(caps, 0)
    seen = set() if exclude_keys is None else set(exclude_keys.tolist())
    out_tokens: list[np.ndarray] = []
    out_lengths: list[int] = []
    while len(out_lengths) < spec.size:
        tokens, lengths = _draw(rng, 1024)
        for key, row, n in zip(sequence_keys(tokens, lengths).tolist(), tokens, lengths.tolist()):
            if key in seen or counts[n] >= caps[n] or len(out_lengths) == spec.size:
                continue
            seen.add(key)
            counts[n] += 1
            out_tokens.append(row)
            out_lengths.append(n)
    return Sequences(torch.from_numpy(np.stack(out_tokens)), torch.tensor(out_lengths, dtype=torch.int64))


def split_hash(seqs: Sequences) -> str:
    """sha256 of a canonical byte layout (not of the Parquet file, whose bytes vary by writer)."""
    digest = hashlib.sha256(b"onionbench-split-v" + BENCHMARK_VERSION.encode())
    digest.update(seqs.lengths.numpy().astype(np.uint8).tobytes())
    digest.update(seqs.tokens.numpy().astype(np.uint8).tobytes())
    return digest.hexdigest()


def to_dataset(seqs: Sequences) -> Dataset:
    """As a `datasets.Dataset` with columns `tokens` (list[int], length L) and `length`."""
    from datasets import Dataset

    rows = [row[:n] for row, n in zip(seqs.tokens.tolist(), seqs.lengths.tolist())]
    return Dataset.from_dict({"tokens": rows, "length": seqs.lengths.tolist()})


def from_dataset(ds: Dataset) -> Sequences:
    """Inverse of `to_dataset`."""
    lengths = torch.tensor(ds["length"], dtype=torch.int64)
    tokens = torch.zeros(len(ds), MAX_LEN, dtype=torch.int64)
    for i, row in enumerate(ds["tokens"]):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
    return Sequences(tokens, lengths)


def write_parquet(seqs: Sequences, path: Path) -> None:
    """Write a split as Parquet through `datasets` (the format published on the Hub)."""
    to_dataset(seqs).to_parquet(str(path))


def read_parquet(path: Path) -> Sequences:
    """Read a Parquet split without touching the `datasets` cache (pure, in memory)."""
    table = pq.read_table(path)  # the same columns `to_dataset` writes, read with pyarrow alone
    lengths = torch.tensor(table.column("length").to_pylist(), dtype=torch.int64)
    tokens = torch.zeros(len(lengths), MAX_LEN, dtype=torch.int64)
    for i, row in enumerate(table.column("tokens").to_pylist()):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
    return Sequences(tokens, lengths)


def build_split(name: str) -> Sequences:
    """Generate a split from its spec (and the splits it excludes) without reading files."""
    spec = _spec(name)
    exclude = [build_split(other).keys() for other in spec.excludes]
    return generate_split(spec, np.concatenate(exclude) if exclude else None)


def load_split(name: str, directory: Path | None = None) -> Sequences:
    """Load a shipped split and verify its pinned hash; fails loudly on drift."""
    spec = _spec(name)
    path = (directory or SPLIT_DIR) / f"{name}-v{BENCHMARK_VERSION}.parquet"
    if not path.exists():
        raise OnionbenchError(f"split file {path} is missing; regenerate it with `python -m benchmark.data`")
    seqs = read_parquet(path)
    actual = split_hash(seqs)
    if actual != spec.sha256:
        raise OnionbenchError(f"split {name!r} at {path} has hash {actual[:12]}, expected {spec.sha256[:12]}; "
                         "the file was edited or generated by another version")
    return seqs


def _spec(name: str) -> SplitSpec:
    if name not in SPLITS:
        raise OnionbenchError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    return SPLITS[name]


class TrainSampler:
    """Endless fresh training batches that never contain an excluded (test/valid) sequence.

    Sampling fresh batches (instead of the paper's fixed 1 M-sequence set) keeps memory and
    start-up at zero; lengths are uniform in 2..9 as PROTOCOL §1 states. The state is a
    NumPy bit-generator state, so a checkpoint can resume the exact same stream.
    """

    def __init__(self, seed: int, exclude_keys: np.ndarray, *, stream: int = 1) -> None:
        self.rng = _rng(seed, stream)
        self.exclude = np.unique(exclude_keys)
        self.drawn = 0  # sequences handed out so far (recorded as a budget by the harness)

    def sample(self, batch_size: int) -> Sequences:
        """One batch: tokens (batch, MAX_LEN) int64, lengths (batch,) int64."""
        parts_t, parts_l, have = [], [], 0
        while have < batch_size:
            tokens, lengths = _draw(self.rng, batch_size + 16)
            keep = ~np.isin(sequence_keys(tokens, lengths), self.exclude, assume_unique=False)
            parts_t.append(tokens[keep])
            parts_l.append(lengths[keep])
            have += int(keep.sum())
        tokens = np.concatenate(parts_t)[:batch_size]
        lengths = np.concatenate(parts_l)[:batch_size]
        self.drawn += batch_size
        return Sequences(torch.from_numpy(tokens), torch.from_numpy(lengths))

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "drawn": self.drawn}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.drawn = state["drawn"]


def heldout_keys() -> np.ndarray:
    """Keys of every sequence training must never see (all shipped evaluation splits)."""
    return np.concatenate([load_split(name).keys() for name in SPLITS])


def main() -> None:
    """Regenerate the shipped split files and print their hashes (maintainers only)."""
    SPLIT_DIR.mkdir(exist_ok=True)
    for name in SPLITS:
        seqs = build_split(name)
        write_parquet(seqs, SPLIT_DIR / f"{name}-v{BENCHMARK_VERSION}.parquet")
        print(name, len(seqs), split_hash(seqs))


if __name__ == "__main__":
    main()
