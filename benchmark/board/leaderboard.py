"""The leaderboard: a pure function of the result records and the registry (PROTOCOL §4-5).

`build(records)` returns every artifact as text (Markdown, CSV, JSON, a self-contained HTML
page, and the README block), so "the committed leaderboard equals a fresh build" is a plain
string comparison. The rules a reader relies on (docs/DECISIONS.md, "Leaderboard"):

- only the GRU core tier with the registry's weights counts for the boards; a row is ranked
  only when it has a record on every core model; a failed cell counts 0 and is shown;
- three boards: the *hypothesis* board (key "intervention": declared methods attempting
  WRITE and INTERCHANGE, by the headline), the *open* board (the same for methods whose
  code runs at scoring) and *read* (every method, by READ sequence accuracy); a read-only
  probe is on the read board only, instead of scoring 0 on tracks it never attempts;
- a row whose method source changed since scoring is stale (shown, not ranked);
- "=1" means the paired 95 % interval of (row - leader) over the same models contains 0;
- records measured differently (scoring version, plan seed, fit budget, weights) are refused.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark import catalogue
from benchmark.board.rules import (
    HEADLINE_GROUP,
    Pin,
    check_comparable,
    core_models,
    group_label,
    group_of,
    pins_from_registry,
)
from benchmark.board.stats import (  # noqa: F401  (T975, stat: public)
    T975,
    Diff,
    Stat,
    paired_difference,
    stat,
    stratified_stat,
)
from benchmark.errors import OnionbenchError
from benchmark.records import read_record, record_files
from benchmark.task import BENCHMARK_VERSION

# Live views of the track catalogue (benchmark/catalogue.py): a track added there reaches every table.
TRACK_METRIC = catalogue.board_metric
TRACK_LABEL = catalogue.board_label
VARIANT_ORDER = ("ar", "ni")
LENGTHS = tuple(str(n) for n in range(2, 10))
# board -> tracks a method must attempt. The hypothesis board ("intervention") ranks declared
# methods (scored by harness code only, issue 28); the open board ranks methods whose code
# runs at scoring, which a re-encoder can climb without a hypothesis.
BOARDS = {"intervention": ("write", "interchange"), "open": ("write", "interchange"), "read": ("read",)}
CAUSAL = ("intervention", "open")  # the boards ranked by the headline
BOARD_TITLE = {"intervention": "Hypothesis board (declared interventions)", "open": "Open board (code at scoring)",
               "read": "Read board"}
BOARD_SCORE = {"intervention": "headline", "open": "headline", "read": "READ sequence accuracy"}
README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"
# Sequences of each length in the public test split (test-v1; tests/test_leaderboard.py checks it against
# the split): the mix every WRITE and INTERCHANGE rate is standardised to (`standardised`).
TEST_LENGTH_COUNTS = {"2": 180, "3": 651, "4": 667, "5": 726, "6": 687, "7": 696, "8": 733, "9": 660}
HEADLINE_TRACKS = catalogue.causal_tracks  # the causal tracks (WRITE, INTERCHANGE); READ has its own board


@dataclass
class Standing:
    """A row's place on one board: rank None means incomplete (not every core cell present)."""

    rank: int | None
    tied_with_leader: bool = False
    vs_leader: Diff | None = None  # paired difference to the leader (None for the leader and unranked rows)


