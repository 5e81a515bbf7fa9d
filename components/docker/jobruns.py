"""One-shot jobs on Docker: run again after a failure, gate what waits for them.

components/jobs.py explains the mechanism. Here is the Docker side: `docker.get_logs`
(terraform-provider-docker `data_source_docker_logs.go`: `ContainerLogs` by container name)
reads the job container's last lines while the program runs, in `pulumi up` and in
`pulumi preview` alike (the bridge's Invoke ignores the preview flag). A missing container
is an error from the daemon ("No such container"): that is a job never run. The plain
(blocking) form of the invoke is used because its error can be caught; the pulumi SDK hands
an invoke's error back to the caller instead of recording it as unhandled.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.jobs import TAIL_LINES, failure_message, next_run, previous_run, wrap_command
from components.spec import ServiceSpec

NO_SUCH_CONTAINER = "No such container"


def job_run(spec: ServiceSpec, container_name: str, parent: pulumi.Resource
            ) -> tuple[int, list[str]]:
    """The run number for this `up` and the job's command wrapped to report it."""
    assert spec.one_shot and spec.command, f"{spec.name}: a job needs a command to wrap"
    lines = _log_lines(container_name, parent, tail=str(TAIL_LINES))
    previous = previous_run(spec.name, lines or [])
    if lines is not None and (previous is None or previous.exit_code is None):
        # The exit marker is the last line a finished job prints; without it, the start
        # marker (the first line) still tells which run was cut short.
        previous = previous_run(spec.name, _log_lines(container_name, parent, tail=None) or [])
    run = next_run(previous)
    return run, wrap_command(spec.name, run, spec.command)


def _log_lines(container_name: str, parent: pulumi.Resource, tail: str | None
               ) -> list[str] | None:
    """The container's log lines (stdout and stderr, oldest first); None if it does not exist.

    `parent` makes the invoke use the parent's Docker provider (the remote host, if set).
    """
    try:
        result = docker.get_logs(name=container_name, tail=tail,
                                 opts=pulumi.InvokeOptions(parent=parent))
    except Exception as err:  # the SDK raises a plain Exception for an invoke error
        if NO_SUCH_CONTAINER in str(err):
            return None
        raise pulumi.RunError(f"cannot read how job container {container_name} last ran "
                              f"(docker logs {container_name}): {err}") from None
    return list(result.logs_list_strings or [])


def job_gate(job: str, container_name: str, run: int, container: docker.Container,
             docker_host: str | None) -> pulumi.Output[str]:
    """A value that exists only once `job` exited 0: dependents carry it as a label, so a
    failed job stops them from being created instead of starting them anyway."""

    def check(code: int | None) -> str:
        if code != 0:
            raise pulumi.RunError(failure_message(job, container_name, code, run, docker_host))
        return "completed"

    return container.exit_code.apply(check)
