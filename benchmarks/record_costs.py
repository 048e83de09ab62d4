"""What each method's scoring cost, read from its records (nothing is re-run).

Every record keeps the fit's CPU-side seconds (`fit.seconds`, inside the fit process), the
fit process's wall time (`fit.wall_seconds`: start-up, fit and serialising) and the
evaluation's seconds (`eval_seconds`). Summing them over a tier gives the cost of scoring a
method there on the recording machine, at the recorded concurrency: the README quotes this
table rather than numbers typed by hand, so it can be regenerated after every re-score.

Usage: python benchmarks/record_costs.py [--results leaderboard/results] [--tier core] [--workers 2]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from tabulate import tabulate

from benchmark.board.leaderboard import load_records
from benchmark.harness.defaults import default_results


def cost_rows(records: list[dict], tier: str, workers: int) -> list[list]:
    """One row per method: mean fit wall seconds per hidden size, and the tier's totals.

    The tier's wall estimate is (fit wall + eval) summed over cells, divided by the number of
    cells run at a time: what `onionbench score --workers W` takes when cells are alike.
    """
    cells: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok" and r["model"]["tier"] == tier:
            cells[r["method"]["name"]].append(r)
    sizes = sorted({r["model"]["hidden_size"] for rs in cells.values() for r in rs})
    rows = []
    for name, rs in sorted(cells.items()):
        per_n = []
        for n in sizes:
            fits = [_fit_wall(r) for r in rs if r["model"]["hidden_size"] == n]
            per_n.append(f"{sum(fits) / len(fits):.0f}" if fits else "")
        total = sum(_fit_wall(r) + r.get("eval_seconds", 0.0) for r in rs)
        rows.append([f"`{name}`", len(rs), *per_n, f"{total / 60:.1f}", f"{total / 60 / workers:.1f}"])
    return [["method", "cells", *(f"N={n} fit s" for n in sizes), "tier CPU-min", f"tier wall-min ({workers} workers)"],
            *rows]


def _fit_wall(record: dict) -> float:
    fit = record.get("fit", {})
    return float(fit.get("wall_seconds", fit.get("seconds", 0.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(default_results()))
    parser.add_argument("--tier", default="core")
    parser.add_argument("--workers", type=int, default=2, help="cells that ran at a time when the records were made")
    args = parser.parse_args()
    records, refused = load_records(args.results)
    header, *rows = cost_rows(records, args.tier, args.workers)
    machines = {r.get("hardware", "?").split(",")[0] for r in records if r["model"]["tier"] == args.tier}
    print(tabulate(rows, headers=header, tablefmt="github"))
    print(f"\nfrom the {args.tier}-tier records in {args.results} ({len(refused)} refused); "
          f"recorded on: {', '.join(sorted(machines))}")


if __name__ == "__main__":
    main()
