"""Database hygiene: Prefect's vacuum and retention settings, the migration timeout, and the
check that every Prefect connection pool fits in PostgreSQL's max_connections."""

from __future__ import annotations

import json
import os
import subprocess

import pulumi
import pytest
from harness import Evaluation, evaluate, planned, planned_env, stack_file, started_for
from live.gate import LIVE_PYTHON, require_live_prefect

from components import hygiene, plan
from components.config import StackConfig

POSTGRES = {"database": {"kind": "postgres"}}
HA = {"database": {"kind": "postgres"}, "redis": {"enabled": True}, "server": {"replicas": 2}}
POOL_ENV = "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"


def server_env(config) -> dict[str, str]:
    return planned_env(config, "prefect-server")


def test_vacuum_deletes_old_events_and_old_flow_runs_by_default():
    env = server_env(POSTGRES)
    assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events,flow_runs"
    assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"] == str(90 * 86400)
    assert env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] == "P7D"
    assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS"] == "3600"


def test_flow_runs_kept_forever_when_their_retention_is_null():
    env = server_env({"database": {"retention": {"flowRunsDays": None, "eventsDays": 30}}})
    assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events"
    assert "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD" not in env
    assert env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] == "P30D"


def test_migration_timeout_reaches_the_migration_job_on_postgres_only():
    migrate = planned_env({**HA, "database": {"kind": "postgres", "migrationTimeoutSeconds": 600}},
                          "prefect-migrate")
    assert migrate["PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT"] == "600"
    assert "PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT" not in server_env({})  # SQLite


def test_postgres_runs_with_max_connections_set_explicitly():
    postgres = planned({"database": {"kind": "postgres", "postgres": {"maxConnections": 250}}}
                       ).service("postgres")
    assert postgres.command[-3:] == ("postgres", "-c", "max_connections=250")


@pytest.mark.parametrize("config", [POSTGRES, HA, {**HA, "server": {"replicas": 4}}])
def test_every_process_with_a_prefect_pool_is_counted(config):
    """Whoever adds a process that opens a pool must count it in hygiene.pool_users."""
    cfg = StackConfig.model_validate(config)
    emitted = {s.name: s.replicas for s in plan.build_plan(cfg).services if POOL_ENV in s.env}
    counted = {u.name: u.processes for u in hygiene.pool_users(cfg)}
    assert counted == emitted


EVERYTHING = {**HA, "backups": {"enabled": True}, "monitoring": {"enabled": True},
              "setupJobs": [{"name": "migrate-app", "image": "app:1.0.0", "command": ["true"],
                             "database": {"name": "prefect"}}]}
# The app's containers open as many connections as their code does: reservedConnections.
APP = {"AppApi", "Service", "SetupJob", "WorkerPool"}


@pytest.mark.parametrize("config", [POSTGRES, HA, EVERYTHING])
def test_every_stack_process_that_can_reach_postgres_is_counted(config):
    """Whoever adds a container on the data network (backups, an exporter that reads the
    database, a job that runs beside the stack) must count its connections in
    hygiene.connection_users; PostgreSQL and Redis are the servers, not clients."""
    cfg = StackConfig.model_validate(config)
    reaching = {s.name: s.replicas for s in plan.build_plan(cfg).services
                if s.reaches_data and s.component not in APP
                and s.name not in (plan.POSTGRES, plan.REDIS)}
    assert {u.name: u.processes for u in hygiene.connection_users(cfg)} == reaching


def test_backup_and_db_init_sessions_count_against_max_connections():
    # one server: pool 5 + 10 + its migration engine 1, db-init 1, backup 1, reserve 10, slots 3
    config = {"database": {"kind": "postgres", "postgres": {"maxConnections": 30}},
              "backups": {"enabled": True}}
    cfg = StackConfig.model_validate(config)
    assert hygiene.connections_needed(cfg) == 31
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(config, into=evaluation)
    assert evaluation.resources == []
    assert "31 connections needed" in str(err.value) and "backup 1 × 1" in str(err.value)
    planned({**config, "database": {"kind": "postgres", "postgres": {"maxConnections": 31}}})


