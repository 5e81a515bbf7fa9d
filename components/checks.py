"""Rules across sections: combinations each field alone cannot refuse."""

from __future__ import annotations

from collections.abc import Iterator

from components import plan
from components.config import DatabaseAccess, StackConfig
from components.errors import Problem
from components.images import is_floating_major, is_pinned
from components.routes import route_problems


def problems(cfg: StackConfig) -> list[Problem]:
    found = [*_database(cfg), *_server(cfg), *_names(cfg), *_references(cfg), *_ports(cfg),
             *_images(cfg), *_proxy(cfg), *_routes(cfg), *_secrets(cfg)]
    return list(dict.fromkeys(found))


def _database(cfg: StackConfig) -> Iterator[Problem]:
    db = cfg.database
    names = [d.name for d in db.postgres.databases]
    for i, name in enumerate(names):
        if name in names[:i]:
            yield Problem(f"database.postgres.databases[{i}].name",
                          f"database `{name}` is listed twice")
    if db.kind == "postgres" and db.prefect_database not in names:
        yield Problem("database.prefectDatabase",
                      f"`{db.prefect_database}` is not one of database.postgres.databases "
                      f"({', '.join(names)})")
    for path, access in _database_accesses(cfg):
        if db.kind != "postgres":
            yield Problem(path, "needs database.kind: postgres (the stack's own PostgreSQL); "
                          f"database.kind is {db.kind}")
        elif access.name not in names:
            yield Problem(f"{path}.name", f"`{access.name}` is not one of "
                          f"database.postgres.databases ({', '.join(names)})")


def _database_accesses(cfg: StackConfig) -> Iterator[tuple[str, DatabaseAccess]]:
    for i, pool in enumerate(cfg.workers):
        if pool.database:
            yield f"workers[{i}].database", pool.database
    if cfg.api is not None and cfg.api.database:
        yield "api.database", cfg.api.database
    for i, svc in enumerate(cfg.services):
        if svc.database:
            yield f"services[{i}].database", svc.database
    for i, job in enumerate(cfg.setup_jobs):
        if job.database:
            yield f"setupJobs[{i}].database", job.database


def _server(cfg: StackConfig) -> Iterator[Problem]:
    replicas = cfg.server.replicas
    if replicas > 1 and cfg.database.kind == "sqlite":
        yield Problem("server.replicas", f"SQLite allows exactly 1 server replica (got "
                      f"{replicas}); use database.kind: postgres for more")
    if replicas > 1 and not cfg.redis.enabled:
        yield Problem("server.replicas", f"{replicas} replicas need redis.enabled: true "
                      "(events and the scheduler docket are shared through Redis)")


def _names(cfg: StackConfig) -> Iterator[Problem]:
    """Every container group needs a distinct DNS name on the network."""
    seen: dict[str, str] = {name: "the stack itself" for name in plan.RESERVED_NAMES}
    entries = [(f"workers[{i}].name", f"worker-{p.name}", p.name) for i, p in enumerate(cfg.workers)]
    entries += [(f"workers[{i}].name", f"pool-{p.name}", p.name) for i, p in enumerate(cfg.workers)]
    if cfg.api is not None:
        entries.append(("api.name", cfg.api.name, cfg.api.name))
    entries += [(f"services[{i}].name", s.name, s.name) for i, s in enumerate(cfg.services)]
    entries += [(f"setupJobs[{i}].name", j.name, j.name) for i, j in enumerate(cfg.setup_jobs)]
    for path, dns_name, shown in entries:
        if dns_name in seen:
            yield Problem(path, f"name `{shown}` is already used by {seen[dns_name]}")
        else:
            seen[dns_name] = path
    reserved_volumes = {"prefect-data", "postgres-data", "redis-data", "proxy-data", "proxy-config"}
    for i, svc in enumerate(cfg.services):
        for j, vol in enumerate(svc.volumes):
            if vol.name in reserved_volumes:
                yield Problem(f"services[{i}].volumes[{j}].name",
                              f"volume name `{vol.name}` is reserved by the stack")


def _references(cfg: StackConfig) -> Iterator[Problem]:
    targets = {p.name for p in cfg.workers} | {s.name for s in cfg.services}
    if cfg.api is not None:
        targets.add(cfg.api.name)
    for i, job in enumerate(cfg.setup_jobs):
        for j, name in enumerate(job.before):
            if name not in targets:
                yield Problem(f"setupJobs[{i}].before[{j}]", f"`{name}` is not a worker pool, "
                              f"api or service name (known: {', '.join(sorted(targets)) or 'none'})")
    remote = cfg.docker.host is not None and not cfg.docker.host.startswith("unix://")
    for i, pool in enumerate(cfg.workers):
        if remote and pool.flow_code and pool.flow_code.host_path.startswith("./"):
            yield Problem(f"workers[{i}].flowCode.hostPath", "a relative path is resolved on "
                          "this machine, but docker.host is remote; use an absolute path that "
                          "exists on the Docker host")
    for i, svc in enumerate(cfg.services):
        if svc.route is not None and svc.route.port is None and svc.port is None:
            yield Problem(f"services[{i}].route.port", "a route needs the upstream port: set "
                          "route.port or the service's port")
        check = svc.health_check.http
        if check is not None and check.port is None and svc.port is None:
            yield Problem(f"services[{i}].healthCheck.http.port", "an http check needs a port: "
                          "set healthCheck.http.port or the service's port")


