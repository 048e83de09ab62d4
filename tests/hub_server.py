"""Test infrastructure (not part of onionbench): a Hugging Face Hub on 127.0.0.1, in two halves.

- Downloads: `olah` (PyPI, an independent implementation of the Hub's read protocol) serving
  the git repos under `ROOT/{models,datasets}/ORG/NAME` as local mirrors, offline (it never
  contacts an upstream). `huggingface_hub.snapshot_download` talks to it unmodified: revision
  info, tree listing, refs, HEAD/GET `resolve/...`.
- Uploads: `UploadServer`, a minimal server of our own for the write endpoints `HfApi` uses
  (olah has none). It turns them into real git commits in the same repos, with git plumbing:

    POST /api/repos/create                     create the repo (409 if it exists)
    POST /api/validate-yaml                    parse the README front matter (400 if invalid)
    POST /api/{type}s/{org}/{name}/preupload/{rev}   every file "regular" (no LFS, no Xet)
    POST /api/{type}s/{org}/{name}/commit/{rev}      ndjson: header, file (base64), deletedFile
    POST /api/{type}s/{org}/{name}/tag/{rev}         create a tag (409 if it exists)

  Every request must carry `Authorization: Bearer TOKEN` (401 otherwise), so the tests also
  check that publish sends the token it read from the environment. Errors carry the Hub's
  `X-Error-Code` headers (RepoNotFound, RevisionNotFound) so `huggingface_hub` raises its
  usual exceptions. Only what onionbench's publish uses is implemented: no LFS, no PRs,
  no copies.

Commit ids are real git commit ids, so the ids `publish` writes into the registry are the
revisions olah serves.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

_GIT_ENV = {"GIT_AUTHOR_NAME": "onionbench-test", "GIT_AUTHOR_EMAIL": "test@localhost",
            "GIT_COMMITTER_NAME": "onionbench-test", "GIT_COMMITTER_EMAIL": "test@localhost",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
_REPO_OP = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)/(preupload|commit|tag)/(.+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo: Path, *args: str, data: bytes | None = None, env: dict | None = None) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True, check=True,
                            env={**os.environ, **_GIT_ENV, **(env or {})})
    return result.stdout.decode().strip()


class GitStore:
    """Hub repos as git repositories at ROOT/{type}s/ORG/NAME (olah's mirror layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.lock = threading.Lock()

    def path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / f"{repo_type}s" / repo_id

    def create(self, repo_type: str, repo_id: str) -> bool:
        path = self.path(repo_type, repo_id)
        with self.lock:
            if path.exists():
                return False
            path.mkdir(parents=True)
            git(path, "init", "-q", "-b", "main")
            return True

    def resolve(self, path: Path, revision: str) -> str | None:
        try:
            return git(path, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}")
        except subprocess.CalledProcessError:
            return None

    def commit(self, path: Path, branch: str, header: dict, ops: list[tuple[str, str, bytes | None]]) -> str:
        """One commit on `branch` from (kind, path, content) ops, without touching a work tree."""
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            parent = self.resolve(path, f"refs/heads/{branch}")
            if parent:
                git(path, "read-tree", parent, env=env)
            for kind, name, content in ops:
                if kind == "file":
                    blob = git(path, "hash-object", "-w", "--stdin", data=content)
                    git(path, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
                else:  # deletedFile
                    git(path, "update-index", "--force-remove", name, env=env)
            tree = git(path, "write-tree", env=env)
            message = header.get("summary") or "commit"
            if header.get("description"):
                message += "\n\n" + header["description"]
            commit = git(path, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
            git(path, "update-ref", f"refs/heads/{branch}", commit, *([parent] if parent else []))
            return commit

    def tag(self, path: Path, tag: str, commit: str) -> bool:
        with self.lock:
            if self.resolve(path, f"refs/tags/{tag}"):
                return False
            git(path, "update-ref", f"refs/tags/{tag}", commit)
            return True


class _Handler(BaseHTTPRequestHandler):
    server: UploadServer

    def log_message(self, *args) -> None:  # keep test output clean
        return None

    def _reply(self, status: int, body: dict | None = None, error_code: str | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_code:
            self.send_header("X-Error-Code", error_code)
        if status >= 400 and body and "error" in body:
            self.send_header("X-Error-Message", body["error"])
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # downloads are olah's job
        self._reply(404, {"error": "this test server only implements uploads"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            return self._reply(401, {"error": "Invalid credentials in Authorization header"})
        path = urlsplit(self.path).path
        try:
            if path == "/api/repos/create":
                return self._create(json.loads(body))
            if path == "/api/validate-yaml":
                return self._validate_yaml(json.loads(body))
            match = _REPO_OP.match(path)
            if not match:
                return self._reply(404, {"error": f"not implemented: POST {path}"})
            plural, org, name, op, revision = match.groups()
            repo_type, repo_id, revision = plural[:-1], f"{org}/{name}", unquote(revision)
            repo = self.server.store.path(repo_type, repo_id)
            if not repo.exists():
                return self._reply(404, {"error": "Repository not found"}, "RepoNotFound")
            if op == "preupload":
                files = json.loads(body)["files"]
                return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                   for f in files]})
            if op == "commit":
                return self._commit(repo_type, repo_id, repo, revision, body)
            return self._tag(repo, revision, json.loads(body))
        except Exception as err:  # a bug here must show up as a clear test failure, not a hang
            return self._reply(500, {"error": f"{type(err).__name__}: {err}"})

    def _create(self, payload: dict) -> None:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.url}/{prefix}{repo_id}"
        if not self.server.store.create(repo_type, repo_id):
            return self._reply(409, {"error": "You already created this repo", "url": url})
        return self._reply(200, {"url": url})

    def _validate_yaml(self, payload: dict) -> None:
        match = re.match(r"\s*---\n(.*?)\n---", payload.get("content", ""), flags=re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as err:
            return self._reply(400, {"errors": [{"message": f"invalid YAML: {err}"}]})
        if meta is not None and not isinstance(meta, dict):
            return self._reply(400, {"errors": [{"message": "metadata must be a mapping"}]})
        return self._reply(200, {"warnings": []})

    def _commit(self, repo_type: str, repo_id: str, repo: Path, branch: str, body: bytes) -> None:
        header, ops = {}, []
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                ops.append(("file", value["path"], base64.b64decode(value["content"])))
            elif key == "deletedFile":
                ops.append(("deletedFile", value["path"], None))
            else:
                return self._reply(400, {"error": f"operation {key!r} is not supported by this test server"})
        if self.server.store.resolve(repo, f"refs/heads/{branch}") is None and \
                self.server.store.resolve(repo, "HEAD") is not None:
            return self._reply(404, {"error": f"Invalid rev id: {branch}"}, "RevisionNotFound")
        commit = self.server.store.commit(repo, branch, header, ops)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.url}/{prefix}{repo_id}/commit/{commit}"
        return self._reply(200, {"commitOid": commit, "commitUrl": url, "pullRequestUrl": None})

    def _tag(self, repo: Path, revision: str, payload: dict) -> None:
        commit = self.server.store.resolve(repo, revision)
        if commit is None:
            return self._reply(404, {"error": f"Invalid rev id: {revision}"}, "RevisionNotFound")
        if not self.server.store.tag(repo, payload["tag"], commit):
            return self._reply(409, {"error": f"Tag {payload['tag']} already exists"})
        return self._reply(200, {})


class UploadServer(ThreadingHTTPServer):
    """The upload half, in a thread of the test process: `start()`, `url`, `stop()`."""

    daemon_threads = True

    def __init__(self, store: GitStore, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store, self.token = store, token
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> UploadServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(10)
        self.server_close()


class OlahServer:
    """The download half: `python -m olah.server` in a subprocess, offline, serving the git store."""

    def __init__(self, store: GitStore, workdir: Path) -> None:
        self.store, self.workdir = store, Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> OlahServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "olah.toml"
        config.write_text(f'[basic]\nhost = "127.0.0.1"\nport = {self.port}\n'
                          f'repos-path = "{self.workdir / "cache"}"\nmirrors-path = ["{self.store.root}"]\n'
                          f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
                          "[accessibility]\noffline = true\n")
        self.log = open(self.workdir / "olah.out", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "olah.server", "-c", str(config),
                                         "--log-path", str(self.workdir / "logs")],
                                        cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited with {self.process.returncode}: "
                                   f"{(self.workdir / 'olah.out').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/api/models/none/none/revision/main", timeout=2)
            except urllib.error.HTTPError:
                return self  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.2)
                continue
            return self
        self.stop()
        raise RuntimeError(f"olah did not start within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None:
            self.log.close()
