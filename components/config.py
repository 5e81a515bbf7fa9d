"""The typed stack configuration: one pydantic model per concern, one field per setting.

Every section is a top-level key of the Pulumi project namespace (``prefect-stack:server``,
``prefect-stack:database`` ...), set in ``Pulumi.<stack>.yaml`` or with
``pulumi config set --path server.port 4200``. Keys are camelCase, as in prefect-helm's
``values.yaml``. Models are strict: ``"4200"`` is not a port and ``yes`` is not a boolean,
so a typo in YAML is an error instead of a surprise.

Secrets never live in these sections. A section names the config key that holds a secret
(``passwordSecret: postgresPassword``); the value is set with ``pulumi config set --secret``
or generated (see ``SecretsSettings``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from components.tuning import FORK_COMMAND

PROJECT = "prefect-stack"
PREFECT_VERSION = "3.8.8"
DEFAULT_PREFECT_IMAGE = f"prefecthq/prefect:{PREFECT_VERSION}-python3.12"
DEFAULT_POSTGRES_IMAGE = "postgres:16.6-alpine"
DEFAULT_REDIS_IMAGE = "redis:7.4.2-alpine"
DEFAULT_CADDY_IMAGE = "caddy:2.11.7-alpine"
DEFAULT_TRAEFIK_IMAGE = "traefik:v3.7.15"
DEFAULT_PROMETHEUS_IMAGE = "prom/prometheus:v3.7.3"
DEFAULT_EXPORTER_IMAGE = "prefecthq/prometheus-prefect-exporter:3.6.1"
DEFAULT_GRAFANA_IMAGE = "grafana/grafana:12.2.1"

# Docker accepts [a-zA-Z0-9][a-zA-Z0-9_.-]* for container names; we also use names as DNS
# aliases and Pulumi resource names, so stay lower-case and hyphenated.
ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,40}$")]
SqlIdentifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
ConfigKeyName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ImageRef = Annotated[str, StringConstraints(
    pattern=r"^([a-z0-9.-]+(:\d+)?/)?[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[a-f0-9]{64})?$", max_length=255)]
UrlPath = Annotated[str, StringConstraints(pattern=r"^/([A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*)?$")]
Port = Annotated[int, Field(ge=1, le=65535)]
HostIp = Annotated[str, StringConstraints(pattern=r"^(\d{1,3}\.){3}\d{1,3}$|^::1?$")]
PipRequirement = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-\[\],<>=!~]+$")]
PublicOrigin = Annotated[str, StringConstraints(
    pattern=r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$")]
ContainerPath = Annotated[str, StringConstraints(pattern=r"^/\S*$")]
EnvMap = dict[EnvName, str]
SecretEnvMap = dict[EnvName, ConfigKeyName]
RotationLabel = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


class Section(BaseModel):
    """Base for every config section: camelCase keys, no unknown keys, no type coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,
        frozen=True,
    )


class Resources(Section):
    """Container limits. Unset fields fall back to ``resources.defaults``."""

    memory_mb: Annotated[int, Field(ge=16, le=262144)] | None = Field(
        None, description="Hard memory limit in MiB (docker --memory)."
    )
    cpus: Annotated[float, Field(gt=0, le=256)] | None = Field(
        None, description="CPU limit in cores (docker --cpus); unset means no limit."
    )


class ResourceDefaults(Section):
    defaults: Resources = Field(
        Resources(memoryMb=512),
        description="Limits applied to every container that does not set its own.",
    )


class LoggingSettings(Section):
    """Docker log driver options, set explicitly so the daemon default never causes diffs."""

    driver: Literal["json-file", "local"] = Field("json-file", description="Docker log driver.")
    max_size: Annotated[str, StringConstraints(pattern=r"^\d+[kmg]$")] = Field(
        "10m", description="Rotate a log file at this size (e.g. 10m)."
    )
    max_file: Annotated[int, Field(ge=1, le=100)] = Field(
        3, description="Rotated log files kept per container."
    )


class DockerSettings(Section):
    host: Annotated[str, StringConstraints(pattern=r"^(unix|tcp|ssh|npipe)://\S+$")] | None = (
        Field(
            None,
            description="Docker daemon to deploy to, e.g. ssh://deploy@host or "
            "unix:///var/run/docker.sock. Unset: the local daemon (DOCKER_HOST).",
        )
    )


class NetworkSettings(Section):
    name_prefix: ServiceName = Field(
        "prefect",
        description="Prefix of every Docker object name (containers, networks, volumes), so "
        "several stacks can share one Docker host.",
    )


