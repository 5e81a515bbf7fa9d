"""Prefect knowledge as plain functions: no Pulumi, no Docker."""

from __future__ import annotations

import bcrypt
import pytest

from components import plan
from components.config import StackConfig
from components.routes import Route, ordered, route_problems
from components.spec import SecretText


def cfg(**sections) -> StackConfig:
    return StackConfig.model_validate(sections)


def test_sub_path_sets_all_three_prefect_settings_and_moves_the_client_url():
    env = plan.prefect_server_env(cfg(server={"basePath": "/orchestration"}))
    assert env["PREFECT_SERVER_UI_SERVE_BASE"] == "/orchestration"
    assert env["PREFECT_SERVER_API_BASE_PATH"] == "/orchestration/api"
    assert env["PREFECT_SERVER_UI_API_URL"] == "/orchestration/api"
    assert plan.internal_api_url(cfg(server={"basePath": "/orchestration"})) == \
        "http://prefect-server:4200/orchestration/api"


def test_prefect_at_the_root_needs_no_sub_path_settings_but_still_its_ui_api_url():
    """Unset, Prefect 3.8.8 tells the browser to call http://0.0.0.0:4200/api."""
    config = cfg(server={"basePath": "/"})
    env = plan.prefect_server_env(config)
    assert "PREFECT_SERVER_UI_SERVE_BASE" not in env
    assert env["PREFECT_SERVER_UI_API_URL"] == "/api"
    assert plan.internal_api_url(config) == "http://prefect-server:4200/api"
    assert plan.build_plan(config).ui_url == "https://localhost/"


def test_without_a_proxy_the_ui_calls_the_declared_public_url():
    config = cfg(server={"basePath": "/", "publicUrl": "http://prefect.lan:4200",
                         "publish": {"hostPort": 4200, "hostIp": "0.0.0.0"}},
                 proxy={"kind": "none"})
    assert plan.prefect_server_env(config)["PREFECT_SERVER_UI_API_URL"] == \
        "http://prefect.lan:4200/api"
    stack_plan = plan.build_plan(config)
    assert (stack_plan.ui_url, stack_plan.api_url) == ("http://prefect.lan:4200/",
                                                      "http://prefect.lan:4200/api")
    assert stack_plan.routes == ()


def test_one_login_prefects_route_has_no_proxy_auth_even_with_basic_auth_on():
    config = cfg(server={"basicAuth": {"enabled": True}})
    assert plan.prefect_route(config).auth is False
    assert "PREFECT_SERVER_API_AUTH_STRING" in plan.prefect_server_env(config)


def test_server_turns_telemetry_off_and_binds_all_interfaces():
    env = plan.prefect_server_env(cfg())
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_SERVER_API_HOST"] == "0.0.0.0"


