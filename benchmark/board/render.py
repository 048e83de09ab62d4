"""Rendering of leaderboard rows: tables as data, then Markdown (tabulate) and the README block.

Each table is built once as a `Table` (cells with a display text and a sort key) and rendered
both as Markdown and as HTML (`benchmark.board.page`), so the page and LEADERBOARD.md can
never show different numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tabulate import tabulate

from benchmark.board.calibration import PASS, Calibration, Check
from benchmark.board.leaderboard import (
    BOARD_SCORE,
    BOARD_TITLE,
    BOARDS,
    CAUSAL,
    LENGTHS,
    POSITION_TRACKS,
    POSITIONS,
    TRACK_LABEL,
    TRACK_METRIC,
    VARIANT_ORDER,
    References,
    Row,
    Stat,
    Winner,
    board_rows,
    cell_text,
    family,
    rank_text,
    row_id,
    sizes_of,
    winner_matrix,
)
from benchmark.task import BENCHMARK_VERSION

MISSING = "–"
READS_MARK = "†"  # INTERCHANGE built from the method's own read (read both states, rewrite)
READS_MARK_NOTE = (f"`{READS_MARK}`: the row's INTERCHANGE reads both states with its own read and rewrites, "
                   "a different operation from a native swap (the INTERCHANGE table below also shows the "
                   "native swaps alone).")
UNRANKED = 10**9  # sort key of an incomplete row's rank: after every ranked row


@dataclass(frozen=True)
class Cell:
    """A displayed value and the key the page sorts it by (None: the text itself; "": missing, sorts last)."""

    text: str
    sort: str | int | float | None = None
    href: str | None = None  # the page links the cell here (relative to leaderboard/index.html)


@dataclass
class Table:
    """One table: `foot` rows are reference values (model accuracy, floors) that sorting never moves."""

    id: str
    title: str
    headers: list[str]
    body: list[list[Cell]]
    row_ids: list[str] = field(default_factory=list)
    foot: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    minor: tuple[int, ...] = ()  # column indices the page hides below a laptop's width (the JSON/CSV keep them)
    phone: tuple[int, ...] = ()  # and those it also hides on a phone


HOW_TO_READ = [
    "**Who wins where.** The first table names, for each hidden size N and decoder variant, the method with the "
    "best headline on that stratum's three models and its paired 95 % interval against the runner-up (`tie` when "
    "the interval contains 0). Read it before the pooled ranking: different hypotheses win on different strata "
    "(the onion on `ar` models, linear codes on `ni` models at larger N), and a pooled mean averages that away.",
    "**Three boards.** The *hypothesis board* ranks the *declared* methods that attempt WRITE and INTERCHANGE "
    "by the headline: the mean of WRITE IIA and INTERCHANGE IIA over the GRU core tier (N = 48..256, both "
    "decoders, three seeds), each (N, variant) stratum weighing equally, with the `ar` and `ni` sub-headlines "
    "beside it. A declared method's fit returns reviewed intervention forms (benchmark/harness/forms.py) and "
    "scoring runs harness code only, so a copy of the model cannot pass for a hypothesis. The *open board* "
    "ranks methods whose own code runs at scoring by the same headline; a re-encoder with no hypothesis "
    "(`reencode-distil`) climbs it, so the two are never compared. READ is not in the headline: decoding a "
    "token is not intervening on it. The *read board* ranks every method by READ sequence accuracy.",
    "**Length-standardised.** WRITE and INTERCHANGE are scored only on cases the model repeats correctly, and "
    "small models repeat short sequences more often; every WRITE and INTERCHANGE rate shown is the per-length "
    "rate weighted by the test split's length mix (a length with no kept case is left out and the rest "
    "re-weighted). The raw kept-case rates are in the records.",
    "**Intervals.** The interval next to a score is a 95 % interval over model seeds within fixed strata (each "
    "stratum's mean has its own spread, the method's fit noise included; the strata are not resampled). "
    "`=1` means the paired 95 % interval of (row - leader) over the same models (column `vs leader`) contains "
    "0; two overlapping score intervals do not mean a tie, because both rows are measured on the same models.",
    "**Complete rows only.** A row is ranked when it has a record on every core model with the registry's "
    "weights. A row with missing cells is shown as `incomplete`, with its score over the cells it has, and is "
    "not ranked. A failed cell counts 0 and is counted in the `failed` column.",
    "**Stale rows.** A row whose method folder has changed since its records were made is marked `stale` and "
    "not ranked until it is re-scored.",
    "**Reference rows.** A row whose hypothesis is `reference` (additive-table: a free per-(position, token) "
    "table trained through the decoder: what the best additive code, onion or linear, can WRITE) is shown "
    "after the ranked rows and in the per-track tables, never ranked: it states no hypothesis. It bounds WRITE "
    "only: its INTERCHANGE reads both states with its nearest-mean read, so a method with a better read can "
    "pass its headline (onion does).",
    "**Reference values.** *Model accuracy* is the model's own exact match on the test split; a probe can exceed "
    "it, so it is not a ceiling. WRITE and INTERCHANGE are scored only on cases the model repeats correctly: "
    "the oracle (re-encode the edited sequence) scores 1.0 there, and the *identity floor* (return the base "
    "state unchanged) is shown under each table.",
    "**Columns.** `method size`: learned scalars in the fitted method (how small a hypothesis suffices), "
    "smallest to largest over the core models. `INTERCHANGE L=9`: the paper's linear test, on length-9 "
    "sequences. Fit time and sequences drawn are means per core model.",
    "**Use.** Click a column header to sort. Cite a row with `onionbench cite ROW`; re-check it with "
    "`onionbench verify ROW`.",
]


def _winner_cell(w: Winner | None) -> Cell:
    if w is None:
        return Cell(MISSING, "")
    if w.vs_runner_up is None:
        return Cell(f"{w.best} ({w.best_score:.3f})", w.best_score)
    if w.tied:
        return Cell(f"tie: {w.best}, {w.runner_up} ({w.vs_runner_up.text()})", w.best_score)
    return Cell(f"{w.best} ({w.best_score:.3f}; {w.vs_runner_up.text()} vs {w.runner_up})", w.best_score)


def winner_table(rows: list[Row]) -> Table:
    """Rows N, columns decoder variant: the stratum's best method by the headline, or a tie."""
    matrix = winner_matrix(rows)
    sizes = sorted({n for by_n in matrix.values() for n in by_n}, key=int)
    body = [[Cell(f"N={n}", int(n))] + [_winner_cell(matrix.get(v, {}).get(n)) for v in VARIANT_ORDER] for n in sizes]
    return Table("winners", "Who wins where (headline by stratum, GRU core tier)",
                 ["N"] + [f"{v} decoder" for v in VARIANT_ORDER], body, [f"N={n}" for n in sizes],
                 note="Best complete hypothesis-board row per (N, variant): its headline, and best - runner-up "
                      "paired over the stratum's models (95 %); `tie` when that interval contains 0.")