class SecretsSettings(Section):
    generate_missing: bool = Field(
        True,
        description="Generate internal credentials (database, Redis, basic-auth passwords) "
        "with pulumi-random when their config key is not set. Turn off to require every "
        "secret to be set explicitly with `pulumi config set --secret`.",
    )
    generate: list[ConfigKeyName] = Field(
        [],
        description="App secret keys (named in a secretEnv) that may also be generated, e.g. "
        "a session signing key. Third-party credentials must not be listed here.",
    )
    rotation: dict[ConfigKeyName, RotationLabel] = Field(
        {},
        description="Rotate generated secrets: config key -> any label (a date, a counter). "
        "A new label generates a new value on the next `pulumi up`, and every container "
        "that uses it is updated in that same `up`, e.g. `pulumi config set --path "
        "secrets.rotation.postgresPassword 2026-11-30`. Secrets you set yourself rotate with "
        "`pulumi config set --secret <key> <new value>`.",
    )


class PoolSettings(Section):
    size: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE per server process."
    )
    max_overflow: Annotated[int, Field(ge=0, le=100)] = Field(
        10, description="PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW per server process."
    )


class PostgresDatabase(Section):
    name: SqlIdentifier = Field(description="Database to create.")
    owner: SqlIdentifier = Field(description="Login role that owns it (created if missing).")
    password_secret: ConfigKeyName | None = Field(
        None, description="Config key of the owner's password. Default: `<owner>DbPassword`."
    )

    @property
    def password_key(self) -> str:
        return self.password_secret or f"{to_camel(self.owner)}DbPassword"


class PostgresSettings(Section):
    image: ImageRef = Field(DEFAULT_POSTGRES_IMAGE, description="PostgreSQL image, pinned.")
    superuser_password_secret: ConfigKeyName = Field(
        "postgresPassword", description="Config key of the `postgres` superuser password."
    )
    databases: list[PostgresDatabase] = Field(
        [PostgresDatabase(name="prefect", owner="prefect")],
        min_length=1,
        description="Databases and owner roles to create. One PostgreSQL can host the "
        "Prefect database and the app databases, each with its own role.",
    )
    resources: Resources = Field(Resources(), description="Limits for the database container.")
    max_connections: Annotated[int, Field(ge=20, le=10000)] = Field(
        100,
        description="PostgreSQL `max_connections`, set explicitly. Every Prefect process "
        "that opens a pool (server replicas, services, migrations), db-init and the backup "
        "container must fit in it with `reservedConnections` to spare; checked before "
        "deploying.",
    )
    reserved_connections: Annotated[int, Field(ge=0, le=1000)] = Field(
        10,
        description="Connections kept free beyond the stack's own (Prefect's pools, db-init, "
        "backup): app databases (workers, api, services, setup jobs) and psql sessions. "
        "PostgreSQL's own 3 superuser slots come on top.",
    )


class ExternalDatabaseSettings(Section):
    url_secret: ConfigKeyName = Field(
        "externalDatabaseUrl",
        description="Config key holding the full connection URL "
        "(postgresql+asyncpg://user:pw@host:5432/db). Always required; never generated.",
    )


class SqliteSettings(Section):
    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]+\.db$")] = Field(
        "/var/lib/prefect/prefect.db", description="Database file inside the server container."
    )


class RetentionSettings(Section):
    """What Prefect's database vacuum service deletes, and how often it runs."""

    events_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        7, description="PREFECT_SERVER_EVENTS_RETENTION_PERIOD: events older than this are "
        "deleted."
    )
    flow_runs_days: Annotated[int, Field(ge=1, le=36500)] | None = Field(
        90,
        description="PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD: finished flow runs "
        "(with their task runs, logs and artifacts) older than this are deleted. null "
        "keeps them forever.",
    )
    vacuum_interval_minutes: Annotated[int, Field(ge=1, le=10080)] = Field(
        60, description="PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS, in minutes."
    )


