"""Riding out an outage (components/outage.py): the client settings every Prefect client gets,
checked against Prefect's own settings parser, and the stuck-run sweeper run against a real
Prefect database (SQLite, the live Prefect venv)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from harness import ROOT, planned, stack_file
from live.gate import require_live_prefect

from components import outage, plan, scaleout
from components.config import StackConfig

ASSETS = ROOT / "components" / "assets"


def retry_window_s(retries: int, jitter: float = 0.2) -> float:
    """Shortest time a client keeps retrying: backoff 2**n s for n = 1..retries, each
    shortened by at most the jitter factor (client/base.py, clamped Poisson interval)."""
    return sum(2 ** n for n in range(1, retries + 1)) * (1 - jitter)


def test_every_prefect_client_container_retries_500s_through_a_minute_long_outage():
    config, secrets = stack_file("Pulumi.prod.yaml")
    clients = [s for s in planned(config, secrets).services if "PREFECT_API_URL" in s.env]
    assert {c.name for c in clients} >= {"api", "worker-prod-pool"}, clients  # each replica has its env
    for c in clients:
        assert c.env["PREFECT_CLIENT_RETRY_EXTRA_CODES"] == "500", c.name
        assert c.env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30", c.name
        # a 60 s outage, then up to 60 s until the guard's restart has the API ready again
        assert retry_window_s(int(c.env["PREFECT_CLIENT_MAX_RETRIES"])) >= 120, c.name
    assert retry_window_s(5) < 60  # Prefect's default gives up within a 60 s outage


@pytest.mark.live
def test_prefect_reads_the_client_settings_as_intended():
    script = ("import json; from prefect.settings import get_current_settings as s; c = s(); "
              "print(json.dumps([c.client.max_retries, sorted(c.client.retry_extra_codes), "
              "c.flows.heartbeat_frequency]))")
    out = subprocess.run([str(require_live_prefect()), "-c", script], capture_output=True, text=True,
                         check=True, env={"PATH": os.environ["PATH"], **outage.client_env()})
    assert json.loads(out.stdout) == [7, [500], 30]


def test_server_and_services_containers_carry_the_sweeper_and_server_env_overrides_it():
    built = plan.build_plan(StackConfig.model_validate({
        "database": {"kind": "postgres"}, "redis": {"enabled": True},
        "server": {"replicas": 2, "servicesReplicas": 2,
                   "env": {"PREFECT_STACK_SWEEP_PENDING_SECONDS": "120"}}}))
    for name in ("prefect-server", "prefect-services"):
        spec = built.service(name)
        (upload,) = [u for u in spec.uploads if u.path == outage.SWEEPER_PATH]
        assert upload.content == (ASSETS / "prefect_sweeper.py").read_text()
        assert upload.path.rsplit("/", 1)[0] == scaleout.GUARD_PATH.rsplit("/", 1)[0]
        assert spec.env["PREFECT_STACK_SWEEP_PENDING_SECONDS"] == "120", name
        assert spec.env["PREFECT_STACK_SWEEP_HEARTBEAT_SECONDS"] == "300", name
    single = plan.build_plan(StackConfig.model_validate({})).service("prefect-server")
    assert outage.SWEEPER_PATH in [u.path for u in single.uploads]


SWEEP = """
import asyncio, json, sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4
sys.path.insert(0, {assets!r})
import prefect_sweeper as sweeper
from prefect.server import models, schemas
from prefect.server.database import provide_database_interface
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.events.storage.database import write_events
from prefect.server.schemas import states

NOW = datetime.now(UTC)
OLD = NOW - timedelta(seconds=600)

async def events(*pairs):
    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as s:
        await write_events(s, [ReceivedEvent(occurred=at, event=name, id=uuid4(),
                                             resource={{"prefect.resource.id": resource}})
                               for name, resource, at in pairs])

