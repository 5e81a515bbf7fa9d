#!/bin/sh
# Stand-in for the postgres image's docker-entrypoint.sh, with Debian's PostgreSQL:
# on an empty $PGDATA, initdb as $POSTGRES_USER with $POSTGRES_PASSWORD and
# $POSTGRES_INITDB_ARGS, allow password logins from the network (the image's
# `host all all all scram-sha-256`), create $POSTGRES_DB, then run the server as `postgres`.
# Any other command (psql, pg_isready, a start script) runs as given, as in the image.
# Run as root it chowns $PGDATA and steps down to `postgres`; run as `postgres` (as the
# image does after its own `gosu` step-down) it skips both. On an existing cluster it
# initialises nothing, whatever POSTGRES_PASSWORD says. Local (socket) connections are
# trusted, as after the image's initdb. It is `docker-entrypoint.sh` on the stand-in's PATH
# (postgres-path/), beside a `gosu` stand-in; `docker stop` sends SIGINT (the image's
# STOPSIGNAL).
set -eu
if [ "${1:-}" != "postgres" ]; then
  exec "$@"
fi
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
mkdir -p "$PGDATA"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
  as_postgres() { "$@"; }
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?the postgres image refuses to initialise without POSTGRES_PASSWORD}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  # shellcheck disable=SC2086 (word splitting of the args is the image's behaviour)
  as_postgres initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  if [ "${POSTGRES_DB:-$POSTGRES_USER}" != "postgres" ]; then
    as_postgres postgres --single -D "$PGDATA" postgres <<SQL
CREATE DATABASE "${POSTGRES_DB:-$POSTGRES_USER}";
SQL
  fi
fi
shift
set -- postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGDATA" "$@"
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi
exec "$@"
