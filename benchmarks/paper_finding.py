"""Does the committed leaderboard reproduce the paper's qualitative finding?

Claim (Csordás et al., 2024): in the smallest GRUs (N = 48, 64) the onion (magnitude)
intervention writes tokens where linear ones fail; at N = 256 linear interchange works.
This reads the committed records (nothing is re-scored) and prints, per (N, variant), the
WRITE and INTERCHANGE IIA of the onion and linear baselines (mean ± std over seeds), then a
verdict per claim. A claim with no records says so instead of guessing.

Usage: python benchmarks/paper_finding.py [--results leaderboard/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from benchmark.board.leaderboard import build_rows, load_records
from benchmark.harness.runner import DEFAULT_RESULTS

LINEAR = ("linear-das", "linear-probe")


def _mean(row, track: str, variant: str, n: int) -> float | None:
    if row is None or track not in row.tracks_attempted:
        return None
    s = row.cells[track].get(variant, {}).get(str(n))
    return None if s is None else s.mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    args = parser.parse_args()
    rows = {r.method: r for r in build_rows(load_records(Path(args.results))[0])}
    table, verdicts = [], []
    for n in (48, 64, 128, 256):
        for variant in ("ar", "ni"):
            onion = _mean(rows.get("onion"), "write", variant, n)
            linear = [_mean(rows.get(m), t, variant, n) for m in LINEAR for t in ("write", "interchange")]
            table.append([n, variant, onion, *linear])
            if onion is None or any(v is None for v in linear):
                verdicts.append(f"N={n} {variant}: not scored yet")
            elif n <= 64:
                ok = onion > 0.5 and max(linear) < 0.5
                verdicts.append(f"N={n} {variant}: onion WRITE {onion:.2f} vs best linear {max(linear):.2f} -> "
                                f"{'agrees' if ok else 'DISAGREES'} with 'onion works, linear fails'")
            elif n == 256:
                das = linear[1]
                verdicts.append(f"N={n} {variant}: linear-das INTERCHANGE {das:.2f} -> "
                                f"{'agrees' if das > 0.5 else 'DISAGREES'} with 'linear interchange works'")
    print(tabulate(table, headers=["N", "variant", "onion WRITE", "DAS WRITE", "DAS INTERCH.", "probe WRITE",
                                   "probe INTERCH."], floatfmt=".3f", missingval="-"))
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
