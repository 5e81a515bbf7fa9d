"""Prefect knowledge: which containers a stack needs and how each must be configured.

Every function here takes the typed config and returns plain data (see `spec`). The facts
encoded (env names, sub-path settings, health checks without curl, migrations, pool
creation) come from running Prefect 3.8.8; see the README's "What the tests prove".
"""

from __future__ import annotations

import dataclasses
import shlex

from components import (
    backups,
    caddy,
    csp,
    hygiene,
    monitoring,
    outage,
    postgres_memory,
    postgres_start,
    scaleout,
    traefik,
    tuning,
    worker_launch,
)
from components.config import (
    AppApiSettings,
    DatabaseAccess,
    FileSettings,
    HealthCheckSettings,
    PostgresDatabase,
    Resources,
    RouteSettings,
    ServiceSettings,
    SetupJobSettings,
    StackConfig,
    VolumeSettings,
    WorkerPoolSettings,
)
from components.neutral import neutral_view
from components.routes import Route
from components.spec import (
    EnvValue,
    FileUpload,
    HealthCheck,
    Mount,
    NetworkSpec,
    PublishedPort,
    SecretSpec,
    SecretText,
    ServiceSpec,
    StackPlan,
    VolumeSpec,
    file_content,
)

# The user-declared containers: each may get env, secrets, a database or Redis URL, files.
Workload = WorkerPoolSettings | AppApiSettings | ServiceSettings | SetupJobSettings

SERVER = "prefect-server"
SERVICES = "prefect-services"
MIGRATE = "prefect-migrate"
POSTGRES = "postgres"
DB_INIT = "db-init"
REDIS = "redis"
PROXY = "proxy"
WORKER_HEALTH_PORT = 8080
RESERVED_NAMES = (SERVER, SERVICES, MIGRATE, POSTGRES, DB_INIT, REDIS, PROXY)


# --- paths and URLs ---------------------------------------------------------------------

def ui_base(cfg: StackConfig) -> str:
    """The UI's public path without a trailing slash ("" at the root)."""
    return cfg.server.base_path.rstrip("/")


def api_path(cfg: StackConfig) -> str:
    """Where the Prefect API lives, for the proxy *and* inside the network: once the base
    path moves, `/api` is gone for every client."""
    return f"{ui_base(cfg)}/api"


def internal_api_url(cfg: StackConfig) -> str:
    return f"http://{SERVER}:{cfg.server.port}{api_path(cfg)}"


def public_origin(cfg: StackConfig) -> str:
    """Where users reach the stack: `server.publicUrl`, else the proxy's origin (a stack
    without a proxy must declare publicUrl; see checks)."""
    if cfg.server.public_url is not None:
        return cfg.server.public_url
    proxy = cfg.proxy
    if proxy.tls == "off":
        port = "" if proxy.http_port == 80 else f":{proxy.http_port}"
        return f"http://{proxy.domain}{port}"
    port = "" if proxy.https_port == 443 else f":{proxy.https_port}"
    return f"https://{proxy.domain}{port}"


def ui_api_url(cfg: StackConfig) -> str:
    """What the UI in the browser calls. Unset, Prefect 3.8.8 builds it from
    PREFECT_SERVER_API_HOST and tells every browser to call http://0.0.0.0:4200/api. Behind a
    proxy a relative path works from any host name; without one the declared public URL."""
    if cfg.proxy.kind == "none":
        return f"{cfg.server.public_url}{api_path(cfg)}"
    return api_path(cfg)


def python_http_probe(url: str) -> tuple[str, ...]:
    """Prefect's image has no curl; its Python has urllib."""
    return ("CMD", "python", "-c",
            f"import urllib.request as u; u.urlopen('{url}', timeout=3)")


def http_probe(url: str, tool: str) -> tuple[str, ...]:
    if tool == "python":
        return python_http_probe(url)
    if tool == "wget":
        return ("CMD", "wget", "-q", "-O", "/dev/null", url)
    return ("CMD", "curl", "-fsS", "-o", "/dev/null", url)


def health_from_settings(check: HealthCheckSettings, port: int | None) -> HealthCheck:
    if check.http is not None:
        probe_port = check.http.port or port
        test = http_probe(f"http://localhost:{probe_port}{check.http.path}", check.http.probe)
    else:
        test = tuple(check.command or ())
    return HealthCheck(test, check.interval_seconds, check.timeout_seconds, check.retries,
                       check.start_period_seconds)


