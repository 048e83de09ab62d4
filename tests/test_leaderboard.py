"""Leaderboard: ranking rules, paired ties, refusals, freshness of the committed artifacts, the page in a browser.

The rule tests build their records here (a minimal record, or committed records edited and
re-sealed) and pass their own registry, so they do not depend on the zoo's current state.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark.board.artifacts import build, replace_readme_block
from benchmark.board.leaderboard import (
    T975,
    TEST_LENGTH_COUNTS,
    board_rows,
    build_rows,
    load_records,
    rank_text,
    standardised,
    stat,
    track_value,
    winner_matrix,
)
from benchmark.board.stats import paired_difference
from benchmark.errors import OnionbenchError
from benchmark.records import seal
from benchmark.zoo.calibration import EXPECTATIONS, LINEAR, MEMBER_NAMES, ONION
from tests.browser import CHROMEDRIVER, CHROMIUM, make_driver

ROOT = Path(__file__).parent.parent
BOARD = ROOT / "leaderboard"
SIZES, VARIANTS, SEEDS = (48, 64, 128, 256), ("ar", "ni"), (0, 1, 2)
CORE = [f"gru-h{n}-{v}-s{s}" for n in SIZES for v in VARIANTS for s in SEEDS]


def _sha(name: str) -> str:
    """A made-up but stable weight hash per model name."""
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


REGISTRY = {name: SimpleNamespace(tier="core", sha256=_sha(name), architecture="gru") for name in CORE}


def _record(method: str, model: str, n: int, variant: str, seed: int, read: float, write: float | None,
            swap: float | None, **extra) -> dict:
    """A minimal record with the given headline metrics (for aggregation tests)."""
    rec = {
        "record_version": 1, "benchmark_version": "1", "scoring_version": "1", "harness_commit": "x", "status": "ok",
        "error": None, "method": {"name": method, "hypothesis": "other", "baseline": False, "source_sha256": "0" * 64,
                                  "params": {}, "entry": "m.py:M", "url": "u", "authors": []},
        "model": {"name": model, "sha256": _sha(model), "hidden_size": n, "variant": variant, "seed": seed},
        "split": {"name": "test", "sha256": "2" * 64, "size": 5000}, "plan_seed": 2024, "seed": 0,
        "environment": {}, "hardware": "h", "fit": {"seconds": 1.0, "sequences_drawn": 10, "budget": 100},
        "eval_seconds": 1.0, "tracks_attempted": ["read"] + (["write", "interchange"] if write is not None else []),
        "metrics": {"read": {"token_accuracy": read, "sequence_accuracy": read},
                    "write": None if write is None else {"iia": write, "cause": write, "isolate": 1.0,
                                                         "kept_fraction": 1.0},
                    "interchange": None if swap is None else {"iia": swap, "kept_fraction": 1.0},
                    "consistency": None},
        "by_length": {"read": {str(k): read for k in range(2, 10)}} | (
            {} if swap is None else {"interchange": {str(k): swap for k in range(2, 10)}}),
        "bounds": {"oracle": {"read_sequence_accuracy": 0.95, "write_iia": 1.0, "interchange_iia": 1.0},
                   "identity": {"write_iia": 0.0, "interchange_iia": 0.05}},
        "outcomes_sha256": "3" * 64, "method_kind": "declared"}  # declared: on the hypothesis board
    return seal({**rec, **extra})


def _core(method: str, read: float, write: float | None, swap: float | None, spread: float = 0.0) -> list[dict]:
    return [_record(method, f"gru-h{n}-{v}-s{s}", n, v, s, read + spread * s, write, swap)
            for n in SIZES for v in VARIANTS for s in SEEDS]


def _cells(method: str, score) -> list[dict]:
    """Core records whose three tracks all equal score(stratum index, seed) (so the cell score does too)."""
    out = []
    for k, (n, v) in enumerate((n, v) for n in SIZES for v in VARIANTS):
        for s in SEEDS:
            x = score(k, s)
            out.append(_record(method, f"gru-h{n}-{v}-s{s}", n, v, s, x, x, x))
    return out


def _rows(records: list[dict]) -> dict:
    return {r.method: r for r in build_rows(records, REGISTRY)}


def _reseal(rec: dict, **changes) -> dict:
    return seal({**{k: v for k, v in rec.items() if k != "record_sha256"}, **changes})


def test_stat_is_mean_sample_std_and_t_interval():
    s = stat([0.1, 0.2, 0.3])
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1) and s.n == 3
    assert s.ci95 == pytest.approx(4.303 * 0.1 / 3**0.5, abs=1e-6)
    assert stat([0.5]).std is None


def test_paired_difference_is_stratified_with_welch_degrees_of_freedom():
    same = paired_difference({("a",): [0.1, 0.1, 0.1], ("b",): [0.3, 0.3, 0.3]})
    assert same.mean == pytest.approx(0.2) and same.ci95 == 0.0 and not same.tied
    d = paired_difference({("a",): [0.0, 0.2, 0.4], ("b",): [0.1, 0.1, 0.1]})
    # only stratum a varies: var = 0.04 / 3 / 2**2, df = 2
    assert d.mean == pytest.approx(0.15) and d.df == 2
    assert d.ci95 == pytest.approx(4.303 * (0.04 / 3 / 4) ** 0.5, abs=1e-6) and d.tied


def test_headline_is_write_and_interchange_only_and_ranks_by_it():
    """READ is its own board: a row that reads far worse but intervenes a little better leads."""
    by = _rows(_core("reader", 0.9, None, None) + _core("writer", 0.9, 0.6, 0.6, spread=0.05)
               + _core("close", 0.1, 0.62, 0.6, spread=0.05))
    assert by["close"].headline.mean == pytest.approx((0.62 + 0.6) / 2)
    assert by["reader"].cells["write"]["ar"]["48"] is None and by["reader"].tracks_attempted == ["read"]
    assert by["close"].rank == 1 and by["writer"].rank == 2 and by["writer"].core_models_scored == 24
    assert by["close"].headline_by_variant["ar"].mean == pytest.approx(0.61)


def test_the_headline_interval_is_the_stratified_formula_on_the_rows_values():
    """Strata weigh equally; the interval is t(df) * sqrt(sum of the strata's variances of the mean) / K."""
    import math

    row = _rows(_cells("alpha", lambda k, s: 0.1 * k + 0.02 * s * s))["alpha"]
    strata = [[0.1 * k + 0.02 * s * s for s in SEEDS] for k in range(len(SIZES) * len(VARIANTS))]
    variances = [statistics.variance(v) / len(v) for v in strata]
    k = len(strata)
    df = round(sum(variances) ** 2 / sum(v**2 / 2 for v in variances), 9)  # 16, not 15.99999
    expected = T975[max(d for d in T975 if d <= df)] * math.sqrt(sum(variances)) / k
    assert row.headline.mean == pytest.approx(sum(sum(v) / 3 for v in strata) / k)
    assert row.headline.ci95 == pytest.approx(expected, abs=1e-6)


def test_write_and_interchange_are_standardised_to_the_test_splits_length_mix():
    """A model that keeps mostly short sequences must not look better than its per-length rates."""
    rec = _record("m", "gru-h48-ar-s0", 48, "ar", 0, 0.5, 0.5, 0.5)
    rec["by_length"]["interchange"] = {"2": 1.0, "9": 0.0}  # only lengths 2 and 9 kept
    weight2, weight9 = TEST_LENGTH_COUNTS["2"], TEST_LENGTH_COUNTS["9"]
    assert standardised(rec, "interchange") == pytest.approx(weight2 / (weight2 + weight9))
    assert standardised(rec, "write") is None  # no per-length rates: the raw rate is used
    assert track_value(rec, "write") == 0.5


def test_test_length_counts_are_the_shipped_splits():
    from collections import Counter

    from benchmark.data import load_split

    counts = Counter(str(n) for n in load_split("test").lengths.tolist())
    assert dict(sorted(counts.items())) == TEST_LENGTH_COUNTS


def test_the_winner_matrix_names_who_wins_each_stratum_and_ties():
    """alpha wins every ar stratum clearly; on ni, beta is ahead by a margin its models do not support."""
    alpha = _cells("alpha", lambda k, s: 0.8 if VARIANTS[k % 2] == "ar" else 0.3 + 0.01 * s)
    beta = _cells("beta", lambda k, s: 0.2 if VARIANTS[k % 2] == "ar" else 0.3 + (0.2 if s == 0 else -0.08))
    rows = build_rows(alpha + beta, REGISTRY)
    matrix = winner_matrix(rows)
    assert all(w.best == "alpha" and not w.tied for w in matrix["ar"].values())
    assert all(w.tied for w in matrix["ni"].values()), matrix["ni"]
    md = build(alpha + beta, REGISTRY)["LEADERBOARD.md"]
    first = md.split("## Boards")[1].split("###")[1]
    assert first.startswith(" Who wins where") and "tie: " in first and "vs beta" in first


def _kind(records: list[dict], **fields) -> list[dict]:
    return [_reseal(r, **fields) for r in records]


def test_open_methods_are_ranked_on_the_open_board_never_on_the_hypothesis_board():
    """A re-encoder (open: its code runs at scoring) beats every declared row, yet the hypothesis
    board and the winner matrix rank the declared rows only (issue 28)."""
    copier = _kind(_core("copier", 0.99, 0.99, 0.99), method_kind="open", interchange_reads=True)
    onion = _kind(_core("onion", 0.9, 0.8, 0.7), interchange_reads=True)
    das = _kind(_core("das", 0.5, 0.4, 0.3), interchange_reads=False)
    rows = {r.method: r for r in build_rows(copier + onion + das, REGISTRY)}
    assert [r.method for r in board_rows(list(rows.values()), "intervention")] == ["onion", "das"]
    assert [r.method for r in board_rows(list(rows.values()), "open")] == ["copier"]
    assert rows["copier"].rank == 1 and rows["onion"].rank == 1 and rows["das"].rank == 2
    assert all(w.best == "onion" for by_n in winner_matrix(list(rows.values())).values() for w in by_n.values())
    board = json.loads(build(copier + onion + das, REGISTRY)["leaderboard.json"])
    kinds = {r["method"]: r["method_kind"] for r in board["rows"]}
    assert kinds == {"copier": "open", "onion": "declared", "das": "declared"}


def test_mutation_without_the_kind_split_the_copy_tops_the_hypothesis_board(monkeypatch):
    """The defence above is `_boards` reading `method_kind`: every row treated as declared puts the copy first."""
    import benchmark.board.leaderboard as lb

    monkeypatch.setattr(lb, "method_kind", lambda recs: "declared")
    copier = _kind(_core("copier", 0.99, 0.99, 0.99), method_kind="open")
    rows = build_rows(copier + _core("onion", 0.9, 0.8, 0.7), REGISTRY)
    assert [r.method for r in board_rows(rows, "intervention")][0] == "copier"


def _sized(records: list[dict], ratio: float) -> list[dict]:
    return [_reseal(r, fit={**r["fit"], "declaration": {"forms": {}, "parameters": 1, "bytes": int(1000 * ratio)},
                            "description_length": {"bytes": 1, "model_bytes": 1000, "ratio": 0.001}})
            for r in records]


def test_the_pareto_view_names_rows_no_smaller_row_beats():
    """small-good dominates big-worse; big-best is better than both, so it is on the front too."""
    rows = {r.method: r for r in build_rows(_sized(_core("small-good", 0.9, 0.7, 0.6), 0.1)
                                            + _sized(_core("big-worse", 0.9, 0.5, 0.4), 0.5)
                                            + _sized(_core("big-best", 0.9, 0.9, 0.9), 2.0), REGISTRY)}
    assert rows["small-good"].pareto and rows["big-best"].pareto and not rows["big-worse"].pareto
    assert rows["big-worse"].relative_size_overall == pytest.approx(0.5)
    md = build(_sized(_core("small-good", 0.9, 0.7, 0.6), 0.1) + _sized(_core("big-worse", 0.9, 0.5, 0.4), 0.5),
               REGISTRY)["LEADERBOARD.md"]
    assert "Pareto-optimal rows: hypothesis board: small-good;" in md


def test_the_plotted_front_is_the_hypothesis_boards_marked_rows_and_ignores_open_rows():
    """The page's front line and LEADERBOARD.md's Pareto column must agree: an open row (another
    board, never compared) or a stale one may not bend the hypothesis board's front."""
    from benchmark.board import page

    small = _kind(_sized(_core("small-good", 0.9, 0.7, 0.6), 0.1), method_kind="declared")
    big = _kind(_sized(_core("big-best", 0.9, 0.9, 0.9), 2.0), method_kind="declared")
    copier = _kind(_sized(_core("copier", 0.99, 0.99, 0.99), 0.05), method_kind="open")
    rows = build_rows(small + big + copier, REGISTRY)
    marked = sorted((r.relative_size_overall, r.headline.mean) for r in rows
                    if r.pareto and r.causal_board == "intervention")
    members = [r for r in rows if r.causal_board is not None]
    front = page._front(page._pareto_points(members, "headline", None))
    assert [round(s, 6) for s, _ in front] == [round(s, 6) for s, _ in marked] == [0.1, 2.0]


def test_interchange_by_read_is_marked_and_the_native_swaps_have_their_own_table():
    onion = _kind(_core("onion", 0.9, 0.8, 0.7), interchange_reads=True)
    das = _kind(_core("das", 0.5, 0.4, 0.3), interchange_reads=False)
    md = build(onion + das, REGISTRY)["LEADERBOARD.md"]
    assert "| onion† " in md.split("### INTERCHANGE IIA (mean")[1].split("###")[0]
    native = md.split("### INTERCHANGE IIA, native swaps only")[1].split("###")[0]
    assert "| das " in native and "onion" not in native


def test_a_row_whose_method_changed_since_scoring_is_stale_and_unranked():
    """Records made from source "0"*64; the method folder now hashes otherwise (issue 33 item 6)."""
    records = _core("alpha", 0.9, 0.9, 0.9) + _core("beta", 0.5, 0.5, 0.5)
    rows = {r.method: r for r in build_rows(records, REGISTRY, sources={"alpha": "1" * 64, "beta": "0" * 64})}
    assert rows["alpha"].stale and rows["alpha"].rank is None and rank_text(rows["alpha"]) == "stale"
    assert rows["beta"].rank == 1 and not rows["beta"].stale
    unflagged = {r.method: r for r in build_rows(records, REGISTRY)}  # mutation: no sources, no flag
    assert unflagged["alpha"].rank == 1


def test_a_broken_method_folder_does_not_stop_the_leaderboard_build(tmp_path):
    """A submission whose method.toml does not parse used to abort `onionbench leaderboard` (the
    stale check called discover(), which raises): one bad folder hid every row. Now it is named
    in one line and the board is built from the records."""
    from benchmark.harness.submission import source_hashes

    (tmp_path / "baselines").mkdir()
    for name, toml in (("good", GOOD_TOML), ("broken", "name = [unclosed")):
        folder = tmp_path / "submissions" / name
        folder.mkdir(parents=True)
        (folder / "method.toml").write_text(toml)
        (folder / "method.py").write_text("class M:\n    pass\n")
    sources, errors = source_hashes(tmp_path)
    assert list(sources) == ["good"] and len(errors) == 1 and "broken" in errors[0] and "\n" not in errors[0]
    rows = {r.method: r for r in build_rows(_core("good", 0.9, 0.9, 0.9), REGISTRY, sources=sources)}
    assert rows["good"].stale  # its records were made from other source ("0" * 64)


GOOD_TOML = """name = "good"
description = "a test method"
authors = ["t"]
url = "https://example.org"
hypothesis = "linear"
entry = "method.py:M"
"""


def test_a_track_added_to_the_catalogue_reaches_the_leaderboard(monkeypatch):
    """Issue 32 item 1: a new track is one module plus one catalogue line; nothing in benchmark/board
    names it, yet its table is on LEADERBOARD.md and its cells in the JSON."""
    from benchmark import catalogue

    monkeypatch.setitem(catalogue.CATALOGUE, "probe-x", catalogue.TrackInfo("probe-x", "rate", ("rate",),
                                                                            "PROBE-X rate"))
    records = [_reseal(r, metrics={**r["metrics"], "probe-x": {"rate": 0.25}},
                       tracks_attempted=[*r["tracks_attempted"], "probe-x"]) for r in _core("alpha", 0.9, 0.8, 0.7)]
    md = build(records, REGISTRY)["LEADERBOARD.md"]
    assert "### PROBE-X rate (mean ± std over seeds)" in md and "0.250" in md.split("### PROBE-X rate (mean")[1]
    row = json.loads(build(records, REGISTRY)["leaderboard.json"])["rows"][0]
    assert row["cells"]["probe-x"]["ar"]["48"]["mean"] == pytest.approx(0.25)


@pytest.mark.slow  # builds the board three times (keeps `make test-fast` under 4 minutes)
def test_a_board_column_is_one_registry_entry(monkeypatch):
    """Issue 32 item 7, the board-column recipe: one `BoardColumn` entry puts a column on every
    ranked board (Markdown and the page), with its cell from the Row; a laptop-minor column is
    marked hidden on the page. Removing the entry removes the column (the mutation)."""
    from benchmark.board import render

    column = render.BoardColumn("method chars", lambda r: render.Cell(str(len(r.method)), len(r.method)), minor=True)
    monkeypatch.setattr(render, "BOARD_COLUMNS", [*render.BOARD_COLUMNS, column])
    records = _core("alpha", 0.9, 0.8, 0.7)
    out = build(records, REGISTRY)
    board = out["LEADERBOARD.md"].split("\n\n")
    table = next(t for t in board if "| rank" in t and "method chars" in t)
    assert table.splitlines()[2].rstrip(" |").endswith("5")  # "alpha": 5 characters, the last column
    assert "method chars" in out["index.html"]
    assert render.board_headers("read")[-1] == "method chars"
    monkeypatch.setattr(render, "BOARD_COLUMNS", [c for c in render.BOARD_COLUMNS if c is not column])
    assert "method chars" not in build(records, REGISTRY)["LEADERBOARD.md"]


def test_the_catalogue_names_exactly_the_tracks_the_harness_scores():
    from benchmark.catalogue import CATALOGUE
    from benchmark.harness.tracks import TRACKS

    assert list(CATALOGUE) == list(TRACKS)
    assert all(TRACKS[n].metric == t.metric and TRACKS[n].metric_names == t.metric_names for n, t in CATALOGUE.items())


def test_incomplete_row_is_unranked():
    missing = [r for r in _core("partial", 0.9, 0.9, 0.9) if r["model"]["name"] != "gru-h256-ni-s2"]
    rows = build_rows(missing + _core("full", 0.5, 0.5, 0.5) + _core("low", 0.2, 0.2, 0.2), REGISTRY)
    by = {r.method: r for r in rows}
    assert not by["partial"].complete and by["partial"].core_models_scored == 23
    assert by["partial"].headline.mean == pytest.approx(0.9)  # shown over the cells it has ...
    assert by["partial"].rank is None and rank_text(by["partial"]) == "incomplete"  # ... but not ranked
    assert by["full"].rank == 1 and by["low"].rank == 2
    assert [r.method for r in board_rows(rows, "intervention")] == ["full", "low", "partial"]
    md = build(missing + _core("full", 0.5, 0.5, 0.5), REGISTRY)["LEADERBOARD.md"]
    assert "| incomplete | partial@v1" in md and "23/24" in md


def test_failed_cell_counts_zero_and_marks_the_row():
    """On committed onion records: one cell fails; its seed's mean drops by that cell's score / 8."""
    records = [json.loads(p.read_text()) for p in sorted((BOARD / "results" / "onion").glob("*.json"))]
    records = [r for r in records if r["model"].get("tier") == "core"]  # not the LSTM or calibration cells
    if len(records) < 24:
        pytest.skip("the committed onion records do not cover the core tier")
    registry = {r["model"]["name"]: SimpleNamespace(tier="core", sha256=r["model"]["sha256"]) for r in records}
    before = _rows_with(records, registry)["onion"]
    victim = next(r for r in records if r["model"]["name"] == "gru-h64-ar-s1")
    failed = _reseal(victim, status="failed", error="RuntimeError: out of memory", tracks_attempted=[],
                     metrics=dict.fromkeys(victim["metrics"]), by_length={}, outcomes_sha256=None)
    after = _rows_with([failed if r is victim else r for r in records], registry)["onion"]
    lost = sum(standardised(victim, t) for t in ("write", "interchange")) / 2
    assert after.headline.mean == pytest.approx(before.headline.mean - lost / 8 / 3, abs=2e-6)
    assert after.failed_cells == ["gru-h64-ar-s1"] and after.complete and after.rank == 1
    assert after.cells["write"]["ar"]["64"].mean < before.cells["write"]["ar"]["64"].mean
    assert after.tracks_attempted == ["read", "write", "interchange"]  # from the successful cells


def _rows_with(records: list[dict], registry: dict) -> dict:
    return {r.method: r for r in build_rows(records, registry)}


def test_read_only_method_is_on_the_read_board_only():
    records = _core("probe", 0.95, None, None) + _core("writer", 0.6, 0.6, 0.6)
    rows = build_rows(records, REGISTRY)
    assert [r.method for r in board_rows(rows, "intervention")] == ["writer"]
    assert [r.method for r in board_rows(rows, "read")] == ["probe", "writer"]
    probe = next(r for r in rows if r.method == "probe")
    assert probe.headline is None and probe.standings["read"].rank == 1 and "intervention" not in probe.standings
    boards = json.loads(build(records, REGISTRY)["leaderboard.json"])["boards"]
    assert boards == {"intervention": ["writer@v1"], "open": [], "read": ["probe@v1", "writer@v1"]}


def _overlap(a, b) -> bool:
    """The rule this replaces: 95 % intervals over seeds overlap."""
    return a.mean + a.ci95 >= b.mean - b.ci95 and a.mean - a.ci95 <= b.mean + b.ci95


def test_paired_test_separates_rows_that_overlapping_intervals_call_tied():
    """A shared seed effect (seed 2 models are harder for everyone) widens both intervals, but the row
    is 0.02 below the leader on every single model."""
    seed_effect = {0: 0.7, 1: 0.5, 2: 0.3}
    by = _rows(_cells("leader", lambda k, s: seed_effect[s]) + _cells("close", lambda k, s: seed_effect[s] - 0.02))
    assert _overlap(by["close"].headline, by["leader"].headline)  # overlap would say "tied"
    diff = by["close"].standings["intervention"].vs_leader
    assert diff.mean == pytest.approx(-0.02) and not diff.tied
    assert rank_text(by["close"]) == "2"


def test_paired_test_ties_rows_whose_intervals_do_not_overlap():
    """Per seed index the row is always 0.05 above the other (intervals of width 0, no overlap), but on
    each (N, variant) its models disagree by ±0.2 between seeds: the same models give no evidence."""
    by = _rows(_cells("steady", lambda k, s: 0.5)
               + _cells("noisy", lambda k, s: 0.55 + (0.2 if (k + s) % 2 == 0 else -0.2)))
    assert by["noisy"].rank == 1
    diff = by["steady"].standings["intervention"].vs_leader
    assert diff.mean == pytest.approx(-0.05) and diff.tied and rank_text(by["steady"]) == "=1"


@pytest.mark.parametrize("field, change", [
    ("scoring_version", {"scoring_version": "0"}),
    ("plan_seed", {"plan_seed": 7}),
    ("fit budget", {"fit": {"seconds": 1.0, "sequences_drawn": 10, "budget": 5}}),
])
def test_records_measured_differently_are_refused_by_name(field, change):
    records = _core("alpha", 0.5, 0.5, 0.5) + _core("beta", 0.4, 0.4, 0.4)
    records[3] = _reseal(records[3], **change)
    odd = f"alpha/{records[3]['model']['name']}"
    with pytest.raises(OnionbenchError) as err:
        build(records, REGISTRY)
    text = str(err.value)
    assert f"{field} differs" in text and odd in text and "47 records" in text and "Re-score" in text


def test_mixed_scoring_versions_name_every_odd_record():
    records = _core("alpha", 0.5, 0.5, 0.5)
    records[:2] = [_reseal(r, scoring_version="2") for r in records[:2]]
    with pytest.raises(OnionbenchError, match="scoring_version differs: '2' in alpha/gru-h48-ar-s0, "
                                              "alpha/gru-h48-ar-s1; '1' in 22 records"):
        build_rows(records, REGISTRY)


def test_one_model_with_two_weight_hashes_is_refused():
    records = _core("alpha", 0.5, 0.5, 0.5) + _core("beta", 0.4, 0.4, 0.4)
    records[-1] = _reseal(records[-1], model={**records[-1]["model"], "sha256": "f" * 64})
    with pytest.raises(OnionbenchError, match=r"model gru-h256-ni-s2 has different weights .*ffffffffffff\.\.\. in "
                                              r"beta/gru-h256-ni-s2"):
        build_rows(records, REGISTRY)


def test_only_the_pinned_weights_count_as_core_cells():
    records = _core("alpha", 0.5, 0.5, 0.5)
    records[0] = _reseal(records[0], model={**records[0]["model"], "sha256": "f" * 64})
    artifacts = build(records, REGISTRY)
    alpha = build_rows(records, REGISTRY)[0]
    assert alpha.core_models_scored == 23 and alpha.rank is None
    assert "GRU custom models" in alpha.others and "gru-h48-ar" in alpha.others["GRU custom models"]["read"]
    assert json.loads(artifacts["leaderboard.json"])["unpinned_records"] == ["alpha/gru-h48-ar-s0"]


def test_other_architectures_and_tiers_get_their_own_tables_and_stay_off_the_boards():
    lstm = [_record("alpha", f"lstm-h48-{v}-s{s}", 48, v, s, 0.1, 0.1, 0.1) for v in VARIANTS for s in SEEDS]
    lstm = [_reseal(r, model={**r["model"], "architecture": "lstm", "tier": "lstm"}) for r in lstm]
    calib = _reseal(_record("alpha", "onion-coded-h48", 48, "ni", None, 1.0, 1.0, 1.0),
                    model={"name": "onion-coded-h48", "sha256": "e" * 64, "hidden_size": 48, "variant": "ni",
                           "seed": None, "tier": "calibration"})
    records = _core("alpha", 0.5, 0.5, 0.5) + lstm + [calib]
    alpha = build_rows(records, REGISTRY)[0]
    assert alpha.headline.mean == pytest.approx(0.5) and alpha.core_models_scored == 24
    assert set(alpha.others) == {"LSTM", "GRU calibration tier"}
    assert alpha.others["LSTM"]["write"]["lstm-h48-ar"].mean == pytest.approx(0.1)
    md = build(records, REGISTRY)["LEADERBOARD.md"]
    assert "### LSTM: WRITE IIA" in md and "onion-coded-h48" in md


def test_columns_method_size_length_9_interchange_fit_and_sequences():
    records = [_reseal(r, method_parameters=34 * r["model"]["hidden_size"]) for r in _core("onion", 0.5, 0.5, 0.5)]
    records += _core("old", 0.4, 0.4, 0.4)  # made before method size was recorded
    md = build(records, REGISTRY)["LEADERBOARD.md"]
    onion_line = next(line for line in md.splitlines() if line.startswith("| 1 ") and "onion@v1" in line)
    assert "1,632–8,704" in onion_line and "0.500 ± 0.000" in onion_line and "| 10 " in onion_line
    old_line = next(line for line in md.splitlines() if "old@v1" in line)
    assert "| –  " in old_line
    sizes = md.split("### Method size")[1]
    assert "1,632" in next(line for line in sizes.splitlines() if line.startswith("| onion"))


def test_build_is_pure_and_shows_not_attempted():
    records = _core("reader", 0.9, None, None) + _core("writer", 0.6, 0.6, 0.6)
    a, b = build(records, REGISTRY), build(list(reversed(records)), REGISTRY)
    assert a == b
    assert "not attempted" in a["LEADERBOARD.md"] and "reader@v1" in a["leaderboard.csv"]
    assert json.loads(a["leaderboard.json"])["rows"][0]["row_id"] == "writer@v1"
    assert "model accuracy" in a["LEADERBOARD.md"] and "ceiling" not in a["LEADERBOARD.md"].replace(
        "not a ceiling", "")


def test_invalid_and_edited_records_are_refused_by_name(tmp_path):
    good = _record("m", "gru-h48-ar-s0", 48, "ar", 0, 0.5, 0.5, 0.5, method_parameters=10)
    edited = dict(good, metrics={**good["metrics"], "read": {"token_accuracy": 1.0, "sequence_accuracy": 1.0}})
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "good.json").write_text(json.dumps(good))
    (tmp_path / "m" / "edited.json").write_text(json.dumps(edited))
    (tmp_path / "m" / "broken.json").write_text("{not json")
    records, refused = load_records(tmp_path)
    assert any("edited.json" in r for r in refused) and any("broken.json" in r for r in refused)
    if records:  # the schema in force accepts the minimal record: then the hash is what refuses the edit
        assert any("edited.json" in r and "record_sha256" in r for r in refused)


