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
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from live.browser import visit_ui
from live.gate import live_missing, live_stack, require, require_browser
from live.runner import LIVE_VENV, run
from live.session import FLOW_DIR, LIVE_MONITORING, Running, prod_overrides, stack_config

from components import hygiene, monitoring
from components.config import StackConfig

pytestmark = pytest.mark.live


@pytest.fixture(scope="module", params=["dev", "prod"])
def running(request, tmp_path_factory) -> Iterator[Running]:
    overrides = {"monitoring": LIVE_MONITORING} if request.param == "prod" else None
    yield from live_stack(request.param, tmp_path_factory.mktemp(f"live-{request.param}"),
                          overrides)


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


def test_ui_in_a_browser_logs_in_once_shows_dashboard_and_flow_run_on_the_stack_origin(running):
    """Chromium as a new user: one login (Prefect's form, never the proxy's basic-auth
    prompt), the dashboard and a flow run with its logs, and not one request off the stack's
    origin or outside Prefect's path (the favicon exception: live/browser.py). The proxy's
    Content-Security-Policy refuses the v2 UI's analytics config fetch before it is sent, and
    nothing else: no other violation, no script error (the flow-run graph needs eval)."""
    require_browser()
    who = f"{running.name}-browser"
    flow_run = running.client("run", running.pool, FLOW_DIR, who)
    visit = visit_ui(running.outputs["uiUrl"], running.origin, running.login, running.pool,
                     flow_run["id"], f"hello, {who}")
    assert visit.log.wrong == []
    assert visit.log.analytics == [] and visit.log.analytics_blocked_by_csp  # never sent
    assert visit.log.unexpected_violations == [] and visit.log.page_errors == []
    assert visit.log.challenges == []  # no proxy basic-auth prompt
    assert visit.logins == (1 if running.login else 0)
    assert visit.failures_after_login == []


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


def test_api_refuses_requests_without_valid_credentials_where_auth_is_on(running):
    """One login: Prefect's own auth answers, not a proxy prompt. The UI page itself loads
    (it shows Prefect's login form); every API call needs the login."""
    if running.login is None:
        pytest.skip(f"{running.name} has no auth configured")
    path, body = "/prefect/api/flows/filter", b"{}"
    assert running.get(path, auth=None, method="POST", body=body)[0] == 401
    assert running.get(path, auth="admin:wrong", method="POST", body=body)[0] == 401
    assert running.get(path, method="POST", body=body)[0] == 200
    status, _ = running.get("/prefect/", auth=None)
    assert status == 200  # no proxy prompt in front of Prefect's login form
    assert running.get("/prefect/api/health", auth=None)[0] == 200  # health stays open


def test_server_restart_keeps_run_history_and_the_worker_picks_up_the_next_run(running):
    first = running.client("run", running.pool, FLOW_DIR, f"{running.name}-before")
    assert first["state"] == "COMPLETED", first
    server = running.container("prefect-server")
    running.stack.restart(server.name)
    second = running.client("run", running.pool, FLOW_DIR, f"{running.name}-after")
    assert second["state"] == "COMPLETED", second
    assert running.client("flow-run", first["id"])["state"] == "COMPLETED"


def test_a_run_forked_from_the_worker_leaves_the_working_directory_of_a_run_beside_it(running):
    """The process worker keeps each run's working directory (a temporary directory) while
    it runs: a run forked from the worker must not remove the others' when it ends (it did,
    through the worker's finalizers it inherited). The dev stack does not fork."""
    if running.name == "dev":
        pytest.skip("the dev stack's worker starts `python -m prefect.engine`")
    both = running.client("beside", running.pool, FLOW_DIR)
    assert both["long_running"] and both["short"] == "COMPLETED", both
    assert set(both["long"]) == {"COMPLETED"}, f"{both}\n{running.stack.logs()}"
    assert any(m.startswith("working directory ") and m.endswith("prefect")  # the worker's
               for m in both["logs"]), both
    for log in _worker_logs(running):  # forked, not declined: nothing in an import at forks
        assert "Flow runs are forked from this worker" in log and "not forked from the" not in log


def _worker_logs(running: Running) -> list[str]:
    return [p.log.read_text(errors="replace") for p in running.stack.processes.values()
            if f"worker-{running.pool}" in p.container.aliases and p.log.exists()]


def _flow_run_processes(running: Running) -> list[str]:
    """What the worker containers run besides the worker's launcher: flow-run processes,
    their clients, and (prod: runs forked from the worker) their sessions and runs."""
    found = []
    for process in running.stack.processes.values():
        if f"worker-{running.pool}" not in process.container.aliases:
            continue
        for pid in run("ip", "netns", "pids", process.namespace, check=False).stdout.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if int(pid) != process.pid:
                found.append(cmdline.replace(b"\0", b" ").decode())
    return found


