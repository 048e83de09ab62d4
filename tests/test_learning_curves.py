"""benchmarks/learning_curves.py: the schedule it asks for, and the report that compares each
default with its curve (issue #13: within 0.02 of the plateau, or the gap stated)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from benchmark.harness.submission import load_spec, resolve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lc():
    return importlib.import_module("benchmark.studies.learning_curves")


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"steps": None, "factors": None, "vary": ["steps"], **kw})


def test_factors_scale_every_varied_parameter_together(lc):
    params = {"steps": 1200, "read_steps": 1000, "lr": 0.06}
    got = lc._schedule(_args(vary=["steps", "read_steps"], factors=[2, 0.5, 1]), params)
    assert got == [{"steps": 600, "read_steps": 500}, {"steps": 1200, "read_steps": 1000},
                   {"steps": 2400, "read_steps": 2000}]


def test_each_method_s_schedule_parameters_are_the_default_vary(lc):
    """Without --vary, `--factors` scales the parameters that make the method's schedule longer:
    onion's two schedules together (a curve over `steps` alone once left its read short), the
    sklearn probes' `n_samples`. Each listed name must be an integer parameter of that method,
    so renaming one in a method.toml fails here, not in a curve run hours later."""
    assert lc.default_vary("onion") == ["steps", "read_steps"]
    assert lc.default_vary("linear-probe") == ["n_samples"]
    assert lc.default_vary("linear-das") == ["steps"]
    for method, vary in lc.VARY.items():
        params = resolve(method).params
        assert all(isinstance(params.get(k), int) for k in vary), (method, vary, params)


@pytest.mark.parametrize("kw, phrase", [({"vary": ["lr"], "factors": [2]}, "not an integer parameter"),
                                        ({"factors": [2], "steps": [10]}, "exactly one of"),
                                        ({"vary": ["steps", "read_steps"], "steps": [10]}, "use --factors")])
def test_a_schedule_that_cannot_be_built_is_refused(lc, kw, phrase):
    with pytest.raises(SystemExit, match=phrase):
        lc._schedule(_args(**kw), {"steps": 1200, "read_steps": 1000, "lr": 0.06})


def _curve(lc, tmp: Path, method: str, model: str, points: dict[float, float], **overrides) -> None:
    spec = resolve(method)
    vary = ["n_samples"]
    curve = {"method": method, "model": model, "split": "valid", "method_sha256": spec.source_sha256(),
             "code_sha256": lc.code_sha256(spec), "params": dict(spec.params), "vary": vary, "points": [],
             **overrides}
    for factor, value in points.items():
        n = round(spec.params["n_samples"] * factor)
        curve["points"].append({"steps": n, "values": {"n_samples": n},
                                "metrics": {"read": {"sequence_accuracy": value}}})
    (tmp / method).mkdir(exist_ok=True)
    (tmp / method / f"{model}.json").write_text(json.dumps(curve))


def test_the_report_states_each_gap_and_ignores_history(lc, tmp_path):
    _curve(lc, tmp_path, "linear-probe", "flat", {1: 0.50, 2: 0.515, 4: 0.52})
    _curve(lc, tmp_path, "linear-probe", "rising", {0.5: 0.2, 1: 0.40, 2: 0.45, 4: 0.49})
    _curve(lc, tmp_path, "linear-probe", "old-source", {1: 0.1, 2: 0.9}, code_sha256="0" * 64)
    _curve(lc, tmp_path, "linear-probe", "pre-code-sha", {1: 0.1, 2: 0.9}, code_sha256=None)
    gaps = {g.model: g for g in lc.current_gaps(tmp_path)}
    assert set(gaps) == {"flat", "rising"}  # a curve of other method code is history
    flat, rising = gaps["flat"], gaps["rising"]
    assert (flat.gap, flat.needed, flat.still_rising) == (0.02, 1.0, False)
    assert (rising.gap, rising.needed, rising.still_rising) == (0.09, 4.0, True)
    text = lc.report(list(gaps.values()), {"linear-probe": 600.0})
    assert "| linear-probe | READ sequence_accuracy | rising | 0.200 | 0.400 | 0.450 | 0.490 | +0.090 | needs 4x" in text
    assert "| linear-probe | +0.090 | 4x (a curve still rising: more) | 5 min | 20 min |" in text
    assert "No curve" not in text
    # a scored method without a current curve is named, not silently left out (it would read as converged)
    text = lc.report(list(gaps.values()), {"linear-probe": 600.0, "onion": 900.0})
    assert "No curve at the current code (not shown above, so not known to be at a plateau): onion." in text


def test_a_long_run_at_the_papers_recipe_is_a_second_reference(lc, tmp_path):
    """A flat curve at the default's own lr can sit below the paper recipe's plateau; the report
    shows the long run's best point beside it, and ignores a long run of older method code."""
    _curve(lc, tmp_path, "linear-probe", "flat", {1: 0.50, 2: 0.51, 4: 0.51})
    _curve(lc, tmp_path, "linear-probe", "other", {1: 0.50, 2: 0.51})
    source = resolve("linear-probe").source_sha256()
    for model, sha, values in (("flat", source, (0.55, 0.58, 0.57)), ("other", "0" * 64, (0.9,))):
        long = {"method": "linear-probe", "model": model, "method_sha256": sha, "params": {}, "split": "valid",
                "points": [{"steps": 1000 * (i + 1), "metrics": {"read": {"sequence_accuracy": v}}}
                           for i, v in enumerate(values)]}
        (tmp_path / "linear-probe" / f"{model}-long.json").write_text(json.dumps(long))
    gaps = {g.model: g for g in lc.current_gaps(tmp_path)}
    assert gaps["flat"].gap == 0.01 and gaps["flat"].paper == (0.58, 3000) and gaps["flat"].paper_gap == 0.08
    assert gaps["other"].paper is None  # a long run of other method code is history
    text = lc.report(list(gaps.values()), {"linear-probe": 600.0})
    assert "| +0.010 | within 0.02 | 0.580 (3,000) | +0.080 |" in text
    assert text.endswith("| 5 min | 5 min | +0.080 (1 of its models run) | not run |")


