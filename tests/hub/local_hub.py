"""A small Hugging Face Hub-compatible HTTP server for tests (loopback only, test use only).

No server installable from PyPI implements both the upload and the download side of the Hub
API used by huggingface_hub 2.x (hf-local-hub's wheel needs a separately built Go binary;
olah is a read-only mirror of huggingface.co), so the tests run the real huggingface_hub
client and transformers against this one through HF_ENDPOINT.

It implements only what `lcfm push` and `from_pretrained` need, for model and dataset repos
(KIND is `models` or `datasets`; dataset files resolve under /datasets/ORG/NAME/...):

- POST /api/repos/create                    create a repo (409 if it exists)
- POST /api/validate-yaml                   README front matter: the metadata checks below
- POST /api/KIND/ORG/NAME/preupload/REV     every file is "regular" (inline base64)
- POST /api/KIND/ORG/NAME/commit/REV        NDJSON commit: file, deletedFile, deletedFolder
- POST /api/KIND/ORG/NAME/branch/BRANCH     create a branch
- GET  /api/KIND/ORG/NAME[/revision/REV]    repo info (sha, siblings, private)
- GET  /api/KIND/ORG/NAME/tree/REV[/PATH]   file listing (for delete_patterns)
- HEAD/GET [/datasets]/ORG/NAME/resolve/REV/PATH  file download with ETag and X-Repo-Commit

The YAML checks follow the Hub's documented card metadata: a mapping; `base_model` and
`datasets` are repository ids; `model-index` parses with huggingface_hub's own
`model_index_to_eval_results` and every metric has a numeric value; a dataset card's
`configs` each name a config and its data files.

Answering "regular" to preupload keeps the client off the Xet/LFS storage protocols (which need a
separate storage service); the commit, cache and download logic of the client is the real one.
Writes need an `Authorization: Bearer` header (the configured token when one is given); reads
of a private repo need it too, and otherwise get the Hub's 401 + `X-Error-Code: RepoNotFound`.

The server binds 127.0.0.1 on a port chosen by the OS, answers at most `max_requests` requests
(503 after that), times out idle connections, and stops when the context manager exits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from huggingface_hub.repocard_data import model_index_to_eval_results

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as `oid` and ETag for regular files."""
    return hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