class DatabaseSettings(Section):
    kind: Literal["sqlite", "postgres", "external"] = Field(
        "sqlite",
        description="sqlite: embedded file on a volume (one server replica). postgres: a "
        "PostgreSQL container on the internal network. external: a managed PostgreSQL "
        "reached by URL.",
    )
    prefect_database: SqlIdentifier = Field(
        "prefect", description="With kind=postgres, which of `postgres.databases` Prefect uses."
    )
    postgres: PostgresSettings = Field(PostgresSettings(), description="kind=postgres settings.")
    external: ExternalDatabaseSettings = Field(
        ExternalDatabaseSettings(), description="kind=external settings."
    )
    sqlite: SqliteSettings = Field(SqliteSettings(), description="kind=sqlite settings.")
    pool: PoolSettings = Field(PoolSettings(), description="SQLAlchemy pool (PostgreSQL only).")
    retention: RetentionSettings = Field(
        RetentionSettings(), description="Database vacuum: event and flow-run retention."
    )
    migration_timeout_seconds: Annotated[int, Field(ge=10, le=86400)] | None = Field(
        1800,
        description="PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT: statement timeout of schema "
        "migrations (PostgreSQL), so a blocked migration fails instead of hanging the "
        "upgrade. null = no limit.",
    )


class BasicAuthSettings(Section):
    """Prefect's own basic auth (server.basicAuth in prefect-helm); the proxy reuses it."""

    enabled: bool = Field(False, description="Require user:password on the UI and API.")
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = Field(
        "admin", description="Login name."
    )
    password_secret: ConfigKeyName = Field(
        "basicAuthPassword", description="Config key of the password."
    )


class PublishPort(Section):
    host_port: Port = Field(description="Port on the Docker host.")
    host_ip: HostIp = Field("127.0.0.1", description="Host address to bind; 127.0.0.1 = local only.")


class ServerSettings(Section):
    image: ImageRef = Field(DEFAULT_PREFECT_IMAGE, description="Prefect image, pinned.")
    replicas: Annotated[int, Field(ge=1, le=20)] = Field(
        1,
        description="API replicas. More than one needs database.kind postgres/external and "
        "redis.enabled (API runs with --no-services; `servicesReplicas` services containers "
        "run beside it).",
    )
    services_replicas: Annotated[int, Field(ge=1, le=5)] = Field(
        1,
        description="Background-services containers beside several API replicas (scheduler, "
        "event persister, task-run recorder...). More than one stays correct (Redis Docket "
        "and messaging); needs replicas > 1.",
    )
    port: Port = Field(4200, description="PREFECT_SERVER_API_PORT inside the container.")
    base_path: UrlPath = Field(
        "/prefect",
        description="Public sub-path of the UI; the API is at <basePath>/api. `/` serves "
        "Prefect at the root.",
    )
    basic_auth: BasicAuthSettings = Field(BasicAuthSettings(), description="Prefect basic auth.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="PREFECT_LOGGING_SERVER_LEVEL."
    )
    publish: PublishPort | None = Field(
        None,
        description="Publish the server port on the host (dev convenience, e.g. "
        "127.0.0.1:4200). Refused in production stacks unless proxy.kind is none.",
    )
    public_url: PublicOrigin | None = Field(
        None,
        description="Origin (scheme://host[:port], no path) where browsers and clients reach "
        "Prefect, e.g. http://prefect.lan:4200. Required with proxy.kind: none: the UI is "
        "told its API is at <publicUrl><basePath>/api. Behind a proxy the proxy's origin is "
        "used and the UI gets a relative API path.",
    )
    env: EnvMap = Field({}, description="Extra plain environment variables.")
    resources: Resources = Field(Resources(), description="Limits per server container.")


class FlowCode(Section):
    host_path: Annotated[str, StringConstraints(pattern=r"^\.?/\S*$")] = Field(
        description="Directory on the Docker host with the flow code: absolute, or `./...` "
        "relative to the project directory (local Docker daemon only)."
    )
    mount_path: Annotated[str, StringConstraints(pattern=r"^/\S*$")] = Field(
        "/opt/prefect/flows", description="Where it appears in the worker (also its workdir)."
    )
    read_only: bool = Field(True, description="Mount read-only.")


class DatabaseAccess(Section):
    """Gives a container the URL of one of the stack's PostgreSQL databases."""

    name: SqlIdentifier = Field(description="A database from database.postgres.databases.")
    env: EnvName = Field("DATABASE_URL", description="Variable that receives the URL.")
    scheme: Annotated[str, StringConstraints(pattern=r"^[a-z0-9+]+$")] = Field(
        "postgresql", description="URL scheme, e.g. postgresql+psycopg or postgresql+asyncpg."
    )


