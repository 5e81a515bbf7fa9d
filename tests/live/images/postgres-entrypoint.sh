#!/bin/sh
# Stand-in for the postgres image's docker-entrypoint.sh, with Debian's PostgreSQL:
# on an empty $PGDATA, initdb as $POSTGRES_USER with $POSTGRES_PASSWORD and
# $POSTGRES_INITDB_ARGS, allow password logins from the network (the image's
# `host all all all scram-sha-256`), create $POSTGRES_DB, then run the server as `postgres`.
# Any other command (psql, pg_isready) runs as given, as in the image.
set -eu
if [ "${1:-}" != "postgres" ]; then
  exec "$@"
fi
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_PASSWORD:?the postgres image refuses to start without POSTGRES_PASSWORD}"
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
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
exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
  postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGDATA" "$@"