def test_a_killed_writes_left_over_copy_is_not_a_second_record(tmp_path):
    """A run killed between write_atomic's write and its rename leaves a complete copy of the
    record under a `.tmp-` name. Read as a record, it would duplicate its cell, and the board
    (one record per method and model) would refuse to build; `verify` would count it twice."""
    from benchmark.audit.verify import _row_records
    from benchmark.board.rules import check_comparable

    committed = BOARD / "results" / "onion" / "gru-h48-ar-s0.json"
    (tmp_path / "onion").mkdir()
    shutil.copy(committed, tmp_path / "onion" / committed.name)
    shutil.copy(committed, tmp_path / "onion" / ".tmp-k1ll3d.json")
    assert len(list(tmp_path.rglob("*.json"))) == 2  # the plant is a complete record under another name
    records, refused = load_records(tmp_path)
    assert len(records) == 1 and not refused
    check_comparable(records)  # raises on two records of one cell
    assert len(_row_records(tmp_path, "onion").records) == 1


@pytest.mark.slow
def test_committed_leaderboard_equals_a_fresh_build():
    from benchmark.harness.submission import discover

    records, refused = load_records(BOARD / "results")
    assert not refused, refused
    fresh = build(records, sources={name: spec.source_sha256() for name, spec in discover().items()})  # as the CLI
    assert "| stale |" not in fresh["LEADERBOARD.md"], "a baseline changed since its records: re-score it"
    for name, text in fresh.items():
        if name == "README-block.md":
            readme = (ROOT / "README.md").read_text()
            assert replace_readme_block(readme, text) == readme, "README leaderboard block is stale"
        else:
            assert (BOARD / name).read_text() == text, f"leaderboard/{name} is stale: run `onionbench leaderboard`"


