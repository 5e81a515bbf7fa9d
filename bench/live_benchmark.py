"""Figures for the live stack (not a test): start-up, trigger->COMPLETED latency, memory.

    sudo .venv/bin/python bench/live_benchmark.py [--stack dev --stack prod] [--runs 5] [--untuned]

Prints, per stack: seconds from start to all containers healthy and `/prefect/api/ready`
answering through the proxy (with the stack's auth), next to a bare `prefect server start`
on a fresh SQLite file; trigger->COMPLETED seconds over `--runs` runs of flows/hello.py
through the proxy (p50, min, max); resident memory per container (all its processes).
`--untuned` runs the workers with Prefect's defaults (poll every 10 s, prefetch 10 s) to
show what the stack's worker settings buy. Needs what the live suite needs (root, ./run-tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live.runner import LIVE_VENV, SYSTEM_PATH, run  # noqa: E402
from live.session import FLOW_DIR, Running, running_stack, stack_config  # noqa: E402

PREFECT_DEFAULTS = {"queryIntervalSeconds": 10, "prefetchSeconds": 10}


def pss_mib(pids: list[int]) -> float:
    """Proportional set size: shared pages split between sharers, so PostgreSQL's shared
    buffers are not counted once per backend as RSS would."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines()
                       if line.startswith("Pss:")), 0)
    return total / 1024


def wait_until(check, timeout: float = 180) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not ready after {timeout}s")


def bare_server_seconds() -> tuple[float, float]:
    """`prefect server start` alone: fresh SQLite file, no proxy. (seconds to ready, RSS MiB)"""
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": f"{LIVE_VENV / 'bin'}:{SYSTEM_PATH}", "HOME": home, "PREFECT_HOME": home,
               "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": "4299",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        started = time.monotonic()
        server = subprocess.Popen(["prefect", "server", "start"], env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: urllib.request.urlopen("http://127.0.0.1:4299/api/ready",
                                                      timeout=2).status == 200)
            seconds = time.monotonic() - started
            time.sleep(2)
            return seconds, pss_mib([server.pid, *children(server.pid)])
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def measure_stack(name: str, runs: int, untuned: bool) -> None:
    overrides = {}
    if untuned:
        config, _ = stack_config(name)
        overrides["workers"] = [{**w, **PREFECT_DEFAULTS} for w in config["workers"]]
    label = f"{name}{' (untuned workers)' if untuned else ''}"
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir:
        started = time.monotonic()
        with running_stack(name, Path(workdir), overrides) as stack:
            wait_until(lambda: stack.get("/prefect/api/ready")[0] == 200)
            up = time.monotonic() - started
            seconds = [r["seconds"] for r in stack.client("runs", stack.pool, FLOW_DIR, str(runs))
                       if r["state"] == "COMPLETED"]
            print(f"\n== {label}")
            print(f"start -> all healthy + ready through the proxy: {up:6.1f} s")
            if len(seconds) == runs:
                print(f"trigger -> COMPLETED over {runs} runs: p50 {statistics.median(seconds):.2f} s, "
                      f"min {min(seconds):.2f} s, max {max(seconds):.2f} s")
            else:
                print(f"trigger -> COMPLETED: only {len(seconds)} of {runs} runs completed")
            print_memory(stack)


def print_memory(stack: Running) -> None:
    print("memory at rest, PSS of all the container's processes:")
    for name, process in stack.stack.processes.items():
        if process.container.one_shot:
            continue
        pids = [int(p) for p in run("ip", "netns", "pids", process.namespace).stdout.split()]
        print(f"  {name:40s} {pss_mib(pids):7.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append", choices=["dev", "prod"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--untuned", action="store_true",
                        help="workers with Prefect's default poll/prefetch (the 'before' figures)")
    args = parser.parse_args()
    seconds, rss = bare_server_seconds()
    print(f"bare `prefect server start` (fresh SQLite, no proxy): ready in {seconds:.1f} s, "
          f"{rss:.0f} MiB")
    for name in args.stack or ["dev"]:
        measure_stack(name, args.runs, args.untuned)


if __name__ == "__main__":
    main()
