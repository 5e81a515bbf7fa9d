"""Flow runs forked from the worker (components/assets/prefect_flow_run.py, served from the
worker launcher's event loop). The client, the server and their protocol run here for real on
loopback, with a stand-in engine module instead of Prefect's and a stand-in launcher that
serves from its own asyncio loop (it imports a marker module first: a run that sees it is a
fork, one that does not is a fresh interpreter). The real engine, Prefect's cancellation and
the worker: tests/test_live.py's and tests/test_live_ha.py's worker and flow-run tests.

The tests that start the stand-in launcher (a server on a socket, and client, session and run
processes) are in the live tier (marker `live`, README "What the tests prove"): they need no
root, so they run wherever `./run-tests` runs, but not in the unit suite's quick loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import planned

from components import worker_launch
from components.worker_launch import FLOW_RUN_SOURCE, FORK_COMMAND, WORKER_PATH

STUB_ENGINE = """
import atexit, json, logging, os, signal, sys, tempfile, threading, time
mode, *rest = sys.argv[1:]
if rest == ["handle"]:
    def stop(signum, frame):
        os.write(1, b"got SIGTERM\\n")  # not print: the signal may land in one
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
atexit.register(print, "the run's exit call", flush=True)
threading._register_atexit(print, "the run's thread exit call", flush=True)  # Prefect's drains

class Handler(logging.Handler):  # Prefect's API log handler sends its last logs at shutdown
    def close(self):
        print("the run's log handler closed", flush=True)

logging.getLogger("run").addHandler(Handler())
own = tempfile.TemporaryDirectory()  # removed at the run's exit, as in a fresh interpreter
import asyncio
try:  # the worker's loop is running where it forked: on 3.11 this returned it
    asyncio.get_event_loop().run_until_complete(asyncio.sleep(0))
    loop = "usable"
except RuntimeError as err:
    loop = str(err)
print(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "cwd": os.getcwd(),
                  "path0": sys.path[0], "mark": os.environ.get("MARK"),
                  "forked": "preloaded_marker" in sys.modules, "tmp": tempfile.gettempdir(),
                  "own": own.name, "loop": loop}), flush=True)
print("on stderr", file=sys.stderr, flush=True)
if mode == "exit":
    sys.exit(int(rest[0]))
if mode == "kill":  # as the OOM killer would
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""

LOAD = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("prefect_flow_run", {str(FLOW_RUN_SOURCE)!r})
flow_run = importlib.util.module_from_spec(spec)
sys.modules["prefect_flow_run"] = flow_run
spec.loader.exec_module(flow_run)
flow_run.ENGINE = "stub_engine"
"""

# The launcher's part: import what runs need, serve from the worker's loop, which stops on
# SIGTERM as the worker's does; a service of its own whose exit call is the worker's (reset
# in a fork, as Prefect's are), an exit call and a run's working directory of its own (as
# ProcessWorker keeps one per run in progress: its path the second line out); with `stuck`,
# a thread of the worker stuck writing to stderr; with `importing`, a thread in an import;
# with `loading`, Prefect's sys.path lock held as while it loads a flow's code; on SIGUSR1 a
# flow's directory goes on sys.path, on SIGUSR2 a flow's module is imported ("loaded" out).
SERVER = LOAD + """
import asyncio, atexit, builtins, os, signal, tempfile, threading, types
import preloaded_marker
flow_run.reload_prefect_settings = lambda: None  # no Prefect here
working_directory = tempfile.TemporaryDirectory()
atexit.register(print, "the worker's atexit call", flush=True)

class Service:
    def reset_for_fork(self):
        pass
    def drain(self):
        print("the worker's exit call", flush=True)

threading._register_atexit(Service().drain)
if sys.argv[1:] == ["stuck"]:  # the pipe is never read: the writer holds stderr's lock
    threading.Thread(target=lambda: sys.stderr.write("x" * 2**20), daemon=True).start()
if sys.argv[1:] == ["importing"]:  # slow_import's body waits: its import never ends
    builtins.IMPORTING = threading.Event()
    threading.Thread(target=lambda: __import__("slow_import"), daemon=True).start()
    builtins.IMPORTING.wait()
