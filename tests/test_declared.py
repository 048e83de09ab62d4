"""Declared methods (issue 28): fit returns intervention forms and their tensors; scoring runs
harness code only, and the declared size is exact."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from benchmark.harness import declared, forms
from benchmark.harness.cell import run_cell
from benchmark.harness.declared import Declaration, DeclarationError
from benchmark.harness.isolation.launch import Limits
from benchmark.harness.submission import load_spec
from benchmark.records import validate
from benchmark.zoo.resolve import load_reference

ROOT = Path(__file__).parent.parent
EXAMPLE = Path(__file__).parent / "methods" / "declared-means"
CHECK_AR = ROOT / "benchmark" / "zoo" / "check" / "gru-h16-ar-check"
LIMITS = Limits(timeout_s=120, memory_gb=4)
N, P, V = 16, 9, 30


def _cell(folder: Path, **kwargs) -> dict:
    model, provenance = load_reference(str(CHECK_AR))
    rec = run_cell(load_spec(folder), model, provenance, limits=LIMITS, **kwargs)
    validate(rec)
    return rec


@pytest.mark.slow
def test_a_declared_method_is_scored_without_importing_its_module_and_its_size_is_exact():
    """The example's module raises if imported in the scoring process; the cell is ok."""
    rec = _cell(EXAMPLE)
    assert rec["status"] == "ok", rec["error"]
    assert rec["method_kind"] == "declared"
    decl = rec["fit"]["declaration"]
    assert decl["forms"] == {"read": "linear", "write": "additive-table", "interchange": "read-write"}
    assert decl["parameters"] == P * V * N + P * V  # the means (read weight = write table, counted once) + bias
    assert decl["bytes"] == 4 * decl["parameters"] and rec["method_parameters"] == decl["parameters"]
    assert rec["metrics"]["write"]["iia"] > 0.0


@pytest.mark.slow
def test_mutation_the_same_module_as_an_open_method_is_imported_at_scoring_and_fails(tmp_path):
    folder = tmp_path / "open-means"
    shutil.copytree(EXAMPLE, folder)
    source = (folder / "method.py").read_text()
    (folder / "method.py").write_text(source.replace(
        "        return Declaration(", "        self.unused_ = Declaration(").replace(
        "                           interchange=(\"read-write\", {}))",
        "                           interchange=(\"read-write\", {}))\n        return self\n\n"
        "    def read(self, h, position):\n        return torch.zeros(h.shape[0], 30)"))
    (folder / "method.toml").write_text((folder / "method.toml").read_text().replace("declared-means", "open-means"))
    rec = _cell(folder)
    assert rec["status"] == "failed" and "imported in the scoring process" in rec["error"], rec["error"]


def _decl(**ops) -> Declaration:
    return Declaration(**ops)


def _linear() -> tuple[str, dict]:
    return ("linear", {"weight": torch.zeros(P, V, N), "bias": torch.zeros(P, V)})


