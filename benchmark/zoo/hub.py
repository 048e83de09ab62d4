"""Hugging Face Hub: publish and download the reference models and the evaluation splits.

Hub layout (organisation `onionbench` by default, overridable for a fork):

- one model repo per registry entry, `{org}/{name}` (e.g. `onionbench/gru-h48-ar-s0`), holding
  the model folder as embedded (`registry.MODEL_FILES`: config.json, model.safetensors, the
  README.md card with `model-index`, training.json, learning_curve.json);
- one dataset repo, `{org}/onionbench-splits`, holding the shipped Parquet splits
  (`benchmark/splits/*.parquet`) and a dataset card.

`publish` uploads with `huggingface_hub` (`create_repo`, `upload_folder`, `create_tag`) and pins
every upload's commit id: models in the registry (`hub_repo`, `hub_revision`), the splits in
`splits_hub.json` beside it. `download` fetches exactly those commits (or `--revision`) with
`snapshot_download` and verifies the weight sha256 against the registry.

Resolution of a registry model anywhere in the project (`registry.model_folder`): an explicit
local folder, the embedded copy, the Hugging Face cache at the pinned commit, then a download
(never when `HF_HUB_OFFLINE` is set: then a one-line error says which command to run).

A write token is read from the environment variable named by `token_env` and is only handed to
`HfApi`: it is never printed, logged or written anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

from benchmark.data import SPLIT_DIR, SPLITS, Sequences, load_split
from benchmark.errors import OnionbenchError, first_line
from benchmark.hashing import file_sha256
from benchmark.task import BENCHMARK_VERSION
from benchmark.zoo.cards import dataset_card
from benchmark.zoo.registry import HUB_ORG, MODEL_FILES, REGISTRY_PATH, ModelEntry, load_registry, save_registry, select

SPLITS_REPO_NAME = "onionbench-splits"
SPLITS_PIN_PATH = Path(__file__).parent / "splits_hub.json"  # written by `publish`: repo + commit of the splits
DEFAULT_TOKEN_ENV = "HF_TOKEN"
_COMMIT = re.compile(r"[0-9a-f]{40}")

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _endpoint(endpoint: str | None) -> str:
    return (endpoint or constants.ENDPOINT).rstrip("/")


def model_repo_id(entry: ModelEntry, org: str | None = None) -> str:
    """`{org}/{name}`: the registry's repo unless an organisation is given (publishing a fork)."""
    if org:
        return f"{org}/{entry.name}"
    return entry.hub_repo or f"{HUB_ORG}/{entry.name}"


def splits_repo_id(org: str = HUB_ORG) -> str:
    return f"{org}/{SPLITS_REPO_NAME}"


def splits_pin_path_for(registry_path: Path) -> Path:
    """The splits pin lives beside the registry it belongs to."""
    return Path(registry_path).with_name(SPLITS_PIN_PATH.name)