def test_cancelling_a_running_flow_run_stops_its_process(running):
    """The UI's Cancel on a run sleeping in its task: Prefect's worker cancels it through the
    run's control channel and a SIGTERM to the process it started (prod: the flow-run client,
    which relays it to the run forked from the worker), and nothing of the run is left
    behind."""
    cancelled = running.client("cancel", running.pool, FLOW_DIR)
    # ≈4 s when the SIGTERM reaches the run; Prefect's SIGKILL after its 30 s grace is slower.
    assert cancelled["state"] == "CANCELLED" and cancelled["seconds"] < 20, cancelled
    deadline = time.monotonic() + 20
    while (left := _flow_run_processes(running)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == []


def test_a_forking_worker_that_loaded_a_cancelled_runs_flow_starts_runs_fresh(running):
    """Prefect's worker loads a cancelled (or crashed) run's flow itself, for its hooks: its
    code, modules and sys.path are then the worker's, and a fork would run them, stale; from
    then on runs start as `python -m prefect.engine`, said once in the worker's log."""
    if running.name == "dev":
        pytest.skip("the dev stack's worker starts `python -m prefect.engine`")
    cancelled = running.client("cancel", running.pool, FLOW_DIR)
    assert cancelled["state"] == "CANCELLED", cancelled
    took = f"submitting flow run '{cancelled['id']}'"  # and not aborted: the one that ran it
    said: list[int] = []
    for attempt in range(10):  # until that worker is asked to fork one (the pool has two)
        after = running.client("run", running.pool, FLOW_DIR, f"{running.name}-fresh{attempt}")
        assert after["state"] == "COMPLETED", after
        log = next(log for log in _worker_logs(running) if took in log and
                   f"Aborted submission of flow run '{cancelled['id']}'" not in log)
        said = [log.count("a flow's code was loaded in the worker")]
        if said != [0]:
            break
    assert said == [1], said


def test_live_prefect_is_the_version_the_stack_image_runs():
    from components.config import DEFAULT_PREFECT_IMAGE, PREFECT_VERSION
    config, _ = stack_config("dev")
    assert config["server"]["image"] == DEFAULT_PREFECT_IMAGE
    python = LIVE_VENV / "bin" / "python"
    if not python.exists():
        require(live_missing() or f"needs the live Prefect at {LIVE_VENV}", "the live suite")
    result = subprocess.run([str(python), "-c", "import prefect; print(prefect.__version__)"],
                            capture_output=True, text=True, check=False)
    assert result.stdout.strip() == PREFECT_VERSION


# --- monitoring and database hygiene (prod, with LIVE_MONITORING) ---

def _monitored(running: Running) -> None:
    if not any("prometheus" in c.aliases for c in running.containers.values()):
        pytest.skip(f"{running.name} has no monitoring")


def _query(running: Running, expr: str) -> list[dict]:
    status, body = running.get("/prometheus/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body[:500]
    document = json.loads(body)
    assert document["status"] == "success", document
    return document["data"]["result"]


def _poll(probe, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def _value(running: Running, expr: str) -> float:
    (sample,) = _query(running, expr)
    return float(sample["value"][1])


def test_prometheus_is_behind_the_login_and_scrapes_prefect_and_the_exporter(running):
    _monitored(running)
    assert running.get("/prometheus/api/v1/query?query=up", auth=None)[0] == 401
    jobs = _poll(lambda: {s["metric"]["job"] for s in _query(running, "up == 1")}
                 >= {"prefect-server", "prefect-exporter", "prometheus"} or None)
    assert jobs, _query(running, "up")


def test_completed_runs_metric_increases_after_a_flow_run(running):
    """In Prometheus, and on the dashboard's panel as Grafana shows it."""
    _monitored(running)
    assert _poll(lambda: _query(running, 'up{job="prefect-exporter"} == 1')), "exporter not scraped"
    before = _value(running, monitoring.COMPLETED_RUNS)
    panel_before = _completed_panel(running)
    result = running.client("run", running.pool, FLOW_DIR, f"{running.name}-metric")
    assert result["state"] == "COMPLETED", result
    after = _poll(lambda: (v := _value(running, monitoring.COMPLETED_RUNS)) > before and v)
    assert after, f"{monitoring.COMPLETED_RUNS} stayed at {before}"
    assert _poll(lambda: _completed_panel(running) > panel_before), f"panel stayed at {panel_before}"


def test_every_dashboard_query_returns_data_from_the_live_prometheus(running):
    """Each panel's query answers, and every metric it names has series (a panel can show
    `or vector(0)` over a metric that no longer exists)."""
    _monitored(running)
    for title, _, expr, _ in monitoring.panels():
        assert _poll(lambda expr=expr: _query(running, expr), timeout=30), f"{title}: {expr}"
        for metric in set(re.findall(r"\b(?:prefect|process)_[a-z_]+\b|\bup\b", expr)):
            series = f'count({{__name__="{metric}"}})'
            assert _poll(lambda q=series: _query(running, q), timeout=30), f"{title}: {metric}"


def _grafana(running: Running, path: str, query: dict | None = None) -> tuple[int, object]:
    """Grafana's HTTP API through the proxy with the stack login; `query` is POSTed."""
    status, body = running.get(f"/grafana{path}", method="POST" if query else "GET",
                               body=json.dumps(query).encode() if query else None)
    return status, json.loads(body)


def _panel_data(running: Running, panel: dict) -> dict[str, dict]:
    """A panel's targets as Grafana's frontend runs them (`/api/ds/query`), last 5 minutes."""
    targets = [{"datasource": panel.get("datasource"), **t} for t in panel["targets"]]
    status, answer = _grafana(running, "/api/ds/query",
                              {"queries": targets, "from": "now-5m", "to": "now"})
    assert status == 200, answer
    return answer["results"]


def _has_data(results: dict[str, dict]) -> bool:
    return all(r.get("status") == 200 and any(f["data"]["values"][1] for f in r["frames"])
               for r in results.values())


def _completed_panel(running: Running) -> float:
    """The latest value of the dashboard's completed-runs panel, through Grafana."""
    status, answer = _grafana(running, f"/api/dashboards/uid/{monitoring.DASHBOARD_UID}")
    assert status == 200, answer
    panel = next(p for p in answer["dashboard"]["panels"]
                 if p["targets"][0]["expr"] == monitoring.COMPLETED_RUNS)
    (result,) = _panel_data(running, panel).values()
    assert result.get("status") == 200, result
    (frame,) = result["frames"]
    return frame["data"]["values"][1][-1]


def test_grafana_behind_the_login_serves_the_dashboard_and_every_panel_returns_data(running):
    """Grafana (tests/live/standins/grafana.py) provisioned from the emitted files, after the
    flow runs above: health through the proxy route behind the login, the dashboard listed,
    each panel's queries answered with data by the live Prometheus through the provisioned
    datasource, and no second login: Grafana's own admin login is refused, even with the
    emitted admin password (login form and basic auth off). (The completed-runs panel
    rising after a run: test_completed_runs_metric_increases_after_a_flow_run.)"""
    _monitored(running)
    grafana = running.container("grafana")
    assert running.get("/grafana/api/health", auth=None)[0] == 401  # the proxy's login
    assert _grafana(running, "/api/health") == (200, {"database": "ok", "version": "stand-in",
                                                       "commit": "stand-in"})
    status, found = _grafana(running, "/api/search?type=dash-db")
    assert status == 200 and [d["uid"] for d in found] == [monitoring.DASHBOARD_UID], found
    assert found[0]["url"].startswith("/grafana/d/")
    status, answer = _grafana(running, f"/api/dashboards/uid/{monitoring.DASHBOARD_UID}")
    assert status == 200, answer
    panels = answer["dashboard"]["panels"]
    assert len(panels) == len(monitoring.panels())
    for panel in panels:
        assert _poll(lambda p=panel: _has_data(_panel_data(running, p)), timeout=30), (
            panel["title"], _panel_data(running, panel))

    def login(password: str) -> str:
        body = json.dumps({"user": grafana.env["GF_SECURITY_ADMIN_USER"], "password": password})
        return running.stack.processes[grafana.name].exec(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", body,
             "-H", "Content-Type: application/json",
             "http://localhost:3000/grafana/login"]).stdout
    assert login(grafana.env["GF_SECURITY_ADMIN_PASSWORD"]) == "401"


def test_postgres_runs_with_the_configured_max_connections_and_prefect_within_its_pools(running):
    postgres = [c for c in running.containers.values() if "postgres" in c.aliases]
    if not postgres:
        pytest.skip(f"{running.name} has no PostgreSQL")
    configured = next(a for a in postgres[0].command if a.startswith("max_connections="))
    process = running.stack.processes[postgres[0].name]

    def sql(query: str) -> str:
        result = process.exec(["sh", "-c", 'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 '
                               f'-U postgres -tAc "{query}"'])
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert f"max_connections={sql('SHOW max_connections')}" == configured
    config, _ = stack_config(running.name)
    config.update(prod_overrides(config) if running.name == "prod" else {})
    cfg = StackConfig.model_validate(config)
    in_use = int(sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'prefect'"))
    assert 0 < in_use <= sum(u.processes * u.per_process for u in hygiene.pool_users(cfg))
