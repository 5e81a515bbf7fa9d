"""A flow with task runs: what the HA and outage tests count (task runs are recorded from
client events by the server's task-run recorder, the part an outage can silently stop)."""

from prefect import flow, task


@task
def square(x: int) -> int:
    return x * x


@flow(log_prints=True)
def squares(n: int = 3, tag: str = "") -> int:
    total = sum(square(i) for i in range(n))
    print(f"sum of squares {tag}: {total}")
    return total