def _stat_cell(s: Stat | None, interval: bool = False) -> Cell:
    return Cell(MISSING, "") if s is None else Cell(s.text(interval=interval), s.mean)


def _size_cell(row: Row) -> Cell:
    sizes = sorted(v for by_n in row.method_size.values() for v in by_n.values() if v is not None)
    if not sizes:
        return Cell(MISSING, "")
    text = f"{sizes[0]:,}" if sizes[0] == sizes[-1] else f"{sizes[0]:,}–{sizes[-1]:,}"
    return Cell(text, sizes[-1])


def _rank_cell(row: Row, board: str) -> Cell:
    s = row.standings[board]
    return Cell(rank_text(row, board), UNRANKED if s.rank is None else s.rank)


def _vs_leader_cell(row: Row, board: str) -> Cell:
    s = row.standings[board]
    if s.rank == 1:
        return Cell("leader", 0)
    return Cell(MISSING, "") if s.vs_leader is None else Cell(s.vs_leader.text(), s.vs_leader.mean)


def _number(value: float | None, fmt: str) -> Cell:
    return Cell(MISSING, "") if value is None else Cell(format(value, fmt), value)


# Board columns the page hides on a laptop screen, and further ones on a phone (rank, method, score,
# interval and vs leader always stay; every column is in leaderboard.csv and .json).
MINOR_COLUMNS = ("row id", "baseline", "failed")  # and each BoardColumn marked minor
PHONE_COLUMNS = ("hypothesis", "ar only", "ni only", "core models")  # and each BoardColumn marked phone


