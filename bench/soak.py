"""Soak (not a test): many flow runs through the proxy with auth on the HA stack while an API
replica crashes, PostgreSQL and Redis are each stopped and started once. Bounded in runs and
time; prints figures and a verdict (exit code 1 when it fails).

    sudo .venv/bin/python bench/soak.py [--runs 200] [--outage 60] [--deadline 1200]
                                        [--sweep-pending SECONDS]

Before the soak: trigger->COMPLETED p50 over 5 runs one at a time (through the proxy with
auth) and PSS memory of the stack at rest. Then all runs are submitted at once (two workers,
pool limit 8); as a fifth, two and three fifths of them reach a final state, one API
replica is killed (the restart policy restarts it), PostgreSQL is stopped for `--outage` s,
then Redis. The stack runs with its shipped settings (components/outage.py: client retries,
heartbeats, the stuck-run sweeper); `--sweep-pending` shortens the sweeper's PENDING limit
for quick runs while developing.

Passes when: every run reached a final state, none is lost (each run carries its own tag) or
duplicated (the deployment's run count equals the runs submitted, no run has more than its 3
task runs), and every run started after the last recovery COMPLETED with its 3 task runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
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
from live.runner import LiveError  # noqa: E402
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def census_now(stack: Running, ids: Path) -> dict | None:
    """The runs' states; None when the API did not answer (counted, tried again)."""
    try:
        return ha_client(stack, "census", str(ids))
    except LiveError as err:
        print(f"  census failed, trying again: {str(err).splitlines()[0][:160]}")
        return None


def soak(stack: Running, runs: int, seconds: float, deadline: float, workdir: Path) -> bool:
    ids = workdir / "soak-runs.json"
    ha_client(stack, "submit", stack.pool, FLOW_DIR, str(runs), str(ids))
    started = time.monotonic()
    step, recovered_at = 0, 0.0
    census: dict = {"runs": {}, "deployment_runs": 0}
    while time.monotonic() - started < deadline:
        census = census_now(stack, ids) or census
        finished = sum(r["state"] in FINAL for r in census["runs"].values())
        if step < 3 and finished >= runs * (step + 1) / 5:
            at = time.monotonic() - started
            what = disrupt(stack, step, seconds)
            took = wait_recovered(stack)
            recovered_at = time.time()
            print(f"  {at:4.0f} s, at {finished}/{runs} final: {what}; all healthy again "
                  f"{took:.0f} s later")
            step += 1
        elif finished == runs:
            break
        else:
            time.sleep(10)
    return report(census, json.loads(ids.read_text()), recovered_at, step,
                  time.monotonic() - started, stack)


def report(census: dict, submitted: list[dict], recovered_at: float, steps: int,
           elapsed: float, stack: Running) -> bool:
    found = census["runs"]
    states = Counter(found.get(r["id"], {}).get("state") for r in submitted)
    final = [found[r["id"]] | {"submitted": r["submitted"]} for r in submitted
             if found.get(r["id"], {}).get("state") in FINAL]
    to_final = [r["end"] - r["submitted"] for r in final if r["end"]]
    running = [r["end"] - r["start"] for r in final if r["end"] and r["start"]]
    lost = [r["id"] for r in submitted if r["id"] not in found]
    not_final = [r["id"] for r in submitted if r["id"] in found and found[r["id"]]["state"]
                 not in FINAL]
    duplicated = census["deployment_runs"] - len(submitted)
    twice = [i for i, r in found.items() if r["tasks"] > 3]
    after = {i: r for i, r in found.items() if r["start"] and r["start"] > recovered_at}
    incomplete = {i: r for i, r in after.items() if r["state"] != "COMPLETED" or r["tasks"] != 3}
    partial = [i for i, r in found.items() if r["state"] == "COMPLETED" and r["tasks"] != 3]
    print(f"soak: {len(submitted)} runs in {elapsed:.0f} s; final states {dict(states)}")
    print(f"  trigger -> final state: p50 {percentile(to_final, 0.5):.0f} s, p95 "
          f"{percentile(to_final, 0.95):.0f} s, max {max(to_final, default=0):.0f} s (all "
          f"submitted at once, pool limit 8); start -> end: p50 "
          f"{percentile(running, 0.5):.1f} s, p95 {percentile(running, 0.95):.1f} s")
    print(f"  lost (submitted, not found): {len(lost)}; deployment has "
          f"{census['deployment_runs']} runs for {len(submitted)} submitted (duplicates: "
          f"{duplicated}); runs with more than 3 task runs: {len(twice)}")
    print(f"  started after the last recovery: {len(after)}, of them not COMPLETED with 3/3 "
          f"task runs: {len(incomplete)}; COMPLETED without 3/3 task runs at any time: "
          f"{len(partial)}")
    crashed = Counter((r.get("message") or "")[:90] for r in found.values()
                      if r["state"] == "CRASHED")
    for message, count in crashed.items():
        print(f"  CRASHED x{count}: {message}")
    print(f"  restarts by the restart policy: {restarts(stack) or 'none'}")
    failures = [f"{what}: {value}" for what, value in [
        ("disruptions done (of 3)", steps if steps < 3 else None),
        ("runs not in a final state", not_final), ("runs lost", lost),
        ("duplicate runs", duplicated or None), ("runs executed twice", twice),
        ("runs after recovery not recorded in full", list(incomplete.items())[:5])] if value]
    print("PASS" if not failures else "FAIL: " + "; ".join(str(f)[:400] for f in failures))
    return not failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--outage", type=float, default=60, help="seconds PostgreSQL/Redis are down")
    parser.add_argument("--deadline", type=float, default=1200, help="seconds for the soak")
    parser.add_argument("--sweep-pending", type=float, help="the sweeper's PENDING limit (s)")
    parser.add_argument("--keep-logs", type=Path, help="copy the containers' logs here")
    args = parser.parse_args()
    overrides = ha_overrides(worker_replicas=2)
    if args.sweep_pending:
        overrides["server"]["env"] = {**overrides["server"].get("env", {}),
                                      "PREFECT_STACK_SWEEP_PENDING_SECONDS": f"{args.sweep_pending:.0f}"}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as workdir, \
            running_stack("prod", Path(workdir), overrides) as stack:
        print("== HA stack: 2 API replicas, 2 services, Redis, PostgreSQL, 2 workers, Caddy")
        baseline(stack)
        passed = soak(stack, args.runs, args.outage, args.deadline, Path(workdir))
        if args.keep_logs:
            shutil.copytree(Path(workdir) / "logs", args.keep_logs, dirs_exist_ok=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