@dataclass
class Row:
    """One method: its core-tier aggregates, its places on the boards, its other model groups."""

    row_id: str
    method: str
    hypothesis: str
    baseline: bool
    url: str
    tracks_attempted: list[str]
    boards: list[str]  # the boards this method is on
    headline: Stat | None  # mean of WRITE and INTERCHANGE, strata weighing equally (intervention board)
    read_score: Stat | None  # READ sequence accuracy over the core cells present (read board)
    core_models_scored: int  # core cells present, failed ones included
    core_models_total: int
    failed_cells: list[str]  # core models whose record failed (counted 0)
    cells: dict[str, dict[str, dict[str, Stat | None]]]  # track -> variant -> str(N) -> Stat (None: not attempted)
    method_size: dict[str, dict[str, int | None]]  # variant -> str(N) -> learned scalars (None: not recorded)
    interchange_len9: Stat | None  # the paper's linear test: INTERCHANGE IIA on length-9 sequences
    by_length: dict[str, dict[str, float]]  # track -> length -> mean over core cells
    fit_seconds: float | None  # mean per successful core cell
    sequences_drawn: float | None  # mean per successful core cell
    budget: int
    # (architecture, tier) group label -> track -> model family -> Stat, for every group but the GRU core tier
    others: dict[str, dict[str, dict[str, Stat | None]]] = field(default_factory=dict)
    records: list[tuple[str, str]] = field(default_factory=list)  # (model, record_sha256), every group
    standings: dict[str, Standing] = field(default_factory=dict)  # board -> place
    headline_by_variant: dict[str, Stat] = field(default_factory=dict)  # "ar" / "ni" -> sub-headline
    headline_cells: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # variant -> N -> model -> value
    by_position: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # track -> stratum -> p -> rate
    authors: list[str] = field(default_factory=list)  # the method's authors (method.toml), credited by `cite`
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (model, outcomes_sha256 or "failed"), every group
    method_kind: str = "open"  # "declared": every successful record's fit returned forms (issue 28)
    interchange_reads: bool | None = None  # INTERCHANGE calls the method's own read (None: not stated)
    # size relative to the model's weights: declared bytes (exact), or the lzma description length of
    # what an open method's scoring receives; variant -> str(N) -> mean over seeds, and over strata
    relative_size: dict[str, dict[str, float | None]] = field(default_factory=dict)
    relative_size_overall: float | None = None
    pareto: bool = False  # on its headline board's Pareto front (no row both smaller and better)
    stale: bool = False  # the method's source today differs from its records': shown, not ranked (issue 33 item 6)

    @property
    def complete(self) -> bool:
        return self.core_models_total > 0 and self.core_models_scored == self.core_models_total

    @property
    def causal_board(self) -> str | None:
        """The headline board this row is on: "intervention" (declared) or "open"; None for read-only rows."""
        return next((b for b in CAUSAL if b in self.boards), None)

    @property
    def rank(self) -> int | None:
        """Rank on the row's headline board (None: not ranked there)."""
        return self.standings.get(self.causal_board or "", Standing(None)).rank

    @property
    def tied_with_leader(self) -> bool:
        return self.standings.get(self.causal_board or "", Standing(None)).tied_with_leader

    def score(self, board: str) -> Stat | None:
        return self.headline if board in CAUSAL else self.read_score


def load_records(results: Path) -> tuple[list[dict], list[str]]:
    """Valid records and the refusals (one message per refused file, naming it)."""
    records, refused = [], []
    for path in record_files(results):
        try:
            records.append(read_record(path))
        except OnionbenchError as err:
            refused.append(str(err))
    return records, refused


def row_id(method: str) -> str:
    """Stable id of a method's row: name plus benchmark version."""
    return f"{method}@v{BENCHMARK_VERSION}"


# --- per-cell values: a failed cell counts 0 on every track it would have been scored on ---

def standardised(rec: dict, track: str) -> float | None:
    """WRITE or INTERCHANGE IIA re-weighted to the test split's length mix.

    Why: only the cases a model repeats correctly are scored, and small models repeat short
    sequences far more often, so a raw kept-case IIA leans towards short, easy sequences. Per
    length, the rate is weighted by that length's share of the test split; a length with no
    kept case is missing and the others are re-weighted. The raw rate stays in the record.
    """
    rates = rec.get("by_length", {}).get(track)
    if not rates:
        return None
    present = {n: v for n, v in rates.items() if n in TEST_LENGTH_COUNTS}
    total = sum(TEST_LENGTH_COUNTS[n] for n in present)
    return sum(v * TEST_LENGTH_COUNTS[n] for n, v in present.items()) / total if total else None


