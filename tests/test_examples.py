"""Each reference deployment in ../shared/reference is expressible as a stack config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from harness import ROOT, evaluate, filled, is_secret, planned, secret_values, stack_file

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_there_is_one_example_per_reference_deployment():
    assert len(EXAMPLES) == 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_deploys_every_long_running_container_with_health_check(path: Path):
    config, secrets = stack_file(str(path.relative_to(ROOT)))
    for spec in planned(config, secrets).services:  # one-shot jobs are the only ones not kept running
        if not spec.one_shot:
            assert spec.healthcheck is not None and spec.healthcheck.test, spec.name


def rendered_env(config: dict, secrets: dict[str, str], service: str) -> dict[str, str]:
    """A service's env in the plan with the known test secrets filled in, as Docker gets it."""
    stack_plan = planned(config, secrets)
    values = secret_values(stack_plan, secrets)
    return {k: filled(v, values, "test") for k, v in stack_plan.service(service).env.items()}


def names(ev) -> set[str]:
    return set(ev.containers())


def uploads(ev, container: str) -> dict[str, str]:
    return {u["file"]: u["content"] for u in ev.container(container).get("uploads", [])}


def dependencies(ev, name: str) -> tuple[str, ...]:
    return next(r.dependencies for r in ev.resources if r.name == name)


def ports(ev, container: str) -> list[tuple[str, int, int]]:
    return [(p.get("ip"), p["external"], p["internal"])
            for p in ev.container(container).get("ports", [])]


def test_reference_000_api_takes_api_stripped_and_everything_else_with_direct_ports():
    config, secrets = stack_file("examples/000-sqlite-dolt-caddy.yaml")
    ev = evaluate(config, secrets)
    assert names(ev) == {"cogni-prefect-server", "cogni-pool-cogni-pool", "cogni-worker-cogni-pool",
                         "cogni-api", "cogni-dolt-db", "cogni-proxy"}  # no stand-in fallback
    caddyfile = uploads(ev, "cogni-proxy")["/etc/caddy/Caddyfile"]
    assert "@api-api path /api /api/*" in caddyfile and "uri strip_prefix /api" in caddyfile
    assert caddyfile.rstrip().endswith("handle {\n\t\treverse_proxy api:8000\n\t}\n}")
    assert ports(ev, "cogni-api") == [("127.0.0.1", 8000, 8000)]
    assert ports(ev, "cogni-prefect-server") == [("127.0.0.1", 4200, 4200)]
    assert ev.env("cogni-prefect-server")["PREFECT_SERVER_UI_API_URL"] == "/prefect/api"
    assert ev.container("cogni-dolt-db")["wait"] is True  # the API waits for Dolt healthy
    assert "cogni-dolt-db" in dependencies(ev, "cogni-api")
    worker = ev.env("cogni-worker-cogni-pool")
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/prefect/api"
    assert worker["OPENAI_API_KEY"] == "test-secret-openaiApiKey"


def test_reference_001_runs_without_a_proxy_with_redis_monitoring_and_secret_files():
    config, secrets = stack_file("examples/001-sqlite-redis-monitoring.yaml")
    ev = evaluate(config, secrets)
    assert names(ev) == {"bluesky-prefect-server", "bluesky-pool-default", "bluesky-worker-default",
                         "bluesky-redis", "bluesky-prometheus", "bluesky-grafana",
                         "bluesky-alertmanager"}
    assert ev.env("bluesky-prefect-server")["PREFECT_SERVER_UI_API_URL"] == \
        "http://localhost:4200/api"
    worker = ev.container("bluesky-worker-default")
    assert [m["target"] for m in worker["mounts"]] == ["/opt/prefect/flows", "/opt/prefect/data"]
    assert ev.env("bluesky-worker-default")["REDIS_URL"].startswith("redis://:gen-")
    assert ports(ev, "bluesky-redis") == []
    assert {port for c in ("bluesky-prometheus", "bluesky-grafana", "bluesky-alertmanager")
            for _, port, _ in ports(ev, c)} == {9090, 3000, 9093}
    alertmanager = uploads(ev, "bluesky-alertmanager")["/etc/alertmanager/alertmanager.yml"]
    assert "api_url: test-secret-slackWebhookUrl" in alertmanager
    raw = ev.raw_container("bluesky-alertmanager")["uploads"]
    assert is_secret(raw) or is_secret(raw[0]["content"])
    assert "url: http://prometheus:9090" in uploads(ev, "bluesky-grafana")[
        "/etc/grafana/provisioning/datasources/prometheus.yml"]


