"""The leaderboard: a pure function of the committed result records (PROTOCOL §4-5).

`build(records)` returns every artifact as text (Markdown, CSV, JSON, a self-contained HTML
page with SVG plots, and the README block), so "the committed leaderboard equals a fresh
build" is a plain string comparison. Aggregation: per (method, N, variant) the mean, the
sample std and a 95 % t-interval over model seeds; the headline per method is, per seed,
the mean over the core tier of (READ sequence accuracy, WRITE IIA, INTERCHANGE IIA), a
track the method does not attempt counting 0; then mean and 95 % interval over seeds.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.errors import OnionbenchError
from benchmark.harness.records import read_record
from benchmark.zoo.registry import CORE_SIZES
from benchmark.task import BENCHMARK_VERSION

TRACK_METRIC = {"read": "sequence_accuracy", "write": "iia", "interchange": "iia"}
TRACK_LABEL = {"read": "READ sequence accuracy", "write": "WRITE IIA", "interchange": "INTERCHANGE IIA"}
VARIANT_ORDER = ("ar", "ni")
# two-sided 95 % Student t quantiles by degrees of freedom (df > 10: normal approximation)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


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
    """Aggregate over seeds."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Stat(round(mean, 6), None, None, 1)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Stat(round(mean, 6), round(std, 6), round(T975.get(n - 1, 1.96) * std / math.sqrt(n), 6), n)


@dataclass
class Row:
    """One method on the leaderboard."""

    row_id: str
    method: str
    hypothesis: str
    baseline: bool
    url: str
    tracks_attempted: list[str]
    headline: Stat | None
    core_models_scored: int
    cells: dict[str, dict[str, dict[str, Stat | None]]]  # track -> variant -> str(N) -> Stat (None: not attempted)
    fit_seconds: float  # mean per cell
    sequences_drawn: float  # mean per cell
    budget: int
    records: list[tuple[str, str]] = field(default_factory=list)  # (model, record_sha256)
    rank: int = 0
    tied_with_leader: bool = False


def load_records(results: Path) -> tuple[list[dict], list[str]]:
    """Valid records and the refusals (one message per refused file, naming it)."""
    records, refused = [], []
    for path in sorted(Path(results).rglob("*.json")):
        try:
            records.append(read_record(path))
        except OnionbenchError as err:
            refused.append(str(err))
    return records, refused


def row_id(method: str) -> str:
    """Stable id of a method's row: name plus benchmark version."""
    return f"{method}@v{BENCHMARK_VERSION}"


def _metric(rec: dict, track: str) -> float | None:
    m = rec["metrics"].get(track)
    return None if m is None else m[TRACK_METRIC[track]]


def make_row(recs: list[dict]) -> Row:
    """Aggregate one method's successful records."""
    first = recs[0]["method"]
    tracks = sorted({t for r in recs for t in r["tracks_attempted"]}, key=list(TRACK_METRIC).index)
    cells: dict = {t: {} for t in TRACK_METRIC}
    for track in TRACK_METRIC:
        for variant in VARIANT_ORDER:
            for n in sorted({r["model"]["hidden_size"] for r in recs}):
                group = [r for r in recs if r["model"]["variant"] == variant and r["model"]["hidden_size"] == n]
                if group:
                    values = [_metric(r, track) for r in group]
                    cells[track].setdefault(variant, {})[str(n)] = (
                        None if any(v is None for v in values) else stat(values))
    return Row(row_id=row_id(first["name"]), method=first["name"], hypothesis=first["hypothesis"],
               baseline=first["baseline"], url=first["url"], tracks_attempted=tracks, headline=_headline(recs),
               core_models_scored=sum(r["model"]["hidden_size"] in CORE_SIZES for r in recs), cells=cells,
               fit_seconds=round(sum(r["fit"]["seconds"] for r in recs) / len(recs), 2),
               sequences_drawn=round(sum(r["fit"]["sequences_drawn"] for r in recs) / len(recs)),
               budget=max(r["fit"]["budget"] for r in recs),
               records=sorted((r["model"]["name"], r["record_sha256"]) for r in recs))


