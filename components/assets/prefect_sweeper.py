"""prefect-stack sweeper: mark flow runs whose process is gone CRASHED, so they stop holding
work-pool and deployment concurrency slots. Started by prefect_guard.py beside Prefect's own
background services (the server process, or each `prefect server services start`).

Why: a worker moves a run to PENDING before it starts the flow-run process, and only that
process moves it on. When the PENDING write committed but its answer was lost (a PostgreSQL
outage, an API replica killed mid-request), the worker's retry is refused ("cannot transition
to a PENDING state") and it abandons the run; when the process dies after RUNNING and the
worker cannot report the crash, the run stays RUNNING. Prefect 3.8.8 has no service for
either (late_runs only handles SCHEDULED), and pool concurrency counts PENDING and RUNNING
runs, so a few such runs stall a pool for good. Prefect's documented zombie automation judges
heartbeats on the live event stream, the very thing an outage interrupts; this sweeper reads
the database and judges only after it has seen the database for a whole threshold:

- PENDING for longer than PREFECT_STACK_SWEEP_PENDING_SECONDS -> CRASHED;
- RUNNING, with at least one `prefect.flow-run.heartbeat` event and none for
  PREFECT_STACK_SWEEP_HEARTBEAT_SECONDS -> CRASHED (runs from clients that send no
  heartbeats are never judged). Only while event recording works: every pass emits a tick
  event through Prefect's messaging, and heartbeats are judged only when a tick at most
  3 passes old is in the events table.

Transitions go through Prefect's CoreFlowPolicy (concurrency slots and leases are released as
for any crash), after re-reading the run under a row lock: a run that moved on in between is
left alone. 0 disables a check.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

PENDING_SECONDS = float(os.environ.get("PREFECT_STACK_SWEEP_PENDING_SECONDS", "300"))
HEARTBEAT_SECONDS = float(os.environ.get("PREFECT_STACK_SWEEP_HEARTBEAT_SECONDS", "300"))
INTERVAL = float(os.environ.get("PREFECT_STACK_SWEEP_INTERVAL_SECONDS", "30"))
HEARTBEAT = "prefect.flow-run.heartbeat"
TICK = "prefect-stack.sweeper.tick"
BATCH = 200


def log(message: str) -> None:
    print(f"prefect-stack sweeper: {message}", file=sys.stderr, flush=True)


def trusted(seen_db_for: float, threshold: float) -> bool:
    """A threshold is judged only after the database was reachable for all of it: heartbeats
    and state writes of an outage arrive late (or never), which must not read as death."""
    return threshold > 0 and seen_db_for >= threshold


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def emit_tick() -> None:
    """An event through Prefect's own messaging: once it is in the events table, heartbeats
    sent at the same time would be too. A recording pipeline that stopped (the persister
    died or is wedged) must not make every running flow look dead."""
    from uuid import uuid4

    from prefect.server.events.clients import PrefectServerEventsClient
    from prefect.server.events.schemas.events import Event

    async with PrefectServerEventsClient() as client:
        await client.emit(Event(occurred=datetime.now(UTC), event=TICK, id=uuid4(),
                                resource={"prefect.resource.id": f"{TICK}.{os.getpid()}"}))


async def stuck_runs(now: datetime, seen_db_for: float) -> list[tuple[UUID, UUID, str]]:
    """(run id, state id it was judged in, why) for every run to crash."""
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.schemas.states import StateType

    db = provide_database_interface()
    run, event = db.FlowRun, db.Event
    out: list[tuple[UUID, UUID, str]] = []
    async with db.session_context() as session:
        if trusted(seen_db_for, PENDING_SECONDS):
            rows = await session.execute(sa.select(run.id, run.state_id).where(
                run.state_type == StateType.PENDING,
                run.state_timestamp < now - timedelta(seconds=PENDING_SECONDS)).limit(BATCH))
            out += [(r.id, r.state_id, f"PENDING for over {PENDING_SECONDS:.0f}s: its flow-run "
                     "process never started or was lost") for r in rows]
        recorded = await session.scalar(sa.select(sa.func.max(event.occurred))
                                        .where(event.event == TICK))
        if not trusted(seen_db_for, HEARTBEAT_SECONDS) or recorded is None or \
                aware(recorded) < now - timedelta(seconds=3 * INTERVAL):
            return out
        cutoff = now - timedelta(seconds=HEARTBEAT_SECONDS)
        rows = (await session.execute(sa.select(run.id, run.state_id).where(
            run.state_type == StateType.RUNNING, run.state_timestamp < cutoff).limit(BATCH))).all()
        judged = {f"prefect.flow-run.{r.id}": (r.id, r.state_id) for r in rows}
        if judged:
            beats = await session.execute(
                sa.select(event.resource_id, sa.func.max(event.occurred))
                .where(event.event == HEARTBEAT, event.resource_id.in_(list(judged)))
                .group_by(event.resource_id))
            out += [(*judged[resource], f"no heartbeat for over {HEARTBEAT_SECONDS:.0f}s (last "
                     f"{aware(last):%H:%M:%S} UTC): its flow-run process is gone")
                    for resource, last in beats if aware(last) < cutoff]
    return out


async def crash(run_id: UUID, state_id: UUID, why: str) -> bool:
    """CRASHED through Prefect's orchestration, if the run is still in the state judged."""
    from prefect.server import models
    from prefect.server.database import provide_database_interface
    from prefect.server.orchestration.core_policy import CoreFlowPolicy
    from prefect.server.schemas.states import Crashed

    db = provide_database_interface()
    async with db.session_context(begin_transaction=True, with_for_update=True) as session:
        run = await models.flow_runs.read_flow_run(session, run_id, for_update=True)
        if run is None or run.state_id != state_id:
            return False
        result = await models.flow_runs.set_flow_run_state(
            session, run_id, Crashed(message=f"prefect-stack sweeper: {why}"),
            flow_policy=CoreFlowPolicy)
    return result.status.value == "ACCEPT"


async def sweep(seen_db_for: float) -> list[UUID]:
    """One pass: emit the tick, then crash the stuck runs; returns the runs crashed."""
    await emit_tick()
    crashed = []
    for run_id, state_id, why in await stuck_runs(datetime.now(UTC), seen_db_for):
        if await crash(run_id, state_id, why):
            log(f"flow run {run_id} marked CRASHED: {why}")
            crashed.append(run_id)
    return crashed


async def sweep_forever() -> None:
    """Every INTERVAL s, for the life of the services; a database error only restarts the
    clock that `trusted` reads."""
    if PENDING_SECONDS <= 0 and HEARTBEAT_SECONDS <= 0:
        return
    db_since = time.monotonic()
    while True:
        await asyncio.sleep(INTERVAL)
        try:
            await sweep(time.monotonic() - db_since)
            continue
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the services are stopping
            error: BaseException = asyncio.CancelledError("database connection lost")
        except Exception as exc:  # the database or messaging may be gone for a while
            error = exc
        log(f"sweep failed ({type(error).__name__}: {error}); next try in {INTERVAL:.0f}s")
        db_since = time.monotonic()