def test_reference_002_runs_alembic_after_db_init_and_before_the_worker():
    config, secrets = stack_file("examples/002-postgres-alembic.yaml")
    ev = evaluate(config, secrets)
    labels = {label["label"] for label in ev.container("biocirv-worker-etl")["labels"]}
    assert "prefect-stack.after.setup-db" in labels
    setup_labels = {label["label"] for label in ev.container("biocirv-setup-db")["labels"]}
    assert "prefect-stack.after.db-init" in setup_labels
    env = ev.env("biocirv-setup-db")
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://biocirv:")
    assert ev.env("biocirv-prefect-server")["PREFECT_SERVER_UI_API_URL"] == \
        "http://localhost:4200/api"
    assert "/run/secrets/credentials.json" in uploads(ev, "biocirv-worker-etl")
    assert "biocirv-proxy" not in names(ev)


def test_reference_003_one_minio_two_routes_bucket_job_and_derived_broker_urls():
    config, secrets = stack_file("examples/003-traefik-many-services.yaml")
    ev = evaluate(config, secrets)
    assert "computor-minio-console" not in names(ev)  # one MinIO container, two routes
    dynamic = yaml.safe_load(uploads(ev, "computor-proxy")["/etc/traefik/dynamic.yml"])
    services = dynamic["http"]["services"]
    assert services["minio-minio"]["loadBalancer"]["servers"] == [{"url": "http://minio:9000"}]
    assert services["minio-minio-console"]["loadBalancer"]["servers"] == [
        {"url": "http://minio:9001"}]
    routers = dynamic["http"]["routers"]
    assert "auth" in routers["flower-flower"]["middlewares"]
    assert "auth" not in routers["prefect-server-prefect"]["middlewares"]
    assert ports(ev, "computor-proxy") == [("0.0.0.0", 8080, 80)]
    assert ev.container("computor-minio")["wait"] is True
    assert "computor-minio" in dependencies(ev, "computor-minio-bucket")
    bucket = ev.container("computor-minio-bucket")
    # mc's entrypoint cleared: the run wrapper is the entrypoint and runs the shell command
    assert bucket["entrypoints"][:2] == ["sh", "-c"]
    assert bucket["command"][:2] == ["sh", "-c"] and "mc mb" in bucket["command"][2]
    labels = {label["label"] for label in ev.container("computor-uvicorn")["labels"]}
    assert "prefect-stack.after.minio-bucket" in labels
    broker = ev.env("computor-celery-system-worker-1")["CELERY_BROKER_URL"]
    assert broker.startswith("redis://:gen-") and broker.endswith("@redis:6379/0")
    assert "$$" not in " ".join(ev.container("computor-celery-system-worker-1")[
        "healthcheck"]["tests"])


def test_reference_004_uses_the_external_url_secret_and_basic_auth_not_an_api_key():
    config, secrets = stack_file("examples/004-external-postgres.yaml")
    env = rendered_env(config, secrets, "prefect-server")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "test-secret-supabaseDatabaseUrl"
    assert env["PREFECT_SERVER_UI_API_URL"] == "/api"
    app = rendered_env(config, secrets, "orchestrator")
    assert app["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert app["PREFECT_API_AUTH_STRING"] == "orchestrator:test-secret-basicAuthPassword"
    assert "PREFECT_API_KEY" not in app


def test_readme_config_reference_matches_the_models():
    from components.docs import reference

    readme = (ROOT / "README.md").read_text()
    embedded = readme.split("<!-- config-reference:start -->\n")[1].split(
        "<!-- config-reference:end -->")[0]
    assert embedded == reference(), "run: python -m components.docs, paste into README.md"


def test_readme_shows_the_current_dev_caddyfile():
    snapshot = (ROOT / "tests" / "snapshots" / "dev.Caddyfile").read_text()
    assert f"```caddyfile\n{snapshot}```" in (ROOT / "README.md").read_text()