class VolumeSettings(Section):
    mount_path: Annotated[str, StringConstraints(pattern=r"^/\S*$")] = Field(
        description="Path inside the container."
    )
    name: ServiceName | None = Field(None, description="Named volume (created, prefixed).")
    host_path: Annotated[str, StringConstraints(pattern=r"^\.?/\S*$")] | None = Field(
        None, description="Host directory to bind instead: absolute, or `./...` relative to "
        "the project directory (local Docker daemon only)."
    )
    read_only: bool = Field(False, description="Mount read-only.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> VolumeSettings:
        if (self.name is None) == (self.host_path is None):
            raise ValueError("set exactly one of `name` or `hostPath`")
        return self


class RedisAccess(Section):
    """Gives a container the URL of the stack's Redis (password included, as a secret)."""

    env: EnvName = Field("REDIS_URL", description="Variable that receives the URL.")
    db: Annotated[int, Field(ge=0, le=15)] = Field(0, description="Redis database number.")
    scheme: Literal["redis"] = Field("redis", description="URL scheme.")


class FileSettings(Section):
    """A config file uploaded into the container; `${configKey}` placeholders are filled from
    secret config keys, and the file is then uploaded as a secret."""

    path: ContainerPath = Field(description="Absolute path of the file inside the container.")
    content: str = Field(
        description="File content. `${configKey}` is replaced by that secret config key's "
        "value; write `$${` for a literal `${` (e.g. Grafana's own `$${VAR}`).")
    mode: Literal["0644", "0755"] = Field(
        "0644", description="0644 (readable) or 0755 (executable): the modes Docker uploads.")


class WorkerPoolSettings(Section):
    """One work pool and the workers that poll it (worker.config.workPool in prefect-helm)."""

    name: ServiceName = Field(description="Work pool name; created with its type and limit.")
    type: Literal["process"] = Field("process", description="Work pool type.")
    replicas: Annotated[int, Field(ge=0, le=50)] = Field(1, description="Worker containers.")
    concurrency_limit: Annotated[int, Field(ge=1, le=10000)] | None = Field(
        None, description="Work pool concurrency limit; unset = unlimited."
    )
    query_interval_seconds: Annotated[float, Field(ge=0.5, le=300)] = Field(
        10, description="PREFECT_WORKER_QUERY_SECONDS: how often workers poll for runs."
    )
    prefetch_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        10, description="PREFECT_WORKER_PREFETCH_SECONDS: how early scheduled runs start."
    )
    flow_run_command: Annotated[str, Field(min_length=1)] | None = Field(
        FORK_COMMAND,
        description="Default of the pool's `command` job variable: how the worker starts a "
        "flow run. The default forks each run from the worker, which has Prefect imported "
        "(no Python start per run: ≈2 s less CPU than the engine, nothing resident between "
        "runs); `python -m prefect.engine` = a new interpreter per run that imports Prefect; "
        "null = Prefect's generated command (a workspace supervisor that then starts the "
        "engine: ≈2 s more CPU again; needed for flow projects whose pyproject.toml uv "
        "installs).",
    )
    image: ImageRef | None = Field(None, description="Worker image. Default: the server image.")
    extra_pip_packages: list[PipRequirement] = Field(
        [], description="EXTRA_PIP_PACKAGES installed by the image at start (pin them)."
    )
    flow_code: FlowCode | None = Field(None, description="Bind-mount flow code from the host.")
    database: DatabaseAccess | None = Field(None, description="App database URL for flows.")
    env: EnvMap = Field({}, description="Extra plain environment variables.")
    secret_env: SecretEnvMap = Field({}, description="Variable -> config key of a secret.")
    volumes: list[VolumeSettings] = Field(
        [], description="Data directories and volumes beside the flow code (e.g. ./data).")
    internal_network: bool = Field(
        False, description="Also join the internal network (reach PostgreSQL and Redis).")
    depends_on: list[ServiceName] = Field(
        [], description="Services (healthy), the api (healthy) or setup jobs (exited 0) to "
        "wait for; also `postgres`, `redis`, `prefect-server`."
    )
    redis: RedisAccess | None = Field(None, description="Redis URL (needs redis.enabled).")
    files: list[FileSettings] = Field([], description="Config files to upload.")
    resources: Resources = Field(Resources(), description="Limits per worker container.")


class HttpCheck(Section):
    path: UrlPath = Field(description="Path probed, e.g. /healthz.")
    port: Port | None = Field(None, description="Port probed; default the service port.")
    probe: Literal["python", "wget", "curl"] = Field(
        "python", description="Tool inside the image that makes the request."
    )