class Repo:
    def __init__(self, repo_id: str, private: bool, repo_type: str = "model"):
        self.repo_id, self.private, self.repo_type = repo_id, private, repo_type
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.refs["main"] = self._store({".gitattributes": GITATTRIBUTES}, "initial commit", None)

    def _store(self, files: dict[str, bytes], message: str, parent: str | None) -> str:
        listing = sorted((path, git_blob_sha(content)) for path, content in files.items())
        digest = hashlib.sha1(json.dumps([parent, message, time.time_ns(), listing]).encode())
        digest = digest.hexdigest()
        self.commits[digest] = files
        return digest

    def resolve(self, revision: str) -> str:
        revision = unquote(revision)
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit(self, branch: str, operations: list[dict], message: str) -> str:
        branch = unquote(branch)
        if branch not in self.refs:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        parent = self.refs[branch]
        files = dict(self.commits[parent])
        for op in operations:
            key, value = op["key"], op["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:  # lfsFile: this server never asks for LFS uploads
                raise HubError(422, f"unsupported commit operation {key!r}")
        self.refs[branch] = self._store(files, message, parent)
        return self.refs[branch]


class LocalHub:
    """`with LocalHub() as hub:` serves on `hub.endpoint`; `hub.requests` logs every request
    as (method, path, authorization header)."""

    def __init__(self, token: str | None = None, max_requests: int = 2000):
        self.token, self.max_requests = token, max_requests
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LocalHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def files(self, repo_id: str, revision: str = "main",
              repo_type: str = "model") -> dict[str, bytes]:
        repo = self.repos[_key(repo_id, repo_type)]
        return dict(repo.commits[repo.resolve(revision)])


def _key(repo_id: str, repo_type: str) -> str:
    """Model repos under their id (as the Hub's URLs), others under `TYPEs/ORG/NAME`."""
    return repo_id if repo_type == "model" else f"{repo_type}s/{repo_id}"


def _is_repo_id(value) -> bool:
    return isinstance(value, str) and value.count("/") == 1 and all(value.split("/"))


def metadata_errors(meta, repo_type: str) -> list[str]:
    """The card metadata checks of this server (module docstring)."""
    if not isinstance(meta, dict):
        return ["the YAML front matter must be a mapping"]
    errors = []
    for key in ("base_model", "datasets"):
        value = meta.get(key)
        ids = [value] if isinstance(value, str) else value
        if value is not None and not (isinstance(ids, list) and all(map(_is_repo_id, ids))):
            errors.append(f'"{key}" must be repository ids (ORG/NAME), got {value!r}')
    for key in ("license", "library_name", "pipeline_tag", "pretty_name"):
        if key in meta and not isinstance(meta[key], str):
            errors.append(f'"{key}" must be a string')
    if "tags" in meta and not (isinstance(meta["tags"], list)
                               and all(isinstance(t, str) for t in meta["tags"])):
        errors.append('"tags" must be a list of strings')
    if "model-index" in meta:
        try:
            _, results = model_index_to_eval_results(meta["model-index"])
        except (KeyError, TypeError, IndexError) as exc:
            errors.append(f'"model-index" does not parse ({type(exc).__name__}: {exc})')
        else:
            if not results or not all(isinstance(r.metric_value, int | float)
                                      and r.task_type and r.dataset_type for r in results):
                errors.append('"model-index": every result needs a task, a dataset and '
                              "numeric metric values")
    if repo_type == "dataset" and "configs" in meta:
        configs = meta["configs"]
        if not isinstance(configs, list) or not all(
                isinstance(c, dict) and c.get("config_name") and c.get("data_files")
                for c in configs):
            errors.append('"configs" must list mappings with config_name and data_files')
    return errors


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds an idle keep-alive connection is kept

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # ---- plumbing ---------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json", head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, payload, head: bool = False) -> None:
        self._send(status, json.dumps(payload).encode(), head=head)

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        url = urlsplit(self.path)
        auth = self.headers.get("Authorization")
        body = self._body() if method in ("POST", "PUT") else b""
        with hub.lock:
            hub.requests.append((method, url.path, auth))
            over_budget = len(hub.requests) > hub.max_requests
        if over_budget:
            return self._json(503, {"error": "request budget of the test server exhausted"})
        try:
            with hub.lock:
                self._route(method, url.path, parse_qs(url.query), auth, body)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            body = json.dumps({"error": err.message, **err.extra}).encode()
            self._send(err.status, body, headers, head=method == "HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # ---- access -----------------------------------------------------------------------
    def _check_write(self, auth: str | None) -> None:
        if not auth or not auth.startswith("Bearer "):
            raise HubError(401, "Invalid credentials in Authorization header")
        if self.hub.token is not None and auth != f"Bearer {self.hub.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str, auth: str | None) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private:
            try:
                self._check_write(auth)
            except HubError:
                raise HubError(401, "Repository not found", "RepoNotFound") from None
        return repo

    # ---- routes -----------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict, auth: str | None, body: bytes):
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(auth, json.loads(body or b"{}"))
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
            repo = self._repo(_key(repo_id, parts[1][:-1]), auth)
            if method == "POST" and len(rest) == 2 and rest[0] == "preupload":
                self._check_write(auth)
                return self._preupload(repo, rest[1], json.loads(body))
            if method == "POST" and len(rest) == 2 and rest[0] == "commit":
                self._check_write(auth)
                return self._commit(repo, rest[1], body)
            if method == "POST" and len(rest) == 2 and rest[0] == "branch":
                self._check_write(auth)
                return self._branch(repo, unquote(rest[1]), json.loads(body or b"{}"))
            if method in ("GET", "HEAD") and not rest:
                return self._info(repo, "main", method == "HEAD")
            if method in ("GET", "HEAD") and len(rest) == 2 and rest[0] == "revision":
                return self._info(repo, rest[1], method == "HEAD")
            if method == "GET" and len(rest) >= 2 and rest[0] == "tree":
                return self._tree(repo, rest[1], unquote("/".join(rest[2:])),
                                  query.get("recursive", ["false"])[0].lower() == "true")
        if method in ("GET", "HEAD") and len(parts) >= 6 and parts[0] == "datasets" \
                and parts[3] == "resolve":
            repo = self._repo(_key(f"{parts[1]}/{parts[2]}", "dataset"), auth)
            return self._resolve(repo, parts[4], unquote("/".join(parts[5:])), method == "HEAD")
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            repo = self._repo(f"{parts[0]}/{parts[1]}", auth)
            return self._resolve(repo, parts[3], unquote("/".join(parts[4:])), method == "HEAD")
        raise HubError(404, f"no route for {method} {path}")

    def _create_repo(self, auth, payload: dict):
        self._check_write(auth)
        repo_type = payload.get("type") or "model"
        if repo_type not in ("model", "dataset"):
            raise HubError(400, "this test server hosts model and dataset repos only")
        name, org = payload.get("name"), payload.get("organization")
        if not name or not org:
            raise HubError(400, "name and organization are required")
        repo_id = f"{org}/{name}"
        url = f"{self.hub.endpoint}/{_key(repo_id, repo_type)}"
        if _key(repo_id, repo_type) in self.hub.repos:
            raise HubError(409, f"You already created this {repo_type} repo", url=url)
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.hub.repos[_key(repo_id, repo_type)] = Repo(repo_id, private, repo_type)
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict):
        content = payload.get("content", "")
        if content.startswith("---"):
            front = content.split("---", 2)[1]
            try:
                errors = metadata_errors(yaml.safe_load(front), payload.get("repoType", "model"))
            except yaml.YAMLError as exc:
                errors = [str(exc)]
            if errors:
                return self._json(400, {"errors": [{"message": e} for e in errors],
                                        "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo: Repo, revision: str, payload: dict):
        files = repo.commits[repo.resolve(revision)]
        self._json(200, {"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_sha(files[f["path"]]) if f["path"] in files else None}
            for f in payload["files"]]})

    def _commit(self, repo: Repo, revision: str, body: bytes):
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        sha = repo.commit(revision, lines[1:], lines[0]["value"].get("summary", ""))
        url = f"{self.hub.endpoint}/{_key(repo.repo_id, repo.repo_type)}"
        self._json(200, {"commitUrl": f"{url}/commit/{sha}",
                         "commitOid": sha, "pullRequestUrl": None, "success": True})

    def _branch(self, repo: Repo, branch: str, payload: dict):
        if branch in repo.refs:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        repo.refs[branch] = repo.resolve(payload.get("startingPoint") or "main")
        self._json(200, {})

    def _info(self, repo: Repo, revision: str, head: bool):
        sha = repo.resolve(revision)
        self._json(200, {
            "id": repo.repo_id, "modelId": repo.repo_id, "sha": sha, "private": repo.private,
            "disabled": False, "gated": False, "tags": [], "downloads": 0, "likes": 0,
            "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]}, head=head)

    def _tree(self, repo: Repo, revision: str, folder: str, recursive: bool):
        files = repo.commits[repo.resolve(revision)]
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            parents = rest.split("/")[:-1]
            folders.update(prefix + "/".join(parents[:i + 1]) for i in range(len(parents)))
            entries.append({"type": "file", "path": path, "size": len(files[path]),
                            "oid": git_blob_sha(files[path])})
        entries += [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(),
                     "size": 0} for d in sorted(folders)]
        self._json(200, entries)

    def _resolve(self, repo: Repo, revision: str, path: str, head: bool):
        sha = repo.resolve(revision)
        files = repo.commits[sha]
        if path not in files:
            raise HubError(404, "Entry not found", "EntryNotFound")
        content = files[path]
        self._send(200, content, {"ETag": f'"{git_blob_sha(content)}"', "X-Repo-Commit": sha,
                                  "Accept-Ranges": "bytes"},
                   content_type="application/octet-stream", head=head)
