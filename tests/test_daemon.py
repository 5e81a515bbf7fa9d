"""Bind mounts and where the Docker daemon runs: a relative host path is only accepted when
the daemon the provider will use is this machine's (docker.host, else DOCKER_HOST)."""

from __future__ import annotations

import json

import pytest
from harness import evaluate, stack_file

from components.daemon import remote_daemon
from components.errors import ConfigError
from components.loader import load


@pytest.mark.parametrize("host, environ, remote", [
    (None, {}, None),
    ("unix:///var/run/docker.sock", {}, None),
    ("ssh://deploy@box", {}, "docker.host is `ssh://deploy@box`"),
    (None, {"DOCKER_HOST": "tcp://10.0.0.5:2376"}, "DOCKER_HOST is `tcp://10.0.0.5:2376`"),
    (None, {"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, None),
    ("unix:///var/run/docker.sock", {"DOCKER_HOST": "ssh://ci@box"}, None),  # config wins
    (None, {"DOCKER_CONTEXT": "prod-box"}, "DOCKER_CONTEXT is `prod-box`"),
    (None, {"DOCKER_CONTEXT": "default"}, None),
])
def test_the_daemon_is_remote_unless_it_is_a_local_socket(host, environ, remote):
    found = remote_daemon(host, environ)
    assert (found is None) == (remote is None)
    if remote:
        assert found.startswith(remote)


def dev_config() -> dict:
    config, _ = stack_file("Pulumi.dev.yaml")
    assert config["workers"][0]["flowCode"]["hostPath"] == "./flows"
    return config


def test_relative_flow_code_is_refused_when_docker_host_in_the_environment_is_remote(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "ssh://ci@deploy-box")
    with pytest.raises(ConfigError) as err:
        load({k: json.dumps(v) for k, v in dev_config().items()}, set())
    problems = {p.path: p.message for p in err.value.problems}
    message = problems["workers[0].flowCode.hostPath"]
    assert "DOCKER_HOST is `ssh://ci@deploy-box`" in message
    assert "use an absolute path that exists on the Docker host" in message


def test_relative_volume_is_refused_for_a_remote_docker_host_in_config():
    config = dev_config()
    config["docker"] = {"host": "ssh://deploy@box"}
    config["workers"][0]["flowCode"]["hostPath"] = "/srv/flows"
    config["services"] = [{"name": "files", "image": "python:3.12.8-slim", "port": 8000,
                           "volumes": [{"hostPath": "./data", "mountPath": "/data"}],
                           "healthCheck": {"http": {"path": "/"}}}]
    with pytest.raises(ConfigError) as err:
        load({k: json.dumps(v) for k, v in config.items()}, set())
    assert [p.path for p in err.value.problems] == ["services[0].volumes[0].hostPath"]


def test_relative_flow_code_is_fine_with_the_local_daemon(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    ev = evaluate(dev_config(), {}, stack="dev")
    assert ev.containers()
