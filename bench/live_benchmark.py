"""Figures for the live stack (not a test): start-up, trigger->COMPLETED latency, memory at rest.

    sudo .venv/bin/python bench/live_benchmark.py [--stack dev|prod|ha ...] [--runs 10]
        [--monitoring] [--untuned] [--settle 20]

Prints, per stack: seconds from start to all containers healthy and `/prefect/api/ready`
answering through the proxy (with the stack's auth), next to a bare `prefect server start`
on a fresh SQLite file; trigger->COMPLETED over `--runs` runs of flows/hello.py one after
another through the proxy with the stack's auth (p50, p95, min, max; bench/trigger_client.py:
from the API call creating the run to the client seeing COMPLETED), split into phases, with
the CPU time (user+sys) the workers and the Prefect server spent per run; then, after the
stack has been idle `--settle` s, each container's proportional set size (PSS, from
/proc/PID/smaps_rollup, of every process in the container, the median of 5 samples 2 s
apart) and its CPU use at rest, and for PostgreSQL stacks the transactions per second the
idle stack costs the database. For prod and ha as committed it also says whether issue #12's
targets are met (p50 <= 3 s; PSS at rest <= 550 MiB prod, <= 900 MiB ha).

`--stack ha` is the HA stack as bench/soak.py runs it (prod with 2 API replicas, 2
background-services processes, Redis, 2 workers; no app API, no monitoring);
tests/test_live_ha.py runs it with 1 worker.
`--monitoring` adds the monitoring section to prod (exporter, Prometheus and Grafana are
stand-ins here: their memory is not the images'). `--untuned` runs the workers as Prefect's
defaults would (poll every 10 s, prefetch 10 s, Prefect's generated flow-run command) to show
what the stack's worker settings buy. Needs what the live suite needs (root, ./run-tests).
"""

from __future__ import annotations

import argparse
import json
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

from live import runner  # noqa: E402
from live.ha import ha_overrides  # noqa: E402
from live.runner import LIVE_VENV, SYSTEM_PATH, LiveError, run  # noqa: E402
from live.session import FLOW_DIR, Running, prod_overrides, running_stack, stack_config  # noqa: E402

PREFECT_DEFAULTS = {"queryIntervalSeconds": 10, "prefetchSeconds": 10, "flowRunCommand": None}
TRIGGER_CLIENT = ROOT / "bench" / "trigger_client.py"
# Issue #12's targets, for the stacks as committed (no monitoring): trigger->COMPLETED p50
# through the proxy with auth, and PSS at rest of everything the stack runs.
LATENCY_TARGET = 3.0
MEMORY_TARGETS = {"prod": 550.0, "ha": 900.0}
TICK = os.sysconf("SC_CLK_TCK")
LOCKED: list[float] = []  # when each stack got the machine's live lock (start-up counts from it)
_create_network = runner.Network.create


def _timed_create(self: runner.Network) -> None:
    """LiveStack.start creates the network right after taking the lock: time from there,
    not from a wait for other helpers' stacks."""
    LOCKED.append(time.monotonic())
    _create_network(self)


runner.Network.create = _timed_create


def smaps(pid: int) -> dict[str, int]:
    """smaps_rollup in KiB (Pss, Pss_Anon, Pss_File, ...); {} for a process gone meanwhile."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:]}


def pss_mib(pids: list[int]) -> float:
    """Proportional set size: shared pages split between sharers, so PostgreSQL's shared
    buffers are not counted once per backend as RSS would."""
    return sum(smaps(pid).get("Pss", 0) for pid in pids) / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User+sys of the processes and of their children already reaped (flow-run processes)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICK


def threads(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("Threads:")), 0)


def command_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [Path(a.decode()).name if i == 0 else a.decode() for i, a in enumerate(argv) if a]
    return " ".join(words)[:60]


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
    """`prefect server start` alone: fresh SQLite file, no proxy. (seconds to ready, PSS MiB)"""
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


def stack_overrides(name: str, untuned: bool, monitoring: bool, extra: dict
                    ) -> tuple[str, dict]:
    """(stack file, overrides) for a benchmark stack name. `extra` is merged into the stack's
    sections (its `workers` into every worker), for experiments."""
    config, _ = stack_config("prod" if name == "ha" else name)
    if name == "ha":
        file, overrides = "prod", ha_overrides(worker_replicas=2)
    else:
        file, overrides = name, {}
    if monitoring:
        overrides["monitoring"] = {"enabled": True}
    workers = overrides.get("workers") or (
        prod_overrides(config)["workers"] if file == "prod" else config["workers"])
    changes = {**(PREFECT_DEFAULTS if untuned else {}), **extra.get("workers", {})}
    if changes:
        overrides["workers"] = [merged(w, changes) for w in workers]
    for section, value in extra.items():
        if section != "workers":
            overrides[section] = merged(overrides.get(section, config.get(section, {})), value)
    return file, overrides


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def containers(stack: Running) -> dict[str, list[int]]:
    """Every long-running container's processes (one-shot jobs have exited, as in Docker)."""
    out = {}
    for name, process in stack.stack.processes.items():
        if not process.container.one_shot:
            pids = run("ip", "netns", "pids", process.namespace, check=False).stdout.split()
            out[name] = [int(p) for p in pids]
    return out