# --- the page in headless Chromium: one page, one test per element ---

def _page_records() -> list[dict]:
    """Three complete rows (one read-only), one incomplete row, and an LSTM group."""
    lstm = [_reseal(r, model={**r["model"], "architecture": "lstm", "tier": "lstm"})
            for r in (_record("alpha", f"lstm-h48-{v}-s0", 48, v, 0, 0.3, 0.3, 0.3) for v in VARIANTS)]
    partial = [r for r in _core("delta", 0.9, 0.9, 0.9) if r["model"]["seed"] != 2]
    return (_core("alpha", 0.9, 0.1, 0.2) + _core("beta", 0.2, 0.8, 0.7, spread=0.02)
            + _core("gamma", 0.5, None, None) + partial + lstm)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    path = tmp_path_factory.mktemp("page") / "index.html"
    path.write_text(build(_page_records(), REGISTRY)["index.html"])
    driver = make_driver()
    driver.get(path.as_uri())
    yield driver
    driver.quit()


def _ids(driver, table: str) -> list[str]:
    return [r.get_attribute("data-row") for r in driver.find_elements("css selector", f"#{table} tbody tr")]


def _column(driver, table: str, index: int) -> list[str]:
    return [r.find_elements("css selector", "td")[index].text
            for r in driver.find_elements("css selector", f"#{table} tbody tr")]


