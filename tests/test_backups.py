"""Backups: the `backups:` section, the backup container the program emits, the checks that
refuse bad settings, and backup.sh itself run on a real SQLite file (retention, the health
check, restore). PostgreSQL dumps and restores run for real in tests/test_live_day2.py."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pulumi
import pytest
from harness import evaluate, plain_strings, planned, stack_file

from components import backups
from components.dryrun import emitted_containers
from components.spec import ServiceSpec

PROD = "prefect-prod-"


def stack_config(name: str, backup_settings: dict | None = None,
                 **overrides) -> tuple[dict, dict[str, str]]:
    config, secrets = stack_file(f"Pulumi.{name}.yaml")
    return ({**config, "backups": {"enabled": True, **(backup_settings or {})}, **overrides},
            secrets)


def stack(name: str, backup_settings: dict | None = None, **overrides):
    config, secrets = stack_config(name, backup_settings, **overrides)
    return evaluate(config, secrets, stack=name)


def planned_backup(name: str, backup_settings: dict | None = None) -> ServiceSpec:
    """The backup service in the plan of a committed stack with backups on."""
    return planned(*stack_config(name, backup_settings)).service("backup")


def backup_container(evaluation):
    return next(c for c in emitted_containers(evaluation) if c.aliases == ("backup",))


def test_postgres_stacks_dump_every_database_as_the_superuser_from_the_postgres_image():
    ev = stack("prod")
    c = backup_container(ev)
    assert c.image == "postgres:16.6-alpine"  # pg_dump of the server's major version
    assert c.env["BACKUP_KIND"] == "postgres"
    assert c.env["BACKUP_DATABASES"] == "prefect:prefect app:app"
    assert (c.env["PGHOST"], c.env["PGUSER"]) == ("postgres", "postgres")
    assert c.env["PGPASSWORD"] not in " ".join(plain_strings(ev.raw_container(c.name)))
    assert list(c.networks) == ["prefect-prod-data"]  # the internal network only
    assert c.depends_on == (f"{PROD}db-init",)
    assert c.command == ("sh", backups.SCRIPT_PATH, "run")
    assert c.uploads[backups.SCRIPT_PATH] == backups.SCRIPT


def test_the_health_check_is_the_scripts_age_check_with_the_configured_limits():
    c = planned_backup("prod", {"intervalMinutes": 60, "keep": 3})
    assert c.healthcheck.test == ("CMD", "sh", backups.SCRIPT_PATH, "check")
    assert c.env["BACKUP_INTERVAL_SECONDS"] == "3600"
    assert c.env["BACKUP_MAX_AGE_SECONDS"] == "7200"  # default: twice the interval
    assert c.env["BACKUP_KEEP"] == "3"
    explicit = planned_backup("prod", {"intervalMinutes": 60, "maxAgeMinutes": 90})
    assert explicit.env["BACKUP_MAX_AGE_SECONDS"] == "5400"


def test_dumps_go_to_a_named_volume_kept_on_destroy_in_production_or_a_host_directory():
    ev = stack("prod")
    mounts = {m.target: m for m in backup_container(ev).mounts}
    assert (mounts["/backups"].kind, mounts["/backups"].source) == ("volume", f"{PROD}backups")
    assert ev.options[f"{PROD}backups"].retain_on_delete is True
    host = planned_backup("prod", {"hostPath": "/srv/prefect-backups"})
    assert [(m.volume, m.host_path) for m in host.mounts] == [(None, "/srv/prefect-backups")]


def test_sqlite_stacks_copy_the_database_file_from_the_server_volume_with_the_prefect_image():
    ev = stack("dev")
    c = backup_container(ev)
    server = next(x for x in emitted_containers(ev) if "prefect-server" in x.aliases)
    assert c.image == server.image and c.env["BACKUP_KIND"] == "sqlite"
    assert c.env["SQLITE_PATH"] == "/var/lib/prefect/prefect.db"
    data = next(m for m in server.mounts if m.target == "/var/lib/prefect")
    assert data in c.mounts
    assert c.depends_on == (server.name,)  # the file exists once the server migrated it


def test_no_backup_container_unless_enabled():
    config, secrets = stack_file("Pulumi.dev.yaml")
    assert all(spec.name != "backup" for spec in planned(config, secrets).services)


@pytest.mark.parametrize("settings, overrides, message", [
    ({}, {"database": {"kind": "external"}},
     "backups.enabled: backups dump the stack's own databases and database.kind is external"),
    ({"intervalMinutes": 60, "maxAgeMinutes": 60}, {},
     "backups.maxAgeMinutes: must be more than backups.intervalMinutes (60)"),
    ({"volume": "postgres-data"}, {},
     "backups.volume: `postgres-data` is one of the stack's own volumes"),
    ({}, {"services": [{"name": "backup", "image": "busybox:1.37.0",
                        "healthCheck": {"command": ["CMD", "true"]}}]},
     "services[0].name: name `backup` is already used by backups (backups.enabled)"),
    ({"keep": 0}, {}, "backups.keep: Input should be greater than or equal to 1"),
    ({"hostPath": "./backups"}, {}, "backups.hostPath"),
])
def test_bad_backup_settings_are_refused_naming_the_key(settings, overrides, message):
    with pytest.raises(pulumi.RunError) as err:
        stack("prod", settings, **overrides)
    assert f"prefect-stack:{message}" in str(err.value)


# --- backup.sh, run here on SQLite --------------------------------------------------------

@pytest.fixture
def sqlite_backup(tmp_path) -> tuple[Path, dict[str, str]]:
    """backup.sh as the container runs it, with this test's Python as the image's `python`."""
    (tmp_path / "backup.sh").write_text(backups.SCRIPT)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    database = tmp_path / "prefect.db"
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE flow_run (name TEXT)")
        db.execute("INSERT INTO flow_run VALUES ('first')")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP_DIR": str(tmp_path / "dumps"),
           "BACKUP_KIND": "sqlite", "BACKUP_DATABASES": "prefect:-",
           "SQLITE_PATH": str(database), "BACKUP_KEEP": "2",
           "BACKUP_MAX_AGE_SECONDS": "3600", "BACKUP_INTERVAL_SECONDS": "1800"}
    return tmp_path, env


def script(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(workdir / "backup.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def stamp_clock(workdir: Path) -> None:
    """`date` as backup.sh asks it for a dump's stamp answers $TEST_STAMP (dumps are named by
    the second: an injected clock, not a second's sleep between dumps); any other call, and
    any call without $TEST_STAMP, is the real date."""
    shim = workdir / "bin" / "date"
    shim.write_text('#!/bin/sh\nif [ -n "$TEST_STAMP" ] && [ "$*" = "-u +%Y%m%dT%H%M%SZ" ]; then\n'
                    f'  echo "$TEST_STAMP"\nelse\n  exec {shutil.which("date")} "$@"\nfi\n')
    shim.chmod(0o755)


def test_each_dump_is_a_consistent_copy_and_only_the_newest_are_kept(sqlite_backup):
    workdir, env = sqlite_backup
    stamp_clock(workdir)
    for second in (1, 2, 3):
        stamped = {**env, "TEST_STAMP": f"20261130T0000{second:02d}Z"}
        assert script(workdir, stamped, "now").returncode == 0
    kept = script(workdir, env, "list").stdout.split()
    assert len(kept) == 2 and kept == sorted(kept, reverse=True)
    copy = sqlite3.connect(workdir / "dumps" / "prefect" / kept[0])
    assert copy.execute("SELECT name FROM flow_run").fetchall() == [("first",)]
    assert not list((workdir / "dumps" / "prefect").glob(".*partial"))


def test_health_check_passes_after_a_dump_and_fails_when_it_is_too_old_or_failed(sqlite_backup):
    workdir, env = sqlite_backup
    first = script(workdir, env, "check")
    assert first.returncode != 0 and "no complete dump yet" in first.stderr
    assert script(workdir, env, "now").returncode == 0
    assert script(workdir, env, "check").returncode == 0
    stale = script(workdir, {**env, "BACKUP_MAX_AGE_SECONDS": "-1"}, "check")
    assert stale.returncode != 0 and "old (limit -1s)" in stale.stderr
    (workdir / "prefect.db").rename(workdir / "moved.db")  # the next dump fails
    failed = script(workdir, env, "now")
    assert failed.returncode != 0 and "no database file" in failed.stderr
    check = script(workdir, env, "check")
    assert check.returncode != 0 and "last dump failed: prefect: no database file" in check.stderr
    (workdir / "moved.db").rename(workdir / "prefect.db")
    assert script(workdir, env, "now").returncode == 0
    assert script(workdir, env, "check").returncode == 0


def test_restore_puts_the_newest_dump_back_into_a_wiped_database(sqlite_backup):
    workdir, env = sqlite_backup
    assert script(workdir, env, "now").returncode == 0
    with sqlite3.connect(workdir / "prefect.db") as db:
        db.execute("DELETE FROM flow_run")
    restored = script(workdir, env, "restore", "prefect")
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(workdir / "prefect.db") as db:
        assert db.execute("SELECT name FROM flow_run").fetchall() == [("first",)]


def test_restore_names_what_it_accepts_when_asked_for_something_else(sqlite_backup):
    workdir, env = sqlite_backup
    unknown = script(workdir, env, "restore", "nope")
    assert unknown.returncode != 0 and "DB is one of: prefect" in unknown.stderr
    missing = script(workdir, env, "restore", "prefect", "prefect-19700101T000000Z.dump")
    assert missing.returncode != 0 and "`list` shows what is kept" in missing.stderr


def test_the_schedule_dumps_at_start_and_stops_at_once_on_sigterm(sqlite_backup):
    workdir, env = sqlite_backup
    loop = subprocess.Popen(["sh", str(workdir / "backup.sh"), "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while script(workdir, env, "check").returncode != 0:
            assert time.monotonic() < deadline, "no dump at start"
            time.sleep(0.2)
        loop.terminate()
        assert loop.wait(timeout=5) == 0  # not stuck in its long sleep
    finally:
        loop.kill()
    assert len(script(workdir, env, "list").stdout.split()) == 1
