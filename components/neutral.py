"""The backend-neutral half of each ServiceSpec: what a workload needs, in no backend's terms.

`plan.build_plan` passes every spec through `neutral_view`. Docker keeps reading the
Docker-shaped fields (health-check `CMD` lists, networks, uploads); Kubernetes reads these:
an HTTP or command probe (with Prefect's `/ready` for readiness), the non-root uid an image is
known to run under, and the directories a process writes to, which must be writable
`emptyDir`s once the root filesystem is read-only (prefect-helm's defaults).
"""

from __future__ import annotations

import dataclasses

from components.config import StackConfig
from components.scaleout import SCALE_OUT_REPOSITORY
from components.spec import HealthCheck, Probe, ServiceSpec

PREFECT_UID = 1001  # prefect-helm runs the official image as 1001 (runAsUser, fsGroup)
PREFECT_HOME = "/home/prefect"
PREFECT_UI_BUILD = "/ui_build"  # prefect-helm's uiConfig.prefectUiStaticDirectory
POSTGRES_DATA = "/var/lib/postgresql/data"
# Known images: the uid their processes run as, and where they write outside volumes.
ALPINE_POSTGRES_UID, DEBIAN_POSTGRES_UID, REDIS_UID = 70, 999, 999


def repository(image: str) -> str:
    """`prefecthq/prefect:3.8.8-python3.12` -> `prefecthq/prefect`."""
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.split("/")[-1] else name


def is_prefect(repo: str) -> bool:
    """The official image, or the stack's scale-out image built FROM it (scaleout.py)."""
    return repo in ("prefecthq/prefect", SCALE_OUT_REPOSITORY)


def probe_from_healthcheck(check: HealthCheck | None) -> Probe | None:
    """Docker's `CMD` is an argv and `CMD-SHELL` a shell line: both are a command probe."""
    if check is None or not check.test or check.test[0] == "NONE":
        return None
    kind, rest = check.test[0], check.test[1:]
    command = ("sh", "-c", rest[0]) if kind == "CMD-SHELL" else tuple(rest)
    return Probe(command=command, interval_s=check.interval_s, timeout_s=check.timeout_s,
                 retries=check.retries, start_period_s=check.start_period_s)


def http_probe(cfg: StackConfig, spec: ServiceSpec) -> tuple[str, int, str | None] | None:
    """(path, port, ready path) where the workload answers HTTP health requests."""
    from components import plan  # plan imports this module

    if spec.name == plan.SERVER:
        base = plan.api_path(cfg)
        return f"{base}/health", cfg.server.port, f"{base}/ready"
    if spec.component == "WorkerPool" and not spec.one_shot:
        return "/health", plan.WORKER_HEALTH_PORT, None
    check = None
    if spec.component == "AppApi" and cfg.api is not None:
        check = cfg.api.health_check.http
    elif spec.component == "Service":
        svc = next((s for s in cfg.services if s.name == spec.name), None)
        check = svc.health_check.http if svc is not None else None
    if check is None or (check.port or spec.port) is None:
        return None
    return check.path, check.port or spec.port or 0, None


def probe(cfg: StackConfig, spec: ServiceSpec) -> Probe | None:
    base = probe_from_healthcheck(spec.healthcheck)
    http = http_probe(cfg, spec)
    if http is None:
        return base
    path, port, ready = http
    timing = base or Probe()
    return dataclasses.replace(timing, http_path=path, port=port, ready_path=ready, command=None)


def run_as(spec: ServiceSpec) -> int | None:
    """The uid to run as: the configured `user`, or what the image is known to support.
    None (the image's own user) when packages are installed into the image at start."""
    if spec.user:
        uid = spec.user.split(":", 1)[0]
        return int(uid) if uid.isdigit() and uid != "0" else None
    repo = repository(spec.image)
    if is_prefect(repo):
        return None if "EXTRA_PIP_PACKAGES" in spec.env else PREFECT_UID
    if repo == "postgres":
        return ALPINE_POSTGRES_UID if "alpine" in spec.image else DEBIAN_POSTGRES_UID
    if repo == "redis":
        return REDIS_UID
    return None


def scratch(spec: ServiceSpec) -> tuple[tuple[str, ...], dict[str, str]]:
    """Writable directories and the env that points the process at them."""
    repo = repository(spec.image)
    mounted = {m.target for m in spec.mounts}
    dirs = ["/tmp"]
    env: dict[str, str] = {}
    if is_prefect(repo):
        dirs.append(PREFECT_HOME)
        env["HOME"] = PREFECT_HOME  # uid 1001 has no passwd entry; ~ would be /
        if spec.component == "PrefectServer" and not spec.one_shot:
            dirs.append(PREFECT_UI_BUILD)  # the UI is rebuilt for the base path at start
            env["PREFECT_SERVER_UI_STATIC_DIRECTORY"] = PREFECT_UI_BUILD
    elif repo == "postgres":
        dirs.append("/var/run/postgresql")
        if POSTGRES_DATA in mounted:
            # initdb must own PGDATA; a fresh volume's root is owned by root (fsGroup only).
            env["PGDATA"] = f"{POSTGRES_DATA}/pgdata"
    elif repo == "redis" and "/data" not in mounted:
        dirs.append("/data")  # `dir /data` in redis.conf, even without persistence
    return tuple(d for d in dirs if d not in mounted), env


def neutral_view(cfg: StackConfig, spec: ServiceSpec) -> ServiceSpec:
    dirs, env = scratch(spec)
    return dataclasses.replace(spec, probe=probe(cfg, spec), run_as=run_as(spec), scratch=dirs,
                               scratch_env=env)
