"""The embedded reference models: pinned weights, and the accuracy their cards claim."""

from __future__ import annotations

import json

import pytest

from benchmark.data import load_split
from benchmark.errors import OnionbenchError
from benchmark.hashing import file_sha256
from benchmark.zoo.architectures import architecture, load_model, parse_name
from benchmark.zoo.calibration import MEMBER_NAMES
from benchmark.zoo.interface import repeat_correct
from benchmark.zoo.registry import ZOO_DIR, load_registry, save_registry, select, standard_set
from benchmark.zoo.resolve import load_reference

ENTRIES = load_registry()
EMBEDDED = sorted(name for name, e in ENTRIES.items() if e.trained and e.embedded_folder.exists())


def test_registry_lists_the_standard_set():
    assert list(ENTRIES) == [e.name for e in standard_set()]
    for e in ENTRIES.values():
        assert e.hub_repo == f"onionbench/{e.name}"
        assert parse_name(e.name) == (e.architecture, e.hidden_size, e.variant, e.seed)
        expected_tier = ("core" if e.hidden_size <= 256 else "extended") if e.architecture == "gru" else e.architecture
        if e.name in MEMBER_NAMES:
            expected_tier = "calibration"  # several families in one tier, built rather than trained
        assert e.tier == expected_tier


def test_the_lstm_tier_is_selected_by_name_trained_models_only():
    names = select(["lstm"])
    trained = {n for n, e in load_registry().items() if e.sha256 is not None}
    registered = [f"lstm-h{n}-{v}-s{s}" for n in (48, 64, 128, 256) for v in ("ar", "ni") for s in (0, 1, 2)]
    assert names == [n for n in registered if n in trained] and len(names) == 12  # N=48 and 64 are trained
    assert not set(names) & set(select(["core"]))


def test_a_selection_without_trained_models_and_a_typo_get_short_errors():
    with pytest.raises(OnionbenchError, match="'extended' selection has no trained model yet"):
        select(["extended"])
    with pytest.raises(OnionbenchError, match="did you mean gru-h48-ar-s2 or") as err:
        select(["gru-h48-ar-s9"])
    assert len(str(err.value)) < 300


def test_untrained_models_say_so_and_state_the_plan():
    """Nothing pretends: a model without weights has no accuracy and carries its plan."""
    for e in ENTRIES.values():
        if e.trained:
            assert e.plan == "" and e.test_accuracy is not None
        else:
            assert e.test_accuracy is None and e.hardware is None
            assert ("GPU" in e.plan) == (e.tier == "extended"), e.plan
            assert ("--architecture lstm" in e.plan) == (e.architecture == "lstm"), e.plan


def test_every_embedded_folder_is_registered_as_trained():
    folders = sorted(p.name for p in ZOO_DIR.iterdir() if p.is_dir() and parse_name(p.name))
    assert folders == EMBEDDED


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_weights_match_the_registry(name):
    entry = ENTRIES[name]
    assert file_sha256(entry.embedded_folder / "model.safetensors") == entry.sha256
    info = json.loads((entry.embedded_folder / "training.json").read_text())
    if entry.tier == "calibration":  # a finished calibration build (benchmark.zoo.calibrate), not the zoo recipe
        assert info["recipe"]["kind"] == "calibration" and info["steps_done"] == info["recipe"]["steps"]
    else:
        assert info["steps_done"] == info["recipe"]["steps"] == 40_000  # the full recipe only
    assert entry.sha256 in (entry.embedded_folder / "README.md").read_text()
    assert type(load_model(entry.embedded_folder)) is architecture(entry.architecture).model_class


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_model_accuracy_matches_its_card(name):
    model, provenance = load_reference(name)
    entry = ENTRIES[name]
    assert provenance == {"name": name, "sha256": entry.sha256, "architecture": entry.architecture,
                          "hidden_size": entry.hidden_size, "variant": entry.variant, "seed": entry.seed, "tier": entry.tier}
    test = load_split("test")
    accuracy = repeat_correct(model, test.tokens, test.lengths).float().mean().item()
    assert accuracy == pytest.approx(ENTRIES[name].test_accuracy, abs=1e-4)


def test_corrupt_weights_are_refused(tmp_path, monkeypatch):
    import shutil

    import benchmark.zoo.registry as registry

    name = EMBEDDED[0]
    shutil.copytree(ZOO_DIR / name, tmp_path / name)
    data = bytearray((tmp_path / name / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / name / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(registry, "ZOO_DIR", tmp_path)  # point the registry at a corrupted copy
    monkeypatch.setattr(registry.ModelEntry, "embedded_folder", property(lambda e: tmp_path / e.name))
    with pytest.raises(OnionbenchError, match="sha256"):
        load_reference(name)


def test_embed_copies_a_small_model_and_pins_a_large_one(tmp_path, monkeypatch):
    """Issue 31 item 3: a finished model over the limit gets its sha256 and accuracy in the registry
    but is not copied into the package (N=1024 is ~50 MB); one under it is embedded."""
    import shutil

    import benchmark.zoo.registry as registry

    name = EMBEDDED[0]
    source = tmp_path / "runs"
    shutil.copytree(ZOO_DIR / name, source / name)
    info = json.loads((source / name / "training.json").read_text())
    reg = tmp_path / "registry.json"
    entries = load_registry()
    entries[name].sha256 = None  # as before embedding
    save_registry(entries, reg)
    size = (source / name / "model.safetensors").stat().st_size
    monkeypatch.setattr(registry, "EMBED_LIMIT_BYTES", size - 1)  # this model counts as "large"
    done = registry.embed(source, reg, tmp_path / "zoo")
    assert done and "pinned, not embedded" in done[0] and not (tmp_path / "zoo" / name).exists()
    pinned = load_registry(reg)[name]
    assert pinned.sha256 == file_sha256(source / name / "model.safetensors")
    assert pinned.test_accuracy == round(info["test_exact_match"], 4)
    monkeypatch.setattr(registry, "EMBED_LIMIT_BYTES", size)  # mutation of the limit: now it is copied
    entries = load_registry(reg)
    entries[name].sha256 = None
    save_registry(entries, reg)
    assert registry.embed(source, reg, tmp_path / "zoo") == [name]
    assert (tmp_path / "zoo" / name / "model.safetensors").exists()
