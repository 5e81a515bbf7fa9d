"""The worker launcher (components/assets/prefect_worker.py): Prefect's worker class started
without the CLI, with the health check on the standard library's HTTP server. Its real run
(worker online, runs completed, health check passing) is tests/test_live.py's worker tests."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.error
import urllib.request

import pytest

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
    server = launcher.health_server(lambda: healthy[0], "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert _get(port, "/health") == (200, {"message": "OK"})
        healthy[0] = False
        assert _get(port, "/health") == (503, {"message": "Worker may be unresponsive at this time"})
        assert _get(port, "/other")[0] == 404
    finally:
        server.shutdown()


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