if sys.argv[1:] == ["loading"]:
    importtools = types.ModuleType("prefect.utilities.importtools")
    importtools._sys_path_lock = threading.Lock()
    importtools._sys_path_lock.acquire()
    sys.modules[importtools.__name__] = importtools

def load(signum):
    if signum == signal.SIGUSR1:
        sys.path.insert(0, "/srv/flows")
    else:
        import user_flow
    print("loaded", flush=True)

async def worker():
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    for signum in (signal.SIGUSR1, signal.SIGUSR2):
        loop.add_signal_handler(signum, load, signum)
    print(flow_run.serve_in(loop), flush=True)
    print(working_directory.name, flush=True)
    await stopped.wait()
    print("the worker stopped", flush=True)

asyncio.run(worker())
"""

CLIENT = LOAD + "flow_run.client(sys.argv[1:])\n"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stubs")
    (path / "stub_engine.py").write_text(STUB_ENGINE)
    (path / "preloaded_marker.py").write_text("")
    (path / "slow_import.py").write_text("import builtins, time\nbuiltins.IMPORTING.set()\n"
                                         "time.sleep(120)\n")
    (path / "user_flow.py").write_text("")
    return path


def base_env(stubs: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(stubs)}


def serving(stubs: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The launcher stand-in and the address it serves runs on."""
    process = subprocess.Popen([sys.executable, "-c", SERVER, *args], env=base_env(stubs),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = process.stdout.readline().strip()
    try:
        yield address, process
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server(stubs) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    yield from serving(stubs)


@pytest.fixture
def own_server(stubs) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """One for a test that kills it."""
    yield from serving(stubs)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def client(stubs: Path, address: str | None, *args: str, cwd: Path,
           **env: str) -> subprocess.Popen[str]:
    full = {**base_env(stubs), "MARK": "from-the-worker", **env}
    if address:
        full["PREFECT_STACK_FORK_SERVER"] = address
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], env=full, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def started(process: subprocess.Popen[str]) -> dict:
    return json.loads(process.stdout.readline())


def gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or \
                Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.live
def test_a_run_is_a_fork_of_the_server_with_the_clients_arguments_env_cwd_and_output(
        stubs, server, tmp_path):
    process = client(stubs, server[0], "exit", "3", cwd=tmp_path)
    out, err = process.communicate(timeout=30)
    run = json.loads(out.splitlines()[0])
    assert process.returncode == 3
    assert run["forked"] and run["pid"] != process.pid
    assert run["argv"] == ["exit", "3"] and run["mark"] == "from-the-worker"
    assert run["cwd"] == run["path0"] == str(tmp_path)  # as `python -m` in that directory
    assert "on stderr" in err  # the run writes to the client's own descriptors


