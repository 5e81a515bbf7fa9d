"""The committed dev and prod stacks, evaluated as `pulumi up` would run them, on mocks."""

from __future__ import annotations

import pytest
from harness import (
    CONTAINER,
    RANDOM_PASSWORD,
    evaluate,
    generated_password,
    is_secret,
    plain_strings,
    stack_file,
)

STACKS = ["dev", "prod"]


@pytest.fixture(scope="module", params=STACKS)
def stack(request):
    config, secrets = stack_file(f"Pulumi.{request.param}.yaml")
    return request.param, evaluate(config, secrets, stack=request.param)


def long_running(ev):
    return {n: c for n, c in ev.containers().items() if c.get("mustRun") is not False}


def test_every_long_running_container_has_a_health_check_and_restart_policy(stack):
    _, ev = stack
    for name, container in long_running(ev).items():
        assert container.get("healthcheck", {}).get("tests"), name
        assert container["restart"] == "unless-stopped", name
        assert container["memory"] > 0, name
        assert container["logOpts"]["max-size"] and container["logDriver"], name
        assert "no-new-privileges:true" in container["securityOpts"], name


def test_one_shot_jobs_run_once_and_report_their_exit_code(stack):
    _, ev = stack
    jobs = {n: c for n, c in ev.containers().items() if c.get("mustRun") is False}
    assert jobs, "every stack creates at least its work pool"
    for name, job in jobs.items():
        assert job["attach"] is True and job["restart"] == "no", name


def test_images_are_pinned_and_containers_use_the_pulled_image_id(stack):
    _, ev = stack
    images = [r.plain["name"] for r in ev.of_type("docker:index/remoteImage:RemoteImage")]
    assert images
    for image in images:
        tag = image.rsplit(":", 1)[-1]
        assert "/" not in tag and tag != "latest" and "." in tag, image
    for name, container in ev.containers().items():
        assert container["image"].startswith("sha256:"), name


def test_containers_with_fixed_names_are_replaced_safely(stack):
    _, ev = stack
    for name in ev.containers():
        opts = ev.options[name]
        assert opts.delete_before_replace is True, name
        assert "healthcheck" in (opts.replace_on_changes or []), name
        assert "envs" in (opts.additional_secret_outputs or []), name


def test_workers_reach_the_server_on_the_internal_network_under_the_sub_path(stack):
    name, ev = stack
    prefix = f"prefect-{name}"
    server_env = ev.env(f"{prefix}-prefect-server")
    base = server_env["PREFECT_SERVER_API_BASE_PATH"]
    assert base == "/prefect/api"
    for container in ev.containers():
        if "-worker-" in container or "-pool-" in container:
            env = ev.env(container)
            assert env["PREFECT_API_URL"] == f"http://prefect-server:4200{base}"


def test_sub_path_settings_agree_between_server_health_check_and_proxy(stack):
    name, ev = stack
    prefix = f"prefect-{name}"
    env = ev.env(f"{prefix}-prefect-server")
    assert env["PREFECT_SERVER_UI_SERVE_BASE"] == "/prefect"
    assert env["PREFECT_SERVER_UI_API_URL"] == "/prefect/api"
    probe = " ".join(ev.container(f"{prefix}-prefect-server")["healthcheck"]["tests"])
    assert "http://localhost:4200/prefect/api/health" in probe
    caddyfile = ev.container(f"{prefix}-proxy")["uploads"][0]["content"]
    assert "@prefect-server-prefect path /prefect /prefect/*" in caddyfile
    prefect_block = caddyfile.split("handle @prefect-server-prefect {")[1].split("\n\t}")[0]
    assert "strip_prefix" not in prefect_block
    assert "redir /prefect /prefect/ 308" in caddyfile


def test_database_lives_on_the_internal_network_only(stack):
    name, ev = stack
    networks = {r.plain["name"]: r.plain for r in ev.of_type("docker:index/network:Network")}
    assert networks[f"prefect-{name}-data"]["internal"] is True
    assert networks[f"prefect-{name}-app"]["internal"] is False
    for container_name, container in ev.containers().items():
        if container_name.endswith(("-postgres", "-redis")):
            assert [n["name"] for n in container["networksAdvanced"]] == [f"prefect-{name}-data"]
            assert not container.get("ports")


def assert_no_plain_secret(ev, known: set[str]) -> None:
    """Walk every registered input and component output: a known secret value may only
    appear inside a secret."""
    for resource in ev.resources:
        for text in plain_strings(resource.inputs):
            assert not any(secret in text for secret in known), (resource.name, text[:80])
    for urn, outputs in ev.component_outputs.items():
        for text in plain_strings(outputs):
            assert not any(secret in text for secret in known), urn


