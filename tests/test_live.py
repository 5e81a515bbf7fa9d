"""The stack the program emits, run for real: Prefect server and worker, PostgreSQL, Caddy and
the app API as local processes (tests/live/runner.py), checked through the proxy as a user.

Evaluated on Pulumi mocks, like every other test; then each emitted container (command,
env with its secrets, uploaded files, health check, networks, mounts, user) is started.
The prod stack runs as committed except for what only a public host can do: the proxy
answers for `localhost` with Caddy's internal CA, on 127.0.0.1, and the workers get the
dev flow-code mount (prod ships no flow code of its own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from live.runner import LIVE_VENV, postgres_bin
from live.session import FLOW_DIR, Running, running_stack, stack_config

pytestmark = pytest.mark.live


def _requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, mount namespaces)"
    for tool in ("ip", "nsenter", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    if not (LIVE_VENV / "bin" / "prefect").exists():
        return f"needs the live Prefect at {LIVE_VENV} (./run-tests installs it)"
    if not (postgres_bin() / "postgres").exists():
        return "needs Debian's postgresql (./run-tests installs it)"
    return None


@pytest.fixture(scope="module", params=["dev", "prod"])
def running(request, tmp_path_factory) -> Iterator[Running]:
    missing = _requirements()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"live suite cannot run in CI: {missing}")
        pytest.skip(missing)
    with running_stack(request.param, tmp_path_factory.mktemp(f"live-{request.param}")) as stack:
        yield stack
    assert stack.stack.leftovers() == [], "teardown must stop every process by PID"


def test_prefect_api_is_ready_through_the_proxy_sub_path(running):
    status, body = running.get("/prefect/api/ready")
    assert status == 200, body
    assert json.loads(body) == {"message": "OK"}


def test_ui_is_served_under_the_sub_path_with_assets_that_load(running):
    status, body = running.get("/prefect/")
    assert status == 200
    html = body.decode()
    assets = sorted(set(re.findall(r'(?:src|href)="(/prefect/[^"]+\.(?:js|css))"', html)))
    assert assets, f"the UI page references no assets under /prefect/: {html[:500]}"
    for asset in assets:
        asset_status, _ = running.get(asset)
        assert asset_status == 200, asset


def test_ui_settings_report_the_sub_path_api_url(running):
    status, body = running.get("/prefect/ui-settings")
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
    status, body = running.get("/api/", auth=None)
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


def test_live_prefect_is_the_version_the_stack_image_runs():
    from components.config import DEFAULT_PREFECT_IMAGE, PREFECT_VERSION
    config, _ = stack_config("dev")
    assert config["server"]["image"] == DEFAULT_PREFECT_IMAGE
    result = subprocess.run([str(LIVE_VENV / "bin" / "python"), "-c",
                             "import prefect; print(prefect.__version__)"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"no live Prefect at {LIVE_VENV}")
    assert result.stdout.strip() == PREFECT_VERSION
