"""Fitted methods as artifacts (issue 28 item 6): a declared cell's forms, saved and scored later.

`onionbench export` runs ordinary sealed cells and keeps, for each declared one, the bytes
the supervisor scanned and sent to scoring; `onionbench score --fitted DIR` scores such
artifacts without fitting. Why: a submitter may fit on their own machine (a GPU, a long
schedule) and hand in the result, as MIB accepts trained featurizers; and since scoring a
declaration runs harness code only, no sandbox is needed to score one.

An artifact is a folder:

    intervention.safetensors   every form's tensors ("read.weight", "write.table", ...),
                               the forms in the safetensors metadata
    spec.json                  the forms, the method's record fields, the model's name and
                               sha256, the fit's cost, and the metrics of the exporting cell
    README.md                  a model card

Artifacts are not committed to git (they are as large as the fitted tensors).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.errors import OnionbenchError, one_line
from benchmark.harness import declared
from benchmark.harness.cell import Evaluation, ScoreSettings, interchange_reads, score_in_process, shipped_evaluation
from benchmark.harness.context import identity_by_length, identity_metrics, kept_by_length, oracle_metrics
from benchmark.harness.isolation import supervisor
from benchmark.harness.isolation.launch import model_bytes
from benchmark.harness.record_fields import base_record
from benchmark.harness.submission import HYPOTHESES, NAME
from benchmark.records import ModelProvenance, seal

ARTIFACT_VERSION = 1
TENSORS, SPEC, CARD = "intervention.safetensors", "spec.json", "README.md"
# The sandbox field of a record scored from an artifact: no method code runs, so nothing is confined.
NO_CODE = "none needed: a declared artifact, scored by harness code only"


class ArtifactError(OnionbenchError):
    """A folder that is not a usable artifact; the message says why."""


@dataclass(frozen=True)
class Artifact:
    folder: Path
    blob: bytes  # the declaration exactly as it was scored (`declared.serialise`)
    spec: dict

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()


def write(folder: Path, record: dict, blob: bytes) -> Path:
    """Save one exported cell: `record` is its (ok, declared) record, `blob` its scored bytes."""
    head, tensors = declared.split(blob)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TENSORS).write_bytes(tensors)
    spec = {"artifact_version": ARTIFACT_VERSION, "head": head, "sha256": hashlib.sha256(blob).hexdigest(),
            "method": record["method"], "model": record["model"], "fit": record["fit"],
            "scoring_version": record["scoring_version"], "harness_commit": record["harness_commit"],
            "metrics": record["metrics"], "record_sha256": record["record_sha256"]}
    (folder / SPEC).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    (folder / CARD).write_text(_card(spec))
    return folder


def read(folder: Path) -> Artifact:
    """Load and check an artifact folder (ArtifactError with the reason otherwise).

    Everything in it is untrusted: spec.json's sha256 only shows that the tensors were not
    changed after spec.json was written, not who wrote it. So the fields a record copies are
    checked for shape here, and the declaration is parsed by the harness (`load_declaration`).
    """
    try:
        spec = json.loads((folder / SPEC).read_text())
        tensors = (folder / TENSORS).read_bytes()
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{folder}: not an artifact ({err}); `onionbench export` writes {SPEC} and {TENSORS}") from None
    if not isinstance(spec, dict) or spec.get("artifact_version") != ARTIFACT_VERSION:
        version = spec.get("artifact_version") if isinstance(spec, dict) else None
        raise ArtifactError(f"{folder}: artifact version {version!r}, this harness reads {ARTIFACT_VERSION}")
    _check_fields(folder, spec)
    blob = declared.join(spec["head"], tensors)
    if hashlib.sha256(blob).hexdigest() != spec["sha256"]:
        raise ArtifactError(f"{folder}: the tensors do not match spec.json's sha256 (edited or truncated)")
    return Artifact(folder, blob, spec)


def _check_fields(folder: Path, spec: dict) -> None:
    """The spec.json fields a record is built from, with the types `base_record` expects."""
    shapes = {"head": dict, "sha256": str, "method": dict, "model": dict, "fit": dict, "metrics": dict}
    bad = [k for k, kind in shapes.items() if not isinstance(spec.get(k), kind)]
    method: dict = spec["method"] if isinstance(spec.get("method"), dict) else {}
    for key, kind in (("name", str), ("hypothesis", str), ("baseline", bool), ("source_sha256", str),
                      ("params", dict), ("entry", str), ("url", str), ("authors", list)):
        if not isinstance(method.get(key), kind):
            bad.append(f"method.{key}")
    model: dict = spec["model"] if isinstance(spec.get("model"), dict) else {}
    bad += [f"model.{k}" for k in ("name", "sha256") if not isinstance(model.get(k), str)]
    if bad:
        raise ArtifactError(f"{folder}: spec.json lacks or mistypes {', '.join(bad)}; re-export it with `onionbench export`")
    if not NAME.match(method["name"]) or method["hypothesis"] not in HYPOTHESES:
        raise ArtifactError(f"{folder}: method name {method['name']!r} or hypothesis {method['hypothesis']!r} is not "
                            f"one a method.toml may carry (names: {NAME.pattern}; hypotheses: {', '.join(HYPOTHESES)})")


def claim(artifact: Artifact, known: Mapping, refused: Mapping[str, str] | None = None) -> bool:
    """Whether the record may call the artifact a baseline; ArtifactError if it poses as another method.

    `known` and `refused` are `submission.readable_methods()`. An artifact named after a
    known method must carry that folder's current source sha256 (then its `baseline` flag is
    the folder's); a refused name (a folder that does not parse, a name used twice) is
    refused, since whose row it would join cannot be told; any other name is a submission's,
    never a baseline. Why: the record's method block comes from spec.json, which anyone can
    write; a forged one could otherwise sit in a baseline's row, up to date and unflagged.
    """
    method = artifact.spec["method"]
    if refused and method["name"] in refused:
        raise ArtifactError(f"{artifact.folder}: named {method['name']!r}, a method folder that cannot be "
                            f"trusted now: {refused[method['name']]}")
    spec = known.get(method["name"])
    if spec is None:
        return False
    if spec.source_sha256() != method["source_sha256"]:
        raise ArtifactError(f"{artifact.folder}: named {method['name']!r}, but not exported from that method's "
                            f"current source ({spec.folder}); re-export it, or give your method its own name")
    return bool(spec.is_baseline)


def load_declaration(artifact: Artifact, state_dim: int) -> declared.Declaration:
    """The harness's parse of the artifact's declaration; any failure is one ArtifactError."""
    try:
        return declared.load(artifact.blob, state_dim)
    except Exception as err:  # untrusted bytes: safetensors, JSON and shape checks may all refuse
        raise ArtifactError(f"{artifact.folder}: not a usable declaration "
                            f"({one_line(err, limit=300)})") from None


def find(root: Path) -> list[Path]:
    """Artifact folders under `root` (itself, or METHOD/MODEL folders below it), sorted."""
    if (root / SPEC).is_file():
        return [root]
    found = sorted(p.parent for p in root.rglob(SPEC))
    if not found:
        raise ArtifactError(f"{root}: no artifact ({SPEC}) found; make them with `onionbench export METHOD`")
    return found


class _Spec:
    """The method fields of the exporting cell's record, shaped as `base_record` reads a MethodSpec."""

    def __init__(self, method: dict, is_baseline: bool) -> None:
        self.name, self.hypothesis, self.is_baseline = method["name"], method["hypothesis"], is_baseline
        self.entry, self.url, self.authors = method["entry"], method["url"], method["authors"]
        self._source = method["source_sha256"]

    def source_sha256(self) -> str:
        return self._source