def test_page_has_no_console_errors(page):
    errors = [e for e in page.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors


def test_page_how_to_read_section(page):
    text = page.find_element("css selector", "#how-to-read").text
    assert "Three boards" in text and "paired 95 % interval" in text and "not a ceiling" in text


def test_page_intervention_board_ranks_complete_intervention_rows_only(page):
    assert _ids(page, "board-intervention") == ["beta@v1", "alpha@v1", "delta@v1"]  # gamma reads only
    assert _column(page, "board-intervention", 0) == ["1", "2", "incomplete"]


def test_page_read_board_lists_every_reader(page):
    assert _ids(page, "board-read") == ["alpha@v1", "gamma@v1", "beta@v1", "delta@v1"]
    assert page.find_element("css selector", "#board-read tfoot").text.startswith("model accuracy")


def test_page_board_columns_sort_and_missing_values_sort_last(page):
    headers = page.find_elements("css selector", "#board-read thead th")
    headers[2].click()  # method
    assert _ids(page, "board-read") == ["alpha@v1", "beta@v1", "delta@v1", "gamma@v1"]
    headers[2].click()
    assert _ids(page, "board-read") == ["gamma@v1", "delta@v1", "beta@v1", "alpha@v1"]
    headers[0].click()  # rank: incomplete after the ranked rows
    assert _ids(page, "board-read")[-1] == "delta@v1"


def test_page_per_track_tables_with_plots_and_reference_rows(page):
    for track in ("read", "write", "interchange"):
        assert len(_ids(page, f"track-{track}")) == 4
    assert "identity floor" in page.find_element("css selector", "#track-interchange tfoot").text
    plots = page.find_elements("css selector", "figure.plot[data-track] svg")
    assert len(plots) == 3 and all(p.size["width"] > 300 for p in plots)
    assert len(page.find_elements("css selector", "figure.plot[data-pareto] svg")) == 3  # headline, WRITE, INTERCHANGE


def test_page_per_track_table_sorts_without_moving_the_reference_row(page):
    header = page.find_elements("css selector", "#track-read thead th")[1]  # N=48 ar
    header.click()
    assert _ids(page, "track-read")[0] == "beta@v1"  # 0.2 + spread: lowest
    header.click()
    assert _ids(page, "track-read")[-1] == "beta@v1"
    assert page.find_element("css selector", "#track-read tfoot").text.startswith("model accuracy")


def test_page_method_size_table(page):
    assert _ids(page, "method-size") and set(_column(page, "method-size", 1)) == {"–"}


def test_page_per_length_view(page):
    assert _column(page, "by-length-interchange", 0) == ["beta", "alpha", "delta"]  # gamma reads only
    foot = page.find_element("css selector", "#by-length-interchange tfoot").text
    assert "identity floor (all lengths: 0.050)" in foot and "kept cases per model" in foot
    write_floor = page.find_elements("css selector", "#by-length-write tfoot tr")[0].text
    assert write_floor.split()[-8:] == ["0.000"] * 8  # zero over all lengths: zero at each length


def test_page_other_architectures_have_their_own_tables(page):
    assert _ids(page, "group-lstm-read") == ["alpha@v1"]
    assert "lstm-h48-ar" in page.find_element("css selector", "#group-lstm-read thead").text
    lstm = page.find_element("css selector", 'figure.plot[data-group="LSTM"]').text  # its own plot, apart from the GRU's
    assert "LSTM" in lstm and "alpha" in lstm



def test_page_screenshot(page, tmp_path):
    page.save_screenshot(str(tmp_path / "leaderboard.png"))
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000


# --- the calibration section ---

CALIBRATION_REGISTRY = {**REGISTRY, **{name: SimpleNamespace(tier="calibration", sha256=_sha(name),
                                                            architecture=name.split("-")[0]) for name in MEMBER_NAMES}}


def _calibration_records() -> list[dict]:
    """Core rows for onion and linear-das, plus: onion writes its own model (pass), linear-das misses the
    linear model (FAIL); the other expectations have no record."""
    return (_core("onion", 0.6, 0.6, 0.6) + _core("linear-das", 0.3, 0.3, 0.3)
            + [_record("onion", ONION, 64, "ar", 0, 0.95, 0.99, 0.9),
               _record("linear-das", LINEAR, 64, "ni", 0, 0.3, 0.2, 0.17)])


def test_calibration_section_puts_each_expectation_next_to_its_measurement():
    artifacts = build(_calibration_records(), CALIBRATION_REGISTRY)
    md = artifacts["LEADERBOARD.md"]
    assert "## Calibration (models whose code is known by construction)" in md
    assert f"expected outcomes (1 of {len(EXPECTATIONS)} expectations hold, {len(EXPECTATIONS) - 2} not scored)" in md
    onion = next(line for line in md.splitlines() if [c.strip() for c in line.split("|")[1:3]] == ["onion", ONION])
    assert [c.strip() for c in onion.split("|")[4:7]] == [">= 0.95", "0.990", "pass"]
    assert "0.170 (expected >= 0.95: FAIL)" in md  # the matrix cell of linear-das on the linear model
    checks = json.loads(artifacts["leaderboard.json"])["calibration"]
    assert [c["result"] for c in checks[:2]] == ["pass", "FAIL"] and checks[2]["result"] == "not scored"
    rows = {r.method: r for r in build_rows(_calibration_records(), CALIBRATION_REGISTRY)}
    assert rows["onion"].core_models_scored == 24 and rows["onion"].headline.mean == pytest.approx(0.6)  # not on boards


@pytest.fixture(scope="module")
def calibration_page(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    path = tmp_path_factory.mktemp("calibration") / "index.html"
    path.write_text(build(_calibration_records(), CALIBRATION_REGISTRY)["index.html"])
    driver = make_driver()
    driver.get(path.as_uri())
    yield driver
    driver.quit()


def test_page_calibration_section_shows_expected_and_measured(calibration_page):
    section = calibration_page.find_element("css selector", "#calibration")
    assert "known by construction" in section.text and "not part of the boards" in section.text.lower()
    assert _ids(calibration_page, "calibration-matrix") == ["linear-das@v1", "onion@v1"]
    assert _column(calibration_page, "calibration-matrix", 2)[1] == "0.990 (expected >= 0.95: pass)"  # onion WRITE
    results = _column(calibration_page, "calibration-expectations", 5)
    assert results[:2] == ["pass", "FAIL"] and set(results[2:]) == {"not scored"}
    header = calibration_page.find_elements("css selector", "#calibration-expectations thead th")[5]
    header.click()  # result: pass sorts first
    assert _column(calibration_page, "calibration-expectations", 5)[0] == "pass"


VERIFY_ROW, VERIFY_MODELS = "random-subspace@v1", ["gru-h48-ar-s0", "gru-h48-ni-s0"]
HAS_ROW = (BOARD / "results" / "random-subspace" / "gru-h48-ar-s0.json").exists()


def _verify(results: Path, models: list[str] = VERIFY_MODELS) -> subprocess.CompletedProcess:
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "benchmark.cli", "verify", VERIFY_ROW, "--results", str(results),
                           "--models", *models], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})