def _marked(row: Row) -> str:
    return row.method + (READS_MARK if row.interchange_reads else "")


@dataclass(frozen=True)
class BoardColumn:
    """A trailing column of the ranked boards: its header, its cell from a `Row`, and where it shows.

    The seam for a new board column (docs/ARCHITECTURE.md, "Adding a board column"): a value the
    `Row` carries (computed in `benchmark.board.leaderboard.build_rows` from the records), then one
    entry in `BOARD_COLUMNS`. The Markdown boards and the page take their columns from here."""

    header: str
    cell: Callable[[Row], Cell]
    boards: tuple[str, ...] | None = None  # None: every board
    minor: bool = False  # hidden on a laptop screen (still in the CSV and JSON)
    phone: bool = False  # hidden on a phone


BOARD_COLUMNS: list[BoardColumn] = [
    BoardColumn("method size", lambda r: _size_cell(r), phone=True),
    BoardColumn("INTERCHANGE L=9", lambda r: _stat_cell(r.interchange_len9), boards=CAUSAL, phone=True),
    BoardColumn("fit s / model", lambda r: _number(r.fit_seconds, ".1f"), minor=True),
    BoardColumn("sequences drawn / model", lambda r: _number(r.sequences_drawn, ",.0f"), minor=True),
]


def _columns_of(board: str) -> list[BoardColumn]:
    return [c for c in BOARD_COLUMNS if c.boards is None or board in c.boards]


def _board_cells(row: Row, board: str) -> list[Cell]:
    cells = [_rank_cell(row, board), Cell(row.row_id, href=f"results/{row.method}/"),
             Cell(_marked(row), href=f"../{'baselines' if row.baseline else 'submissions'}/{row.method}/"),
             Cell(row.hypothesis),
             Cell("yes" if row.baseline else "no"), _stat_cell(row.score(board), interval=True),
             _vs_leader_cell(row, board), Cell(f"{row.core_models_scored}/{row.core_models_total}",
                                                row.core_models_scored),
             Cell(str(len(row.failed_cells)), len(row.failed_cells))]
    if board in CAUSAL:
        cells[6:6] = [_stat_cell(row.headline_by_variant.get(v), interval=True) for v in VARIANT_ORDER]
    return cells + [c.cell(row) for c in _columns_of(board)]


def board_headers(board: str) -> list[str]:
    score = "headline (95% CI)" if board in CAUSAL else "READ seq. acc. (95% CI)"
    subs = [f"{v} only" for v in VARIANT_ORDER] if board in CAUSAL else []
    return ["rank", "row id", "method", "hypothesis", "baseline", score, *subs, "vs leader (paired 95% CI)",
            "core models", "failed"] + [c.header for c in _columns_of(board)]


