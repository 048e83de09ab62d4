"""benchmarks/record_costs.py: the README's cost table is summed from records, so its sums must be right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("record_costs", ROOT / "benchmarks" / "record_costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(method: str, n: int, fit_wall: float, eval_s: float, tier: str = "core", status: str = "ok") -> dict:
    return {"status": status, "method": {"name": method}, "model": {"tier": tier, "hidden_size": n},
            "fit": {"seconds": fit_wall / 2, "wall_seconds": fit_wall}, "eval_seconds": eval_s}


def test_the_cost_table_sums_fit_wall_and_eval_over_the_tier_and_divides_by_the_workers():
    records = [_record("a", 48, 30, 6), _record("a", 48, 50, 6), _record("a", 64, 100, 20),
               _record("a", 64, 999, 999, tier="extended"), _record("a", 64, 999, 999, status="failed"),
               _record("b", 64, 12, 0)]
    header, a, b = _script().cost_rows(records, "core", workers=2)
    assert header[2:4] == ["N=48 fit s", "N=64 fit s"]
    assert a == ["`a`", 3, "40", "100", "3.5", "1.8"]  # (30+6+50+6+100+20) s = 3.53 min; / 2 workers
    assert b == ["`b`", 1, "", "12", "0.2", "0.1"]