def pool_config(size: int, overflow: int, max_connections: int, replicas: int = 2) -> dict:
    return {"database": {"kind": "postgres", "pool": {"size": size, "maxOverflow": overflow},
                         "postgres": {"maxConnections": max_connections}},
            "redis": {"enabled": True}, "server": {"replicas": replicas}}


def test_pools_that_exactly_fit_max_connections_are_accepted():
    # 2 API replicas + services + migrate job, each 20 + 10, db-init 1, reserve 10, slots 3
    cfg = StackConfig.model_validate(pool_config(20, 10, 4 * 30 + 1 + 10 + 3))
    assert hygiene.connections_needed(cfg) == 134
    planned(pool_config(20, 10, 134))


def test_pools_one_connection_over_max_connections_are_refused_with_the_arithmetic():
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(pool_config(20, 10, 133), into=evaluation)
    assert evaluation.resources == []
    message = str(err.value)
    assert "prefect-stack:database.postgres.maxConnections" in message
    assert "134 connections needed" in message and "max_connections is 133" in message
    assert "prefect-server 2 × 30" in message


def test_committed_prod_stack_fits_its_max_connections():
    config, _ = stack_file("Pulumi.prod.yaml")
    cfg = StackConfig.model_validate({k: v for k, v in config.items()})
    assert hygiene.connections_needed(cfg) <= cfg.database.postgres.max_connections


PREFECT_READS_TEST = "test_prefect_reads_the_emitted_hygiene_settings_as_intended"
READ_SETTINGS = (
    "import json; from prefect.settings import get_current_settings as g; s = g().server;"
    "v = s.services.db_vacuum; print(json.dumps({'types': sorted(v.enabled_vacuum_types),"
    "'loop': v.loop_seconds, 'runs': v.retention_period.total_seconds(),"
    "'events': s.events.retention_period.total_seconds(),"
    "'migration': s.database.migration_timeout, 'metrics': s.metrics_enabled}))")


@pytest.fixture(scope="module", autouse=True)
def prefect_reading(request, tmp_path_factory):
    """The live Prefect reading the emitted settings starts with this module's first test and
    imports Prefect (seconds) while the others run; its test reads the answer."""
    if not LIVE_PYTHON.exists():
        yield None
        return

    def start() -> tuple[dict[str, str], subprocess.Popen[str]]:
        emitted = server_env({**POSTGRES, "server": {"basicAuth": {"enabled": True}},
                              "monitoring": {"enabled": True}})
        env = {k: v for k, v in emitted.items() if k.startswith((
            "PREFECT_SERVER_SERVICES_DB_VACUUM", "PREFECT_SERVER_EVENTS_",
            "PREFECT_SERVER_DATABASE_MIGRATION", "PREFECT_SERVER_METRICS"))}
        home = tmp_path_factory.mktemp("prefect-home")
        return env, subprocess.Popen([str(LIVE_PYTHON), "-c", READ_SETTINGS],
                                     env={**env, "PATH": os.environ["PATH"], "HOME": str(home),
                                          "PREFECT_HOME": str(home)},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    yield from started_for(request, PREFECT_READS_TEST, start)


@pytest.mark.live
def test_prefect_reads_the_emitted_hygiene_settings_as_intended(prefect_reading):
    """The names and value formats are Prefect's: its own settings model parses them."""
    require_live_prefect()
    if isinstance(prefect_reading, Exception):
        raise prefect_reading
    env, process = prefect_reading
    assert len(env) == 6, env
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    parsed = json.loads(out.strip().splitlines()[-1])
    assert parsed == {"types": ["events", "flow_runs", "orphans"], "loop": 3600.0,
                      "runs": 90 * 86400.0, "events": 7 * 86400.0, "migration": 1800.0,
                      "metrics": True}
