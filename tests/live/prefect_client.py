"""A Prefect user's client, run with the live Prefect (not the project's venv): it talks to the
stack only through the proxy, with the settings a user would export (PREFECT_API_URL,
PREFECT_API_AUTH_STRING, PREFECT_API_SSL_CERT_FILE). Prints one JSON document.

    python prefect_client.py pool POOL
    python prefect_client.py run POOL FLOW_DIR NAME
    python prefect_client.py runs POOL FLOW_DIR COUNT
    python prefect_client.py flow-run ID
    python prefect_client.py cancel POOL FLOW_DIR
    python prefect_client.py beside POOL FLOW_DIR
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from uuid import UUID

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.states import Cancelling

FLOW = "hello"
DEPLOYMENT = "live"


async def pool(name: str) -> dict:
    async with get_client() as client:
        work_pool = await client.read_work_pool(name)
        workers = await client.read_workers_for_work_pool(name)
    return {"name": work_pool.name, "type": work_pool.type,
            "concurrency_limit": work_pool.concurrency_limit,
            "workers": [{"name": w.name, "status": str(w.status.value if w.status else None)}
                        for w in workers]}


async def run(pool_name: str, flow_dir: str, who: str) -> dict:
    """Deploy flows/hello.py to the pool, run it, and return its final state and logs."""
    async with get_client() as client:
        await deploy(client, pool_name, flow_dir)
        return await run_once(client, who)


async def runs(pool_name: str, flow_dir: str, count: str) -> list[dict]:
    """`count` runs one after another: trigger->COMPLETED seconds for the benchmark."""
    async with get_client() as client:
        await deploy(client, pool_name, flow_dir)
        return [await run_once(client, f"bench-{i}") for i in range(int(count))]


async def deploy(client: PrefectClient, pool_name: str, flow_dir: str) -> None:
    flow_id = await client.create_flow_from_name(FLOW)
    await client.create_deployment(
        flow_id=flow_id, name=DEPLOYMENT, work_pool_name=pool_name, entrypoint="hello.py:hello",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": flow_dir}}],
        enforce_parameter_schema=False)


async def run_once(client: PrefectClient, who: str) -> dict:
    started = time.monotonic()
    flow_run = await run_deployment(f"{FLOW}/{DEPLOYMENT}", client=client, parameters={"name": who},
                                    timeout=120, poll_interval=0.25, as_subflow=False)
    seconds = time.monotonic() - started
    logs: list[str] = []
    for _ in range(40):  # the run's logs are shipped in batches: allow a moment after COMPLETED
        found = await client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        logs = [entry.message for entry in found]
        if any(f"hello, {who}" in m for m in logs):
            break
        await asyncio.sleep(0.25)
    return {"id": str(flow_run.id), "state": flow_run.state.type.value if flow_run.state else None,
            "seconds": round(seconds, 2), "logs": logs}


async def cancel(pool_name: str, flow_dir: str) -> dict:
    """Start a run of flows/tasks.py that sleeps 120 s in its task, cancel it once RUNNING (as
    the UI's Cancel does: state CANCELLING), and wait for its final state."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("squares")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="cancel", work_pool_name=pool_name,
            entrypoint="tasks.py:squares", enforce_parameter_schema=False,
            pull_steps=[{"prefect.deployments.steps.set_working_directory":
                         {"directory": flow_dir}}])
        run = await client.create_flow_run_from_deployment(
            deployment_id, parameters={"n": 1, "tag": "cancelled", "pause": 120})
        deadline = time.monotonic() + 120
        while (state := (await client.read_flow_run(run.id)).state.type.value) != "RUNNING" \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        await asyncio.sleep(1)  # inside its task's sleep
        cancelled = time.monotonic()
        await client.set_flow_run_state(run.id, Cancelling(), force=True)
        while (state := (await client.read_flow_run(run.id)).state.type.value) in \
                {"RUNNING", "CANCELLING"} and time.monotonic() - cancelled < 90:
            await asyncio.sleep(0.25)
    return {"id": str(run.id), "state": state,
            "seconds": round(time.monotonic() - cancelled, 2)}


async def beside(pool_name: str, flow_dir: str) -> dict:
    """Run flows/scratch.py in the worker's per-run temporary directories: long runs until
    every online worker has one, then a short run beside them; the final states, and whether
    a long run of the short run's worker was still RUNNING when the short one ended."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("scratch")
        deployment_id = await client.create_deployment(  # a no-op pull step: no storage copy
            flow_id=flow_id, name="beside", work_pool_name=pool_name,
            entrypoint=f"{flow_dir}/scratch.py:scratch", enforce_parameter_schema=False,
            pull_steps=[{"prefect.deployments.steps.run_shell_script": {"script": "true"}}])
        online = {w.name for w in await client.read_workers_for_work_pool(pool_name)
                  if w.status and w.status.value == "ONLINE"}

        async def state(run_id: UUID) -> str:
            return (await client.read_flow_run(run_id)).state.type.value

        async def final(run_id: UUID) -> str:
            while (now := await state(run_id)) not in {"COMPLETED", "FAILED", "CRASHED",
                                                        "CANCELLED"}:
                await asyncio.sleep(0.25)
            return now

        async def started(pause: float) -> tuple[UUID, str]:
            """A run, once RUNNING, and the worker that took it (from its log)."""
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters={"pause": pause})
            while await state(run.id) in {"SCHEDULED", "PENDING"}:
                await asyncio.sleep(0.25)
            return run.id, await taken_by(client, run.id)

        longs: dict[UUID, str] = {}
        while set(longs.values()) < online and len(longs) < 6:
            run_id, worker = await started(pause=15)
            longs[run_id] = worker
        short_id, short_worker = await started(pause=0)
        short_state = await asyncio.wait_for(final(short_id), 60)
        beside_running = [await state(run_id) == "RUNNING"
                          for run_id, worker in longs.items() if worker == short_worker]
        long_states = [await asyncio.wait_for(final(run_id), 60) for run_id in longs]
        logs = await client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=list(longs))))
    return {"short": short_state, "long": long_states, "long_running": any(beside_running),
            "logs": [entry.message for entry in logs]}


async def taken_by(client: PrefectClient, run_id: UUID) -> str:
    """The worker that took a flow run, from the run's log."""
    for _ in range(80):
        for entry in await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[run_id]))):
            taken = re.match(r"Worker '(.+)' submitting flow run", entry.message)
            if taken:
                return taken.group(1)
        await asyncio.sleep(0.25)
    raise RuntimeError(f"no worker's submission logged for flow run {run_id}")


async def flow_run(run_id: str) -> dict:
    async with get_client() as client:
        found = await client.read_flow_run(UUID(run_id))
    return {"id": run_id, "state": found.state.type.value if found.state else None}


def main(argv: list[str]) -> None:
    command, *args = argv
    handler = {"pool": pool, "run": run, "runs": runs, "flow-run": flow_run,
               "cancel": cancel, "beside": beside}[command]
    print(json.dumps(asyncio.run(handler(*args))))


if __name__ == "__main__":
    main(sys.argv[1:])
