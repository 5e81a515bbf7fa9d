"""One-shot jobs that can be run again: the run number, the wrapper that reports it, and the
decision to run a job again. Plain functions, no Pulumi.

Why this exists: pulumi-docker records a job container that exited non-zero as created, with
its `exit_code` (terraform-provider-docker v4.5.0, `resourceDockerContainerCreate`: with
`attach` it waits for the exit and never fails on the code; `resourceDockerContainerRead`
only stores `exit_code`). With unchanged inputs the next `pulumi up` neither runs it again
nor gets past the exit-code gate. The program cannot see the previous run in its own
inputs, so it asks the Docker daemon: every job prints a start and an exit marker carrying
its run number, the program reads the job container's last log lines (`docker.get_logs`,
see components/docker/jobruns.py) and picks the run number:

- no container yet            -> run 1
- last run exited 0           -> the same number: the command is unchanged, nothing re-runs
- last run exited non-zero,   -> the next number: the command changes, which replaces the
  or never reported an exit      container (command is ForceNew), so the job runs again
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from components.config import StackConfig
from components.errors import Problem

MARKER = "prefect-stack job"
_MARKER = re.compile(rf"^{MARKER} (?P<job>\S+) run (?P<run>\d+): "
                     r"(?:(?P<started>started)|exit (?P<code>-?\d+))\s*$")
TAIL_LINES = 20  # the exit marker is the last line a finished job printed


@dataclass(frozen=True)
class PreviousRun:
    """What the job's current container reported about its run."""

    run: int
    exit_code: int | None  # None: it started but never reported an exit (killed, interrupted)


def wrap_command(job: str, run: int, command: Sequence[str]) -> list[str]:
    """`command` run through `sh`, between a start and an exit marker; keeps its exit code.

    The image's entrypoint still runs first (it receives `sh -c ...` as its arguments), so
    the image needs `sh` and an entrypoint that runs its arguments (the official images do);
    a job whose image's entrypoint is a program (e.g. `mc`, `migrate`) sets `entrypoint`, and
    the wrapper then replaces the image's and runs that. `sh` stays needed either way: an
    image known to have none is refused (`shell_less`); README "Troubleshooting".
    """
    return [*job_wrapper(job, run), *command]


def job_wrapper(job: str, run: int) -> list[str]:
    """The `sh -c` prefix of `wrap_command`: it runs its arguments between the markers. A job
    that overrides the image's entrypoint gets this as its entrypoint instead, with its own
    entrypoint and command as the arguments."""
    start = shlex.quote(f"{MARKER} {job} run {run}: started")
    done = shlex.quote(f"{MARKER} {job} run {run}: exit ")
    script = f'echo {start}; "$@"; code=$?; echo {done}"$code"; exit "$code"'
    return ["sh", "-c", script, f"{job}-run-{run}"]


def previous_run(job: str, lines: Sequence[str]) -> PreviousRun | None:
    """The last run reported in `lines` (log lines, oldest first), or None without markers."""
    last: PreviousRun | None = None
    for line in lines:
        match = _MARKER.match(line)
        if match is None or match.group("job") != job:
            continue
        code = None if match.group("started") else int(match.group("code"))
        last = PreviousRun(int(match.group("run")), code)
    return last


def next_run(previous: PreviousRun | None) -> int:
    """Keep the run number of a job that succeeded; move on after anything else."""
    if previous is None:
        return 1
    if previous.exit_code == 0:
        return previous.run
    return previous.run + 1


def failure_message(job: str, container: str, code: int | None, run: int,
                    docker_host: str | None) -> str:
    """What `pulumi up` prints when a job exits non-zero: which job, where its output is,
    and what the next `pulumi up` does."""
    docker = f"docker -H {docker_host}" if docker_host else "docker"
    return (f"setup job `{job}` failed: its container {container} exited with code {code} "
            f"(run {run}). Its output: `{docker} logs {container}` (also kept, as a secret, in "
            f"the container's `containerLogs` output in the stack state). What waits for this "
            f"job was not created. Fix the cause (for a transient failure there is nothing to "
            f"fix) and run `pulumi up` again: it runs `{job}` again as run {run + 1} "
            f"(no --replace needed).")


# Images documented to ship without any shell: distroless (its `:debug` tags add busybox sh)
# and Chainguard's static base. A digest cannot be told apart from a `:debug` one: not refused.
_SHELL_LESS = (re.compile(r"^gcr\.io/distroless/[^:@]+(?::(?!debug)[^:@]+)?$"),
               re.compile(r"^cgr\.dev/chainguard/static(?::[^:@]+)?$"))


def shell_less(image: str) -> bool:
    """Whether `image` is known to have no `sh`, so the job wrapper cannot run in it."""
    return any(pattern.match(image) for pattern in _SHELL_LESS)


def problems(cfg: StackConfig) -> Iterator[Problem]:
    """Setup jobs on Docker run through the wrapper (Kubernetes Jobs report their own exit)."""
    if cfg.target.kind != "docker":
        return
    for i, job in enumerate(cfg.setup_jobs):
        if shell_less(job.image):
            yield Problem(f"setupJobs[{i}].image", f"`{job.image}` has no `sh`, which runs the "
                          "job between the markers that tell the next `pulumi up` whether it "
                          "succeeded (an `entrypoint` does not change that); use the image's "
                          "`:debug` variant (busybox sh) or one built on an image with a shell")
