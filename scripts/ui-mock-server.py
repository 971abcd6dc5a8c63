#!/usr/bin/env python3
"""A stand-in dispatcher for developing the playground (ui/) before the real
server serves it: serves ui/ at /ui/ with the headers the real server must
send (CSP and friends, see ui/README.md) and a small in-memory copy of the
JSON API routes the page uses (docs/api.md §3): collections, functions
with every version kept (like db_s3), invoke through `node js/bootstrap.mjs`
in one-shot mode with `include_logs`, and the optional bearer token.

It is NOT the product and checks much less than faas-server does; it exists
so scripts/ui-test.py can be run end to end while the server routes are
being written. Loopback only.

    python3 scripts/ui-mock-server.py --port 8099 [--token secret]

With `--proxy http://127.0.0.1:8080` it serves only ui/ itself and forwards
every other request (method, path, query, body, Authorization) to a real
dispatcher, so the page can be tried against the real API on one origin.
"""

import argparse
import datetime
import json
import mimetypes
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UI_DIR = os.path.join(ROOT, "ui")
BOOTSTRAP = os.path.join(ROOT, "js", "bootstrap.mjs")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SEGMENT = re.compile(r"^[a-z0-9_-]+$")

LOCK = threading.Lock()
COLLECTIONS = {"": {"env": {}, "created_at": None}}  # path -> {env, created_at}
FUNCTIONS = {}  # (collection, name) -> [version dicts], version N at index N-1


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Fail(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def norm_path(p):
    p = (p or "").strip().strip("/").lower()
    if p and not all(SEGMENT.match(s) and s not in ("functions", "env", "__root__") for s in p.split("/")):
        raise Fail(400, "INVALID_COLLECTION_PATH", f"invalid collection path {p!r}")
    return p


def check_env(env):
    if env is None:
        return {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise Fail(400, "INVALID_ENV", "env must be an object of strings")
    for k in env:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k) or k == "PORT" or k.startswith("LOWCODE_FAAS_"):
            raise Fail(400, "INVALID_ENV", f"invalid env key {k!r}")
    return env


def fn_json(cp, name, v):
    fid = f"{cp}/{name}" if cp else name
    out = {"id": fid, "name": name, "language": "javascript", "source_code": v["source_code"],
           "created_at": v["created_at"], "version": v["version"], "deployment_id": f"{fid}@v{v['version']}"}
    if cp:
        out["collection_path"] = cp
    if v["env"]:
        out["env"] = v["env"]
    return out


def need_collection(cp):
    if cp not in COLLECTIONS:
        raise Fail(404, "COLLECTION_NOT_FOUND", f"collection {cp} not found")


def need_function(cp, name):
    need_collection(cp)
    if not NAME.match(name or ""):
        raise Fail(400, "INVALID_NAME", f"invalid function name {name!r}")
    if (cp, name) not in FUNCTIONS:
        raise Fail(404, "FUNCTION_NOT_FOUND", f"function {name} not found")
    return FUNCTIONS[(cp, name)]


def run(cp, name, version, body):
    fid = f"{cp}/{name}" if cp else name
    run_id = "run-" + str(uuid.uuid4())
    env = {}
    env.update(COLLECTIONS[""]["env"])
    parts = cp.split("/") if cp else []
    for i in range(len(parts)):
        env.update(COLLECTIONS["/".join(parts[: i + 1])]["env"])
    env.update(version["env"])
    env.update(check_env(body.get("env")))
    dep = f"{fid}@v{version['version']}"
    env.update({"LOWCODE_FAAS_RUN_ID": run_id, "LOWCODE_FAAS_EXECUTION_ID": run_id,
                "LOWCODE_FAAS_FUNCTION_NAME": name, "LOWCODE_FAAS_COLLECTION_PATH": cp,
                "LOWCODE_FAAS_DEPLOYMENT_ID": dep, "LOWCODE_FAAS_DEPLOYMENT_VERSION": str(version["version"]),
                "LOWCODE_FAAS_FUNCTION_LOG_MAX_BYTES": "1048576"})
    timeout_ms = body.get("timeout_ms") or 120000
    start = datetime.datetime.now()
    d = tempfile.mkdtemp(prefix="ui-mock-run-")
    try:
        shutil.copy(BOOTSTRAP, os.path.join(d, "bootstrap.mjs"))
        with open(os.path.join(d, "function.mjs"), "w") as f:
            f.write(version["source_code"])
        with open(os.path.join(d, "input.json"), "w") as f:
            json.dump(body.get("input") or {}, f)
        envelope = None
        try:
            subprocess.run([shutil.which("node") or "node", os.path.join(d, "bootstrap.mjs")], cwd=d, env=env,
                           timeout=timeout_ms / 1000, capture_output=True)
            with open(os.path.join(d, "output.json")) as f:
                envelope = json.load(f)
        except subprocess.TimeoutExpired:
            envelope = {"type": "error", "code": "TIMEOUT", "message": f"function timed out after {timeout_ms} ms"}
        except (OSError, ValueError):
            envelope = {"type": "error", "code": "EXITED_WITHOUT_OUTPUT", "message": "no output.json"}
        logs = []
        try:
            with open(os.path.join(d, "logs.ndjson")) as f:
                for line in f:
                    e = json.loads(line)
                    logs.append({"stream": "stdout", "level": e.get("level"), "time": e.get("ts"),
                                 "message": e.get("message")})
        except OSError:
            pass
    finally:
        shutil.rmtree(d, ignore_errors=True)
    res = {"run_id": run_id, "execution_id": run_id, "function_id": fid,
           "deployment_version": version["version"], "deployment_id": dep, "start_kind": "cold",
           "duration_ms": int((datetime.datetime.now() - start).total_seconds() * 1000)}
    if cp:
        res["collection_path"] = cp
    if envelope.get("type") == "result":
        res.update({"status": "success", "http_status_code": 200,
                    "http_headers": {"Content-Type": "application/json"},
                    "output": envelope.get("value"), "error_message": ""})
    else:
        code, msg = envelope.get("code", "INTERNAL"), envelope.get("message", "")
        res.update({"status": "failed", "error_code": code, "http_status_code": 0,
                    "output": {"ok": False, "error": msg, "code": code}, "error_message": msg})
    if body.get("include_logs"):
        res["logs"] = logs
        res["logs_truncated"] = False
    return res


def route(method, path, query, body):
    """Returns (status, json or None)."""
    segs = [s for s in path.split("/") if s != ""]
    if segs == ["collections"]:
        if method == "GET":
            return 200, [{"path": p, "created_at": c["created_at"]} for p, c in sorted(COLLECTIONS.items()) if p]
        if method == "POST":
            cp = norm_path(body.get("path"))
            if not cp:
                raise Fail(400, "INVALID_COLLECTION_PATH", "the root cannot be created")
            env = check_env(body.get("env"))
            if cp in COLLECTIONS:
                raise Fail(409, "COLLECTION_EXISTS", f"collection {cp} exists")
            parts = cp.split("/")
            for i in range(len(parts)):
                COLLECTIONS.setdefault("/".join(parts[: i + 1]), {"env": {}, "created_at": now()})
            COLLECTIONS[cp]["env"] = env
            return 201, {"path": cp, "created_at": COLLECTIONS[cp]["created_at"]}
        raise Fail(405, "METHOD_NOT_ALLOWED", "method not allowed")
    if segs and segs[0] == "functions":
        cp, rest = norm_path(query.get("collection_path", [""])[-1]), segs[1:]
    elif segs and segs[0] == "collections":
        rest = segs[1:]
        if "functions" in rest:
            i = rest.index("functions")
            cp, rest = norm_path("/".join(rest[:i])), rest[i + 1:]
        elif rest and rest[-1] == "env" and method == "PUT":
            cp = norm_path("/".join(rest[:-1]))
            need_collection(cp)
            if not isinstance(body.get("env"), dict):
                raise Fail(400, "INVALID_ENV", "env is required")
            COLLECTIONS[cp]["env"] = check_env(body.get("env"))
            return 200, {"status": "ok"}
        elif method == "DELETE":
            cp = norm_path("/".join(rest))
            need_collection(cp)
            if any(k[0] == cp for k in FUNCTIONS) or any(p.startswith(cp + "/") for p in COLLECTIONS):
                raise Fail(409, "COLLECTION_NOT_EMPTY", f"collection {cp} is not empty")
            del COLLECTIONS[cp]
            return 204, None
        else:
            raise Fail(404, "NOT_FOUND", "no such route")
    else:
        raise Fail(404, "NOT_FOUND", "no such route")
    # functions routes: rest = [] | [name] | [name, action]
    if not rest:
        need_collection(cp)
        if method == "GET":
            return 200, [{k: v for k, v in fn_json(c, n, vs[-1]).items() if k not in ("source_code", "env", "deployment_id")}
                         for (c, n), vs in sorted(FUNCTIONS.items()) if c == cp]
        if method == "POST":
            name = body.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                raise Fail(400, "INVALID_NAME", f"invalid function name {name!r}")
            if not isinstance(body.get("source_code"), str):
                raise Fail(400, "SOURCE_REQUIRED", "source_code is required")
            vs = FUNCTIONS.setdefault((cp, name), [])
            vs.append({"version": len(vs) + 1, "source_code": body["source_code"],
                       "env": check_env(body.get("env")), "created_at": now()})
            return 201, fn_json(cp, name, vs[-1])
        raise Fail(405, "METHOD_NOT_ALLOWED", "method not allowed")
    name, action = rest[0], (rest[1] if len(rest) > 1 else None)
    vs = need_function(cp, name)
    if action is None and method == "GET":
        v = query.get("version", [None])[-1]
        if v:
            if not v.isdigit() or int(v) < 1:
                raise Fail(400, "INVALID_VERSION", f"invalid version {v!r}")
            if int(v) > len(vs):
                raise Fail(404, "VERSION_NOT_FOUND", f"version {v} not found")
            return 200, fn_json(cp, name, vs[int(v) - 1])
        return 200, fn_json(cp, name, vs[-1])
    if action is None and method == "PUT":
        cur = vs[-1]
        env = cur["env"] if body.get("env") is None else check_env(body.get("env"))
        src = body.get("source_code", cur["source_code"])
        vs.append({"version": len(vs) + 1, "source_code": src, "env": env, "created_at": now()})
        return 200, fn_json(cp, name, vs[-1])
    if action is None and method == "DELETE":
        del FUNCTIONS[(cp, name)]
        return 204, None
    if action == "versions" and method == "GET":
        return 200, [{"version": v["version"], "created_at": v["created_at"]} for v in reversed(vs)]
    if action == "invoke" and method == "POST":
        pin = body.get("version") or (int(query["version"][-1]) if query.get("version") else None)
        if pin is not None and (not isinstance(pin, int) or pin < 1):
            raise Fail(400, "INVALID_VERSION", "invalid version")
        if pin is not None and pin > len(vs):
            raise Fail(404, "VERSION_NOT_FOUND", f"version {pin} not found")
        if body.get("input") is not None and not isinstance(body.get("input"), dict):
            raise Fail(400, "INVALID_INPUT", "input must be an object")
        return 200, run(cp, name, vs[(pin or len(vs)) - 1], body)
    if action == "pull" and method == "POST":
        raise Fail(502, "SOURCE_FETCH_FAILED", "the mock server does not fetch sources")
    raise Fail(404, "NOT_FOUND", "no such route")


class Handler(BaseHTTPRequestHandler):
    token = None
    proxy = None

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="application/json", extra=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def serve_ui(self, path):
        rel = path[len("/ui/"):] or "index.html"
        full = os.path.realpath(os.path.join(UI_DIR, rel))
        if not full.startswith(os.path.realpath(UI_DIR) + os.sep) or not os.path.isfile(full):
            return self.send(404, {"error": "no such route", "code": "NOT_FOUND"})
        ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        with open(full, "rb") as f:
            data = f.read()
        self.send(200, data, ctype, {
            "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    def handle_any(self, method):
        url = urlsplit(self.path)
        if method == "GET" and url.path == "/ui":
            return self.send(308, None, extra={"Location": "/ui/"})
        if method == "GET" and url.path.startswith("/ui/"):
            return self.serve_ui(url.path)
        if self.proxy:
            return self.forward(method)
        if self.token and self.headers.get("Authorization", "") != f"Bearer {self.token}":
            return self.send(401, {"error": "missing or wrong bearer token", "code": "UNAUTHORIZED"})
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return self.send(400, {"error": f"invalid JSON: {e}", "code": "INVALID_JSON"})
        try:
            with LOCK:
                status, out = route(method, url.path, parse_qs(url.query), body)
        except Fail as f:
            return self.send(f.status, {"error": f.message, "code": f.code})
        self.send(status, out)

    def forward(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        req = urllib.request.Request(self.proxy + self.path, data=data, method=method)
        for h in ("Authorization", "Content-Type", "Accept"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req, timeout=960) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        except OSError as e:
            return self.send(502, {"error": f"proxy: {e}", "code": "WORKER_UNAVAILABLE"})
        self.send(status, body if body else None)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--token")
    ap.add_argument("--proxy", help="forward the API to this dispatcher (http://127.0.0.1:PORT)")
    args = ap.parse_args()
    Handler.token = args.token
    Handler.proxy = args.proxy.rstrip("/") if args.proxy else None
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"ui mock server on http://127.0.0.1:{srv.server_port}/ui/", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
