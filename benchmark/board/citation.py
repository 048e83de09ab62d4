"""`onionbench cite` and `onionbench verify`: numbers that can be traced and re-checked.

A row's BibTeX names the benchmark version and a digest of the row's record hashes (each
record's own `record_sha256` is listed too), so a number quoted in a paper identifies
exactly which records, methods and model weights produced it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from benchmark.zoo.cards import PAPER_BIBTEX
from benchmark.errors import OnionbenchError
from benchmark.board.leaderboard import BOARD_SCORE, Row, build_rows, load_records, rank_text
from benchmark.task import BENCHMARK_VERSION

BENCHMARK_BIBTEX = f"""@misc{{onionbench,
  title        = {{onionbench: a benchmark for representation hypotheses on recurrent networks that store sequences}},
  author       = {{{{onionbench maintainers}}}},
  year         = {{2026}},
  howpublished = {{\\url{{https://github.com/onionbench/onionbench}}}},
  note         = {{Benchmark version {BENCHMARK_VERSION}}}
}}"""


def rows_digest(row: Row) -> str:
    """sha256 over the row's (model, record_sha256) pairs."""
    return hashlib.sha256("\n".join(f"{m} {h}" for m, h in row.records).encode()).hexdigest()


def find_row(results: Path, wanted: str) -> tuple[Row, list[dict]]:
    """A row by id (`onion@v1`) or method name, with its records."""
    records, _ = load_records(results)
    rows = build_rows(records)
    for row in rows:
        if wanted in (row.row_id, row.method):
            mine = [r for r in records if r["method"]["name"] == row.method and r["status"] == "ok"]
            return row, mine
    raise OnionbenchError(f"no leaderboard row {wanted!r}; rows: {', '.join(r.row_id for r in rows) or 'none'}")


def standing_text(row: Row) -> str:
    """The row's place and score on each board it is on, in ASCII (BibTeX readers choke on '±')."""
    parts = []
    for board in row.boards:
        score = row.score(board)
        value = "not computed" if score is None else score.text(interval=True).replace("±", "+/-")
        place = "not ranked (incomplete: " if not row.complete else f"rank {rank_text(row, board)} ("
        parts.append(f"{board} board {place}{row.core_models_scored} of {row.core_models_total} core models), "
                     f"{BOARD_SCORE[board]} {value}")
    return "; ".join(parts) or "on no board"


def row_bibtex(row: Row) -> str:
    """BibTeX for one leaderboard row."""
    key = f"onionbench-v{BENCHMARK_VERSION}-{row.method}"
    records = ",\n                  ".join(f"{m}:{h}" for m, h in row.records)
    return f"""@misc{{{key},
  title        = {{onionbench v{BENCHMARK_VERSION} leaderboard row {row.row_id}: {row.method} ({row.hypothesis} hypothesis)}},
  author       = {{{{onionbench maintainers}}}},
  year         = {{2026}},
  howpublished = {{\\url{{https://github.com/onionbench/onionbench}}}},
  note         = {{Benchmark version {BENCHMARK_VERSION}; {standing_text(row)} (95\\% CI over model seeds);
                  {len(row.records)} records, digest sha256:{rows_digest(row)}}},
  records      = {{{records}}}
}}"""


def cite(results: Path, wanted: str | None) -> str:
    """The benchmark's BibTeX (and the paper's), or one row's."""
    if wanted is None:
        return f"{BENCHMARK_BIBTEX}\n\n{PAPER_BIBTEX}"
    row, _ = find_row(results, wanted)
    return row_bibtex(row)


@dataclass(frozen=True)
class CellCheck:
    model: str
    matches: bool
    detail: str


def verify(results: Path, wanted: str, *, models: list[str] | None = None,
           progress: bool = True) -> tuple[Row, list[CellCheck]]:
    """Re-score every cell of a row (or those on `models`) with the recorded settings and
    compare with its records."""
    from benchmark.zoo.registry import load_reference
    from benchmark.harness.runner import ScoreSettings, score_cell
    from benchmark.harness.submission import discover

    row, records = find_row(results, wanted)
    methods = discover()
    if row.method not in methods:
        raise OnionbenchError(f"method {row.method!r} of row {row.row_id} is not in baselines/ or submissions/")
    spec = methods[row.method]
    checks = []
    chosen = [r for r in records if models is None or r["model"]["name"] in models]
    if not chosen:
        raise OnionbenchError(f"row {row.row_id} has no record on {', '.join(models or [])}")
    for rec in sorted(chosen, key=lambda r: r["model"]["name"]):
        if spec.source_sha256() != rec["method"]["source_sha256"]:
            checks.append(CellCheck(rec["model"]["name"], False, "the method's source changed since this record"))
            continue
        model, prov = load_reference(rec["model"]["name"])
        settings = ScoreSettings(seed=rec["seed"], budget=rec["fit"]["budget"], plan_seed=rec["plan_seed"])
        if progress:
            print(f"  re-scoring {row.method} on {rec['model']['name']} ...", flush=True)
        fresh = score_cell(spec, model, prov, settings=settings, params=rec["method"]["params"], isolate=True)
        checks.append(_compare(rec, fresh))
    return row, checks


def _compare(old: dict, new: dict) -> CellCheck:
    name = old["model"]["name"]
    if new["status"] != "ok":
        return CellCheck(name, False, f"re-score failed: {new['error']}")
    diffs = [f"{t}.{k}: recorded {old['metrics'][t][k]} vs now {new['metrics'][t][k]}"
             for t, m in old["metrics"].items() if m for k in m if new["metrics"][t] is None or
             new["metrics"][t][k] != m[k]]
    if old["model"]["sha256"] != new["model"]["sha256"]:
        diffs.insert(0, "model weights differ")
    if not diffs and old["outcomes_sha256"] != new["outcomes_sha256"]:
        diffs.append("per-example outcomes differ (same aggregate metrics)")
    return CellCheck(name, not diffs, "; ".join(diffs) or "metrics and outcomes identical")
