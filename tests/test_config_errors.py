"""Bad stack configs are refused with one clear message naming the key, before anything exists."""

from __future__ import annotations

import pulumi
import pytest
from harness import Evaluation, evaluate

POSTGRES = {"kind": "postgres"}
PINNED_API = {"image": "ghcr.io/acme/api:1.0.0"}


def rejected(config, secrets=None, plain=None) -> str:
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(config, secrets, plain=plain, into=evaluation)
    assert evaluation.resources == [], "nothing may be registered for a bad config"
    message = str(err.value)
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(("config", "key", "expected"), [
    ({"server": {"replicas": 2}}, "server.replicas", "SQLite allows exactly 1 server replica"),
    ({"database": {"kind": "external"}, "secrets": {"generateMissing": True}},
     "externalDatabaseUrl", "cannot be generated"),
    ({"workers": [{"name": "etl"}, {"name": "etl"}]}, "workers[1].name", "already used by workers[0]"),
    ({"api": {**PINNED_API, "route": {"prefix": "/prefect"}}}, "api.route",
     "`/prefect` is already routed to prefect-server by server.basePath"),
    ({"api": PINNED_API, "services": [{"name": "docs", "image": "nginx:1.27.3", "port": 80,
                                       "healthCheck": {"http": {"path": "/"}},
                                       "route": {"prefix": "/api"}}]},
     "services[0].route", "`/api` is already routed to api by api.route"),
    ({"services": [{"name": "minio", "image": "minio/minio:RELEASE.2025-01-20T14-49-07Z",
                    "port": 9000, "healthCheck": {"http": {"path": "/"}},
                    "route": {"prefix": "/minio"}, "routes": [{"prefix": "/minio-console"}]}]},
     "services[0].routes", "either `route` or `routes`"),
    ({"proxy": {"kind": "none"}, "server": {"publish": {"hostPort": 4200}}}, "server.publicUrl",
     "set the URL browsers use"),
    ({"server": {"publicUrl": "http://0.0.0.0:4200"}}, "server.publicUrl", "bind address"),
    ({"proxy": {"domain": "0.0.0.0", "tls": "off"}}, "proxy.domain", "bind address"),
    ({"server": {"image": "prefecthq/prefect:2.20.3-python3.11"}}, "server.image", "Prefect 2"),
    ({"workers": [{"name": "w", "image": "prefecthq/prefect:2-python3.11"}]}, "workers[0].image",
     "Prefect 2"),
    ({"api": {**PINNED_API, "dependsOn": ["dolt"]}}, "api.dependsOn[0]",
     "`dolt` is not a service, api or setup job name"),
    ({"api": {**PINNED_API, "dependsOn": ["minio"]},
      "services": [{"name": "minio", "image": "minio/minio:RELEASE.2025-01-20T14-49-07Z",
                    "healthCheck": {"command": ["CMD", "true"]}, "dependsOn": ["api"]}]},
     "api.dependsOn", "dependency cycle: api -> minio -> api"),
    ({"services": [{"name": "celery", "image": "app:1.0.0", "redis": {},
                    "healthCheck": {"command": ["CMD", "true"]}}]}, "services[0].redis",
     "set redis.enabled: true"),
    ({"production": True, "api": {"image": "ghcr.io/acme/api:latest"}}, "api.image", "not pinned"),
    ({"production": True, "server": {"image": "prefecthq/prefect:3-python3.12"}}, "server.image",
     "moving tag"),
    ({"server": {"port": "4200"}}, "server.port", "valid integer"),
    ({"server": {"port": 70000}}, "server.port", "less than or equal to 65535"),
    ({"server": {"basicAuth": {"enabled": "yes"}}}, "server.basicAuth.enabled", "valid boolean"),
    ({"server": {"bogus": 1}}, "server.bogus", "unknown key `bogus`; expected one of: image,"),
    ({"proxy": {"tls": "acme", "domain": "prefect.example.com"}}, "proxy.acme.email",
     "needs an ACME account e-mail"),
    ({"proxy": {"tls": "acme", "acme": {"email": "a@b.io"}}}, "proxy.domain", "public domain"),
    ({"production": True, "server": {"publish": {"hostPort": 4200}}}, "server.publish",
     "publish only the proxy's ports"),
    ({"database": {"kind": "postgres", "prefectDatabase": "nope"}}, "database.prefectDatabase",
     "not one of database.postgres.databases"),
    ({"api": {**PINNED_API, "database": {"name": "app"}}}, "api.database",
     "needs database.kind: postgres"),
    ({"network": {"namePrefix": "Bad_Name"}}, "network.namePrefix", "should match pattern"),
    ({"api": {**PINNED_API, "route": {"prefix": "/x", "auth": True}}}, "api.route",
     "turn on server.basicAuth.enabled"),
    ({"proxy": {"kind": "none"}}, "server.publish", "set server.publish.hostPort"),
    ({"setupJobs": [{"name": "migrate", "image": "app:1.0.0", "command": ["true"],
                     "before": ["nobody"]}]}, "setupJobs[0].before[0]", "not a worker pool"),
])
def test_bad_config_is_refused_naming_the_key(config, key, expected):
    message = rejected(config)
    assert f"prefect-stack:{key}" in message
    assert expected in message


def test_unknown_top_level_key_is_refused():
    message = rejected({"sever": {"port": 4200}})
    assert "prefect-stack:sever: unknown key" in message


def test_secret_stored_in_plain_text_is_refused():
    message = rejected({"server": {"basicAuth": {"enabled": True}}},
                       plain={"basicAuthPassword": "hunter2"})
    assert "prefect-stack:basicAuthPassword: holds a secret" in message
    assert "pulumi config set --secret basicAuthPassword" in message
    assert "hunter2" not in message


def test_missing_secret_is_refused_when_generation_is_off():
    message = rejected({"server": {"basicAuth": {"enabled": True}},
                        "secrets": {"generateMissing": False}})
    assert "prefect-stack:basicAuthPassword: secret is not set" in message


def test_missing_app_secret_names_the_command_to_set_it():
    message = rejected({"api": {**PINNED_API, "secretEnv": {"OPENAI_API_KEY": "openaiKey"}}})
    assert "prefect-stack:openaiKey: secret is not set (used by api" in message
    assert "pulumi config set --secret openaiKey <value>" in message


def test_section_stored_as_secret_is_refused():
    message = rejected({}, secrets={"server": '{"port": 4200}'})
    assert "prefect-stack:server: is stored as a secret" in message


def test_every_problem_is_reported_at_once():
    message = rejected({"server": {"replicas": 2},
                        "workers": [{"name": "a"}, {"name": "a"}]})
    assert "3 problems" in message
