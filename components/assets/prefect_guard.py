"""prefect-stack guard: run a Prefect server or services command so that a process whose
background services stopped is seen (health check) and replaced (exit -> restart policy).

Why: a Prefect process can stop recording while it keeps answering /api/health: a
background service's task can end (Prefect 3.8.8's consume loops do not catch the
CancelledError a database driver may raise), or every task stays alive while recording
stalls (a consumer stuck in its handler, events held unwritten; after a PostgreSQL outage the
task-run recorder's backlog held back every new task run until a restart, see
components/outage.py server_env() for the settings that fix that one). So the guard watches the
services' tasks and progress (`Progress`), and exits the process once a service has been dead,
or recording stalled, for PREFECT_STACK_GUARD_GRACE_SECONDS: Docker does not restart an
unhealthy container, but the container's `restart: unless-stopped` starts a fresh one.
Uploaded into the container; needs only the Prefect in the image.

    python prefect_guard.py run prefect server start [--no-services]
    python prefect_guard.py run prefect server services start
    python prefect_guard.py check [http://localhost:4200/api/health]

The check is the container's health check, a fresh Python every 10 s in every guarded
container: it imports the standard library's small modules only (asyncio, threading and
urllib are imported where the guarded process or the HTTP probe uses them): 0.03 s of CPU per
check, not 0.1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

STATUS = Path(os.environ.get("PREFECT_STACK_GUARD_STATUS", "/tmp/prefect-stack-guard.json"))
GRACE = float(os.environ.get("PREFECT_STACK_GUARD_GRACE_SECONDS", "10"))
STALL = float(os.environ.get("PREFECT_STACK_GUARD_STALL_SECONDS", "60"))
# Waiting this long (beyond any flush interval): is the database there at all?
PROBE_AFTER = min(10.0, STALL / 2)
INTERVAL = 2.0
STALE = 30.0  # a status older than this: the event loop is stuck
EXIT_DEAD_SERVICE = 70
EXIT_STUCK_LOOP = 71
EXIT_STALLED = 72


def write_status(dead: list[str], running: list[str], stalled: list[str]) -> None:
    tmp = STATUS.with_suffix(".tmp")
    tmp.write_text(json.dumps({"time": time.time(), "dead": dead, "running": running,
                               "stalled": stalled}))
    tmp.replace(STATUS)


def log(message: str) -> None:
    print(f"prefect-stack guard: {message}", file=sys.stderr, flush=True)


HANDLERS: set = set()  # the message handlers consumers run now (in-memory or Redis broker)


class Progress:
    """Whether recording keeps up. Watched: each in-memory broker subscription (messages
    waiting that no consumer takes) and each consumer's own buffer (the event persister's and
    task-run recorder's queue of events not yet written). Either waiting longer than STALL s
    while the database answers means recording stopped or fell behind for good, with every
    service task still alive. Idle (nothing waiting) is never stalled; while the database is
    down waiting is expected, and the clock starts again once it answers."""

    def __init__(self) -> None:
        self.since: dict[int, float] = {}  # id(subscription) -> waiting, none taken, since
        self.database_down = 0.0  # monotonic time the database last did not answer

    @staticmethod
    def subscriptions() -> list[tuple[str, object]]:
        from prefect.server.utilities.messaging import memory

        return [(topic.name, sub) for topic in list(memory.Topic._topics.values())
                for sub in list(topic._subscriptions)]

    @staticmethod
    def buffers() -> list[tuple[str, asyncio.Queue]]:
        """The queues a handler closes over (its not-yet-written events)."""
        import asyncio

        out = []
        for handler in list(HANDLERS):
            for cell in handler.__closure__ or ():
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                if isinstance(value, asyncio.Queue):
                    out.append((handler.__module__.rsplit(".", 1)[-1], value))
        return out

    def waiting(self) -> dict[str, float]:
        """What has work waiting, and since when (monotonic)."""
        now, wall = time.monotonic(), time.time()
        out, since = {}, {}
        for topic, sub in self.subscriptions():
            count = sub._queue.qsize() + sub._retry.qsize()
            if count:
                since[id(sub)] = max(self.since.get(id(sub), now),
                                     getattr(sub, "prefect_stack_taken", 0.0))
                out[f"topic {topic}: {count} messages waiting"] = since[id(sub)]
        self.since = since
        for name, queue in self.buffers():
            received = [r.timestamp() for r in map(received_at, list(queue._queue)) if r]
            if received:
                out[f"{name}: {len(received)} events not written"] = now - (wall - min(received))
        return out

    async def stalled(self) -> list[str]:
        now = time.monotonic()
        waiting = self.waiting()
        if any(now - since >= PROBE_AFTER for since in waiting.values()) \
                and not await database_answers():
            self.database_down = time.monotonic()
            return []
        out = []
        for name, since in waiting.items():
            seconds = now - max(since, self.database_down)
            if seconds >= STALL:
                out.append(f"{name}, for {seconds:.0f}s")
        return sorted(out)


def received_at(item: object):
    """When the server received a buffered event (ReceivedEvent, or the recorder's wrapper)."""
    return getattr(getattr(item, "event", item), "received", None)


def track_consumption() -> None:
    """Stamp an in-memory subscription when a consumer takes a message from it, and register
    every consumer's handler while it runs (both brokers' Consumer.run)."""
    import importlib

    from prefect.server.utilities.messaging import memory

    get = memory.Subscription.get

    async def stamped_get(self):
        message = await get(self)
        self.prefect_stack_taken = time.monotonic()
        return message

    memory.Subscription.get = stamped_get
    for name in ("prefect.server.utilities.messaging.memory", "prefect_redis.messaging"):
        try:
            consumer = importlib.import_module(name).Consumer
        except ImportError:  # the image has no prefect-redis
            continue
        consumer.run = registering(consumer.run)


def registering(run):
    async def registered_run(self, handler, *args, **kwargs):
        HANDLERS.add(handler)
        try:
            return await run(self, handler, *args, **kwargs)
        finally:
            HANDLERS.discard(handler)

    return registered_run


async def database_answers() -> bool:
    """A TCP connect to the database server (none for SQLite): no pool, no credentials, so a
    wedged connection pool cannot hide behind it."""
    import asyncio

    from prefect.server.database import provide_database_interface
    from sqlalchemy.engine import make_url

    url = make_url(provide_database_interface().database_config.connection_url)
    if not url.host:
        return True
    try:
        async with asyncio.timeout(3):
            _, writer = await asyncio.open_connection(url.host, url.port or 5432)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def watch(tasks: dict) -> None:
    """Every INTERVAL s: write which services run and what stalled; exit once a service
    stayed dead, or recording stalled, for GRACE s."""
    import asyncio

    progress = Progress()
    bad_since: float | None = None
    while True:
        dead = sorted(service.name for service, task in tasks.items() if task.done())
        try:
            stalled = await progress.stalled()
        except Exception as err:  # a bug here must not silence the status (and so exit)
            log(f"progress watch failed: {err!r}")
            stalled = []
        write_status(dead, sorted(service.name for service in tasks), stalled)
        if not dead and not stalled:
            bad_since = None
        elif bad_since is None:
            bad_since = time.monotonic()
            for service, task in tasks.items():
                if task.done():
                    error = None if task.cancelled() else task.exception()
                    log(f"service {service.name} stopped ({error!r})")
            for line in stalled:
                log(f"recording stalled: {line}")
        elif time.monotonic() - bad_since >= GRACE:
            log(f"services dead {dead}, recording stalled {stalled} for {GRACE:.0f}s: "
                "exiting so the container restarts")
            os._exit(EXIT_DEAD_SERVICE if dead else EXIT_STALLED)
        await asyncio.sleep(INTERVAL)


def dump_tasks() -> None:
    """SIGUSR1: every asyncio task's await chain and what waits to be recorded, to stderr
    (the container log): what a wedged process awaits."""
    import asyncio

    tasks = asyncio.all_tasks()
    log(f"SIGUSR1: {len(tasks)} asyncio tasks")
    for topic, sub in Progress.subscriptions():
        log(f"topic {topic}: {sub._queue.qsize()} waiting, {sub._retry.qsize()} to retry")
    for name, queue in Progress.buffers():
        log(f"{name}: {queue.qsize()} events not written")
    for task in tasks:
        chain, awaited = [], task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is None:
                chain.append(repr(awaited)[:200])
                break
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        print(f"--- {task.get_name()}\n    " + "\n    ".join(chain), file=sys.stderr)
    sys.stderr.flush()


def install() -> None:
    """Replace Service.running (same start/stop as Prefect's) with one that is watched."""
    import asyncio
    import signal
    import threading
    from contextlib import asynccontextmanager

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
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        try:
            yield
        finally:
            watcher.cancel()
            if sweeper is not None:
                sweeper.cancel()
            STATUS.unlink(missing_ok=True)
            stopped = await asyncio.gather(*[service.stop() for service in tasks],
                                           return_exceptions=True)
            for task, result in zip(tasks.values(), stopped, strict=True):
                if isinstance(result, BaseException):
                    # Its stop() failed, so its start() runs on: ReactiveTriggers.stop()
                    # asserts its consumer exists, which start() creates only after loading
                    # the automations. A SIGTERM then would wait forever (Docker's SIGKILL).
                    task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    Service.running = classmethod(running)
    track_consumption()
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
        import urllib.request

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
    if status.get("stalled"):
        return f"recording stalled: {'; '.join(status['stalled'])}"
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
        from prefect_lean import lazy_unidecode, release_idle_vacuum_connection  # beside us

        lazy_unidecode()  # before anything imports Prefect
        install()
        release_idle_vacuum_connection()
        from prefect.cli import app

        sys.argv = argv[1:]  # Prefect's CLI reads its arguments from sys.argv
        app()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
