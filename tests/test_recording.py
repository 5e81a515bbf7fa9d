"""Recording after a database outage, with the live Prefect's own code (no stack): the
task-run recorder's backlog (why every run after an outage showed zero task runs), the
settings the stack gives it, and the guard's progress watch (a process whose recording
stalled exits so its restart policy replaces it; idle or database down, it does not)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT, evaluate, stack_file

from components.dryrun import emitted_containers

LIVE_PYTHON = ROOT / ".live" / "prefect" / "bin" / "python"
GUARD = ROOT / "components" / "assets" / "prefect_guard.py"

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


def needs_live_prefect() -> None:
    if not LIVE_PYTHON.exists():
        pytest.skip("needs the live Prefect (./run-tests as root installs it)")


def new_task_runs_written(tmp_path: Path, env: dict[str, str], patience: float) -> dict:
    script = tmp_path / "backlog.py"
    script.write_text(BACKLOG)
    result = subprocess.run([str(LIVE_PYTHON), str(script), "30", str(patience)],
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ["PATH"], "PREFECT_HOME": str(tmp_path),
                                 **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def emitted_server_env() -> dict[str, str]:
    config, secrets = stack_file("Pulumi.prod.yaml")
    server = next(c for c in emitted_containers(evaluate(config, secrets))
                  if "prefect-server" in c.aliases)
    return {k: v for k, v in server.env.items() if k.startswith("PREFECT_SERVER_SERVICES_")}


def test_with_prefects_recorder_defaults_an_outage_backlog_holds_back_every_new_task_run(
        tmp_path):
    """Batch size 1: each new event writes the oldest one waiting, so the backlog only
    shrinks by one per flush interval (5 s); 30 events keep new ones waiting minutes."""
    needs_live_prefect()
    assert new_task_runs_written(tmp_path, {}, patience=8)["written"] == 0


def test_with_the_stacks_recorder_settings_new_task_runs_are_written_within_seconds(tmp_path):
    needs_live_prefect()
    found = new_task_runs_written(tmp_path, emitted_server_env(), patience=10)
    assert found["written"] == 3 and found["seconds"] < 3, found


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


@pytest.fixture
def database() -> Iterator[int]:
    """A port that accepts TCP connections, as a running PostgreSQL does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def guarded_recording(tmp_path: Path, mode: str, port: int) -> subprocess.Popen[str]:
    needs_live_prefect()
    script = tmp_path / "fake.py"
    script.write_text(FAKE_RECORDING.format(guard_dir=str(GUARD.parent), mode=mode))
    return subprocess.Popen(
        [str(LIVE_PYTHON), str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PREFECT_HOME": str(tmp_path),
                        "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json"),
                        "PREFECT_STACK_GUARD_STALL_SECONDS": "3",
                        "PREFECT_STACK_GUARD_GRACE_SECONDS": "1",
                        "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                            f"postgresql+asyncpg://prefect:x@127.0.0.1:{port}/prefect"})


def still_running_after(process: subprocess.Popen[str], seconds: float) -> tuple[bool, str]:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # the guard's dump of what every task awaits
        time.sleep(1)
        process.kill()
        return True, process.communicate()[1]
    return False, process.communicate()[1]


@pytest.mark.parametrize("mode, why", [
    ("unwritten", "__main__: 1 events not written"),
    ("wedged", "topic events: 1 messages waiting")])
def test_guard_exits_a_process_whose_recording_stalled_while_the_database_answers(
        tmp_path, database, mode, why):
    process = guarded_recording(tmp_path, mode, database)
    running, stderr = still_running_after(process, 60)
    assert not running and process.returncode == 72, stderr[-2000:]
    assert f"recording stalled: {why}" in stderr
    assert why in json.loads((tmp_path / "status.json").read_text())["stalled"][0]


def test_guard_leaves_an_idle_process_alone_and_dumps_what_its_tasks_await(tmp_path, database):
    process = guarded_recording(tmp_path, "idle", database)
    running, stderr = still_running_after(process, 10)
    assert running, stderr[-2000:]
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["dead"], status["stalled"]) == ([], [])
    assert "SIGUSR1:" in stderr and "registered_run" in stderr  # the consumer's await chain


def test_guard_does_not_restart_a_process_waiting_for_a_database_that_is_down(tmp_path):
    process = guarded_recording(tmp_path, "unwritten", closed_port())
    running, stderr = still_running_after(process, 12)
    assert running, stderr[-2000:]
    assert json.loads((tmp_path / "status.json").read_text())["stalled"] == []
