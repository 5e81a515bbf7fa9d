"""Plain data describing what to run: the contract between Prefect knowledge and a backend.

Nothing here imports Pulumi. A backend (Docker today, Kubernetes later) turns a `StackPlan`
into resources; `python -m components.render` prints it; the live tests run it as processes.
Secrets appear only as `SecretText` templates naming config keys, so a plan can be printed,
diffed and tested without ever holding a secret value.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import bcrypt

from components.routes import Route

# `${key}` or `${key|filter}`; `$${` is an escaped, literal `${`.
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([A-Za-z][A-Za-z0-9_]*)(?:\|([a-z]+))?\}")
BCRYPT_COST = 10  # ≈0.08 s per check; Caddy's default 14 makes every login take ≈1.2 s


@dataclass(frozen=True)
class SecretText:
    """A value built from secrets: `${key}` is the secret at config key `key`.

    Filters escape for where the value lands: `|url` (inside a URL), `|sql` (a SQL string
    literal), `|conf` (a double-quoted config string), `|bcrypt` (a bcrypt hash, for proxy
    basic auth; salted per stack and key so the hash is stable across runs), `|asyncpg` (a
    PostgreSQL URL with the asyncpg driver Prefect's server needs).
    """

    template: str

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(self.template)
                                   if m.group(1)))

    def render(self, values: Mapping[str, str], salt_scope: str = "") -> str:
        def substitute(match: re.Match[str]) -> str:
            key, filt = match.group(1), match.group(2)
            if key is None:
                return "${"
            return apply_filter(values[key], filt, f"{salt_scope}/{key}")

        return _PLACEHOLDER.sub(substitute, self.template)

    def redacted(self) -> str:
        return _PLACEHOLDER.sub(
            lambda m: f"<secret:{m.group(1)}>" if m.group(1) else "${", self.template)


def file_content(template: str) -> str | SecretText:
    """A user's file: a SecretText when it names config keys, else the text with `$${`
    unescaped (so the same escape works whether or not the file holds secrets)."""
    text = SecretText(template)
    return text if text.keys else text.render({})


def apply_filter(value: str, filt: str | None, salt_scope: str) -> str:
    from urllib.parse import quote

    if filt is None:
        return value
    if filt == "url":
        return quote(value, safe="")
    if filt == "sql":
        return value.replace("'", "''")
    if filt == "conf":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if filt == "bcrypt":
        return bcrypt_hash(value, salt_scope)
    if filt == "asyncpg":
        return asyncpg_url(value)
    raise ValueError(f"unknown secret filter `{filt}`")


def asyncpg_url(url: str) -> str:
    """A managed database's URL as providers hand it out (`postgres://`, `postgresql://`)
    with the driver Prefect's server needs (`postgresql+asyncpg://`); other schemes as given."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme):]
    return url


@functools.lru_cache(maxsize=256)  # deterministic and deliberately slow: hash each once
def bcrypt_hash(password: str, salt_scope: str) -> str:
    """bcrypt with a salt derived from the password and its scope (stack/key).

    A random salt would change the hash, and so the proxy's config file and container, on
    every `pulumi up`. Deriving it keeps the hash stable while still differing per stack.
    """
    digest = hashlib.sha256(f"{salt_scope}\0{password}".encode()).digest()[:16]
    salt = b"$2b$%02d$" % BCRYPT_COST + _bcrypt_b64(digest)
    return bcrypt.hashpw(password.encode(), salt).decode()


def _bcrypt_b64(data: bytes) -> bytes:
    alphabet = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    bits = int.from_bytes(data, "big") << 4  # 128 bits -> 132 bits = 22 six-bit digits
    return bytes(alphabet[(bits >> (6 * (21 - i))) & 63] for i in range(22))


EnvValue = str | SecretText


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 5
    start_period_s: int = 20


Zone = Literal["public", "app", "data"]


@dataclass(frozen=True)
class Probe:
    """How any backend tells that a workload works, without Docker's `CMD`/`CMD-SHELL` forms:
    an HTTP GET on the workload's own port, or a command (argv) run inside it.

    `ready_path` is a stricter HTTP check for "may receive traffic" (Prefect's `/ready`
    fails while the database is unreachable; `/health` only says the process is up).
    """

    http_path: str | None = None
    port: int | None = None
    command: tuple[str, ...] | None = None
    ready_path: str | None = None
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 5
    start_period_s: int = 20


@dataclass(frozen=True)
class Mount:
    target: str
    volume: str | None = None  # logical volume name (see StackPlan.volumes)
    host_path: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class PublishedPort:
    internal: int
    external: int
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class FileUpload:
    path: str
    content: str | SecretText
    executable: bool = False


def replica_names(prefix: str, name: str, replicas: int) -> list[str]:
    """Container names of a service's replicas; on a shared network each is a DNS name of
    its own (the service name resolves to any of them)."""
    if replicas == 1:
        return [f"{prefix}-{name}"]
    return [f"{prefix}-{name}-{i}" for i in range(1, replicas + 1)]


ComponentKind = Literal[
    "Database", "PrefectServer", "WorkerPool", "AppApi", "Redis", "Service", "SetupJob",
    "ReverseProxy", "Monitoring", "Backup",
]


@dataclass(frozen=True)
class ServiceSpec:
    """One container (or N identical replicas) and everything Docker needs to run it."""

    name: str  # DNS alias on the networks, and the container name's suffix
    component: ComponentKind
    image: str
    port: int | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None  # replaces the image's; () clears it
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    replicas: int = 1
    healthcheck: HealthCheck | None = None
    networks: tuple[str, ...] = ("app",)
    ports: tuple[PublishedPort, ...] = ()
    mounts: tuple[Mount, ...] = ()
    uploads: tuple[FileUpload, ...] = ()
    depends_on: tuple[str, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    memory_mb: int | None = None
    cpus: float | None = None
    one_shot: bool = False  # runs to completion once (setup jobs)
    wait_healthy: bool = False  # deployment waits for healthy before dependents start
    group: str = ""  # the component instance it belongs to (pool name, service name)
    # Backend-neutral view (components/neutral.py fills it; Docker reads the fields above):
    probe: Probe | None = None  # liveness (and readiness) in any backend's terms
    run_as: int | None = None  # a non-root uid the image is known to run under
    scratch: tuple[str, ...] = ()  # directories it writes besides volumes (read-only root fs)
    scratch_env: Mapping[str, str] = field(default_factory=dict)  # env that moves writes there

    @property
    def zone(self) -> Zone:
        """Where it sits: `public` (faces users), `data` (only the internal data network:
        databases and their jobs), `app` (everything else)."""
        if self.component == "ReverseProxy":
            return "public"
        return "data" if "app" not in self.networks else "app"

    @property
    def reaches_data(self) -> bool:
        """May open connections to the data zone (PostgreSQL, Redis)."""
        return "data" in self.networks

    @property
    def secret_keys(self) -> tuple[str, ...]:
        texts = [v for v in self.env.values() if isinstance(v, SecretText)]
        texts += [u.content for u in self.uploads if isinstance(u.content, SecretText)]
        return tuple(dict.fromkeys(k for t in texts for k in t.keys))


@dataclass(frozen=True)
class ImageBuild:
    """An image the stack builds from a Dockerfile it ships (components/dockerfiles/)."""

    tag: str  # what ServiceSpec.image names
    context: str  # the build context directory
    args: tuple[tuple[str, str], ...] = ()  # build args


@dataclass(frozen=True)
class NetworkSpec:
    name: str  # logical: "app" or "data"
    internal: bool  # no route out of the host: databases live here


@dataclass(frozen=True)
class VolumeSpec:
    name: str  # logical; Docker name is `<prefix>-<name>`
    holds_data: bool  # kept when the stack is destroyed in production


@dataclass(frozen=True)
class SecretSpec:
    """A secret the stack needs, at config key `key`."""

    key: str
    used_by: str  # config path that needs it, for error messages
    generatable: bool  # may be generated with pulumi-random when not set
    rotation: str | None = None  # secrets.rotation label: a new one generates a new value


@dataclass(frozen=True)
class StackPlan:
    prefix: str
    production: bool
    networks: tuple[NetworkSpec, ...]
    volumes: tuple[VolumeSpec, ...]
    services: tuple[ServiceSpec, ...]
    routes: tuple[Route, ...]
    secrets: tuple[SecretSpec, ...]
    ui_url: str
    api_url: str
    internal_api_url: str
    work_pools: tuple[str, ...]
    login: SecretText | None
    builds: tuple[ImageBuild, ...] = ()  # images built from shipped Dockerfiles

    def service(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def exposed_ports(self, name: str) -> tuple[int, ...]:
        """Ports others connect to: the main port and every routed port."""
        spec = self.service(name)
        ports = [spec.port] if spec.port else []
        ports += [r.port for r in self.routes if r.service == name and r.port]
        return tuple(sorted(set(ports)))
