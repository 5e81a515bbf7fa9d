"""SQLite backups run for real: the dev stack's Prefect server and its backup container only
(the rest of the dev stack is tested in test_live.py). A flow run is recorded, dumped through
SQLite's online backup API while the server runs, the database file is deleted, restored
with the documented command, and the server serves the run again."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from live.gate import live_missing, require
from live.runner import LiveStack
from live.session import emitted

from components.backups import SCRIPT_PATH

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LiveStack]:
    require(live_missing(), "the SQLite backup live test")
    containers = [c for c in emitted("dev", {"backups": {"enabled": True}})
                  if {"prefect-server", "backup"} & set(c.aliases)]
    live = LiveStack(containers, tmp_path_factory.mktemp("live-sqlite-backup"))
    try:
        live.start()
        yield live
    finally:
        live.stop()
    assert live.left_behind == [], "teardown must stop every process by PID"


def api(stack: LiveStack, path: str, body: dict | None = None) -> dict:
    """The server's API on its published port (dev: 127.0.0.1:4200)."""
    server = next(c for c in stack.containers if "prefect-server" in c.aliases)
    port = server.ports[0][1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/prefect/api{path}",
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def test_dump_wipe_restore_brings_back_the_run_history(stack):
    flow = api(stack, "/flows/", {"name": "sqlite-backup"})
    run = api(stack, "/flow_runs/", {"flow_id": flow["id"], "name": "remember-me"})
    server, backup = (next(n for n, p in stack.processes.items() if alias in p.container.aliases)
                      for alias in ("prefect-server", "backup"))

    dumped = stack.processes[backup].exec(["sh", SCRIPT_PATH, "now"], timeout=60)
    assert dumped.returncode == 0, dumped.stdout + dumped.stderr

    stack.processes[server].stop()  # README: stop the server, restore, start it
    data = next(m.source for m in stack.processes[server].container.mounts
                if m.target == "/var/lib/prefect")
    for path in stack.volume(data).glob("prefect.db*"):
        path.unlink()  # the disaster
    restored = stack.processes[backup].exec(["sh", SCRIPT_PATH, "restore", "prefect"], timeout=60)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    stack.restart(server)

    assert api(stack, f"/flow_runs/{run['id']}")["name"] == "remember-me"
    assert api(stack, "/flows/", {"name": "after-restore"})["name"] == "after-restore"
