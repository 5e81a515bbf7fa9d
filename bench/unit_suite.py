"""Figures for the unit suite (not a test): everything but the live tests, run as ./run-tests
runs pytest (two workers, each test module on one), with wall and CPU time.

    .venv/bin/python bench/unit_suite.py [--runs 1] [--top 12] [pytest args...]

Prints the test count, wall seconds and CPU seconds (user+sys of pytest and everything it
started, reaped or not), then the modules that cost the most CPU and wall time and the
worker each ran on. CPU time barely moves when other work shares the machine, where wall
time can double on a busy 2-core box: read the two side by side. The per-module figures come
from this file loaded into each worker as a pytest plugin (`-p unit_suite`); a module's
CPU includes the subprocesses its tests started and waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not live",
          "-n", "2", "--dist", "loadgroup"]
RECORD_DIR = "PREFECT_STACK_UNIT_SUITE_RECORD"


# --- the plugin side, in each pytest worker -------------------------------------------------

def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_records: list[tuple[str, float, float]] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Time each test with its fixtures' setup and teardown (the protocol runs all three)."""
    started_cpu, started = _cpu(), time.perf_counter()
    try:
        return (yield)
    finally:
        module = item.nodeid.split("::", 1)[0]
        _records.append((module, _cpu() - started_cpu, time.perf_counter() - started))


def pytest_sessionfinish():
    directory = os.environ.get(RECORD_DIR)
    if directory:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        Path(directory, f"{worker}.json").write_text(json.dumps(_records))


# --- the script side ------------------------------------------------------------------------

def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(extra: list[str], record: Path) -> tuple[str, float, float]:
    env = {**os.environ, RECORD_DIR: str(record),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"),
                                                       os.environ.get("PYTHONPATH")])),
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONDONTWRITEBYTECODE": ""}  # as ./run-tests runs pytest: bytecode cached
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run([*PYTEST, "-p", "unit_suite", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu
    lines = done.stdout.splitlines()
    summary = next((line for line in reversed(lines) if " in " in line),
                   done.stdout[-500:] + done.stderr[-500:])
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return "\n".join([summary.strip("= "), *failures]), wall, cpu


def by_module(record: Path) -> list[tuple[str, str, float, float]]:
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for path in record.glob("*.json"):
        for module, cpu, wall in json.loads(path.read_text()):
            totals[(module, path.stem)][0] += cpu
            totals[(module, path.stem)][1] += wall
    return sorted(((m, w, c, wl) for (m, w), (c, wl) in totals.items()), key=lambda r: -r[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    args, extra = parser.parse_known_args()
    print(f"unit suite: {shlex.join([*PYTEST[2:], *extra])}")
    failed = False
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as directory:
            record = Path(directory)
            summary, wall, cpu = run_once(extra, record)
            counts = summary.splitlines()[0]
            tests = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed|error)", counts))
            failed |= bool(re.search(r"\d+ (failed|error)", counts)) or tests == 0
            print(f"run {run}: {summary}")
            print(f"  {tests} tests, wall {wall:.1f} s, CPU (user+sys) {cpu:.1f} s")
            modules = by_module(record)
            workers = defaultdict(float)
            for _, worker, module_cpu, _ in modules:
                workers[worker] += module_cpu
            print("  per worker, CPU in tests: " + ", ".join(
                f"{w} {c:.1f} s" for w, c in sorted(workers.items())))
            print(f"  {'module':40} {'worker':>6} {'CPU s':>7} {'wall s':>7}")
            for module, worker, module_cpu, module_wall in modules[:args.top]:
                print(f"  {module:40} {worker:>6} {module_cpu:7.2f} {module_wall:7.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
