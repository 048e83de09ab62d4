"""Hub publish and download, end to end, against a Hub-compatible server on 127.0.0.1.

The project's real code (`benchmark.zoo.hub`, `registry.model_folder`, the CLI) runs unmodified
against the servers of `tests/hub_server.py`: uploads go to a minimal upload server of our own,
downloads come from `olah` (an independent implementation of the Hub's read protocol) serving
the same git repos. Nothing leaves 127.0.0.1.

Everything uses a temporary registry, Hugging Face cache and repo store: benchmark/registry.json
is never touched. `HF_HUB_OFFLINE` (set by CI) is switched off only inside the `hub` fixture, by
patching `huggingface_hub.constants` (read at import), and switched back on where a test checks
offline behaviour.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants

from benchmark.cli import main
from benchmark.data import load_split
from benchmark.errors import OnionbenchError
from benchmark.harness import artifacts as artifacts_lib
from benchmark.hashing import file_sha256
from benchmark.zoo import hub as hublib
from benchmark.zoo.architectures import load_model
from benchmark.zoo.registry import MODEL_FILES, REGISTRY_PATH, ModelEntry, load_registry, save_registry
from benchmark.zoo.resolve import model_folder
from tests.hub_server import GitStore, OlahServer, UploadServer, git

SOURCE = Path(__file__).parents[1] / "benchmark" / "zoo" / "check"  # two tiny trained models (N=16)
AR, NI = "gru-h16-ar-check", "gru-h16-ni-check"
ORG, TAG = "testorg", "v0.1"
TOKEN_ENV, TOKEN = "ONIONBENCH_TEST_HUB_TOKEN", "hf_test_secret_0123456789"


class Hub:
    """What the fixture set up: servers, the temporary registry, and what publish returned."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = GitStore(tmp / "repos")
        self.upload = UploadServer(self.store, TOKEN).start()
        self.olah = OlahServer(self.store, tmp / "olah").start()
        self.registry = tmp / "registry.json"
        self.pin = tmp / "splits_hub.json"
        self.log: list[str] = []
        self.commits: dict[str, str] = {}

    def entries(self) -> dict[str, ModelEntry]:
        return load_registry(self.registry)

    def stop(self) -> None:
        self.olah.stop()
        self.upload.stop()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(folder: Path) -> tuple[torch.Tensor, ...]:
    """Encoder states, teacher-forced logits and greedy outputs on 512 test sequences."""
    model = load_model(str(folder))  # strict=True
    seqs = load_split("test")[:512]
    with torch.no_grad():
        h = model.encode(seqs.tokens, seqs.lengths)
        return h, model.decode(h, seqs.tokens), model.generate(h)


@pytest.fixture(scope="module")
def loopback_only():
    """Safety net: this process may resolve no host but 127.0.0.1 / localhost (no internet, ever)."""
    real, blocked = socket.getaddrinfo, []

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            blocked.append(host)
            raise OSError(f"tests/test_hub.py blocked a connection to {host!r}")
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", guarded)
        yield
    assert not blocked, f"something tried to reach {blocked}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory, loopback_only):
    registry_before = _sha(REGISTRY_PATH) if REGISTRY_PATH.exists() else None
    tmp = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", False)  # CI sets HF_HUB_OFFLINE=1, which blocks loopback too
        mp.setattr(constants, "HF_HUB_DISABLE_XET", True)  # plain HTTP uploads (the test server has no Xet)
        mp.setenv("HF_HUB_DISABLE_XET", "1")
        mp.setattr(constants, "HF_HUB_CACHE", str(tmp / "hf-cache"))  # the default cache of model_folder()
        mp.setenv(TOKEN_ENV, TOKEN)
        h = Hub(tmp)
        try:
            # where model_folder() downloads from: HF_ENDPOINT as huggingface_hub read it at import (both constants)
            mp.setattr(constants, "ENDPOINT", h.olah.url)
            mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                       h.olah.url + "/{repo_id}/resolve/{revision}/{filename}")
            save_registry({name: ModelEntry(name=name, hidden_size=16, variant=name.split("-")[2], seed=0,
                                            tier="extended", parameters=0,
                                            sha256=file_sha256(SOURCE / name / "model.safetensors"))
                           for name in (AR, NI)}, h.registry)
            h.commits = hublib.publish(None, org=ORG, endpoint=h.upload.url, tag=TAG, token_env=TOKEN_ENV,
                                       registry_path=h.registry, splits_pin_path=h.pin, source=SOURCE,
                                       log=h.log.append)
            yield h
        finally:
            h.stop()
    assert (_sha(REGISTRY_PATH) if REGISTRY_PATH.exists() else None) == registry_before


