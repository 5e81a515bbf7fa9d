"""Database hygiene: what Prefect deletes and when, how long a migration may block, and
whether every Prefect connection pool fits in PostgreSQL's `max_connections`.

Setting names are Prefect 3.8.8's (src/prefect/settings/models/server/services.py,
events.py, database.py). Prefect vacuums only old events by default; old flow runs, their
task runs, logs and artifacts stay forever unless the `flow_runs` vacuum type is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import plan
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


def connections_needed(cfg: StackConfig) -> int:
    """Prefect's pools at their fullest, the reserve, and PostgreSQL's superuser slots."""
    pools = sum(u.processes * u.per_process for u in pool_users(cfg))
    return pools + cfg.database.postgres.reserved_connections + SUPERUSER_RESERVED


def connection_breakdown(cfg: StackConfig) -> str:
    parts = [f"{u.name} {u.processes} × {u.per_process}" for u in pool_users(cfg)]
    return (", ".join(parts) + f", reservedConnections {cfg.database.postgres.reserved_connections}"
            f", superuser slots {SUPERUSER_RESERVED}")
