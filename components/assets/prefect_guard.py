"""prefect-stack guard: run a Prefect server or services command so that a process whose
background services stopped is seen (health check) and replaced (exit -> restart policy).

Why: after a PostgreSQL outage Prefect 3.8.8's event persister and task-run recorder can end
(the database driver surfaces the lost connection as CancelledError, which their consume loop
does not catch). The process keeps answering /api/health, but records no task runs or events
until it is restarted. Docker does not restart an unhealthy container, so the guard exits the
process once a service has been dead for PREFECT_STACK_GUARD_GRACE_SECONDS and the
container's `restart: unless-stopped` starts a fresh one. Uploaded into the container; needs
only the Prefect in the image.

    python prefect_guard.py run prefect server start [--no-services]
    python prefect_guard.py run prefect server services start
    python prefect_guard.py check [http://localhost:4200/api/health]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

STATUS = Path(os.environ.get("PREFECT_STACK_GUARD_STATUS", "/tmp/prefect-stack-guard.json"))
GRACE = float(os.environ.get("PREFECT_STACK_GUARD_GRACE_SECONDS", "10"))
INTERVAL = 2.0
STALE = 30.0  # a status older than this: the event loop is stuck
EXIT_DEAD_SERVICE = 70
EXIT_STUCK_LOOP = 71


def write_status(dead: list[str], running: list[str]) -> None:
    tmp = STATUS.with_suffix(".tmp")
    tmp.write_text(json.dumps({"time": time.time(), "dead": dead, "running": running}))
    tmp.replace(STATUS)


def log(message: str) -> None:
    print(f"prefect-stack guard: {message}", file=sys.stderr, flush=True)


async def watch(tasks: dict) -> None:
    """Every INTERVAL s: write which services run; exit once one stayed dead for GRACE s."""
    dead_since: float | None = None
    while True:
        dead = sorted(service.name for service, task in tasks.items() if task.done())
        write_status(dead, sorted(service.name for service in tasks))
        if not dead:
            dead_since = None
        elif dead_since is None:
            dead_since = time.monotonic()
            for service, task in tasks.items():
                if task.done():
                    error = None if task.cancelled() else task.exception()
                    log(f"service {service.name} stopped ({error!r})")
        elif time.monotonic() - dead_since >= GRACE:
            log(f"services {dead} dead for {GRACE:.0f}s: exiting so the container restarts")
            os._exit(EXIT_DEAD_SERVICE)
        await asyncio.sleep(INTERVAL)


def install() -> None:
    """Replace Service.running (same start/stop as Prefect's) with one that is watched."""
    from prefect.server.services.base import Service

    @asynccontextmanager
    async def running(cls):
        tasks = {}
        for service_class in cls.enabled_services():
            service = service_class()
            tasks[service] = asyncio.create_task(service.start())
        watcher = asyncio.create_task(watch(tasks))
        sweeper = None
        if cls is Service:  # all of Prefect's services run here, not a webserver-only subset
            from prefect_sweeper import sweep_forever  # stuck runs -> CRASHED; uploaded beside us

            sweeper = asyncio.create_task(sweep_forever())
        try:
            yield
        finally:
            watcher.cancel()
            if sweeper is not None:
                sweeper.cancel()
            STATUS.unlink(missing_ok=True)
            await asyncio.gather(*[service.stop() for service in tasks], return_exceptions=True)
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    Service.running = classmethod(running)
    threading.Thread(target=exit_when_stuck, daemon=True).start()


def exit_when_stuck() -> None:
    """A thread, so it still runs when the event loop is blocked."""
    while True:
        time.sleep(INTERVAL)
        try:
            age = time.time() - json.loads(STATUS.read_text())["time"]
        except (OSError, ValueError, KeyError):
            continue
        if age > 3 * STALE:
            log(f"event loop silent for {age:.0f}s: exiting so the container restarts")
            os._exit(EXIT_STUCK_LOOP)


def check(url: str | None) -> str | None:
    """None when healthy, else why not. `url`: the process's own health endpoint, if any."""
    if url is not None:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status != 200:
                    return f"{url} answered {response.status}"
        except OSError as err:
            return f"{url}: {err}"
    try:
        status = json.loads(STATUS.read_text())
    except (OSError, ValueError):
        return f"no service status at {STATUS} yet"
    if status["dead"]:
        return f"background services stopped: {', '.join(status['dead'])}"
    if time.time() - status["time"] > STALE:
        return f"service status not updated for {time.time() - status['time']:.0f}s"
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"] and len(argv) <= 2:
        problem = check(argv[1] if len(argv) == 2 else None)
        if problem:
            print(problem)
            return 1
        return 0
    if argv[:2] == ["run", "prefect"]:
        STATUS.unlink(missing_ok=True)  # a restarted container keeps /tmp
        install()
        from prefect.cli import app

        sys.argv = argv[1:]  # Prefect's CLI reads its arguments from sys.argv
        app()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