def networks(needs_data: bool) -> tuple[str, ...]:
    """Everyone joins `app`; only who talks to PostgreSQL or Redis joins the internal `data`."""
    return ("app", "data") if needs_data else ("app",)


def workload_networks(owner: Workload) -> tuple[str, ...]:
    return networks(owner.internal_network or owner.database is not None
                    or owner.redis is not None)


def mounts(volumes: list[VolumeSettings]) -> tuple[Mount, ...]:
    return tuple(Mount(target=v.mount_path, volume=v.name, host_path=v.host_path,
                       read_only=v.read_only) for v in volumes)


def uploads(files: list[FileSettings]) -> tuple[FileUpload, ...]:
    return tuple(FileUpload(f.path, file_content(f.content), executable=f.mode == "0755")
                 for f in files)


def limits(cfg: StackConfig, own: Resources) -> dict[str, int | float | None]:
    defaults = cfg.resources.defaults
    return {"memory_mb": own.memory_mb or defaults.memory_mb, "cpus": own.cpus or defaults.cpus}


# --- secrets ------------------------------------------------------------------------------

def auth_string(cfg: StackConfig) -> SecretText:
    auth = cfg.server.basic_auth
    return SecretText(f"{auth.username}:${{{auth.password_secret}}}")


def prefect_client_env(cfg: StackConfig) -> dict[str, EnvValue]:
    """What any Prefect client (worker, CLI, app) needs to reach this server."""
    env: dict[str, EnvValue] = {"PREFECT_API_URL": internal_api_url(cfg), **outage.client_env()}
    if cfg.server.basic_auth.enabled:
        env["PREFECT_API_AUTH_STRING"] = auth_string(cfg)
    return env


def database_owner(cfg: StackConfig, name: str) -> PostgresDatabase:
    return next(d for d in cfg.database.postgres.databases if d.name == name)


def database_url(cfg: StackConfig, access: DatabaseAccess) -> SecretText:
    db = database_owner(cfg, access.name)
    return SecretText(f"{access.scheme}://{db.owner}:${{{db.password_key}|url}}"
                      f"@{POSTGRES}:5432/{db.name}")


def prefect_database_url(cfg: StackConfig) -> EnvValue:
    kind = cfg.database.kind
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{cfg.database.sqlite.path}"
    if kind == "external":
        return SecretText(f"${{{cfg.database.external.url_secret}|asyncpg}}")
    return database_url(cfg, DatabaseAccess(name=cfg.database.prefect_database,
                                            scheme="postgresql+asyncpg"))


def redis_url(cfg: StackConfig, db: int) -> SecretText:
    return SecretText(f"redis://:${{{cfg.redis.password_secret}|url}}@{REDIS}:6379/{db}")


def app_env(cfg: StackConfig, owner: Workload) -> dict[str, EnvValue]:
    """A user container's env: plain values, named secrets, derived DB and Redis URLs."""
    out: dict[str, EnvValue] = dict(owner.env)
    out.update({name: SecretText(f"${{{key}}}") for name, key in owner.secret_env.items()})
    if owner.database is not None:
        out[owner.database.env] = database_url(cfg, owner.database)
    if owner.redis is not None:
        out[owner.redis.env] = redis_url(cfg, owner.redis.db)
    return out


def workload_depends(cfg: StackConfig, owner: Workload) -> tuple[str, ...]:
    """What a user container waits for: db-init when it uses the stack's PostgreSQL, Redis
    when it uses Redis, and whatever it names in `dependsOn`."""
    depends: tuple[str, ...] = ()
    if owner.database is not None:
        depends += database_dependencies(cfg)
    if owner.redis is not None:
        depends += (REDIS,)
    return tuple(dict.fromkeys(depends + tuple(owner.depends_on)))


# --- the services -------------------------------------------------------------------------

def scale_out(cfg: StackConfig) -> bool:
    return cfg.server.replicas > 1


def redis_env(cfg: StackConfig) -> dict[str, EnvValue]:
    """prefect-redis settings for several API replicas (field notes: scale-out)."""
    password = cfg.redis.password_secret
    return {
        "PREFECT_SERVER_EVENTS_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": REDIS,
        "PREFECT_REDIS_MESSAGING_PORT": "6379",
        "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_REDIS_MESSAGING_PASSWORD": SecretText(f"${{{password}}}"),
        "PREFECT_SERVER_DOCKET_URL": redis_url(cfg, 1),
    }


