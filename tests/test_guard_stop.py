"""The guarded Prefect process stops on SIGTERM however early it comes: `docker stop` (and
`pulumi destroy`, and a replace) must not wait out the stop timeout and SIGKILL it.

Seen live (a guarded `prefect server start`, SIGTERM 0.3 s after "Application startup
complete"): Prefect's ReactiveTriggers.stop() asserts its consumer exists, but start() creates
it only after loading the automations; the guard collected that AssertionError and then waited
for start(), which went on to create its consumer and ran forever. Plain Prefect raises it out
of the lifespan instead and exits."""

from __future__ import annotations

import subprocess
import sys

import pytest
from harness import ROOT
from live.gate import require_live_prefect

GUARD = ROOT / "components" / "assets" / "prefect_guard.py"
pytestmark = pytest.mark.live  # Prefect's own services, stopped for real

# Prefect's own ReactiveTriggers, its automations taking 0.5 s to load (as from a busy
# database), and the services stopped 0.1 s after they started.
EARLY_STOP = """
import asyncio, sys, time
from contextlib import asynccontextmanager
sys.path.insert(0, {guard_dir!r})
import prefect_guard
prefect_guard.install()
from prefect.server.events import triggers
from prefect.server.database import provide_database_interface
from prefect.server.events.services.triggers import ReactiveTriggers
from prefect.server.services.base import Service

load = triggers.consumer

@asynccontextmanager
async def slow_consumer(*args, **kwargs):
    await asyncio.sleep(0.5)
    async with load(*args, **kwargs) as handler:
        yield handler

triggers.consumer = slow_consumer
Service.enabled_services = classmethod(lambda cls: [ReactiveTriggers])

async def main():
    await provide_database_interface().create_db()  # SQLite in PREFECT_HOME, as a server has
    started = time.monotonic()
    async with Service.running():
        await asyncio.sleep(0.1)
    print(f"stopped after {{time.monotonic() - started:.1f}}s", flush=True)

asyncio.run(main())
"""


def test_guarded_services_stop_when_stopped_before_a_service_finished_starting(tmp_path):
    script = tmp_path / "early_stop.py"
    script.write_text(EARLY_STOP.format(guard_dir=str(GUARD.parent)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path),
           "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json")}
    try:
        result = subprocess.run([str(require_live_prefect()), str(script)], capture_output=True, text=True,
                                env=env, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the guarded services were still running 30 s after they were stopped")
    assert result.returncode == 0, result.stderr[-2000:]
    seconds = float(result.stdout.split()[-1].rstrip("s"))
    assert seconds < 5, result.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
