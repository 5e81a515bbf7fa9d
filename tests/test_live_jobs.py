"""A setup job that fails, then succeeds on the next `up`, run for real (tests/live/runner.py).

The first `up` on a fresh host: the job's emitted container runs and exits 1, so the service
waiting for it is never created. The second `up` is the program evaluated again with what
the first one left on the host — the job container's real log, handed to the program as
`docker.get_logs` returns it — and nothing else changed: the job is emitted with its next
run number, replaced, run again (the cause was transient and is gone) and the service
starts. A third evaluation after the success emits the same containers: nothing re-runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import stack_file
from live.gate import live_missing, require
from live.runner import LiveError, LiveStack

from components.dryrun import EmittedContainer, FakeDaemon, emitted_containers, evaluate

pytestmark = pytest.mark.live

JOB = "prefect-dev-seed"
WEB = "prefect-dev-web"


def emitted(host_dir: Path, daemon: FakeDaemon) -> list[EmittedContainer]:
    """The dev stack plus a job (`test -e /seed/ready`) that a web service waits for; only
    those two are run, the rest of the stack plays no part in this behaviour."""
    config, secrets = stack_file("Pulumi.dev.yaml")
    config["setupJobs"] = [{
        "name": "seed", "image": "python:3.12.8-slim",
        "command": ["sh", "-c", "echo checking; test -e /seed/ready"],
        "volumes": [{"hostPath": str(host_dir), "mountPath": "/seed"}], "before": ["web"]}]
    config["services"] = [{
        "name": "web", "image": "python:3.12.8-slim", "port": 8000,
        "command": ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0"],
        "healthCheck": {"http": {"path": "/"}}}]
    containers = emitted_containers(evaluate(config, secrets, stack="dev", daemon=daemon))
    return [c for c in containers if c.name in (JOB, WEB)]


def log_lines(stack: LiveStack, since: int = 0) -> list[str]:
    """The job container's log as `docker logs` shows it (its own lines only)."""
    return stack.processes[JOB].log.read_text().splitlines()[since:]


def test_a_failed_job_runs_again_on_the_next_up_and_a_succeeded_one_does_not(tmp_path):
    require(live_missing(), "the live suite")
    host_dir = tmp_path / "seed"
    host_dir.mkdir()
    first = emitted(host_dir, FakeDaemon())
    assert [c.name for c in first] == [JOB, WEB]
    assert JOB in next(c for c in first if c.name == WEB).depends_on
    # What the first `up` creates: the job. The web service is never created, because its
    # gate fails (tests/test_jobs.py shows that on the program); the job's own exit is real.
    stack = LiveStack([c for c in first if c.name == JOB], tmp_path / "run")
    try:
        with pytest.raises(LiveError, match=f"job {JOB} exited with code 1"):
            stack.start(timeout=60)
        failed_log = log_lines(stack)
        assert failed_log[-1] == "prefect-stack job seed run 1: exit 1", failed_log

        (host_dir / "ready").touch()  # the transient cause is gone; no config change
        second = emitted(host_dir, FakeDaemon(logs={JOB: failed_log}))
        before = len(failed_log)
        change = stack.update(second, timeout=60)
        assert (change.replaced, change.created) == ((JOB,), (WEB,))
        assert stack.processes[JOB].popen.returncode == 0
        assert stack.processes[WEB].health().returncode == 0
        ok_log = log_lines(stack, since=before)
        assert ok_log[-1] == "prefect-stack job seed run 2: exit 0", ok_log

        third = emitted(host_dir, FakeDaemon(logs={JOB: ok_log}))
        assert third == second
        change = stack.update(third, timeout=60)
        assert (change.replaced, change.created, change.removed) == ((), (), ())
    finally:
        stack.stop()
    # (bridges are named alike in every live stack: once stop() released the machine-wide
    # lock, another stack may already own them, so only our processes are checked here)
    assert [name for name, p in stack.processes.items() if p.alive()] == []
