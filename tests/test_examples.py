"""Each reference deployment in ../shared/reference is expressible as a stack config."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import ROOT, evaluate, stack_file

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_there_is_one_example_per_reference_deployment():
    assert len(EXAMPLES) == 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_deploys_every_long_running_container_with_health_check(path: Path):
    config, secrets = stack_file(str(path.relative_to(ROOT)))
    ev = evaluate(config, secrets, stack="example")
    for name, container in ev.containers().items():
        if container.get("mustRun") is not False:
            assert container["healthcheck"]["tests"], name


def test_reference_000_routes_api_stripped_and_the_rest_to_the_app():
    config, secrets = stack_file("examples/000-sqlite-dolt-caddy.yaml")
    ev = evaluate(config, secrets)
    caddyfile = ev.container("cogni-proxy")["uploads"][0]["content"]
    assert "@api-api path /api /api/*" in caddyfile and "uri strip_prefix /api" in caddyfile
    assert caddyfile.rstrip().endswith("handle {\n\t\treverse_proxy api-fallback:8000\n\t}\n}")


def test_reference_002_runs_alembic_after_db_init_and_before_the_worker():
    config, secrets = stack_file("examples/002-postgres-alembic.yaml")
    ev = evaluate(config, secrets)
    labels = {label["label"] for label in ev.container("biocirv-worker-etl")["labels"]}
    assert "prefect-stack.after.setup-db" in labels
    setup_labels = {label["label"] for label in ev.container("biocirv-setup-db")["labels"]}
    assert "prefect-stack.after.db-init" in setup_labels
    env = ev.env("biocirv-setup-db")
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://biocirv:")


def test_reference_004_uses_the_external_url_secret_and_basic_auth_not_an_api_key():
    config, secrets = stack_file("examples/004-external-postgres.yaml")
    ev = evaluate(config, secrets)
    env = ev.env("captionacc-prefect-server")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "test-secret-supabaseDatabaseUrl"
    app = ev.env("captionacc-orchestrator")
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