def test_publish_pins_commits_tags_and_never_shows_the_token(hub):
    entries = hub.entries()
    for name in (AR, NI):
        repo = hub.store.path("model", f"{ORG}/{name}")
        assert entries[name].hub_repo == f"{ORG}/{name}"
        assert entries[name].hub_revision == hub.commits[name] == git(repo, "rev-parse", "main")
        assert git(repo, "rev-parse", f"{TAG}^{{commit}}") == hub.commits[name]
        assert sorted(git(repo, "ls-tree", "--name-only", "main").split()) == sorted(MODEL_FILES)
        card = git(repo, "show", "main:README.md")
        assert "model-index:" in card and card == (SOURCE / name / "README.md").read_text().strip()
    splits = hub.store.path("dataset", f"{ORG}/onionbench-splits")
    pin = json.loads(hub.pin.read_text())
    assert pin["repo"] == f"{ORG}/onionbench-splits"
    assert pin["revision"] == git(splits, "rev-parse", "main") == git(splits, "rev-parse", f"{TAG}^{{commit}}")
    files = sorted(git(splits, "ls-tree", "--name-only", "main").split())
    assert files == ["README.md", "test-v1.parquet", "valid-v1.parquet"]
    assert "configs:" in git(splits, "show", "main:README.md")
    for text in [*hub.log, hub.registry.read_text(), hub.pin.read_text()]:
        assert TOKEN not in text


def test_publish_errors_are_one_line(hub, monkeypatch):
    kwargs = dict(org=ORG, endpoint=hub.upload.url, registry_path=hub.registry, splits_pin_path=hub.pin,
                  source=SOURCE, log=lambda _: None)
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(OnionbenchError, match=f"set the environment variable {TOKEN_ENV}"):
        hublib.publish([AR], token_env=TOKEN_ENV, **kwargs)
    monkeypatch.setenv(TOKEN_ENV, "hf_wrong_token")
    with pytest.raises(OnionbenchError, match="401") as err:
        hublib.publish([AR], token_env=TOKEN_ENV, **kwargs)
    assert "\n" not in str(err.value) and "hf_wrong_token" not in str(err.value)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with pytest.raises(OnionbenchError, match="exists already"):  # a release tag is never moved
        hublib.publish([AR], token_env=TOKEN_ENV, tag=TAG, splits=False, **kwargs)
    assert hub.entries()[AR].hub_revision == hub.commits[AR]  # a failed release does not move the pin


