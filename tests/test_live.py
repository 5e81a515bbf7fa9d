"""The stack the program emits, run for real: Prefect server and worker, PostgreSQL, Caddy and
the app API as local processes (tests/live/runner.py), checked through the proxy as a user.

Evaluated on Pulumi mocks, like every other test; then each emitted container (command,
env with its secrets, uploaded files, health check, networks, mounts, user) is started.
The prod stack runs as committed except for what only a public host can do: the proxy
answers for `localhost` with Caddy's internal CA, on 127.0.0.1, and the workers get the
dev flow-code mount (prod ships no flow code of its own).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import ROOT, evaluate, stack_file
from live.runner import LIVE_VENV, LiveError, LiveStack

from components.dryrun import EmittedContainer, emitted_containers

pytestmark = pytest.mark.live

FLOW_DIR = "/opt/prefect/flows"


def prod_overrides(config: dict) -> dict:
    """The only changes to Pulumi.prod.yaml: a proxy this machine can serve, and flow code."""
    workers = [{**w, "flowCode": {"hostPath": "./flows", "mountPath": FLOW_DIR}}
               for w in config["workers"]]
    proxy = {k: v for k, v in config["proxy"].items() if k != "acme"}
    return {"proxy": {**proxy, "domain": "localhost", "tls": "internal", "bindAddress": "127.0.0.1"},
            "workers": workers}


def emitted(stack: str) -> list[EmittedContainer]:
    config, secrets = stack_file(f"Pulumi.{stack}.yaml")
    if stack == "prod":
        config.update(prod_overrides(config))
    return emitted_containers(evaluate(config, secrets, stack=stack))


@dataclass
class Running:
    name: str
    stack: LiveStack
    containers: dict[str, EmittedContainer]
    base: str
    ssl: ssl.SSLContext
    login: str | None  # user:password when Prefect auth is on
    client_env: dict[str, str]
    pool: str

    def container(self, service: str) -> EmittedContainer:
        return next(c for c in self.containers.values() if service in c.aliases)

    def get(self, path: str, auth: str | None = "stack", method: str = "GET",
            body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(self.base + path, method=method, data=body)
        credentials = self.login if auth == "stack" else auth
        if credentials:
            request.add_header("Authorization",
                               "Basic " + base64.b64encode(credentials.encode()).decode())
        if body is not None:
            request.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ssl),
                                             _NoRedirect())
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def client(self, *args: str, timeout: float = 150) -> dict:
        result = subprocess.run([str(LIVE_VENV / "bin" / "python"),
                                 str(ROOT / "tests" / "live" / "prefect_client.py"), *args],
                                env=self.client_env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise LiveError(f"prefect client {args} failed:\n{result.stderr[-3000:]}\n"
                            f"{self.stack.logs()}")
        return json.loads(result.stdout.strip().splitlines()[-1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, mount namespaces)"
    for tool in ("ip", "nsenter", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    if not (LIVE_VENV / "bin" / "prefect").exists():
        return f"needs the live Prefect at {LIVE_VENV} (./run-tests installs it)"
    if not Path("/usr/lib/postgresql/15/bin/postgres").exists():
        return "needs Debian's postgresql (./run-tests installs it)"
    return None


@pytest.fixture(scope="module", params=["dev", "prod"])
def running(request, tmp_path_factory) -> Iterator[Running]:
    missing = _requirements()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"live suite cannot run in CI: {missing}")
        pytest.skip(missing)
    stack_name = request.param
    containers = emitted(stack_name)
    workdir = tmp_path_factory.mktemp(f"live-{stack_name}")
    stack = LiveStack(containers, workdir)
    try:
        stack.start()
        by_name = {c.name: c for c in containers}
        proxy = next(c for c in containers if "proxy" in c.aliases)
        data = next(m.source for m in proxy.mounts if m.target == "/data")
        root_ca = stack.volume(data) / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        server = next(c for c in containers if "prefect-server" in c.aliases)
        login = server.env.get("PREFECT_SERVER_API_AUTH_STRING")
        home = workdir / "client-home"
        home.mkdir()
        client_env = {"PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home),
                      "PREFECT_API_URL": "https://localhost/prefect/api",
                      "PREFECT_API_SSL_CERT_FILE": str(root_ca),
                      **({"PREFECT_API_AUTH_STRING": login} if login else {})}
        pool = next(c.command[c.command.index("--pool") + 1] for c in containers
                    if c.command and "worker" in c.command)
        yield Running(stack_name, stack, by_name, "https://localhost",
                      ssl.create_default_context(cafile=str(root_ca)), login, client_env, pool)
    finally:
        stack.stop()


def test_prefect_api_is_ready_through_the_proxy_sub_path(running):
    status, body, _ = running.get("/prefect/api/ready")
    assert status == 200, body
    assert json.loads(body) == {"message": "OK"}


def test_ui_is_served_under_the_sub_path_with_assets_that_load(running):
    status, body, _ = running.get("/prefect/")
    assert status == 200
    html = body.decode()
    assets = sorted(set(re.findall(r'(?:src|href)="(/prefect/[^"]+\.(?:js|css))"', html)))
    assert assets, f"the UI page references no assets under /prefect/: {html[:500]}"
    for asset in assets:
        asset_status, _, _ = running.get(asset)
        assert asset_status == 200, asset


def test_ui_settings_report_the_sub_path_api_url(running):
    status, body, _ = running.get("/prefect/ui-settings")
    assert status == 200
    assert json.loads(body)["api_url"] == "/prefect/api"


def test_work_pool_exists_with_its_limit_and_the_worker_is_online(running):
    pool = running.client("pool", running.pool)
    assert pool["type"] == "process"
    setup = next(c for c in running.containers.values() if c.aliases == (f"pool-{running.pool}",))
    limit = re.search(r"set-concurrency-limit \S+ (\d+)", " ".join(setup.command or ()))
    assert pool["concurrency_limit"] == (int(limit.group(1)) if limit else None)
    workers = [c for c in running.containers.values() if f"worker-{running.pool}" in c.aliases]
    online = [w for w in pool["workers"] if w["status"] == "ONLINE"]
    assert len(online) == len(workers), pool


def test_flow_deployed_to_the_pool_runs_to_completed_with_its_result(running):
    result = running.client("run", running.pool, FLOW_DIR, f"{running.name}-first")
    assert result["state"] == "COMPLETED", result
    assert any(f"hello, {running.name}-first" in line for line in result["logs"]), result


def test_app_api_route_answers_with_the_prefix_stripped(running):
    status, body, _ = running.get("/api/", auth=None)
    assert status == 200
    assert b"Directory listing for /" in body  # the stand-in app saw `/`, not `/api/`


def test_every_long_running_container_passes_its_own_health_check(running):
    failures = {}
    for name, process in running.stack.processes.items():
        if process.container.one_shot or not process.container.healthcheck:
            continue
        result = process.health()
        if result.returncode != 0:
            failures[name] = (result.stdout + result.stderr)[-300:]
    assert failures == {}


def test_requests_without_valid_credentials_are_refused_where_auth_is_on(running):
    if running.login is None:
        pytest.skip(f"{running.name} has no auth configured")
    for path in ("/prefect/", "/prefect/api/flows/filter"):
        method, body = ("POST", b"{}") if "filter" in path else ("GET", None)
        assert running.get(path, auth=None, method=method, body=body)[0] == 401, path
        assert running.get(path, auth="admin:wrong", method=method, body=body)[0] == 401, path
        assert running.get(path, method=method, body=body)[0] == 200, path
    assert running.get("/prefect/api/health", auth=None)[0] == 200  # health stays open


def test_server_restart_keeps_run_history_and_the_worker_picks_up_the_next_run(running):
    first = running.client("run", running.pool, FLOW_DIR, f"{running.name}-before")
    assert first["state"] == "COMPLETED", first
    server = running.container("prefect-server")
    running.stack.restart(server.name)
    second = running.client("run", running.pool, FLOW_DIR, f"{running.name}-after")
    assert second["state"] == "COMPLETED", second
    assert running.client("flow-run", first["id"])["state"] == "COMPLETED"