@pytest.mark.parametrize("decl, phrase", [
    (_decl(read=("magic", {"w": torch.zeros(1)})), "unknown form 'magic'"),
    (_decl(read=("linear", {"weight": torch.zeros(P, V, N + 1), "bias": torch.zeros(P, V)})), "wants (9, 30, 16)"),
    (_decl(read=("linear", {"weight": torch.zeros(P, V, N), "bias": torch.zeros(P, V), "spare": torch.zeros(3)})),
     "extra ['spare']"),
    (_decl(read=_linear(), write=("rotation-swap", {})), "unknown form 'rotation-swap'"),
    (_decl(write=("onion", {"codes": torch.zeros(V, N), "scales": torch.zeros(P, N)})), "needs a read form"),
    (_decl(read=_linear(), interchange=("read-write", {})), "needs a write form"),
    (_decl(read=("onion-peel", {"codes": torch.zeros(V, N), "scales": torch.zeros(P, N), "ln_weight": torch.ones(N),
                                "ln_bias": torch.zeros(N), "w1": torch.zeros(999, N), "b1": torch.zeros(999),
                                "pos": torch.zeros(P, 999), "w2": torch.zeros(V, 999), "b2": torch.zeros(V)})),
     "at most 256"),
])
def test_a_declaration_that_does_not_fit_its_form_is_refused_by_name(decl, phrase):
    with pytest.raises(DeclarationError, match=phrase.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        declared.check(decl, N)


@pytest.mark.slow
def test_a_refused_declaration_fails_the_cell_with_a_one_line_reason(tmp_path):
    folder = tmp_path / "bad-decl"
    shutil.copytree(EXAMPLE, folder)
    (folder / "method.py").write_text((folder / "method.py").read_text().replace('"table": means', '"table": means[:3]'))
    (folder / "method.toml").write_text((folder / "method.toml").read_text().replace("declared-means", "bad-decl"))
    rec = _cell(folder)
    assert rec["status"] == "failed" and rec["error"].startswith("the declaration is refused: write form")
    assert "\n" not in rec["error"]


@pytest.mark.slow
def test_a_declaration_carrying_the_models_weights_is_refused_by_the_byte_scan(tmp_path):
    folder = tmp_path / "weights-decl"
    shutil.copytree(EXAMPLE, folder)
    source = (folder / "method.py").read_text().replace(
        "        weight, bias = means, -0.5 * (means**2).sum(-1)",
        "        weight, bias = means.clone(), -0.5 * (means**2).sum(-1)\n"
        "        w = model._model.gru.weight_hh_l0.detach().flatten()\n"
        "        weight.view(-1)[: w.numel()] = w")
    (folder / "method.py").write_text(source)
    (folder / "method.toml").write_text((folder / "method.toml").read_text().replace("declared-means", "weights-decl"))
    rec = _cell(folder)
    assert rec["status"] == "failed" and "weight" in rec["error"], rec["error"]


def test_a_declaration_survives_its_round_trip_through_safetensors():
    gen = torch.Generator().manual_seed(0)
    decl = Declaration(read=("linear", {"weight": torch.randn(P, V, N, generator=gen), "bias": torch.randn(P, V)}),
                       write=("onion", {"codes": torch.randn(V, N), "scales": torch.randn(P, N)}),
                       interchange=("rotation-swap", {"rotation": torch.linalg.qr(torch.randn(N, N))[0],
                                                      "owner": torch.randint(0, P + 1, (N,))}))
    back = declared.load(declared.serialise(decl), N)
    for op, (name, tensors) in decl.operations().items():
        assert back.operations()[op][0] == name
        assert all(torch.equal(tensors[k], back.operations()[op][1][k]) for k in tensors)
    with pytest.raises(DeclarationError):
        declared.load(declared.serialise(decl), N + 1)  # another model's size


def test_the_rotation_swap_form_is_linear_das_interchange():
    """The form computes what linear-das's native interchange computes (owners as one-hot rows)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ldas", ROOT / "baselines" / "linear-das" / "method.py")
    ldas = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ldas)
    gen = torch.Generator().manual_seed(1)
    rotation = torch.linalg.qr(torch.randn(N, N, generator=gen))[0]
    owner = torch.randint(0, P + 1, (N,), generator=gen)
    hb, hs = torch.randn(5, N, generator=gen), torch.randn(5, N, generator=gen)
    mask = torch.rand(5, P, generator=gen) < 0.5
    one_hot = torch.nn.functional.one_hot(owner, P + 1)[:, :-1].float()
    expected = ldas._interchange(rotation, one_hot, hb, hs, mask)
    got = forms.rotation_swap({"rotation": rotation, "owner": owner}, hb, hs, mask)
    assert torch.allclose(got, expected, atol=1e-6)


def test_the_pair_rotation_swap_form_moves_every_pair_the_mask_touches():
    """Issue 30 item 2: pair j = (j, j+1) comes from the source iff position j or j+1 is masked;
    a coordinate owned by P - 1 (keep) never does. Checked coordinate by coordinate."""
    gen = torch.Generator().manual_seed(2)
    rotation = torch.linalg.qr(torch.randn(N, N, generator=gen))[0]
    owner = torch.arange(N) % P  # pairs 0..7 and keep (8), each owning some coordinates
    hb, hs = torch.randn(6, N, generator=gen), torch.randn(6, N, generator=gen)
    mask = torch.rand(6, P, generator=gen) < 0.5
    mask[0] = False
    mask[0, 4] = True  # one position: exactly the pairs (3, 4) and (4, 5) move
    z = forms.pair_rotation_swap({"rotation": rotation, "owner": owner}, hb, hs, mask) @ rotation.T
    zb, zs = hb @ rotation.T, hs @ rotation.T
    for row in range(6):
        for c in range(N):
            j = int(owner[c])
            moved = j < P - 1 and bool(mask[row, j] or mask[row, j + 1])
            assert torch.allclose(z[row, c], (zs if moved else zb)[row, c], atol=1e-5), (row, c)
    assert {int(owner[c]) for c in range(N) if not torch.allclose(z[0, c], zb[0, c], atol=1e-5)} == {3, 4}


def test_linear_das_bigram_builds_the_papers_bigram_inputs():
    """Base: the original with only position p changed (maybe to itself); source: the original at
    p-1, p, p+1 and inside no other constraint; padding untouched in both."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ldasb", ROOT / "baselines" / "linear-das-bigram" / "method.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    method = mod.LinearDASBigram()
    method.n_pos_, method.vocab_ = P, V
    torch.manual_seed(0)
    lengths = torch.randint(2, P + 1, (500,))
    original = torch.where(torch.arange(P)[None] < lengths[:, None], torch.randint(0, V, (500, P)), 0)
    base, source, position = method._bigram_inputs(original, lengths)
    cols = torch.arange(P)[None]
    assert bool((position < lengths).all())
    assert bool(((base == original) | (cols == position[:, None])).all())
    near = (cols - position[:, None]).abs() <= 1
    assert bool((source[near] == original[near]).all())
    pad = cols >= lengths[:, None]
    assert bool((source[pad] == original[pad]).all() and (base[pad] == original[pad]).all())
    assert float((source != original).float().mean()) > 0.3  # elsewhere random


def test_the_read_write_interchange_writes_the_sources_tokens_where_masked():
    """With an exact one-hot code (token t at position p adds e[p*V + t]... here: a table), reading then
    writing moves exactly the masked positions' tokens."""
    n = P * V
    table = torch.eye(n).view(P, V, n)  # position p, token t -> its own coordinate
    weight = table.clone()
    decl = Declaration(read=("linear", {"weight": weight, "bias": torch.zeros(P, V)}),
                       write=("additive-table", {"table": table}), interchange=("read-write", {}))
    method = declared.DeclaredMethod(declared.check(decl, n))
    base_tokens, source_tokens = torch.randint(0, V, (4, P)), torch.randint(0, V, (4, P))
    encode = lambda toks: table[torch.arange(P), toks].sum(1)  # noqa: E731
    mask = torch.rand(4, P) < 0.5
    out = method.interchange(encode(base_tokens), encode(source_tokens), mask)
    assert torch.allclose(out, encode(torch.where(mask, source_tokens, base_tokens)))


# ---- the baselines as declared methods (issue 28 item 4) ------------------------------------

DECLARED_BASELINES = ("onion", "linear-das", "linear-probe", "random-subspace", "onion-probe", "mlp-probe",
                      "additive-table", "linear-das-bigram", "pyvene-das")
OPEN_BASELINES = ("gru-probe", "gru-probe-ni", "reencode-distil")


def test_every_baseline_is_listed_as_declared_or_open():
    """The baseline recipe (docs/ARCHITECTURE.md): a new folder in baselines/ must be classified here,
    so the test below fits it and checks what its fit returns."""
    from benchmark.harness.submission import discover

    found = {name for name, spec in discover().items() if spec.is_baseline}
    assert found == set(DECLARED_BASELINES + OPEN_BASELINES), sorted(found ^ set(DECLARED_BASELINES + OPEN_BASELINES))


@pytest.mark.slow
@pytest.mark.parametrize("name", DECLARED_BASELINES + OPEN_BASELINES)
def test_each_baseline_is_declared_unless_it_needs_a_recurrence(name):
    """Fit with the quick check parameters on the check model: a declaration the harness accepts,
    or (the recurrent readers and the re-encoder, which no form expresses) the method itself."""
    from benchmark.data import heldout_keys
    from benchmark.harness.interface import FitData, FrozenModel, seed_everything
    from benchmark.harness.submission import resolve

    spec = resolve(name)
    model, _ = load_reference(str(CHECK_AR))
    data = FitData(model, heldout_keys(), seed=0, budget=1_000_000)
    seed_everything(0)
    method = spec.instantiate(spec.check_params)
    fitted = method.fit(FrozenModel(model, data), data)
    if name in DECLARED_BASELINES:
        decl = declared.check(fitted, int(model.state_dim))
        assert "read" in decl.operations()
    else:
        assert fitted is method


@pytest.mark.slow
def test_random_subspace_does_not_agree_with_the_model_after_its_own_write():
    """CONSISTENCY is grounded in the model's decode (issue 29 item 6): the floor, which reads
    back exactly the class mean it pasted, used to score 1.00 against its own read."""
    from benchmark.harness.submission import resolve

    model, provenance = load_reference("gru-h64-ar-s0")
    rec = run_cell(resolve("random-subspace"), model, provenance, isolate=False)
    assert rec["status"] == "ok", rec["error"]
    assert rec["metrics"]["consistency"]["agreement"] < 0.2


@pytest.mark.slow
def test_mutation_consistency_against_the_written_tokens_lets_the_floor_agree(monkeypatch):
    """Remove the grounding (judge the read against the tokens the write was asked for, i.e. the
    method's own intent) and the floor agrees with itself again."""
    import benchmark.harness.tracks.consistency as consistency
    from benchmark.harness.submission import resolve

    model, provenance = load_reference("gru-h64-ar-s0")
    monkeypatch.setattr(consistency, "decode", lambda m, states: _INTENT["after"])
    original = consistency.ConsistencyTrack.score

    def score(self, ctx, q, answers, others):
        _INTENT["after"] = answers["after"]  # the method's own read of its write: agreement by construction
        return original(self, ctx, q, answers, others)

    monkeypatch.setattr(consistency.ConsistencyTrack, "score", score)
    rec = run_cell(resolve("random-subspace"), model, provenance, isolate=False)
    assert rec["metrics"]["consistency"]["agreement"] > 0.9


_INTENT: dict = {}


def test_a_sequence_is_right_under_teacher_forcing_exactly_when_it_is_right_greedily():
    """WRITE's cause/isolate use teacher forcing (no propagated errors); its IIA keeps greedy
    decoding, which this equivalence makes the same thing."""
    from benchmark.harness.tracks.base import decode, decode_forced

    model, _ = load_reference("gru-h64-ar-s0")
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, V, (400, P), generator=gen)
    lengths = torch.full((400,), P)
    with torch.no_grad():
        states = model.encode(tokens, lengths) + 0.02 * torch.randn(400, 64, generator=gen)  # about half break
    expected = tokens
    greedy, forced = decode(model, states) == expected, decode_forced(model, states, expected) == expected
    assert torch.equal(greedy.all(1), forced.all(1))
    assert 0 < int(greedy.all(1).sum()) < 400  # both outcomes occur
    assert int((greedy != forced).sum()) > 0  # and per position they do differ: propagated errors


