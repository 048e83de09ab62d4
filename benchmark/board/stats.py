"""Statistics of the leaderboard: intervals over model seeds and the paired test against the leader.

Everything here is plain Python (no NumPy, no torch) so that building the leaderboard stays
fast and its bytes do not depend on a numerical library's version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# two-sided 95 % Student t quantiles by degrees of freedom; between entries the next lower df
# is used (a slightly wider interval, never a narrower one)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: float) -> float:
    """The 97.5 % t quantile for `df` degrees of freedom, rounded down to a tabulated df."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom, got {df}")
    return T975[max(k for k in T975 if k <= df)]


@dataclass(frozen=True)
class Stat:
    """Mean, sample std and 95 % half-interval over n seeds (std and ci are None when n == 1)."""

    mean: float
    std: float | None
    ci95: float | None
    n: int

    def text(self, interval: bool = False) -> str:
        spread = self.ci95 if interval else self.std
        return f"{self.mean:.3f}" + ("" if spread is None else f" ± {spread:.3f}")


def stat(values: list[float]) -> Stat:
    """Aggregate over seeds: mean, sample std, Student-t 95 % half-interval."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Stat(round(mean, 6), None, None, 1)
    std = _std(values)
    return Stat(round(mean, 6), round(std, 6), round(t975(n - 1) * std / math.sqrt(n), 6), n)


def wilson(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate over n cases: sound near 0 and 1, where the normal
    interval collapses (a length-9 rate of 0 over 136 cases still has an upper bound)."""
    if n == 0:
        return (0.0, 1.0)
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(centre - half, 0.0), min(centre + half, 1.0))


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass(frozen=True)
class Diff:
    """A row's score minus the leader's on the same models, with its 95 % half-interval.

    `ci95` is None when no stratum has two seeds (no spread to estimate); `tied` is then
    true only for an exact zero difference.
    """

    mean: float
    ci95: float | None
    df: int

    @property
    def tied(self) -> bool:
        """The interval contains 0: the data do not separate this row from the leader."""
        return abs(self.mean) <= (self.ci95 or 0.0)

    def text(self) -> str:
        return f"{self.mean:+.3f}" + ("" if self.ci95 is None else f" ± {self.ci95:.3f}")


def _stratified(strata: dict[object, list[float]]) -> tuple[float, float | None, int]:
    """(mean over strata of each stratum's mean, 95 % half-interval, df) of values grouped by stratum.

    Every stratum weighs the same; the variance is the sum of the strata's variances of the
    mean, divided by K², with Welch-Satterthwaite degrees of freedom. A stratum with one value
    adds no spread; with no spread anywhere the interval is None."""
    k = len(strata)
    mean = sum(sum(d) / len(d) for d in strata.values()) / k
    parts = [(_std(d) ** 2 / len(d), len(d) - 1) for d in strata.values() if len(d) > 1]
    if not parts:
        return mean, None, 0
    var = sum(v for v, _ in parts) / k**2
    if var == 0.0:
        return mean, 0.0, sum(df for _, df in parts)
    df = sum(v for v, _ in parts) ** 2 / sum(v**2 / df for v, df in parts)
    return mean, t975(df) * math.sqrt(var), int(df)


def stratified_stat(strata: dict[object, list[float]]) -> Stat:
    """A row's score over fixed strata (architecture, N, variant) and the model seeds inside them.

    The interval covers the model seeds within each stratum (the method's fit noise included),
    not a resampling of the strata themselves; `std` holds the standard error of the mean."""
    mean, ci, df = _stratified(strata)
    n = sum(len(v) for v in strata.values())
    se = None if ci is None else (0.0 if ci == 0.0 else ci / t975(df))
    return Stat(round(mean, 6), None if se is None else round(se, 6), None if ci is None else round(ci, 6), n)


def paired_difference(strata: dict[object, list[float]]) -> Diff:
    """Paired test of two rows over the same models, stratified by (architecture, N, variant).

    `strata` maps each stratum to the per-model differences (row minus leader), one per
    model seed. The estimate is the mean over strata of each stratum's mean difference (the
    headline weights every (N, variant) equally); see `_stratified` for the interval. Only
    the real pairing is used (the same model under both methods): seed 0 at N=48 and seed 0
    at N=64 are unrelated models, so nothing is pooled across strata by seed index.
    """
    mean, ci, df = _stratified(strata)
    return Diff(round(mean, 6), None if ci is None else round(ci, 6), df)
