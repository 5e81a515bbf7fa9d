"""Guards that only matter when something is wrong, each tested by making it wrong: probes
against an endpoint that fails, Redis with a wrong password, volumes on destroy, a remote
Docker host, and the Traefik routes the program uploads for the stack's real plan."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import evaluate, stack_file
from loopback import free_port, serving, stop

from components import plan, traefik
from components.config import HealthCheckSettings, StackConfig
from components.dryrun import CONTAINER, emitted_volumes

# --- health probes -------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 500)
        self.end_headers()
        self.wfile.write(b"status")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[int]:
    server = serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler))
    yield server.server_address[1]
    stop(server)


def probe(tool: str, port: int, path: str) -> int:
    """Run a service's generated HTTP health check here, as Docker runs its CMD."""
    check = HealthCheckSettings.model_validate({"http": {"path": path, "probe": tool}})
    test = plan.health_from_settings(check, port).test
    assert test[0] == "CMD"
    argv = [sys.executable if test[1] == "python" else test[1], *test[2:]]
    return subprocess.run(argv, capture_output=True, timeout=15, check=False).returncode


@pytest.mark.parametrize("tool", ["python", "wget", "curl"])
def test_a_health_probe_passes_on_200_and_fails_on_500_or_no_listener(endpoint, tool):
    if tool != "python" and shutil.which(tool) is None:
        pytest.skip(f"no {tool} here")
    assert probe(tool, endpoint, "/ok") == 0
    assert probe(tool, endpoint, "/broken") != 0
    assert probe(tool, free_port(), "/ok") != 0


# --- Redis ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("needs redis-server and redis-cli")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--requirepass", "right", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                         check=False).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(timeout=10)


def redis_check(port: int, password: str, shim: Path) -> int:
    """The Redis container's own health check, run against a real redis-server (a redis-cli
    on PATH that adds the test server's port). redis-cli exits 0 even when it is refused,
    so only the PONG tells a working login."""
    spec = plan.redis_spec(StackConfig.model_validate({"redis": {"enabled": True}}))
    kind, command = spec.healthcheck.test
    assert kind == "CMD-SHELL"
    cli = shim / "redis-cli"
    cli.write_text(f'#!/bin/sh\nexec {shutil.which("redis-cli")} -p {port} "$@"\n')
    cli.chmod(0o755)
    return subprocess.run(["sh", "-c", command], env={"PATH": f"{shim}:/usr/bin:/bin",
                                                      "REDISCLI_AUTH": password},
                          capture_output=True, timeout=15, check=False).returncode


@pytest.mark.live  # a real redis-server
def test_the_redis_check_needs_a_pong_not_just_an_answer(redis_port, tmp_path):
    assert redis_check(redis_port, "right", tmp_path) == 0
    assert redis_check(redis_port, "wrong", tmp_path) != 0


# --- volumes on destroy ----------------------------------------------------------------------

def test_production_data_volumes_survive_destroy_and_dev_ones_do_not():
    kept = {}
    for name in ("prod", "dev"):
        config, secrets = stack_file(f"Pulumi.{name}.yaml")
        kept[name] = {v.name: v.kept_on_destroy
                      for v in emitted_volumes(evaluate(config, secrets, stack=name))}
    assert kept["prod"]["prefect-prod-postgres-data"] is True
    assert kept["prod"]["prefect-prod-proxy-data"] is True  # ACME account and certificates
    assert kept["prod"]["prefect-prod-proxy-config"] is False  # regenerated on start
    assert not any(kept["dev"].values()), kept["dev"]


# --- remote Docker host ----------------------------------------------------------------------

def test_every_docker_resource_uses_the_remote_docker_provider():
    config, secrets = stack_file("Pulumi.prod.yaml")
    config["docker"] = {"host": "ssh://deploy@box"}
    ev = evaluate(config, secrets, stack="prod")
    provider = next(r for r in ev.resources if r.type == "pulumi:providers:docker")
    assert provider.plain["host"] == "ssh://deploy@box"
    docker = [r for r in ev.resources if r.type.startswith("docker:")]
    assert len([r for r in docker if r.type == CONTAINER]) >= 8
    wrong = [r.name for r in docker if r.provider.split("::")[:-1] != [
        *provider_urn_parts(ev), "docker"]]
    assert wrong == []


def provider_urn_parts(ev) -> list[str]:
    """`urn:pulumi:<stack>::<project>::<parent type>$pulumi:providers:docker` as split by ::"""
    stack_urn = next(urn for urn in ev.component_outputs if urn.endswith("PrefectStack::prefect"))
    head, project, _ = stack_urn.split("::", 2)
    return [head, project, "prefect-stack:index:PrefectStack$pulumi:providers:docker"]


# --- Traefik routes from the real plan -------------------------------------------------------

def test_traefik_routes_uploaded_by_the_program_are_the_plans_routes():
    config, secrets = stack_file("examples/003-traefik-many-services.yaml")
    ev = evaluate(config, secrets)
    routes = ev.plan.routes
    declared = {config["server"]["basePath"], config["api"]["route"]["prefix"]}
    for svc in config["services"]:
        declared |= {r["prefix"] for r in [svc.get("route"), *svc.get("routes", [])] if r}
    assert {r.prefix for r in routes} >= declared  # every route the stack file declares
    proxy = next(c for name, c in ev.containers().items() if name.endswith("-proxy"))
    uploads = {u["file"]: u["content"] for u in proxy["uploads"]}
    http = yaml.safe_load(uploads[traefik.DYNAMIC_PATH])["http"]
    assert set(http["routers"]) - {"dashboard"} == {r.name for r in routes}
    for route in routes:
        router = http["routers"][route.name]
        assert f"PathPrefix(`{route.prefix}" in router["rule"], route
        hosts = route.upstreams or (route.service,)
        assert [s["url"] for s in http["services"][router["service"]]["loadBalancer"]["servers"]] \
            == [f"http://{h}:{route.port}" for h in hosts]
        assert (f"{route.name}-strip" in router["middlewares"]) == \
            (route.strip_prefix and not route.is_fallback), route
        assert ("auth" in router["middlewares"]) == route.auth, route
