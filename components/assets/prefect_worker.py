"""prefect-stack worker: what `prefect worker start --pool P --type T --with-healthcheck` does,
without loading Prefect's CLI or a FastAPI app for the health check.

Why: a worker sits idle most of its life, and at rest its memory is the code it imported.
The CLI (cyclopts and its command modules) and the health server Prefect builds with FastAPI
and uvicorn add about 10 MiB PSS per worker at rest (measured: 92 -> 82 MiB), for no
behaviour the worker needs. Everything that does the work is Prefect's own public API:
- the worker class registered for the pool type (`BaseWorker.get_worker_class_from_type`,
  as the CLI loads it), constructed as the CLI constructs it and run by its `start()`, so
  PREFECT_WORKER_QUERY_SECONDS / _PREFETCH_SECONDS / _HEARTBEAT_SECONDS, pool creation and the
  pool's base job template (the flow-run command) apply unchanged;
- not the CLI's signal handling: Prefect 3.8.8's `setup_signal_handlers_worker` turns SIGTERM
  into a SIGINT that never stops the worker (measured: `prefect worker start` still ran 20 s
  after SIGTERM, so `docker stop` waits out its grace period and SIGKILLs the worker and its
  flow runs without a word). Here a first SIGTERM or SIGINT cancels the worker: it stops
  polling, its flow-run processes are stopped through Prefect's own cancellation, and it
  exits; a second signal kills at once;
- the health check's rule, `worker.is_worker_still_polling(PREFECT_WORKER_QUERY_SECONDS)`
  (polled within 30 query intervals), served on GET /health at PREFECT_WORKER_WEBSERVER_HOST
  and _PORT with Prefect's answers: 200 {"message": "OK"}, else 503.
Uploaded into the container; needs only the Prefect in the image.

    python prefect_worker.py prefect worker start --pool NAME --type TYPE [--with-healthcheck]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNHEALTHY = {"message": "Worker may be unresponsive at this time"}  # Prefect's 503 body


def parse(argv: list[str]) -> argparse.Namespace:
    """The emitted command's arguments; anything else is an error, not silently ignored."""
    parser = argparse.ArgumentParser(prog="prefect_worker.py")
    parser.add_argument("command", choices=["prefect"])
    parser.add_argument("group", choices=["worker"])
    parser.add_argument("action", choices=["start"])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--type", required=True)
    parser.add_argument("--with-healthcheck", action="store_true")
    parser.add_argument("--fork-server", action="store_true",
                        help="serve flow runs started by prefect_flow_run.py (pool command)")
    return parser.parse_args(argv)


def health_server(is_healthy: Callable[[], bool], host: str, port: int) -> ThreadingHTTPServer:
    """Prefect's worker health endpoint on the standard library's HTTP server."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                self.send_error(404)
                return
            healthy = is_healthy()
            body = json.dumps({"message": "OK"} if healthy else UNHEALTHY).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # Prefect's health server logs at error level only

    return ThreadingHTTPServer((host, port), Health)


def stop_on_signals(task: asyncio.Task | None) -> None:
    """First SIGTERM or SIGINT: cancel the worker's task; the next one: the default, death."""
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        print(f"Received {signal.Signals(signum).name}: stopping the worker", flush=True)
        for each in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(each)
        if task is not None:
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)


async def run(args: argparse.Namespace) -> None:
    from prefect.settings import (
        PREFECT_WORKER_HEARTBEAT_SECONDS,
        PREFECT_WORKER_QUERY_SECONDS,
        get_current_settings,
    )
    from prefect.workers.base import BaseWorker

    if args.fork_server:
        serve_flow_runs()
    worker_cls = BaseWorker.get_worker_class_from_type(args.type)
    if worker_cls is None:
        raise SystemExit(f"prefect-stack worker: no Prefect worker of type {args.type!r} in "
                         "this image (install its integration package in the image)")
    worker = worker_cls(work_pool_name=args.pool,
                        heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()))
    server = None
    if args.with_healthcheck:
        # Served before the worker's setup, which waits for the API like the CLI's does.
        interval = PREFECT_WORKER_QUERY_SECONDS.value()
        settings = get_current_settings().worker.webserver
        server = health_server(lambda: worker.is_worker_still_polling(interval),
                               settings.host, settings.port)
        threading.Thread(target=server.serve_forever, name="healthcheck-server-thread",
                         daemon=True).start()
    stop_on_signals(asyncio.current_task())
    try:
        await worker.start()
    except asyncio.CancelledError:
        print(f"Worker {worker.name!r} stopped!", flush=True)
    finally:
        if server is not None:
            server.shutdown()


def serve_flow_runs() -> None:
    """Serve flow runs started by prefect_flow_run.py (the pool's command) from this worker's
    event loop: each run is a fork of the worker, with Prefect's engine already imported.
    Set before the worker exists, so its flow-run processes inherit the address."""
    import os

    import prefect.engine  # noqa: F401  # what each run runs (its imports: the worker's)
    import prefect_flow_run  # uploaded beside us

    os.environ[prefect_flow_run.ADDRESS_ENV] = prefect_flow_run.serve_in(
        asyncio.get_running_loop())
    from prefect.logging import get_logger

    get_logger("worker").info(  # Python's fork warning (3.12) is shown nowhere: say it here
        "Flow runs are forked from this worker (Prefect already imported); a run starts as "
        "`python -m prefect.engine` instead while the worker is importing, and for good once "
        "it has loaded a flow's code (crashed or cancelled runs). Opt out: "
        "workers[].flowRunCommand: python -m prefect.engine")


def main(argv: list[str]) -> None:
    args = parse(argv)
    from prefect_lean import lazy_unidecode  # uploaded beside us

    lazy_unidecode()  # before anything imports Prefect
    asyncio.run(run(args))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
