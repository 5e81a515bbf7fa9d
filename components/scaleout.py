"""Scale-out and self-healing knowledge: several API replicas behind a balancing proxy, the
image that carries prefect-redis, and the guard that restarts a Prefect process whose
background services stopped recording (README "High availability and outages").

Pure functions over the typed config, applied by `plan.server_specs` and `plan.prefect_route`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from components import outage, shipped
from components.config import StackConfig
from components.errors import Problem
from components.images import image_tag
from components.spec import EnvValue, FileUpload, HealthCheck, ImageBuild, ServiceSpec, replica_names

# prefect-redis release verified against each Prefect release the stack supports (installed
# together and run live: tests/test_live_ha.py). A Prefect version missing here is refused
# for several replicas rather than paired with a guessed prefect-redis.
PREFECT_REDIS_FOR_PREFECT = {"3.8.8": "0.3.0"}
SCALE_OUT_REPOSITORY = "prefect-stack/prefect-redis"
# Relative to the project directory, where Pulumi runs the program (an absolute path would
# differ per checkout and rebuild the image).
DOCKERFILE_DIR = "components/dockerfiles/prefect-redis"
# `python -OO` (no docstrings, no asserts) for the long-running scale-out processes; the
# Dockerfile's compileall uses the same level. `server.env` may set PYTHONOPTIMIZE: "" to undo.
OPTIMIZE_ENV = {"PYTHONOPTIMIZE": "2"}
GUARD = "prefect_guard.py"
GUARD_SOURCE = shipped.source(GUARD)
GUARD_PATH = shipped.path(GUARD)



def scale_out(cfg: StackConfig) -> bool:
    return cfg.server.replicas > 1


def prefect_version(image: str) -> str | None:
    """`prefecthq/prefect:3.8.8-python3.12` -> `3.8.8` (None for digests and other tags)."""
    tag = image_tag(image)
    if tag is None or tag == "@digest":
        return None
    return tag.split("-", 1)[0]


def server_image(cfg: StackConfig) -> str:
    """The image API replicas and services run: the Prefect image, plus prefect-redis
    (pinned, installed at build time) when several processes share Redis."""
    if not scale_out(cfg):
        return cfg.server.image
    build = image_build(cfg)
    return build.tag if build else cfg.server.image


def image_build(cfg: StackConfig) -> ImageBuild | None:
    version = prefect_version(cfg.server.image)
    if not scale_out(cfg) or version not in PREFECT_REDIS_FOR_PREFECT:
        return None
    redis_version = PREFECT_REDIS_FOR_PREFECT[version]
    tag = f"{SCALE_OUT_REPOSITORY}:{image_tag(cfg.server.image)}-prefect-redis-{redis_version}"
    return ImageBuild(tag=tag, context=DOCKERFILE_DIR,
                      args=(("PREFECT_IMAGE", cfg.server.image),
                            ("PREFECT_REDIS_VERSION", redis_version)))


def problems(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.server.services_replicas > 1 and not scale_out(cfg):
        yield Problem("server.servicesReplicas",
                      f"{cfg.server.services_replicas} services containers need "
                      "server.replicas > 1 (one server runs its services in-process); set "
                      "servicesReplicas: 1 or raise server.replicas")
    version = prefect_version(cfg.server.image)
    if scale_out(cfg) and version not in PREFECT_REDIS_FOR_PREFECT:
        known = ", ".join(f"prefecthq/prefect:{v}-python3.12" for v in PREFECT_REDIS_FOR_PREFECT)
        yield Problem("server.image",
                      f"{cfg.server.replicas} replicas need prefect-redis built into the image, "
                      f"and no prefect-redis release is verified for Prefect {version or '?'} "
                      f"({cfg.server.image}); use one of: {known}")


# --- the guard: a process whose recording stopped fails its check and restarts -------------

def guard_uploads() -> tuple[FileUpload, ...]:
    """The guard and the lean-imports module it imports from beside itself (the sweeper,
    which it also imports, comes with components/outage.py)."""
    return (shipped.upload(GUARD), shipped.upload(shipped.LEAN))


def guarded(command: tuple[str, ...]) -> tuple[str, ...]:
    return ("python", GUARD_PATH, "run", *command)


def guard_healthcheck(health_url: str | None) -> HealthCheck:
    """HTTP health (API containers) and the guard's service status: a dead event persister
    or task-run recorder turns the container unhealthy (and the guard exits it 10 s later)."""
    url = (health_url,) if health_url else ()
    return HealthCheck(("CMD", "python", GUARD_PATH, "check", *url),
                       interval_s=10, timeout_s=5, retries=3, start_period_s=30)


def harden(cfg: StackConfig, spec: ServiceSpec, health_url: str | None) -> ServiceSpec:
    """A Prefect server or services container, guarded, in the scale-out image when needed,
    and the settings that let it ride out a database outage."""
    # `server.env` overrides every default here
    env: dict[str, EnvValue] = {**outage.sweeper_env(), **outage.server_env(),
                                **lean_env(cfg, spec), **spec.env}
    changes: dict[str, object] = {"image": server_image(cfg), "env": env}
    if not spec.one_shot:
        assert spec.command is not None
        changes.update(command=guarded(spec.command), uploads=(*spec.uploads, *guard_uploads(),
                                                                   outage.sweeper_upload()),
                       healthcheck=guard_healthcheck(health_url))
    return dataclasses.replace(spec, **changes)


def lean_env(cfg: StackConfig, spec: ServiceSpec) -> dict[str, EnvValue]:
    """Scale-out API replicas and services processes run as `python -OO`: docstrings are
    about 12 MiB of each process's ~150 MiB of imported Prefect, and nothing they do reads
    them (README "Memory at rest"). Only in the scale-out image, whose Dockerfile compiles
    that bytecode once; the one-shot migrate job and a single server run as Prefect ships."""
    return dict(OPTIMIZE_ENV) if scale_out(cfg) and not spec.one_shot else {}


def harden_all(cfg: StackConfig, specs: list[ServiceSpec], health_url: str,
               services_name: str) -> list[ServiceSpec]:
    """The services containers have no HTTP port: their check reads the guard status only."""
    return [dataclasses.replace(harden(cfg, s, None), replicas=cfg.server.services_replicas)
            if s.name == services_name else harden(cfg, s, health_url) for s in specs]


# --- the proxy: every API replica an upstream -------------------------------------------------

def api_upstreams(cfg: StackConfig, server: str) -> tuple[str, ...]:
    """Each replica's container name (Docker DNS resolves it on the shared network): one
    upstream per replica, so the proxy balances, health-checks and retries per replica
    instead of dialling whichever address the shared alias resolves to first."""
    if not scale_out(cfg):
        return ()
    return tuple(replica_names(cfg.network.name_prefix, server, cfg.server.replicas))
