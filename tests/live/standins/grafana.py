"""Stand-in for the `grafana/grafana` image in the live tests (no Grafana server build is on a
package registry this machine can reach).

Our own small server with the image's interface, taking the same inputs: the `GF_*`
environment (with the image's `GF_<VAR>__FILE` convention), the provisioning directory
(`GF_PATHS_PROVISIONING`: `datasources/*.yaml`, `dashboards/*.yaml` providers pointing at
dashboard JSON), its data directory (`GF_PATHS_DATA`, where the admin user is created once),
and serving from a sub-path (`GF_SERVER_ROOT_URL`, `GF_SERVER_SERVE_FROM_SUB_PATH`). It fails
where Grafana fails: an invalid datasource or provider file stops the start; a dashboard file
that cannot be read is logged and skipped; a panel's query against an unknown datasource uid,
a bad datasource URL or a Prometheus error comes back as that query's error. The HTTP API is
the part of Grafana's the tests use: `/api/health` (open), and behind Grafana's sign-in
(anonymous role, basic auth unless disabled, or the session of `POST /login` unless the
login form is disabled): `/api/search`,
`/api/dashboards/uid/<uid>`, `/api/dashboards/home`, `/api/datasources` (admins) and
`/api/ds/query`, which runs a panel's PromQL targets through the datasource URL with
Prometheus' HTTP API as Grafana's Prometheus plugin does. It renders no UI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

TRUE = {"1", "t", "true", "y", "yes", "on"}
FALSE = {"0", "f", "false", "n", "no", "off"}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class RefusedError(Exception):
    """Grafana refuses to start with this input."""


def read_file_variants(env: MutableMapping[str, str]) -> None:
    """The image's entrypoint: `GF_X__FILE=<path>` sets GF_X to the file's content (trailing
    newlines dropped); setting both is refused."""
    for name in [n for n in env if n.startswith("GF_") and n.endswith("__FILE")]:
        target = name.removesuffix("__FILE")
        if target in env:
            raise RefusedError(f"both {target} and {name} are set (but are exclusive)")
        env[target] = Path(env[name]).read_text().rstrip("\n")


def setting(section: str, key: str, default: str = "") -> str:
    """`[section] key` of grafana.ini as its environment override (`auth.basic` -> AUTH_BASIC)."""
    return os.environ.get(f"GF_{section}_{key}".upper().replace(".", "_"), default)


def flag(section: str, key: str, default: bool) -> bool:
    """An ini boolean as Grafana parses it; anything else keeps the default."""
    value = setting(section, key).strip().lower()
    return True if value in TRUE else False if value in FALSE else default


def interpolate(value: object) -> object:
    """Provisioning files expand `$VAR` and `${VAR}` from the environment; `$$` is a `$`."""
    if isinstance(value, str):
        return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)",
                      lambda m: "$" if m.group(0) == "$$"
                      else os.environ.get(m.group(1) or m.group(2), ""), value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def config_files(directory: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(p for p in directory.glob("*") if p.suffix in (".yaml", ".yml")):
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise RefusedError(f"{path}: not valid YAML: {err}") from None
        if document is not None and not isinstance(document, dict):
            raise RefusedError(f"{path}: expected a mapping")
        found.append((path, interpolate(document or {})))
    return found


def load_datasources(root: Path) -> dict[str, dict]:
    """Datasources by uid; any invalid entry stops the start, as in Grafana."""
    by_uid: dict[str, dict] = {}
    for path, document in config_files(root / "datasources"):
        for ds in document.get("datasources") or []:
            where = f"{path}: datasource {ds.get('name')!r}"
            if not ds.get("name") or not ds.get("type"):
                raise RefusedError(f"{where}: name and type are required")
            if ds.get("orgId", 1) != 1:
                raise RefusedError(f"{where}: organization {ds['orgId']} does not exist")
            if ds.setdefault("access", "proxy") not in ("proxy", "direct"):
                raise RefusedError(f"{where}: invalid access value {ds['access']!r}")
            ds.setdefault("uid", hashlib.sha1(ds["name"].encode()).hexdigest()[:14])
            if ds["uid"] in by_uid:
                raise RefusedError(f"{where}: uid {ds['uid']!r} is used twice")
            by_uid[ds["uid"]] = ds
    if sum(bool(ds.get("isDefault")) for ds in by_uid.values()) > 1:
        raise RefusedError("datasource.yaml config is invalid. Only one datasource per "
                      "organization can be marked as default")
    return by_uid


def load_dashboards(root: Path) -> dict[str, dict]:
    """Dashboards by uid, each with its provider's folder and file. A bad provider file stops
    the start; a missing directory or a dashboard file that is not valid JSON with a title is
    logged and skipped, as Grafana does."""
    found: dict[str, dict] = {}
    names: set[str] = set()
    for path, document in config_files(root / "dashboards"):
        for provider in document.get("providers") or []:
            name = provider.get("name")
            if not name or name in names:
                raise RefusedError(f"{path}: each dashboard provider needs a unique name ({name!r})")
            names.add(name)
            if provider.get("type", "file") != "file" or not (provider.get("options") or {}).get(
                    "path"):
                raise RefusedError(f"{path}: provider {name!r} needs type file and options.path")
            directory = Path(provider["options"]["path"])
            if not directory.is_dir():
                log(f"provider {name!r}: cannot read directory {directory}")
                continue
            for file in sorted(directory.rglob("*.json")):
                try:
                    dashboard = json.loads(file.read_text())
                except (OSError, ValueError) as err:
                    log(f"failed to load dashboard from {file}: {err}")
                    continue
                if not isinstance(dashboard, dict) or not dashboard.get("title"):
                    log(f"failed to load dashboard from {file}: dashboard title cannot be empty")
                    continue
                uid = dashboard.setdefault("uid", hashlib.sha1(str(file).encode()).hexdigest()[:9])
                if uid in found:
                    log(f"dashboard uid {uid!r} is used by {file} and {found[uid]['file']}")
                    continue
                found[uid] = {"dashboard": dashboard, "file": str(file),
                              "folder": provider.get("folder", "")}
    return found


# --- users: created once, with the data directory's database ------------------------------

def hashed(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000, 50).hex()


def open_users(data: Path) -> sqlite3.Connection:
    """The admin user is created when the database is; later starts keep its password."""
    data.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(data / "grafana.db", check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS user (login TEXT PRIMARY KEY, salt TEXT, hash TEXT)")
    if db.execute("SELECT count(*) FROM user").fetchone()[0] == 0:
        salt = secrets.token_hex(5)
        db.execute("INSERT INTO user VALUES (?, ?, ?)",
                   (setting("security", "admin_user", "admin"), salt,
                    hashed(setting("security", "admin_password", "admin"), salt)))
        db.commit()
    return db


def valid_login(db: sqlite3.Connection, login: str, password: str) -> bool:
    row = db.execute("SELECT salt, hash FROM user WHERE login = ?", (login,)).fetchone()
    return bool(row) and secrets.compare_digest(hashed(password, row[0]), row[1])


# --- panel queries through the Prometheus HTTP API -------------------------------------------

def epoch(value: object, now: float) -> float:
    """Grafana's time range: epoch milliseconds or `now`, `now-6h`..."""
    text = str(value)
    if text.isdigit():
        return int(text) / 1000
    match = re.fullmatch(r"now(?:-(\d+)([smhdw]))?", text)
    if not match:
        raise ValueError(f"invalid time {text!r}")
    return now - (int(match.group(1)) * UNITS[match.group(2)] if match.group(1) else 0)


