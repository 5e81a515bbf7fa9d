"""Latency and memory settings of the stack's processes (Prefect knowledge, Pulumi-free).

Measured with bench/live_benchmark.py (README "Benchmark"): what each setting buys and costs
is written beside it.
"""

from __future__ import annotations

import shlex

# Prefect's process worker, given no `command`, starts each flow run as a workspace supervisor
# (`python -m prefect.runner._workspace_supervisor`: imports Prefect, runs the pull steps) that
# then execs `python -m prefect.engine` (imports Prefect again). With an explicit command the
# worker starts the engine directly and the engine runs the pull steps itself: one interpreter
# start and `import prefect` per run instead of two (≈2 s of CPU less per run, measured).
# The default command goes further: each run a fork of the worker, which has imported Prefect
# already (no interpreter start and no `import prefect` per run: ≈2 s of CPU less again than
# `python -m prefect.engine`, and nothing resident between runs; components/worker_launch.py).
FORK_COMMAND = "python /opt/prefect-stack/prefect_flow_run.py"

_TEMPLATE_WITH_COMMAND = (
    "import json, sys; from prefect.workers.process import ProcessWorker; "
    "t = ProcessWorker.get_default_base_job_template(); "
    "t['variables']['properties']['command']['default'] = sys.argv[1]; "
    "json.dump(t, sys.stdout)"
)


def pool_template_pipe(command: str) -> str:
    """Shell that prints the process pool's base job template: the image's own Prefect
    default (so it follows the image's version), with `command` defaulting to `command`.
    Piped into `prefect work-pool create --base-job-template /dev/stdin`; a deployment's own
    `command` job variable still wins over the default."""
    return f"python -c {shlex.quote(_TEMPLATE_WITH_COMMAND)} {shlex.quote(command)}"
