"""Riding out an outage (PostgreSQL, Redis or an API replica gone for a minute): what every
Prefect client and every server/services process is told, and the sweeper that ends runs
whose process is gone (README "Riding out an outage"). Read from Prefect 3.8.8's source:
client/base.py (retries), server/api/server.py (which database errors answer 503, which
500), flow_engine.py (heartbeats), server/events/services/event_persister.py and
server/services/task_run_recorder.py (what they drop or hold back), workers/base.py and
server/orchestration/core_policy.py (how a run gets stuck PENDING).

Pure data and functions; `plan.prefect_client_env` and `scaleout.harden` apply them.
"""

from __future__ import annotations

from components import shipped
from components.spec import FileUpload

# Clients (workers, the flow-run processes they start, every Prefect client container) retry
# 408/429/502/503 and connection errors after 2, 4, 8 ... s (clamped Poisson jitter, factor
# 0.2, kept). The default 5 retries give up after about 62 s, so a 60 s outage loses whatever
# was being written; 7 retries wait about 254 s in all.
MAX_RETRIES = 7
# During a PostgreSQL outage the server answers 503 only for errors it recognises as
# retryable (`is_client_retryable_exception`: DBAPIError, asyncpg's lost-connection errors);
# a connect to a stopped PostgreSQL fails as CancelledError or TimeoutError instead (seen in
# the server log of bench/soak.py: set_state, /logs, get_scheduled_flow_runs answered 500),
# and 500 is not retried by default: the state write or log batch of that moment was lost.
# A genuine 500 (a bug) is then retried for up to about 4 minutes before the client sees it.
RETRY_EXTRA_CODES = "500"
# Every flow run sends a `prefect.flow-run.heartbeat` event this often (3.8.8's default is
# 180 s, minimum 30 s): the sweeper tells a dead RUNNING run from a live one by them.
HEARTBEAT_SECONDS = 30

# The server side (every server and services process). The event persister drops its batch
# after MAX_FLUSH_RETRIES consecutive failed flushes, one per flush interval (5 s): the default
# 5 loses every event of an outage longer than 25 s; 36 keeps them for 3 minutes.
PERSISTER_MAX_FLUSH_RETRIES = 36
# The task-run recorder keeps events that failed to write in its queue and, with the default
# batch size 1, writes one per incoming event plus one per flush interval (5 s): after an
# outage that backlog never shrinks but by one every 5 s, and every new task run waits behind
# it (minutes of "zero task runs" until a restart). Batches of 100 every second drain it at
# once and record task runs within a second.
RECORDER_BATCH_SIZE = 100
RECORDER_FLUSH_SECONDS = 1

# The sweeper (components/assets/prefect_sweeper.py), in every process that runs Prefect's
# background services. A run PENDING this long never got a flow-run process (a process
# worker's subprocess starts in under 10 s; a Docker worker pulling a large image may need
# minutes, hence 5). A RUNNING run without a heartbeat for this long (10 beats at 30 s, and
# more than 1.5 of the 180 s default for clients outside the stack) lost its process.
SWEEP_PENDING_SECONDS = 300
SWEEP_HEARTBEAT_SECONDS = 300
SWEEP_INTERVAL_SECONDS = 30

SWEEPER = "prefect_sweeper.py"  # shipped beside the guard, which imports it
SWEEPER_PATH = shipped.path(SWEEPER)


def client_env() -> dict[str, str]:
    """For every Prefect client container; the worker's flow-run processes inherit it."""
    return {"PREFECT_CLIENT_MAX_RETRIES": str(MAX_RETRIES),
            "PREFECT_CLIENT_RETRY_EXTRA_CODES": RETRY_EXTRA_CODES,
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}


def server_env() -> dict[str, str]:
    """For the guarded server and services containers (`server.env` may override them)."""
    return {"PREFECT_SERVER_SERVICES_EVENT_PERSISTER_MAX_FLUSH_RETRIES":
                str(PERSISTER_MAX_FLUSH_RETRIES),
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": str(RECORDER_BATCH_SIZE),
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL":
                str(RECORDER_FLUSH_SECONDS)}


def sweeper_env() -> dict[str, str]:
    """For the guarded server and services containers (`server.env` may override them)."""
    return {"PREFECT_STACK_SWEEP_PENDING_SECONDS": str(SWEEP_PENDING_SECONDS),
            "PREFECT_STACK_SWEEP_HEARTBEAT_SECONDS": str(SWEEP_HEARTBEAT_SECONDS),
            "PREFECT_STACK_SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS)}


def sweeper_upload() -> FileUpload:
    return shipped.upload(SWEEPER)
