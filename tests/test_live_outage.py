"""A PostgreSQL outage on the prod stack, with a flow run sending task events all through it:
afterwards new flow runs are fully recorded with no manual step. First as emitted (the
task-run recorder's settings drain what piled up, nothing restarts); then with Prefect's own
recorder settings, where the backlog outlives the outage (the 3.8.8 failure: every later run
"has no task runs"), so the guard must see recording stall and have the server restarted.
One stack for the module; the stack is updated between the two."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from live.gate import live_stack
from live.ha import ha_client, outage, restarts, wait_recovered
from live.session import FLOW_DIR, Running, stack_config

pytestmark = [pytest.mark.live, pytest.mark.extended]  # two outages: minutes

OUTAGE_S = 30  # long enough for the task events of the outage to pile up in the recorder
PREFECT_RECORDER_DEFAULTS = {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "1",
                             "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "5"}
OVERRIDES = {"api": None, "monitoring": None}


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Iterator[Running]:
    yield from live_stack("prod", tmp_path_factory.mktemp("live-outage"), OVERRIDES)


def server(stack: Running) -> str:
    return stack.container("prefect-server").name


def busy_outage(stack: Running) -> str:
    """Start a run that sends task events several times a second, stop PostgreSQL while it
    does, bring it back; the run's id."""
    spanning = ha_client(stack, "start", stack.pool, FLOW_DIR, "150", "0.2")["id"]
    deadline = time.monotonic() + 120
    while ha_client(stack, "flow-runs", spanning)[0]["state"] != "RUNNING":
        assert time.monotonic() < deadline, "the spanning run never started"
        time.sleep(1)
    time.sleep(3)  # its tasks are under way
    outage(stack, "postgres", OUTAGE_S)
    return spanning


def assert_fully_recorded(stack: Running, count: int) -> None:
    runs = ha_client(stack, "runs", stack.pool, FLOW_DIR, str(count))
    assert [(r["state"], r["completed_task_runs"], r["logged"]) for r in runs] == \
        [("COMPLETED", 3, True)] * count, runs


def test_after_a_postgres_outage_new_runs_are_fully_recorded_with_no_restart(prod):
    busy_outage(prod)
    print(f"recovered in {wait_recovered(prod):.0f} s")
    assert_fully_recorded(prod, 3)
    assert restarts(prod).get(server(prod)) is None, restarts(prod)


def test_with_a_recorder_backlog_the_guard_restarts_the_server_and_later_runs_are_recorded(prod):
    config, _ = stack_config("prod")
    prod.update({**OVERRIDES, "server": {**config["server"], "env": PREFECT_RECORDER_DEFAULTS}})
    busy_outage(prod)
    name = server(prod)
    deadline = time.monotonic() + 180  # stall 60 s + grace 10 s + a start, with room
    while not restarts(prod).get(name):
        assert time.monotonic() < deadline, f"no restart:\n{prod.stack.processes[name].tail(40)}"
        time.sleep(2)
    print(f"server restarted; recovered in {wait_recovered(prod):.0f} s")
    log = prod.stack.processes[name].log.read_text(errors="replace")
    assert "recording stalled: task_run_recorder" in log, log[-3000:]
    assert_fully_recorded(prod, 2)