def role(stack: Running, name: str) -> str:
    return stack.containers[name].aliases[0]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..1)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(values: list[float], unit: str = "s") -> str:
    return (f"p50 {statistics.median(values):.2f} {unit}, p95 {percentile(values, 0.95):.2f} "
            f"{unit} (min {min(values):.2f}, max {max(values):.2f})")


def trigger(stack: Running, runs: int, target: float | None) -> None:
    by_role = lambda r: [n for n in containers(stack) if role(stack, n).startswith(r)]  # noqa: E731
    workers, servers = by_role("worker-"), by_role("prefect-server") + by_role("prefect-services")
    before = {n: cpu_seconds(p) for n, p in containers(stack).items()}
    result = subprocess.run([str(LIVE_VENV / "bin" / "python"), str(TRIGGER_CLIENT), stack.pool,
                             FLOW_DIR, str(runs)], env=stack.client_env, capture_output=True,
                            text=True, timeout=120 * (runs + 2))
    if result.returncode != 0:
        raise LiveError(f"trigger client failed:\n{result.stderr[-3000:]}")
    after = {n: cpu_seconds(p) for n, p in containers(stack).items()}
    report = json.loads(result.stdout.strip().splitlines()[-1])
    done = [r for r in report["runs"] if r["state"] == "COMPLETED"]
    print(f"trigger -> COMPLETED, {runs} runs one after another through the proxy with auth "
          f"(warm-up run before them: {report['warm_up']['seconds']:.2f} s, not counted):")
    if len(done) < runs:
        print(f"  only {len(done)} of {runs} runs completed: "
              f"{[r['state'] for r in report['runs']]}")
    if not done:
        return
    print(f"  total                          {spread([r['seconds'] for r in done])}")
    if target is not None:
        p50 = statistics.median(r["seconds"] for r in done)
        print(f"  issue #12 target p50 <= {target:.0f} s: {'met' if p50 <= target else 'NOT met'}")
    print(f"  create-flow-run API call       {spread([r['create_call'] for r in done])}")
    steps = [("SCHEDULED", "PENDING", "worker poll + submission"),
             ("PENDING", "RUNNING", "flow-run process start"),
             ("RUNNING", "COMPLETED", "the flow")]
    for start, end, what in steps:
        gaps = [r["phases"][end] - r["phases"][start] for r in done
                if start in r["phases"] and end in r["phases"]]
        if gaps:
            print(f"  {start:9s} -> {end:9s} {what:26s} p50 {statistics.median(gaps):.2f} s "
                  f"(min {min(gaps):.2f}, max {max(gaps):.2f})")
    seen = [r["seconds"] - r["phases"]["COMPLETED"] for r in done if "COMPLETED" in r["phases"]]
    print(f"  COMPLETED seen by the client   p50 {statistics.median(seen):.2f} s later")
    for label, names in (("workers (and their flow runs)", workers), ("Prefect server", servers)):
        used = sum(after.get(n, 0) - before.get(n, 0) for n in names)
        print(f"  CPU per run, {label}: {used / (runs + 1):.2f} s user+sys")