def board_table(rows: list[Row], board: str, refs: References) -> Table:
    """One board: its members in board order."""
    members = board_rows(rows, board)
    foot = []
    if board == "read" and refs.model_accuracy_mean is not None:
        width = len(board_headers(board))
        foot = [[Cell("")] * 2 + [Cell("model accuracy"), Cell("reference")] + [Cell("")]
                + [Cell(f"{refs.model_accuracy_mean:.3f}")] + [Cell("")] * (width - 6)]
    note = {"intervention": "Declared methods (their fit returns reviewed intervention forms; scoring runs "
                            "harness code only) that attempt WRITE and INTERCHANGE, ranked by the headline (mean "
                            "of length-standardised WRITE and INTERCHANGE IIA); `ar only` and `ni only` are the "
                            "sub-headlines over one decoder variant. " + READS_MARK_NOTE,
            "open": "Open methods (their own code runs at scoring, so a re-encoder needs no hypothesis to climb "
                    "here), ranked by the same headline; never compared with the hypothesis board. "
                    "`reencode-distil` (hypothesis `none`) shows what needs no hypothesis. " + READS_MARK_NOTE,
            "read": "Every method, ranked by READ sequence accuracy. Model accuracy (the models' own exact match) "
                    "is not a ceiling: a probe can exceed it."}[board]
    headers = board_headers(board)
    minor_names = set(MINOR_COLUMNS) | {c.header for c in BOARD_COLUMNS if c.minor}
    phone_names = set(PHONE_COLUMNS) | {c.header for c in BOARD_COLUMNS if c.phone}
    minor = tuple(i for i, h in enumerate(headers) if h in minor_names)
    phone = tuple(i for i, h in enumerate(headers) if h in phone_names)
    return Table(f"board-{board}", f"{BOARD_TITLE[board]} ({BOARD_SCORE[board]})", headers,
                 [_board_cells(r, board) for r in members], [r.row_id for r in members], foot, note, minor, phone)


def _relative(value: float | None) -> Cell:
    return Cell(MISSING, "") if value is None else Cell(f"{value:.3g}×", value)


def pareto_table(rows: list[Row]) -> Table:
    """Each headline row's size relative to the model beside its headline; the Pareto-optimal rows named."""
    members = [r for b in CAUSAL for r in board_rows(rows, b)]
    cols = _columns(members)
    body = [[Cell(r.method), Cell(BOARD_TITLE[r.causal_board or ""].split(" (")[0]), _relative(r.relative_size_overall),
             _stat_cell(r.headline), Cell("yes" if r.pareto else "")]
            + [_relative(r.relative_size.get(v, {}).get(n)) for v, n in cols] for r in members]
    front = {b: [r.method for r in board_rows(rows, b) if r.pareto] for b in CAUSAL}
    named = "; ".join(f"{BOARD_TITLE[b].split(' (')[0].lower()}: {', '.join(m) or 'none'}" for b, m in front.items())
    return Table("pareto", "Size and success (size relative to the model's weights)",
                 ["method", "board", "size / model", "headline", "Pareto-optimal"] + [f"size N={n} {v}" for v, n in cols],
                 body, [r.row_id for r in members],
                 note="Size: a declared method's exact tensor bytes, or the lzma bytes of what an open method's scoring "
                      "receives, over the model's weight bytes (mean over the core models). Pareto-optimal: no other "
                      f"complete row on the same board is at most as large and at least as good. Pareto-optimal rows: "
                      f"{named}.")


def _columns(rows: list[Row]) -> list[tuple[str, str]]:
    return [(v, n) for v in VARIANT_ORDER for n in sizes_of(rows)]


def _track_cell(row: Row, track: str, variant: str, n: str) -> Cell:
    s = row.cells[track].get(variant, {}).get(n)
    return Cell(cell_text(row, track, variant, n), "" if s is None else s.mean)  # "not attempted" sorts last


def _reference_row(label: str, table: dict[str, dict[str, Stat | None]], cols: list[tuple[str, str]]) -> list[Cell]:
    return [Cell(label)] + [_stat_cell(table.get(v, {}).get(n)) for v, n in cols]


def track_table(rows: list[Row], track: str, refs: References) -> Table:
    """A track's metric per (variant, N), mean ± std over seeds, with the reference row under it."""
    cols = _columns(rows)
    if track == "read":
        foot = [_reference_row("model accuracy (not a ceiling)", refs.model_accuracy, cols)]
    else:
        foot = [_reference_row("identity floor", refs.identity.get(track, {}), cols)]
    body = [[Cell(_marked(r) if track == "interchange" else r.method)] + [_track_cell(r, track, v, n) for v, n in cols]
            for r in rows]
    return Table(f"track-{track}", f"{TRACK_LABEL[track]} (mean ± std over seeds)",
                 ["method"] + [f"N={n} {v}" for v, n in cols], body, [r.row_id for r in rows], foot,
                 READS_MARK_NOTE if track == "interchange" else "")