class HealthCheckSettings(Section):
    http: HttpCheck | None = Field(None, description="HTTP GET that must answer 2xx/3xx.")
    command: list[str] | None = Field(
        None, min_length=1, description='Docker test, e.g. ["CMD", "pg_isready"].'
    )
    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(10, description="Interval.")
    timeout_seconds: Annotated[int, Field(ge=1, le=600)] = Field(5, description="Timeout.")
    retries: Annotated[int, Field(ge=1, le=100)] = Field(5, description="Failures to unhealthy.")
    start_period_seconds: Annotated[int, Field(ge=0, le=3600)] = Field(
        20, description="Grace period after start."
    )

    @model_validator(mode="after")
    def _exactly_one_probe(self) -> HealthCheckSettings:
        if (self.http is None) == (self.command is None):
            raise ValueError("set exactly one of `http` or `command`")
        return self


class RouteSettings(Section):
    prefix: UrlPath = Field(description="Public path prefix, e.g. /api. `/` = fallback route.")
    port: Port | None = Field(None, description="Upstream port; default the service port.")
    strip_prefix: bool = Field(
        False, description="Remove the prefix before proxying (only for apps that do not "
        "know their public path; never for Prefect)."
    )
    auth: bool = Field(False, description="Require the stack's basic-auth login.")


class PortMapping(Section):
    container: Port = Field(description="Port inside the container.")
    host: Port = Field(description="Port on the Docker host.")
    host_ip: HostIp = Field("127.0.0.1", description="Host address to bind.")


class AppApiSettings(Section):
    """The team's own HTTP API, deployed beside Prefect."""

    name: ServiceName = Field("api", description="Service name (DNS name on the network).")
    image: ImageRef = Field(description="App image, pinned.")
    port: Port = Field(8000, description="Port the app listens on.")
    command: list[str] | None = Field(None, description="Override the image command.")
    replicas: Annotated[int, Field(ge=1, le=50)] = Field(1, description="Containers.")
    health_check: HealthCheckSettings = Field(
        HealthCheckSettings(http=HttpCheck(path="/healthz")), description="Health check."
    )
    route: RouteSettings | None = Field(
        RouteSettings(prefix="/api", stripPrefix=True), description="Proxy route; null = none."
    )
    routes: list[RouteSettings] = Field(
        [], description="Several proxy routes (e.g. /api stripped plus the fallback `/`); "
        "replaces `route`.")
    ports: list[PortMapping] = Field([], description="Host ports (refused in production).")
    database: DatabaseAccess | None = Field(None, description="App database URL.")
    uses_prefect: bool = Field(
        True, description="Give the app PREFECT_API_URL (+ auth) so it can trigger flows."
    )
    env: EnvMap = Field({}, description="Plain environment variables.")
    secret_env: SecretEnvMap = Field({}, description="Variable -> config key of a secret.")
    internal_network: bool = Field(
        False, description="Also join the internal network (reach PostgreSQL and Redis).")
    depends_on: list[ServiceName] = Field(
        [], description="Services (healthy), the api (healthy) or setup jobs (exited 0) to "
        "wait for; also `postgres`, `redis`, `prefect-server`."
    )
    redis: RedisAccess | None = Field(None, description="Redis URL (needs redis.enabled).")
    files: list[FileSettings] = Field([], description="Config files to upload.")
    user: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_:-]+$")] | None = Field(
        None, description="Run as this user (uid[:gid]); default the image's user."
    )
    resources: Resources = Field(Resources(), description="Limits per container.")


class RedisSettings(Section):
    enabled: bool = Field(False, description="Run Redis (password protected, internal only).")
    image: ImageRef = Field(DEFAULT_REDIS_IMAGE, description="Redis image, pinned.")
    password_secret: ConfigKeyName = Field("redisPassword", description="Config key of password.")
    persistence: bool = Field(True, description="Append-only file on a volume.")
    resources: Resources = Field(Resources(memoryMb=256), description="Limits.")


