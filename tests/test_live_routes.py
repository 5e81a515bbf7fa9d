"""Several routes on one service and overlapping prefixes, run for real through Caddy.

The dev stack (Prefect at /prefect, the app API at /api) plus two stand-in services (the
python image running tests/live/standins/echo.py, uploaded with `files:`), each answering
on two ports with where it was reached:

- `minio`: port 9000 at /minio and port 9001 at /minio-console, both prefix-stripped (the
  MinIO API and console of the reference deployments, on one container);
- `web`: port 8080 as the fallback `/`, port 8081 at /api/v2 (kept whole), inside the API's
  /api.

Prefixes that are string prefixes of one another must route whole segments, most specific
first. Traefik gets the same route model (rules and priorities are checked on mocks and
against its schema in tests/test_traefik.py), but no Traefik binary can be had here, so it
is not run live.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from live.gate import live_stack
from live.session import Running, stack_config

pytestmark = pytest.mark.live

ECHO = (Path(__file__).parent / "live" / "standins" / "echo.py").read_text()


def echo_service(name: str, ports: tuple[int, int], routes: list[dict]) -> dict:
    return {"name": name, "image": "python:3.12.8-slim", "port": ports[0],
            "command": ["python", "/srv/echo.py", *map(str, ports)], "env": {"STANDIN": name},
            "files": [{"path": "/srv/echo.py", "content": ECHO}],
            "healthCheck": {"http": {"path": "/"}}, "routes": routes}


def routes_overrides() -> dict:
    """Dev with the two stand-ins; no workers and no published Prefect port (not needed)."""
    dev, _ = stack_config("dev")
    server = {k: v for k, v in dev["server"].items() if k != "publish"}
    return {"server": server, "workers": [], "services": [
        echo_service("minio", (9000, 9001), [
            {"prefix": "/minio", "stripPrefix": True},
            {"prefix": "/minio-console", "port": 9001, "stripPrefix": True}]),
        echo_service("web", (8080, 8081), [
            {"prefix": "/"},
            {"prefix": "/api/v2", "port": 8081}]),
    ]}


@pytest.fixture(scope="module")
def routed(tmp_path_factory) -> Iterator[Running]:
    yield from live_stack("dev", tmp_path_factory.mktemp("live-routes"), routes_overrides())


def echo(running: Running, path: str) -> dict:
    status, body = running.get(path, auth=None)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


# (path, service, port, the path it sees); tests/test_live_traefik.py checks it through Traefik.
ROUTE_TABLE = [
    ("/minio/", "minio", 9000, "/"),
    ("/minio/bucket/object.txt", "minio", 9000, "/bucket/object.txt"),
    ("/minio-console/", "minio", 9001, "/"),
    ("/minio-console/browser/bucket", "minio", 9001, "/browser/bucket"),
    ("/api/v2/items", "web", 8081, "/api/v2/items"),
    # Not a segment of any prefix: the fallback gets the path untouched.
    ("/minio-consoles/x", "web", 8080, "/minio-consoles/x"),
    ("/miniox", "web", 8080, "/miniox"),
    ("/api-docs", "web", 8080, "/api-docs"),
    ("/prefecture", "web", 8080, "/prefecture"),
    ("/", "web", 8080, "/"),
]


@pytest.mark.parametrize(("path", "service", "port", "upstream_path"), ROUTE_TABLE)
def test_each_path_reaches_the_most_specific_route_by_whole_segments(routed, path, service,
                                                                     port, upstream_path):
    assert echo(routed, path) == {"service": service, "port": port, "path": upstream_path}


def test_api_keeps_its_own_paths_beside_the_nested_api_v2_route(routed):
    status, body = routed.get("/api/", auth=None)
    assert status == 200 and b"Directory listing for /" in body  # the app API, stripped
    status, _ = routed.get("/api/v2x", auth=None)  # within /api, not /api/v2
    assert status == 404  # the app API's own 404: http.server has no /v2x


@pytest.mark.parametrize("prefix", ["/minio", "/minio-console", "/api/v2"])
def test_a_bare_prefix_redirects_to_its_slash_form(routed, prefix):
    status, _ = routed.get(prefix, auth=None)
    assert status == 308


def test_prefect_keeps_its_sub_path_beside_the_fallback(routed):
    status, body = routed.get("/prefect/api/health", auth=None)
    assert status == 200, body
    status, body = routed.get("/prefect/ui-settings", auth=None)
    assert json.loads(body)["api_url"] == "/prefect/api"