@pytest.mark.skipif(not HAS_ROW, reason="no committed random-subspace records yet")
@pytest.mark.slow
def test_verify_passes_on_a_committed_baseline_row():
    """On the recording CPU the repeat is exact: verify uses the record's thread count (one per cell
    under `score --workers 2`), not this machine's default (all cores), which changed float sums."""
    from benchmark.hardware import hardware_summary

    run = _verify(BOARD / "results")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("MATCH   ") == 2
    recorded = json.loads((BOARD / "results" / "random-subspace" / f"{VERIFY_MODELS[0]}.json").read_text())["hardware"]
    if hardware_summary().split(",")[:3] == recorded.split(",")[:3]:  # the recording machine: CPU, cores, torch
        assert run.stdout.count("metrics and outcomes identical") == 2, run.stdout


@pytest.mark.skipif(not HAS_ROW, reason="no committed random-subspace records yet")
@pytest.mark.slow
def test_a_hand_edited_metric_fails_verify_and_freshness(tmp_path):
    results = Path(shutil.copytree(BOARD / "results", tmp_path / "results"))
    path = results / "random-subspace" / "gru-h48-ar-s0.json"
    rec = json.loads(path.read_text())
    # +0.05: beyond the float noise a re-score on another CPU shows (up to about 0.01), so that verify's
    # tolerance across machines cannot absorb it; on the recording machine any change fails
    rec["metrics"]["read"]["token_accuracy"] = round(rec["metrics"]["read"]["token_accuracy"] + 0.05, 6)
    path.write_text(json.dumps(rec))  # a naive edit: the record's own hash no longer matches
    records, refused = load_records(results)
    assert any("gru-h48-ar-s0.json" in r for r in refused)
    path.write_text(json.dumps(seal({k: v for k, v in rec.items() if k != "record_sha256"})))  # a careful forgery
    records, refused = load_records(results)
    assert not refused
    assert build(records)["leaderboard.json"] != (BOARD / "leaderboard.json").read_text()  # freshness test fails
    run = _verify(results, ["gru-h48-ar-s0"])  # the edited cell; test_verify_passes_... re-scores the pair
    assert run.returncode == 1 and "MISMATCH gru-h48-ar-s0: " in run.stdout, run.stdout
    assert "read.token_accuracy" in run.stdout.split("MISMATCH gru-h48-ar-s0: ")[1].splitlines()[0], run.stdout


