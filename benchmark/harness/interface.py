"""The method interface (PROTOCOL §3): what a submitted intervention method implements,
and what the harness hands it.

A method is one hypothesis about where a model keeps the token at each position. It is a
class with scikit-learn manners: ``__init__`` only stores hyperparameters, ``fit`` learns
(attributes ending in ``_``) and returns ``self``. Shapes, in one vocabulary:

- ``h``: (batch, state_dim) float32, a final encoder state;
- ``position``: (batch,) int64 in 0..8 (always < the sequence's length);
- ``token`` / ``current``: (batch,) int64 in 0..29;
- ``mask``: (batch, 9) bool, False at positions >= the sequence's length;
- read's logits: (batch, 30) float32.

Required (a method that declares fewer `tracks` needs only what they use: a read-only
probe has no `write`)::

    fit(model: FrozenModel, data: FitData) -> self
    read(h, position) -> logits                      # which token is stored at `position`?
    write(h, position, token, *, current) -> h2      # `position` now holds `token`, not `current`

Optional::

    interchange(h_base, h_source, mask) -> h2        # positions where mask is True from source
    tracks = ("read", "write", "interchange")       # class attribute: the tracks attempted

`write` and `interchange` must return new tensors and never modify their inputs in place.
A method without `interchange` gets `default_interchange`, built from its own read and write.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from benchmark.data import Sequences, TrainSampler
from benchmark.errors import OnionbenchError
from benchmark.task import VOCAB_SIZE

TRACKS = ("read", "write", "interchange")  # what a method may declare (`benchmark.harness.tracks.DECLARABLE`)

# Rows per encoder call (`FitData.sample`, `FrozenModel.encode`). Why: nn.GRU projects every
# step's input at once, (rows, 9, 3N) floats, so one call on 160,000 rows at N=256 needs
# about 6 GB on top of the states, over a sealed fit's 8 GB address-space limit, although
# the states themselves are 164 MB. Chunks cost nothing in results: on the reference CPU the
# zoo's encoders give every row bit-identical states in any chunk of this size
# (leaderboard/verification/encode-chunks-s37.log).
ENCODE_CHUNK = 32768


def _encode(model: torch.nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Final states (rows, state_dim) on the device `tokens` came from, `ENCODE_CHUNK` rows per call."""
    with torch.no_grad():
        parts = [model.encode(tokens[i:i + ENCODE_CHUNK].to(device),  # type: ignore[operator]
                              lengths[i:i + ENCODE_CHUNK].to(device)).to(tokens.device)
                 for i in range(0, max(tokens.shape[0], 1), ENCODE_CHUNK)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # a method's minibatch: no extra copy


class InterventionMethod(Protocol):
    """The narrow extension point. See the module docstring for shapes and rules."""

    def fit(self, model: FrozenModel, data: FitData) -> InterventionMethod: ...

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor: ...

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor: ...


class BudgetExceededError(OnionbenchError):
    """Raised when a method's fit encodes more sequences than its budget allows."""


class HeldOutSequenceError(OnionbenchError):
    """Raised when a method asks the encoder for a test sequence during fit."""


class FrozenModel:
    """The reference model as a method sees it: frozen weights, a guarded encoder.

    It exists during ``fit`` only: scoring runs in another process that never receives it
    (see `benchmark.harness.isolation`), and a fitted method that still references it, or
    holds a copy of its weights, is refused (see `benchmark.harness.guard`).

    - ``encode(tokens, lengths) -> h`` (batch, state_dim): training sequences only
      (held-out ones raise ``HeldOutSequenceError``; filter them with
      ``FitData.is_heldout``); every encoded sequence counts against the fit budget. Any
      batch size works: the rows go through the encoder `ENCODE_CHUNK` at a time.
    - ``decode(h, targets=None) -> logits`` (batch, 9, 30): differentiable in ``h``
      (train through it, as the paper does); ``targets`` (batch, 9) are needed by the
      ``ar`` variant, which reads the previous token (teacher forcing).
    - ``generate(h) -> tokens`` (batch, 9): greedy decoding.
    - ``device``: where the model runs during this fit (``onionbench score --device``; the
      CPU by default). Every call moves its inputs there and returns its output on the
      device the inputs came from, so a CPU-only method works unchanged (paying a copy per
      call) and a method that keeps its own modules and tensors on ``device`` pays none.
      Scoring always runs on the CPU: the fitted method is moved back when it is serialised.
    """

    def __init__(self, model: torch.nn.Module, data: FitData) -> None:
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model.eval()
        self._data = data
        self.state_dim: int = int(model.state_dim)  # type: ignore[arg-type]
        self.vocab_size: int = VOCAB_SIZE
        self.variant: str = getattr(model, "variant", "ar")
        self.device: torch.device = model_device(model)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Final encoder states (batch, state_dim) of training sequences (charged to the budget)."""
        self._data.charge(tokens, lengths)
        return _encode(self._model, tokens, lengths, self.device)

    def decode(self, h: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, 9, 30), differentiable in h; `ar` models need `targets` (teacher forcing)."""
        targets = targets.to(self.device) if targets is not None else None
        return self._model.decode(h.to(self.device), targets).to(h.device)  # type: ignore[operator]

    def generate(self, h: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: tokens (batch, 9) int64."""
        return self._model.generate(h.to(self.device)).to(h.device)  # type: ignore[operator]


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without any)."""
    first = next(iter((*model.parameters(), *model.buffers())), None)
    return first.device if first is not None else torch.device("cpu")


@dataclass(frozen=True)
class FitBatch:
    """Training sequences and their states: tokens (batch, 9) int64, lengths (batch,), states (batch, state_dim),
    on the CPU whatever ``FrozenModel.device`` is (move them there to train there)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    states: torch.Tensor


class FitData:
    """Training sequences for `fit`, never a test one, under a budget of encoded sequences.

    ``sample(n)`` draws n fresh training sequences with their states; ``is_heldout`` tells
    which of a method's own constructed sequences it may not encode. ``drawn`` counts every
    sequence that went through the encoder during fit (recorded in the result).
    """

    def __init__(self, model: torch.nn.Module, heldout_keys: np.ndarray, *, seed: int, budget: int) -> None:
        self._model: torch.nn.Module = model
        self._device = model_device(model)  # fit moves the model before FitData is built
        self._heldout = np.unique(heldout_keys)
        self._sampler = TrainSampler(seed, self._heldout, stream=2)
        self.budget = budget
        self.drawn = 0

    def sample(self, n: int) -> FitBatch:
        """n training sequences (lengths uniform 2..9) and their final encoder states."""
        seqs = self._sampler.sample(n)
        self.charge(seqs.tokens, seqs.lengths)
        return FitBatch(seqs.tokens, seqs.lengths, _encode(self._model, seqs.tokens, seqs.lengths, self._device))

    def is_heldout(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch,) bool: which sequences belong to an evaluation split (never encode those)."""
        keys = Sequences(tokens.cpu(), lengths.cpu()).keys()
        return torch.from_numpy(np.isin(keys, self._heldout)).to(tokens.device)

    def charge(self, tokens: torch.Tensor, lengths: torch.Tensor) -> None:
        """Count sequences against the budget; refuse held-out ones."""
        if self.is_heldout(tokens, lengths).any():
            raise HeldOutSequenceError("fit tried to encode a held-out (test/valid) sequence; filter the "
                                       "sequences you build with data.is_heldout(tokens, lengths)")
        self.drawn += int(lengths.shape[0])
        if self.drawn > self.budget:
            raise BudgetExceededError(f"fit encoded {self.drawn:,} sequences, over the budget of {self.budget:,}; "
                                      "lower the method's training steps or batch size")


def seed_everything(seed: int) -> None:
    """Seed torch and ask for deterministic kernels before a method's fit and before scoring.

    Why the second part: with several threads some CPU backward kernels (e.g. index_put with
    accumulation) add in a thread-dependent order, so two fits with one seed could differ.
    """
    torch.manual_seed(seed)
    deterministic_kernels()


def deterministic_kernels() -> None:
    """`torch.use_deterministic_algorithms(True, warn_only=True)`, without importing inductor.

    Why: the public call imports `torch._inductor.config` to set its `deterministic` flag,
    and with it dynamo and sympy: 1-2 s of a fresh process on 2 cores, paid by every fit and
    scoring worker of every cell, for a flag only `torch.compile` reads. The same flag is
    set here without the import: on the config if inductor is already loaded, else through
    the variable inductor reads when it loads (`TORCHINDUCTOR_DETERMINISTIC`).
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public call, import and all
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    setter(True, warn_only=True)
    config = sys.modules.get("torch._inductor.config")
    if config is not None:
        config.deterministic = True  # type: ignore[attr-defined]
    else:
        os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"


def default_interchange(method: InterventionMethod, h_base: torch.Tensor, h_source: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
    """Interchange built from read and write: for each masked position, read the source's
    token and the base's current token with the method's own `read`, then `write` it.

    It uses only the method's own beliefs (never the true tokens), so a method whose read
    is wrong pays for it here too.
    """
    h = h_base
    batch = torch.arange(h_base.shape[0])
    for p in range(mask.shape[1]):
        rows = batch[mask[:, p]]
        if rows.numel() == 0:
            continue
        position = torch.full((rows.numel(),), p, dtype=torch.int64)
        wanted = method.read(h_source[rows], position).argmax(-1)
        current = method.read(h[rows], position).argmax(-1)
        h = h.clone()
        h[rows] = method.write(h[rows], position, wanted, current=current)
    return h


def method_tracks(method: object) -> tuple[str, ...]:
    """The tracks a method attempts (its `tracks` attribute, default all three)."""
    tracks = tuple(getattr(method, "tracks", TRACKS))
    unknown = set(tracks) - set(TRACKS)
    if unknown:
        raise OnionbenchError(f"unknown track(s) {sorted(unknown)} in `tracks`; valid tracks: {', '.join(TRACKS)}")
    return tracks