def _ports(cfg: StackConfig) -> Iterator[Problem]:
    used: dict[tuple[str, int], str] = {}
    published: list[tuple[str, str, int]] = []
    if cfg.proxy.kind != "none":
        published.append(("proxy.httpPort", cfg.proxy.bind_address, cfg.proxy.http_port))
        if cfg.proxy.tls != "off":
            published.append(("proxy.httpsPort", cfg.proxy.bind_address, cfg.proxy.https_port))
    if cfg.server.publish is not None:
        published.append(("server.publish.hostPort", cfg.server.publish.host_ip,
                          cfg.server.publish.host_port))
    for i, svc in enumerate(cfg.services):
        published += [(f"services[{i}].ports[{j}].host", p.host_ip, p.host)
                      for j, p in enumerate(svc.ports)]
        if svc.ports and svc.replicas > 1:
            yield Problem(f"services[{i}].ports", "a service with host ports cannot have more "
                          "than 1 replica (each replica would bind the same host port)")
    for path, ip, port in published:
        for other_ip in {ip, "0.0.0.0"} | ({"127.0.0.1"} if ip == "0.0.0.0" else set()):
            if (other_ip, port) in used:
                yield Problem(path, f"host port {port} is already published by "
                              f"{used[(other_ip, port)]}")
                break
        used[(ip, port)] = path
    if not cfg.production:
        return
    if cfg.server.publish is not None and cfg.proxy.kind != "none":
        yield Problem("server.publish", "production stacks publish only the proxy's ports; "
                      "reach Prefect through the proxy (or set proxy.kind: none)")
    for i, svc in enumerate(cfg.services):
        if svc.ports:
            yield Problem(f"services[{i}].ports", "production stacks publish only the proxy's "
                          "ports; give the service a route instead")


def _images(cfg: StackConfig) -> Iterator[Problem]:
    images = [("server.image", cfg.server.image), ("proxy.image", cfg.proxy.image_ref),
              ("database.postgres.image", cfg.database.postgres.image),
              ("redis.image", cfg.redis.image)]
    images += [(f"workers[{i}].image", p.image) for i, p in enumerate(cfg.workers) if p.image]
    if cfg.api is not None:
        images.append(("api.image", cfg.api.image))
    images += [(f"services[{i}].image", s.image) for i, s in enumerate(cfg.services)]
    images += [(f"setupJobs[{i}].image", j.image) for i, j in enumerate(cfg.setup_jobs)]
    for path, image in images:
        if not is_pinned(image):
            yield Problem(path, f"image `{image}` is not pinned; use an exact tag such as "
                          "`name:1.2.3` (never `latest` or no tag)")
        elif cfg.production and is_floating_major(image):
            yield Problem(path, f"image `{image}` uses a moving tag; production stacks need an "
                          "exact version tag (with a dot, e.g. 3.8.8-python3.12) or a digest")


def _proxy(cfg: StackConfig) -> Iterator[Problem]:
    proxy = cfg.proxy
    if proxy.kind == "none":
        if cfg.server.publish is None:
            yield Problem("server.publish", "proxy.kind: none serves Prefect on a host port; "
                          "set server.publish.hostPort (e.g. 4200)")
        return
    if proxy.tls == "acme":
        if proxy.acme.email is None:
            yield Problem("proxy.acme.email", "tls: acme needs an ACME account e-mail")
        if proxy.domain == "localhost" or "." not in proxy.domain:
            yield Problem("proxy.domain", f"tls: acme needs a public domain name (got "
                          f"`{proxy.domain}`); use tls: internal for local stacks")
    if proxy.kind == "caddy" and proxy.traefik.dashboard:
        yield Problem("proxy.traefik.dashboard", "the dashboard is a Traefik feature; "
                      "proxy.kind is caddy")


def _routes(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.proxy.kind == "none":
        return
    yield from route_problems(plan.declared_routes(cfg), plan.reserved_prefixes(cfg))


def _secrets(cfg: StackConfig) -> Iterator[Problem]:
    auth = cfg.server.basic_auth
    routes_with_auth = [r.source for r in plan.declared_routes(cfg) if r.auth]
    if routes_with_auth and not auth.enabled and cfg.proxy.kind != "none":
        yield Problem(routes_with_auth[0], "route auth uses the stack login; turn on "
                      "server.basicAuth.enabled (it sets the username and password source)")
    if cfg.proxy.traefik.dashboard and not auth.enabled:
        yield Problem("proxy.traefik.dashboard", "the dashboard is served behind the stack "
                      "login; turn on server.basicAuth.enabled")