# ---- fitted methods as artifacts (issue 28 item 6) ------------------------------------------

@pytest.mark.slow
def test_an_exported_artifact_scores_the_same_metrics_without_fitting(tmp_path):
    """export = a sealed cell that keeps the bytes it scored; score --fitted reproduces the cell
    exactly (same outcomes) with harness code only; a tampered artifact is refused."""
    from benchmark.harness import artifacts

    model, provenance = load_reference(str(CHECK_AR))
    blobs: list[bytes] = []
    rec = run_cell(load_spec(EXAMPLE), model, provenance, limits=LIMITS, fitted_out=blobs)
    assert rec["status"] == "ok" and len(blobs) == 1
    folder = artifacts.write(tmp_path / "declared-means" / "check", rec, blobs[0])
    again = artifacts.score(artifacts.read(folder), model, provenance)
    validate(again)
    assert again["metrics"] == rec["metrics"] and again["outcomes_sha256"] == rec["outcomes_sha256"]
    assert again["method_kind"] == "declared" and again["fit"]["declaration"] == rec["fit"]["declaration"]
    assert provenance["sha256"] in (folder / "README.md").read_text()  # the model card names the weights
    data = bytearray((folder / artifacts.TENSORS).read_bytes())
    data[-1] ^= 1
    (folder / artifacts.TENSORS).write_bytes(bytes(data))
    with pytest.raises(artifacts.ArtifactError, match="do not match"):
        artifacts.read(folder)


