"""Leaderboard: aggregation, ties, refusals, freshness of the committed artifacts, the page in a browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.board.leaderboard import build, build_rows, load_records, replace_readme_block, stat, README_START
from benchmark.harness.records import seal
from tests.browser import CHROMEDRIVER, CHROMIUM, make_driver

ROOT = Path(__file__).parent.parent
BOARD = ROOT / "leaderboard"


def _record(method: str, model: str, n: int, variant: str, seed: int, read: float, write: float | None,
            swap: float | None) -> dict:
    """A minimal valid record with the given headline metrics (for aggregation tests)."""
    rec = {
        "record_version": 1, "benchmark_version": "1", "scoring_version": "1", "harness_commit": "x", "status": "ok",
        "error": None, "method": {"name": method, "hypothesis": "other", "baseline": False, "source_sha256": "0" * 64,
                                  "params": {}, "entry": "m.py:M", "url": "u", "authors": []},
        "model": {"name": model, "sha256": "1" * 64, "hidden_size": n, "variant": variant, "seed": seed},
        "split": {"name": "test", "sha256": "2" * 64, "size": 5000}, "plan_seed": 2024, "seed": 0,
        "environment": {}, "hardware": "h", "fit": {"seconds": 1.0, "sequences_drawn": 10, "budget": 100},
        "eval_seconds": 1.0, "tracks_attempted": ["read"] + (["write", "interchange"] if write is not None else []),
        "metrics": {"read": {"token_accuracy": read, "sequence_accuracy": read},
                    "write": None if write is None else {"iia": write, "cause": write, "isolate": 1.0,
                                                         "kept_fraction": 1.0},
                    "interchange": None if swap is None else {"iia": swap, "kept_fraction": 1.0},
                    "consistency": None},
        "by_length": {}, "bounds": {"oracle": {}}, "outcomes_sha256": "3" * 64}
    return seal(rec)


def _core(method: str, read: float, write: float | None, swap: float | None, spread: float = 0.0) -> list[dict]:
    return [_record(method, f"gru-h{n}-{v}-s{s}", n, v, s, read + spread * s, write, swap)
            for n in (48, 64, 128, 256) for v in ("ar", "ni") for s in (0, 1, 2)]


def test_stat_is_mean_sample_std_and_t_interval():
    s = stat([0.1, 0.2, 0.3])
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1) and s.n == 3
    assert s.ci95 == pytest.approx(4.303 * 0.1 / 3**0.5, abs=1e-6)
    assert stat([0.5]).std is None


def test_headline_counts_unattempted_tracks_as_zero_and_marks_ties():
    rows = build_rows(_core("reader", 0.9, None, None) + _core("writer", 0.6, 0.6, 0.6, spread=0.05)
                      + _core("close", 0.62, 0.6, 0.6, spread=0.05))
    by = {r.method: r for r in rows}
    assert by["reader"].headline.mean == pytest.approx(0.3)
    assert by["reader"].cells["write"]["ar"]["48"] is None and by["reader"].tracks_attempted == ["read"]
    assert [r.method for r in rows] == ["close", "writer", "reader"]
    assert by["writer"].tied_with_leader and not by["reader"].tied_with_leader
    assert by["writer"].core_models_scored == 24


def test_build_is_pure_and_shows_not_attempted():
    records = _core("reader", 0.9, None, None) + _core("writer", 0.6, 0.6, 0.6)
    a, b = build(records), build(list(reversed(records)))
    assert a == b
    assert "not attempted" in a["LEADERBOARD.md"] and "reader@v1" in a["leaderboard.csv"]
    assert json.loads(a["leaderboard.json"])["rows"][0]["row_id"] == "writer@v1"


def test_invalid_and_edited_records_are_refused_by_name(tmp_path):
    good = _record("m", "gru-h48-ar-s0", 48, "ar", 0, 0.5, 0.5, 0.5)
    edited = dict(good, metrics={**good["metrics"], "read": {"token_accuracy": 1.0, "sequence_accuracy": 1.0}})
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "good.json").write_text(json.dumps(good))
    (tmp_path / "m" / "edited.json").write_text(json.dumps(edited))
    (tmp_path / "m" / "broken.json").write_text("{not json")
    records, refused = load_records(tmp_path)
    assert len(records) == 1
    assert any("edited.json" in r and "record_sha256" in r for r in refused)
    assert any("broken.json" in r for r in refused)


def test_committed_leaderboard_equals_a_fresh_build():
    records, refused = load_records(BOARD / "results")
    assert not refused, refused
    fresh = build(records)
    for name, text in fresh.items():
        if name == "README-block.md":
            readme = (ROOT / "README.md").read_text()
            assert replace_readme_block(readme, text) == readme, "README leaderboard block is stale"
        else:
            assert (BOARD / name).read_text() == text, f"leaderboard/{name} is stale: run `onionbench leaderboard`"


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_page_in_headless_chromium(tmp_path):
    records = _core("alpha", 0.9, 0.1, 0.2) + _core("beta", 0.2, 0.8, 0.7, spread=0.02) + _core("gamma", 0.5, None, None)
    (tmp_path / "index.html").write_text(build(records)["index.html"])
    driver = make_driver()
    try:
        driver.get((tmp_path / "index.html").as_uri())
        rows = driver.find_elements("css selector", "#summary tbody tr")
        assert len(rows) == 3
        first = [r.get_attribute("id") for r in rows]
        header = driver.find_elements("css selector", "#summary th")[2]  # method
        header.click()
        by_name = [r.get_attribute("id") for r in driver.find_elements("css selector", "#summary tbody tr")]
        assert by_name == ["alpha@v1", "beta@v1", "gamma@v1"] and by_name != first
        header.click()
        assert [r.get_attribute("id") for r in driver.find_elements("css selector", "#summary tbody tr")] == \
            list(reversed(by_name))
        plots = driver.find_elements("css selector", "figure.plot svg")
        assert len(plots) == 3 and all(p.size["width"] > 300 for p in plots)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        driver.save_screenshot(str(tmp_path / "leaderboard.png"))
    finally:
        driver.quit()


VERIFY_ROW, VERIFY_MODELS = "random-subspace@v1", ["gru-h48-ar-s0", "gru-h48-ni-s0"]
HAS_ROW = (BOARD / "results" / "random-subspace" / "gru-h48-ar-s0.json").exists()


def _verify(results: Path) -> "subprocess.CompletedProcess":
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "benchmark.cli", "verify", VERIFY_ROW, "--results", str(results),
                           "--models", *VERIFY_MODELS], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.skipif(not HAS_ROW, reason="no committed random-subspace records yet")
def test_verify_passes_on_a_committed_baseline_row():
    run = _verify(BOARD / "results")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("MATCH   ") == 2


@pytest.mark.skipif(not HAS_ROW, reason="no committed random-subspace records yet")
def test_a_hand_edited_metric_fails_verify_and_freshness(tmp_path):
    results = Path(shutil.copytree(BOARD / "results", tmp_path / "results"))
    path = results / "random-subspace" / "gru-h48-ar-s0.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["read"]["token_accuracy"] = round(rec["metrics"]["read"]["token_accuracy"] + 0.01, 6)
    path.write_text(json.dumps(rec))  # a naive edit: the record's own hash no longer matches
    records, refused = load_records(results)
    assert any("gru-h48-ar-s0.json" in r for r in refused)
    path.write_text(json.dumps(seal({k: v for k, v in rec.items() if k != "record_sha256"})))  # a careful forgery
    records, refused = load_records(results)
    assert not refused
    assert build(records)["leaderboard.json"] != (BOARD / "leaderboard.json").read_text()  # freshness test fails
    run = _verify(results)
    assert run.returncode == 1 and "MISMATCH gru-h48-ar-s0: read.token_accuracy" in run.stdout, run.stdout


def test_row_bibtex_names_version_and_every_record_hash():
    from benchmark.board.citation import rows_digest, row_bibtex

    rows = build_rows(_core("writer", 0.6, 0.6, 0.6, spread=0.01))
    text = row_bibtex(rows[0])
    assert "Benchmark version 1" in text and "writer@v1" in text and rows_digest(rows[0]) in text
    assert all(h in text for _, h in rows[0].records) and text.isascii()


def test_citation_cff_is_valid_yaml_with_the_paper():
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["references"][0]["year"] == 2024
