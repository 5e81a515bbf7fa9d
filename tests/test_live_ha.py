"""The HA stack run for real (tests/live/ha.py: prod with two API replicas, two services
processes, Redis): flows through the proxy with auth, events across replicas, no duplicate
scheduled runs, failover without a failed request, and recovery after outages with no manual
step. One stack for the module; long outages and the soak are bench/ scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from live.gate import live_missing, live_stack, require
from live.ha import (
    ha_client,
    ha_overrides,
    outage,
    replica_api_url,
    replicas,
    request_stream,
    restarts,
    wait_recovered,
)
from live.runner import LIVE_REDIS_VENV, LIVE_VENV
from live.session import FLOW_DIR, Running, emitted

from components.config import PREFECT_VERSION
from components.scaleout import PREFECT_REDIS_FOR_PREFECT

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended
SERVER, SERVICES = "prefect-server", "prefect-services"


def ha_missing() -> str | None:
    """Why the HA stack cannot run here: what any live stack needs, Redis, the image venv."""
    if not (LIVE_REDIS_VENV / "bin" / "prefect").exists():
        return f"needs the scale-out image's venv at {LIVE_REDIS_VENV} (./run-tests installs it)"
    if shutil.which("redis-server") is None:
        return "needs Debian's redis-server (./run-tests installs it)"
    return live_missing()


# The stuck-run sweeper judges PENDING runs after 5 min in production; 45 s here.
FAST_SWEEP = {"PREFECT_STACK_SWEEP_PENDING_SECONDS": "45", "PREFECT_STACK_SWEEP_INTERVAL_SECONDS": "5"}


@pytest.fixture(scope="module")
def ha(tmp_path_factory) -> Iterator[Running]:
    require(ha_missing(), "the HA live suite")
    overrides = ha_overrides()
    server = overrides["server"]
    overrides["server"] = {**server, "env": {**server.get("env", {}), **FAST_SWEEP}}
    yield from live_stack("prod", tmp_path_factory.mktemp("live-ha"), overrides)


def _package_versions(venv) -> dict[str, str]:
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import importlib.metadata as m, json; print(json.dumps("
                          "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_scale_out_image_stand_in_is_the_prefect_image_plus_the_pinned_prefect_redis():
    require(ha_missing(), "the scale-out image check")
    plain, scaled = _package_versions(LIVE_VENV), _package_versions(LIVE_REDIS_VENV)
    assert scaled["prefect"] == plain["prefect"] == PREFECT_VERSION
    assert scaled["prefect-redis"] == PREFECT_REDIS_FOR_PREFECT[PREFECT_VERSION]
    assert "prefect-redis" not in plain
    # Whatever else differs is prefect-redis's own dependencies, not a drifted Prefect.
    changed = {k for k in plain if scaled.get(k) != plain[k]}
    assert changed == set(), changed


def test_api_replicas_and_services_run_the_built_image_without_pip_at_start():
    containers = emitted("prod", ha_overrides())
    prefect = [c for c in containers if {SERVER, SERVICES, "prefect-migrate"} & set(c.aliases)]
    assert len(prefect) == 5
    tag = f"-prefect-redis-{PREFECT_REDIS_FOR_PREFECT[PREFECT_VERSION]}"
    for c in prefect:
        assert c.image.startswith("prefect-stack/prefect-redis:") and c.image.endswith(tag)
        assert "EXTRA_PIP_PACKAGES" not in c.env, c.name
    servers = [c for c in prefect if SERVER in c.aliases]
    assert all(c.command[-4:] == ("prefect", "server", "start", "--no-services") for c in servers)


def test_flow_runs_complete_through_the_proxy_with_auth_and_record_every_task_run(ha):
    runs = ha_client(ha, "runs", ha.pool, FLOW_DIR, "3")
    assert [r["state"] for r in runs] == ["COMPLETED"] * 3, runs
    assert all(r["completed_task_runs"] == 3 and r["logged"] for r in runs), runs
    assert ha.client_env["PREFECT_API_URL"].startswith("https://localhost")
    assert ha.client_env["PREFECT_API_AUTH_STRING"]


def test_an_event_sent_through_one_replica_reaches_a_subscriber_on_the_other(ha):
    first, second = replicas(ha, SERVER)
    result = ha_client(ha, "events", replica_api_url(ha, first), replica_api_url(ha, second))
    assert result["received"] == result["sent"], result


def test_two_services_processes_schedule_an_interval_deployment_without_duplicates(ha):
    assert len(replicas(ha, SERVICES)) == 2
    result = ha_client(ha, "schedule", ha.pool, FLOW_DIR, "60", "20")
    assert result["runs"] >= 3, result  # the scheduler filled the schedule
    duplicates = [t for t, n in Counter(result["starts"]).items() if n > 1]
    assert duplicates == [], result


def test_killing_an_api_replica_fails_none_of_a_stream_of_requests_through_the_proxy(ha):
    victim = replicas(ha, SERVER)[0]
    process = ha.stack.processes[victim]
    restarts = process.restarts
    outcomes: list[int | str] = []
    started = threading.Event()
    stream = threading.Thread(target=request_stream, args=(ha, 400, outcomes, started))
    stream.start()
    assert started.wait(60)
    ha.stack.kill(victim)
    stream.join(timeout=300)
    failed = [o for o in outcomes if o != 200]
    print(f"failover: {len(outcomes)} requests, {len(failed)} failed, victim {victim}")
    assert len(outcomes) == 400 and failed == [], Counter(map(str, failed))
    deadline = time.monotonic() + 120
    while process.restarts == restarts and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.restarts == restarts + 1  # restart: unless-stopped brought it back
    ha.stack.wait_healthy(victim, 120)


def test_after_postgres_and_redis_outages_new_flow_runs_are_fully_recorded_unattended(ha):
    """Short outages for CI (bench/outage.py runs 60 s ones); nothing is restarted by hand."""
    spanning = ha_client(ha, "start", ha.pool, FLOW_DIR, "15", "2")["id"]
    for service in ("postgres", "redis"):
        outage(ha, service, 20)
        print(f"{service} outage: recovered in {wait_recovered(ha):.0f} s, "
              f"restarts {restarts(ha)}")
    runs = ha_client(ha, "runs", ha.pool, FLOW_DIR, "2")
    assert [(r["state"], r["completed_task_runs"], r["logged"]) for r in runs] == \
        [("COMPLETED", 3, True)] * 2, runs
    deadline = time.monotonic() + 180
    while (final := ha_client(ha, "flow-runs", spanning)[0])["state"] not in \
            {"COMPLETED", "FAILED", "CRASHED"} and time.monotonic() < deadline:
        time.sleep(3)
    assert final["state"] == "COMPLETED", final  # the run that spanned both outages finished


def test_a_run_left_pending_without_a_process_is_crashed_so_it_frees_its_slot(ha):
    """The sweeper in the services processes (components/assets/prefect_sweeper.py): the
    pool's concurrency counts PENDING runs, and nothing in Prefect ends this one."""
    run = ha_client(ha, "strand")["id"]
    deadline = time.monotonic() + 180
    while (found := ha_client(ha, "flow-runs", run)[0])["state"] == "PENDING" and \
            time.monotonic() < deadline:
        time.sleep(3)
    assert found["state"] == "CRASHED", found
    assert "PENDING for over 45s" in found["message"], found