@pytest.mark.slow
def test_score_fitted_on_an_exported_baseline_reproduces_its_committed_record(tmp_path):
    """Issue 28 acceptance: `onionbench export` then `score --fitted` gives the committed metrics,
    exactly on the recording CPU (elsewhere within verify's cross-machine float noise)."""
    import json

    from benchmark.cli import main
    from benchmark.hardware import hardware_summary

    committed = json.loads((ROOT / "leaderboard" / "results" / "random-subspace" / "gru-h48-ar-s0.json").read_text())
    assert main(["export", "random-subspace", "--models", "gru-h48-ar-s0", "--out", str(tmp_path / "art")]) == 0
    assert main(["score", "--fitted", str(tmp_path / "art"), "--results", str(tmp_path / "res")]) == 0
    again = json.loads((tmp_path / "res" / "random-subspace" / "gru-h48-ar-s0.json").read_text())
    assert again["fit"]["artifact_sha256"] and again["environment"]["sandbox"].startswith("none needed")
    if hardware_summary().split(",")[:3] == committed["hardware"].split(",")[:3]:  # the recording machine: CPU, cores, torch
        assert again["metrics"] == committed["metrics"] and again["outcomes_sha256"] == committed["outcomes_sha256"]
    else:
        for track, values in committed["metrics"].items():
            for key, value in (values or {}).items():
                assert again["metrics"][track][key] == pytest.approx(value, abs=0.01), (track, key)


