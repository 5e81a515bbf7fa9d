"""How worker containers start (Prefect knowledge, Pulumi-free): Prefect's worker class run by
a small launcher (components/assets/prefect_worker.py) instead of `prefect worker start`.

The same worker, settings, signal handling and health rule, without the CLI's modules and the
FastAPI/uvicorn health server: ≈10 MiB PSS less per worker at rest (measured, README
"Benchmark"). The arguments stay the CLI's, after the launcher's path.
"""

from __future__ import annotations

from pathlib import Path

from components.spec import FileUpload

WORKER_SOURCE = Path(__file__).resolve().parent / "assets" / "prefect_worker.py"
WORKER_PATH = "/opt/prefect-stack/prefect_worker.py"


def worker_command(pool: str, pool_type: str) -> tuple[str, ...]:
    return ("python", WORKER_PATH, "prefect", "worker", "start", "--pool", pool,
            "--type", pool_type, "--with-healthcheck")


def worker_upload() -> FileUpload:
    return FileUpload(WORKER_PATH, WORKER_SOURCE.read_text())