def test_row_bibtex_names_version_and_every_record_hash():
    from benchmark.audit.cite import row_bibtex, rows_digest

    rows = build_rows(_core("writer", 0.6, 0.6, 0.6, spread=0.01), REGISTRY)
    text = row_bibtex(rows[0])
    assert "benchmark version\n                  1;" in text and "writer@v1" in text and rows_digest(rows[0]) in text
    assert all(h in text for _, h in rows[0].records) and text.isascii()


def test_cite_credits_the_methods_authors_and_its_digest_survives_an_identical_rescore():
    from benchmark.audit.cite import row_citation, rows_digest

    records = [_reseal(r, method={**r["method"], "authors": ["Ada Lovelace", "Alan Turing"],
                                  "url": "https://arxiv.org/abs/2408.10920"}) for r in _core("writer", 0.6, 0.6, 0.6)]
    rows = build_rows(records, REGISTRY)
    slower = build_rows([_reseal(r, eval_seconds=99.0) for r in records], REGISTRY)
    assert rows_digest(rows[0]) == rows_digest(slower[0])  # timings differ, outcomes do not
    assert rows[0].records != slower[0].records
    text = row_citation(rows[0])
    assert "author       = {Ada Lovelace and Alan Turing}" in text
    assert "@misc{onionbench," in text and "csordas2024recurrent" in text  # the benchmark, and the paper it implements