def test_postgres_url_is_built_from_the_role_secret_url_encoded():
    url = plan.prefect_server_env(cfg(database={"kind": "postgres"}))[
        "PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert isinstance(url, SecretText)
    assert url.render({"prefectDbPassword": "p@ss/w:rd"}) == \
        "postgresql+asyncpg://prefect:p%40ss%2Fw%3Ard@postgres:5432/prefect"


@pytest.mark.parametrize(("given", "used"), [
    ("postgresql://u:p@db.supabase.co:5432/postgres",
     "postgresql+asyncpg://u:p@db.supabase.co:5432/postgres"),
    ("postgres://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
    ("postgresql+asyncpg://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
])
def test_external_database_url_comes_from_its_secret_with_the_asyncpg_driver(given, used):
    """Reference 004 set Supabase's `postgresql://` URL, which Prefect's server cannot use."""
    url = plan.prefect_database_url(cfg(database={"kind": "external"}))
    assert isinstance(url, SecretText) and url.keys == ("externalDatabaseUrl",)
    assert url.render({"externalDatabaseUrl": given}) == used


def test_scale_out_runs_api_replicas_without_services_plus_one_services_process():
    config = cfg(database={"kind": "postgres"}, redis={"enabled": True},
                 server={"replicas": 3})
    names = [s.name for s in plan.build_plan(config).services]
    server = plan.build_plan(config).service("prefect-server")
    assert server.replicas == 3 and "--no-services" in server.command
    assert names.index("prefect-migrate") < names.index("prefect-server") < \
        names.index("prefect-services")
    env = server.env
    assert env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] == "false"
    assert env["PREFECT_SERVER_EVENTS_MESSAGING_BROKER"] == "prefect_redis.messaging"
    assert env["PREFECT_SERVER_DOCKET_URL"].render({"redisPassword": "x y"}) == \
        "redis://:x%20y@redis:6379/1"


def test_worker_command_polls_its_pool_with_health_server_and_tuned_interval():
    config = cfg(workers=[{"name": "etl", "queryIntervalSeconds": 2, "concurrencyLimit": 3,
                           "extraPipPackages": ["pandas==2.2.3"]}])
    pool, worker = plan.worker_specs(config, config.workers[0], ())
    assert worker.command == ("python", "/opt/prefect-stack/prefect_worker.py", "prefect",
                              "worker", "start", "--pool", "etl", "--type", "process",
                              "--with-healthcheck", "--fork-server")  # runs forked (default)
    assert "/opt/prefect-stack/prefect_worker.py" in {u.path for u in worker.uploads}
    assert worker.env["PREFECT_WORKER_QUERY_SECONDS"] == "2"
    assert worker.env["EXTRA_PIP_PACKAGES"] == "pandas==2.2.3"
    assert "http://localhost:8080/health" in " ".join(worker.healthcheck.test)
    assert pool.one_shot and "set-concurrency-limit etl 3" in pool.command[-1]
    assert worker.depends_on[:2] == ("prefect-server", "pool-etl")


def test_init_sql_is_idempotent_and_escapes_passwords():
    config = cfg(database={"kind": "postgres", "postgres": {"databases": [
        {"name": "prefect", "owner": "prefect"}, {"name": "app", "owner": "app"}]}})
    sql = SecretText(plan.init_sql(config)).render(
        {"prefectDbPassword": "it's", "appDbPassword": "x"})
    assert "ALTER ROLE prefect WITH LOGIN PASSWORD 'it''s';" in sql
    assert "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\\gexec" in sql
    assert "REVOKE ALL ON DATABASE app FROM PUBLIC;" in sql


def test_bcrypt_filter_is_stable_per_scope_and_verifies():
    text = SecretText("admin ${pw|bcrypt}")
    first = text.render({"pw": "hunter2"}, "prefect-stack/dev")
    assert first == text.render({"pw": "hunter2"}, "prefect-stack/dev")
    assert first != text.render({"pw": "hunter2"}, "prefect-stack/prod")
    hashed = first.split(" ", 1)[1]
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"hunter2", hashed.encode())
    assert not bcrypt.checkpw(b"hunter3", hashed.encode())


def test_redacted_secret_text_shows_the_key_not_the_value():
    assert SecretText("u:${pw}").redacted() == "u:<secret:pw>"


def test_plan_is_ordered_so_every_dependency_comes_first():
    config = cfg(database={"kind": "postgres", "postgres": {"databases": [
        {"name": "prefect", "owner": "prefect"}, {"name": "app", "owner": "app"}]}},
        redis={"enabled": True}, api={"image": "a:1.0.0", "database": {"name": "app"}},
        setupJobs=[{"name": "migrate", "image": "a:1.0.0", "command": ["alembic", "upgrade"],
                    "database": {"name": "app"}, "before": ["api", "default"]}])
    seen: set[str] = set()
    for spec in plan.build_plan(config).services:
        assert set(spec.depends_on) <= seen, spec.name
        seen.add(spec.name)
    api = plan.build_plan(config).service("api")
    assert "migrate" in api.depends_on and "db-init" in api.depends_on


def test_sqlite_server_is_the_only_database_user_and_postgres_stays_internal():
    postgres_plan = plan.build_plan(cfg(database={"kind": "postgres"}))
    assert postgres_plan.service("postgres").networks == ("data",)
    assert postgres_plan.service("postgres").ports == ()
    sqlite_plan = plan.build_plan(cfg())
    assert [s.name for s in sqlite_plan.services if s.component == "Database"] == []


def test_route_collisions_name_both_routes_and_overlapping_prefixes_are_fine():
    routes = [Route("/api", "api", 8000, source="api.route"),
              Route("/api-docs", "docs", 80, source="services[0].route"),
              Route("/api/v2", "v2", 80, source="services[3].route"),
              Route("/api", "other", 80, source="services[4].route"),
              Route("/", "a", 1, source="services[1].route"),
              Route("/", "b", 1, source="services[2].route")]
    messages = [str(p) for p in route_problems(routes)]
    assert len(messages) == 2, messages
    assert any("services[4].route" in m and "api.route" in m for m in messages)
    assert any("services[2].route" in m and "services[1].route" in m for m in messages)


def test_routes_under_prefects_api_at_the_root_are_refused_but_lookalikes_are_not():
    config = cfg(server={"basePath": "/"})
    routes = [Route("/api/v2", "x", 1, source="services[0].route"),
              Route("/api-docs", "y", 1, source="services[1].route")]
    messages = [str(p) for p in route_problems(routes, plan.reserved_prefixes(config))]
    assert len(messages) == 1 and "services[0].route" in messages[0]


SERVICE = {"image": "busybox:1.37.0", "healthCheck": {"command": ["CMD", "true"]}}


def test_redis_access_gives_a_secret_url_the_internal_network_and_waits_for_redis():
    config = cfg(redis={"enabled": True}, services=[
        {**SERVICE, "name": "celery", "redis": {"env": "CELERY_BROKER_URL", "db": 2}}])
    spec = plan.build_plan(config).service("celery")
    assert spec.env["CELERY_BROKER_URL"].render({"redisPassword": "p w"}) == \
        "redis://:p%20w@redis:6379/2"
    assert spec.networks == ("app", "data") and "redis" in spec.depends_on


def test_files_with_placeholders_are_secret_and_the_escape_stays_literal():
    config = cfg(services=[{**SERVICE, "name": "alertmanager", "files": [
        {"path": "/etc/am.yml", "content": "url: ${slackWebhook}\nuser: $${USER}\n"},
        {"path": "/etc/plain.yml", "content": "a: $${HOME}\n", "mode": "0755"}]}])
    secret, plain = plan.build_plan(config).service("alertmanager").uploads
    assert isinstance(secret.content, SecretText) and secret.content.keys == ("slackWebhook",)
    assert secret.content.render({"slackWebhook": "https://hooks/x"}) == \
        "url: https://hooks/x\nuser: ${USER}\n"
    assert (plain.content, plain.executable, secret.executable) == ("a: ${HOME}\n", True, False)
    assert [s.key for s in plan.build_plan(config).secrets] == ["slackWebhook"]


def test_workers_get_data_directories_and_the_internal_network_on_request():
    config = cfg(workers=[{"name": "etl", "internalNetwork": True,
                           "flowCode": {"hostPath": "./flows"},
                           "volumes": [{"hostPath": "./data", "mountPath": "/data"}]}])
    worker = plan.build_plan(config).service("worker-etl")
    assert [m.target for m in worker.mounts] == ["/opt/prefect/flows", "/data"]
    assert worker.networks == ("app", "data")


def test_depends_on_orders_the_plan_and_waits_for_healthy_or_for_the_job():
    config = cfg(api={"image": "a:1.0.0", "dependsOn": ["dolt"]}, services=[
        {**SERVICE, "name": "minio-init", "dependsOn": ["minio"]},
        {**SERVICE, "name": "minio", "dependsOn": ["bucket-job"]},
        {**SERVICE, "name": "dolt"}],
        setupJobs=[{"name": "bucket-job", "image": "minio/mc:RELEASE.2025-01-17T23-25-50Z",
                    "command": ["true"]}])
    stack_plan = plan.build_plan(config)
    names = [s.name for s in stack_plan.services]
    assert names.index("dolt") < names.index("api")
    assert names.index("bucket-job") < names.index("minio") < names.index("minio-init")
    assert stack_plan.service("dolt").wait_healthy and stack_plan.service("minio").wait_healthy
    assert not stack_plan.service("minio-init").wait_healthy
    assert not stack_plan.service("bucket-job").wait_healthy  # a job is waited for by exit code


@pytest.mark.parametrize("prefixes", [["/prefect", "/api", "/"], ["/", "/a", "/bb"]])
def test_routes_are_ordered_most_specific_first_with_the_fallback_last(prefixes):
    routes = ordered([Route(p, "s", 1) for p in prefixes])
    assert routes[-1].prefix == "/"
    lengths = [len(r.prefix) for r in routes[:-1]]
    assert lengths == sorted(lengths, reverse=True)


def test_entrypoint_override_reaches_the_spec_and_empty_clears_it():
    config = cfg(services=[{**SERVICE, "name": "shell", "entrypoint": ["/bin/sh", "-c"],
                            "command": ["echo hi"]}],
                 setupJobs=[{"name": "bucket", "image": "minio/mc:RELEASE.2025-01-17T23-25-50Z",
                             "entrypoint": [], "command": ["sh", "-c", "mc mb x"]}])
    stack_plan = plan.build_plan(config)
    assert stack_plan.service("shell").entrypoint == ("/bin/sh", "-c")
    assert stack_plan.service("bucket").entrypoint == ()
    assert plan.build_plan(cfg(services=[{**SERVICE, "name": "x"}])).service("x").entrypoint is None
