"""Prefect client calls for the HA and outage checks, run with the live Prefect (like
prefect_client.py) and the user's settings (PREFECT_API_URL, auth, CA). Prints one JSON
document.

    python ha_client.py runs POOL FLOW_DIR COUNT      flows/tasks.py COUNT times, one by one
    python ha_client.py start POOL FLOW_DIR N PAUSE   one long run, not waited for
    python ha_client.py flow-runs ID[,ID...]          their states
    python ha_client.py strand                        a run left PENDING with no process
    python ha_client.py submit POOL FLOW_DIR COUNT OUT   COUNT runs at once, ids to OUT
    python ha_client.py census OUT                    their states and task runs
    python ha_client.py events URL_A URL_B            emit through A, subscribe on B
    python ha_client.py schedule POOL FLOW_DIR EVERY WAIT   interval deployment; its runs
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.deployments import run_deployment

FLOW = "squares"
TASKS = 3


async def deploy(client: PrefectClient, pool: str, flow_dir: str, name: str,
                 schedules: list[DeploymentScheduleCreate] | None = None) -> UUID:
    flow_id = await client.create_flow_from_name(FLOW)
    return await client.create_deployment(
        flow_id=flow_id, name=name, work_pool_name=pool, entrypoint="tasks.py:squares",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": flow_dir}}],
        enforce_parameter_schema=False, schedules=schedules or [])


async def recorded(client: PrefectClient, run_id: UUID, tag: str, wait: float = 30) -> dict:
    """Task runs and the flow's log line, which arrive after COMPLETED (events and log
    batches): polled for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[run_id])))
        logs = await client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        completed = [t for t in tasks if t.state and t.state.type.value == "COMPLETED"]
        logged = any(f"sum of squares {tag}" in entry.message for entry in logs)
        if (len(completed) == TASKS and logged) or time.monotonic() > deadline:
            return {"task_runs": len(tasks), "completed_task_runs": len(completed),
                    "logged": logged}
        await asyncio.sleep(0.5)


async def runs(pool: str, flow_dir: str, count: str) -> list[dict]:
    """COUNT runs one after another: each one's final state, trigger->final seconds and
    what was recorded of it."""
    out = []
    async with get_client() as client:
        await deploy(client, pool, flow_dir, "ha")
        for i in range(int(count)):
            tag = uuid4().hex[:8]
            started = time.monotonic()
            run = await run_deployment(f"{FLOW}/ha", client=client,
                                       parameters={"n": TASKS, "tag": tag}, timeout=180,
                                       poll_interval=0.25, as_subflow=False)
            seconds = time.monotonic() - started
            out.append({"i": i, "id": str(run.id), "seconds": round(seconds, 2),
                        "state": run.state.type.value if run.state else None,
                        **await recorded(client, run.id, tag)})
    return out


async def start(pool: str, flow_dir: str, n: str, pause: str) -> dict:
    """Start one long run (N tasks, PAUSE s each) and return at once: traffic during an
    outage."""
    async with get_client() as client:
        deployment_id = await deploy(client, pool, flow_dir, "ha")
        run = await client.create_flow_run_from_deployment(
            deployment_id, parameters={"n": int(n), "tag": "long", "pause": float(pause)})
    return {"id": str(run.id)}


async def submit(pool: str, flow_dir: str, count: str, out: str) -> dict:
    """COUNT runs of the squares flow at once (each with its own tag); ids and tags to OUT."""
    async with get_client() as client:
        deployment_id = await deploy(client, pool, flow_dir, "soak")
        created = []
        for _ in range(int(count)):
            tag = uuid4().hex[:8]
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters={"n": TASKS, "tag": tag})
            created.append({"id": str(run.id), "tag": tag, "submitted": time.time()})
    Path(out).write_text(json.dumps(created))
    return {"submitted": len(created), "deployment": str(deployment_id)}