def test_citation_cff_is_valid_yaml_with_the_paper():
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["references"][0]["year"] == 2024


@pytest.mark.slow
def test_per_position_results_get_a_table_when_records_carry_them():
    plain = _core("writer", 0.6, 0.6, 0.6)
    assert "by position" not in build(plain, REGISTRY)["LEADERBOARD.md"]
    slope = {str(p): round(1.0 - 0.1 * p, 3) for p in range(9)}
    records = [_reseal(r, by_position={"read": slope, "write": slope}) for r in plain]
    md = build(records, REGISTRY)["LEADERBOARD.md"]
    table = md.split("### WRITE IIA by position")[1].split("###")[0]
    line = next(row for row in table.splitlines() if row.startswith("| writer ") and "ar N=48" in row)
    assert "1.000" in line and "0.200" in line  # p=1 and p=9 of the slope


def test_a_reference_row_is_shown_but_never_ranked_nor_a_winner():
    ceiling = [_reseal(r, method={**r["method"], "hypothesis": "reference"}) for r in _core("ceiling", 0.9, 0.9, 0.9)]
    rows = build_rows(ceiling + _core("writer", 0.6, 0.6, 0.6), REGISTRY)
    by = {r.method: r for r in rows}
    assert by["writer"].rank == 1 and by["ceiling"].rank is None and rank_text(by["ceiling"]) == "reference"
    assert [r.method for r in board_rows(rows, "intervention")] == ["writer", "ceiling"]
    assert all(w.best == "writer" for by_n in winner_matrix(rows).values() for w in by_n.values())


