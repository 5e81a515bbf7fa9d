"""prefect-stack flow-run start: the worker's flow-run command, each run a fork of the worker.

Why: a flow run's process spends most of its start importing Prefect (`python -m
prefect.engine`: ≈2 s of CPU on a 2-core host, README "Benchmark"), and that is the bulk of
trigger -> COMPLETED. The worker (prefect_worker.py, `--fork-server`) has imported the same
modules already, so its runs are forks of it, served from its own event loop. A fork shares
the worker's pages while the run lasts; nothing stays resident between runs (a server forked
beside the worker kept ≈27 MiB per worker: the pages the running worker writes to, copied).
Per flow run:

- the worker starts this file as the run's command (the pool's `command` default), a client
  that imports only the standard library;
- the client connects to the worker (address in PREFECT_STACK_FORK_SERVER, set by the
  launcher), hands over its arguments, environment, working directory and its stdin/stdout/
  stderr (the worker's pipes: the run's output goes to the worker as it would from its own
  child), and gets the run's pid;
- the worker's loop forks a session process (between two callbacks, so nothing of the
  worker's is half done on that thread), which forks the run: it takes the client's
  environment (Prefect's settings and logging re-read from it), directory and descriptors,
  fresh stdio and an empty context, and runs `prefect.engine` as `python -m` would, without
  importing it again; it ends with its own exit calls (Prefect's services send their last
  events and logs), never returning into the worker's code. The worker's other threads'
  state in the fork is Prefect's own fork handlers' to reset (Prefect 3.8.8 resets its
  services, event-loop threads and their locks after a fork);
- the session reports the run's exit status, which the client exits with (a run killed by a
  signal: the client dies by the same signal); SIGTERM/SIGINT the client gets (Prefect's
  cancellation, `docker stop`) are relayed to the run; a client that dies (SIGKILL, the
  worker's last resort) takes the run with it, as its own process would have died.

Never a lost or doubled run: the run waits for the session's go, given only once its pid is in
the client's socket; a session that dies takes its run with it (parent-death signal). Without
a server (unreachable, a worker started without `--fork-server`, the run's start-up variables
differ from the worker's, or the worker declines: an import in progress in one of its threads,
or a flow's code loaded in it since it started serving) the client becomes `python -m
prefect.engine` itself (exec, same pid).

    python prefect_flow_run.py [ENGINE ARGUMENTS]
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import select
import signal
import socket
import struct
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

ADDRESS_ENV = "PREFECT_STACK_FORK_SERVER"
ENGINE = "prefect.engine"  # the module a flow run runs, as `python -m ENGINE ARGS`
RELAYED = (signal.SIGTERM, signal.SIGINT)
# Read once by Python at start-up: a run that sets them differently needs its own interpreter.
# So are the C library's (the loader's, malloc's) and TZ (libraries cache the local zone).
STARTUP_PREFIXES = ("PYTHON", "LC_", "LD_", "MALLOC_")
STARTUP_NAMES = ("LANG", "LANGUAGE", "GLIBC_TUNABLES", "TZ")
PID, FALLBACK, EXIT = b"P", b"F", b"X"
_HEADER = struct.Struct("!I")
_REPLY = struct.Struct("!ci")


@dataclass(frozen=True)
class Request:
    """What a fresh `python -m prefect.engine` would have got from the worker."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    ignore_sigint: bool = False  # as a child of a shell's background job inherits it


def socket_name(address: str) -> str:
    """`@name` (an environment variable cannot hold the NUL) is Linux's abstract `\\0name`:
    no file to leave behind, visible only inside the container's network namespace."""
    return "\0" + address[1:] if address.startswith("@") else address


def encode(request: Request) -> bytes:
    body = json.dumps({"argv": request.argv, "env": request.env, "cwd": request.cwd,
                       "ignore_sigint": request.ignore_sigint}).encode()
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Request:
    data = json.loads(body)
    return Request(list(data["argv"]), dict(data["env"]), str(data["cwd"]),
                   bool(data["ignore_sigint"]))


def startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES) or k in STARTUP_NAMES}


def servable(request: Request, server_env: dict[str, str]) -> bool:
    """Whether a fork of the server behaves as a fresh interpreter started with request.env."""
    return startup_env(request.env) == startup_env(server_env)


def die_like(returncode: int) -> None:
    """Exit as the run did: by its signal (the worker reads -N), else with its code."""
    if returncode < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's cannot be set, nor needs to
            signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    sys.exit(returncode if returncode >= 0 else 1)


# ---- the client (the flow run's command) ----------------------------------------------


def _read_reply(sock: socket.socket) -> tuple[bytes, int] | None:
    data = b""
    while len(data) < _REPLY.size:
        chunk = sock.recv(_REPLY.size - len(data))
        if not chunk:
            return None
        data += chunk
    kind, value = _REPLY.unpack(data)
    return kind, value


def request_run(address: str, request: Request) -> tuple[socket.socket, int] | None:
    """Hand the run to the server; (connection, run pid), or None where the server cannot
    run it (then nothing was started)."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_name(address))
        payload = encode(request)
        sent = socket.send_fds(sock, [payload], [0, 1, 2])
        if sent < len(payload):  # sendall(b"") still sends: EPIPE once the server replied
            sock.sendall(payload[sent:])
        reply = _read_reply(sock)
    except OSError as err:
        print(f"prefect-stack: fork server unreachable ({err}); starting the engine",
              file=sys.stderr, flush=True)
        return None
    if reply is None or reply[0] != PID:
        why = ("it closed the connection" if reply is None else "it cannot run this environment"
               if reply[1] == 0 else "the worker cannot fork now (see its log)")
        print(f"prefect-stack: fork server: {why}; starting the engine", file=sys.stderr,
              flush=True)
        sock.close()
        return None
    return sock, reply[1]


def client(argv: list[str]) -> None:
    pending: list[int] = []
    connection: list[socket.socket] = []

    def relay(signum: int, _frame: object) -> None:
        if not connection:
            pending.append(signum)
            return
        with contextlib.suppress(OSError):  # a dead session is reported below
            connection[0].send(bytes([signum]))

    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    for signum in RELAYED:
        if not (ignored and signum == signal.SIGINT):
            signal.signal(signum, relay)
    address = os.environ.get(ADDRESS_ENV)
    started = None
    if address:
        started = request_run(address, Request(argv, dict(os.environ), os.getcwd(), ignored))
    if started is None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # from here on as the engine itself
        if not ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in pending:  # stopped before it started
            die_like(-signum)
        os.execv(sys.executable, [sys.executable, "-m", ENGINE, *argv])
    sock, _pid = started
    connection.append(sock)
    for signum in pending:
        sock.send(bytes([signum]))
    reply = _read_reply(sock)
    if reply is None or reply[0] != EXIT:
        print("prefect-stack: the flow run's session process died", file=sys.stderr, flush=True)
        sys.exit(1)
    die_like(reply[1])


# ---- the server (the worker's own event loop) ------------------------------------------


def serve_in(loop: asyncio.AbstractEventLoop) -> str:
    """Serve flow runs from the caller's running event loop (the worker's); return the
    address for ADDRESS_ENV. Each client gets a session forked from this process, so a run
    shares the pages of the worker it runs beside and nothing stays resident between runs."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = f"@prefect-stack-flow-runs-{os.getpid()}-{os.urandom(6).hex()}"
    listener.bind(socket_name(address))
    listener.listen(64)
    listener.setblocking(False)
    loop.add_reader(listener.fileno(), _accept, loop, listener, dict(os.environ), Baseline())
    return address


