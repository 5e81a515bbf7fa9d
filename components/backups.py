"""Backups: a long-running `backup` container that dumps the stack's own databases on a
schedule, keeps the newest `backups.keep` per database, and restores one on request.

- PostgreSQL (`database.kind: postgres`): `pg_dump --format=custom` of every database in
  `database.postgres.databases`, as the superuser, from the postgres image (its pg_dump
  matches the server's major version). Restore drops and re-creates the database with its
  owner and runs `pg_restore` in one transaction; it refuses while anything is connected.
- SQLite: the database file copied through SQLite's online backup API (Python's
  `sqlite3.Connection.backup`, in the Prefect image), consistent while the server writes;
  the copy must pass `PRAGMA quick_check`. Restore copies a dump back the same way.

Each dump is written under a temporary name and renamed when complete, so a dump in the
directory is always whole. The health check fails when the newest complete dump set is
older than `backups.maxAgeMinutes`, or the last attempt failed. Everything the container
does is one script, `backup.sh` (`run`, `now`, `check`, `list`, `restore`), also what an
operator runs with `docker exec` (README "Day-2 operations").
"""

from __future__ import annotations

from components import plan
from components.config import StackConfig
from components.spec import FileUpload, HealthCheck, Mount, SecretText, ServiceSpec

BACKUP = "backup"
SCRIPT_PATH = "/usr/local/lib/prefect-stack/backup.sh"
DUMP_DIR = "/backups"
SQLITE_NAME = "prefect"  # the SQLite database's name in dumps, `list` and `restore`

SCRIPT = r"""#!/bin/sh
# prefect-stack backup (README "Day-2 operations"):
#   backup.sh run                  dump now if due, then every BACKUP_INTERVAL_SECONDS
#   backup.sh now                  dump every database now
#   backup.sh check                exit 1 if the newest dump is older than
#                                  BACKUP_MAX_AGE_SECONDS or the last attempt failed
#   backup.sh list                 the dumps kept, newest first
#   backup.sh restore DB [DUMP]    restore DB from DUMP (a name from `list`; default newest)
set -eu
dir="${BACKUP_DIR:?}"
ok="$dir/.last-success"     # epoch seconds of the newest complete dump of every database
failed="$dir/.last-failure" # present while the last attempt failed: why

log() { echo "backup: $*"; }
fail() { echo "backup: $*" >&2; exit 1; }
names() { for entry in $BACKUP_DATABASES; do echo "${entry%%:*}"; done; }

dump_one() {  # DB STAMP: one dump, complete or not at all; then retention
  mkdir -p "$dir/$1" || return 1
  tmp="$dir/$1/.$1-$2.partial"
  if [ "$BACKUP_KIND" = postgres ]; then
    pg_dump --format=custom --file="$tmp" --dbname="$1" || { rm -f "$tmp"; return 1; }
  else
    [ -s "$SQLITE_PATH" ] || { echo "no database file at $SQLITE_PATH"; return 1; }
    python - "$SQLITE_PATH" "$tmp" <<'PY' || { rm -f "$tmp"; return 1; }
import sqlite3, sys
source, copy = sqlite3.connect(sys.argv[1], timeout=60), sqlite3.connect(sys.argv[2])
source.backup(copy)
check = copy.execute("PRAGMA quick_check").fetchone()[0]
copy.close()
sys.exit(None if check == "ok" else f"the copy fails PRAGMA quick_check: {check}")
PY
  fi
  mv "$tmp" "$dir/$1/$1-$2.dump" || return 1
  log "$1 -> $dir/$1/$1-$2.dump ($(wc -c < "$dir/$1/$1-$2.dump") bytes)"
  ls -1 "$dir/$1"/"$1"-*.dump | sort -r | tail -n +"$((BACKUP_KEEP + 1))" | while read -r old; do
    rm -f "$old" && log "retention: removed $old"
  done
}

dump_all() {  # every database under one stamp; records success or why it failed
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  for db in $(names); do
    if ! output="$(dump_one "$db" "$stamp" 2>&1)"; then
      printf '%s: %s\n' "$db" "$output" > "$failed"
      echo "backup: dump of $db failed: $output" >&2
      return 1
    fi
    echo "$output"
  done
  date +%s > "$ok.new" && mv "$ok.new" "$ok"
  rm -f "$failed"
}

locked() {  # one dump at a time (the schedule and `now`); a dead holder's lock is stale
  until mkdir "$dir/.lock" 2>/dev/null; do
    holder="$(cat "$dir/.lock/pid" 2>/dev/null || true)"
    if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then rm -rf "$dir/.lock"; fi
    sleep 1
  done
  echo $$ > "$dir/.lock/pid"
  status=0
  "$@" || status=$?
  rm -rf "$dir/.lock"
  return "$status"
}

check() {
  [ ! -f "$failed" ] || fail "last dump failed: $(cat "$failed")"
  [ -f "$ok" ] || fail "no complete dump yet"
  age=$(( $(date +%s) - $(cat "$ok") ))
  [ "$age" -le "$BACKUP_MAX_AGE_SECONDS" ] \
    || fail "newest dump is ${age}s old (limit ${BACKUP_MAX_AGE_SECONDS}s)"
  echo "newest dump is ${age}s old"
}

run() {
  mkdir -p "$dir"
  rm -rf "$dir"/*/.*.partial "$dir/.lock"  # left by a container that was killed mid-dump
  trap 'exit 0' INT TERM  # docker stop; `sleep & wait` lets the trap run at once
  while :; do
    last=0
    [ ! -f "$ok" ] || last="$(cat "$ok")"
    due=$(( last + BACKUP_INTERVAL_SECONDS - $(date +%s) ))
    if [ "$due" -le 0 ] || [ -f "$failed" ]; then
      if locked dump_all; then due="$BACKUP_INTERVAL_SECONDS"; else due=60; fi
    fi
    sleep "$due" &
    wait $!
  done
}

list() {
  for db in $(names); do
    ls -1 "$dir/$db"/"$db"-*.dump 2>/dev/null | sort -r | sed "s|^$dir/$db/||"
  done
}

restore() {  # DB [DUMP]
  db="${1:-}"
  owner=""
  for entry in $BACKUP_DATABASES; do
    [ "${entry%%:*}" != "$db" ] || owner="${entry#*:}"
  done
  [ -n "$owner" ] || fail "usage: restore DB [DUMP]; DB is one of: $(names | tr '\n' ' ')"
  dump="${2:-$(ls -1 "$dir/$db"/"$db"-*.dump 2>/dev/null | sort -r | head -n 1)}"
  case "$dump" in /*) ;; *) dump="$dir/$db/$dump" ;; esac
  [ -f "$dump" ] || fail "no dump $dump; \`list\` shows what is kept"
  if [ "$BACKUP_KIND" = postgres ]; then
    sessions="$(psql -X -At -d postgres \
      -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db'")"
    [ "$sessions" = 0 ] || fail "$sessions sessions are connected to $db; stop the \
containers that use it first (Prefect server, services, workers, your app)"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -v db="$db" -v owner="$owner" <<'SQL'
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
CREATE DATABASE :"db" OWNER :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
    pg_restore --exit-on-error --single-transaction --dbname="$db" "$dump"
  else
    python - "$dump" "$SQLITE_PATH" <<'PY'
import sqlite3, sys
dump, target = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2], timeout=60)
dump.backup(target)
target.close()
PY
  fi
  log "restored $db from $dump"
}

case "${1:-}" in
  run) run ;;
  now) mkdir -p "$dir"; locked dump_all ;;
  check) check ;;
  list) list ;;
  restore) shift; restore "$@" ;;
  *) fail "usage: backup.sh run|now|check|list|restore DB [DUMP]" ;;
esac
"""