class ServiceSettings(Section):
    """Any extra long-running container: Dolt, MinIO, Flower, Grafana, Prometheus ..."""

    name: ServiceName = Field(description="Service name (DNS name on the network).")
    image: ImageRef = Field(description="Image, pinned.")
    port: Port | None = Field(None, description="Main port (routes and http checks use it).")
    entrypoint: list[str] | None = Field(
        None, description="Override the image's ENTRYPOINT; `[]` clears it (e.g. minio/mc's "
        "`mc`, to run a shell command).")
    command: list[str] | None = Field(None, description="Override the image command.")
    replicas: Annotated[int, Field(ge=1, le=50)] = Field(1, description="Containers.")
    env: EnvMap = Field({}, description="Plain environment variables.")
    secret_env: SecretEnvMap = Field({}, description="Variable -> config key of a secret.")
    ports: list[PortMapping] = Field([], description="Host ports (refused in production).")
    volumes: list[VolumeSettings] = Field([], description="Volumes and bind mounts.")
    health_check: HealthCheckSettings = Field(description="Required: how Docker knows it works.")
    route: RouteSettings | None = Field(None, description="Proxy route.")
    routes: list[RouteSettings] = Field(
        [], description="Several proxy routes (e.g. an API port and a console port); "
        "instead of `route`.")
    database: DatabaseAccess | None = Field(None, description="App database URL.")
    internal_network: bool = Field(
        False, description="Also join the internal network (reach PostgreSQL and Redis)."
    )
    depends_on: list[ServiceName] = Field(
        [], description="Services (healthy), the api (healthy) or setup jobs (exited 0) to "
        "wait for; also `postgres`, `redis`, `prefect-server`."
    )
    redis: RedisAccess | None = Field(None, description="Redis URL (needs redis.enabled).")
    files: list[FileSettings] = Field([], description="Config files to upload.")
    user: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_:-]+$")] | None = Field(
        None, description="Run as this user (uid[:gid])."
    )
    resources: Resources = Field(Resources(), description="Limits per container.")


class SetupJobSettings(Section):
    """A one-shot container (e.g. `alembic upgrade head`) run after the database is ready
    and before the services that depend on it."""

    name: ServiceName = Field(description="Job name.")
    image: ImageRef = Field(description="Image, pinned.")
    entrypoint: list[str] | None = Field(
        None, description="Override the image's ENTRYPOINT; `[]` clears it (e.g. minio/mc's "
        "`mc`, to run a shell command).")
    command: list[str] = Field(min_length=1, description="What to run; must exit 0.")
    env: EnvMap = Field({}, description="Plain environment variables.")
    secret_env: SecretEnvMap = Field({}, description="Variable -> config key of a secret.")
    database: DatabaseAccess | None = Field(None, description="App database URL.")
    volumes: list[VolumeSettings] = Field([], description="Volumes and bind mounts.")
    before: list[ServiceName] = Field(
        [], description="Services (api, service or worker pool names) that wait for this job."
    )
    internal_network: bool = Field(
        False, description="Also join the internal network (reach PostgreSQL and Redis).")
    depends_on: list[ServiceName] = Field(
        [], description="Services (healthy), the api (healthy) or setup jobs (exited 0) to "
        "wait for; also `postgres`, `redis`, `prefect-server`."
    )
    redis: RedisAccess | None = Field(None, description="Redis URL (needs redis.enabled).")
    files: list[FileSettings] = Field([], description="Config files to upload.")


class AcmeSettings(Section):
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = (
        Field(None, description="ACME account e-mail (required with tls: acme on Docker; on "
              "Kubernetes the ClusterIssuer holds it).")
    )
    staging: bool = Field(False, description="Use Let's Encrypt staging (testing; Docker only).")


class TraefikSettings(Section):
    dashboard: bool = Field(False, description="Serve the dashboard at /dashboard (behind auth).")


class ProxySettings(Section):
    kind: Literal["caddy", "traefik", "none"] = Field(
        "caddy", description="caddy | traefik | none (publish the Prefect port directly)."
    )
    image: ImageRef | None = Field(None, description="Proxy image; default per kind, pinned.")
    domain: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")] = (
        Field("localhost", description="Public host name.")
    )
    tls: Literal["internal", "acme", "off"] = Field(
        "internal",
        description="internal: local CA (dev). acme: public certificates (prod). off: plain "
        "HTTP behind another load balancer.",
    )
    acme: AcmeSettings = Field(AcmeSettings(), description="ACME settings (tls: acme).")
    bind_address: HostIp = Field("127.0.0.1", description="Host address for ports 80/443.")
    http_port: Port = Field(80, description="Host port for HTTP.")
    https_port: Port = Field(443, description="Host port for HTTPS.")
    security_headers: bool = Field(
        True, description="Add nosniff/frame/referrer/HSTS headers, and a Content-Security-Policy "
        "on Prefect's UI (its browser may then reach only the stack's origin). The proxy (or "
        "Ingress) adds them: with kind none nothing does, and setting true is refused.")
    compression: bool = Field(True, description="Compress responses (zstd, gzip).")
    traefik: TraefikSettings = Field(TraefikSettings(), description="Traefik-only settings.")
    resources: Resources = Field(Resources(memoryMb=256), description="Limits.")

    @property
    def image_ref(self) -> str:
        if self.image:
            return self.image
        return DEFAULT_TRAEFIK_IMAGE if self.kind == "traefik" else DEFAULT_CADDY_IMAGE


