"""The benchmark's Prefect client (run with the live Prefect, through the stack's proxy with
its auth, like tests/live/prefect_client.py): deploy flows/hello.py to a pool, then trigger it
COUNT times one after another and time each run. Prints one JSON document.

    python trigger_client.py POOL FLOW_DIR COUNT

Each run is timed from the API call that creates the flow run (not the client's own start-up)
to the client seeing COMPLETED (it reads the run every 0.1 s), and split into phases from the
run's state history (server-side timestamps): SCHEDULED -> PENDING (the worker's poll and its
submission), PENDING -> RUNNING (the flow-run process: interpreter start, `import prefect`,
pull steps, loading the flow), RUNNING -> COMPLETED (the flow itself), and the rest (until
the client saw it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime

from prefect.client.orchestration import PrefectClient, get_client

FLOW = "hello"
DEPLOYMENT = "bench"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


async def deploy(client: PrefectClient, pool: str, flow_dir: str):
    flow_id = await client.create_flow_from_name(FLOW)
    return await client.create_deployment(
        flow_id=flow_id, name=DEPLOYMENT, work_pool_name=pool, entrypoint="hello.py:hello",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": flow_dir}}],
        enforce_parameter_schema=False)


async def one_run(client: PrefectClient, deployment_id, who: str) -> dict:
    wall = datetime.now().astimezone()
    started = time.monotonic()
    flow_run = await client.create_flow_run_from_deployment(deployment_id,
                                                            parameters={"name": who})
    created = time.monotonic() - started
    state = None
    while time.monotonic() - started < 120:
        state = (await client.read_flow_run(flow_run.id)).state
        if state is not None and state.type.value in FINAL:
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - started
    history = await client.read_flow_run_states(flow_run.id)
    first = {}
    for s in history:
        first.setdefault(s.type.value, (s.timestamp - wall).total_seconds())
    return {"state": state.type.value if state else None, "seconds": round(seconds, 3),
            "create_call": round(created, 3), "phases": first}


async def main(pool: str, flow_dir: str, count: str) -> dict:
    """A warm-up run (printed apart, not in the percentiles), then COUNT timed runs."""
    async with get_client() as client:
        deployment_id = await deploy(client, pool, flow_dir)
        warm_up = await one_run(client, deployment_id, "warm-up")
        runs = [await one_run(client, deployment_id, f"bench-{i}") for i in range(int(count))]
    return {"warm_up": warm_up, "runs": runs}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
