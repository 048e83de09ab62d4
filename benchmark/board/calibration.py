"""The calibration section of the leaderboard: each method on each calibration model, against the expectations.

The calibration tier (`benchmark.zoo.calibration`) holds models whose code is known by
construction, and `EXPECTATIONS` states before scoring what must happen on them. This module
pairs each expectation with the committed record it is about, so the leaderboard shows the
expected outcome next to the measured one. Only records on a calibration model with the
registry's pinned weights count (as for the core tier); nothing here enters the boards.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.board.rules import Pin
from benchmark.zoo.calibration import EXPECTATIONS, MEMBER_NAMES, TIER, Expectation, holds, measured

PASS, FAIL, NOT_SCORED = "pass", "FAIL", "not scored"


@dataclass(frozen=True)
class Check:
    """One expectation against its record: the measured value (None: no record, or a failed cell) and the result."""

    expectation: Expectation
    value: float | None
    result: str  # PASS, FAIL, or NOT_SCORED (no record on the pinned model)
    error: str | None = None  # the cell's error when it failed (a failed cell is a FAIL)

    @property
    def measured_text(self) -> str:
        if self.value is not None:
            return f"{self.value:.3f}"
        return "cell failed" if self.error else "–"


@dataclass
class Calibration:
    """What the section shows: the pinned calibration records by (method, model), and every check."""

    records: dict[tuple[str, str], dict]
    checks: list[Check]

    @property
    def models(self) -> list[str]:
        """Calibration models with at least one record, in the tier's order."""
        return [m for m in MEMBER_NAMES if any(model == m for _, model in self.records)]

    @property
    def methods(self) -> list[str]:
        return sorted({method for method, _ in self.records})

    def checks_for(self, method: str, model: str, track: str) -> list[Check]:
        """The checks about one cell of the matrix (a track of a method on a model)."""
        return [c for c in self.checks if (c.expectation.method, c.expectation.model, c.expectation.track)
                == (method, model, track)]

    def summary(self) -> str:
        """'6 of 8 expectations hold, 1 not scored'."""
        passed = sum(c.result == PASS for c in self.checks)
        missing = sum(c.result == NOT_SCORED for c in self.checks)
        return f"{passed} of {len(self.checks)} expectations hold" + (f", {missing} not scored" if missing else "")


def calibration(records: list[dict], pins: dict[str, Pin]) -> Calibration:
    """The records on pinned calibration models, and each expectation checked against its record."""
    pinned = {(r["method"]["name"], r["model"]["name"]): r for r in records
              if (pin := pins.get(r["model"]["name"])) is not None and pin.tier == TIER
              and pin.sha256 == r["model"]["sha256"]}
    return Calibration(pinned, [_check(e, pinned.get((e.method, e.model))) for e in EXPECTATIONS])


def _check(exp: Expectation, record: dict | None) -> Check:
    if record is None:
        return Check(exp, None, NOT_SCORED)
    value = measured(exp, record)
    error = record.get("error") if record["status"] != "ok" else None
    return Check(exp, value, PASS if holds(exp, value) else FAIL, error)


def to_json(cal: Calibration) -> list[dict]:
    """leaderboard.json's `calibration`: one entry per expectation."""
    return [{"method": c.expectation.method, "model": c.expectation.model, "track": c.expectation.track,
             "metric": c.expectation.metric, "lengths": list(c.expectation.lengths), "expected": c.expectation.text,
             "why": c.expectation.why, "measured": None if c.value is None else round(c.value, 6),
             "result": c.result} for c in cal.checks]