def service_names(cfg: StackConfig) -> tuple[str, ...]:
    return (BACKUP,) if cfg.backups.enabled else ()


def backup_specs(cfg: StackConfig) -> list[ServiceSpec]:
    """The backup container, when `backups.enabled`."""
    backups = cfg.backups
    if not backups.enabled:
        return []
    target = Mount(DUMP_DIR, volume=None if backups.host_path else backups.volume,
                   host_path=backups.host_path)
    env: dict[str, str | SecretText] = {
        "BACKUP_DIR": DUMP_DIR,
        "BACKUP_INTERVAL_SECONDS": str(backups.interval_minutes * 60),
        "BACKUP_MAX_AGE_SECONDS": str(backups.max_age * 60),
        "BACKUP_KEEP": str(backups.keep),
    }
    if cfg.database.kind == "postgres":
        pg = cfg.database.postgres
        env |= {"BACKUP_KIND": "postgres",
                "BACKUP_DATABASES": " ".join(f"{d.name}:{d.owner}" for d in pg.databases),
                "PGHOST": plan.POSTGRES, "PGUSER": "postgres", "PGCONNECT_TIMEOUT": "10",
                "PGPASSWORD": SecretText(f"${{{pg.superuser_password_secret}}}")}
        image, networks, mounts = pg.image, ("data",), (target,)
        depends_on = (plan.DB_INIT,)
    else:
        path = cfg.database.sqlite.path
        env |= {"BACKUP_KIND": "sqlite", "BACKUP_DATABASES": f"{SQLITE_NAME}:-",
                "SQLITE_PATH": path}
        data = Mount(path.rsplit("/", 1)[0], volume="prefect-data")
        image, networks, mounts = cfg.server.image, ("app",), (target, data)
        depends_on = (plan.SERVER,)
    return [ServiceSpec(
        name=BACKUP, component="Backup", image=image, command=("sh", SCRIPT_PATH, "run"),
        env=env, networks=networks, mounts=mounts,
        uploads=(FileUpload(SCRIPT_PATH, SCRIPT),),
        # Failures in the first 10 minutes do not count: the first dump may take a while.
        healthcheck=HealthCheck(("CMD", "sh", SCRIPT_PATH, "check"), interval_s=60,
                                timeout_s=10, retries=3, start_period_s=600),
        depends_on=depends_on, group=BACKUP, **plan.limits(cfg, backups.resources))]