def read_splits_pin(path: Path = SPLITS_PIN_PATH) -> dict | None:
    """{"repo", "revision", "tag", "files"} of the published splits, or None before publication."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


# ----------------------------------------------------------------------------------------- publish


def _read_token(token_env: str) -> str:
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise OnionbenchError(f"no Hub token: set the environment variable {token_env} to a token with write access "
                              "to the organisation (it is read from the environment only, never printed or stored)")
    return token


def _source_folder(entry: ModelEntry, source: Path | None) -> Path:
    """The local model folder to publish: SOURCE/NAME if given, else the embedded copy."""
    candidates = ([Path(source) / entry.name] if source else []) + [entry.embedded_folder]
    for folder in candidates:
        if (folder / "model.safetensors").exists():
            missing = [f for f in MODEL_FILES if not (folder / f).exists()]
            if missing:
                raise OnionbenchError(f"{folder} lacks {', '.join(missing)}; a published model folder needs "
                                      f"{', '.join(MODEL_FILES)}")
            actual = file_sha256(folder / "model.safetensors")
            if actual != entry.sha256:
                raise OnionbenchError(f"{folder / 'model.safetensors'} has sha256 {actual[:12]}..., the registry pins "
                                      f"{(entry.sha256 or '')[:12]}...; refusing to publish weights the registry does not pin")
            return folder
    where = " or ".join(str(c) for c in candidates)
    raise OnionbenchError(f"{entry.name}: no model folder at {where}; "
                          f"pass --from DIR (the folder holding {entry.name}/)")


def _http_error(action: str, err: Exception) -> OnionbenchError:
    return OnionbenchError(f"{action}: {first_line(err, type(err).__name__)}")


def _publish_splits(api: HfApi, org: str, tag: str | None, pin_path: Path, log: Log) -> str:
    repo = splits_repo_id(org)
    files = {name: f"{name}-v{BENCHMARK_VERSION}.parquet" for name in SPLITS}
    for file in files.values():
        if not (SPLIT_DIR / file).exists():
            raise OnionbenchError(f"split file {SPLIT_DIR / file} is missing; "
                                  "regenerate it with `python -m benchmark.data`")
    with tempfile.TemporaryDirectory(prefix="onionbench-splits-") as tmp:
        stage = Path(tmp)
        for file in files.values():
            shutil.copy2(SPLIT_DIR / file, stage / file)
        (stage / "README.md").write_text(dataset_card(org, files))
        try:
            api.create_repo(repo, repo_type="dataset", exist_ok=True)
            message = f"onionbench splits v{BENCHMARK_VERSION}" + (f" ({tag})" if tag else "")
            info = api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=stage, commit_message=message)
            if tag:
                api.create_tag(repo, repo_type="dataset", tag=tag, revision=info.oid,
                               tag_message=f"onionbench {tag}")
        except Exception as err:  # HTTP and connection errors become one line
            if tag and getattr(getattr(err, "response", None), "status_code", None) == 409:
                raise OnionbenchError(f"publishing the splits to {repo}: tag {tag!r} exists already; "
                                      "choose a new --tag") from err
            raise _http_error(f"publishing the splits to {repo}", err) from err
        pin = {"repo": repo, "revision": info.oid, "tag": tag or "",
               "files": {file: file_sha256(stage / file) for file in files.values()}}
    Path(pin_path).write_text(json.dumps(pin, indent=1) + "\n")
    log(f"splits -> {repo} @ {info.oid}" + (f" (tag {tag})" if tag else ""))
    return info.oid


def publish(names: Iterable[str] | None = None, *, org: str = HUB_ORG, endpoint: str | None = None,
            tag: str | None = None, token_env: str = DEFAULT_TOKEN_ENV, registry_path: Path = REGISTRY_PATH,
            splits_pin_path: Path | None = None, source: Path | None = None, splits: bool = True,
            log: Log = print) -> dict[str, str]:
    """Publish registry models (default: every trained one) and the splits; return {name: commit id}.

    Each model goes to `{org}/{name}` (created if absent), is uploaded as one commit, optionally
    tagged, and its commit id is written back into the registry at `registry_path` (after each
    model, so an interrupted release keeps what it finished). Everything is checked before the
    first upload: names, trained state, local folders and their weight sha256.
    """
    registry_path = Path(registry_path)
    splits_pin_path = Path(splits_pin_path) if splits_pin_path else splits_pin_path_for(registry_path)
    entries = load_registry(registry_path)
    if names is None:
        chosen = [n for n, e in entries.items() if e.trained]
        if not chosen and not splits:
            raise OnionbenchError("no trained model in the registry; train and embed models first")
    else:
        chosen = select(list(names), entries)
    folders = {}
    for name in chosen:
        if name not in entries:
            raise OnionbenchError(f"unknown model {name!r}: publish takes registry names "
                                  "(see `onionbench models list`)")
        if not entries[name].trained:
            raise OnionbenchError(f"{name} is not trained yet (no sha256 in the registry); nothing to publish")
        folders[name] = _source_folder(entries[name], source)
    token = _read_token(token_env)
    api = HfApi(endpoint=endpoint, token=token)
    target = _endpoint(endpoint)
    log(f"publishing {len(chosen)} model(s)" + (" and the splits" if splits else "") + f" to {target} (org {org})")
    commits = {}
    for name in chosen:
        entry, repo = entries[name], f"{org}/{name}"
        try:
            api.create_repo(repo, repo_type="model", exist_ok=True)
            info = api.upload_folder(repo_id=repo, repo_type="model", folder_path=folders[name],
                                     allow_patterns=list(MODEL_FILES),
                                     commit_message=f"onionbench {name}" + (f" ({tag})" if tag else ""))
            if tag:
                api.create_tag(repo, tag=tag, revision=info.oid, tag_message=f"onionbench {tag}")
        except Exception as err:  # HTTP and connection errors become one line (never showing the token)
            if tag and getattr(getattr(err, "response", None), "status_code", None) == 409:
                raise OnionbenchError(f"publishing {name} to {repo}: tag {tag!r} exists already; "
                                      "choose a new --tag") from err
            raise _http_error(f"publishing {name} to {repo}", err) from err
        entry.hub_repo, entry.hub_revision = repo, info.oid
        save_registry(entries, registry_path)
        commits[name] = info.oid
        log(f"{name} -> {repo} @ {info.oid}" + (f" (tag {tag})" if tag else ""))
    if splits:
        commits[splits_repo_id(org)] = _publish_splits(api, org, tag, splits_pin_path, log)
    log(f"registry updated: {registry_path}")
    return commits


def upload_folder(root: Path, repo: str, patterns: list[str], message: str, *, endpoint: str | None = None,
                  tag: str | None = None, token_env: str = DEFAULT_TOKEN_ENV) -> str:
    """Upload the files under `root` that match `patterns` to the model repo `repo` as one commit
    (and tag it); return the commit id. Errors are one line and never show the token.

    Generic on purpose: the zoo knows the Hub, not what a fitted-method artifact is
    (`benchmark.harness.artifacts.publish` checks those before calling this)."""
    api = HfApi(endpoint=endpoint, token=_read_token(token_env))
    try:
        api.create_repo(repo, repo_type="model", exist_ok=True)
        info = api.upload_folder(repo_id=repo, repo_type="model", folder_path=root, allow_patterns=patterns,
                                 commit_message=message + (f" ({tag})" if tag else ""))
        if tag:
            api.create_tag(repo, tag=tag, revision=info.oid, tag_message=f"onionbench {tag}")
    except Exception as err:  # one line, never the token
        raise _http_error(f"publishing to {repo}", err) from err
    return info.oid


def snapshot_model_repo(repo: str, revision: str, *, endpoint: str | None = None,
                        cache_dir: Path | None = None) -> Path:
    """A model repo at `revision`, downloaded into the Hugging Face cache; the local folder."""
    return _snapshot(repo, revision, repo_type="model", endpoint=endpoint, cache_dir=cache_dir, allow_patterns=None)


# ---------------------------------------------------------------------------------------- download


def _explain(err: Exception, repo: str, revision: str, repo_type: str, endpoint: str | None) -> OnionbenchError:
    """Turn a failed snapshot_download into one line: no such repo, no such revision, or why not."""
    where = _endpoint(endpoint)
    if constants.is_offline_mode():
        return OnionbenchError(f"{repo} @ {revision} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                               f"run the download with network access (unset HF_HUB_OFFLINE)")
    try:
        refs = HfApi(endpoint=endpoint).list_repo_refs(repo, repo_type=repo_type)
    except HfHubHTTPError as refs_err:  # the Hub answers 401/404 RepoNotFound; a mirror may say "not cached"
        status = getattr(refs_err.response, "status_code", 0)
        if isinstance(refs_err, RepositoryNotFoundError) or status in (401, 403, 404):
            return OnionbenchError(f"no {repo_type} repo {repo} on {where} (or it is private); check the name "
                                   "and --endpoint")
        return OnionbenchError(f"cannot download {repo} @ {revision} from {where}: {first_line(err, type(err).__name__)}")
    except Exception:  # unreachable server: report the original error
        return OnionbenchError(f"cannot download {repo} @ {revision} from {where}: {first_line(err, type(err).__name__)}")
    known = {r.name for r in refs.branches} | {r.name for r in refs.tags}
    if revision not in known and not _COMMIT.fullmatch(revision):
        branches = ", ".join(sorted(r.name for r in refs.branches)) or "none"
        tags = ", ".join(sorted(r.name for r in refs.tags)) or "none"
        return OnionbenchError(f"{repo} has no revision {revision!r} on {where} (branches: {branches}; tags: {tags})")
    if _COMMIT.fullmatch(revision):
        return OnionbenchError(f"cannot download {repo} at commit {revision} from {where} (no such commit?): "
                               f"{first_line(err, type(err).__name__)}")
    return OnionbenchError(f"cannot download {repo} @ {revision} from {where}: {first_line(err, type(err).__name__)}")


def _snapshot(repo: str, revision: str, *, repo_type: str, endpoint: str | None, cache_dir: Path | None,
              allow_patterns: list[str] | None, local_only: bool = False) -> Path:
    try:
        return Path(snapshot_download(repo, repo_type=repo_type, revision=revision, endpoint=endpoint,
                                      cache_dir=cache_dir, allow_patterns=allow_patterns,
                                      local_files_only=local_only))
    except Exception as err:  # HTTP, connection, cache and validation errors all become one line
        if local_only:
            raise
        raise _explain(err, repo, revision, repo_type, endpoint) from err


def verify_weights(entry: ModelEntry, folder: Path, repo: str, revision: str) -> None:
    """The downloaded weights must be the ones the registry pins."""
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise OnionbenchError(f"{repo} @ {revision} has no model.safetensors; it is not an onionbench model repo")
    actual = file_sha256(weights)
    if actual != entry.sha256:
        fix = ("the upload or the registry is wrong: re-publish it" if revision == entry.hub_revision else
               f"drop --revision to get the pinned commit {entry.hub_revision[:12] or '(none)'}")
        raise OnionbenchError(f"{repo} @ {revision} has weights with sha256 {actual[:12]}..., the registry pins "
                              f"{(entry.sha256 or '')[:12]}... for {entry.name}; {fix}")


def download_entry(entry: ModelEntry, *, endpoint: str | None = None, revision: str | None = None,
                   cache_dir: Path | None = None, log: Log = _quiet) -> Path:
    """snapshot_download one model at its pinned commit (or `revision`), sha256-verified; its folder."""
    revision = revision or entry.hub_revision
    if not revision:
        raise OnionbenchError(f"{entry.name} has not been published yet (no hub_revision in the registry); "
                              f"pass --revision to download a branch, tag or commit of {model_repo_id(entry)}")
    repo = model_repo_id(entry)
    folder = _snapshot(repo, revision, repo_type="model", endpoint=endpoint, cache_dir=cache_dir,
                       allow_patterns=list(MODEL_FILES))
    if entry.sha256 is None:
        log(f"warning: {entry.name} has no sha256 in the registry (not trained here yet): weights not verified")
    else:
        verify_weights(entry, folder, repo, revision)
    return folder


def download(names: Iterable[str] = ("core",), *, endpoint: str | None = None, revision: str | None = None,
             cache_dir: Path | None = None, registry_path: Path = REGISTRY_PATH,
             log: Log = _quiet) -> dict[str, Path]:
    """Download registry models (names or core / smoke / extended / all); return {name: folder}."""
    entries = load_registry(Path(registry_path))
    chosen = select(list(names), entries)
    unknown = [n for n in chosen if n not in entries]
    if unknown:
        raise OnionbenchError(f"unknown model {unknown[0]!r}; valid names: core, smoke, extended, all, "
                              f"{', '.join(entries)}")
    folders = {}
    for name in chosen:
        embedded = entries[name].embedded_folder
        if not (revision or entries[name].hub_revision) and (embedded / "model.safetensors").exists():
            folders[name] = embedded  # shipped in the package: nothing to fetch
            log(f"{name}: embedded in the package at {embedded}, no download needed "
                f"(load it with benchmark.zoo.resolve.load_reference({name!r}))")
            continue
        folders[name] = download_entry(entries[name], endpoint=endpoint, revision=revision, cache_dir=cache_dir,
                                       log=log)
        verified = "sha256 verified" if entries[name].sha256 else "not verified"
        log(f"{name}: {model_repo_id(entries[name])} @ {revision or entries[name].hub_revision} -> {folders[name]} "
            f"({verified})")
    return folders


def cached_folder(entry: ModelEntry, cache_dir: Path | None = None) -> Path | None:
    """The model's folder in the Hugging Face cache at its pinned commit, or None (no network)."""
    if not entry.hub_revision:
        return None
    try:
        folder = _snapshot(model_repo_id(entry), entry.hub_revision, repo_type="model", endpoint=None,
                           cache_dir=cache_dir, allow_patterns=list(MODEL_FILES), local_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):  # not cached, or cached only in part
        return None
    return folder if (folder / "model.safetensors").exists() else None


