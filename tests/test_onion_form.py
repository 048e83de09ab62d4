"""The onion-form study (issue 30 item 4): its paper form is the onion baseline's write, its
magnitude form is a pure magnitude code, its files resume, and its committed figures are fresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.data import heldout_keys
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.submission import resolve
from benchmark.studies import onion_form as of
from benchmark.zoo.registry import load_registry
from benchmark.zoo.resolve import load_reference

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
SMALL = {"steps": 30, "pool_size": 800}


def _fit(model, form: str) -> tuple[torch.Tensor, torch.Tensor]:
    seed_everything(0)
    data = FitData(model, heldout_keys(), seed=0, budget=100_000)
    return of.fit_form(FrozenModel(model, data), data, form, {**of.DEFAULTS, **SMALL})


def test_the_paper_form_is_the_onion_baselines_write():
    """Same pool, init, draws and optimiser as baselines/onion: the study's 'paper' line is the
    baseline's code, not a look-alike (a changed init or draw order fails this)."""
    model, _ = load_reference(str(CHECK))
    codes, scales = _fit(model, "paper")
    seed_everything(0)
    data = FitData(model, heldout_keys(), seed=0, budget=100_000)
    onion = resolve("onion").load_class()(**{**resolve("onion").params, **SMALL, "read_steps": 2, "steps_width": 0})
    decl = onion.fit(FrozenModel(model, data), data)
    assert torch.equal(codes, decl.write[1]["codes"]) and torch.equal(scales, decl.write[1]["scales"])


def test_the_magnitude_form_is_one_profile_at_geometric_sizes():
    model, _ = load_reference(str(CHECK))
    codes, scales = _fit(model, "magnitude")
    ratio = scales[1:] / scales[:-1]
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-4)  # one scalar gamma for every channel
    assert of.shape_of(codes, scales)["sharing"] == pytest.approx(1.0, abs=1e-4)
    _, free = _fit(model, "free")
    assert of.shape_of(codes, free)["sharing"] < 0.999  # the free form is not forced onto one profile


def test_a_study_file_is_current_only_for_its_version_weights_and_params(tmp_path):
    path = tmp_path / "m.json"
    assert not of.is_current(path, "m", "abc", {})
    of.write_atomic(path, {"study_version": of.STUDY_VERSION, "model_sha256": "abc", "params": dict(of.DEFAULTS)})
    assert of.is_current(path, "m", "abc", {})
    assert not of.is_current(path, "m", "other weights", {})
    assert not of.is_current(path, "m", "abc", {"steps": 1})
    of.write_atomic(path, {"study_version": of.STUDY_VERSION - 1, "model_sha256": "abc", "params": dict(of.DEFAULTS)})
    assert not of.is_current(path, "m", "abc", {})


def _core_families() -> set[str]:
    """Every trained (architecture, N, variant) of the GRU and LSTM core tiers."""
    return {of.family_of(name) for name, e in load_registry().items()
            if e.tier in ("core", "lstm") and e.sha256} - {None}


def test_every_core_gru_and_lstm_family_has_its_form_measured():
    measured = {of.family_of(p.stem) for p in of.OUT.glob("*.json")}
    missing = sorted(_core_families() - measured)
    assert not missing, f"no onion-form data for {missing}: run python -m benchmark.studies.onion_form MODEL"


def test_the_committed_figures_and_report_are_what_the_data_draws():
    """Generated artifacts are checked for freshness (issue 32 item 6)."""
    for path, text in of.render_all().items():
        assert path.exists() and path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: run python -m benchmark.studies.onion_form --report")


def test_the_page_shows_the_form_figure_of_every_core_family():
    page = (ROOT / "leaderboard" / "index.html").read_text()
    for fam in sorted(_core_families()):
        assert f'src="onion-form/{fam}.svg"' in page, fam
        assert (of.OUT / f"{fam}.svg").exists(), fam


def test_a_figure_is_a_function_of_its_data():
    data = json.loads(next(of.OUT.glob("gru-h64-ar-s0.json")).read_text())
    first = of.render_family("gru-h64-ar", [data])
    assert first == of.render_family("gru-h64-ar", [data])
    data["forms"]["paper"]["layer_size"][0] *= 10
    assert of.render_family("gru-h64-ar", [data]) != first
