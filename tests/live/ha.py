"""The HA stack as tested and soaked: Pulumi.prod.yaml (as the live suite runs it) with two
API replicas, two background-services processes and Redis. Shared by tests/test_live_ha.py
and bench/soak.py."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from live.runner import LIVE_VENV, ROOT, LiveError
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
            "database": {**config["database"], "pool": {"size": 5, "maxOverflow": 5}},
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


def ha_client(running: Running, *args: str, timeout: float = 600) -> Any:
    result = subprocess.run([str(LIVE_VENV / "bin" / "python"), str(HA_CLIENT), *args],
                            env=running.client_env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise LiveError(f"ha client {args} failed:\n{result.stderr[-3000:]}\n"
                        f"{running.stack.logs()}")
    return json.loads(result.stdout.strip().splitlines()[-1])