def resolve_folder(entry: ModelEntry) -> Path:
    """After the embedded copy: the Hugging Face cache, then a download (not when offline)."""
    folder = cached_folder(entry)
    if folder is not None:
        return folder
    if not entry.hub_revision:
        raise OnionbenchError(f"{entry.name} is not embedded and has not been published to the Hub yet; train it "
                              f"(`onionbench models train`) or pass a model folder")
    if constants.is_offline_mode():
        raise OnionbenchError(f"{entry.name} is not embedded and not in the Hugging Face cache, and HF_HUB_OFFLINE is "
                              f"set: run `onionbench models download {entry.name}` with network access first")
    print(f"{entry.name} is neither embedded nor cached: downloading {model_repo_id(entry)} "
          f"@ {entry.hub_revision[:12]}", file=sys.stderr)
    return download_entry(entry)


# ------------------------------------------------------------------------------------------ splits


def download_splits(*, revision: str | None = None, repo: str | None = None, endpoint: str | None = None,
                    cache_dir: Path | None = None, pin_path: Path = SPLITS_PIN_PATH) -> Path:
    """The splits dataset repo at its pinned commit (or `revision`), via snapshot_download; its folder."""
    pin = read_splits_pin(pin_path) or {}
    repo = repo or pin.get("repo") or splits_repo_id()
    revision = revision or pin.get("revision")
    if not revision:
        raise OnionbenchError(f"the splits have not been published yet ({pin_path} is missing); pass a revision of "
                              f"{repo}, or use the shipped copies (`benchmark.data.load_split`)")
    return _snapshot(repo, revision, repo_type="dataset", endpoint=endpoint, cache_dir=cache_dir,
                     allow_patterns=["*.parquet", "README.md"])


def load_hub_split(name: str, **kwargs) -> Sequences:
    """A split from the Hub at a pinned commit, read with the local Parquet reader, hash-verified.

    `datasets.load_dataset(repo, revision=...)` ignores the revision when offline, hence
    `snapshot_download(repo_type="dataset", revision=...)` plus `benchmark.data.load_split`.
    Keyword arguments are those of `download_splits`.
    """
    if name not in SPLITS:
        raise OnionbenchError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    return load_split(name, directory=download_splits(**kwargs))
