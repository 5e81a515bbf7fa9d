"""How worker containers start (Prefect knowledge, Pulumi-free): Prefect's worker class run by
a small launcher (components/assets/prefect_worker.py) instead of `prefect worker start`.

The same worker, settings, signal handling and health rule, without the CLI's modules and the
FastAPI/uvicorn health server: ≈10 MiB PSS less per worker at rest (measured, README
"Benchmark"). The arguments stay the CLI's, after the launcher's path.
"""

from __future__ import annotations

from components import shipped
from components.spec import FileUpload

WORKER = "prefect_worker.py"
WORKER_SOURCE = shipped.source(WORKER)
WORKER_PATH = shipped.path(WORKER)


def worker_command(pool: str, pool_type: str) -> tuple[str, ...]:
    return ("python", WORKER_PATH, "prefect", "worker", "start", "--pool", pool,
            "--type", pool_type, "--with-healthcheck")


def worker_upload() -> FileUpload:
    return shipped.upload(WORKER)
