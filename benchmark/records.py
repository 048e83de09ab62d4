"""Result records (PROTOCOL §5): one JSON file per (method, model), schema-validated.

The ground floor (issue 32): the harness writes records, the board and the audit read them,
and the studies write their curve and data files with the same atomic writer, all through
this one torch-free module, so the board never imports the harness.

`metrics` holds only what a re-score must reproduce exactly; timings and environment sit
beside it. `record_sha256` covers the whole record except itself, so an edited number is
detectable; `outcomes_sha256` covers every per-example outcome.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import NotRequired, TypedDict

from benchmark.errors import OnionbenchError

SCHEMA_PATH = Path(__file__).parent / "record.schema.json"
RECORD_VERSION = 1
# Bump when a change to the harness changes any metric. 2: consistency vs own read.
# 3: two-process cells (the model is for fit only), shuffled queries, `method_parameters`.
# 4: sealed cells (bubblewrap), declared methods, CONSISTENCY against the model's decode,
#    WRITE cause/isolate under teacher forcing.
SCORING_VERSION = "4"


class ModelProvenance(TypedDict):
    """Where a scored model's weights came from: what a record's `model` block is built from.

    Why typed: it travels from `benchmark.zoo.resolve.load_reference` through the cell, the
    artifacts and every study as a plain dict, and a missing or misspelt key used to surface
    only as a KeyError deep in a study. `name` and `sha256` identify the weights and are
    always present; the rest describe the family and are None (or absent) for a model folder
    outside the registry, where the record fills them from the folder's name or the model.
    `hidden_size` is the family's N, not state_dim (an LSTM's is 2N).
    """

    name: str
    sha256: str
    architecture: NotRequired[str | None]
    hidden_size: NotRequired[int | None]
    variant: NotRequired[str | None]
    seed: NotRequired[int | None]
    tier: NotRequired[str | None]


def canonical(obj: object) -> bytes:
    """The bytes hashed for a record: sorted keys, no whitespace."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def record_hash(record: dict) -> str:
    """sha256 of the record without its `record_sha256` field."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "record_sha256"})).hexdigest()


def seal(record: dict) -> dict:
    """Add `record_sha256`."""
    return {**record, "record_sha256": record_hash(record)}


def harness_commit() -> str:
    """The git commit of the harness (with `-dirty` when the work tree has changes), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "benchmark"], cwd=root, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a score depends on."""
    out = {"python": platform.python_version()}
    for lib in ("torch", "numpy", "scikit-learn", "datasets", "safetensors", "huggingface-hub"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def record_path(results: Path, method: str, model: str) -> Path:
    return Path(results) / method / f"{model}.json"


TEMPORARY_PREFIX = ".tmp-"


def record_files(results: Path) -> list[Path]:
    """Every record file under `results`, sorted; `write_atomic`'s temporary files are not records.

    Why: a run killed between `write_atomic`'s write and its rename leaves a complete copy of
    a record under a `.tmp-` name. Read as a record, it is a second record of the same cell,
    and the board refuses to build (one record per method and model).
    """
    return sorted(p for p in Path(results).rglob("*.json") if not p.name.startswith(TEMPORARY_PREFIX))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, record: dict) -> None:
    """Temporary file in the same folder, fsync, rename: a kill never leaves a partial record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY_PREFIX, suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=1, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a record is as readable as any file written here
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=2)
def _validator(schema_text: str):
    """One validator per schema text, its schema checked once.

    Why: `jsonschema.validate` checks the schema against its meta-schema and builds a new
    validator on every call; over the 450-odd committed records that was most of a
    leaderboard build's time. Keyed by the file's text, so an edited schema is seen.
    """
    import jsonschema  # imported here: only resumption and the leaderboard need it, not every CLI call

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(record: dict, where: str = "record") -> None:
    """Schema check plus hash check; raises OnionbenchError naming `where`."""
    import jsonschema

    err = jsonschema.exceptions.best_match(_validator(SCHEMA_PATH.read_text()).iter_errors(record))
    if err is not None:  # the error `jsonschema.validate` would raise
        path = "/".join(str(p) for p in err.absolute_path) or "(top)"
        version = record.get("scoring_version") if isinstance(record, dict) else None
        why = (f" (it is scoring version {version}, this harness's is {SCORING_VERSION}: re-score it with "
               "onionbench score ... --force)" if isinstance(version, str) and version != SCORING_VERSION else "")
        raise OnionbenchError(f"{where}: does not match the record schema at {path}: {err.message}{why}") from err
    if record["record_sha256"] != record_hash(record):
        raise OnionbenchError(f"{where}: record_sha256 does not match its content (edited by hand?)")


def read_record(path: Path) -> dict:
    """Load and validate one record."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OnionbenchError(f"{path}: unreadable record: {err}") from err
    validate(record, str(path))
    return record


def cell_key(record: dict) -> dict:
    """What decides whether a record is up to date: same inputs -> same metrics."""
    return {"benchmark_version": record["benchmark_version"], "scoring_version": record["scoring_version"],
            "method_sha256": record["method"]["source_sha256"], "params": record["method"]["params"],
            "model_sha256": record["model"]["sha256"], "split_sha256": record["split"]["sha256"],
            "plan_seed": record["plan_seed"], "seed": record["seed"], "budget": record["fit"]["budget"],
            "device": record["fit"].get("device", "cpu")}

