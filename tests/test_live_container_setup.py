"""A container's health check runs only once the harness has made the container's mounts, as
Docker runs none before the container starts.

The harness starts each container as `ip netns exec NS sh -c '<mount its volumes and uploaded
files>; exec "$@"'`. A health check exec'd into it before those mounts are made would run an
uploaded check script from its mount point, an empty file, and `python` of an empty file exits
0: a Prefect server not yet listening was judged healthy, and the job after it (the work pool
setup) failed to connect (seen in test_live_import.py and test_live_root.py)."""

from __future__ import annotations

import pytest
from live.gate import live_missing, require
from live.runner import LiveError, LiveStack

from components.dryrun import EmittedContainer

pytestmark = pytest.mark.live

# Enough files that mounting them takes a while (each a `mount` process): the first health
# check comes while they are being mounted. The check script is mounted last.
FILES = {f"/opt/setup-test/file-{i}": "" for i in range(150)}
NEVER_HEALTHY = "import sys; sys.exit('never healthy')\n"


def test_an_uploaded_health_check_script_runs_only_once_it_is_mounted(tmp_path):
    require(live_missing(), "the container setup live test")
    container = EmittedContainer(
        name="setup-test", aliases=("setup-test",), image="python:3.12.8-slim",
        command=("python", "-c", "import time; time.sleep(600)"), env={},
        uploads={**FILES, "/opt/setup-test/health.py": NEVER_HEALTHY},
        healthcheck=("CMD", "python", "/opt/setup-test/health.py"),
        networks={"net": ("setup-test",)}, mounts=(), ports=(), user=None, working_dir=None,
        one_shot=False, wait_healthy=True, depends_on=())
    stack = LiveStack([container], tmp_path)
    try:
        with pytest.raises(LiveError, match="never healthy"):
            stack.start(timeout=2)
    finally:
        stack.stop()
    assert stack.left_behind == [], "teardown must stop every process by PID"