class ExporterSettings(Section):
    """prometheus-prefect-exporter: flow-run, deployment and work-pool metrics read from
    the Prefect API."""

    image: ImageRef = Field(DEFAULT_EXPORTER_IMAGE, description="Exporter image, pinned.")
    offset_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        5, description="OFFSET_MINUTES: window of recent flow runs counted by state."
    )
    resources: Resources = Field(Resources(memoryMb=256), description="Limits.")


class PrometheusSettings(Section):
    image: ImageRef = Field(DEFAULT_PROMETHEUS_IMAGE, description="Prometheus image, pinned.")
    prefix: UrlPath = Field("/prometheus", description="Public path, behind the stack login.")
    scrape_interval_seconds: Annotated[int, Field(ge=1, le=600)] = Field(
        30, description="How often every target is scraped (the exporter asks the Prefect "
        "API on each scrape; its authors advise 30 s or more)."
    )
    retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        15, description="--storage.tsdb.retention.time, in days."
    )
    resources: Resources = Field(Resources(memoryMb=512), description="Limits.")


class GrafanaSettings(Section):
    enabled: bool = Field(True, description="Run Grafana with the Prometheus datasource and "
                          "the Prefect dashboard provisioned.")
    image: ImageRef = Field(DEFAULT_GRAFANA_IMAGE, description="Grafana image, pinned.")
    prefix: UrlPath = Field("/grafana", description="Public path, behind the stack login.")
    admin_password_secret: ConfigKeyName = Field(
        "grafanaAdminPassword",
        description="Config key of Grafana's own admin password (generated if unset). "
        "Users never need it: the stack login lets them in as viewers.",
    )
    resources: Resources = Field(Resources(memoryMb=256), description="Limits.")


class MonitoringSettings(Section):
    """Prometheus, the Prefect exporter and Grafana, their UIs behind the stack login."""

    enabled: bool = Field(
        False, description="Turn on Prefect's metrics endpoint and run the exporter, "
        "Prometheus and (unless disabled) Grafana. Needs a proxy and server.basicAuth."
    )
    exporter: ExporterSettings = Field(ExporterSettings(), description="The exporter.")
    prometheus: PrometheusSettings = Field(PrometheusSettings(), description="Prometheus.")
    grafana: GrafanaSettings = Field(GrafanaSettings(), description="Grafana.")


DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,5}(Mi|Gi|Ti)$")]


class IngressSettings(Section):
    """How the proxy's routes become an Ingress (target.kind kubernetes)."""

    class_name: DnsLabel = Field(
        "nginx",
        description="IngressClass serving the routes. Basic auth, prefix stripping and the "
        "security headers use ingress-nginx annotations (Traefik's kubernetesIngressNginx "
        "provider reads them too); `traefik` and `caddy` are refused (their controllers do not).",
    )
    cluster_issuer: DnsLabel | None = Field(
        None,
        description="cert-manager ClusterIssuer that issues the certificate "
        "(cert-manager.io/cluster-issuer). Required with proxy.tls acme; with tls internal, "
        "unset uses the controller's default certificate.",
    )
    controller_namespace: DnsLabel = Field(
        "ingress-nginx",
        description="Namespace of the ingress controller pods: the NetworkPolicies let "
        "only it reach the routed services from outside the stack's namespace.",
    )


class StorageSettings(Section):
    class_name: DnsLabel | None = Field(
        None, description="StorageClass of every PersistentVolumeClaim; unset: the default."
    )
    volume_size: Quantity = Field("1Gi", description="Size of each named volume's claim.")
    database_size: Quantity = Field("10Gi", description="Size of PostgreSQL's claim.")


