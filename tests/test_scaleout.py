"""Scale-out plan: the image that carries prefect-redis, the guarded server and services
processes, every API replica an upstream of the proxy, and the outage settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from harness import ROOT, evaluate, planned, stack_file
from live.gate import require_live_prefect
from test_caddy import CADDY
from test_config_errors import rejected
from test_traefik import validate

from components import plan, scaleout, traefik
from components.config import StackConfig
from components.dryrun import BUILT_IMAGE, emitted_containers

GUARD = ROOT / "components" / "assets" / "prefect_guard.py"


def ha(**server) -> StackConfig:
    return StackConfig.model_validate({
        "database": {"kind": "postgres"}, "redis": {"enabled": True},
        "server": {"replicas": 2, "servicesReplicas": 2, "basicAuth": {"enabled": True},
                   **server}})


def ha_stack_config(proxy: dict | None = None) -> tuple[dict, dict]:
    config, secrets = stack_file("Pulumi.prod.yaml")
    config["server"] = {**config["server"], "replicas": 2, "servicesReplicas": 2}
    config["redis"] = {"enabled": True}
    config["database"] = {**config["database"], "pool": {"size": 5, "maxOverflow": 5}}
    if proxy:
        config["proxy"] = proxy
    return config, secrets


def proxy_uploads(config: dict, secrets: dict[str, str]) -> dict[str, str]:
    """The proxy's files in the plan (plain text: its upstreams and checks hold no secret)."""
    files = {u.path: u.content for u in planned(config, secrets).service("proxy").uploads}
    assert all(isinstance(text, str) for text in files.values()), files
    return files


def test_scale_out_builds_the_prefect_image_with_the_pinned_prefect_redis_and_uses_it():
    built = plan.build_plan(ha())
    (build,) = built.builds
    assert build.tag == "prefect-stack/prefect-redis:3.8.8-python3.12-prefect-redis-0.3.0"
    assert dict(build.args) == {"PREFECT_IMAGE": "prefecthq/prefect:3.8.8-python3.12",
                                "PREFECT_REDIS_VERSION": "0.3.0"}
    assert (ROOT / build.context / "Dockerfile").is_file()
    for name in ("prefect-migrate", "prefect-server", "prefect-services"):
        spec = built.service(name)
        assert spec.image == build.tag and "EXTRA_PIP_PACKAGES" not in spec.env, name
    assert built.service("prefect-services").replicas == 2
    one = plan.build_plan(StackConfig.model_validate({}))
    assert one.builds == () and one.service("prefect-server").image == one_server_image()


def one_server_image() -> str:
    return StackConfig.model_validate({}).server.image


def test_the_dockerfile_pins_prefect_redis_from_a_build_arg_on_the_given_prefect_image():
    text = (ROOT / scaleout.DOCKERFILE_DIR / "Dockerfile").read_text()
    assert "FROM ${PREFECT_IMAGE}" in text
    assert '"prefect-redis==${PREFECT_REDIS_VERSION}"' in text
    assert "--constraint" in text  # the installed Prefect may not move


def test_docker_backend_builds_the_image_once_and_containers_run_its_id():
    config, secrets = ha_stack_config()
    ev = evaluate(config, secrets)
    (image,) = ev.of_type(BUILT_IMAGE)
    inputs = image.plain
    assert inputs["imageName"].startswith("prefect-stack/prefect-redis:")
    assert inputs["skipPush"] is True
    assert inputs["build"]["context"] == scaleout.DOCKERFILE_DIR
    assert inputs["build"]["args"]["PREFECT_REDIS_VERSION"] == "0.3.0"
    servers = [c for c in emitted_containers(ev) if "prefect-server" in c.aliases]
    assert [c.name for c in servers] == ["prefect-prod-prefect-server-1",
                                         "prefect-prod-prefect-server-2"]
    assert all(c.image == inputs["imageName"] for c in servers)


@pytest.mark.parametrize(("server", "key", "words"), [
    ({"replicas": 1, "servicesReplicas": 2}, "server.servicesReplicas", "replicas > 1"),
    ({"image": "prefecthq/prefect:3.7.0-python3.12"}, "server.image", "prefect-redis"),
])
def test_scale_out_settings_that_cannot_work_are_refused_naming_the_key(server, key, words):
    config, secrets = ha_stack_config()
    config["server"] = {**config["server"], **server}
    message = rejected(config, secrets)
    assert f"prefect-stack:{key}" in message and words in message


def test_server_and_services_run_under_the_guard_with_a_check_that_reads_its_status():
    built = plan.build_plan(ha())
    server, services = built.service("prefect-server"), built.service("prefect-services")
    assert server.command == ("python", scaleout.GUARD_PATH, "run", "prefect", "server",
                              "start", "--no-services")
    assert services.command[-3:] == ("server", "services", "start")
    assert server.healthcheck.test == ("CMD", "python", scaleout.GUARD_PATH, "check",
                                       "http://localhost:4200/prefect/api/health")
    assert services.healthcheck.test == ("CMD", "python", scaleout.GUARD_PATH, "check")
    for spec in (server, services):
        (upload,) = [u for u in spec.uploads if u.path == scaleout.GUARD_PATH]
        assert upload.content == GUARD.read_text()
    single = plan.build_plan(StackConfig.model_validate({})).service("prefect-server")
    assert single.command[1:3] == (scaleout.GUARD_PATH, "run")  # one server is guarded too