def native_interchange_table(rows: list[Row], refs: References) -> Table:
    """INTERCHANGE for the rows whose interchange swaps without reading (issue 29 item 5): the
    comparison of native interventions, apart from read-and-rewrite ones."""
    native = [r for r in rows if "interchange" in r.tracks_attempted and r.interchange_reads is False]
    table = track_table(native, "interchange", refs)
    return Table("track-interchange-native", "INTERCHANGE IIA, native swaps only (mean ± std over seeds)",
                 table.headers, table.body, table.row_ids, table.foot,
                 "Rows whose interchange does not call their own read (a declared swap form, or an open method "
                 "that says so in method.toml).")


def size_table(rows: list[Row]) -> Table:
    """Method size per (variant, N): the paper's argument is how small a hypothesis suffices."""
    cols = _columns(rows)
    body = [[Cell(r.method)] + [_count(r.method_size.get(v, {}).get(n)) for v, n in cols] for r in rows]
    return Table("method-size", "Method size (learned scalars in the fitted method, mean over seeds)",
                 ["method"] + [f"N={n} {v}" for v, n in cols], body, [r.row_id for r in rows],
                 note="`–`: the record does not state its method size (records made before it was recorded).")


def _count(value: float | None) -> Cell:
    return Cell(MISSING, "") if value is None else Cell(f"{value:,.0f}", value)


def length_table(rows: list[Row], track: str, refs: References) -> Table:
    """A track's success per sequence length, mean over the core cells, with the floors under it."""
    members = [r for r in rows if track in r.tracks_attempted]
    body = [[Cell(r.method)] + [_number(r.by_length.get(track, {}).get(n), ".3f") for n in LENGTHS] for r in members]
    foot = []
    if track != "read":
        overall = refs.identity_mean.get(track)
        label = "identity floor" + ("" if overall is None else f" (all lengths: {overall:.3f})")
        foot.append([Cell(label)] + [_number(_identity_at(refs, track, n), ".3f") for n in LENGTHS])
        foot.append([Cell("kept cases per model")] + [_number(refs.kept_by_length.get(track, {}).get(n), ",.0f")
                                                       for n in LENGTHS])
    return Table(f"by-length-{track}", f"{TRACK_LABEL[track]} by sequence length (mean over the core models)",
                 ["method"] + [f"L={n}" for n in LENGTHS], body, [r.row_id for r in members], foot)


def position_table(rows: list[Row], track: str) -> Table | None:
    """A track's rate by position p (0-based), per method and stratum; None when no record has it.

    The onion predicts later positions are harder (they sit at smaller magnitudes); a linear
    code with one subspace per position predicts no such slope."""
    body, ids = [], []
    for r in rows:
        for stratum, rates in r.by_position.get(track, {}).items():
            body.append([Cell(r.method), Cell(stratum)] + [_number(rates.get(p), ".3f") for p in POSITIONS])
            ids.append(f"{r.row_id}/{stratum}")
    if not body:
        return None
    return Table(f"by-position-{track}", f"{POSITION_TRACKS[track]} by position (mean over each stratum's seeds)",
                 ["method", "stratum"] + [f"p={int(p) + 1}" for p in POSITIONS], body, ids)


def _identity_at(refs: References, track: str, length: str) -> float | None:
    """The identity floor at one length: recorded, or 0 when the floor is 0 over all lengths (a mean of
    success rates is 0 only when every length's is; WRITE's floor is 0 by construction)."""
    recorded = refs.identity_by_length.get(track, {}).get(length)
    if recorded is None and refs.identity_mean.get(track) == 0.0:
        return 0.0
    return recorded


