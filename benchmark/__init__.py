"""onionbench: a benchmark of intervention methods on the GRUs of Csordás et al. (2024).

Layers, bottom up (docs/ARCHITECTURE.md; `tests/test_layout.py` checks no import goes up):
the ground floor (`task`, `data`, `errors`, `records`, `catalogue`, `hashing`, `hardware`),
`zoo` (reference models), `harness` (cells, tracks, isolation, executors), `board` (the
leaderboard, a pure function of records), then `audit` and `studies` on top, and `cli`.
Nothing is imported here, so `import benchmark.records` stays as light as that module.
"""

__all__ = ["audit", "board", "catalogue", "cli", "data", "errors", "hardware", "harness", "hashing", "records",
           "studies", "task", "zoo"]