def score(artifact: Artifact, model: torch.nn.Module, provenance: ModelProvenance, *, is_baseline: bool = False,
          settings: ScoreSettings = ScoreSettings(), evaluation: Evaluation | None = None) -> dict:
    """A sealed record for the artifact on `model`: the cell's own queries, checks and metrics,
    answered by the harness's `DeclaredMethod` in this process (no method code exists to run).

    is_baseline: what `claim` allowed (never spec.json's own word)."""
    if artifact.spec["model"]["sha256"] != provenance["sha256"]:
        raise ArtifactError(f"{artifact.folder}: fitted on {artifact.spec['model']['name']} "
                            f"({artifact.spec['model']['sha256'][:12]}), not on these weights ({provenance['sha256'][:12]})")
    evaluation = evaluation or shipped_evaluation(settings)
    method_fields = artifact.spec["method"]
    record = base_record(_Spec(method_fields, is_baseline), provenance, model, evaluation.test, evaluation.name,
                         method_fields["params"], seed=settings.seed, budget=artifact.spec["fit"]["budget"],
                         plan_seed=evaluation.plan_seed)
    decl = load_declaration(artifact, int(model.state_dim))  # type: ignore[arg-type]
    fit = {k: artifact.spec["fit"][k] for k in ("seconds", "sequences_drawn", "budget")
           if isinstance(artifact.spec["fit"].get(k), (int, float)) and not isinstance(artifact.spec["fit"][k], bool)}
    forms = {op: n for op, (n, _) in decl.operations().items()}
    record["fit"] = {**fit, "declaration": {"forms": forms, **declared.size(decl)}, "artifact_sha256": artifact.sha256,
                     "description_length": description_length(artifact.blob, model)}
    record.update(method_kind="declared", method_parameters=record["fit"]["declaration"]["parameters"],
                  interchange_reads=interchange_reads(None, {"forms": forms}))
    record["environment"]["sandbox"] = NO_CODE
    start = time.perf_counter()
    ctx = score_in_process(declared.DeclaredMethod(decl), model, evaluation, record, seed=settings.seed)
    record["bounds"] = {"oracle": oracle_metrics(ctx), "identity": identity_metrics(ctx),
                        "identity_by_length": identity_by_length(ctx)}
    record["kept_by_length"] = kept_by_length(ctx)
    record["eval_seconds"] = round(time.perf_counter() - start, 2)
    return seal(record)


