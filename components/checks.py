"""Rules across sections: combinations each field alone cannot refuse."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from components import backups, containernames, hygiene, jobs, monitoring, plan, scaleout, traefik
from components.config import DEFAULT_PREFECT_IMAGE, DatabaseAccess, StackConfig
from components.daemon import remote_daemon
from components.errors import Problem
from components.images import is_floating_major, is_pinned, is_prefect_2
from components.kubernetes import checks as kubernetes_checks
from components.routes import route_problems


def problems(cfg: StackConfig) -> list[Problem]:
    found = [*_database(cfg), *_server(cfg), *_names(cfg), *containernames.problems(cfg),
             *_references(cfg), *_ports(cfg),
             *_images(cfg), *_proxy(cfg), *_routes(cfg), *_secrets(cfg), *_ordering(cfg),
             *_redis_access(cfg), *kubernetes_checks.problems(cfg), *_connections(cfg),
             *_monitoring(cfg), *scaleout.problems(cfg), *_backups(cfg), *jobs.problems(cfg)]
    return list(dict.fromkeys(found))


def _workloads(cfg: StackConfig) -> Iterator[tuple[str, str, plan.Workload]]:
    """(config path, name, settings) of every user-declared container group."""
    for i, pool in enumerate(cfg.workers):
        yield f"workers[{i}]", pool.name, pool
    if cfg.api is not None:
        yield "api", cfg.api.name, cfg.api
    for i, svc in enumerate(cfg.services):
        yield f"services[{i}]", svc.name, svc
    for i, job in enumerate(cfg.setup_jobs):
        yield f"setupJobs[{i}]", job.name, job


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
    seen.update({name: "monitoring (monitoring.enabled)" for name in monitoring.service_names(cfg)})
    seen.update({name: "backups (backups.enabled)" for name in backups.service_names(cfg)})
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
    reserved_volumes = {"prefect-data", "postgres-data", "redis-data", "proxy-data", "proxy-config",
                        *monitoring.volume_names(cfg)}
    for path, _, owner in _workloads(cfg):
        for j, vol in enumerate(getattr(owner, "volumes", [])):
            if vol.name in reserved_volumes:
                yield Problem(f"{path}.volumes[{j}].name",
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
    remote = remote_daemon(cfg.docker.host, os.environ)
    relative = (f"a relative path is resolved on the machine running `pulumi up`, but {remote}; "
                "use an absolute path that exists on the Docker host (README: Remote Docker "
                "hosts)")
    for i, pool in enumerate(cfg.workers):
        if remote and pool.flow_code and pool.flow_code.host_path.startswith("./"):
            yield Problem(f"workers[{i}].flowCode.hostPath", relative)
    for path, _, owner in _workloads(cfg):
        for j, vol in enumerate(getattr(owner, "volumes", [])):
            if remote and vol.host_path and vol.host_path.startswith("./"):
                yield Problem(f"{path}.volumes[{j}].hostPath", relative)
    for path, owner in plan.routed_workloads(cfg):
        if owner.routes and "route" in owner.model_fields_set and owner.route is not None:
            yield Problem(f"{path}.routes", "set either `route` or `routes`, not both")
        for route_path, route in plan.workload_routes(owner, path):
            if route.port is None and owner.port is None:
                yield Problem(f"{route_path}.port", "a route needs the upstream port: set its "
                              "port or the service's port")
        check = owner.health_check.http
        if check is not None and check.port is None and owner.port is None:
            yield Problem(f"{path}.healthCheck.http.port", "an http check needs a port: "
                          "set healthCheck.http.port or the service's port")


def _ports(cfg: StackConfig) -> Iterator[Problem]:
    used: dict[tuple[str, int], str] = {}
    published: list[tuple[str, str, int]] = []
    if cfg.proxy.kind != "none":
        published.append(("proxy.httpPort", cfg.proxy.bind_address, cfg.proxy.http_port))
        if cfg.proxy.tls != "off":
            published.append(("proxy.httpsPort", cfg.proxy.bind_address, cfg.proxy.https_port))
        if cfg.proxy.kind == "traefik" and cfg.proxy.traefik.dashboard:  # see plan.proxy_spec
            published.append(("proxy.traefik.dashboard", "127.0.0.1", traefik.DASHBOARD_PORT))
    if cfg.server.publish is not None:
        published.append(("server.publish.hostPort", cfg.server.publish.host_ip,
                          cfg.server.publish.host_port))
    for owner_path, owner in plan.routed_workloads(cfg):
        published += [(f"{owner_path}.ports[{j}].host", p.host_ip, p.host)
                      for j, p in enumerate(owner.ports)]
        if owner.ports and owner.replicas > 1:
            yield Problem(f"{owner_path}.ports", "a service with host ports cannot have more "
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
    for owner_path, owner in plan.routed_workloads(cfg):
        if owner.ports:
            yield Problem(f"{owner_path}.ports", "production stacks publish only the proxy's "
                          "ports; give the service a route instead")


def _ordering(cfg: StackConfig) -> Iterator[Problem]:
    """`dependsOn` names something that exists and can be waited for, without cycles."""
    builtins = {plan.SERVER}
    if cfg.database.kind == "postgres":
        builtins.add(plan.POSTGRES)
    if cfg.redis.enabled:
        builtins.add(plan.REDIS)
    waitable = {s.name for s in cfg.services} | {j.name for j in cfg.setup_jobs}
    if cfg.api is not None:
        waitable.add(cfg.api.name)
    edges: dict[str, set[str]] = {}
    for path, name, owner in _workloads(cfg):
        for j, target in enumerate(owner.depends_on):
            if target not in waitable | builtins:
                yield Problem(f"{path}.dependsOn[{j}]", f"`{target}` is not a service, api or "
                              "setup job name, nor a built-in that exists in this stack "
                              f"(known: {', '.join(sorted(waitable | builtins))})")
            edges.setdefault(name, set()).add(target)
    for job in cfg.setup_jobs:
        for target in job.before:
            edges.setdefault(target, set()).add(job.name)
    cycle = _find_cycle(edges)
    if cycle:
        start = cycle[0]
        path = next(p for p, name, _ in _workloads(cfg) if name == start)
        yield Problem(f"{path}.dependsOn", "dependency cycle: " + " -> ".join(cycle) +
                      "; remove one of these dependsOn/before entries")


def _find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle in a directed graph, as a path back to its start (`a -> b -> a`); [] if none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return []
        for nxt in sorted(edges.get(node, ())):
            found = visit(nxt, path + [node])
            if found:
                return found
        done.add(node)
        return []

    for node in sorted(edges):
        found = visit(node, [])
        if found:
            return found
    return []


def _redis_access(cfg: StackConfig) -> Iterator[Problem]:
    if cfg.redis.enabled:
        return
    for path, _, owner in _workloads(cfg):
        if owner.redis is not None:
            yield Problem(f"{path}.redis", "needs the stack's Redis: set redis.enabled: true")


def _images(cfg: StackConfig) -> Iterator[Problem]:
    images = [("server.image", cfg.server.image), ("proxy.image", cfg.proxy.image_ref),
              ("database.postgres.image", cfg.database.postgres.image),
              ("redis.image", cfg.redis.image)]
    if cfg.monitoring.enabled:
        mon = cfg.monitoring
        images += [("monitoring.exporter.image", mon.exporter.image),
                   ("monitoring.prometheus.image", mon.prometheus.image),
                   ("monitoring.grafana.image", mon.grafana.image)]
    images += [(f"workers[{i}].image", p.image) for i, p in enumerate(cfg.workers) if p.image]
    if cfg.api is not None:
        images.append(("api.image", cfg.api.image))
    images += [(f"services[{i}].image", s.image) for i, s in enumerate(cfg.services)]
    images += [(f"setupJobs[{i}].image", j.image) for i, j in enumerate(cfg.setup_jobs)]
    prefect_images = [("server.image", cfg.server.image)]
    prefect_images += [(f"workers[{i}].image", p.image) for i, p in enumerate(cfg.workers) if p.image]
    for path, image in prefect_images:
        if is_prefect_2(image):
            yield Problem(path, f"image `{image}` is Prefect 2; this stack configures Prefect 3 "
                          "(Prefect 2 would silently ignore its settings): use "
                          f"{DEFAULT_PREFECT_IMAGE}")
    for path, image in images:
        if not is_pinned(image):
            yield Problem(path, f"image `{image}` is not pinned; use an exact tag such as "
                          "`name:1.2.3` (never `latest` or no tag)")
        elif cfg.production and is_floating_major(image):
            yield Problem(path, f"image `{image}` uses a moving tag; production stacks need an "
                          "exact version tag (with a dot, e.g. 3.8.8-python3.12) or a digest")


def _proxy(cfg: StackConfig) -> Iterator[Problem]:
    proxy = cfg.proxy
    if cfg.server.public_url is not None and "//0.0.0.0" in cfg.server.public_url:
        yield Problem("server.publicUrl", "0.0.0.0 is a bind address, not a place a browser "
                      "can reach; use the host name or IP users type")
    if proxy.kind != "none" and proxy.domain == "0.0.0.0":
        yield Problem("proxy.domain", "0.0.0.0 is a bind address, not a place a browser can "
                      "reach; use the host name users type (bindAddress: 0.0.0.0 listens on "
                      "every interface)")
    if proxy.kind == "none":
        if cfg.server.publish is None and cfg.target.kind == "docker":
            yield Problem("server.publish", "proxy.kind: none serves Prefect on a host port; "
                          "set server.publish.hostPort (e.g. 4200)")
        if cfg.server.public_url is None:
            yield Problem("server.publicUrl", "proxy.kind: none publishes Prefect directly; set "
                          "the URL browsers use to reach it (e.g. http://prefect.lan:4200), or "
                          "the UI would call the server's bind address")
        if proxy.security_headers and "security_headers" in proxy.model_fields_set:
            yield Problem("proxy.securityHeaders", "proxy.kind: none has no proxy to add the "
                          "security headers and Prefect's Content-Security-Policy (Prefect sends "
                          "neither); set proxy.kind caddy or traefik, or remove the key")
        return
    if proxy.tls == "acme":
        # On Kubernetes the ClusterIssuer holds the ACME account (components/kubernetes/checks.py)
        if proxy.acme.email is None and cfg.target.kind == "docker":
            yield Problem("proxy.acme.email", f"tls: acme needs an ACME account e-mail: "
                          f"{proxy.kind} registers with Let's Encrypt under it")
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


def _connections(cfg: StackConfig) -> Iterator[Problem]:
    """Prefect's pools at their fullest must fit in the stack's PostgreSQL, or a busy stack
    fails with `too many clients` instead of queueing in the pool."""
    if cfg.database.kind != "postgres":
        return
    needed = hygiene.connections_needed(cfg)
    limit = cfg.database.postgres.max_connections
    if needed > limit:
        yield Problem("database.postgres.maxConnections",
                      f"{needed} connections needed ({hygiene.connection_breakdown(cfg)}; each "
                      "Prefect process × (database.pool.size + maxOverflow), one session for "
                      f"db-init and backup) but max_connections is "
                      f"{limit}; raise maxConnections to at least {needed} or lower "
                      "database.pool.size / maxOverflow or server.replicas")


def _monitoring(cfg: StackConfig) -> Iterator[Problem]:
    if not cfg.monitoring.enabled:
        return
    if cfg.proxy.kind == "none":
        yield Problem("monitoring.enabled", "Prometheus and Grafana are served behind the "
                      "stack login on the proxy; set proxy.kind to caddy or traefik")
    if cfg.target.kind == "kubernetes":
        yield Problem("monitoring.enabled", "the monitoring section is for Docker (Prometheus "
                      "scrapes each server container by name); on Kubernetes use "
                      "kube-prometheus-stack and the prometheus-prefect-exporter Helm chart, "
                      "and remove this section")


STACK_VOLUMES = ("prefect-data", "postgres-data", "redis-data", "proxy-data", "proxy-config")


def _backups(cfg: StackConfig) -> Iterator[Problem]:
    settings = cfg.backups
    if not settings.enabled:
        return
    if cfg.database.kind == "external":
        yield Problem("backups.enabled", "backups dump the stack's own databases and "
                      "database.kind is external; back a managed database up with its "
                      "provider's snapshots (or turn backups off)")
    if settings.max_age_minutes is not None and settings.max_age_minutes <= settings.interval_minutes:
        yield Problem("backups.maxAgeMinutes", f"must be more than backups.intervalMinutes "
                      f"({settings.interval_minutes}), or the health check fails between two "
                      "scheduled dumps")
    if settings.host_path is None and settings.volume in STACK_VOLUMES + tuple(
            monitoring.volume_names(cfg)):
        yield Problem("backups.volume", f"`{settings.volume}` is one of the stack's own volumes; "
                      "dumps need their own (the default is `backups`)")


def rotation_problems(cfg: StackConfig, sources: Mapping[str, str]) -> list[Problem]:
    """`secrets.rotation` names secrets this stack generates (else a label would silently
    rotate nothing)."""
    found = []
    for key in cfg.secrets.rotation:
        path = f"secrets.rotation.{key}"
        if sources.get(key) == "config":
            found.append(Problem(path, f"`{key}` is set in the stack config, not generated; "
                                 f"rotate it with `pulumi config set --secret {key} <new value>` "
                                 "and remove this entry"))
        elif key not in sources:
            generated = sorted(k for k, source in sources.items() if source == "generate")
            found.append(Problem(path, f"`{key}` is not a secret this stack uses; generated "
                                 f"secrets: {', '.join(generated) or 'none'}"))
    return found
