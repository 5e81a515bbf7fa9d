"""Config reaches the program the way the Pulumi language host passes it."""

from __future__ import annotations

import json

from pulumi.runtime import config as runtime_config

from components.loader import load, read_pulumi_config


def test_config_and_secret_keys_are_read_from_the_language_host_environment(monkeypatch):
    monkeypatch.setattr(runtime_config, "CONFIG", runtime_config.ContextVar("c", default={}))
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "prefect-stack:server": json.dumps({"basicAuth": {"enabled": True}}),
        "prefect-stack:basicAuthPassword": "from-env",
        "docker:host": "unix:///var/run/docker.sock"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["prefect-stack:basicAuthPassword"]))
    values, secret = read_pulumi_config()
    assert set(values) == {"server", "basicAuthPassword"}
    assert secret == {"basicAuthPassword"}
    loaded = load(values, secret)
    assert loaded.secret_sources == {"basicAuthPassword": "config"}
    assert loaded.config.server.basic_auth.enabled is True


def test_top_level_scalars_arrive_as_text_and_are_decoded():
    loaded = load({"production": "true", "network": '{"namePrefix": "p"}'}, set())
    assert loaded.config.production is True
