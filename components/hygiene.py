"""Database hygiene: what Prefect deletes and when, how long a migration may block, and
whether every connection the stack holds (Prefect's pools, db-init, backups) fits in
PostgreSQL's `max_connections`.

Setting names are Prefect 3.8.8's (src/prefect/settings/models/server/services.py,
events.py, database.py). Prefect vacuums only old events by default; old flow runs, their
task runs, logs and artifacts stay forever unless the `flow_runs` vacuum type is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import backups, plan
from components.config import StackConfig

DAY_SECONDS = 86400
SUPERUSER_RESERVED = 3  # PostgreSQL's superuser_reserved_connections default


def vacuum_env(cfg: StackConfig) -> dict[str, str]:
    """Settings of the db_vacuum service (runs wherever Prefect's services run)."""
    retention = cfg.database.retention
    kinds = "events" if retention.flow_runs_days is None else "events,flow_runs"
    env = {
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": kinds,
        "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": str(retention.vacuum_interval_minutes * 60),
        # A plain timedelta in Prefect (ISO 8601); the vacuum's own periods are seconds.
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": f"P{retention.events_days}D",
    }
    if retention.flow_runs_days is not None:
        env["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"] = str(
            retention.flow_runs_days * DAY_SECONDS)
    return env


def migration_env(cfg: StackConfig) -> dict[str, str]:
    """Statement timeout of migrations; Prefect applies it on PostgreSQL only."""
    timeout = cfg.database.migration_timeout_seconds
    if cfg.database.kind == "sqlite" or timeout is None:
        return {}
    return {"PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT": str(timeout)}


def hygiene_env(cfg: StackConfig) -> dict[str, str]:
    return {**vacuum_env(cfg), **migration_env(cfg)}


def postgres_args(cfg: StackConfig) -> tuple[str, ...]:
    """Server options for the postgres image's `postgres` command."""
    return ("-c", f"max_connections={cfg.database.postgres.max_connections}")


@dataclass(frozen=True)
class PoolUser:
    """Processes that each open one SQLAlchemy pool on Prefect's database."""

    name: str
    processes: int
    per_process: int


def pool_users(cfg: StackConfig) -> list[PoolUser]:
    """Every Prefect process holding a pool: the API replicas and, when scaled out, the
    services processes and the migration job (it runs again beside the old replicas when an
    `up` replaces it). A server that migrates on start opens one more connection on a
    separate migration engine."""
    pool = cfg.database.pool.size + cfg.database.pool.max_overflow
    if not plan.scale_out(cfg):
        return [PoolUser(plan.SERVER, 1, pool + 1)]
    return [PoolUser(plan.SERVER, cfg.server.replicas, pool),
            PoolUser(plan.SERVICES, cfg.server.services_replicas, pool),
            PoolUser(plan.MIGRATE, 1, pool)]


def connection_users(cfg: StackConfig) -> list[PoolUser]:
    """Every process of the stack that holds PostgreSQL connections while the others do:
    Prefect's pools, db-init and the backup container. The exporter reads Prefect's API, not
    the database; the app's containers (api, services, workers, setup jobs with `database:`)
    open as many as their code does, which `reservedConnections` is for."""
    return pool_users(cfg) + [PoolUser(name, 1, 1) for name in single_sessions(cfg)]


def single_sessions(cfg: StackConfig) -> list[str]:
    """One session each, while the rest of the stack runs: db-init's psql (it runs again in an
    `up` that changes a database or rotates a password) and the backup container's pg_dump
    (one database at a time, no --jobs; `backup.sh now` waits for the schedule's lock, and a
    restore refuses while anything is connected)."""
    names = [plan.DB_INIT] if cfg.database.kind == "postgres" else []
    return names + ([backups.BACKUP] if cfg.backups.enabled else [])


def connections_needed(cfg: StackConfig) -> int:
    """The stack's connections at their most, the reserve, and PostgreSQL's superuser
    slots."""
    held = sum(u.processes * u.per_process for u in connection_users(cfg))
    return held + cfg.database.postgres.reserved_connections + SUPERUSER_RESERVED


def connection_breakdown(cfg: StackConfig) -> str:
    parts = [f"{u.name} {u.processes} × {u.per_process}" for u in connection_users(cfg)]
    return (", ".join(parts) + f", reservedConnections {cfg.database.postgres.reserved_connections}"
            f", superuser slots {SUPERUSER_RESERVED}")