def description_length(blob: bytes, model: torch.nn.Module) -> dict:
    """As the supervisor measures a sealed cell's (lzma bytes of what scoring receives against
    the model's weight bytes); an artifact has no method folder, so the blob alone. Without
    it the row has no size and never reaches the Pareto view."""
    return supervisor.description_length(blob, None, model_bytes(model))


def _card(spec: dict) -> str:
    m, model, d = spec["method"], spec["model"], spec["fit"].get("declaration", {})
    forms = ", ".join(f"{op}: `{name}`" for op, name in d.get("forms", {}).items())
    metrics = ", ".join(f"{t} {v.get('iia', v.get('sequence_accuracy')):.3f}" for t, v in spec["metrics"].items()
                        if v and t in ("read", "write", "interchange"))
    return (f"# {m['name']} fitted on {model['name']}\n\n"
            f"A declared intervention exported by `onionbench export` (artifact version {ARTIFACT_VERSION}).\n\n"
            f"- method: `{m['name']}` (hypothesis `{m['hypothesis']}`), source sha256 `{m['source_sha256']}`, "
            f"by {', '.join(m['authors']) or 'unknown'} ({m['url']})\n"
            f"- model: `{model['name']}`, weights sha256 `{model['sha256']}`\n"
            f"- forms: {forms}; {d.get('parameters', 0):,} parameters, {d.get('bytes', 0):,} bytes\n"
            f"- scored when exported (scoring version {spec['scoring_version']}, harness "
            f"{spec['harness_commit'][:12]}): {metrics}\n\n"
            "Score it again with `onionbench score --fitted FOLDER`: scoring runs harness code only.\n")


def publish(root: Path, repo: str, *, endpoint: str | None = None, tag: str | None = None,
            token_env: str = "HF_TOKEN", log=print) -> str:
    """Upload the fitted-method artifacts under `root` (`onionbench export`'s METHOD/MODEL folders)
    to the model repo `repo` as one commit; return its id. Every artifact is checked (its tensors
    against its sha256) before the first byte goes out."""
    from benchmark.zoo.hub import upload_folder

    folders = find(root)
    for folder in folders:
        read(folder)
    patterns = [pattern for n in (TENSORS, SPEC, CARD) for pattern in (n, f"**/{n}")]  # root itself may be one
    commit = upload_folder(root, repo, patterns, f"onionbench artifacts ({len(folders)})", endpoint=endpoint,
                           tag=tag, token_env=token_env)
    log(f"{len(folders)} artifact(s) -> {repo} @ {commit}" + (f" (tag {tag})" if tag else ""))
    return commit


def download(repo: str, revision: str, *, endpoint: str | None = None, cache_dir: Path | None = None) -> Path:
    """Fetch an artifacts repo at `revision` (pin a commit id for a citable result); every artifact
    in it is checked; returns the local folder for `onionbench score --fitted`."""
    from benchmark.zoo.hub import snapshot_model_repo

    folder = snapshot_model_repo(repo, revision, endpoint=endpoint, cache_dir=cache_dir)
    for found in find(folder):
        read(found)
    return folder