def test_a_curve_at_another_recipe_is_a_third_reference(lc, tmp_path):
    """A flat curve from the default's own pool can sit below what another recipe of the same
    code reaches (gru-probe-ni: 0.78 from 50,000 states, 0.93 from 200,000); the report shows
    that recipe's best point and names its params. Older code and another protocol are not it."""
    spec = resolve("linear-probe")
    params = dict(spec.params)
    _curve(lc, tmp_path, "linear-probe", "flat", {1: 0.50, 2: 0.51, 4: 0.51})
    _curve(lc, tmp_path, "linear-probe", "flat-C4", {0.5: 0.55, 1: 0.60}, params={**params, "C": 4.0})
    _curve(lc, tmp_path, "linear-probe", "flat-old", {1: 0.90}, params={**params, "C": 8.0}, code_sha256="0" * 64)
    _curve(lc, tmp_path, "linear-probe", "flat-l9", {1: 0.95}, params={**params, "lengths": [9]})
    for name in ("flat-C4", "flat-old", "flat-l9"):  # one model, several files, as --param writes them
        path = tmp_path / "linear-probe" / f"{name}.json"
        curve = json.loads(path.read_text())
        path.write_text(json.dumps({**curve, "model": "flat"}))
    (gap,) = lc.current_gaps(tmp_path)  # the override curves are not the default's
    assert gap.gap == 0.01 and gap.other == (0.60, "C=4.0") and gap.other_gap == 0.10
    text = lc.report([gap], {"linear-probe": 600.0})
    assert "| +0.010 | within 0.02 |  |  | 0.600 (C=4.0) | +0.100 |" in text
    assert text.endswith("| not run | +0.100 (1 of its models run) |")


def test_the_committed_curves_make_a_report(lc):
    """Every committed default curve is readable by the report (it is what baselines/README quotes)."""
    gaps = lc.current_gaps()
    assert gaps, "no current curves: run benchmarks/learning_curves.py"
    assert all(1.0 in g.by_factor for g in gaps)


def test_the_committed_report_is_up_to_date(lc):
    """leaderboard/curves/REPORT.md is what the script makes of the committed curves and records."""
    assert lc.REPORT.read_text() == lc.committed_report(), (
        "leaderboard/curves/REPORT.md is stale: run python benchmarks/learning_curves.py report --write")