@pytest.mark.slow
def test_a_forged_or_broken_artifact_is_refused_in_one_line_and_the_others_still_score(tmp_path, capsys):
    """Cheater's view of score --fitted: spec.json is the submitter's file (its sha256 covers the
    tensors, not the method block), so a record may take from it only what is checked:
    - a name with path parts would write a record outside RESULTS/METHOD/;
    - a baseline's name with other code's source would sit, up to date, in the baseline's row;
    - "baseline": true under the submitter's own name would rank it as a baseline;
    - a spec without its head, or garbage tensors with a matching sha256, must not crash the run.
    Each is one line on stderr and a non-zero exit; the good artifact is still scored, with a size."""
    import json

    from benchmark.cli import main
    from benchmark.harness import artifacts

    art = tmp_path / "art"
    assert main(["export", str(EXAMPLE), "--models", "gru-h48-ar-s0", "--out", str(art)]) == 0
    good = art / "declared-means" / "gru-h48-ar-s0"

    def forge(name: str, change) -> None:
        folder = art / name / "gru-h48-ar-s0"
        shutil.copytree(good, folder)
        spec = json.loads((folder / artifacts.SPEC).read_text())
        change(spec, folder)
        (folder / artifacts.SPEC).write_text(json.dumps(spec))

    forge("escape", lambda s, f: s["method"].update(name="../../../escaped"))
    forge("poser", lambda s, f: s["method"].update(name="random-subspace"))
    forge("self-made-baseline", lambda s, f: s["method"].update(name="self-made-baseline", baseline=True))
    forge("headless", lambda s, f: s.pop("head"))

    def garbage(spec: dict, folder: Path) -> None:
        (folder / artifacts.TENSORS).write_bytes(b"not safetensors at all")
        spec["sha256"] = __import__("hashlib").sha256(declared.join(spec["head"], b"not safetensors at all")).hexdigest()

    forge("garbage", garbage)
    capsys.readouterr()
    results = tmp_path / "res"
    assert main(["score", "--fitted", str(art), "--results", str(results)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("onionbench: ") for line in err), err
    assert any("'../../../escaped'" in line for line in err)
    assert any("not exported from that method's current source" in line for line in err)
    assert any("lacks or mistypes head" in line for line in err)
    assert any("not a usable declaration" in line for line in err)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json") if "art" not in p.parts)
    assert written == ["res/declared-means/gru-h48-ar-s0.json", "res/self-made-baseline/gru-h48-ar-s0.json"]
    made = json.loads((results / "self-made-baseline" / "gru-h48-ar-s0.json").read_text())
    assert made["method"]["baseline"] is False  # spec.json said true; only a discovered baseline's folder may
    assert made["fit"]["description_length"]["model_bytes"] > 0  # so the row has a size (Pareto view)


def test_score_fitted_refuses_the_fit_flags_it_would_ignore(tmp_path):
    from benchmark.cli import main
    from benchmark.errors import OnionbenchError

    with pytest.raises(OnionbenchError, match="--fresh, --device would be ignored"):
        from benchmark.cli.fitted import cmd_score_fitted
        from benchmark.harness.defaults import DEFAULT_BUDGET
        cmd_score_fitted(__import__("argparse").Namespace(fresh=True, force=False, device="cuda", budget=DEFAULT_BUDGET,
                                                          folder=[str(tmp_path)], results=None, seed=0))
    assert main(["score", "--fitted", str(tmp_path), "--fresh"]) != 0


def test_export_refuses_a_model_folder_it_could_not_name_again(tmp_path):
    from benchmark.cli import main

    assert main(["export", str(EXAMPLE), "--models", str(CHECK_AR), "--out", str(tmp_path)]) != 0
    assert main(["export", str(EXAMPLE), "--models", "smoke", "--device", "cuda:7", "--out", str(tmp_path)]) != 0
    assert not any(tmp_path.iterdir())


def test_score_fitted_survives_a_broken_folder_and_refuses_its_name(tmp_path):
    """`score --fitted` and `verify` called `discover()`, which raises on any unparsable
    method.toml: one broken submission stopped everyone's artifacts. Now the readable folders
    are used and only a name that cannot be trusted is refused: a broken folder's (its
    directory name) and one two folders share, whose row an artifact would join is unknown.
    Mutation check: without `refused`, the artifact named like the broken folder is accepted."""
    from types import SimpleNamespace

    from benchmark.harness import artifacts
    from benchmark.harness.submission import readable_methods

    good = (ROOT / "baselines" / "random-subspace" / "method.toml").read_text()
    for where, folder, toml in (("baselines", "random-subspace", good), ("submissions", "broken", "name = [unclosed"),
                                ("submissions", "twin-a", good.replace('"random-subspace"', '"twin"')),
                                ("submissions", "twin-b", good.replace('"random-subspace"', '"twin"'))):
        (tmp_path / where / folder).mkdir(parents=True)
        (tmp_path / where / folder / "method.toml").write_text(toml)
        shutil.copy(ROOT / "baselines" / "random-subspace" / "method.py", tmp_path / where / folder / "method.py")
    known, refused = readable_methods(tmp_path)
    assert list(known) == ["random-subspace"] and sorted(refused) == ["broken", "twin"]

    def artifact(name: str, source: str) -> SimpleNamespace:
        return SimpleNamespace(folder=tmp_path / name, spec={"method": {"name": name, "source_sha256": source}})

    assert artifacts.claim(artifact("random-subspace", known["random-subspace"].source_sha256()), known, refused)
    assert artifacts.claim(artifact("mine", "0" * 64), known, refused) is False  # a submission's own name
    for name in ("broken", "twin"):
        with pytest.raises(artifacts.ArtifactError, match="cannot be trusted"):
            artifacts.claim(artifact(name, "0" * 64), known, refused)
        assert artifacts.claim(artifact(name, "0" * 64), known) is False  # mutation: the refusal removed
