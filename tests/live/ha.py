"""The HA stack as tested and soaked: Pulumi.prod.yaml (as the live suite runs it) with two
API replicas, two background-services processes and Redis. Shared by tests/test_live_ha.py
and bench/soak.py."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from live.runner import LIVE_VENV, ROOT, LiveError, run
from live.session import FLOW_DIR, Running, stack_config

HA_CLIENT = ROOT / "tests" / "live" / "ha_client.py"


def ha_overrides(api_replicas: int = 2, services_replicas: int = 2, worker_replicas: int = 1
                 ) -> dict[str, Any]:
    """Only scale-out keys change (and the pools shrink so every process fits PostgreSQL's
    max_connections); the app API and monitoring (tested elsewhere) are left out."""
    config, _ = stack_config("prod")
    workers = [{**w, "replicas": worker_replicas,
                "flowCode": {"hostPath": "./flows", "mountPath": FLOW_DIR}}
               for w in config["workers"]]
    return {"server": {**config["server"], "replicas": api_replicas,
                       "servicesReplicas": services_replicas},
            "database": {**config["database"], "pool": {"size": 2, "maxOverflow": 8}},
            "redis": {"enabled": True}, "workers": workers, "api": None, "monitoring": None}


def replicas(running: Running, service: str) -> list[str]:
    """Container names of a service's replicas, in order."""
    return sorted(name for name, c in running.containers.items() if service in c.aliases
                  and not c.one_shot)


def replica_api_url(running: Running, container: str) -> str:
    """One API replica's own URL, bypassing the proxy (its address on the app network)."""
    c = running.containers[container]
    base = c.env.get("PREFECT_SERVER_API_BASE_PATH", "/api")
    return f"http://{running.stack.network.address(container)}:{c.env['PREFECT_SERVER_API_PORT']}{base}"


def request_stream(running: Running, count: int, outcomes: list[int | str],
                   started: threading.Event) -> None:
    """`count` API reads through the proxy with the stack's login, one after another; each
    outcome is a status code or the connection error. `started` is set at the 20th, the
    moment a failover test kills a replica."""
    auth = "Basic " + base64.b64encode(running.login.encode()).decode()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=running.ssl))
    for i in range(count):
        if i == 20:
            started.set()
        request = urllib.request.Request(f"{running.origin}/prefect/api/admin/version",
                                         headers={"Authorization": auth})
        try:
            with opener.open(request, timeout=20) as response:
                outcomes.append(response.status)
        except urllib.error.HTTPError as err:
            outcomes.append(err.code)
        except OSError as err:
            outcomes.append(repr(err))


def ha_client(running: Running, *args: str, timeout: float = 600) -> Any:
    result = subprocess.run([str(LIVE_VENV / "bin" / "python"), str(HA_CLIENT), *args],
                            env=running.client_env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise LiveError(f"ha client {args} failed:\n{result.stderr[-3000:]}\n"
                        f"{running.stack.logs()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def outage(running: Running, service: str, seconds: float) -> None:
    """`docker stop --time 60` a data service for `seconds`, then `docker start` it and wait
    until it is healthy again. Deliberate: the restart policy does not bring it back early.
    The long grace lets PostgreSQL finish its fast shutdown while clients keep reconnecting
    (killed mid-shutdown, this stand-in's restart finds a stale lock file)."""
    process = running.stack.processes[running.container(service).name]
    process.stop(grace=60)
    time.sleep(seconds)
    process.start()
    running.stack.wait_healthy(process.container.name, 120)


def wait_recovered(running: Running, timeout: float = 300) -> float:
    """Seconds until every long-running container passes its own health check again (guarded
    Prefect processes may exit and be restarted on the way) and the API is ready."""
    started = time.monotonic()
    deadline = started + timeout
    pending = [n for n, p in running.stack.processes.items() if not p.container.one_shot]
    while pending and time.monotonic() < deadline:
        process = running.stack.processes[pending[0]]
        result = process.health() if process.alive() else None
        if process.alive() and (result is None or result.returncode == 0):
            pending.pop(0)
        else:
            time.sleep(1)
    while running.get("/prefect/api/ready")[0] != 200 and time.monotonic() < deadline:
        time.sleep(1)
    if pending or time.monotonic() >= deadline:
        raise LiveError(f"not recovered after {timeout:.0f}s: {pending}\n{running.stack.logs()}")
    return time.monotonic() - started


def restarts(running: Running) -> dict[str, int]:
    """Restarts by the emulated restart policy, per container that had any."""
    return {n: p.restarts for n, p in running.stack.processes.items() if p.restarts}


def stack_pss_mib(running: Running) -> dict[str, float]:
    """PSS of every long-running container (all processes in its namespace)."""
    out = {}
    for name, process in running.stack.processes.items():
        if process.container.one_shot:
            continue
        pids = run("ip", "netns", "pids", process.namespace, check=False).stdout.split()
        total = 0
        for pid in pids:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) for line in rollup.splitlines()
                           if line.startswith("Pss:")), 0)
        out[name] = total / 1024
    return out
