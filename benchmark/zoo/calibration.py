"""The calibration tier as data: models whose code is known by construction, and what must happen on them.

Why a calibration tier: every number on the leaderboard assumes that a high WRITE or
INTERCHANGE score means a method found how the state stores tokens, and a low one that it
did not. On a model whose code is known, that assumption is testable: the right hypothesis
must score near 1 on its own model and the wrong one must not, so a broken baseline or a
harness bug shows up as a calibration failure instead of a "finding" (docs/PROTOCOL.md,
"Calibration").

This module is the *declared* half, torch-free so that the registry, the architecture
records and the leaderboard can read it cheaply: the construction constants and layout,
the tier's members, and `EXPECTATIONS`, the outcomes stated before scoring. The models
are in `benchmark.zoo.coded`; building and training them is `benchmark.zoo.calibrate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmark.task import MAX_LEN, VOCAB_SIZE

TIER = "calibration"
GAMMA = 0.5  # onion magnitude ratio between neighbouring positions; why 0.5 and not the paper's 0.4: see below
LINEAR_SCALE = 10.0  # decoder logit per unit cosine on a linear position: a ~8-logit margin, yet not saturated
HYBRID_LINEAR = 4  # the hybrid's positions 0..3 are linear, 4..8 onion-shaped
# Why GAMMA = 0.5: an onion write at position p must be exact to about GAMMA**(L-1-p) of its own
# layer, or the error drowns the deepest layer. At 0.4 the `onion` baseline reaches WRITE 0.96
# on a 64-dim onion-coded model but only 0.73 on length 9 (0.4**8 = 7e-4); at 0.5 it reaches
# 0.997 (0.98 on length 9). Both keep the onion's defining property: one shared subspace for
# every position, told apart by magnitude only (so no rotation separates the positions).


def linear_block_sizes(hidden: int, linear: int) -> tuple[int, ...]:
    """Dimensions of each linear position's subspace: as equal as possible when all nine are linear,
    else ``hidden // 9`` each, leaving the rest to the onion part.

    A hidden size under 9 leaves some position without a dimension; such a model builds (the
    registry's parameter-count test builds every family at N = 8) but cannot repeat.
    """
    if linear == MAX_LEN:
        return tuple(hidden // MAX_LEN + (1 if p < hidden % MAX_LEN else 0) for p in range(MAX_LEN))
    return (hidden // MAX_LEN,) * linear


def onion_dim(hidden: int, linear: int) -> int:
    """Dimensions of the subspace the onion positions share (0 when every position is linear)."""
    return 0 if linear == MAX_LEN else hidden - sum(linear_block_sizes(hidden, linear))


def coded_parameters(linear: int) -> Callable[[int, str], int]:
    """Learned scalars of a coded model: only the onion part learns (token embedding + read-out with bias).

    Why closed form: the architecture registry lists counts without building models (as
    `recurrent_parameters` does for the GRU); a test compares it with the built model.
    """
    def count(hidden: int, variant: str) -> int:
        m = onion_dim(hidden, linear)
        return 0 if m == 0 else VOCAB_SIZE * m + VOCAB_SIZE * (m + 1)
    return count


@dataclass(frozen=True)
class Member:
    """One calibration model: a registry entry built by `benchmark.zoo.calibrate` instead of the zoo recipe."""

    architecture: str  # a key of ARCHITECTURES: onion_coded, linear_coded, hybrid_coded
    hidden: int  # state_dim: small, so a cell scores in under a minute
    variant: str  # ar where the decoder peels by the previous token; ni where it needs no input
    seed: int
    learned: str  # what training touched (stated on the card and in docs/PROTOCOL.md)
    fixed: str  # what the construction fixes

    @property
    def name(self) -> str:
        return f"{self.architecture}-h{self.hidden}-{self.variant}-s{self.seed}"  # the zoo scheme (model_name)


MEMBERS = (
    Member("onion_coded", 64, "ar", 0,
           learned="token embedding e (30 x 64) and the linear read-out (30 x 64 + 30), through the peeling decoder",
           fixed=f"the code h = sum_p {GAMMA}^p e(x_p) and the decoder: step i reads (h - sum_(j<i) {GAMMA}^j "
                 f"e(y_j)) / {GAMMA}^i, y = the previous tokens"),
    Member("linear_coded", 64, "ni", 0, learned="nothing",
           fixed="everything: nine orthogonal subspaces (8 + 8 x 7 dims) behind a random rotation, a spread "
                 f"30-token unit code in each, read-out = {LINEAR_SCALE:g} x the code's cosines"),
    Member("hybrid_coded", 64, "ar", 0,
           learned="the onion part's token embedding (30 x 36) and read-out (30 x 36 + 30)",
           fixed=f"positions 0-{HYBRID_LINEAR - 1}: linear (7-dim subspaces, as linear_coded); positions "
                 f"{HYBRID_LINEAR}-8: an onion (ratio {GAMMA}) in the 36-dim rest; one random rotation over all"),
)
MEMBER_NAMES = tuple(m.name for m in MEMBERS)
ONION, LINEAR, HYBRID = MEMBER_NAMES


# --- expected outcomes, stated before scoring (tests/test_calibration.py checks each on small models) ---

@dataclass(frozen=True)
class Expectation:
    """`method` on `model`: `track`'s `metric` at least `at_least`, or below `below`.

    `lengths` restricts the metric to sequences of those lengths (the record's per-length
    rates, weighted by the cases kept at each length): on the hybrid, length <= 4 means
    linear positions only.
    """

    method: str
    model: str
    track: str  # read | write | interchange
    metric: str  # a metric of that track in the record: sequence_accuracy, iia, ...
    why: str
    at_least: float | None = None
    below: float | None = None
    lengths: tuple[int, ...] = ()

    @property
    def bound(self) -> str:
        """'>= 0.95' or '< 0.25'."""
        return f">= {self.at_least:.2f}" if self.at_least is not None else f"< {self.below:.2f}"

    @property
    def text(self) -> str:
        """The bound, with the lengths when restricted: '>= 0.95 (L = 2-4)'."""
        n = self.lengths
        return self.bound + ("" if not n else f" (L = {n[0]})" if len(n) == 1 else f" (L = {n[0]}-{n[-1]})")


EXPECTATIONS = (
    Expectation("onion", ONION, "write", "iia", "the right hypothesis on its own model", at_least=0.95),
    Expectation("linear-das", LINEAR, "interchange", "iia", "the right hypothesis on its own model", at_least=0.95),
    Expectation("linear-das", ONION, "interchange", "iia", "no rotation separates positions that share a subspace",
                below=0.25),
    Expectation("linear-probe", LINEAR, "read", "sequence_accuracy", "each token is a linear feature of h",
                at_least=0.99),
    Expectation("linear-probe", LINEAR, "write", "iia", "an edit inside a position's probe span is a linear write",
                at_least=0.95),
    Expectation("random-subspace", LINEAR, "interchange", "iia", "the floor: random blocks cut across the code's "
                "subspaces", below=0.25),
    Expectation("linear-das", HYBRID, "interchange", "iia", "lengths 2-4 hold linear positions only",
                at_least=0.95, lengths=(2, 3, 4)),
    Expectation("linear-das", HYBRID, "interchange", "iia", "five onion positions share one subspace",
                below=0.25, lengths=(9,)),
)


def measured(exp: Expectation, record: dict) -> float | None:
    """The expectation's value in a result record (None when the record failed or lacks the track)."""
    if record.get("status") != "ok" or record["metrics"].get(exp.track) is None:
        return None
    if not exp.lengths:
        return float(record["metrics"][exp.track][exp.metric])
    rates = record["by_length"].get(exp.track, {})
    kept = record.get("kept_by_length", {}).get(exp.track, {})
    weights = {str(n): kept.get(str(n), 0) for n in exp.lengths if str(n) in rates}
    total = sum(weights.values())
    return None if total == 0 else sum(rates[n] * w for n, w in weights.items()) / total


def holds(exp: Expectation, value: float | None) -> bool:
    """Does a measured value meet the expectation? A missing value never does."""
    if value is None:
        return False
    return value >= exp.at_least if exp.at_least is not None else value < (exp.below or 0.0)
