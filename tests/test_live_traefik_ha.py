"""The HA stack (tests/live/ha.py) behind the real Traefik: every API replica is a server of
Traefik's load balancer, health-checked on `<basePath>/api/health`, with a retry middleware.
Killing one replica during a bounded stream of API requests through Traefik fails none of
them; Traefik reports the dead replica DOWN, and UP again once the restart policy brought it
back. Long (an HA stack): marker `extended`."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest
from live.gate import live_stack, require
from live.ha import ha_client, ha_overrides, replicas, request_stream
from live.session import FLOW_DIR, Running
from test_live_ha import ha_missing
from test_live_traefik import TRAEFIK

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended
SERVER = "prefect-server"
REQUESTS = 400


@pytest.fixture(scope="module")
def ha(tmp_path_factory) -> Iterator[Running]:
    require(ha_missing(), "the HA live suite")
    yield from live_stack("prod", tmp_path_factory.mktemp("live-traefik-ha"),
                          {**ha_overrides(), "proxy": TRAEFIK})


def server_status(ha: Running) -> dict[str, str]:
    """Traefik's own view of Prefect's servers (its API, on the dashboard entrypoint)."""
    request = urllib.request.Request(
        "http://127.0.0.1:8080/api/http/services/prefect-server-prefect@file",
        headers={"Authorization": "Basic " + base64.b64encode(ha.login.encode()).decode()})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read()).get("serverStatus", {})


def wait_status(ha: Running, url: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (found := server_status(ha).get(url)) != wanted:
        assert time.monotonic() < deadline, (url, found, server_status(ha))
        time.sleep(0.5)


def test_flow_runs_complete_through_traefik_on_two_replicas(ha):
    (run,) = ha_client(ha, "runs", ha.pool, FLOW_DIR, "1")
    assert (run["state"], run["completed_task_runs"], run["logged"]) == ("COMPLETED", 3, True), run
    urls = [f"http://{name}:4200" for name in replicas(ha, SERVER)]
    assert server_status(ha) == dict.fromkeys(urls, "UP")


def test_killing_an_api_replica_fails_none_of_a_stream_of_requests_through_traefik(ha):
    victim = replicas(ha, SERVER)[0]
    process = ha.stack.processes[victim]
    restarts = process.restarts
    outcomes: list[int | str] = []
    started = threading.Event()
    stream = threading.Thread(target=request_stream, args=(ha, REQUESTS, outcomes, started))
    stream.start()
    assert started.wait(60)
    ha.stack.kill(victim)
    wait_status(ha, f"http://{victim}:4200", "DOWN", timeout=20)
    stream.join(timeout=300)
    failed = [o for o in outcomes if o != 200]
    print(f"failover through Traefik: {len(outcomes)} requests, {len(failed)} failed")
    assert len(outcomes) == REQUESTS and failed == [], Counter(map(str, failed))
    deadline = time.monotonic() + 120
    while process.restarts == restarts and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.restarts == restarts + 1  # restart: unless-stopped brought it back
    ha.stack.wait_healthy(victim, 120)
    wait_status(ha, f"http://{victim}:4200", "UP")  # and Traefik takes it back