def track_value(rec: dict, track: str) -> float | None:
    """The track's board metric (WRITE and INTERCHANGE length-standardised); 0 for a failed cell; None
    when the method does not attempt the track."""
    if rec["status"] != "ok":
        return 0.0
    m = rec["metrics"].get(track)
    if m is None:
        return None
    if track in HEADLINE_TRACKS and (value := standardised(rec, track)) is not None:
        return value
    return m[TRACK_METRIC[track]]


def headline_value(rec: dict) -> float:
    """Mean of length-standardised WRITE IIA and INTERCHANGE IIA (not attempted counts 0)."""
    return sum(track_value(rec, t) or 0.0 for t in HEADLINE_TRACKS) / len(HEADLINE_TRACKS)


def read_value(rec: dict) -> float:
    return track_value(rec, "read") or 0.0


def _len9_value(rec: dict) -> float | None:
    if rec["status"] != "ok":
        return 0.0
    return rec["by_length"].get("interchange", {}).get("9")


BOARD_VALUE: dict[str, Callable[[dict], float]] = {"intervention": headline_value, "open": headline_value,
                                                   "read": read_value}


def stratum(rec: dict) -> tuple:
    """(architecture, N, variant): the strata every board score weighs equally."""
    m = rec["model"]
    return m.get("architecture", "gru"), m["hidden_size"], m["variant"]


def over_strata(recs: list[dict], value: Callable[[dict], float | None]) -> Stat | None:
    """Mean over strata of each stratum's mean over its models, with the stratified 95 % interval.

    Every (N, variant) weighs the same, as the headline does; the interval covers the model
    seeds within the strata (PROTOCOL §5, `stats.stratified_stat`). Nothing is grouped by
    seed index: seed 0 at N=48 and seed 0 at N=64 are unrelated models."""
    by: dict[object, list[float]] = {}
    for r in recs:
        if (v := value(r)) is not None:
            by.setdefault(stratum(r), []).append(v)
    return stratified_stat(by) if by else None


# --- one method's row ---

def is_core_cell(rec: dict, core: dict[str, str]) -> bool:
    """On a core model, with the weights the registry pins (`core`: name -> sha256)."""
    return core.get(rec["model"]["name"]) == rec["model"]["sha256"]


def _tracks(recs: list[dict]) -> list[str]:
    ok = [r for r in recs if r["status"] == "ok"] or recs
    return sorted({t for r in ok for t in r["tracks_attempted"]}, key=list(TRACK_METRIC).index)


def method_kind(recs: list[dict]) -> str:
    """"declared" when every successful record is (a record from before issue 28 counts as open)."""
    ok = [r for r in recs if r["status"] == "ok"]
    return "declared" if ok and all(r.get("method_kind") == "declared" for r in ok) else "open"


def _interchange_reads(recs: list[dict]) -> bool | None:
    stated = {r.get("interchange_reads") for r in recs if r["status"] == "ok"} - {None}
    return True if True in stated else (False if stated else None)


def _boards(tracks: list[str], recs: list[dict]) -> list[str]:
    """Every method reads (PROTOCOL §3); one with no successful record stays on the read board.
    A method attempting WRITE and INTERCHANGE is on the hypothesis board when declared, else the open board."""
    known, kind = any(r["status"] == "ok" for r in recs), method_kind(recs)
    skip = "open" if kind == "declared" else "intervention"
    return [b for b, need in BOARDS.items()
            if b != skip and (all(t in tracks for t in need) or (b == "read" and not known))]