@pytest.mark.live
def test_sigterm_to_the_client_reaches_the_run(stubs, server, tmp_path):
    process = client(stubs, server[0], "sleep", "handle", cwd=tmp_path)
    started(process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert "got SIGTERM" in out and process.returncode == 143, (out, err, process.returncode)


@pytest.mark.live
def test_a_run_killed_by_a_signal_ends_its_client_by_the_same_signal(stubs, server, tmp_path):
    process = client(stubs, server[0], "sleep", cwd=tmp_path)
    started(process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    killed = client(stubs, server[0], "kill", cwd=tmp_path)
    killed.communicate(timeout=30)
    assert killed.returncode == -signal.SIGKILL


@pytest.mark.live
def test_killing_the_client_kills_its_run(stubs, server, tmp_path):
    process = client(stubs, server[0], "sleep", cwd=tmp_path)
    run = started(process)
    process.kill()
    process.wait()
    assert gone(run["pid"])


@pytest.mark.live
def test_a_run_whose_session_dies_dies_with_it_and_its_client_fails(stubs, server, tmp_path):
    process = client(stubs, server[0], "sleep", cwd=tmp_path)
    run = started(process)
    assert run["forked"]  # else its parent is this test's process
    session = int(Path(f"/proc/{run['pid']}/stat").read_text().split(")")[1].split()[1])
    os.kill(session, signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert gone(run["pid"]) and process.returncode == 1
    assert "session process died" in err


@pytest.mark.live
def test_without_a_server_the_client_becomes_the_engine_itself(stubs, tmp_path):
    process = client(stubs, None, "exit", "0", cwd=tmp_path)
    out, _ = process.communicate(timeout=30)
    run = json.loads(out.splitlines()[0])
    assert not run["forked"] and run["pid"] == process.pid and process.returncode == 0


@pytest.mark.live
def test_a_crashed_server_falls_back_to_a_fresh_engine(stubs, own_server, tmp_path):
    address, launcher = own_server
    launcher.kill()
    launcher.wait()
    process = client(stubs, address, "exit", "4", cwd=tmp_path)
    out, err = process.communicate(timeout=30)
    run = json.loads(out.splitlines()[0])
    assert not run["forked"] and run["pid"] == process.pid and process.returncode == 4
    assert "fork server unreachable" in err


@pytest.mark.live
@pytest.mark.parametrize("variable", [
    {"PYTHONHASHSEED": "7"}, {"LD_LIBRARY_PATH": "/opt/lib"}, {"MALLOC_ARENA_MAX": "2"},
    {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, {"TZ": "Asia/Tokyo"}])
def test_a_run_with_other_startup_variables_gets_its_own_interpreter(
        stubs, server, tmp_path, variable):
    """Read once at start-up, by Python, the C library's loader and malloc, or libraries
    caching the local time zone: a fork would ignore the run's."""
    process = client(stubs, server[0], "exit", "0", cwd=tmp_path, **variable)
    out, err = process.communicate(timeout=30)
    assert not json.loads(out.splitlines()[0])["forked"] and process.returncode == 0
    assert "cannot run this environment" in err


@pytest.mark.live
def test_a_forked_run_uses_its_own_tmpdir(stubs, server, tmp_path):
    process = client(stubs, server[0], "exit", "0", cwd=tmp_path, TMPDIR=str(tmp_path))
    run = json.loads(process.communicate(timeout=30)[0].splitlines()[0])
    assert run["forked"] and run["tmp"] == str(tmp_path)  # not the worker's cached /tmp


@pytest.mark.live
def test_a_forked_run_gets_its_own_event_loop(stubs, server, tmp_path):
    process = client(stubs, server[0], "exit", "0", cwd=tmp_path)
    run = json.loads(process.communicate(timeout=30)[0].splitlines()[0])
    assert run["forked"] and run["loop"] == "usable"


def test_a_run_drops_the_workers_extra_logger_handlers_before_prefect_adds_its_own(
        monkeypatch):
    """PREFECT_LOGGING_EXTRA_LOGGERS: Prefect adds `prefect.extra`'s handlers to them and
    removes none; the worker's left there would send the run's records a second time."""
    import importlib.util
    import logging

    spec = importlib.util.spec_from_file_location("flow_run_under_test", FLOW_RUN_SOURCE)
    flow_run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, flow_run)  # its dataclass looks itself up
    spec.loader.exec_module(flow_run)
    extra, other = logging.getLogger("prefect.extra"), logging.getLogger("fork-test-extra")
    workers, users = logging.NullHandler(), logging.NullHandler()
    extra.addHandler(workers)
    other.addHandler(workers)
    other.addHandler(users)
    try:
        flow_run.drop_the_workers_extra_handlers()
        assert other.handlers == [users] and workers in extra.handlers
    finally:
        extra.removeHandler(workers)
        for handler in other.handlers[:]:
            other.removeHandler(handler)


@pytest.mark.live
@pytest.mark.parametrize("state", ["importing", "loading"])
def test_a_worker_in_an_import_does_not_fork_a_run(stubs, tmp_path, state):
    """A thread of the worker in an import (Prefect's hook runner loads a crashed run's flow
    in the worker) holds locks no thread of a fork would release: the run would hang."""
    for address, launcher in serving(stubs, state):
        process = client(stubs, address, "exit", "0", cwd=tmp_path)
        out, err = process.communicate(timeout=30)
        assert not json.loads(out.splitlines()[0])["forked"] and process.returncode == 0
        assert "cannot fork now" in err
        launcher.kill()
        assert "not forked from the worker, while" in launcher.communicate()[1]


@pytest.mark.live
@pytest.mark.parametrize("load", [signal.SIGUSR1, signal.SIGUSR2])
def test_a_worker_that_loaded_a_flows_code_forks_no_more_runs(stubs, own_server, tmp_path,
                                                              load):
    """Its modules and sys.path would be the runs': stale code. Said once in its log."""
    address, launcher = own_server
    launcher.stdout.readline()  # the worker's working directory
    first = client(stubs, address, "exit", "0", cwd=tmp_path)
    assert json.loads(first.communicate(timeout=30)[0].splitlines()[0])["forked"]
    launcher.send_signal(load)
    assert launcher.stdout.readline().strip() == "loaded"
    for _ in range(2):
        process = client(stubs, address, "exit", "0", cwd=tmp_path)
        out, err = process.communicate(timeout=30)
        assert not json.loads(out.splitlines()[0])["forked"] and process.returncode == 0
    launcher.kill()
    assert launcher.communicate()[1].count("a flow's code was loaded in the worker") == 1


@pytest.mark.live
def test_an_ended_run_leaves_no_process_beside_the_worker(stubs, own_server, tmp_path):
    address, launcher = own_server
    for _ in range(2):
        process = client(stubs, address, "exit", "0", cwd=tmp_path)
        process.communicate(timeout=30)
        assert process.returncode == 0
    deadline = time.monotonic() + 10
    while children(launcher.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children(launcher.pid) == []  # sessions reaped, nothing resident between runs


@pytest.mark.live
def test_a_run_handling_sigterm_does_not_stop_the_worker(stubs, own_server, tmp_path):
    """The worker's loop wakes on signals through a socket its fork inherits: a run's own
    SIGTERM handler (Prefect's engine installs one) must not write to it."""
    address, launcher = own_server
    process = client(stubs, address, "sleep", "handle", cwd=tmp_path)
    started(process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 143
    time.sleep(0.5)
    assert launcher.poll() is None, launcher.stdout.read()
    again = client(stubs, address, "exit", "0", cwd=tmp_path)
    assert json.loads(again.communicate(timeout=30)[0].splitlines()[0])["forked"]


@pytest.mark.live
def test_a_run_ends_with_its_own_exit_calls_not_the_workers(stubs, own_server, tmp_path):
    """The worker's finalizers are not the run's: ProcessWorker's per-run TemporaryDirectory
    finalizers deleted the working directories of the runs in progress beside it."""
    address, launcher = own_server
    workers_directory = Path(launcher.stdout.readline().strip())
    process = client(stubs, address, "exit", "0", cwd=tmp_path)
    out, err = process.communicate(timeout=30)
    run = json.loads(out.splitlines()[0])
    assert process.returncode == 0 and run["forked"]
    assert "the run's exit call" in out and "the run's thread exit call" in out, (out, err)
    assert "the run's log handler closed" in out
    assert "the worker's exit call" not in out and "the worker's atexit call" not in out
    assert workers_directory.is_dir() and not Path(run["own"]).exists()


@pytest.mark.live
def test_a_run_writes_its_output_while_a_worker_thread_holds_stderr(stubs, tmp_path):
    for address, _launcher in serving(stubs, "stuck"):
        time.sleep(0.5)  # the writer thread has filled the pipe and holds the lock
        process = client(stubs, address, "exit", "0", cwd=tmp_path)
        out, err = process.communicate(timeout=30)
        assert json.loads(out.splitlines()[0])["forked"] and "on stderr" in err


POOL = {"workers": [{"name": "etl", "flowRunCommand": FORK_COMMAND}]}


def test_workers_of_a_forking_pool_start_the_server_and_ship_the_client():
    stack = planned(POOL)
    worker = stack.service("worker-etl")
    assert worker.command[:2] == ("python", WORKER_PATH) and "--fork-server" in worker.command
    shipped = {u.path: u.content for u in worker.uploads}
    assert shipped[FORK_COMMAND.split()[1]] == FLOW_RUN_SOURCE.read_text()
    assert f"'{FORK_COMMAND}'" in stack.service("pool-etl").command[-1]  # the pool's command


@pytest.mark.parametrize("command", ["python -m prefect.engine", None])
def test_workers_of_other_pools_start_no_server(command):
    worker = planned({"workers": [{"name": "etl", "flowRunCommand": command}]}
                     ).service("worker-etl")
    assert "--fork-server" not in worker.command
    shipped = [u.path for u in worker.uploads]
    assert WORKER_PATH in shipped and FORK_COMMAND.split()[1] not in shipped
    assert not worker_launch.forks_flow_runs(command)