class Baseline:
    """The worker as it started serving. A fork runs as a fresh `python -m prefect.engine`
    only while the worker has loaded nothing since but the image's installed code: Prefect's
    hook runner loads a crashed or cancelled run's flow inside the worker (its pull steps,
    its directory on sys.path, its modules left in sys.modules), and a fork would run that
    stale code instead of the run's."""

    def __init__(self) -> None:
        import sysconfig

        self.path = list(sys.path)
        self.modules = set(sys.modules)
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                 *sysconfig.get_paths().values()}
        self.installed = tuple(os.path.join(root, "") for root in roots)
        self.stale = ""  # once set, runs are never forked again from this worker
        self.told: set[str] = set()

    def foreign_code(self) -> str:
        """Why the worker's code is no longer the image's, or ""."""
        if self.stale:
            return self.stale
        if sys.path != self.path:
            self.stale = "a flow's code was loaded in the worker (sys.path changed)"
            return self.stale
        for name in set(sys.modules) - self.modules:
            origin = getattr(sys.modules.get(name), "__file__", None)
            if origin and not os.path.realpath(origin).startswith(self.installed) \
                    and not origin.startswith(self.installed):
                self.stale = f"a flow's code was loaded in the worker (module {name} from {origin})"
                return self.stale
            self.modules.add(name)
        return ""

    def tell_once(self, why: str) -> None:
        if why not in self.told:
            self.told.add(why)
            print(f"prefect-stack: flow runs start as `python -m {ENGINE}`, not forked from "
                  f"the worker, while {why}", file=sys.stderr, flush=True)


def import_in_progress() -> str:
    """Why a fork now could hang on a lock no thread of it would ever release, or "": an
    import another thread of the worker is in (its module locks, the import lock) or Prefect
    loading a flow's code (importtools' sys.path lock, held while the module runs)."""
    import _imp
    import importlib._bootstrap as bootstrap

    if _imp.lock_held() or bootstrap._module_locks:  # type: ignore[attr-defined]
        return "a thread of the worker is importing a module"
    importtools = sys.modules.get("prefect.utilities.importtools")
    lock = getattr(importtools, "_sys_path_lock", None)
    if lock is not None and lock.locked():
        return "Prefect is loading a flow's code in the worker"
    return ""


