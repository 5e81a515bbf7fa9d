"""How worker containers start (Prefect knowledge, Pulumi-free): Prefect's worker class run by
a small launcher (components/assets/prefect_worker.py) instead of `prefect worker start`.

The same worker, settings, signal handling and health rule, without the CLI's modules and the
FastAPI/uvicorn health server: ≈10 MiB PSS less per worker at rest (measured, README
"Benchmark"). The arguments stay the CLI's, after the launcher's path.

With the pool's flow-run command `FORK_COMMAND` (components/assets/prefect_flow_run.py), the
launcher also serves flow runs from the worker's event loop: each run is a fork of the worker,
which has Prefect's engine imported, instead of a new interpreter importing Prefect again
(README "Benchmark").
"""

from __future__ import annotations

from components import shipped, tuning
from components.spec import FileUpload

WORKER = "prefect_worker.py"
WORKER_SOURCE = shipped.source(WORKER)
WORKER_PATH = shipped.path(WORKER)
FLOW_RUN = "prefect_flow_run.py"
FLOW_RUN_SOURCE = shipped.source(FLOW_RUN)
FORK_COMMAND = tuning.FORK_COMMAND  # runs the uploaded FLOW_RUN (tests/test_flow_run_fork.py)


def forks_flow_runs(flow_run_command: str | None) -> bool:
    return flow_run_command == FORK_COMMAND


def worker_command(pool: str, pool_type: str, flow_run_command: str | None
                   ) -> tuple[str, ...]:
    fork = ("--fork-server",) if forks_flow_runs(flow_run_command) else ()
    return ("python", WORKER_PATH, "prefect", "worker", "start", "--pool", pool,
            "--type", pool_type, "--with-healthcheck", *fork)


def worker_uploads(flow_run_command: str | None) -> tuple[FileUpload, ...]:
    """The launcher and the lean-imports module it imports from beside itself; with the fork
    server also the flow-run client it imports and the pool's command runs."""
    fork = (shipped.upload(FLOW_RUN),) if forks_flow_runs(flow_run_command) else ()
    return (shipped.upload(WORKER), shipped.upload(shipped.LEAN), *fork)