def seconds(duration: str, default: float) -> float:
    match = re.fullmatch(r"(\d+)([smhdw])", duration or "")
    return int(match.group(1)) * UNITS[match.group(2)] if match else default


def prometheus(ds: dict, target: dict, start: float, end: float) -> list[dict]:
    """One target as the Prometheus plugin runs it: a range query over the panel's time
    range (an instant query if the target says so), at the datasource's URL."""
    url = urllib.parse.urlsplit(ds.get("url", ""))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"invalid data source URL {ds.get('url')!r}")
    json_data = ds.get("jsonData") or {}
    instant = target.get("instant") and not target.get("range")
    if instant:
        path, form = "query", {"query": target["expr"], "time": end}
    else:
        floor = seconds(json_data.get("timeInterval"), 15)
        points = int(target.get("maxDataPoints") or 1000)
        step = max(floor, target.get("intervalMs", 0) / 1000, (end - start) / points, 1)
        path, form = "query_range", {"query": target["expr"], "start": start, "end": end,
                                     "step": round(step)}
    body = urllib.parse.urlencode(form)
    address = f"{ds['url'].rstrip('/')}/api/v1/{path}"
    if json_data.get("httpMethod", "POST").upper() == "GET":
        request = urllib.request.Request(f"{address}?{body}")
    else:
        request = urllib.request.Request(address, data=body.encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    if ds.get("basicAuth"):
        user_pass = f"{ds.get('basicAuthUser', '')}:" + (ds.get("secureJsonData") or {}).get(
            "basicAuthPassword", "")
        request.add_header("Authorization", "Basic " + base64.b64encode(user_pass.encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as response:
        data = json.load(response)["data"]
    series = data["result"] if data["resultType"] in ("matrix", "vector") else [
        {"metric": {}, "value": data["result"]}]
    return [frame(s, target) for s in series]


def frame(series: dict, target: dict) -> dict:
    """A Grafana data frame: a time field and a value field labelled with the series."""
    points = series.get("values") or [series["value"]]
    legend = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: series["metric"].get(m.group(1), ""),
                    target.get("legendFormat") or "")
    return {"schema": {"refId": target.get("refId"), "name": legend or None, "fields": [
                {"name": "Time", "type": "time"},
                {"name": "Value", "type": "number", "labels": series["metric"]}]},
            "data": {"values": [[int(float(t) * 1000) for t, _ in points],
                                [float(v) for _, v in points]]}}


def run_query(datasources: dict[str, dict], body: dict) -> tuple[int, dict]:
    """`POST /api/ds/query`: each target against the datasource it names (a uid, or a name
    as older dashboards do; none means the default datasource)."""
    now = time.time()
    try:
        start, end = epoch(body.get("from", "now-6h"), now), epoch(body.get("to", "now"), now)
    except ValueError as err:
        return 400, {"message": str(err)}
    results: dict[str, dict] = {}
    for target in body.get("queries") or []:
        ref = target.get("refId", "A")
        wanted = target.get("datasource")
        uid = wanted.get("uid") if isinstance(wanted, dict) else wanted
        ds = next((d for d in datasources.values()
                   if (uid in (d["uid"], d["name"]) if uid else d.get("isDefault"))), None)
        if ds is None:
            return 404, {"message": f"Data source not found: {uid!r}"}
        if ds["type"] != "prometheus":
            results[ref] = {"status": 400, "error": f"plugin {ds['type']!r} not in the stand-in"}
            continue
        try:
            results[ref] = {"status": 200, "frames": prometheus(ds, target, start, end)}
        except urllib.error.HTTPError as err:
            results[ref] = {"status": err.code,
                            "error": f"{err.code} from {ds.get('url')}: {err.read()[:300]!r}"}
        except (OSError, ValueError, KeyError) as err:
            results[ref] = {"status": 500, "error": f"{ds.get('url')}: {err}"}
    return 200, {"results": results}


# --- HTTP ------------------------------------------------------------------------------------

class Grafana:
    def __init__(self) -> None:
        read_file_variants(os.environ)
        provisioning = Path(setting("paths", "provisioning", "/etc/grafana/provisioning"))
        self.datasources = load_datasources(provisioning)
        self.dashboards = load_dashboards(provisioning)
        self.users = open_users(Path(setting("paths", "data", "/var/lib/grafana")))
        self.sessions: dict[str, str] = {}
        port = setting("server", "http_port", "3000")
        root = setting("server", "root_url", "%(protocol)s://%(domain)s:%(http_port)s/")
        root = (root.replace("%(protocol)s", setting("server", "protocol", "http"))
                .replace("%(domain)s", setting("server", "domain", "localhost"))
                .replace("%(http_port)s", port))
        self.port = int(port)
        self.sub_path = urllib.parse.urlsplit(root).path.rstrip("/")
        self.serve_from_sub_path = flag("server", "serve_from_sub_path", False)
        self.anonymous_role = (setting("auth.anonymous", "org_role", "Viewer")
                               if flag("auth.anonymous", "enabled", False) else None)
        self.basic_auth = flag("auth.basic", "enabled", True)
        self.login_form = not flag("auth", "disable_login_form", False)
        log(f"{len(self.datasources)} datasource(s), {len(self.dashboards)} dashboard(s); "
            f"root {root}, serving from sub path {self.serve_from_sub_path}")

    def role(self, headers: dict[str, str]) -> tuple[str | None, str]:
        """Grafana's sign-in order: a session cookie, basic auth (when enabled: wrong
        credentials are refused, not treated as anonymous), then the anonymous role."""
        cookie = re.search(r"grafana_session=(\w+)", headers.get("cookie", ""))
        if cookie and cookie.group(1) in self.sessions:
            return "Admin", ""
        authorization = headers.get("authorization", "")
        if self.basic_auth and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            login, _, password = decoded.partition(":")
            if valid_login(self.users, login, password):
                return "Admin", ""
            return None, "Invalid username or password"
        return self.anonymous_role, "Unauthorized"

    def search(self, query: dict[str, list[str]]) -> list[dict]:
        text = query.get("query", [""])[0].lower()
        return [{"uid": uid, "title": d["dashboard"]["title"], "type": "dash-db",
                 "url": self.dashboard_url(uid), "tags": d["dashboard"].get("tags", []),
                 "folderTitle": d["folder"]}
                for uid, d in self.dashboards.items()
                if text in d["dashboard"]["title"].lower()
                and query.get("type", ["dash-db"])[0] == "dash-db"]

    def dashboard_url(self, uid: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.dashboards[uid]["dashboard"]["title"].lower())
        return f"{self.sub_path}/d/{uid}/{slug.strip('-')}"

    def handle(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, object, dict[str, str]]:
        if self.serve_from_sub_path and self.sub_path:
            path = path.removeprefix(self.sub_path) or "/"
        route, _, raw_query = path.partition("?")
        query = urllib.parse.parse_qs(raw_query)
        if route == "/api/health":
            return 200, {"database": "ok", "version": "stand-in", "commit": "stand-in"}, {}
        if route == "/login" and method == "POST":
            # Grafana has no form sign-in at all when the login form is disabled.
            given = json.loads(body or b"{}")
            if not self.login_form or not valid_login(self.users, given.get("user", ""),
                                                      given.get("password", "")):
                return 401, {"message": "Invalid username or password"}, {}
            token = secrets.token_hex(16)
            self.sessions[token] = given["user"]
            return 200, {"message": "Logged in"}, {
                "Set-Cookie": f"grafana_session={token}; Path={self.sub_path or '/'}; HttpOnly"}
        if not route.startswith("/api/"):
            return 404, {"message": "Not found (the stand-in renders no UI)"}, {}
        role, refusal = self.role(headers)
        if role is None:
            return 401, {"message": refusal}, {}
        if route == "/api/search":
            return 200, self.search(query), {}
        if route.startswith("/api/dashboards/uid/"):
            found = self.dashboards.get(route.rsplit("/", 1)[1])
            if found is None:
                return 404, {"message": "Dashboard not found"}, {}
            uid = found["dashboard"]["uid"]
            return 200, {"dashboard": found["dashboard"], "meta": {
                "url": self.dashboard_url(uid), "folderTitle": found["folder"],
                "provisioned": True, "provisionedExternalId": found["file"]}}, {}
        if route == "/api/dashboards/home":
            try:
                home = Path(setting("dashboards", "default_home_dashboard_path"))
                return 200, {"dashboard": json.loads(home.read_text()), "meta": {}}, {}
            except (OSError, ValueError):
                return 500, {"message": "Failed to load home dashboard"}, {}
        if route == "/api/datasources":
            if role != "Admin":
                return 403, {"message": "You'll need additional permissions"}, {}
            return 200, [{k: v for k, v in ds.items() if k != "secureJsonData"}
                         for ds in self.datasources.values()], {}
        if route == "/api/ds/query" and method == "POST":
            status, answer = run_query(self.datasources, json.loads(body or b"{}"))
            return status, answer, {}
        return 404, {"message": "Not found"}, {}


def log(message: str) -> None:
    print(f"grafana stand-in: {message}", flush=True)


def serve(grafana: Grafana) -> None:
    class Handler(BaseHTTPRequestHandler):
        def respond(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, answer, extra = grafana.handle(method, self.path, headers, body)
            except ValueError as err:  # a body that is not JSON
                status, answer, extra = 400, {"message": f"bad request: {err}"}, {}
            data = json.dumps(answer).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.respond("GET")

        def do_POST(self) -> None:
            self.respond("POST")

        def log_message(self, *args: object) -> None:
            pass

    address = setting("server", "http_addr") or "0.0.0.0"
    ThreadingHTTPServer((address, grafana.port), Handler).serve_forever()


if __name__ == "__main__":
    try:
        instance = Grafana()
    except (RefusedError, OSError) as err:
        log(f"Failed to start grafana. error: {err}")
        sys.exit(1)
    serve(instance)