def test_publish_command_line(hub, tmp_path, capsys):
    registry = tmp_path / "registry.json"  # a copy: the fixture's pins stay as they are
    shutil.copy(hub.registry, registry)
    rc = main(["models", "publish", "--org", ORG, "--endpoint", hub.upload.url, "--token-env", TOKEN_ENV,
               "--models", AR, "--from", str(SOURCE), "--no-splits", "--registry", str(registry)])
    captured = capsys.readouterr()
    head = git(hub.store.path("model", f"{ORG}/{AR}"), "rev-parse", "main")
    assert rc == 0 and head in captured.out and TOKEN not in captured.out + captured.err
    assert load_registry(registry)[AR].hub_revision == head != hub.commits[AR]
    rc = main(["models", "publish", "--org", ORG, "--endpoint", hub.upload.url, "--token-env", "NO_SUCH_TOKEN_VAR",
               "--models", AR, "--from", str(SOURCE), "--registry", str(registry)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "NO_SUCH_TOKEN_VAR" in err and "\n" not in err


def test_download_at_pinned_commit_is_bit_identical(hub, tmp_path, capsys):
    folders = hublib.download([AR, NI], endpoint=hub.olah.url, cache_dir=tmp_path, registry_path=hub.registry)
    for name, folder in folders.items():
        assert folder.name == hub.commits[name]  # the snapshot of the pinned commit
        for file in MODEL_FILES:
            assert (folder / file).read_bytes() == (SOURCE / name / file).read_bytes()
        for got, expected in zip(_outputs(folder), _outputs(SOURCE / name)):
            assert torch.equal(got, expected)
    # the command line, at a tag
    rc = main(["models", "download", AR, "--endpoint", hub.olah.url, "--revision", TAG,
               "--cache-dir", str(tmp_path / "cli"), "--registry", str(hub.registry)])
    out = capsys.readouterr().out
    assert rc == 0 and "sha256 verified" in out and hub.commits[AR] in out


def test_splits_from_the_hub_at_the_pinned_commit(hub, tmp_path):
    for revision in (None, TAG):  # the pin, then the tag
        seqs = hublib.load_hub_split("test", revision=revision, endpoint=hub.olah.url, cache_dir=tmp_path,
                                     pin_path=hub.pin)
        shipped = load_split("test")
        assert torch.equal(seqs.tokens, shipped.tokens) and torch.equal(seqs.lengths, shipped.lengths)


def test_download_errors(hub, tmp_path, capsys):
    kwargs = dict(endpoint=hub.olah.url, cache_dir=tmp_path, registry_path=hub.registry)
    with pytest.raises(OnionbenchError, match="unknown model 'gru-h999-ar-s0'"):
        hublib.download(["gru-h999-ar-s0"], **kwargs)
    rc = main(["models", "download", "gru-h999-ar-s0", "--endpoint", hub.olah.url, "--registry", str(hub.registry)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("onionbench: error: unknown model") and "\n" not in err
    with pytest.raises(OnionbenchError, match=r"has no revision 'v9\.9'.*tags: v0\.1"):
        hublib.download([AR], revision="v9.9", **kwargs)
    with pytest.raises(OnionbenchError, match="no such commit"):
        hublib.download([AR], revision="0" * 40, **kwargs)
    entries = hub.entries()  # a model whose repo does not exist on this Hub
    entries[AR].hub_repo = f"{ORG}/no-such-repo"
    with pytest.raises(OnionbenchError, match=f"no model repo {ORG}/no-such-repo"):
        hublib.download_entry(entries[AR], endpoint=hub.olah.url, cache_dir=tmp_path)
    # someone pushes other weights to main: the pinned sha256 catches it; the pinned commit still works
    HfApi(endpoint=hub.upload.url, token=TOKEN).upload_file(
        path_or_fileobj=str(SOURCE / NI / "model.safetensors"), path_in_repo="model.safetensors",
        repo_id=f"{ORG}/{AR}", commit_message="replace the weights")
    with pytest.raises(OnionbenchError, match="sha256") as err:
        hublib.download([AR], revision="main", **kwargs)
    assert "\n" not in str(err.value)
    assert hublib.download([AR], **kwargs)[AR].name == hub.commits[AR]
    entries = hub.entries()  # a registry whose sha256 does not match its own pinned commit
    entries[AR].sha256 = "0" * 64
    with pytest.raises(OnionbenchError, match="the upload or the registry is wrong"):
        hublib.download_entry(entries[AR], endpoint=hub.olah.url, cache_dir=tmp_path)


def test_fitted_artifacts_round_trip_through_the_hub(hub, tmp_path, capsys):
    """Issue 28 item 6: `models publish --artifacts` uploads exported forms as one commit; `models
    download --artifacts` fetches them at that commit, checked, ready for `score --fitted`."""
    from benchmark.harness import artifacts
    from benchmark.harness.cell import run_cell
    from benchmark.harness.submission import load_spec
    from benchmark.zoo.resolve import load_reference

    model, provenance = load_reference(str(SOURCE / AR))
    blobs: list[bytes] = []
    rec = run_cell(load_spec(Path(__file__).parent / "methods" / "declared-means"), model, provenance,
                   isolate=False, fitted_out=blobs)
    assert rec["status"] == "ok", rec["error"]
    root = tmp_path / "art"
    artifacts.write(root / "declared-means" / AR, rec, blobs[0])
    assert main(["models", "publish", "--artifacts", str(root), "--repo", f"{ORG}/fitted", "--endpoint",
                 hub.upload.url, "--token-env", TOKEN_ENV]) == 0
    commit = capsys.readouterr().out.strip().rsplit("@ ", 1)[1].split()[0]
    assert TOKEN not in commit
    folder = artifacts_lib.download(f"{ORG}/fitted", commit, endpoint=hub.olah.url, cache_dir=tmp_path / "cache")
    fetched = artifacts.read(folder / "declared-means" / AR)
    assert fetched.blob == blobs[0]
    again = artifacts.score(fetched, model, provenance)
    assert again["metrics"] == rec["metrics"]
    assert main(["models", "publish", "--artifacts", str(root), "--endpoint", hub.upload.url]) == 2  # no --repo
    # one artifact folder as the root: its own files are uploaded (the **/ patterns alone matched none)
    assert main(["models", "publish", "--artifacts", str(root / "declared-means" / AR), "--repo", f"{ORG}/one",
                 "--endpoint", hub.upload.url, "--token-env", TOKEN_ENV]) == 0
    one = capsys.readouterr().out.strip().rsplit("@ ", 1)[1].split()[0]
    single = artifacts_lib.download(f"{ORG}/one", one, endpoint=hub.olah.url, cache_dir=tmp_path / "cache")
    assert artifacts.read(single).blob == blobs[0]
    # models (not artifacts) need an organisation: without one the repos were named "None/<model>"
    assert main(["models", "publish", "--endpoint", hub.upload.url, "--token-env", TOKEN_ENV]) == 2
    assert "needs --org" in capsys.readouterr().err


# runs last: it stops the servers
def test_resolution_uses_the_cache_once_the_server_is_gone(hub, monkeypatch):
    entries = hub.entries()
    folder = model_folder(AR, entries)  # not embedded, not cached: downloaded from HF_ENDPOINT (olah)
    assert folder.is_relative_to(constants.HF_HUB_CACHE) and folder.name == hub.commits[AR]
    hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert model_folder(AR, entries) == folder  # from the cache, no server, offline
    for got, expected in zip(_outputs(folder), _outputs(SOURCE / AR)):
        assert torch.equal(got, expected)
    with pytest.raises(OnionbenchError) as err:  # offline and never downloaded: say what to run
        model_folder(NI, entries)
    assert f"run `onionbench models download {NI}`" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # online, but the server is gone. (At a branch: at a commit id huggingface_hub lists the tree
    # with 5 backed-off retries, 23 s, before giving up; the message is the same.)
    with pytest.raises(OnionbenchError, match="cannot download") as err:
        hublib.download_entry(entries[NI], revision="main")
    assert "\n" not in str(err.value)
    entries[NI].hub_revision = ""  # never published, not embedded
    with pytest.raises(OnionbenchError, match="has not been published"):
        model_folder(NI, entries)

