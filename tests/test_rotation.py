"""Password rotation in one `pulumi up`: a changed secret (set, or generated and rotated with
`secrets.rotation`) reaches every container that uses it, and the postgres container applies
its superuser password at every start (the image only does at initdb). The live proof is
tests/test_live_day2.py; the start script itself runs against PostgreSQL there."""

from __future__ import annotations

from typing import NamedTuple

import pulumi
import pytest
from harness import RANDOM_PASSWORD, evaluate, filled, planned, secret_values, stack_file

from components import postgres_start
from components.dryrun import emitted_containers

PROD = "prefect-prod-"
ROTATED = {"secrets": {"rotation": {"appDbPassword": "2026-11-30"}}}


def prod(overrides: dict | None = None, secrets: dict | None = None):
    config, stack_secrets = stack_file("Pulumi.prod.yaml")
    return evaluate({**config, **(overrides or {})}, {**stack_secrets, **(secrets or {})},
                    stack="prod")


def envs(evaluation) -> dict[str, dict[str, str]]:
    return {c.name.removeprefix(PROD): c.env for c in emitted_containers(evaluation)}


class Filled(NamedTuple):
    env: dict[str, str]
    uploads: dict[str, str]


def planned_prod(overrides: dict | None = None, secrets: dict | None = None
                 ) -> dict[str, Filled]:
    """Each service's env and uploads in the prod plan with the secrets filled in as the
    program fills them: a set secret's value, a generated one's stand-in (as on the mocks).
    A change of a set secret is plan data; generated values and their rotation are judged
    on `evaluate` below."""
    config, stack_secrets = stack_file("Pulumi.prod.yaml")
    secrets = {**stack_secrets, **(secrets or {})}
    plan = planned({**config, **(overrides or {})}, secrets)
    values = secret_values(plan, secrets)
    return {s.name: Filled({k: filled(v, values, "prod") for k, v in s.env.items()},
                           {u.path: filled(u.content, values, "prod") for u in s.uploads})
            for s in plan.services}


def test_postgres_starts_through_the_script_that_applies_its_superuser_password():
    config, secrets = stack_file("Pulumi.prod.yaml")
    server = planned(config, secrets).service("postgres")
    command = server.command
    assert command[:2] == ("bash", postgres_start.SCRIPT_PATH)
    assert command[2] == "postgres"  # the image's own command follows, for its entrypoint
    upload = next(u for u in server.uploads if u.path == postgres_start.SCRIPT_PATH)
    assert upload.content == postgres_start.SCRIPT
    script = postgres_start.SCRIPT
    # Only on an existing cluster, over a socket-only temporary server, then the image's
    # entrypoint with the original command (so the server ends up as PID 1).
    assert 'if [ -s "$PGDATA/PG_VERSION" ]' in script
    assert "listen_addresses=''" in script and "ALTER ROLE" in script
    assert script.rstrip().endswith('exec docker-entrypoint.sh "$@"')
    assert "POSTGRES_PASSWORD" not in " ".join(command)


def test_a_new_superuser_password_reaches_postgres_db_init_and_the_backup_container():
    before = planned_prod(secrets={"postgresPassword": "old-pw"})
    after = planned_prod(secrets={"postgresPassword": "new-pw"})
    assert after["postgres"].env["POSTGRES_PASSWORD"] == "new-pw"
    assert after["db-init"].env["PGPASSWORD"] == "new-pw"
    assert after["backup"].env["PGPASSWORD"] == "new-pw"
    unchanged = {name for name in before if before[name].env == after[name].env}
    assert {"prefect-server", "api", "worker-prod-pool"} <= unchanged


def test_a_rotation_label_generates_a_new_value_for_every_user_of_that_secret():
    before = envs(prod())
    after = envs(prod(ROTATED))
    for name in ("api-1", "worker-prod-pool-1"):
        assert after[name]["DATABASE_URL"] != before[name]["DATABASE_URL"], name
    assert after["prefect-server"] == before["prefect-server"]  # other secrets stay


def test_a_rotated_secret_is_generated_with_keepers_and_an_unrotated_one_without():
    ev = prod(ROTATED)  # the evaluation the test above judges
    passwords = {r.name: r.plain for r in ev.of_type(RANDOM_PASSWORD)}
    assert passwords["appDbPassword"]["keepers"] == {"rotation": "2026-11-30"}
    # No keepers until first rotated: adding rotation later must not churn other secrets.
    assert "keepers" not in passwords["prefectDbPassword"]


def test_a_new_login_password_reaches_the_server_and_every_client():
    before = planned_prod(secrets={"basicAuthPassword": "one"})
    after = planned_prod(secrets={"basicAuthPassword": "two"})
    assert after["prefect-server"].env["PREFECT_SERVER_API_AUTH_STRING"] == "admin:two"
    for name in ("pool-prod-pool", "worker-prod-pool", "api"):
        assert after[name].env["PREFECT_API_AUTH_STRING"] == "admin:two", name
        assert before[name].env["PREFECT_API_AUTH_STRING"] == "admin:one", name


def test_a_new_redis_password_rewrites_its_config_file_and_client_urls():
    redis = {"redis": {"enabled": True}}
    before = planned_prod(redis, {"redisPassword": "one"})["redis"]
    after = planned_prod(redis, {"redisPassword": "two"})["redis"]
    assert 'requirepass "two"' in after.uploads["/usr/local/etc/redis/redis.conf"]
    assert before.uploads != after.uploads
    assert after.env != before.env


@pytest.mark.parametrize("rotation, secrets, message", [
    ({"postgresPassword": "2"}, {"postgresPassword": "set"},
     "secrets.rotation.postgresPassword: `postgresPassword` is set in the stack config, not "
     "generated; rotate it with `pulumi config set --secret postgresPassword <new value>`"),
    ({"redisPassword": "2"}, {},
     "secrets.rotation.redisPassword: `redisPassword` is not a secret this stack uses"),
])
def test_rotation_of_a_secret_the_stack_does_not_generate_is_refused(rotation, secrets, message):
    with pytest.raises(pulumi.RunError) as err:
        prod({"secrets": {"rotation": rotation}}, secrets)
    assert f"prefect-stack:{message}" in str(err.value)
