"""The conformance suite over every discovered method, and discovery's error messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.harness.conformance import run_checks
from benchmark.harness.submission import SubmissionError, discover, load_spec, resolve

DISCOVERED = discover()
TEST_METHODS = Path(__file__).parent / "methods"


@pytest.mark.slow  # one sealed check per discovered method
@pytest.mark.parametrize("name", sorted(DISCOVERED))
def test_discovered_method_passes_every_check(name):
    failed = [f"{r.name}: {r.reason}" for r in run_checks(DISCOVERED[name]) if not r.passed]
    assert not failed, failed


def test_a_method_keeping_the_model_fails_check_with_the_attribute_path():
    results = {r.name: r for r in run_checks(load_spec(TEST_METHODS / "encoder-cheat"))}
    assert not results["check_fit_runs"].passed
    assert "method.model_ references the reference model" in results["check_fit_runs"].reason


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(TEST_METHODS / name, tmp_path / name))


def test_missing_key_in_method_toml(tmp_path):
    folder = _copy("onehot-perfect", tmp_path)
    toml = folder / "method.toml"
    toml.write_text(toml.read_text().replace('hypothesis = "linear"\n', ""))
    with pytest.raises(SubmissionError, match="missing key.*hypothesis"):
        load_spec(folder)


def test_invalid_toml(tmp_path):
    folder = _copy("onehot-perfect", tmp_path)
    (folder / "method.toml").write_text("name = \n")
    with pytest.raises(SubmissionError, match="invalid TOML"):
        load_spec(folder)


def test_missing_entry_class_lists_the_classes_found(tmp_path):
    folder = _copy("onehot-perfect", tmp_path)
    toml = folder / "method.toml"
    toml.write_text(toml.read_text().replace("method.py:Perfect", "method.py:Perfekt"))
    with pytest.raises(SubmissionError, match="no class 'Perfekt'.*Perfect"):
        load_spec(folder).load_class()


def test_syntax_error_names_the_line(tmp_path):
    folder = _copy("onehot-perfect", tmp_path)
    (folder / "method.py").write_text("class Perfect:\n    def fit(self\n")
    with pytest.raises(SubmissionError, match="method.py:2: syntax error"):
        load_spec(folder).load_class()


def test_duplicate_names_are_refused(tmp_path):
    for sub in ("baselines", "submissions"):
        (tmp_path / sub).mkdir()
        shutil.copytree(TEST_METHODS / "onehot-perfect", tmp_path / sub / "x")
    with pytest.raises(SubmissionError, match="used by both"):
        discover(tmp_path)


def test_unknown_method_name_lists_the_valid_ones(tmp_path):
    (tmp_path / "baselines").mkdir()
    shutil.copytree(TEST_METHODS / "onehot-perfect", tmp_path / "baselines" / "onehot-perfect")
    with pytest.raises(SubmissionError, match="known methods: onehot-perfect"):
        resolve("nope", tmp_path)


def test_the_example_in_submissions_readme_passes_check(tmp_path):
    text = (Path(__file__).parent.parent / "submissions" / "README.md").read_text()
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    entry_class = toml.split('entry = "method.py:', 1)[1].split('"', 1)[0]
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    code = next(b for b in blocks if f"class {entry_class}" in b)  # the example the toml names
    folder = tmp_path / "mean-shift"
    folder.mkdir()
    (folder / "method.toml").write_text(toml)
    (folder / "method.py").write_text(code)
    failed = [f"{r.name}: {r.reason}" for r in run_checks(load_spec(folder)) if not r.passed]
    assert not failed, failed


def test_checks_that_do_not_apply_are_skipped_not_passed():
    results = {r.name: r for r in run_checks(resolve("mlp-probe"))}  # a read-only probe
    write = results["check_write_shape_dtype_finite"]
    assert write.skipped and write.status == "SKIP" and "does not attempt write" in write.reason
    assert results["check_read_shape_dtype_finite"].status == "PASS"


@pytest.mark.parametrize("name", sorted(n for n, s in DISCOVERED.items() if s.is_baseline))
def test_a_baselines_class_defaults_are_its_method_toml(name):
    """Issue 32 item 5, one source of defaults: a baseline built in Python with no arguments fits
    what `onionbench score` fits (linear-probe's n_samples and mlp-probe's steps had drifted)."""
    import inspect

    spec = DISCOVERED[name]
    params = inspect.signature(spec.load_class().__init__).parameters
    unknown = sorted(set(spec.params) - set(params))
    assert not unknown, f"{name}: method.toml sets {unknown}, which the class does not take"
    drift = {k: (params[k].default, v) for k, v in spec.params.items() if params[k].default != v}
    assert not drift, f"{name}: class default != method.toml for {drift} (class, toml)"