def _decline(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    """Tell the client to start the engine itself; what it sends (its descriptors) is read
    and dropped from the loop until it hangs up (closed earlier, its send would fail)."""
    with contextlib.suppress(OSError):
        conn.sendall(_REPLY.pack(FALLBACK, 1))
    conn.setblocking(False)

    def drain() -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        for fd in fds:
            os.close(fd)
        if not data:
            loop.remove_reader(conn.fileno())
            conn.close()

    loop.add_reader(conn.fileno(), drain)


def _accept(loop: asyncio.AbstractEventLoop, listener: socket.socket,
            server_env: dict[str, str], baseline: Baseline) -> None:
    """Fork a session for a waiting client, on the loop's own thread: between two callbacks
    nothing of the worker's is half done there; the child never returns into the loop."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
        return
    why = baseline.foreign_code() or import_in_progress()
    if why:
        baseline.tell_once(why)
        _decline(loop, conn)
        return
    conn.setblocking(True)
    # Until the child has let go of the loop's signal wake-up socket, a signal it got would
    # be read by the worker's loop as the worker's own (SIGTERM: the worker would stop).
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, RELAYED)
    try:
        pid = os.fork()
    except OSError:
        pid = -1  # the client reads a closed connection and starts the engine itself
    if pid == 0:
        _forked_session(conn, listener, server_env, masked)
    signal.pthread_sigmask(signal.SIG_SETMASK, masked)
    conn.close()
    if pid > 0:
        _reap_when_done(loop, pid)


def _reap_when_done(loop: asyncio.AbstractEventLoop, pid: int) -> None:
    """Collect an ended session (its CPU time then counts in the worker's, as a child's)."""
    ended = os.pidfd_open(pid)

    def reap() -> None:
        loop.remove_reader(ended)
        os.close(ended)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    loop.add_reader(ended, reap)


def _forked_session(conn: socket.socket, listener: socket.socket, server_env: dict[str, str],
                    masked: set[signal.Signals]) -> None:
    """The session process (and, in its fork, the run's); never returns into the loop."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for signum in RELAYED:  # the worker's stop is the run's, relayed, not the session's
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        listener.close()
        run = contextvars.Context().run(session, conn, server_env)
        code = contextvars.Context().run(run_to_exit, *run)  # a fresh interpreter's context
    except BaseException:  # whatever happens, never back into the worker
        traceback.print_exc()
    finally:
        end(code)


def _receive(conn: socket.socket) -> tuple[Request, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
    while len(data) < _HEADER.size:
        data += conn.recv(65536)
    (length,) = _HEADER.unpack(data[:_HEADER.size])
    body = data[_HEADER.size:]
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise EOFError("client went away mid-request")
        body += chunk
    return decode(body), fds


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def session(conn: socket.socket, server_env: dict[str, str]) -> tuple[Request, list[int]]:
    """One run: fork it, tell the client its pid, relay signals, report how it ended.
    Returns only in the run's process."""
    try:
        if not _same_user(conn):
            os._exit(1)
        request, fds = _receive(conn)
        if len(fds) != 3 or not servable(request, server_env):
            conn.sendall(_REPLY.pack(FALLBACK, 0))
            os._exit(0)
    except (OSError, EOFError, ValueError, KeyError):
        os._exit(1)
    go_r, go_w = os.pipe()
    session_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        _die_with_parent()
        if os.getppid() != session_pid or os.read(go_r, 1) != b"1":
            os._exit(1)  # the session died before the client had the pid: never run
        os.close(go_r)
        conn.close()
        return request, fds
    os.close(go_r)
    for fd in fds:
        os.close(fd)
    try:
        conn.sendall(_REPLY.pack(PID, pid))
    except OSError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os._exit(1)
    os.write(go_w, b"1")
    os.close(go_w)
    returncode = supervise(conn, pid)
    with contextlib.suppress(OSError):
        conn.sendall(_REPLY.pack(EXIT, returncode))
    os._exit(0)


def supervise(conn: socket.socket, pid: int) -> int:
    """Relay the client's signals to the run until it ends; kill it if the client dies."""
    ended = os.pidfd_open(pid)
    watched: list[object] = [conn, ended]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if ended in ready:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        data = conn.recv(64)
        if not data:  # the client was killed: so is its run
            os.kill(pid, signal.SIGKILL)
            watched.remove(conn)
        for signum in data:
            os.kill(pid, signum)


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def run_engine(request: Request, fds: list[int]) -> None:
    """Become `python -m prefect.engine ARGS` started by the client's worker: its
    descriptors, directory and environment, Prefect's settings and logging re-read."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    fresh_stdio()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN if request.ignore_sigint
                  else signal.default_int_handler)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    import tempfile

    tempfile.tempdir = None  # read from TMPDIR again, as a fresh interpreter's first use does
    no_event_loop()
    sys.argv = ["-m", *request.argv]
    sys.path[0] = request.cwd
    reload_prefect_settings()
    import runpy

    sys.modules.pop(ENGINE, None)  # run as __main__, as `-m` does, not the imported module
    runpy.run_module(ENGINE, run_name="__main__", alter_sys=True)
    raise SystemExit(0)


_INHERITED: list[object] = []  # the worker's stdio objects, kept so they never flush here


def fresh_stdio() -> None:
    """sys.stdin/stdout/stderr on descriptors 0-2 as the interpreter's start makes them. The
    inherited ones may hold the worker's unwritten output, or a lock another thread of the
    worker held at the fork."""
    import io

    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        _INHERITED.append(old)
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        new = io.TextIOWrapper(buffered, encoding=old.encoding, errors=old.errors,
                               line_buffering=old.line_buffering,
                               write_through=getattr(old, "write_through", False))
        setattr(sys, name, new)
        setattr(sys, f"__{name}__", new)


def run_to_exit(request: Request, fds: list[int]) -> int:
    """Run the engine in this fork of the worker and end it as the interpreter would (the
    run's exit calls: Prefect's services send their last events and logs); the exit status,
    negative for the signal to die by. Nothing of the worker's outlives this."""
    import gc

    gc.freeze()  # the worker's objects: never traversed here, so never copied by a collection
    _forget_the_workers_exit_calls()
    try:
        run_engine(request, fds)
        code = 0
    except SystemExit as stop:
        code = _status(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT  # as Python ends on an uncaught KeyboardInterrupt
    except BaseException:  # reported as the interpreter would, then exit 1
        traceback.print_exc()
        code = 1
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]  # thread exit calls, thread joins
    except Exception:  # as the interpreter: reported, the exit status stays the run's
        traceback.print_exc()
    atexit._run_exitfuncs()
    return code


def _forget_the_workers_exit_calls() -> None:
    """The worker's own Prefect services were reset in this child by Prefect's fork handlers
    (they drain nothing here, and a reset one fails its drain): not the run's to drain. Nor
    are the worker's other exit calls the run's: its finalizers clean up the worker's objects
    (ProcessWorker keeps a TemporaryDirectory per run in progress: run at this run's exit,
    they deleted the working directories of the runs beside it). The run keeps what a fresh
    interpreter's exit runs: logging's flush (its handlers are the run's: setup_logging
    replaced the worker's) and the finalizers of objects it makes itself."""
    import atexit
    import logging
    import threading
    import weakref

    calls = threading._threading_atexits  # type: ignore[attr-defined]
    calls[:] = [call for call in calls if not _drains_a_reset_service(call)]
    atexit._clear()
    atexit.register(logging.shutdown)  # as importing logging registers it
    for inherited in list(weakref.finalize._registry):  # type: ignore[attr-defined]
        inherited.atexit = False
    weakref.finalize._registered_with_atexit = False  # the run's first one registers again


def _drains_a_reset_service(call: object) -> bool:
    """A thread exit call (a partial up to Python 3.12, a lambda from 3.13) of a Prefect
    service's method: Prefect's fork handlers reset those (`reset_for_fork`)."""
    targets = [getattr(call, "func", None)]
    for cell in getattr(call, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            targets.append(cell.cell_contents)
    return any(hasattr(getattr(target, "__self__", None), "reset_for_fork")
               for target in targets)


def _status(code: object) -> int:
    """sys.exit's argument as the process's exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end(code: int) -> None:
    """Leave this fork without running anything of the worker's: by the signal or the code.
    Only a run's own stdio is flushed: the worker's may hold its output, or a lock."""
    for stream in (sys.stdout, sys.stderr) if _INHERITED else ():
        with contextlib.suppress(Exception):
            stream.flush()
    if code < 0:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF if code >= 0 else 1)


def no_event_loop() -> None:
    """No event loop, running or set, as in a fresh interpreter: what Python 3.12 resets in
    a fork itself; on 3.11 asyncio.get_event_loop() returned the worker's running loop."""
    import asyncio

    asyncio.set_event_loop_policy(None)
    asyncio._set_running_loop(None)


def drop_the_workers_extra_handlers() -> None:
    """Prefect's setup_logging adds the `prefect.extra` handlers (its API log handler) to the
    PREFECT_LOGGING_EXTRA_LOGGERS and never removes the ones there: without this, those
    loggers would send each record twice, through the worker's handlers and the run's."""
    import logging

    inherited = logging.getLogger("prefect.extra").handlers
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.name != "prefect.extra":
            for handler in [h for h in logger.handlers if h in inherited]:
                logger.removeHandler(handler)


def reload_prefect_settings() -> None:
    """What `import prefect` reads from the environment, read again from the run's."""
    import prefect.context
    import prefect.logging.configuration as logging_configuration

    prefect.context.refresh_global_settings_context()
    logging_configuration.PROCESS_LOGGING_CONFIG = {}
    drop_the_workers_extra_handlers()
    logging_configuration.setup_logging()


if __name__ == "__main__":
    client(sys.argv[1:])