def test_outage_settings_reach_the_server_and_every_prefect_client():
    built = plan.build_plan(ha(**{}))
    env = built.service("prefect-server").env
    assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_MAX_FLUSH_RETRIES"] == "36"
    config = StackConfig.model_validate({"workers": [{"name": "p"}]})
    worker = plan.build_plan(config).service("worker-p")
    assert worker.env["PREFECT_CLIENT_MAX_RETRIES"] == "7"
    assert worker.env["PREFECT_CLIENT_RETRY_EXTRA_CODES"] == "500"


def test_caddy_balances_health_checks_and_retries_every_api_replica_and_real_caddy_accepts_it(
        tmp_path):
    config, secrets = ha_stack_config(
        {"kind": "caddy", "domain": "localhost", "tls": "internal", "bindAddress": "127.0.0.1"})
    caddyfile = proxy_uploads(config, secrets)["/etc/caddy/Caddyfile"]
    assert ("reverse_proxy prefect-prod-prefect-server-1:4200 "
            "prefect-prod-prefect-server-2:4200 {") in caddyfile
    for line in ("lb_try_duration 10s", "health_uri /prefect/api/health", "health_interval 2s"):
        assert line in caddyfile
    path = tmp_path / "Caddyfile"
    path.write_text(caddyfile)
    result = subprocess.run([CADDY, "validate", "--adapter", "caddyfile", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_traefik_lists_every_api_replica_with_a_health_check_and_retries_schema_valid():
    config, secrets = ha_stack_config({"kind": "traefik", "domain": "localhost", "tls": "off"})
    dynamic = yaml.safe_load(proxy_uploads(config, secrets)[traefik.DYNAMIC_PATH])
    validate(dynamic, "traefik-v3-file-provider.json")
    (name,) = [n for n in dynamic["http"]["services"] if n.startswith("prefect-server")]
    balancer = dynamic["http"]["services"][name]["loadBalancer"]
    assert balancer["servers"] == [{"url": "http://prefect-prod-prefect-server-1:4200"},
                                   {"url": "http://prefect-prod-prefect-server-2:4200"}]
    assert balancer["healthCheck"]["path"] == "/prefect/api/health"
    router = dynamic["http"]["routers"][name]
    assert f"{name}-retry" in router["middlewares"]
    assert dynamic["http"]["middlewares"][f"{name}-retry"]["retry"]["attempts"] >= 2


# --- the guard itself --------------------------------------------------------------------

def guard_check(status: Path, content: dict | None) -> subprocess.CompletedProcess[str]:
    if content is not None:
        status.write_text(json.dumps(content))
    return subprocess.run([sys.executable, str(GUARD), "check"], capture_output=True, text=True,
                          env={**os.environ, "PREFECT_STACK_GUARD_STATUS": str(status)})


def test_guard_check_fails_for_dead_services_a_stale_status_or_none(tmp_path):
    status = tmp_path / "status.json"
    now = time.time()
    assert guard_check(status, None).returncode == 1
    assert guard_check(status, {"time": now, "dead": [], "running": ["A"]}).returncode == 0
    dead = guard_check(status, {"time": now, "dead": ["TaskRunRecorder"], "running": ["A"]})
    assert dead.returncode == 1 and "TaskRunRecorder" in dead.stdout
    assert guard_check(status, {"time": now - 120, "dead": [], "running": []}).returncode == 1


def test_the_guard_check_imports_no_asyncio_threading_or_http_client(tmp_path):
    """The container's health check: a fresh Python every 10 s in each guarded container, so
    it imports what it uses (0.1 s of CPU per check with those, 0.03 without)."""
    done = subprocess.run([sys.executable, "-X", "importtime", str(GUARD), "check"],
                          capture_output=True, text=True,
                          env={**os.environ, "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "s")})
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert done.returncode == 1 and "json" in imported  # no status yet: unhealthy
    assert not imported & {"asyncio", "threading", "urllib.request", "http.client"}


FAKE_SERVICES = """
import asyncio, sys
sys.argv = ["guard"]
sys.path.insert(0, {guard_dir!r})
import prefect_guard
prefect_guard.install()
from prefect.server.services.base import Service

class Stops(Service):
    @classmethod
    def service_settings(cls): raise NotImplementedError
    async def start(self):
        await asyncio.sleep(0.5)  # then ends, as the task-run recorder does after an outage
    async def stop(self): pass

class Runs(Stops):
    async def start(self):
        await asyncio.sleep(3600)

Service.enabled_services = classmethod(lambda cls: [Stops, Runs])
async def main():
    async with Service.running():
        await asyncio.sleep(60)  # a guard that does not exit lets this end with code 0
asyncio.run(main())
"""


@pytest.mark.live
def test_guard_exits_a_process_whose_service_stopped_so_the_restart_policy_replaces_it(tmp_path):
    script = tmp_path / "fake.py"
    script.write_text(FAKE_SERVICES.format(guard_dir=str(GUARD.parent)))
    status = tmp_path / "status.json"
    result = subprocess.run([str(require_live_prefect()), str(script)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PREFECT_HOME": str(tmp_path),
                                              "PREFECT_STACK_GUARD_STATUS": str(status),
                                              "PREFECT_STACK_GUARD_GRACE_SECONDS": "2"})
    assert result.returncode == 70, result.stderr[-2000:]
    assert "service Stops stopped" in result.stderr
    assert json.loads(status.read_text())["dead"] == ["Stops"]