async def census(ids_file: str) -> dict:
    """Every run of the file: state, start/end times, completed task runs; plus how many runs
    the deployment has in all (lost or duplicated runs would show there)."""
    wanted = json.loads(Path(ids_file).read_text())
    ids = [UUID(r["id"]) for r in wanted]
    out: dict[str, dict] = {}
    async with get_client() as client:
        for i in range(0, len(ids), 100):
            chunk = ids[i:i + 100]
            for run in await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=100):
                out[str(run.id)] = {
                    "state": run.state.type.value if run.state else None,
                    "message": run.state.message if run.state else None,
                    "start": run.start_time.timestamp() if run.start_time else None,
                    "end": run.end_time.timestamp() if run.end_time else None,
                    "deployment": str(run.deployment_id), "tasks": 0}
            offset = 0
            while True:
                tasks = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)),
                    limit=200, offset=offset)
                for t in tasks:
                    if t.state and t.state.type.value == "COMPLETED" and str(t.flow_run_id) in out:
                        out[str(t.flow_run_id)]["tasks"] += 1
                if len(tasks) < 200:
                    break
                offset += 200
        deployments = {r["deployment"] for r in out.values()}
        total = 0
        for deployment in deployments:
            total += await client.count_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[UUID(deployment)])))
    return {"runs": out, "deployment_runs": total}


async def events(url_a: str, url_b: str) -> dict:
    """Subscribe on replica B, emit through replica A; what B delivered."""
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient, PrefectEventSubscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    marker = f"prefect-stack.ha.{uuid4().hex[:12]}"
    filt = EventFilter(event=EventNameFilter(name=[marker]))
    async with PrefectEventSubscriber(api_url=url_b, filter=filt) as subscriber:
        async with PrefectEventsClient(api_url=url_a) as emitter:
            await emitter.emit(Event(event=marker, resource={"prefect.resource.id": marker}))
        try:
            async with asyncio.timeout(30):
                async for event in subscriber:
                    if event.event == marker:
                        return {"received": event.event, "sent": marker}
        except TimeoutError:
            pass
    return {"received": None, "sent": marker}


async def schedule(pool: str, flow_dir: str, every: str, wait: str) -> dict:
    """An interval-scheduled deployment; after WAIT s, its runs' scheduled start times. The
    schedule starts in an hour, so the scheduler fills it but no worker runs anything yet."""
    anchor = datetime.now(UTC) + timedelta(hours=1)
    async with get_client() as client:
        deployment_id = await deploy(client, pool, flow_dir, f"every-{every}s", [
            DeploymentScheduleCreate(
                schedule=IntervalSchedule(interval=timedelta(seconds=float(every)),
                                          anchor_date=anchor),
                active=True)])
        await asyncio.sleep(float(wait))
        found = await client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment_id])), limit=200)
        await client.delete_deployment(deployment_id)
    return {"runs": len(found),
            "starts": sorted(str(r.expected_start_time) for r in found)}


async def strand() -> dict:
    """A run PENDING with no process behind it: what a worker leaves when its PENDING write
    committed but the answer was lost (outage, killed replica) and its retry was refused."""
    from prefect import flow
    from prefect.states import Pending

    @flow(name="stranded")
    def stranded() -> None:
        pass

    async with get_client() as client:
        run = await client.create_flow_run(stranded)
        await client.set_flow_run_state(run.id, Pending(), force=True)
    return {"id": str(run.id)}


async def flow_runs(ids: str) -> list[dict]:
    async with get_client() as client:
        found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[UUID(i) for i in ids.split(",")])))
    return [{"id": str(r.id), "state": r.state.type.value if r.state else None,
             "message": r.state.message if r.state else None} for r in found]


def main(argv: list[str]) -> None:
    command, *args = argv
    handler = {"runs": runs, "start": start, "events": events, "schedule": schedule,
               "flow-runs": flow_runs, "submit": submit, "census": census,
               "strand": strand}[command]
    print(json.dumps(asyncio.run(handler(*args))))


if __name__ == "__main__":
    main(sys.argv[1:])
