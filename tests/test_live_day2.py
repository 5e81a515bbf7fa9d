"""Day-2 operations on the prod stack run for real: every password rotated in one update,
then a dump, a wiped database and a restore. One stack for the module (prod as the live
suite runs it, with Redis, one worker and one API replica, no monitoring); the update is
LiveStack.update, which replaces what a second `pulumi up` would (tests/live/update.py).

The superuser and login passwords are set in config (`pulumi config set --secret`); the role
and Redis passwords are generated and rotated with `secrets.rotation` labels.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from live.gate import live_missing, require
from live.runner import Process
from live.session import FLOW_DIR, Running, prod_overrides, running_stack, stack_config
from live.update import Update

from components.backups import SCRIPT_PATH

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended

SET_BEFORE = {"postgresPassword": "super-1'\"$x\\y", "basicAuthPassword": "login-one"}
SET_AFTER = {"postgresPassword": "super-2'\"$y\\z", "basicAuthPassword": "login-two"}
ROTATED = {"prefectDbPassword": "2", "appDbPassword": "2", "redisPassword": "2"}


def overrides(rotation: dict[str, str] | None = None) -> dict[str, Any]:
    config, _ = stack_config("prod")
    workers = [{**w, "replicas": 1} for w in prod_overrides(config)["workers"]]
    return {"workers": workers, "api": {**config["api"], "replicas": 1}, "monitoring": None,
            "redis": {"enabled": True}, "backups": {"enabled": True},
            **({"secrets": {"rotation": rotation}} if rotation else {})}


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Running]:
    require(live_missing() or (None if shutil.which("redis-server") else
                               "needs Debian's redis-server (./run-tests installs it)"),
            "the day-2 live tests")
    with running_stack("prod", tmp_path_factory.mktemp("live-day2"), overrides(),
                       SET_BEFORE) as stack:
        yield stack
    assert stack.stack.left_behind == [], "teardown must stop every process by PID"


def process(running: Running, service: str) -> Process:
    return running.stack.processes[running.container(service).name]


def psql(running: Running, service: str, url: str, sql: str) -> subprocess.CompletedProcess[str]:
    """psql inside a container (its network and /etc/hosts), as that container would connect."""
    return process(running, service).exec(["psql", url, "-X", "-At", "-v", "ON_ERROR_STOP=1",
                                           "-c", sql], timeout=30)


def superuser_url(password: str) -> str:
    return f"postgresql://postgres:{quote(password, safe='')}@postgres:5432/postgres"


@dataclass
class Rotation:
    before: dict[str, dict[str, str]]  # service -> env before the update
    change: Update


@pytest.fixture(scope="module")
def rotated(running) -> Rotation:
    first = running.client("run", running.pool, FLOW_DIR, "before-rotation")
    assert first["state"] == "COMPLETED", first
    before = {s: dict(running.container(s).env)
              for s in ("prefect-server", "api", "redis", "backup")}
    change = running.update(overrides(ROTATED), SET_AFTER)
    return Rotation(before, change)


def test_one_update_replaces_every_container_that_holds_a_rotated_password(running, rotated):
    assert (rotated.change.created, rotated.change.removed) == ((), ())
    # Every container here holds one: superuser (postgres, db-init, backup), role passwords
    # (server, worker, api), the login (server, pool job, worker, api), Redis; all but the
    # proxy, which holds none (Prefect's own login guards its route).
    proxy = running.container("proxy").name
    assert set(rotated.change.replaced) == set(running.containers) - {proxy}
    for service, env in rotated.before.items():
        assert running.container(service).env != env, service


def test_login_works_with_the_new_password_and_not_the_old(running, rotated):
    old = f"admin:{SET_BEFORE['basicAuthPassword']}"
    new = f"admin:{SET_AFTER['basicAuthPassword']}"
    assert running.login == new
    for path, method, body in (("/prefect/api/flows/filter", "POST", b"{}"),
                               ("/prefect/api/admin/version", "GET", None)):
        assert running.get(path, auth=new, method=method, body=body)[0] == 200, path
        assert running.get(path, auth=old, method=method, body=body)[0] == 401, path


def test_flow_runs_complete_after_rotation(running, rotated):
    result = running.client("run", running.pool, FLOW_DIR, "after-rotation")
    assert result["state"] == "COMPLETED", result
    assert any("hello, after-rotation" in line for line in result["logs"]), result


def test_roles_accept_only_their_new_passwords(running, rotated):
    app_url = running.container("api").env["DATABASE_URL"]
    old_app_url = rotated.before["api"]["DATABASE_URL"]
    assert app_url != old_app_url
    ok = psql(running, "api", app_url, "SELECT current_user")
    assert ok.returncode == 0 and ok.stdout.strip() == "app", ok.stderr
    refused = psql(running, "api", old_app_url, "SELECT 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
    key = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
    prefect_url = running.container("prefect-server").env[key].replace("+asyncpg", "")
    old_prefect_url = rotated.before["prefect-server"][key].replace("+asyncpg", "")
    assert psql(running, "prefect-server", prefect_url, "SELECT 1").returncode == 0
    assert psql(running, "prefect-server", old_prefect_url, "SELECT 1").returncode != 0


def test_superuser_accepts_only_the_new_password(running, rotated):
    new = psql(running, "backup", superuser_url(SET_AFTER["postgresPassword"]), "SELECT 1")
    assert new.returncode == 0, new.stderr
    old = psql(running, "backup", superuser_url(SET_BEFORE["postgresPassword"]), "SELECT 1")
    assert old.returncode != 0 and "password authentication failed" in old.stderr


def test_redis_accepts_only_the_new_password(running, rotated):
    redis = process(running, "redis")
    new, old = (env["REDISCLI_AUTH"] for env in (running.container("redis").env,
                                                 rotated.before["redis"]))
    assert new != old
    for password, answer in ((new, "PONG"), (old, "WRONGPASS")):
        result = redis.exec(["redis-cli", "--no-auth-warning", "-a", password, "ping"])
        assert answer in result.stdout + result.stderr, (password == new, result)


# --- backups ----------------------------------------------------------------------------------

def backup(running: Running, *args: str) -> subprocess.CompletedProcess[str]:
    return process(running, "backup").exec(["sh", SCRIPT_PATH, *args], timeout=120)


def test_backup_health_check_fails_when_the_newest_dump_is_too_old_or_the_last_failed(running):
    volume = running.stack.volume(next(m.source for m in running.container("backup").mounts
                                       if m.target == "/backups"))
    assert process(running, "backup").health().returncode == 0
    stamp = volume / ".last-success"
    fresh = stamp.read_text()
    max_age = int(running.container("backup").env["BACKUP_MAX_AGE_SECONDS"])
    try:
        stamp.write_text(str(int(fresh) - max_age - 60))
        stale = process(running, "backup").health()
        assert stale.returncode != 0 and "old" in stale.stderr, stale
    finally:
        stamp.write_text(fresh)
    failed = volume / ".last-failure"
    failed.write_text("app: connection refused\n")
    try:
        assert process(running, "backup").health().returncode != 0
    finally:
        failed.unlink()
    assert process(running, "backup").health().returncode == 0


def test_dump_wipe_restore_brings_back_run_history_and_app_rows(running):
    run = running.client("run", running.pool, FLOW_DIR, "before-backup")
    assert run["state"] == "COMPLETED", run
    app_url = running.container("api").env["DATABASE_URL"]
    rows = "CREATE TABLE orders (id int PRIMARY KEY, item text); " \
           "INSERT INTO orders VALUES (1, 'tea'), (2, 'scones')"
    assert psql(running, "api", app_url, rows).returncode == 0

    dumped = backup(running, "now")
    assert dumped.returncode == 0, dumped.stderr
    kept = backup(running, "list").stdout.split()
    assert {name.split("-")[0] for name in kept} == {"prefect", "app"}, kept

    busy = backup(running, "restore", "prefect")  # the server holds connections
    assert busy.returncode != 0 and "stop the containers" in busy.stderr, busy

    # README "Day-2 operations": stop what uses the databases, restore, start them again.
    users = [running.container(s).name for s in ("prefect-server", "worker-prod-pool", "api")]
    for name in users:
        running.stack.processes[name].stop()
    superuser = superuser_url(running.container("backup").env["PGPASSWORD"])
    for db in ("prefect", "app"):  # the disaster
        assert psql(running, "backup", superuser, f"DROP DATABASE {db} WITH (FORCE)"
                    ).returncode == 0
    for db in ("prefect", "app"):
        restored = backup(running, "restore", db)
        assert restored.returncode == 0, restored.stdout + restored.stderr
    for name in users:
        running.stack.restart(name)

    assert running.client("flow-run", run["id"])["state"] == "COMPLETED"
    orders = psql(running, "api", app_url, "SELECT item FROM orders ORDER BY id")
    assert orders.stdout.split() == ["tea", "scones"], orders.stderr
    after = running.client("run", running.pool, FLOW_DIR, "after-restore")
    assert after["state"] == "COMPLETED", after
