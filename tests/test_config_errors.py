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


def test_type_errors_unknown_sections_and_cross_field_rules_arrive_in_one_pass():
    message = rejected({"workers": [{"name": "etl", "concurrencyLimit": "4"}],
                        "sevrer": {"port": 4200},
                        "proxy": {"tls": "acme", "domain": "prefect.example.com"}})
    assert "(3 problems)" in message
    assert "prefect-stack:workers[0].concurrencyLimit" in message
    assert "prefect-stack:sevrer: unknown key; did you mean `server`?" in message
    assert "prefect-stack:proxy.acme.email: tls: acme needs an ACME account e-mail" in message


def test_rules_about_a_section_with_a_type_error_wait_for_that_fix():
    """database.kind is invalid, so it falls back to sqlite: a rule that would then fire
    (SQLite allows one replica) would only echo the default, and is held back."""
    message = rejected({"database": {"kind": "postgress"}, "server": {"replicas": 2},
                        "redis": {"enabled": True}})
    assert "prefect-stack:database.kind" in message and "did you mean `postgres`?" in message
    assert "SQLite" not in message
    assert "(1 problem)" in message


@pytest.mark.parametrize(("config", "key", "fix"), [
    ({"workers": [{"name": "etl", "replicas": "2"}]}, "workers[0].replicas",
     'remove the quotes: "2" is text; write 2'),
    ({"server": {"basicAuth": {"enabled": "yes"}}}, "server.basicAuth.enabled",
     "use true or false: Pulumi reads YAML 1.2, where `yes` is the text"),
    ({"server": {"basicAuth": {"enabled": "true"}}}, "server.basicAuth.enabled",
     'remove the quotes: "true" is text; write true'),
    ({"proxy": {"tls": False}}, "proxy.tls", "quote it: write 'off'; YAML read off as false"),
    ({"api": {**PINNED_API, "user": 1000}}, "api.user", 'quote it: write "1000"'),
    ({"proxy": {"kind": "cady"}}, "proxy.kind", "did you mean `caddy`?"),
    ({"workers": [{"name": "etl", "concurencyLimit": 4}]}, "workers[0].concurencyLimit",
     "unknown key `concurencyLimit`; did you mean `concurrencyLimit`?"),
    ({"services": [{"name": "docs", "image": "nginx:1.27.3"}]}, "services[0].healthCheck",
     "add `healthCheck` (required)"),
    ({"workers": {"name": "etl"}}, "workers", "write a list"),
])
def test_each_mistake_comes_with_its_fix_in_words(config, key, fix):
    message = rejected(config)
    assert f"prefect-stack:{key}: " in message
    assert fix in message, message


def test_the_count_is_the_number_of_problems_listed():
    message = rejected({"server": {"port": "80", "replicas": "2", "bogus": 1},
                        "sevrer": {}, "workers": [{"name": "a"}, {"name": "a"}]})
    listed = [line for line in message.splitlines() if line.startswith("  - ")]
    assert f"({len(listed)} problems)" in message and len(listed) == len(set(listed)) == 5


def test_key_in_a_near_miss_namespace_is_flagged_with_the_right_name():
    message = rejected({"prefectstack:server": {"port": 4200}})
    assert ("prefectstack:server: namespace `prefectstack` is not this project's" in message)
    assert "rename it to `prefect-stack:server`" in message


def test_provider_namespaces_are_not_this_programs_to_judge(tmp_path):
    from components.dryrun import stack_file as read_stack_file

    path = tmp_path / "Pulumi.ns.yaml"
    path.write_text("config:\n  docker:host: unix:///var/run/docker.sock\n"
                    "  network:\n    namePrefix: bare\n"
                    "  prefect_stack:proxy:\n    kind: none\n")
    config, _ = read_stack_file(path)
    assert config == {"network": {"namePrefix": "bare"}, "prefect_stack:proxy": {"kind": "none"}}


def test_keys_without_a_namespace_are_read_as_the_projects(tmp_path):
    from components.dryrun import stack_file as read_stack_file

    path = tmp_path / "Pulumi.bare.yaml"
    path.write_text("config:\n  network:\n    namePrefix: bare\n  server:\n    port: '80'\n")
    config, _ = read_stack_file(path)
    message = rejected(config)
    assert "prefect-stack:server.port: Input should be a valid integer (got '80'); remove the " \
           "quotes" in message
    config["server"] = {"port": 4300}
    assert "bare-prefect-server" in evaluate(config).containers()