def _headline(recs: list[dict]) -> Stat | None:
    by_seed: dict[int, list[float]] = {}
    for r in recs:
        if r["model"]["hidden_size"] in CORE_SIZES and r["model"]["seed"] is not None:
            scores = [_metric(r, t) or 0.0 for t in TRACK_METRIC]  # not attempted counts 0
            by_seed.setdefault(r["model"]["seed"], []).append(sum(scores) / len(scores))
    if not by_seed:
        return None
    return stat([sum(v) / len(v) for _, v in sorted(by_seed.items())])


def rank_rows(rows: list[Row]) -> list[Row]:
    """Sort by headline; rows whose 95 % interval overlaps the leader's are tied with it."""
    rows = sorted(rows, key=lambda r: (-(r.headline.mean if r.headline else -1), r.method))
    leader = rows[0].headline if rows and rows[0].headline else None
    for i, row in enumerate(rows, start=1):
        row.rank = i
        if leader and row.headline:
            lo, hi = row.headline.mean - (row.headline.ci95 or 0), row.headline.mean + (row.headline.ci95 or 0)
            row.tied_with_leader = hi >= leader.mean - (leader.ci95 or 0) and lo <= leader.mean + (leader.ci95 or 0)
    return rows


def build_rows(records: list[dict]) -> list[Row]:
    """Rows of every method with at least one successful record (failed cells are not scores)."""
    by_method: dict[str, list[dict]] = {}
    for rec in records:
        if rec["status"] == "ok" and rec["benchmark_version"] == BENCHMARK_VERSION:
            by_method.setdefault(rec["method"]["name"], []).append(rec)
    return rank_rows([make_row(recs) for _, recs in sorted(by_method.items())])


def rank_text(row: Row) -> str:
    return "=1" if row.tied_with_leader and row.rank > 1 else str(row.rank)


def sizes_of(rows: list[Row]) -> list[str]:
    return sorted({n for r in rows for t in r.cells.values() for v in t.values() for n in v}, key=int)


def cell_text(row: Row, track: str, variant: str, n: str) -> str:
    if track not in row.tracks_attempted:
        return "not attempted"
    value = row.cells[track].get(variant, {}).get(n)
    return "–" if value is None else value.text()


def to_json(rows: list[Row], failed: list[str]) -> str:
    return json.dumps({"benchmark_version": BENCHMARK_VERSION, "rows": [asdict(r) for r in rows],
                       "failed_cells": failed}, indent=1, sort_keys=True) + "\n"


def to_csv(rows: list[Row]) -> str:
    """Long format: one line per (row, track, variant, N), plus each row's headline."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["row_id", "method", "track", "variant", "hidden_size", "mean", "std", "ci95", "n_seeds"])
    for r in rows:
        if r.headline:
            w.writerow([r.row_id, r.method, "headline", "all", "core", r.headline.mean, r.headline.std,
                        r.headline.ci95, r.headline.n])
        for track in TRACK_METRIC:
            for variant, by_n in sorted(r.cells[track].items()):
                for n, s in sorted(by_n.items(), key=lambda kv: int(kv[0])):
                    if track not in r.tracks_attempted:
                        w.writerow([r.row_id, r.method, track, variant, n, "not attempted", "", "", ""])
                    elif s is not None:
                        w.writerow([r.row_id, r.method, track, variant, n, s.mean, s.std, s.ci95, s.n])
    return out.getvalue()


def build(records: list[dict]) -> dict[str, str]:
    """Every artifact, by file name (pure: same records -> same bytes)."""
    from benchmark.board.render import render_html, render_markdown, render_readme_block

    rows = build_rows(records)
    failed = sorted(f"{r['method']['name']} on {r['model']['name']}: {r['error']}" for r in records
                    if r["status"] != "ok")
    return {"LEADERBOARD.md": render_markdown(rows), "leaderboard.csv": to_csv(rows),
            "leaderboard.json": to_json(rows, failed), "index.html": render_html(rows),
            "README-block.md": render_readme_block(rows)}


def write_artifacts(artifacts: dict[str, str], out: Path, readme: Path | None) -> None:
    """Write the files and refresh the README block between the markers."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in artifacts.items():
        if name != "README-block.md":
            (out / name).write_text(text)
    if readme is not None and readme.exists():
        readme.write_text(replace_readme_block(readme.read_text(), artifacts["README-block.md"]))


def replace_readme_block(text: str, block: str) -> str:
    if README_START not in text or README_END not in text:
        raise OnionbenchError(f"README has no {README_START} ... {README_END} markers for the leaderboard block")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{block}{README_END}{tail}"
