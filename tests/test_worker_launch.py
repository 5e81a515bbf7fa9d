"""The worker launcher (components/assets/prefect_worker.py): Prefect's worker class started
without the CLI, with the health check on the standard library's HTTP server. Its real run
(worker online, runs completed, health check passing) is tests/test_live.py's worker tests."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from loopback import serving, stop

from components import plan
from components.config import StackConfig
from components.worker_launch import WORKER_PATH, WORKER_SOURCE

spec = importlib.util.spec_from_file_location("prefect_worker", WORKER_SOURCE)
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)


def _get(port: int, path: str) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, json.loads(body) if err.code == 503 else None


def test_every_worker_container_runs_the_uploaded_launcher_with_the_cli_arguments():
    config = StackConfig.model_validate({"workers": [{"name": "etl", "replicas": 2}]})
    worker = plan.build_plan(config).service("worker-etl")
    assert worker.command[:2] == ("python", WORKER_PATH)
    assert launcher.parse(list(worker.command[2:])).pool == "etl"
    upload = next(u for u in worker.uploads if u.path == WORKER_PATH)
    assert upload.content == WORKER_SOURCE.read_text()


def test_health_answers_like_prefects_worker_health_server():
    healthy = [True]
    server = serving(launcher.health_server(lambda: healthy[0], "127.0.0.1", 0))
    port = server.server_address[1]
    try:
        assert _get(port, "/health") == (200, {"message": "OK"})
        healthy[0] = False
        assert _get(port, "/health") == (503, {"message": "Worker may be unresponsive at this time"})
        assert _get(port, "/other")[0] == 404
    finally:
        stop(server)


@pytest.mark.parametrize("argv", [
    ["prefect", "worker", "start", "--type", "process"],  # no pool
    ["prefect", "worker", "start", "--pool", "p", "--type", "process", "--limit", "3"],
    ["prefect", "server", "start", "--pool", "p", "--type", "process"],
])
def test_arguments_the_launcher_does_not_implement_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher.parse(argv)
    assert exit_info.value.code == 2
    assert "prefect_worker.py" in capsys.readouterr().err


# The launcher's stop, in a process of its own (it installs signal handlers): a task standing in
# for Prefect's worker, which Prefect 3.8.8's own SIGTERM handling never stopped.
STOPPABLE = """
import asyncio, importlib.util, sys
spec = importlib.util.spec_from_file_location("prefect_worker", {source!r})
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)

async def worker():
    launcher.stop_on_signals(asyncio.current_task())
    print("polling", flush=True)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        print("cancelled", flush=True)
        await asyncio.sleep({linger})  # the worker's own shutdown
        raise

try:
    asyncio.run(worker())
except asyncio.CancelledError:
    sys.exit(0)
"""


def start_stoppable(linger: float) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", STOPPABLE.format(
        source=str(WORKER_SOURCE), linger=linger)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "polling\n"
    return process


def test_sigterm_stops_the_worker_at_once():
    process = start_stoppable(linger=0)
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0 and "Received SIGTERM: stopping the worker" in out
    assert "cancelled" in out


def test_a_second_signal_during_shutdown_kills():
    process = start_stoppable(linger=30)
    process.send_signal(signal.SIGTERM)
    assert process.stdout.readline().startswith("Received SIGTERM")
    assert process.stdout.readline() == "cancelled\n"
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGTERM
