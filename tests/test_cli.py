"""The command line: one-line errors, non-zero exits, named check failures, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def _one_line_error(run: subprocess.CompletedProcess, phrase: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and phrase in lines[0], run.stderr


def test_unknown_model_lists_valid_names():
    _one_line_error(_cli("score", "tests/gallery/good", "--models", "gru-h7-xx-s9"), "unknown model 'gru-h7-xx-s9'")


def test_unknown_method_lists_known_ones():
    run = _cli("check", "no-such-method")
    _one_line_error(run, "known methods:")


def test_careless_arguments_and_method_toml_typos_are_one_line_errors(tmp_path):
    _one_line_error(_cli("score", "tests/gallery/good", "--workers", "0"), "--workers: must be at least 1")
    _one_line_error(_cli("score", "tests/gallery/good", "--workers", "-1"), "--workers: must be at least 1")
    folder = tmp_path / "typo"
    folder.mkdir()
    good = ROOT / "tests" / "gallery" / "good"
    (folder / "method.py").write_text((good / "method.py").read_text())
    (folder / "method.toml").write_text((good / "method.toml").read_text().replace("[params]", "[parms]")
                                        if "[params]" in (good / "method.toml").read_text()
                                        else (good / "method.toml").read_text() + "\n[parms]\nsteps = 1\n")
    _one_line_error(_cli("check", str(folder)), "unknown key 'parms'; did you mean 'params'?")


def test_an_embedded_model_needs_no_download_and_models_path_says_where_it_is():
    run = subprocess.run([sys.executable, "-m", "benchmark.cli", "models", "download", "gru-h48-ar-s0"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0 and "embedded in the package" in run.stdout + run.stderr, run.stdout + run.stderr
    where = _cli("models", "path", "gru-h48-ar-s0")
    assert where.returncode == 0 and where.stdout.strip().endswith(str(Path("benchmark", "zoo", "models", "gru-h48-ar-s0")))


@pytest.mark.slow
def test_score_runs_the_checks_first_and_scores_nothing_of_a_method_that_fails_them(tmp_path):
    run = _cli("score", "tests/gallery/wrong-shape", "--models", "benchmark/zoo/check/gru-h16-ar-check",
               "--results", str(tmp_path), "--quiet")
    assert run.returncode == 1 and "check failed: check_read_shape_dtype_finite" in run.stderr, run.stderr
    assert not list(tmp_path.rglob("*.json"))  # no fit ran, no record was written


@pytest.mark.slow
def test_score_verbose_shows_a_failed_cells_traceback_and_the_record_keeps_it(tmp_path):
    import json

    run = _cli("score", "tests/gallery/fit-raises", "--models", "benchmark/zoo/check/gru-h16-ar-check", "--results",
               str(tmp_path), "--quiet", "--no-check", "--verbose")
    assert run.returncode == 1 and "Traceback (most recent call last)" in run.stderr, run.stderr
    record = json.loads(next(tmp_path.rglob("gru-h16-ar-check.json")).read_text())
    assert "ValueError: bad hyperparameters" in record["error_detail"] and "\n" not in record["error"]


def test_untrained_model_says_so():
    _one_line_error(_cli("score", "tests/gallery/good", "--models", "gru-h1024-ar-s0"), "not trained")


def test_check_names_failures_without_traceback():
    run = _cli("check", "tests/gallery/modifies-input")
    assert run.returncode == 1
    assert "FAIL  check_write_shape_dtype_finite" in run.stdout and "in place" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_check_passes_a_good_method():
    run = _cli("check", "tests/gallery/good")
    assert run.returncode == 0, run.stdout
    assert "0 failed" in run.stdout


def test_models_list_json_has_the_documented_keys():
    import json

    from benchmark.zoo.registry import load_registry

    rows = json.loads(_cli("models", "list", "--json").stdout)
    assert len(rows) == len(load_registry())
    assert {"name", "hidden_size", "variant", "seed", "tier", "sha256", "test_accuracy", "embedded"} <= set(rows[0])


@pytest.mark.slow
def test_verbose_check_shows_the_traceback():
    quiet, verbose = _cli("check", "tests/gallery/fit-raises"), _cli("--verbose", "check", "tests/gallery/fit-raises")
    assert "FAIL  check_fit_runs: ar model: fit raised ValueError: bad hyperparameters" in quiet.stdout
    assert "Traceback" not in quiet.stdout and "Traceback" in verbose.stdout


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stderr.split("MODULES", 1)[1].split())


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["cite"], ["leaderboard", "--help"]])
def test_cheap_commands_do_not_import_torch(argv):
    code = f"from benchmark.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    loaded = _modules_after(code)
    assert "torch" not in loaded and "datasets" not in loaded


@pytest.mark.slow
def test_verbose_is_accepted_after_the_subcommand():
    run = _cli("verify", "no-such-row", "--results", str(ROOT / "leaderboard" / "results"), "--verbose")
    assert run.returncode != 0 and "Traceback" in run.stderr  # --verbose shows the traceback


def test_a_bug_is_not_hidden_as_a_one_liner(monkeypatch):
    import benchmark.cli as cli

    def bug(args):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(cli, "_cmd_cite", bug)
    with pytest.raises(KeyError):  # only OnionbenchError becomes a one-line message
        cli.main(["cite"])
