"""`./deploy` sets up a local backend and the dev passphrase, checks the Docker daemon it will
deploy to, then runs pulumi.

Neither the Pulumi CLI nor Docker can be installed here, so stand-in `pulumi` and `docker`
binaries record how they are called (and answer as configured)."""

from __future__ import annotations

import os
import subprocess

import pytest
from harness import ROOT

FAKE_PULUMI = """#!/usr/bin/env bash
echo "args=$* backend=$PULUMI_BACKEND_URL passphrase=${PULUMI_CONFIG_PASSPHRASE-<unset>}" >> "$FAKE_LOG"
if [[ "$1 $2 $3" == "config get --path" ]]; then
  if [[ -z "${FAKE_DOCKER_HOST_CONFIG:-}" ]]; then
    echo "configuration key 'docker.host' not found" >&2
    exit 255
  fi
  echo "$FAKE_DOCKER_HOST_CONFIG"
elif [[ "$1 $2 $3" == "config get docker:host" ]]; then
  if [[ -z "${FAKE_PROVIDER_HOST_CONFIG:-}" ]]; then
    echo "configuration key 'docker:host' not found" >&2
    exit 255
  fi
  echo "$FAKE_PROVIDER_HOST_CONFIG"
fi
"""
FAKE_DOCKER = """#!/usr/bin/env bash
echo "docker $* DOCKER_HOST=${DOCKER_HOST-<unset>}" >> "$FAKE_LOG"
if [[ -n "${FAKE_DOCKER_DOWN:-}" ]]; then
  echo "Cannot connect to the Docker daemon at $FAKE_DOCKER_DOWN. Is the docker daemon running?" >&2
  exit 1
fi
echo 27.3.1
"""


@pytest.fixture
def fake_tools(tmp_path):
    for name, script in (("pulumi", FAKE_PULUMI), ("docker", FAKE_DOCKER)):
        (tmp_path / name).write_text(script)
        (tmp_path / name).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "DOCKER_"))}
    env.update(PATH=f"{tmp_path}:/usr/bin:/bin", FAKE_LOG=str(log))
    return env, log


def run(env, *args):
    return subprocess.run([str(ROOT / "deploy"), *args], env=env, capture_output=True,
                          text=True, timeout=30)


def test_dev_up_creates_the_stack_on_a_local_backend_checks_docker_then_runs_up(fake_tools):
    env, log = fake_tools
    result = run(env, "dev")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    backend = f"file://{ROOT}/.pulumi-state"
    tail = f" backend={backend} passphrase=prefect-stack-dev"
    assert calls == [
        "args=install" + tail,
        "args=stack select --create --secrets-provider passphrase dev" + tail,
        "args=config get --path docker.host --stack dev" + tail,
        "args=config get docker:host --stack dev" + tail,
        "docker version --format {{.Server.Version}} DOCKER_HOST=<unset>",
        "args=up --stack dev" + tail,
    ]


def test_docker_host_from_the_stack_config_is_the_daemon_checked(fake_tools):
    env, log = fake_tools
    env.update(FAKE_DOCKER_HOST_CONFIG="ssh://deploy@build-1", DOCKER_HOST="tcp://elsewhere:2375")
    result = run(env, "dev", "preview")
    assert result.returncode == 0, result.stderr
    assert "docker -H ssh://deploy@build-1 version" in log.read_text()


def test_the_providers_own_docker_host_setting_comes_before_docker_host(fake_tools):
    env, log = fake_tools
    env.update(FAKE_PROVIDER_HOST_CONFIG="tcp://10.1.1.1:2376", DOCKER_HOST="tcp://elsewhere:2375",
               FAKE_DOCKER_DOWN="tcp://10.1.1.1:2376")
    result = run(env, "dev", "preview")
    assert result.returncode == 3
    assert "tcp://10.1.1.1:2376 (docker:host in Pulumi.dev.yaml) does not answer" in result.stderr
    assert "docker -H tcp://10.1.1.1:2376 version" in log.read_text()


def test_a_daemon_that_does_not_answer_stops_up_naming_it(fake_tools):
    env, log = fake_tools
    env.update(DOCKER_HOST="tcp://10.0.0.9:2375", FAKE_DOCKER_DOWN="tcp://10.0.0.9:2375")
    result = run(env, "dev")
    assert result.returncode == 3
    assert "Docker daemon at tcp://10.0.0.9:2375 (DOCKER_HOST) does not answer" in result.stderr
    assert "Is the docker daemon running?" in result.stderr
    assert "args=up" not in log.read_text()


def test_a_stack_config_daemon_that_does_not_answer_names_the_stack_file(fake_tools):
    env, log = fake_tools
    env.update(FAKE_DOCKER_HOST_CONFIG="ssh://deploy@gone", FAKE_DOCKER_DOWN="ssh://deploy@gone")
    result = run(env, "dev", "preview")
    assert result.returncode == 3
    assert "ssh://deploy@gone (docker.host in Pulumi.dev.yaml) does not answer" in result.stderr
    assert "args=preview" not in log.read_text()


def test_missing_docker_cli_is_reported_before_up(fake_tools, tmp_path):
    env, log = fake_tools
    (tmp_path / "docker").unlink()
    result = run(env, "dev")
    assert result.returncode == 127
    assert "docker CLI, which is not installed" in result.stderr
    assert "the local Docker daemon" in result.stderr
    assert "args=up" not in log.read_text()


def test_commands_that_do_not_touch_docker_skip_the_check(fake_tools):
    env, log = fake_tools
    env["FAKE_DOCKER_DOWN"] = "unix:///var/run/docker.sock"
    result = run(env, "dev", "stack", "output")
    assert result.returncode == 0, result.stderr
    assert "docker" not in log.read_text().replace("docker.host", "")
    assert log.read_text().splitlines()[-1].startswith("args=stack output --stack dev")


def test_prod_refuses_to_run_without_a_passphrase(fake_tools):
    env, log = fake_tools
    result = run(env, "prod", "preview")
    assert result.returncode == 2
    assert "PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert not log.exists()


def test_prod_passes_the_command_through_with_the_callers_passphrase(fake_tools):
    env, log = fake_tools
    env["PULUMI_CONFIG_PASSPHRASE"] = "from-the-vault"
    result = run(env, "prod", "preview", "--diff")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-1].startswith(
        "args=preview --diff --stack prod backend=file://")


def test_unknown_stack_names_the_missing_file_and_lists_the_stacks(fake_tools):
    env, log = fake_tools
    result = run(env, "staging")
    assert result.returncode == 2
    assert f"{ROOT}/Pulumi.staging.yaml does not exist; stacks: dev prod" in result.stderr
    assert not log.exists()


def test_no_stack_prints_usage(fake_tools):
    env, _ = fake_tools
    result = run(env)
    assert result.returncode == 2 and "usage: ./deploy <stack>" in result.stderr