def _by_variant_size(recs: list[dict], value: Callable[[dict], Any], reduce: Callable[[list], Any]) -> dict:
    """variant -> str(N) -> reduce([value(r) for r in that group's records])."""
    out: dict[str, dict[str, Any]] = {}
    for variant in VARIANT_ORDER:
        for n in sorted({r["model"]["hidden_size"] for r in recs}):
            group = [r for r in recs if r["model"]["variant"] == variant and r["model"]["hidden_size"] == n]
            if group:
                out.setdefault(variant, {})[str(n)] = reduce([value(r) for r in group])
    return out


def _seed_stat(values: list[float | None]) -> Stat | None:
    present = [v for v in values if v is not None]
    return None if len(present) < len(values) else stat(present)


def _mean_size(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known)) if known else None


def relative_size(rec: dict) -> float | None:
    """The method's size as a fraction of the model's weight bytes (None: not recorded).

    Declared: the declaration's exact bytes. Open: lzma bytes of what scoring receives
    (fitted bytes plus method folder), measured by the supervisor: an upper bound on what
    the method needs, since code compresses worse than it could."""
    fit, model_bytes = rec["fit"], (rec["fit"].get("description_length") or {}).get("model_bytes")
    if not model_bytes:
        return None
    if rec.get("method_kind") == "declared" and fit.get("declaration"):
        return fit["declaration"]["bytes"] / model_bytes
    return fit["description_length"]["bytes"] / model_bytes