async def main():
    db = provide_database_interface()
    await db.create_db()
    async with db.session_context(begin_transaction=True) as s:
        flow = await models.flows.create_flow(s, schemas.core.Flow(name="f"))
        runs = {{}}
        for name, state in [("stuck_pending", states.Pending(timestamp=OLD)),
                            ("fresh_pending", states.Pending()),
                            ("dead_running", states.Running(timestamp=OLD)),
                            ("live_running", states.Running(timestamp=OLD)),
                            ("silent_running", states.Running(timestamp=OLD)),
                            ("old_completed", states.Completed(timestamp=OLD))]:
            run = await models.flow_runs.create_flow_run(
                s, schemas.core.FlowRun(flow_id=flow.id, state=state))
            runs[name] = run.id
    beat = "prefect.flow-run.heartbeat"
    await events((beat, f"prefect.flow-run.{{runs['dead_running']}}", OLD),
                 (beat, f"prefect.flow-run.{{runs['live_running']}}", OLD),
                 (beat, f"prefect.flow-run.{{runs['live_running']}}", NOW - timedelta(seconds=20)))
    names = {{v: k for k, v in runs.items()}}
    out = {{}}
    # just back from an outage: nothing is judged yet
    out["after_outage"] = [names[r] for r in await sweeper.sweep(seen_db_for=60)]
    # event recording silent (no tick recorded lately): heartbeats are not judged
    await events((sweeper.TICK, "t", NOW - timedelta(seconds=600)))
    out["recording_silent"] = [names[r] for r in await sweeper.sweep(seen_db_for=3600)]
    await events((sweeper.TICK, "t", NOW - timedelta(seconds=5)))
    out["recording_works"] = [names[r] for r in await sweeper.sweep(seen_db_for=3600)]
    # judged in a state it has left since: left alone
    out["moved_on"] = await sweeper.crash(runs["fresh_pending"], uuid4(), "test")
    async with db.session_context() as s:
        out["states"] = {{name: (await models.flow_runs.read_flow_run(s, i)).state.type.value
                         for name, i in runs.items()}}
        crashed = await models.flow_runs.read_flow_run(s, runs["stuck_pending"])
        out["message"] = crashed.state.message
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.live
def test_sweeper_crashes_runs_stuck_pending_or_silent_running_and_nothing_else(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP.format(assets=str(ASSETS)))
    env = {"PATH": os.environ["PATH"], "PREFECT_HOME": str(tmp_path),
           "PREFECT_SERVER_DATABASE_CONNECTION_URL":
               f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
           **outage.sweeper_env()}
    result = subprocess.run([str(require_live_prefect()), str(script)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["after_outage"] == []
    assert out["recording_silent"] == ["stuck_pending"]
    assert out["recording_works"] == ["dead_running"]
    assert out["moved_on"] is False
    assert out["states"] == {"stuck_pending": "CRASHED", "fresh_pending": "PENDING",
                             "dead_running": "CRASHED", "live_running": "RUNNING",
                             "silent_running": "RUNNING", "old_completed": "COMPLETED"}
    assert "PENDING for over 300s" in out["message"]
    assert "marked CRASHED" in result.stderr


GUARDED = """
import asyncio, sys
sys.argv = ["guard"]
sys.path.insert(0, {assets!r})
import prefect_guard
prefect_guard.install()
from prefect.server.services.base import RunInWebservers, Service

Service.enabled_services = classmethod(lambda cls: [])
async def main():
    async with RunInWebservers.running():  # an API replica's webserver-only set
        await asyncio.sleep(2)
    print("webserver-only set stopped", file=sys.stderr, flush=True)
    async with Service.running():  # the services process
        await asyncio.sleep(2)
asyncio.run(main())
"""


@pytest.mark.live
def test_the_guard_runs_the_sweeper_with_all_services_only_and_it_outlives_a_dead_database(
        tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text(GUARDED.format(assets=str(ASSETS)))
    env = {"PATH": os.environ["PATH"], "PREFECT_HOME": str(tmp_path),
           "PREFECT_STACK_GUARD_STATUS": str(tmp_path / "status.json"),
           "PREFECT_SERVER_DATABASE_CONNECTION_URL":  # nothing listens there: an outage
               "postgresql+asyncpg://prefect:x@127.0.0.1:9/prefect",
           **outage.sweeper_env(), "PREFECT_STACK_SWEEP_INTERVAL_SECONDS": "0.3"}
    result = subprocess.run([str(require_live_prefect()), str(script)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    before, _, after = result.stderr.partition("webserver-only set stopped")
    assert "prefect-stack sweeper" not in before
    assert after.count("prefect-stack sweeper: sweep failed") >= 2, result.stderr[-3000:]