def prefect_server_env(cfg: StackConfig) -> dict[str, EnvValue]:
    server = cfg.server
    env: dict[str, EnvValue] = {
        "PREFECT_SERVER_API_HOST": "0.0.0.0",
        "PREFECT_SERVER_API_PORT": str(server.port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_SERVER_LEVEL": server.log_level,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_database_url(cfg),
        # Migrations run in the prefect-migrate job when several processes share the DB.
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false" if scale_out(cfg) else "true",
    }
    env["PREFECT_SERVER_UI_API_URL"] = ui_api_url(cfg)
    if ui_base(cfg):
        # With the UI API URL, all three, or the UI loads assets from /assets (field notes).
        env["PREFECT_SERVER_UI_SERVE_BASE"] = ui_base(cfg)
        env["PREFECT_SERVER_API_BASE_PATH"] = api_path(cfg)
    if cfg.database.kind != "sqlite":
        env["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] = str(cfg.database.pool.size)
        env["PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW"] = str(cfg.database.pool.max_overflow)
    env.update(hygiene.hygiene_env(cfg))
    env.update(monitoring.metrics_env(cfg))
    if server.basic_auth.enabled:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string(cfg)
    if scale_out(cfg):
        env.update(redis_env(cfg))
    env.update(server.env)
    return env


def server_healthcheck(cfg: StackConfig) -> HealthCheck:
    return HealthCheck(python_http_probe(f"http://localhost:{cfg.server.port}{api_path(cfg)}/health"),
                       interval_s=10, timeout_s=5, retries=6, start_period_s=30)


def database_dependencies(cfg: StackConfig) -> tuple[str, ...]:
    if cfg.database.kind == "postgres":
        return (DB_INIT,)
    return ()


def server_specs(cfg: StackConfig) -> list[ServiceSpec]:
    server = cfg.server
    env = prefect_server_env(cfg)
    needs_data = cfg.database.kind == "postgres" or scale_out(cfg)
    server_networks = networks(needs_data)
    ports: tuple[PublishedPort, ...] = ()
    if server.publish is not None:
        ports = (PublishedPort(server.port, server.publish.host_port, server.publish.host_ip),)
    data_mounts: tuple[Mount, ...] = ()
    if cfg.database.kind == "sqlite":
        data_mounts = (Mount(target=cfg.database.sqlite.path.rsplit("/", 1)[0], volume="prefect-data"),)
    depends = database_dependencies(cfg) + ((MIGRATE, REDIS) if scale_out(cfg) else ())
    common = dict(image=server.image, env=env, networks=server_networks, depends_on=depends,
                  **limits(cfg, server.resources))
    api_command = ("prefect", "server", "start") + (("--no-services",) if scale_out(cfg) else ())
    specs = [ServiceSpec(name=SERVER, component="PrefectServer", port=server.port,
                         command=api_command, replicas=server.replicas,
                         healthcheck=server_healthcheck(cfg), ports=ports, mounts=data_mounts,
                         wait_healthy=True, group="server", **common)]
    if scale_out(cfg):
        specs.insert(0, ServiceSpec(name=MIGRATE, component="PrefectServer",
                                    command=("prefect", "server", "database", "upgrade", "-y"),
                                    one_shot=True, group="server",
                                    **{**common, "depends_on": database_dependencies(cfg)}))
        specs.append(ServiceSpec(
            name=SERVICES, component="PrefectServer",
            command=("prefect", "server", "services", "start"),
            healthcheck=HealthCheck(("CMD-SHELL", "kill -0 1"), start_period_s=30),
            group="server", **{**common, "depends_on": depends + (SERVER,)}))
    health = f"http://localhost:{server.port}{api_path(cfg)}/health"
    return scaleout.harden_all(cfg, specs, health, SERVICES)


def pool_setup_command(pool: WorkerPoolSettings) -> tuple[str, ...]:
    """Create (or update) the pool with its type and concurrency limit before workers start."""
    name = shlex.quote(pool.name)
    script = f"prefect work-pool create {name} --type {pool.type} --overwrite"
    if pool.flow_run_command is not None:
        script = (f"{tuning.pool_template_pipe(pool.flow_run_command)} | {script} "
                  "--base-job-template /dev/stdin")
    if pool.concurrency_limit is not None:
        script += f" && prefect work-pool set-concurrency-limit {name} {pool.concurrency_limit}"
    else:
        script += f" && prefect work-pool clear-concurrency-limit {name}"
    return ("sh", "-c", script)


def worker_specs(cfg: StackConfig, pool: WorkerPoolSettings, extra_depends: tuple[str, ...]
                 ) -> list[ServiceSpec]:
    image = pool.image or cfg.server.image
    client = prefect_client_env(cfg)
    setup = ServiceSpec(name=f"pool-{pool.name}", component="WorkerPool", image=image,
                        command=pool_setup_command(pool), env=client, one_shot=True,
                        depends_on=(SERVER,), group=pool.name, **limits(cfg, pool.resources))
    env: dict[str, EnvValue] = {
        **client,
        "PREFECT_WORKER_QUERY_SECONDS": _seconds(pool.query_interval_seconds),
        "PREFECT_WORKER_PREFETCH_SECONDS": _seconds(pool.prefetch_seconds),
        "PREFECT_WORKER_WEBSERVER_PORT": str(WORKER_HEALTH_PORT),
    }
    if pool.extra_pip_packages:
        env["EXTRA_PIP_PACKAGES"] = " ".join(pool.extra_pip_packages)
    env.update(app_env(cfg, pool))
    code_mounts: tuple[Mount, ...] = ()
    workdir = None
    if pool.flow_code is not None:
        code = pool.flow_code
        code_mounts = (Mount(target=code.mount_path, host_path=code.host_path, read_only=code.read_only),)
        workdir = code.mount_path
    worker = ServiceSpec(
        name=f"worker-{pool.name}", component="WorkerPool", image=image, port=WORKER_HEALTH_PORT,
        command=worker_launch.worker_command(pool.name, pool.type, pool.flow_run_command),
        env=env, replicas=pool.replicas, networks=workload_networks(pool),
        mounts=code_mounts + mounts(pool.volumes),
        uploads=(*uploads(pool.files), *worker_launch.worker_uploads(pool.flow_run_command)),
        working_dir=workdir,
        healthcheck=HealthCheck(python_http_probe(f"http://localhost:{WORKER_HEALTH_PORT}/health"),
                                start_period_s=60 if pool.extra_pip_packages else 30),
        depends_on=tuple(dict.fromkeys((SERVER, setup.name, *workload_depends(cfg, pool),
                                        *extra_depends))),
        group=pool.name, **limits(cfg, pool.resources))
    return [setup, worker] if pool.replicas else [setup]


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def postgres_specs(cfg: StackConfig) -> list[ServiceSpec]:
    pg = cfg.database.postgres
    superuser = SecretText(f"${{{pg.superuser_password_secret}}}")
    server = postgres_start.applying_superuser_password(ServiceSpec(
        name=POSTGRES, component="Database", image=pg.image, port=5432,
        command=("postgres", *hygiene.postgres_args(cfg)),
        env={"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
             "POSTGRES_PASSWORD": superuser,
             "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256"},
        networks=("data",), mounts=(Mount(target="/var/lib/postgresql/data", volume="postgres-data"),),
        healthcheck=HealthCheck(("CMD", "pg_isready", "-U", "postgres", "-h", "127.0.0.1"),
                                interval_s=5, timeout_s=5, retries=10, start_period_s=10),
        wait_healthy=True, group="database", **limits(cfg, pg.resources)))
    init = ServiceSpec(
        name=DB_INIT, component="Database", image=pg.image,
        command=("psql", "-v", "ON_ERROR_STOP=1", "-h", POSTGRES, "-U", "postgres",
                 "-d", "postgres", "-f", "/docker-init/init.sql"),
        env={"PGPASSWORD": superuser}, networks=("data",),
        uploads=(FileUpload("/docker-init/init.sql", SecretText(init_sql(cfg))),),
        one_shot=True, depends_on=(POSTGRES,), group="database", **limits(cfg, pg.resources))
    return [server, init]


def init_sql(cfg: StackConfig) -> str:
    """Idempotent roles and databases, re-run whenever the list or a password changes.

    Not /docker-entrypoint-initdb.d: that runs only on an empty data directory, so a
    database added later would silently never exist.
    """
    lines = ["-- generated by prefect-stack; safe to run repeatedly"]
    owners = dict.fromkeys((d.owner, d.password_key) for d in cfg.database.postgres.databases)
    for owner, key in owners:
        lines += [
            f"SELECT 'CREATE ROLE {owner} LOGIN' WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = '{owner}')\\gexec",
            f"ALTER ROLE {owner} WITH LOGIN PASSWORD '${{{key}|sql}}';",
        ]
    for db in cfg.database.postgres.databases:
        lines += [
            postgres_memory.create_database_gexec(db.name, db.owner),
            f"ALTER DATABASE {db.name} OWNER TO {db.owner};",
            f"REVOKE ALL ON DATABASE {db.name} FROM PUBLIC;",
        ]
    return "\n".join(lines) + "\n"


def redis_spec(cfg: StackConfig) -> ServiceSpec:
    redis = cfg.redis
    conf = f"requirepass ${{{redis.password_secret}|conf}}\ndir /data\n"
    conf += "appendonly yes\n" if redis.persistence else 'appendonly no\nsave ""\n'
    return ServiceSpec(
        name=REDIS, component="Redis", image=redis.image, port=6379,
        command=("redis-server", "/usr/local/etc/redis/redis.conf"),
        # redis-cli reads REDISCLI_AUTH, so the password is never on a command line.
        env={"REDISCLI_AUTH": SecretText(f"${{{redis.password_secret}}}")},
        networks=("data",), uploads=(FileUpload("/usr/local/etc/redis/redis.conf", SecretText(conf)),),
        mounts=(Mount(target="/data", volume="redis-data"),) if redis.persistence else (),
        healthcheck=HealthCheck(("CMD-SHELL", "redis-cli ping | grep -q PONG"), interval_s=5),
        wait_healthy=True, group="redis", **limits(cfg, redis.resources))


def api_spec(cfg: StackConfig, extra_depends: tuple[str, ...]) -> ServiceSpec:
    api = cfg.api
    assert api is not None
    env = app_env(cfg, api)
    if api.uses_prefect:
        env = {**prefect_client_env(cfg), **env}
    depends = (SERVER,) if api.uses_prefect else ()
    return ServiceSpec(
        name=api.name, component="AppApi", image=api.image, port=api.port,
        command=tuple(api.command) if api.command else None, env=env, replicas=api.replicas,
        healthcheck=health_from_settings(api.health_check, api.port),
        networks=workload_networks(api), uploads=uploads(api.files),
        ports=tuple(PublishedPort(p.container, p.host, p.host_ip) for p in api.ports),
        depends_on=tuple(dict.fromkeys(depends + workload_depends(cfg, api) + extra_depends)),
        user=api.user, group=api.name, **limits(cfg, api.resources))


def service_spec(cfg: StackConfig, svc: ServiceSettings, extra_depends: tuple[str, ...]
                 ) -> ServiceSpec:
    return ServiceSpec(
        name=svc.name, component="Service", image=svc.image, port=svc.port,
        command=tuple(svc.command) if svc.command else None,
        entrypoint=None if svc.entrypoint is None else tuple(svc.entrypoint),
        env=app_env(cfg, svc), replicas=svc.replicas,
        healthcheck=health_from_settings(svc.health_check, svc.port),
        networks=workload_networks(svc),
        ports=tuple(PublishedPort(p.container, p.host, p.host_ip) for p in svc.ports),
        mounts=mounts(svc.volumes), uploads=uploads(svc.files),
        depends_on=tuple(dict.fromkeys(workload_depends(cfg, svc) + extra_depends)),
        user=svc.user, group=svc.name, **limits(cfg, svc.resources))


def setup_job_specs(cfg: StackConfig) -> list[ServiceSpec]:
    return [ServiceSpec(
        name=job.name, component="SetupJob", image=job.image, command=tuple(job.command),
        entrypoint=None if job.entrypoint is None else tuple(job.entrypoint),
        env=app_env(cfg, job), networks=workload_networks(job),
        mounts=mounts(job.volumes), uploads=uploads(job.files),
        depends_on=workload_depends(cfg, job), one_shot=True,
        group=job.name, **limits(cfg, cfg.resources.defaults)) for job in cfg.setup_jobs]


def jobs_before(cfg: StackConfig, name: str) -> tuple[str, ...]:
    return tuple(job.name for job in cfg.setup_jobs if name in job.before)


# --- routes and the proxy -----------------------------------------------------------------

def prefect_route(cfg: StackConfig) -> Route:
    """Never stripped, and never behind the proxy's basic auth: with server.basicAuth on,
    Prefect's own auth guards the UI (its login form) and the API, websockets included, so
    a browser user logs in once. A proxy login in front would ask a second time, and
    Prefect's websocket client could not pass it (it sends no Authorization header)."""
    return Route(prefix=cfg.server.base_path, service=SERVER, port=cfg.server.port,
                 strip_prefix=False, auth=False, source="server.basePath",
                 upstreams=scaleout.api_upstreams(cfg, SERVER),
                 health_path=f"{api_path(cfg)}/health",
                 content_security_policy=csp.prefect_ui_policy(cfg.proxy.security_headers))


def workload_routes(owner: AppApiSettings | ServiceSettings, path: str
                    ) -> list[tuple[str, RouteSettings]]:
    """(config path, route) for each of `routes`, else the single `route`."""
    if owner.routes:
        return [(f"{path}.routes[{j}]", r) for j, r in enumerate(owner.routes)]
    return [(f"{path}.route", owner.route)] if owner.route is not None else []


def routed_workloads(cfg: StackConfig) -> list[tuple[str, AppApiSettings | ServiceSettings]]:
    """(config path, settings) of the api and every service: what may have routes and ports."""
    owners: list[tuple[str, AppApiSettings | ServiceSettings]] = []
    if cfg.api is not None:
        owners.append(("api", cfg.api))
    return owners + [(f"services[{i}]", svc) for i, svc in enumerate(cfg.services)]


def declared_routes(cfg: StackConfig) -> list[Route]:
    routes = [prefect_route(cfg)]
    for path, owner in routed_workloads(cfg):
        routes += [Route(r.prefix, owner.name, r.port or owner.port or 0, r.strip_prefix,
                         r.auth, source=route_path)
                   for route_path, r in workload_routes(owner, path)]
    return routes + monitoring.monitoring_routes(cfg)


def reserved_prefixes(cfg: StackConfig) -> dict[str, str]:
    """Prefect at the root is the fallback route, yet its API and UI settings must not be
    shadowed by a more specific route."""
    if ui_base(cfg):
        return {}
    return {"/api": "the Prefect API (server.basePath is /)",
            "/ui-settings": "the Prefect UI (server.basePath is /)"}


def proxy_spec(cfg: StackConfig, routes: list[Route]) -> ServiceSpec:
    proxy = cfg.proxy
    ports = [PublishedPort(80, proxy.http_port, proxy.bind_address)]
    if proxy.tls != "off":
        ports.append(PublishedPort(443, proxy.https_port, proxy.bind_address))
    if proxy.kind == "traefik" and proxy.traefik.dashboard:
        ports.append(PublishedPort(traefik.DASHBOARD_PORT, traefik.DASHBOARD_PORT, "127.0.0.1"))
    auth = cfg.server.basic_auth
    if proxy.kind == "caddy":
        uploads = (FileUpload("/etc/caddy/Caddyfile",
                              caddy.render_caddyfile(routes, proxy, auth.username,
                                                     auth.password_secret)),)
        proxy_mounts = (Mount("/data", volume="proxy-data"), Mount("/config", volume="proxy-config"))
        health = HealthCheck(("CMD", "wget", "-q", "-O", "/dev/null",
                              f"http://127.0.0.1:{caddy.HEALTH_PORT}/healthz"), interval_s=10)
        command = None
    else:
        static, dynamic = traefik.render(routes, proxy, auth.username, auth.password_secret)
        uploads = (FileUpload(traefik.STATIC_PATH, static), FileUpload(traefik.DYNAMIC_PATH, dynamic))
        proxy_mounts = (Mount("/letsencrypt", volume="proxy-data"),)
        health = HealthCheck(("CMD", "traefik", "healthcheck", "--ping"), interval_s=10)
        command = ("traefik", f"--configFile={traefik.STATIC_PATH}")
    return ServiceSpec(
        name=PROXY, component="ReverseProxy", image=proxy.image_ref, command=command,
        ports=tuple(ports), uploads=uploads, mounts=proxy_mounts, healthcheck=health,
        depends_on=tuple(dict.fromkeys(r.service for r in routes)), group="proxy",
        **limits(cfg, proxy.resources))


# --- secrets --------------------------------------------------------------------------------

def secret_specs(cfg: StackConfig, services: list[ServiceSpec]) -> list[SecretSpec]:
    """Every secret key the plan references; internal credentials may be generated."""
    generatable = {cfg.server.basic_auth.password_secret, cfg.redis.password_secret,
                   cfg.database.postgres.superuser_password_secret,
                   *(d.password_key for d in cfg.database.postgres.databases),
                   *cfg.secrets.generate, *monitoring.generatable_secrets(cfg)}
    found: dict[str, str] = {}
    for spec in services:
        for key in spec.secret_keys:
            found.setdefault(key, spec.name)
    return [SecretSpec(key, used_by, key in generatable, cfg.secrets.rotation.get(key))
            for key, used_by in sorted(found.items())]


# --- the whole stack ------------------------------------------------------------------------

def waited_for_healthy(services: list[ServiceSpec]) -> list[ServiceSpec]:
    """A long-running container that another one depends on must be healthy first, not
    merely started (the deployment waits for its health check)."""
    awaited = {name for spec in services for name in spec.depends_on}
    return [dataclasses.replace(spec, wait_healthy=True)
            if spec.name in awaited and not spec.one_shot else spec for spec in services]


def dependency_order(services: list[ServiceSpec]) -> list[ServiceSpec]:
    """Dependencies first, each component's containers together (a backend creates one
    component per group), otherwise the order given. Cycles were refused by the checks."""
    group_of = {spec.name: spec.group for spec in services}
    groups = list(dict.fromkeys(spec.group for spec in services))
    needs = {g: {group_of[d] for spec in services if spec.group == g for d in spec.depends_on
                 if d in group_of} - {g} for g in groups}
    ordered_groups: list[str] = []
    while len(ordered_groups) < len(groups):
        ready = next(g for g in groups if g not in ordered_groups and needs[g] <= set(ordered_groups))
        ordered_groups.append(ready)
    out: list[ServiceSpec] = []
    for group in ordered_groups:
        members = [spec for spec in services if spec.group == group]
        while members:
            ready_spec = next(m for m in members if not any(
                d in {o.name for o in members} for d in m.depends_on))
            out.append(ready_spec)
            members.remove(ready_spec)
    return out

def build_plan(cfg: StackConfig) -> StackPlan:
    """The full, ordered set of services for a validated config."""
    services: list[ServiceSpec] = []
    if cfg.database.kind == "postgres":
        services += postgres_specs(cfg)
    if cfg.redis.enabled:
        services.append(redis_spec(cfg))
    services += setup_job_specs(cfg)
    services += server_specs(cfg)
    for pool in cfg.workers:
        services += worker_specs(cfg, pool, jobs_before(cfg, pool.name))
    if cfg.api is not None:
        services.append(api_spec(cfg, jobs_before(cfg, cfg.api.name)))
    services += [service_spec(cfg, svc, jobs_before(cfg, svc.name)) for svc in cfg.services]
    services += monitoring.monitoring_specs(cfg)
    services += backups.backup_specs(cfg)
    routes = declared_routes(cfg) if cfg.proxy.kind != "none" else []
    if routes:
        services.append(proxy_spec(cfg, routes))
    services = dependency_order(waited_for_healthy(services))
    services = [neutral_view(cfg, s) for s in services]  # what non-Docker backends read

    volumes = sorted({m.volume for s in services for m in s.mounts if m.volume})
    origin = public_origin(cfg)
    return StackPlan(
        prefix=cfg.network.name_prefix,
        production=cfg.production,
        networks=(NetworkSpec("app", internal=False), NetworkSpec("data", internal=True)),
        volumes=tuple(VolumeSpec(v, holds_data=v != "proxy-config") for v in volumes),
        services=tuple(services),
        routes=tuple(routes),
        secrets=tuple(secret_specs(cfg, services)),
        ui_url=f"{origin}{ui_base(cfg)}/",
        api_url=f"{origin}{api_path(cfg)}",
        internal_api_url=internal_api_url(cfg),
        work_pools=tuple(p.name for p in cfg.workers),
        login=auth_string(cfg) if cfg.server.basic_auth.enabled else None,
        builds=tuple(b for b in [scaleout.image_build(cfg)] if b is not None),
    )