def _mean_known_size(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _method_size(rec: dict) -> int | None:
    # new field (PROTOCOL §3 "method size"); older records lack it
    return rec.get("method_parameters")


def _by_length(recs: list[dict], tracks: list[str]) -> dict[str, dict[str, float]]:
    """Mean over the core cells of each track's per-length success (a failed cell counts 0)."""
    out: dict[str, dict[str, float]] = {}
    for track in tracks:
        for n in LENGTHS:
            values = [0.0 if r["status"] != "ok" else r["by_length"].get(track, {}).get(n) for r in recs]
            values = [v for v in values if v is not None]
            if values:
                out.setdefault(track, {})[n] = round(sum(values) / len(values), 6)
    return out


POSITIONS = tuple(str(p) for p in range(9))
POSITION_TRACKS = catalogue.position_label


def _by_position(recs: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """track -> "ar N=48" -> position -> mean over the stratum's successful cells that record it."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for track in POSITION_TRACKS:
        for variant in VARIANT_ORDER:
            for n in sorted({r["model"]["hidden_size"] for r in recs}):
                group = [r["by_position"][track] for r in recs if r["status"] == "ok" and
                         r["model"]["variant"] == variant and r["model"]["hidden_size"] == n and
                         track in r.get("by_position", {})]
                for p in POSITIONS:
                    values = [g[p] for g in group if p in g]
                    if values:
                        out.setdefault(track, {}).setdefault(f"{variant} N={n}", {})[p] = round(sum(values) / len(values), 6)
    return out


def _mean_of(recs: list[dict], value: Callable[[dict], float]) -> float | None:
    ok = [r for r in recs if r["status"] == "ok"]
    return round(sum(value(r) for r in ok) / len(ok), 2) if ok else None


def _core_cells(recs: list[dict], tracks: list[str]) -> dict[str, dict[str, dict[str, Stat | None]]]:
    return {t: _by_variant_size(recs, _track_getter(t, tracks), _seed_stat) for t in TRACK_METRIC}


def _track_getter(track: str, tracks: list[str]) -> Callable[[dict], float | None]:
    """The metric of `track` in a record, or None when the method does not attempt it."""
    return lambda r: track_value(r, track) if track in tracks else None


def family(model_name: str) -> str:
    """A model's name without its seed suffix: the seeds of one family are averaged."""
    stem, _, seed = model_name.rpartition("-s")
    return stem if stem and seed.isdigit() else model_name


def _other_cells(recs: list[dict], tracks: list[str]) -> dict[str, dict[str, Stat | None]]:
    """track -> model family -> Stat over the family's seeds (a custom model is its own family)."""
    out: dict[str, dict[str, Stat | None]] = {t: {} for t in TRACK_METRIC}
    families = sorted({family(r["model"]["name"]) for r in recs})
    for t in TRACK_METRIC:
        for fam in families:
            group = [r for r in recs if family(r["model"]["name"]) == fam]
            out[t][fam] = _seed_stat([track_value(r, t) if t in tracks else None for r in group])
    return out


def make_row(recs: list[dict], pins: dict[str, Pin]) -> Row:
    """Aggregate one method's records (ok and failed) into its row; standings come later."""
    first = recs[0]["method"]
    core = core_models(pins)
    cells = [r for r in recs if is_core_cell(r, core)]
    tracks = _tracks(recs)
    boards = _boards(tracks, recs)
    causal = bool(set(boards) & set(CAUSAL))
    return Row(
        row_id=row_id(first["name"]), method=first["name"], hypothesis=first["hypothesis"],
        baseline=first["baseline"], url=first["url"], tracks_attempted=tracks, boards=boards,
        headline=over_strata(cells, headline_value) if causal else None,
        read_score=over_strata(cells, read_value) if "read" in boards else None,
        core_models_scored=len(cells), core_models_total=len(core),
        failed_cells=sorted(r["model"]["name"] for r in cells if r["status"] != "ok"),
        cells=_core_cells(cells, tracks), method_size=_by_variant_size(cells, _method_size, _mean_size),
        interchange_len9=over_strata(cells, _len9_value) if "interchange" in tracks else None,
        by_length=_by_length(cells, tracks), fit_seconds=_mean_of(cells, lambda r: r["fit"]["seconds"]),
        sequences_drawn=_mean_of(cells, lambda r: r["fit"]["sequences_drawn"]),
        budget=max(r["fit"]["budget"] for r in recs), others=_others(recs, pins, tracks),
        records=sorted((r["model"]["name"], r["record_sha256"]) for r in recs),
        headline_by_variant={v: st for v in VARIANT_ORDER if causal and
                             (st := over_strata([r for r in cells if r["model"]["variant"] == v], headline_value))},
        headline_cells=_by_variant_size(cells, lambda r: (r["model"]["name"], headline_value(r)), dict)
        if causal else {},
        authors=list(first.get("authors", [])), by_position=_by_position(cells),
        outcomes=sorted((r["model"]["name"], r["outcomes_sha256"] or "failed") for r in recs),
        method_kind=method_kind(recs), interchange_reads=_interchange_reads(recs),
        relative_size=(sizes := _by_variant_size(cells, relative_size, _mean_known_size)),
        relative_size_overall=_mean_known_size([v for by_n in sizes.values() for v in by_n.values()]))


def _others(recs: list[dict], pins: dict[str, Pin], tracks: list[str]) -> dict[str, dict[str, dict[str, Stat | None]]]:
    """Every (architecture, tier) group other than the GRU core tier, by its label."""
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        g = group_of(r, pins)
        if g != HEADLINE_GROUP:
            groups.setdefault((g[0], g[1] or ""), []).append(r)
    return {group_label((a, t or None)): _other_cells(g, tracks) for (a, t), g in sorted(groups.items())}


# --- the boards ---

def _paired(row: dict[str, float], leader: dict[str, float], strata: dict[str, tuple]) -> Diff:
    """Differences on the models both rows have, grouped by stratum."""
    by: dict[object, list[float]] = {}
    for model in sorted(set(row) & set(leader)):
        by.setdefault(strata[model], []).append(row[model] - leader[model])
    return paired_difference(by)


REFERENCE = "reference"  # the hypothesis of rows shown as a ceiling (additive-table), never ranked


def rank_board(rows: list[Row], board: str, scores: dict[str, dict[str, float]], strata: dict[str, tuple]) -> None:
    """Set each member's standing: complete rows ranked by score, tied when the paired interval contains 0.
    Reference rows (a ceiling such as additive-table) are shown after the ranked rows, unranked."""
    members = [r for r in rows if board in r.boards and r.hypothesis != REFERENCE]
    for r in rows:
        if board in r.boards and r.hypothesis == REFERENCE:
            r.standings[board] = Standing(None)
    ranked = sorted((r for r in members if r.complete and not r.stale), key=lambda r: (-_mean(r.score(board)), r.method))
    for i, r in enumerate(ranked, start=1):
        diff = None if i == 1 else _paired(scores[r.method], scores[ranked[0].method], strata)
        r.standings[board] = Standing(i, diff is not None and diff.tied, diff)
    for r in members:
        if not r.complete or r.stale:
            r.standings[board] = Standing(None)


def board_rows(rows: list[Row], board: str) -> list[Row]:
    """A board's members in board order: ranked first, then incomplete rows by their partial score."""
    members = [r for r in rows if board in r.boards]
    return sorted(members, key=lambda r: (r.hypothesis == REFERENCE, r.standings[board].rank is None,
                                          r.standings[board].rank or 0, -_mean(r.score(board)), r.method))


def _mean(s: Stat | None) -> float:
    """A score's mean, -1 when there is none (sorts last)."""
    return s.mean if s is not None else -1.0


def build_rows(records: list[dict], registry: Mapping[str, Any] | None = None,
               sources: Mapping[str, str] | None = None) -> list[Row]:
    """Every method's row with its standings, intervention board order first, then the read-only rows.

    Raises OnionbenchError when the records are not comparable (see `rules.check_comparable`).
    `registry`: name -> entry with `tier`, `sha256` (default: the package's registry).
    `sources`: method name -> its folder's sha256 today (`onionbench leaderboard` passes the
    discovered methods'); a row whose records were made from another source is stale: shown,
    not ranked, until re-scored. None: no row is judged stale (the board stays a function of
    the records alone)."""
    check_comparable(records)
    pins = pins_from_registry(registry)
    core = core_models(pins)
    by_method: dict[str, list[dict]] = {}
    for rec in records:
        by_method.setdefault(rec["method"]["name"], []).append(rec)
    rows = [make_row(recs, pins) for _, recs in sorted(by_method.items())]
    changed = stale_methods(records, sources or {})
    for row in rows:
        row.stale = row.method in changed
    strata = {r["model"]["name"]: stratum(r) for r in records if r["model"]["name"] in core}
    for board, value in BOARD_VALUE.items():
        scores = {m: {r["model"]["name"]: value(r) for r in recs if is_core_cell(r, core)}
                  for m, recs in by_method.items()}
        rank_board(rows, board, scores, strata)
    for board in CAUSAL:
        mark_pareto([r for r in rows if board in r.boards])
    order = board_rows(rows, "intervention") + board_rows(rows, "open")
    return order + [r for r in board_rows(rows, "read") if r not in order]


def stale_methods(records: list[dict], sources: Mapping[str, str]) -> set[str]:
    """Methods with a record made from other source than their folder's now (`sources`: name ->
    source sha256 of the discovered folders; a method not discovered is never stale)."""
    return {r["method"]["name"] for r in records
            if sources.get(r["method"]["name"]) not in (None, r["method"]["source_sha256"])}


def pareto_eligible(row: Row) -> bool:
    """A row that may sit on a Pareto front: complete, up to date, and not a reference line."""
    return row.complete and not row.stale and row.hypothesis != REFERENCE


def mark_pareto(rows: list[Row]) -> None:
    """Set `pareto` on the complete, non-reference rows that no other such row dominates
    (at most its size and at least its headline, one strictly): the smallest hypothesis for
    each level of success (Voita & Titov 2020; Pimentel et al. 2020 put a probe's result beside
    its complexity)."""
    pts = [(r, r.relative_size_overall, r.headline.mean) for r in rows if pareto_eligible(r)
           and r.headline is not None and r.relative_size_overall is not None]
    for r, size, score in pts:
        r.pareto = not any(s <= size and h >= score and (s < size or h > score) for o, s, h in pts if o is not r)


@dataclass(frozen=True)
class Winner:
    """The best complete hypothesis-board row in one (variant, N) stratum, against the runner-up."""

    best: str
    runner_up: str | None
    best_score: float
    vs_runner_up: Diff | None  # best - runner-up, paired over the stratum's models

    @property
    def tied(self) -> bool:
        return self.vs_runner_up is not None and self.vs_runner_up.tied


def winner_matrix(rows: list[Row]) -> dict[str, dict[str, Winner]]:
    """variant -> str(N) -> the stratum's winner by the headline, with its paired interval to the runner-up.

    The pooled headline averages strata where different hypotheses win; this matrix shows
    which method wins where (a tie when the paired interval over the stratum's three models
    contains 0)."""
    members = [r for r in rows if r.complete and r.headline_cells and r.hypothesis != REFERENCE
               and "intervention" in r.boards and not r.stale]
    out: dict[str, dict[str, Winner]] = {}
    for variant in VARIANT_ORDER:
        for n in sorted({n for r in members for n in r.headline_cells.get(variant, {})}, key=int):
            scored = [(sum(c.values()) / len(c), r.method, c) for r in members
                      if (c := r.headline_cells.get(variant, {}).get(n))]
            scored.sort(key=lambda t: (-t[0], t[1]))
            best = scored[0]
            if len(scored) == 1:
                out.setdefault(variant, {})[n] = Winner(best[1], None, round(best[0], 6), None)
                continue
            second = scored[1]
            diff = paired_difference({n: [best[2][m] - second[2][m] for m in sorted(set(best[2]) & set(second[2]))]})
            out.setdefault(variant, {})[n] = Winner(best[1], second[1], round(best[0], 6), diff)
    return out


def rank_text(row: Row, board: str | None = None) -> str:
    """'1', '=1' (paired-tied with the leader), '3', 'reference', 'stale' or 'incomplete' (default: the row's
    headline board)."""
    s = row.standings.get(board or row.causal_board or "read")
    if row.hypothesis == REFERENCE:
        return "reference"
    if row.stale:
        return "stale"
    if s is None or s.rank is None:
        return "incomplete"
    return "=1" if s.tied_with_leader else str(s.rank)


def sizes_of(rows: list[Row]) -> list[str]:
    return sorted({n for r in rows for t in r.cells.values() for v in t.values() for n in v}, key=int)


def cell_text(row: Row, track: str, variant: str, n: str) -> str:
    if track not in row.tracks_attempted:
        return "not attempted"
    value = row.cells[track].get(variant, {}).get(n)
    return "–" if value is None else value.text()


# --- reference values: properties of the models, the same for every method ---

@dataclass
class References:
    """Per core model, what does not depend on the method: model accuracy, identity floor, kept cases."""

    model_accuracy: dict[str, dict[str, Stat | None]]  # variant -> str(N) -> the model's own exact match (READ)
    model_accuracy_mean: float | None  # over the core models
    identity: dict[str, dict[str, dict[str, Stat | None]]]  # track -> variant -> str(N) -> do-nothing IIA
    identity_mean: dict[str, float]  # track -> over the core models
    identity_by_length: dict[str, dict[str, float]]  # track -> length -> mean (when records carry it)
    kept_by_length: dict[str, dict[str, float]]  # track -> length -> mean kept cases per model (when recorded)


def _bound(rec: dict, kind: str, key: str) -> float | None:
    return rec["bounds"].get(kind, {}).get(key)


def _length_table(recs: list[dict], get: Callable[[dict], dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for track in HEADLINE_TRACKS:
        for n in LENGTHS:
            values = [v for r in recs if (v := get(r).get(track, {}).get(n)) is not None]
            if values:
                out.setdefault(track, {})[n] = round(sum(values) / len(values), 6)
    return out


def _mean_known(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 6) if known else None


def references(records: list[dict], pins: dict[str, Pin]) -> References:
    """From one successful record per core model (the bounds are the model's, not the method's)."""
    core = core_models(pins)
    one: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: (r["model"]["name"], r["method"]["name"])):
        if r["status"] == "ok" and is_core_cell(r, core):
            one.setdefault(r["model"]["name"], r)
    recs = list(one.values())
    acc = lambda r: _bound(r, "oracle", "read_sequence_accuracy")  # noqa: E731
    ident = {t: (lambda r, t=t: _bound(r, "identity", f"{t}_iia")) for t in HEADLINE_TRACKS}
    return References(
        model_accuracy=_by_variant_size(recs, acc, _seed_stat), model_accuracy_mean=_mean_known([acc(r) for r in recs]),
        identity={t: _by_variant_size(recs, f, _seed_stat) for t, f in ident.items()},
        identity_mean={t: m for t, f in ident.items() if (m := _mean_known([f(r) for r in recs])) is not None},
        identity_by_length=_length_table(recs, lambda r: r["bounds"].get("identity_by_length", {})),
        kept_by_length=_length_table(recs, lambda r: r.get("kept_by_length", {})))


# --- artifacts ---

def _unpinned(records: list[dict], pins: dict[str, Pin]) -> list[str]:
    """Records on a registry model name whose weights are not the pinned ones (not core cells)."""
    return sorted(f"{r['method']['name']}/{r['model']['name']}" for r in records
                  if r["model"]["name"] in pins and pins[r["model"]["name"]].sha256 != r["model"]["sha256"])


def to_json(rows: list[Row], failed: list[str], notes: dict[str, list[str]] | None = None,
            refs: References | None = None, calibration: list[dict] | None = None) -> str:
    """leaderboard.json: board orders, every row, failed cells, notes, the models' reference values and the
    calibration checks (`benchmark.board.calibration.to_json`)."""
    boards = {b: [r.row_id for r in board_rows(rows, b)] for b in BOARDS}
    out = {"benchmark_version": BENCHMARK_VERSION, "boards": boards, "rows": [_row_json(r) for r in rows],
           "failed_cells": failed, **(notes or {}), **({"references": asdict(refs)} if refs else {}),
           **({"calibration": calibration} if calibration is not None else {})}
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


def _row_json(row: Row) -> dict:
    return {**asdict(row), "complete": row.complete}


def _csv_stat(w, row: Row, group: str, track: str, variant: str, n: str, s: Stat | None) -> None:
    if s is not None:
        w.writerow([row.row_id, row.method, group, track, variant, n, s.mean, s.std, s.ci95, s.n])


def to_csv(rows: list[Row]) -> str:
    """Long format: one line per (row, group, track, variant, N), plus each row's board scores."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["row_id", "method", "group", "track", "variant", "hidden_size", "mean", "std", "ci95", "n_seeds"])
    for r in rows:
        _csv_stat(w, r, "core", "headline", "all", "core", r.headline)
        _csv_stat(w, r, "core", "read_board", "all", "core", r.read_score)
        for track in TRACK_METRIC:
            for variant, by_n in sorted(r.cells[track].items()):
                for n, s in sorted(by_n.items(), key=lambda kv: int(kv[0])):
                    if track not in r.tracks_attempted:
                        w.writerow([r.row_id, r.method, "core", track, variant, n, "not attempted", "", "", ""])
                    else:
                        _csv_stat(w, r, "core", track, variant, n, s)
        for label, tracks in r.others.items():
            for track, by_family in tracks.items():
                for fam, s in by_family.items():
                    _csv_stat(w, r, label, track, fam, "", s)
    return out.getvalue()
