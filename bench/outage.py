"""Outage figures (not a test): stop PostgreSQL or Redis for a while, bring it back, and see
whether new flow runs are fully recorded with no manual step.

    sudo .venv/bin/python bench/outage.py [--stack ha|prod] [--what postgres|redis]
                                          [--seconds 60] [--runs 3] [--no-restart]

Prints: a run before the outage, the seconds until every container passes its health check
again, which containers the restart policy restarted (the guard exits a Prefect process whose
background services died or whose recording stalled), and each run after the outage with its
state, task runs and log line. `--no-restart` sets the guard's grace to a day: its health
check still turns the container unhealthy, but nothing restarts it (what plain Docker does
with an unhealthy container), which reproduces the silent loss.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live.ha import ha_client, ha_overrides, outage, restarts, wait_recovered  # noqa: E402
from live.session import FLOW_DIR, Running, running_stack, stack_config  # noqa: E402


def overrides(stack: str, no_restart: bool) -> dict:
    out = ha_overrides() if stack == "ha" else {"api": None, "monitoring": None}
    if no_restart:
        server = out.get("server") or stack_config("prod")[0]["server"]
        out["server"] = {**server, "env": {"PREFECT_STACK_GUARD_GRACE_SECONDS": "86400"}}
    return out


def report(label: str, runs: list[dict]) -> None:
    for r in runs:
        print(f"  {label} run {r['i']}: {r['state']}, {r['completed_task_runs']}/3 task runs, "
              f"log line {'recorded' if r['logged'] else 'MISSING'}, {r['seconds']:.1f} s")


def unhealthy(stack: Running) -> list[str]:
    out = []
    for name, process in stack.stack.processes.items():
        if process.container.one_shot or not process.alive():
            continue
        result = process.health()
        if result is not None and result.returncode != 0:
            out.append(f"{name}: {(result.stdout + result.stderr).strip()[-120:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=["ha", "prod"], default="ha")
    parser.add_argument("--what", choices=["postgres", "redis"], default="postgres")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-restart", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the logs (prints where)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    try:
        measure(args, workdir)
    finally:
        if args.keep:
            print(f"  logs: {workdir}/logs")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args: argparse.Namespace, workdir: Path) -> None:
    with running_stack("prod", workdir, overrides(args.stack, args.no_restart)) as stack:
        print(f"== {args.stack} stack, {args.what} down {args.seconds:.0f} s"
              f"{' (guard never exits: no restart)' if args.no_restart else ''}")
        report("before", ha_client(stack, "runs", stack.pool, FLOW_DIR, "1"))
        # A run with a task every 2 s spanning the outage: events and state changes keep
        # arriving while the database is gone.
        spanning = ha_client(stack, "start", stack.pool, FLOW_DIR, "40", "2")["id"]
        time.sleep(10)
        started = time.monotonic()
        outage(stack, args.what, args.seconds)
        print(f"  {args.what} back after {time.monotonic() - started:.0f} s")
        time.sleep(20)  # let a dead service be noticed (guard grace 10 s, check every 2 s)
        print(f"  unhealthy 20 s after: {unhealthy(stack) or 'none'}")
        print(f"  all healthy and ready {wait_recovered(stack):.0f} s later")
        print(f"  restarted by the restart policy: {restarts(stack) or 'none'}")
        report("after", ha_client(stack, "runs", stack.pool, FLOW_DIR, str(args.runs)))
        print(f"  the run spanning the outage: {ha_client(stack, 'flow-runs', spanning)}")


if __name__ == "__main__":
    main()