@pytest.mark.parametrize("width", [1280, 390])
def test_page_boards_fit_a_laptop_and_a_phone_screen(page, width):
    """Issue 33 item 7: minor columns collapse, so every board is whole at 1280 px and 390 px."""
    size = page.get_window_size()
    try:
        page.set_window_size(width, 900)
        fit = page.execute_script("const w = document.documentElement.clientWidth; return [...document.querySelectorAll("
                                  "'table[id^=\"board-\"]')].map(t => [t.id, t.getBoundingClientRect().right <= w]);")
    finally:
        page.set_window_size(size["width"], size["height"])
    assert fit and all(ok for _, ok in fit), fit


def test_page_links_rows_to_their_records_and_method_folders_and_offers_downloads(page):
    links = [a.get_attribute("href") for a in page.find_elements("css selector", "#board-intervention a")]
    assert any(h.endswith("/results/beta/") for h in links) and any(h.endswith("/submissions/beta/") for h in links)
    downloads = [a.get_attribute("href") for a in page.find_elements("css selector", "p.downloads a")]
    assert any(h.endswith("leaderboard.csv") for h in downloads) and any(h.endswith("leaderboard.json") for h in downloads)


def test_verify_re_scores_with_the_records_thread_count_and_restores_the_process(monkeypatch):
    """An onion cell re-scored with 2 threads instead of the recorded 1 differed by up to 0.0066
    on the recording machine (measured), so the repeat was not exact; the thread count of the
    record is set for the re-score, here and for the cell's processes, and restored after."""
    import os

    import torch

    from benchmark.audit.verify import recorded_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with recorded_threads({"hardware": "AMD EPYC (x86_64), 2 cores, torch 2.13.0+cpu, 1 threads"}):
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
    with recorded_threads({"hardware": "unknown"}):  # nothing recorded: nothing changed
        assert torch.get_num_threads() == before
