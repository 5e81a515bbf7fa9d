"""A flow with task runs: what the HA and outage tests count (task runs are recorded from
client events by the server's task-run recorder, the part an outage can silently stop)."""

import time

from prefect import flow, task


@task
def square(x: int, pause: float = 0) -> int:
    time.sleep(pause)
    return x * x


@flow(log_prints=True)
def squares(n: int = 3, tag: str = "", pause: float = 0) -> int:
    """`pause` seconds per task: a run that spans an outage."""
    total = sum(square(i, pause) for i in range(n))
    print(f"sum of squares {tag}: {total}")
    return total