def test_no_generated_secret_appears_outside_a_secret(stack):
    name, ev = stack
    _, secrets = stack_file(f"Pulumi.{name}.yaml")
    known = set(secrets.values()) | {generated_password(r.name) for r in ev.of_type(RANDOM_PASSWORD)}
    assert known or name == "dev"
    assert_no_plain_secret(ev, known)


def test_no_secret_set_in_config_appears_outside_a_secret():
    config, _ = stack_file("Pulumi.prod.yaml")
    secrets = {key: f"configured-{key}-value" for key in
               ("basicAuthPassword", "postgresPassword", "prefectDbPassword", "appDbPassword")}
    ev = evaluate(config, secrets, stack="prod")
    assert not ev.of_type(RANDOM_PASSWORD)
    assert ev.env("prefect-prod-prefect-server")["PREFECT_SERVER_API_AUTH_STRING"] == \
        "admin:configured-basicAuthPassword-value"
    assert_no_plain_secret(ev, set(secrets.values()))
    assert is_secret(ev.outputs_of("prefect")["login"])


def test_login_output_is_secret_when_basic_auth_is_on(stack):
    name, ev = stack
    login = ev.outputs_of("prefect").get("login")
    if name == "prod":
        assert is_secret(login)
    else:
        assert login is None


def test_component_resources_use_real_type_tokens_and_parents(stack):
    _, ev = stack
    tokens = {r.type for r in ev.resources if r.type.startswith("prefect-stack:")}
    assert {"prefect-stack:index:PrefectStack", "prefect-stack:index:PrefectServer",
            "prefect-stack:index:WorkerPool", "prefect-stack:index:ReverseProxy",
            "prefect-stack:index:AppApi", "prefect-stack:index:StackSecrets"} <= tokens
    for name in ev.containers():
        assert ev.options[name].parent is not None, name
    outputs = [o for urn, o in ev.component_outputs.items() if urn.endswith("PrefectServer::server")]
    assert outputs and outputs[0]["internalApiUrl"].startswith("http://prefect-server:4200")


def test_dev_stack_runs_sqlite_with_one_server_and_publishes_prefect_on_localhost():
    config, secrets = stack_file("Pulumi.dev.yaml")
    ev = evaluate(config, secrets, stack="dev")
    env = ev.env("prefect-dev-prefect-server")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == \
        "sqlite+aiosqlite:////var/lib/prefect/prefect.db"
    assert [m["target"] for m in ev.container("prefect-dev-prefect-server")["mounts"]] == \
        ["/var/lib/prefect"]
    assert ev.container("prefect-dev-prefect-server")["ports"] == [
        {"ip": "127.0.0.1", "internal": 4200, "external": 4200}]
    assert ev.plan is not None and ev.of_type(CONTAINER)


def test_prod_stack_publishes_only_proxy_ports_and_uses_postgres_with_auth():
    config, secrets = stack_file("Pulumi.prod.yaml")
    ev = evaluate(config, secrets, stack="prod")
    for name, container in ev.containers().items():
        if not name.endswith("-proxy"):
            assert not container.get("ports"), name
    proxy_ports = {p["internal"] for p in ev.container("prefect-prod-proxy")["ports"]}
    assert proxy_ports == {80, 443}
    raw = ev.raw_container("prefect-prod-prefect-server")
    assert is_secret(raw["envs"]), "env carrying the DB URL and auth string must be secret"
    env = ev.env("prefect-prod-prefect-server")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://prefect:gen-")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].endswith("@postgres:5432/prefect")
    assert env["PREFECT_SERVER_API_AUTH_STRING"].startswith("admin:gen-")
    for worker in ("prefect-prod-worker-prod-pool-1", "prefect-prod-worker-prod-pool-2"):
        wenv = ev.env(worker)
        assert wenv["PREFECT_API_AUTH_STRING"] == env["PREFECT_SERVER_API_AUTH_STRING"]
        assert wenv["DATABASE_URL"].startswith("postgresql://app:gen-")


def test_prod_secrets_set_in_config_are_used_instead_of_generated_ones():
    config, _ = stack_file("Pulumi.prod.yaml")
    ev = evaluate(config, {"basicAuthPassword": "s3cret pass/word"}, stack="prod")
    env = ev.env("prefect-prod-prefect-server")
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:s3cret pass/word"
    generated = {r.name for r in ev.of_type(RANDOM_PASSWORD)}
    assert "basicAuthPassword" not in generated
    assert {"postgresPassword", "prefectDbPassword", "appDbPassword"} <= generated
