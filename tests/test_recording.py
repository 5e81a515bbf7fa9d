"""Recording after a database outage, with the live Prefect's own code (no stack): the
task-run recorder's backlog (why every run after an outage showed zero task runs), the
settings the stack gives it, and the guard's progress watch (a process whose recording
stalled exits so its restart policy replaces it; idle or database down, it does not)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import ROOT, evaluate, stack_file
from live.gate import require_live_prefect

from components.dryrun import emitted_containers

GUARD = ROOT / "components" / "assets" / "prefect_guard.py"
# Prefect's own recorder and services run here, as processes with real timers.
pytestmark = pytest.mark.live

# A recorder that piled up OUTAGE_EVENTS task events while the database was down (its writes
# fail), then the database is back and one run's three task events arrive: are they written?
BACKLOG = """
import asyncio, json, os, sys, time
from datetime import datetime, timezone
from types import SimpleNamespace
from uuid import uuid4
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.services import task_run_recorder as recorder
from prefect.settings import get_current_settings

database = {"up": False, "written": set()}

async def record(events):
    if not database["up"]:
        raise OSError("database down")
    database["written"].update(e.id for e in events)

recorder.record_bulk_task_run_events = record

def task_event():
    event = ReceivedEvent(event="prefect.task-run.Completed", occurred=datetime.now(timezone.utc),
                          id=uuid4(), resource={"prefect.resource.id": f"prefect.task-run.{uuid4()}",
                                                "prefect.orchestration": "client"})
    return SimpleNamespace(data=event.model_dump_json(), attributes={}), event.id

async def main(outage_events, patience):
    settings = get_current_settings().server.services.task_run_recorder
    async with recorder.consumer(write_batch_size=settings.batch_size,
                                 flush_every=int(settings.flush_interval)) as handler:
        for _ in range(outage_events):
            await handler(task_event()[0])
        database["up"] = True
        new = set()
        for _ in range(3):
            message, event_id = task_event()
            new.add(event_id)
            await handler(message)
        started = time.monotonic()
        while not new <= database["written"] and time.monotonic() - started < patience:
            await asyncio.sleep(0.1)
        print(json.dumps({"written": len(new & database["written"]),
                          "seconds": time.monotonic() - started}), flush=True)
        os._exit(0)  # not the final flush of the whole backlog

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
"""


def start_backlog(tmp_path: Path, env: dict[str, str], patience: float
                  ) -> subprocess.Popen[str]:
    script = tmp_path / "backlog.py"
    script.write_text(BACKLOG)
    return subprocess.Popen([str(require_live_prefect()), str(script), "30", str(patience)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": os.environ["PATH"], "PREFECT_HOME": str(tmp_path),
                                 **env})


def emitted_server_env() -> dict[str, str]:
    config, secrets = stack_file("Pulumi.prod.yaml")
    server = next(c for c in emitted_containers(evaluate(config, secrets))
                  if "prefect-server" in c.aliases)
    return {k: v for k, v in server.env.items() if k.startswith("PREFECT_SERVER_SERVICES_")}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, dict]:
    """New task runs written after the backlog: with Prefect's defaults and with the stack's
    settings (both processes at once, to keep the unit suite short)."""
    require_live_prefect()
    processes = {"prefect": start_backlog(tmp_path_factory.mktemp("defaults"), {}, 8),
                 "stack": start_backlog(tmp_path_factory.mktemp("stack"), emitted_server_env(),
                                        10)}
    out = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-2000:]
        out[name] = json.loads(stdout.splitlines()[-1])
    return out


def test_with_prefects_recorder_defaults_an_outage_backlog_holds_back_every_new_task_run(
        written):
    """Batch size 1: each new event writes the oldest one waiting, so the backlog only
    shrinks by one per flush interval (5 s); 30 events keep new ones waiting minutes."""
    assert written["prefect"]["written"] == 0


def test_with_the_stacks_recorder_settings_new_task_runs_are_written_within_seconds(written):
    assert written["stack"]["written"] == 3 and written["stack"]["seconds"] < 3, written


# --- the guard's progress watch ------------------------------------------------------------

FAKE_RECORDING = """
import asyncio, sys
from datetime import datetime, timezone
from types import SimpleNamespace
sys.argv = ["guard"]
sys.path.insert(0, {guard_dir!r})
import prefect_guard
prefect_guard.install()
from prefect.server.services.base import Service
from prefect.server.utilities.messaging.memory import Consumer, MemoryMessage, Topic

MODE = {mode!r}

class Recorder(Service):
    @classmethod
    def service_settings(cls): raise NotImplementedError
    async def start(self):
        queue = asyncio.Queue()  # what a handler has not written yet
        if MODE == "unwritten":
            queue.put_nowait(SimpleNamespace(received=datetime.now(timezone.utc)))
        async def handler(message):
            if MODE == "wedged":
                await asyncio.Event().wait()  # a consumer alive but stuck
            await queue.put(message)
        consumer = Consumer("events")
        if MODE == "wedged":
            for _ in range(3):  # two taken by its two consume loops, one left waiting
                await Topic.by_name("events").publish(MemoryMessage(b"{{}}", {{}}))
        await consumer.run(handler)
    async def stop(self): pass

