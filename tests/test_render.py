"""`python -m components.render -s STACK`: the planned containers, like `docker compose config`,
with every secret redacted to the config key that holds it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import yaml
from harness import ROOT


def render(*args: str, cwd=ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components.render", *args], cwd=cwd,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})


def test_dev_shows_every_container_in_creation_order_with_its_wiring():
    result = render("-s", "dev")
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    services = document["services"]
    assert sorted(services) == ["prefect-dev-api", "prefect-dev-pool-dev-pool",
                                "prefect-dev-prefect-server", "prefect-dev-proxy",
                                "prefect-dev-worker-dev-pool"]
    order = list(services)
    for name, service in services.items():
        assert all(order.index(d) < order.index(name) for d in service.get("depends_on", [])), name
    server = services["prefect-dev-prefect-server"]
    assert server["image"] == "prefecthq/prefect:3.8.8-python3.12"
    assert server["environment"]["PREFECT_SERVER_API_BASE_PATH"] == "/prefect/api"
    assert server["ports"] == ["127.0.0.1:4200:4200"]
    assert server["volumes"] == ["prefect-dev-prefect-data:/var/lib/prefect"]
    assert "/prefect/api/health" in server["healthcheck"][-1]
    worker = services["prefect-dev-worker-dev-pool"]
    assert worker["depends_on"] == ["prefect-dev-pool-dev-pool", "prefect-dev-prefect-server"]
    assert services["prefect-dev-pool-dev-pool"]["run"].startswith("once")
    caddyfile = services["prefect-dev-proxy"]["files"]["/etc/caddy/Caddyfile"]
    assert "reverse_proxy prefect-server:4200" in caddyfile
    assert [r["prefix"] for r in document["routes"]] == ["/prefect", "/api"]


def test_prod_redacts_every_secret_naming_its_config_key():
    result = render("-s", "prod")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    server_env = services["prefect-prod-prefect-server"]["environment"]
    assert server_env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:<secret:basicAuthPassword>"
    assert server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://prefect:<secret:prefectDbPassword>@postgres:5432/prefect")
    caddyfile = services["prefect-prod-proxy"]["files"]["/etc/caddy/Caddyfile"]
    assert "admin <bcrypt:basicAuthPassword>" in caddyfile
    assert "__secret_" not in result.stdout and "$2b$" not in result.stdout


def test_unknown_stack_names_the_stacks_that_exist():
    result = render("-s", "staging")
    assert result.returncode == 2
    assert "Pulumi.staging.yaml does not exist (stacks here: dev, prod)" in result.stderr


def test_bad_stack_config_is_reported_by_key_without_a_traceback(tmp_path):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  prefect-stack:server:\n    port: '80'\n")
    result = render("-s", "bad", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "prefect-stack:server.port" in result.stderr
    assert "Traceback" not in result.stderr