def at_rest(stack: Running, settle: float, target: float | None) -> None:
    time.sleep(settle)
    names = containers(stack)
    cpu_before, started = {n: cpu_seconds(p) for n, p in names.items()}, time.monotonic()
    xacts = database_transactions(stack)
    samples: list[dict[int, dict[str, int]]] = []
    for i in range(5):
        if i:
            time.sleep(2)
        samples.append({pid: smaps(pid) for pids in containers(stack).values() for pid in pids})
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))
    window = time.monotonic() - started
    xacts_after = database_transactions(stack)
    names = containers(stack)
    cpu = {n: (cpu_seconds(p) - cpu_before.get(n, 0)) / window * 100 for n, p in names.items()}
    print(f"at rest ({settle:.0f} s idle after the runs): PSS per container (median of 5 samples), "
          f"CPU over {window:.0f} s")
    totals = {}
    for name, pids in names.items():
        per_sample = [sum(s.get(p, {}).get("Pss", 0) for p in pids) / 1024 for s in samples]
        totals[name] = statistics.median(per_sample)
        middle = samples[2]
        anon = sum(middle.get(p, {}).get("Pss_Anon", 0) for p in pids) / 1024
        print(f"  {name:40s} {totals[name]:6.0f} MiB  (anon {anon:4.0f})  CPU {cpu[name]:4.1f} %")
        for pid in pids:
            if middle.get(pid, {}).get("Pss", 0) >= 1024:
                print(f"      {pid:>7} {middle[pid]['Pss'] / 1024:6.0f} MiB {threads(pid):3d} "
                      f"threads  {command_name(pid)}")
    print(f"  {'total':40s} {sum(totals.values()):6.0f} MiB  CPU {sum(cpu.values()):4.1f} % "
          f"of one core")
    if target is not None:
        met = sum(totals.values()) <= target
        print(f"  issue #12 target <= {target:.0f} MiB PSS at rest: {'met' if met else 'NOT met'}")
    if xacts is not None and xacts_after is not None:
        print(f"  PostgreSQL at rest: {(xacts_after - xacts) / window:.1f} transactions/s on the "
              f"prefect database")


def database_transactions(stack: Running) -> int | None:
    """Committed + rolled-back transactions of the prefect database so far (PostgreSQL)."""
    postgres = [n for n in stack.containers if role(stack, n) == "postgres"]
    if not postgres:
        return None
    sql = ("SELECT xact_commit + xact_rollback FROM pg_stat_database "
           "WHERE datname = 'prefect'")
    result = stack.stack.processes[postgres[0]].exec(
        ["sh", "-c", f'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U postgres '
                     f'-tAc "{sql}"'])
    return int(result.stdout.strip()) if result.returncode == 0 else None


def measure_stack(name: str, runs: int, untuned: bool, monitoring: bool, settle: float,
                  extra: dict) -> None:
    file, overrides = stack_overrides(name, untuned, monitoring, extra)
    label = (f"{name}{' with monitoring' if monitoring else ''}"
             f"{' (untuned workers)' if untuned else ''}{f' {json.dumps(extra)}' if extra else ''}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as workdir, \
            running_stack(file, Path(workdir), overrides) as stack:
        wait_until(lambda: stack.get("/prefect/api/ready")[0] == 200)
        up = time.monotonic() - LOCKED[-1]
        print(f"\n== {label}")
        print(f"start -> all healthy + ready through the proxy: {up:6.1f} s (from taking the lock)")
        plain = not (untuned or monitoring or extra)
        trigger(stack, runs, LATENCY_TARGET if plain and name in MEMORY_TARGETS else None)
        at_rest(stack, settle, MEMORY_TARGETS.get(name) if plain else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append", choices=["dev", "prod", "ha"])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--settle", type=float, default=20, help="idle seconds before memory")
    parser.add_argument("--monitoring", action="store_true", help="prod/ha with monitoring on")
    parser.add_argument("--untuned", action="store_true",
                        help="workers with Prefect's defaults (the 'before' figures)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare server figure")
    parser.add_argument("--overrides", type=json.loads, default={},
                        help='JSON merged into the stack\'s config, e.g. \'{"workers": '
                        '{"queryIntervalSeconds": 5}}\' (applied to every worker)')
    args = parser.parse_args()
    if not args.no_bare:
        seconds, pss = bare_server_seconds()
        print(f"bare `prefect server start` (fresh SQLite, no proxy): ready in {seconds:.1f} s, "
              f"{pss:.0f} MiB")
    for name in args.stack or ["dev"]:
        measure_stack(name, args.runs, args.untuned, args.monitoring, args.settle,
                      args.overrides)


if __name__ == "__main__":
    main()