def test_a_curve_survives_moving_its_default_but_not_a_code_change(lc, tmp_path, monkeypatch):
    """Choosing a default from its curve edits [params]; the points measured before still count,
    now at factors against the new default. A change to the code makes the curve history."""
    folder = tmp_path / "linear-probe"
    shutil.copytree(resolve("linear-probe").folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    curves = tmp_path / "curves"
    curves.mkdir()
    _curve(lc, curves, "linear-probe", "m", {1: 0.40, 2: 0.45, 4: 0.46})
    n = resolve("linear-probe").params["n_samples"]
    toml = folder / "method.toml"
    toml.write_text(toml.read_text().replace(f"n_samples = {n}", f"n_samples = {2 * n}", 1))  # [params] comes first
    moved = load_spec(folder)
    assert moved.params["n_samples"] == 2 * n and moved.source_sha256() != resolve("linear-probe").source_sha256()
    monkeypatch.setattr(lc, "resolve", lambda name: moved)
    (gap,) = lc.current_gaps(curves)
    assert gap.by_factor == {0.5: 0.40, 1.0: 0.45, 2.0: 0.46} and gap.gap == 0.01

    (folder / "method.py").write_text((folder / "method.py").read_text() + "# changed\n")
    monkeypatch.setattr(lc, "resolve", lambda name: load_spec(folder))
    assert lc.current_gaps(curves) == []


def test_the_committed_curve_plots_are_up_to_date():
    """Each leaderboard/curves/METHOD.svg is what benchmarks/plot_curves.py draws from the committed curves
    (issue 32 item 6: generated artifacts checked for freshness)."""
    spec = importlib.util.spec_from_file_location("plot_curves", ROOT / "benchmarks" / "plot_curves.py")
    pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pc)  # type: ignore[union-attr]
    curves = ROOT / "leaderboard" / "curves"
    methods = sorted(d for d in curves.iterdir() if d.is_dir())
    assert methods
    for d in methods:
        assert pc.render_method(d) == d.with_suffix(".svg").read_text(), (
            f"leaderboard/curves/{d.name}.svg is stale: run python benchmarks/plot_curves.py {d.name}")


def test_every_committed_curve_file_is_a_line_of_its_plot():
    """One line per curve file: a curve with a fixed override (`-n_samples200000`, `-lengths9`)
    and the default's curve of the same model at the same lr once shared a label, and the
    later file silently replaced the other in the plot (linear-das's length-9 runs, session 37)."""
    spec = importlib.util.spec_from_file_location("plot_curves", ROOT / "benchmarks" / "plot_curves.py")
    pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pc)  # type: ignore[union-attr]
    for d in sorted(d for d in (ROOT / "leaderboard" / "curves").iterdir() if d.is_dir()):
        assert len(pc.load_curves(d)) == len(list(d.glob("*.json"))), f"{d.name}: two curve files share a label"


def test_rekey_moves_only_files_that_carry_the_old_hash(tmp_path):
    """benchmarks/rekey_studies.py: a curve, a long run and a bigram control with the old hashes
    move to the current ones and note why; a curve already history (another hash) stays."""
    import json

    from benchmark.studies.learning_curves import code_sha256

    module = importlib.util.spec_from_file_location("rekey_studies", ROOT / "benchmarks" / "rekey_studies.py")
    tool = importlib.util.module_from_spec(module)
    module.loader.exec_module(tool)
    rekey = tool.rekey
    spec = resolve("linear-das")
    log = "leaderboard/verification/issue32-linear-das-rekey-s34.log"
    (tmp_path / "curves" / "linear-das").mkdir(parents=True)
    (tmp_path / "bigram").mkdir()
    files = {"curves/linear-das/a.json": {"method_sha256": "m0", "code_sha256": "c0"},
             "curves/linear-das/a-long.json": {"method_sha256": "m0"},
             "curves/linear-das/old.json": {"method_sha256": "m0", "code_sha256": "c-older"},
             "bigram/b.json": {"method": "linear-das-bigram", "method_sha256": "x",
                               "unigram_control": {"method": "linear-das", "method_sha256": "m0", "rekeyed": {"why": "s34"}}}}
    for rel, data in files.items():
        (tmp_path / rel).write_text(json.dumps(data))
    changed = rekey("linear-das", "m0", "c0", log, "moved", root=tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in changed) == sorted(
        ["curves/linear-das/a.json", "curves/linear-das/a-long.json", "bigram/b.json"])
    read = {rel: json.loads((tmp_path / rel).read_text()) for rel in files}
    assert read["curves/linear-das/a.json"]["code_sha256"] == code_sha256(spec)
    assert read["curves/linear-das/a-long.json"]["method_sha256"] == spec.source_sha256()
    assert read["curves/linear-das/old.json"] == files["curves/linear-das/old.json"]  # history stays history
    control = read["bigram/b.json"]["unigram_control"]
    assert control["method_sha256"] == spec.source_sha256() and [e["why"] for e in control["rekeyed"]] == ["s34", "moved"]
    assert read["bigram/b.json"]["method_sha256"] == "x"
    with pytest.raises(SystemExit, match="no such file"):
        rekey("linear-das", "m0", "c0", "leaderboard/verification/none.log", "moved", root=tmp_path)
