"""Each container the live harness runs has its own /tmp, as Docker gives every container its
own (and the Kubernetes plan every pod an emptyDir there). The guard of each Prefect server and
services process writes its status to /tmp/prefect-stack-guard.json and its health check reads
it back, so on a stack with several guarded processes a shared /tmp would let one process's
check judge another's status (the HA stack has up to six)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from live.gate import live_missing, require
from live.runner import LiveStack

from components.dryrun import EmittedContainer
from components.scaleout import GUARD_PATH, GUARD_SOURCE, guard_healthcheck

pytestmark = pytest.mark.live

IMAGE = "prefecthq/prefect:3.8.8-python3.12"
# A guarded process's status written with the guard's own write_status: healthy at start, and
# on SIGUSR1 the service it names is dead, as the guard's watch loop reports a stopped one.
# Written once each time (not every 2 s as the loop does), so a shared /tmp fails every run.
STATUS_WRITER = f"""
import signal, sys
sys.path.insert(0, "{GUARD_PATH.rsplit('/', 1)[0]}")
import prefect_guard as guard
signal.signal(signal.SIGUSR1, lambda *_: guard.write_status([sys.argv[1]], [sys.argv[1]], []))
guard.write_status([], [sys.argv[1]], [])
while True:
    signal.pause()
"""


def guarded(name: str, service: str) -> EmittedContainer:
    """A container with the emitted guard upload and health check (the services replicas')."""
    return EmittedContainer(
        name=name, aliases=(name,), image=IMAGE,
        command=("python", "-c", STATUS_WRITER, service), env={},
        uploads={GUARD_PATH: GUARD_SOURCE.read_text()},
        healthcheck=guard_healthcheck(None).test, networks={"data": (name,)}, mounts=(),
        ports=(), user=None, working_dir=None, one_shot=False, wait_healthy=False,
        depends_on=(), restart="unless-stopped")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LiveStack]:
    require(live_missing(), "the private /tmp live test")
    live = LiveStack([guarded("services-1", "TaskRunRecorder"),
                      guarded("services-2", "EventPersister")],
                     tmp_path_factory.mktemp("live-private-tmp"))
    try:
        live.start(timeout=60)
        yield live
    finally:
        live.stop()
    assert live.left_behind == [], "teardown must stop every process by PID"


def test_a_guarded_process_health_check_reads_only_its_own_containers_status(stack):
    """Both were healthy at start (LiveStack.start waited); then one's service dies."""
    sick, well = stack.processes["services-1"], stack.processes["services-2"]
    os.kill(sick.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 15
    while (result := sick.health()) is not None and result.returncode == 0:
        assert time.monotonic() < deadline, "the sick process's check never failed"
        time.sleep(0.2)
    assert "background services stopped: TaskRunRecorder" in result.stdout
    check = well.health()
    assert check is not None and check.returncode == 0, check.stdout