class KubernetesSettings(Section):
    """Where and how a stack with target.kind kubernetes is deployed."""

    kubeconfig: Annotated[str, StringConstraints(pattern=r"^\S+$")] | None = Field(
        None, description="Path of the kubeconfig file; unset: KUBECONFIG or ~/.kube/config."
    )
    context: Annotated[str, StringConstraints(pattern=r"^\S+$")] | None = Field(
        None, description="kubeconfig context; unset: its current context."
    )
    namespace: DnsLabel | None = Field(
        None, description="Namespace of every object; unset: network.namePrefix."
    )
    create_namespace: bool = Field(
        True, description="Create the namespace (false: it exists and is managed elsewhere)."
    )
    ingress: IngressSettings = Field(IngressSettings(), description="The Ingress.")
    storage: StorageSettings = Field(StorageSettings(), description="Persistent volumes.")
    image_registry: Annotated[str, StringConstraints(
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)*$")] | None = Field(
        None,
        description="Registry (host[:port][/path]) the cluster pulls the images this stack "
        "builds from (the prefect-redis image of server.replicas > 1); push them there first. "
        "Required when the stack builds an image.",
    )


class TargetSettings(Section):
    kind: Literal["docker", "kubernetes"] = Field(
        "docker",
        description="docker: containers on one Docker host (the `docker` section). "
        "kubernetes: the same stack as Kubernetes objects (the `kubernetes` settings below).",
    )
    kubernetes: KubernetesSettings = Field(
        KubernetesSettings(), description="target.kind kubernetes settings."
    )


class BackupSettings(Section):
    """Scheduled logical dumps of the stack's own databases, by a long-running `backup`
    container: `pg_dump -Fc` of every `database.postgres.databases` entry, or the SQLite
    file through SQLite's online backup API."""

    enabled: bool = Field(False, description="Run the backup container.")
    interval_minutes: Annotated[int, Field(ge=1, le=10080)] = Field(
        1440, description="Minutes between dumps (1440 = daily). At start the container "
        "dumps at once unless its newest dump is younger than this."
    )
    keep: Annotated[int, Field(ge=1, le=1000)] = Field(
        7, description="Dumps kept per database; older ones are deleted after each "
        "successful dump."
    )
    max_age_minutes: Annotated[int, Field(ge=2, le=100800)] | None = Field(
        None, description="The container's health check fails when the newest successful "
        "dump is older than this, or the last attempt failed. Default: twice intervalMinutes."
    )
    volume: ServiceName = Field(
        "backups", description="Named volume that receives the dumps (prefixed like every "
        "volume; kept on `pulumi destroy` in production)."
    )
    host_path: Annotated[str, StringConstraints(pattern=r"^/\S*$")] | None = Field(
        None, description="Absolute directory on the Docker host to write the dumps to "
        "instead of the volume (e.g. a disk your host backs up off-site)."
    )
    resources: Resources = Field(Resources(), description="Limits for the backup container.")

    @property
    def max_age(self) -> int:
        return self.max_age_minutes or 2 * self.interval_minutes


class StackConfig(Section):
    """The whole stack. Each field is one `prefect-stack:<key>` entry of the stack file."""

    production: bool = Field(
        False, description="Production stack: pinned images, no host ports but the proxy's."
    )
    docker: DockerSettings = Field(DockerSettings(), description="Where to deploy.")
    network: NetworkSettings = Field(NetworkSettings(), description="Docker object names.")
    secrets: SecretsSettings = Field(SecretsSettings(), description="Secret generation policy.")
    database: DatabaseSettings = Field(DatabaseSettings(), description="Prefect's database.")
    server: ServerSettings = Field(ServerSettings(), description="The Prefect server.")
    workers: list[WorkerPoolSettings] = Field(
        [WorkerPoolSettings(name="default")], description="Work pools and their workers."
    )
    api: AppApiSettings | None = Field(None, description="The team's app API (optional).")
    redis: RedisSettings = Field(RedisSettings(), description="Optional Redis.")
    backups: BackupSettings = Field(BackupSettings(), description="Database dumps and "
                                    "their retention.")
    services: list[ServiceSettings] = Field([], description="Extra containers.")
    setup_jobs: list[SetupJobSettings] = Field([], description="One-shot jobs.")
    proxy: ProxySettings = Field(ProxySettings(), description="Reverse proxy.")
    resources: ResourceDefaults = Field(ResourceDefaults(), description="Default limits.")
    logging: LoggingSettings = Field(LoggingSettings(), description="Container log rotation.")
    monitoring: MonitoringSettings = Field(MonitoringSettings(), description="Metrics and "
                                           "dashboards.")
    target: TargetSettings = Field(TargetSettings(), description="Docker host or Kubernetes "
                                   "cluster to deploy to.")


SECTIONS: tuple[str, ...] = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items()
)
