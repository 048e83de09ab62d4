"""`onionbench cite` and `onionbench verify`: numbers that can be traced and re-checked.

A row's BibTeX credits the method's authors (method.toml), names the benchmark version and a
digest of the row's outcome hashes (what each cell got right and wrong: identical re-scores
give the identical digest, whatever their timings), and lists each record's own
`record_sha256`, so a number quoted in a paper identifies exactly which records, methods
and model weights produced it. The benchmark is cited alongside, and the paper a baseline
implements when its url is the paper's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from benchmark.board.leaderboard import BOARD_SCORE, Row, build_rows, load_records, rank_text
from benchmark.errors import OnionbenchError
from benchmark.task import BENCHMARK_VERSION
from benchmark.zoo.cards import PAPER_BIBTEX

BENCHMARK_BIBTEX = f"""@misc{{onionbench,
  title        = {{onionbench: a benchmark for representation hypotheses on recurrent networks that store sequences}},
  author       = {{{{onionbench maintainers}}}},
  year         = {{2026}},
  howpublished = {{\\url{{https://github.com/onionbench/onionbench}}}},
  note         = {{Benchmark version {BENCHMARK_VERSION}}}
}}"""


def rows_digest(row: Row) -> str:
    """sha256 over the row's (model, outcomes_sha256) pairs: stable across identical re-scores."""
    return hashlib.sha256("\n".join(f"{m} {h}" for m, h in row.outcomes).encode()).hexdigest()


PAPER_URL = "2408.10920"  # arXiv id of Csordás et al. (2024): baselines implementing it point there


def _bibtex_authors(authors: list[str]) -> str:
    """BibTeX author field: names joined by 'and'; a group name in double braces."""
    if not authors:
        return "{unknown}"
    return " and ".join(f"{{{a}}}" if " " in a and a.islower() else a for a in authors)


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
  title        = {{{row.method} ({row.hypothesis} hypothesis): onionbench v{BENCHMARK_VERSION} leaderboard row {row.row_id}}},
  author       = {{{_bibtex_authors(row.authors)}}},
  year         = {{2026}},
  howpublished = {{\\url{{https://github.com/onionbench/onionbench}}}},
  note         = {{{row.url}. Scored with onionbench (cite it too: onionbench), benchmark version
                  {BENCHMARK_VERSION}; {standing_text(row)} (95\\% CI over model seeds within strata);
                  {len(row.records)} records, outcome digest sha256:{rows_digest(row)}}},
  records      = {{{records}}}
}}"""


def cite(results: Path, wanted: str | None) -> str:
    """The benchmark's BibTeX (and the paper's), or one row's."""
    if wanted is None:
        return f"{BENCHMARK_BIBTEX}\n\n{PAPER_BIBTEX}"
    return row_citation(find_row(results, wanted)[0])


def row_citation(row: Row) -> str:
    """The row's entry, the benchmark's, and the paper's when the method implements it."""
    implements = f"\n\n{PAPER_BIBTEX}" if PAPER_URL in row.url else ""
    return f"{row_bibtex(row)}\n\n{BENCHMARK_BIBTEX}{implements}"
