"""The emitted containers as a docker-compose file (`./render dev --format compose`).

For compose users: diff a stack against the compose file they know, or leave with one. Every
container input that compose can express is carried over; what only Pulumi does is kept as
`x-` extension keys (volumes kept on `pulumi destroy`). Literal `$` is escaped as `$$`
(compose interpolates `${...}`); secrets become compose variables through `hide`. An image the
stack builds (docker.Image from a shipped Dockerfile) gets a `build:` beside its `image:` name
on every service that runs it, so `docker compose up` builds it instead of pulling a name no
registry has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components.dryrun import BUILT_IMAGE, EmittedContainer, EmittedNetwork, EmittedVolume, Evaluation


def _escape(value: Any, hide: Callable[[str], str]) -> Any:
    """Escape `$` in every string, then let `hide` put in secret variables (which must
    interpolate)."""
    if isinstance(value, str):
        return hide(value.replace("$", "$$"))
    if isinstance(value, dict):
        return {k: _escape(v, hide) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v, hide) for v in value]
    return value


def config_name(container: str, path: str) -> str:
    return f"{container}-{re.sub(r'[^A-Za-z0-9._-]+', '-', path).strip('-')}"


def depends_condition(dependency: EmittedContainer) -> str:
    if dependency.one_shot:
        return "service_completed_successfully"
    return "service_healthy" if dependency.wait_healthy else "service_started"


def image_builds(evaluation: Evaluation, project_dir: Path) -> dict[str, dict[str, Any]]:
    """Image name -> compose `build:` of every docker.Image the program registered. Pulumi
    resolves the build context against the project directory; the compose file names it
    absolutely (like bind mounts), so it builds wherever the file is saved."""
    builds = {}
    for image in evaluation.of_type(BUILT_IMAGE):
        build = image.plain["build"]
        context = (project_dir / build["context"]).resolve()
        dockerfile = (project_dir / build.get("dockerfile", f"{build['context']}/Dockerfile"))
        builds[image.plain["imageName"]] = {
            "context": str(context),
            "dockerfile": str(dockerfile.resolve().relative_to(context)),
            "args": dict(sorted((build.get("args") or {}).items()))}
    return builds


def service(c: EmittedContainer, by_name: dict[str, EmittedContainer],
            builds: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"container_name": c.name, "hostname": c.hostname, "image": c.image}
    if builds and c.image in builds:
        entry["build"] = builds[c.image]  # compose builds it and tags it `image`
    optional: dict[str, Any] = {
        "command": list(c.command) if c.command else None,
        "entrypoint": None if c.entrypoint is None else list(c.entrypoint),
        "user": c.user,
        "working_dir": c.working_dir,
        "environment": dict(sorted(c.env.items())),
        "ports": [f"{ip}:{host}:{inner}" for ip, host, inner in c.ports],
        "volumes": [{"type": m.kind, "source": m.source, "target": m.target,
                     "read_only": m.read_only} for m in c.mounts],
        "networks": {net: {"aliases": list(aliases)} for net, aliases in c.networks.items()},
        "healthcheck": {"test": list(c.healthcheck), **c.health_timing}
        if c.healthcheck else None,
        "depends_on": {d: {"condition": depends_condition(by_name[d])} for d in c.depends_on},
        "restart": c.restart,
        "mem_limit": f"{c.memory_mb}m" if c.memory_mb else None,
        "cpus": float(c.cpus) if c.cpus else None,
        "logging": {"driver": c.log_driver, "options": dict(c.log_opts)} if c.log_driver else None,
        "security_opt": list(c.security_opts),
        "stop_grace_period": f"{c.stop_grace_seconds}s" if c.stop_grace_seconds else None,
        "labels": dict(sorted(c.labels.items())),
        "configs": [{"source": config_name(c.name, path), "target": path}
                    for path in c.uploads],
        "x-pulumi-inputs": c.other_inputs,
    }
    # an empty entrypoint is meaningful (it clears the image's), so it is kept
    entry.update({k: v for k, v in optional.items()
                  if v is not None and (v not in ([], {}) or k == "entrypoint")})
    return entry


def compose_document(project: str, containers: list[EmittedContainer],
                     networks: list[EmittedNetwork], volumes: list[EmittedVolume],
                     hide: Callable[[str], str],
                     builds: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A compose file with the same containers, networks and volumes, and the builds of the
    images the stack builds itself."""
    by_name = {c.name: c for c in containers}
    document: dict[str, Any] = {
        "name": project,
        "services": {c.name: service(c, by_name, builds) for c in containers},
        "networks": {n.name: {"name": n.name, "driver": n.driver or "bridge",
                              "internal": n.internal} for n in networks},
        "volumes": {v.name: {"name": v.name, "x-kept-on-destroy": v.kept_on_destroy}
                    for v in volumes},
    }
    configs = {config_name(c.name, path): {"content": content}
               for c in containers for path, content in c.uploads.items()}
    if configs:
        document["configs"] = configs
    return _escape(document, hide)