Service.enabled_services = classmethod(lambda cls: [Recorder])
async def main():
    async with Service.running():
        await asyncio.sleep(120)
asyncio.run(main())
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def guarded_recording(tmp_path: Path, mode: str, port: int | str) -> subprocess.Popen[str]:
    script = tmp_path / "fake.py"
    script.write_text(FAKE_RECORDING.format(guard_dir=str(GUARD.parent), mode=mode))
    return subprocess.Popen(
        [str(require_live_prefect()), str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PREFECT_HOME": str(tmp_path),
                        "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json"),
                        "PREFECT_STACK_GUARD_STALL_SECONDS": "3",
                        "PREFECT_STACK_GUARD_GRACE_SECONDS": "1",
                        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                            f"postgresql+asyncpg://prefect:x@127.0.0.1:{port}/prefect"})


@dataclass
class Outcome:
    running: bool  # still running at the end of the window (then dumped and killed)
    returncode: int | None
    stderr: str
    status: dict


WINDOW_S = 12  # after the guard's first status: stall 3 s + grace 1 s, with room


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[dict[str, Outcome]]:
    """Each scenario's guarded process, all started at once (to keep the unit suite short),
    each watched for WINDOW_S once its guard runs: the database a port that accepts
    connections (as a running PostgreSQL does), or one closed."""
    require_live_prefect()
    with socket.socket() as database:
        database.bind(("127.0.0.1", 0))
        database.listen(16)
        up, down = database.getsockname()[1], closed_port()
        scenarios = {"unwritten": ("unwritten", up), "wedged": ("wedged", up),
                     "idle": ("idle", up), "database down": ("unwritten", down),
                     "watch fails": ("unwritten", "no-port")}
        dirs = {name: tmp_path_factory.mktemp(mode) for name, (mode, _) in scenarios.items()}
        processes = {name: guarded_recording(dirs[name], mode, port)
                     for name, (mode, port) in scenarios.items()}
        watched: dict[str, float] = {}  # since when each guard writes its status

        def done(name: str) -> bool:
            return processes[name].poll() is not None or \
                time.monotonic() - watched.get(name, time.monotonic()) >= WINDOW_S

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(map(done, processes)):
            for name in processes:
                if name not in watched and (dirs[name] / "status.json").exists():
                    watched[name] = time.monotonic()
            time.sleep(0.5)
        out = {}
        for name, process in processes.items():
            running = process.poll() is None
            early = ""
            if running:
                process.send_signal(signal.SIGUSR1)  # the guard's dump of what tasks await
                early = read_dump(process, timeout=15)
                process.kill()
            stderr = early + process.communicate()[1]
            status_file = dirs[name] / "status.json"
            status = json.loads(status_file.read_text()) if status_file.exists() else {}
            out[name] = Outcome(running, None if running else process.returncode, stderr, status)
        yield out


def read_dump(process: subprocess.Popen[str], timeout: float) -> str:
    """What the process writes to stderr until its SIGUSR1 dump has started and then gone
    quiet for half a second (or `timeout`): a busy machine may take seconds to deliver the
    signal's output, so no fixed sleep."""
    fd, text = process.stderr.fileno(), b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            if b"SIGUSR1:" in text:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        text += chunk
    return text.decode(errors="replace")


@pytest.mark.parametrize("mode, why", [
    ("unwritten", "__main__: 1 events not written"),
    ("wedged", "topic events: 1 messages waiting")])
def test_guard_exits_a_process_whose_recording_stalled_while_the_database_answers(
        guarded, mode, why):
    outcome = guarded[mode]
    assert not outcome.running and outcome.returncode == 72, outcome.stderr[-2000:]
    assert f"recording stalled: {why}" in outcome.stderr
    assert why in outcome.status["stalled"][0]


def test_guard_leaves_an_idle_process_alone_and_dumps_what_its_tasks_await(guarded):
    outcome = guarded["idle"]
    assert outcome.running, outcome.stderr[-2000:]
    assert (outcome.status["dead"], outcome.status["stalled"]) == ([], [])
    assert "SIGUSR1:" in outcome.stderr and "registered_run" in outcome.stderr  # await chain


def test_guard_does_not_restart_a_process_waiting_for_a_database_that_is_down(guarded):
    outcome = guarded["database down"]
    assert outcome.running, outcome.stderr[-2000:]
    assert outcome.status["stalled"] == []


def test_a_failing_progress_watch_is_logged_and_restarts_nothing(guarded):
    """A bug in the watch (here: a database URL it cannot parse) must not stop the status
    (the stuck-loop exit would then restart the container over and over)."""
    outcome = guarded["watch fails"]
    assert outcome.running, outcome.stderr[-2000:]
    assert "progress watch failed" in outcome.stderr and outcome.status["stalled"] == []