def other_tables(rows: list[Row], shown: frozenset[str] = frozenset()) -> list[Table]:
    """One table per (architecture, tier) group and track, columns by model family (seeds averaged).
    `shown`: families already in the calibration section, left out here (each model is shown once)."""
    tables = []
    for label in sorted({g for r in rows for g in r.others}):
        members = [r for r in rows if label in r.others]
        for track in TRACK_METRIC:
            families = sorted({f for r in members for f in r.others[label][track]} - shown)
            if not families:
                continue
            body = [[Cell(r.method)] + [_other_cell(r, label, track, f) for f in families] for r in members]
            tables.append(Table(f"group-{_slug(label)}-{track}", f"{label}: {TRACK_LABEL[track]}",
                                ["method"] + families, body, [r.row_id for r in members]))
    return tables


def _other_cell(row: Row, label: str, track: str, fam: str) -> Cell:
    if track not in row.tracks_attempted:
        return Cell("not attempted")
    return _stat_cell(row.others[label][track].get(fam))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


CALIBRATION_TITLE = "Calibration (models whose code is known by construction)"
CALIBRATION_NOTE = (
    "Models whose code is known by construction (`benchmark/zoo/calibration.py`): `onion_coded` stores every "
    "position in one subspace by magnitude, `linear_coded` each position in its own rotated subspace, "
    "`hybrid_coded` positions 0-3 linearly and 4-8 as an onion. The expected outcomes were stated before scoring; "
    "the right hypothesis must win on its own model and the wrong one must not. Winning here does not mean a "
    "method works on trained models: that is what the zoo measures. Not part of the boards or the headline. A "
    "`FAIL` is a finding about the method (or the harness), never a reason to loosen the expectation; "
    "docs/PROTOCOL.md §7 gives each one's cause.")


def calibration_tables(cal: Calibration) -> list[Table]:
    """The expectations with their results, then each method on each calibration model (expectations marked)."""
    if not cal.records:
        return []
    cols = [(m, t) for m in cal.models for t in TRACK_METRIC]
    body = [[Cell(method)] + [_calibration_cell(cal, method, m, t) for m, t in cols] for method in cal.methods]
    checks = Table("calibration-expectations", f"Calibration: expected outcomes ({cal.summary()})",
                   ["method", "model", "measure", "expected", "measured", "result", "why"],
                   [_check_cells(c) for c in cal.checks], [_check_id(c) for c in cal.checks], note=CALIBRATION_NOTE)
    matrix = Table("calibration-matrix", "Calibration: every method on every calibration model",
                   ["method"] + [f"{m} {t.upper()}" for m, t in cols], body, [row_id(m) for m in cal.methods],
                   note="READ: sequence accuracy; WRITE, INTERCHANGE: IIA; each expectation next to its measurement.")
    return [checks, matrix]


def _calibration_cell(cal: Calibration, method: str, model: str, track: str) -> Cell:
    """The measured value, with every expectation about it: '0.997 (expected >= 0.95: pass)'."""
    rec = cal.records.get((method, model))
    if rec is None:
        return Cell(MISSING, "")
    if rec["status"] != "ok":
        return Cell("cell failed", "")
    metrics = rec["metrics"].get(track)
    if metrics is None:
        return Cell("not attempted", "")
    value = metrics[TRACK_METRIC[track]]
    parts = [f"{value:.3f}"]
    for c in cal.checks_for(method, model, track):
        verdict = f"(expected {c.expectation.bound}: {c.result})"
        if c.expectation.lengths:
            parts.append(f"L {_lengths(c)}: {c.measured_text} {verdict}")
        else:
            parts[0] += f" {verdict}"
    return Cell("; ".join(parts), value)


def _lengths(c: Check) -> str:
    n = c.expectation.lengths
    return str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"


