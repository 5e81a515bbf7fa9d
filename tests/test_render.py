"""`./render STACK|FILE [--format compose]`: everything the Docker provider would receive, like
`docker compose config`, with every secret redacted to the config key that holds it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from harness import ROOT, check_jsonschema, stack_file

from components import plan, scaleout
from components import render as render_module
from components.config import StackConfig
from components.dryrun import Evaluation
from components.render import Target, evaluated, main, text_of
from components.yamlio import load as load_yaml

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
STACK_FILES = [ROOT / "Pulumi.dev.yaml", ROOT / "Pulumi.prod.yaml", *EXAMPLES]


def rendered(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


_EVALUATIONS: dict[tuple[str, str, Path], Evaluation] = {}


def evaluated_once(target: Target, project_dir: Path) -> Evaluation:
    """`render.evaluated`, once per stack file (its content, stack name and project directory)
    for this module: every format, every check and every CLI call read the same evaluation."""
    key = (target.path.read_text(), target.stack, project_dir)
    if key not in _EVALUATIONS:
        _EVALUATIONS[key] = evaluated(target, project_dir)
    return _EVALUATIONS[key]


@pytest.fixture(autouse=True)
def one_evaluation_per_stack_file(monkeypatch):
    monkeypatch.setattr(render_module, "evaluated", evaluated_once)


def evaluation_of(path) -> tuple[Evaluation, str]:
    stack = path.name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    return evaluated_once(Target(path, stack), ROOT), stack


def text(path, fmt: str = "yaml") -> str:
    return text_of(*evaluation_of(path), fmt)


@pytest.fixture(scope="module")
def prod() -> dict:
    return load_yaml(text(ROOT / "Pulumi.prod.yaml"))


def test_dev_shows_every_container_in_creation_order_with_its_wiring(capsys):
    code, out, err = rendered(capsys, "dev")
    assert code == 0, err
    document = load_yaml(out)
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
    assert "/prefect/api/health" in server["healthcheck"]["test"][-1]
    worker = services["prefect-dev-worker-dev-pool"]
    assert worker["depends_on"] == ["prefect-dev-pool-dev-pool", "prefect-dev-prefect-server"]
    assert services["prefect-dev-pool-dev-pool"]["run"].startswith("once")
    caddyfile = services["prefect-dev-proxy"]["files"]["/etc/caddy/Caddyfile"]
    assert "reverse_proxy prefect-server:4200" in caddyfile
    assert [r["prefix"] for r in document["routes"]] == ["/prefect", "/api"]


def test_prod_redacts_every_secret_naming_its_config_key(prod):
    services = prod["services"]
    server_env = services["prefect-prod-prefect-server"]["environment"]
    assert server_env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:<secret:basicAuthPassword>"
    assert server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://prefect:<secret:prefectDbPassword>@postgres:5432/prefect")
    rendered = text(ROOT / "Pulumi.prod.yaml")
    assert "__secret_" not in rendered and "$2b$" not in rendered


def test_prod_shows_the_docker_settings_a_compose_user_looks_for(prod):
    postgres = prod["services"]["prefect-prod-postgres"]
    assert postgres["restart"] == "unless-stopped"
    assert postgres["memory_mb"] == 1024 and postgres["cpus"] == "0.5"
    assert postgres["logging"] == {"driver": "json-file",
                                   "options": {"max-size": "20m", "max-file": "5"}}
    assert postgres["security_opt"] == ["no-new-privileges:true"]
    assert postgres["healthcheck"] | {"test": None} == {
        "test": None, "interval": "5s", "timeout": "5s", "start_period": "10s", "retries": 10}
    assert postgres["networks"] == {"prefect-prod-data": ["postgres"]}
    assert prod["services"]["prefect-prod-db-init"]["restart"] == "no"
    assert prod["networks"]["prefect-prod-data"]["internal"] is True
    assert prod["networks"]["prefect-prod-app"]["internal"] is False
    assert prod["volumes"]["prefect-prod-postgres-data"] == {"kept_on_destroy": True}
    assert prod["volumes"]["prefect-prod-proxy-config"] == {"kept_on_destroy": False}


# Provider input -> where render shows it. Inputs not listed must appear under other_inputs.
SHOWN_AS = {
    "name": None, "image": "image", "command": "command", "entrypoints": "entrypoint",
    "envs": "environment",
    "uploads": "files", "healthcheck": "healthcheck", "networksAdvanced": "networks",
    "mounts": "volumes", "ports": "ports", "user": "user", "workingDir": "working_dir",
    "mustRun": "run", "wait": "run", "restart": "restart", "memory": "memory_mb",
    "cpus": "cpus", "logDriver": "logging", "logOpts": "logging", "securityOpts": "security_opt",
    "labels": "labels", "hostname": "hostname", "destroyGraceSeconds": "stop_grace_seconds",
    "waitTimeout": "wait_timeout_seconds", "attach": "run", "logs": "run",
}


@pytest.mark.parametrize("path", [ROOT / "Pulumi.prod.yaml", EXAMPLES[3]], ids=lambda p: p.stem)
def test_every_input_the_provider_receives_is_shown(path):
    evaluation, _ = evaluation_of(path)
    services = load_yaml(text(path))["services"]
    for resource in evaluation.of_type("docker:index/container:Container"):
        shown = services[resource.name]
        for key, value in resource.plain.items():
            if value in (None, [], {}, False) or SHOWN_AS.get(key, "") is None:
                continue
            if key in SHOWN_AS:
                assert SHOWN_AS[key] in shown, (resource.name, key)
            else:
                assert shown["other_inputs"][key] == value, (resource.name, key)


def test_each_password_hash_is_computed_once_per_key_not_per_value(monkeypatch):
    calls: list[str] = []
    real = render_module.bcrypt_hash
    monkeypatch.setattr(render_module, "bcrypt_hash",
                        lambda password, scope: calls.append(scope) or real(password, scope))
    shown = text(EXAMPLES[3])
    assert calls == [f"prefect-stack/{EXAMPLES[3].stem}/basicAuthPassword"]
    assert "admin:<bcrypt:basicAuthPassword>" in shown  # Traefik's basic auth for Flower
    assert "$2b$" not in shown and "__secret_" not in shown


def test_a_stack_file_path_renders_with_bind_mounts_from_the_project_directory(
        capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = rendered(capsys, str(ROOT / "examples" / "004-external-postgres.yaml"))
    assert code == 0, err
    assert load_yaml(out)["stack"] == "004-external-postgres"
    code, _, err = rendered(capsys, "examples/004-external-postgres.yaml")
    assert code == 2 and f"{tmp_path}/examples/004-external-postgres.yaml does not exist" in err
    code, out, err = rendered(capsys, "dev")
    worker = load_yaml(out)["services"]["prefect-dev-worker-dev-pool"]
    assert f"{ROOT}/flows:/opt/prefect/flows:ro" in worker["volumes"]


def test_render_wrapper_runs_from_any_directory_without_an_activated_venv(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([str(ROOT / "render"), "dev"], cwd=tmp_path, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert load_yaml(result.stdout)["stack"] == "dev"


def scale_out_stack(directory) -> object:
    """prod with two API replicas: the stack builds the prefect-redis image."""
    config, _ = stack_file(ROOT / "Pulumi.prod.yaml")
    config["server"] = {**config["server"], "replicas": 2}
    config["redis"] = {"enabled": True}
    config["database"] = {**config["database"], "pool": {"size": 5, "maxOverflow": 5}}
    path = directory / "Pulumi.scaleout.yaml"
    path.write_text(yaml.safe_dump({"config": {f"prefect-stack:{k}": v
                                               for k, v in config.items()}}))
    return path


def test_compose_format_is_a_valid_compose_file_for_every_stack_and_example(tmp_path, capsys):
    """Each document is handed to check-jsonschema as JSON: given YAML it parses with ruamel's
    pure-Python parser, about four times the CPU of the whole check."""
    files = []
    for path in [*STACK_FILES, scale_out_stack(tmp_path)]:
        files.append(tmp_path / f"{path.stem}.compose.json")
        files[-1].write_text(json.dumps(load_yaml(text(path, "compose"))))
    code, out, err = rendered(capsys, "dev", "--format", "compose")
    assert code == 0 and load_yaml(out)["name"] == "prefect-dev", err
    code, output = check_jsonschema("vendor.compose-spec", files)
    assert code == 0, output


def test_compose_format_carries_limits_dependencies_and_secrets_as_variables():
    compose = load_yaml(text(ROOT / "Pulumi.prod.yaml", "compose"))
    assert compose["name"] == "prefect-prod"
    server = compose["services"]["prefect-prod-prefect-server"]
    assert server["environment"]["PREFECT_SERVER_API_AUTH_STRING"] == "admin:${basicAuthPassword}"
    assert server["depends_on"]["prefect-prod-db-init"] == {
        "condition": "service_completed_successfully"}
    assert server["mem_limit"].endswith("m") and server["restart"] == "unless-stopped"
    assert server["healthcheck"]["start_period"] and server["logging"]["driver"] == "json-file"
    worker = next(s for n, s in compose["services"].items() if "-worker-" in n)
    assert worker["depends_on"]["prefect-prod-prefect-server"] == {"condition": "service_healthy"}
    assert compose["networks"]["prefect-prod-data"]["internal"] is True
    assert compose["volumes"]["prefect-prod-postgres-data"]["x-kept-on-destroy"] is True
    proxy = compose["services"]["prefect-prod-proxy"]
    (config,) = [c["source"] for c in proxy["configs"] if c["target"] == "/etc/caddy/Caddyfile"]
    assert "reverse_proxy prefect-server:4200" in compose["configs"][config]["content"]


def test_compose_format_builds_the_scale_out_image_from_the_shipped_dockerfile(tmp_path):
    """`docker compose up` builds the prefect-redis image (no registry has it) with the
    Dockerfile and build args pulumi-docker gets, and tags it with the name services run."""
    compose = load_yaml(text(scale_out_stack(tmp_path), "compose"))
    runs_built = {name: s for name, s in compose["services"].items()
                  if s["image"].startswith(scaleout.SCALE_OUT_REPOSITORY + ":")}
    assert sorted(runs_built) == ["prefect-prod-prefect-migrate", "prefect-prod-prefect-server-1",
                                  "prefect-prod-prefect-server-2", "prefect-prod-prefect-services"]
    cfg = StackConfig.model_validate({"database": {"kind": "postgres"},
                                      "redis": {"enabled": True}, "server": {"replicas": 2}})
    (build,) = plan.build_plan(cfg).builds
    for name, service in runs_built.items():
        assert service["image"] == build.tag, name
        context = Path(service["build"]["context"])
        assert context == ROOT / scaleout.DOCKERFILE_DIR, name
        dockerfile = (context / service["build"]["dockerfile"]).read_text()
        assert service["build"]["args"] == dict(build.args), name
        assert all(f"ARG {arg}=" in dockerfile for arg in service["build"]["args"]), name
    assert not [s for s in compose["services"].values()
                if "build" in s and s not in runs_built.values()]


def test_compose_format_escapes_literal_dollars(tmp_path, capsys):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    (tmp_path / "Pulumi.cost.yaml").write_text(
        "config:\n  prefect-stack:server:\n    env:\n      PRICE: 'costs $5 or ${X}'\n")
    code, out, err = rendered(capsys, "cost", "-C", str(tmp_path), "--format", "compose")
    assert code == 0, err
    server = load_yaml(out)["services"]["prefect-prefect-server"]
    assert server["environment"]["PRICE"] == "costs $$5 or $${X}"


def test_unknown_stack_names_the_stacks_that_exist(capsys):
    code, _, err = rendered(capsys, "staging")
    assert code == 2
    assert "Pulumi.staging.yaml does not exist (stacks in " in err and ": dev, prod)" in err


def test_bad_stack_config_is_reported_by_key_without_a_traceback(tmp_path, capsys):
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  prefect-stack:server:\n    port: '80'\n")
    code, _, err = rendered(capsys, "bad", "-C", str(tmp_path))
    assert code == 2
    assert "prefect-stack:server.port" in err
    assert "Traceback" not in err


def test_an_input_render_has_no_field_for_is_still_shown_as_the_provider_gets_it():
    from components.compose_export import service
    from components.dryrun import CONTAINER, Registered, emitted_containers
    from components.render import describe

    evaluation = Evaluation(resources=[Registered(CONTAINER, "c", {
        "name": "c", "image": "busybox:1.37", "mustRun": True, "privileged": True,
        "shmSize": 64})])
    (container,) = emitted_containers(evaluation)
    assert describe(container, str)["other_inputs"] == {"privileged": True, "shmSize": 64}
    assert service(container, {})["x-pulumi-inputs"] == {"privileged": True, "shmSize": 64}
