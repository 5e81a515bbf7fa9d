"""Soak (not a test): many flow runs through the proxy with auth on the HA stack while an API
replica crashes, PostgreSQL and Redis are each stopped and started once. Bounded in runs and
time; prints figures.

    sudo .venv/bin/python bench/soak.py [--runs 200] [--outage 30] [--deadline 2400]

Before the soak: trigger->COMPLETED p50 over 5 runs one at a time (through the proxy with
auth) and PSS memory of the stack at rest. Then all runs are submitted at once (two workers,
pool limit 8); as a quarter, half and three quarters of them reach a final state, one API
replica is killed (the restart policy restarts it), PostgreSQL is stopped for `--outage` s,
then Redis. Figures: runs per final state, runs lost or duplicated (each run carries its own
tag; the deployment's run count must equal the runs submitted), runs started after the last
recovery without all their task runs recorded, restarts per container.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live.ha import (  # noqa: E402
    ha_client,
    ha_overrides,
    outage,
    replicas,
    restarts,
    stack_pss_mib,
    wait_recovered,
)
from live.session import FLOW_DIR, Running, running_stack  # noqa: E402

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def baseline(stack: Running) -> None:
    seconds = [r["seconds"] for r in ha_client(stack, "runs", stack.pool, FLOW_DIR, "5")
               if r["state"] == "COMPLETED"]
    print(f"trigger -> COMPLETED through the proxy with auth, 5 runs one at a time: p50 "
          f"{statistics.median(seconds):.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f})")
    memory = stack_pss_mib(stack)
    print(f"PSS at rest, whole HA stack: {sum(memory.values()):.0f} MiB")
    for name, mib in memory.items():
        print(f"  {name:40s} {mib:6.0f} MiB")


def disrupt(stack: Running, step: int, seconds: float) -> str:
    if step == 0:
        victim = replicas(stack, "prefect-server")[0]
        stack.stack.kill(victim)
        return f"killed {victim}"
    service = "postgres" if step == 1 else "redis"
    outage(stack, service, seconds)
    return f"{service} stopped {seconds:.0f} s"


def soak(stack: Running, runs: int, seconds: float, deadline: float, workdir: Path) -> None:
    ids = workdir / "soak-runs.json"
    ha_client(stack, "submit", stack.pool, FLOW_DIR, str(runs), str(ids))
    started = time.monotonic()
    step, recovered_at = 0, 0.0
    census: dict = {}
    while time.monotonic() - started < deadline:
        census = ha_client(stack, "census", str(ids))
        finished = sum(r["state"] in FINAL for r in census["runs"].values())
        if step < 3 and finished >= runs * (step + 1) / 4:
            what = disrupt(stack, step, seconds)
            took = wait_recovered(stack)
            recovered_at = time.time()
            print(f"  at {finished}/{runs} final: {what}; all healthy again {took:.0f} s later")
            step += 1
        elif finished == runs:
            break
        else:
            time.sleep(5)
    elapsed = time.monotonic() - started
    submitted = json.loads(ids.read_text())
    states = Counter(census["runs"].get(r["id"], {}).get("state") for r in submitted)
    after = [r for r in census["runs"].values() if r["start"] and r["start"] > recovered_at]
    missing_tasks = [r for r in after if r["state"] == "COMPLETED" and r["tasks"] != 3]
    print(f"soak: {runs} runs in {elapsed:.0f} s; final states {dict(states)}")
    print(f"  lost (submitted, not found): {runs - len(census['runs'])}; deployment has "
          f"{census['deployment_runs']} runs for {runs} submitted (duplicates: "
          f"{census['deployment_runs'] - runs})")
    print(f"  started after the last recovery: {len(after)}, of them completed without all 3 "
          f"task runs recorded: {len(missing_tasks)}")
    print(f"  restarts by the restart policy: {restarts(stack) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--outage", type=float, default=30, help="seconds PostgreSQL/Redis are down")
    parser.add_argument("--deadline", type=float, default=2400, help="seconds for the soak")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as workdir, \
            running_stack("prod", Path(workdir), ha_overrides(worker_replicas=2)) as stack:
        print("== HA stack: 2 API replicas, 2 services, Redis, PostgreSQL, 2 workers, Caddy")
        baseline(stack)
        soak(stack, args.runs, args.outage, args.deadline, Path(workdir))


if __name__ == "__main__":
    main()