def _check_cells(c: Check) -> list[Cell]:
    e = c.expectation
    metric = TRACK_LABEL[e.track] if TRACK_METRIC[e.track] == e.metric else f"{e.track.upper()} {e.metric}"
    measure = metric + (f", L = {_lengths(c)}" if e.lengths else "")
    result = Cell(c.result, 0 if c.result == PASS else 1)
    return [Cell(e.method), Cell(e.model), Cell(measure), Cell(e.bound),
            Cell(c.measured_text, "" if c.value is None else c.value), result, Cell(e.why)]


def _check_id(c: Check) -> str:
    e = c.expectation
    return f"{row_id(e.method)}/{e.model}/{e.track}" + (f"/L{_lengths(c)}" if e.lengths else "")


def all_tables(rows: list[Row], refs: References, cal: Calibration | None = None) -> dict[str, list[Table]]:
    """Every table by section, in page order."""
    return {"boards": [winner_table(rows)] + [board_table(rows, b, refs) for b in BOARDS] + [pareto_table(rows)],
            "tracks": [track_table(rows, t, refs) for t in TRACK_METRIC] + [native_interchange_table(rows, refs)]
            + [size_table(rows)],
            "lengths": [length_table(rows, t, refs) for t in TRACK_METRIC]
            + [t for track in POSITION_TRACKS if (t := position_table(rows, track)) is not None],
            "calibration": calibration_tables(cal) if cal is not None else [],
            "others": other_tables(rows, frozenset(family(m) for m in cal.models) if cal is not None else frozenset())}


# --- Markdown ---

def markdown_table(table: Table) -> str:
    lines = [[c.text for c in row] for row in table.body]
    lines += [[f"*{c.text}*" if c.text else "" for c in row] for row in table.foot]
    text = tabulate(lines, headers=table.headers, tablefmt="github", disable_numparse=True)
    return f"### {table.title}\n\n" + (f"{table.note}\n\n" if table.note else "") + text + "\n"


def render_markdown(rows: list[Row], refs: References, notes: dict[str, list[str]] | None = None,
                    cal: Calibration | None = None) -> str:
    """LEADERBOARD.md."""
    tables = all_tables(rows, refs, cal)
    parts = [f"# onionbench leaderboard (benchmark v{BENCHMARK_VERSION})", "",
             "Generated by `onionbench leaderboard` from `leaderboard/results/`; do not edit by hand.", "",
             "## How to read this", ""] + [f"- {line}" for line in HOW_TO_READ] + [""]
    sections = {"boards": "Boards", "tracks": "Per track (GRU core tier)",
                "lengths": "Per sequence length (GRU core tier)", "calibration": CALIBRATION_TITLE,
                "others": "Other tiers and architectures"}
    for key, title in sections.items():
        if tables[key]:
            parts += [f"## {title}", ""] + [markdown_table(t) for t in tables[key]]
    return "\n".join(parts + _notes_markdown(notes or {}))


def _notes_markdown(notes: dict[str, list[str]]) -> list[str]:
    text = {"unpinned_records": "Records on a registry model with other weights than the pinned ones "
                                "(shown under custom models, not counted on the boards)",
            "dirty_records": "Records made from a harness with uncommitted changes (`-dirty`); re-score them "
                             "from a clean commit"}
    out = []
    for key, names in notes.items():
        if names:
            out += [f"## {text[key]}", "", ", ".join(f"`{n}`" for n in names), ""]
    return out


def render_readme_block(rows: list[Row]) -> str:
    """The short tables embedded in README.md: the top of both boards."""
    parts = []
    for board in BOARDS:
        top = [[rank_text(r, board), r.method, r.hypothesis, _stat_cell(r.score(board), interval=True).text,
                f"{r.core_models_scored}/{r.core_models_total}"] for r in board_rows(rows, board)[:8]]
        headers = ["rank", "method", "hypothesis", board_headers(board)[5], "core models"]
        parts += [f"**{BOARD_TITLE[board]}** ({BOARD_SCORE[board]}, GRU core tier)", "",
                  tabulate(top, headers=headers, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts) + "\nFull tables: [leaderboard/LEADERBOARD.md](leaderboard/LEADERBOARD.md), " \
                              "page: `leaderboard/index.html`.\n"
