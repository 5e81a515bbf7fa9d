"""The postgres container applies its superuser password at every start, not only the first.

The official image reads `POSTGRES_PASSWORD` only when it creates the cluster (initdb on an
empty data directory); on an existing volume it says "Skipping initialization" and the old
password stays. A rotated superuser password would then reach db-init and the backup
container but not the server, and db-init would fail to log in.

So the container starts through a small script: on an existing cluster it starts PostgreSQL
on a private Unix socket only (no TCP, so nothing can connect with the old password and the
health check stays red), sets the password over that socket, stops it, and hands over to the
image's own `docker-entrypoint.sh` with the original command. The image's initdb leaves
local (socket) connections on `trust` (`POSTGRES_INITDB_ARGS` only sets `--auth-host`), the
same trust the image's entrypoint relies on for its own init scripts. The final `exec`
leaves the server as PID 1, so `docker stop` (SIGINT, the image's STOPSIGNAL) shuts it down
as before; a signal during the short password step stops the temporary server and exits.
"""

from __future__ import annotations

import dataclasses

from components.spec import FileUpload, ServiceSpec

SCRIPT_PATH = "/usr/local/lib/prefect-stack/postgres-start.sh"

SCRIPT = r"""#!/usr/bin/env bash
# prefect-stack: apply POSTGRES_PASSWORD to the superuser at every start (the image applies
# it only when it creates the cluster), then run the image's entrypoint as usual.
set -Eeuo pipefail
: "${PGDATA:?the postgres image sets PGDATA}"
user="${POSTGRES_USER:-postgres}"
if [ -s "$PGDATA/PG_VERSION" ]; then
  as_postgres=()
  socket_dir="$(mktemp -d)"
  if [ "$(id -u)" = 0 ]; then
    as_postgres=(gosu postgres)
    chown postgres "$socket_dir"
  fi
  stop_temporary() { "${as_postgres[@]}" pg_ctl -D "$PGDATA" -m fast -w stop; }
  trap 'stop_temporary || :; exit 130' INT TERM
  "${as_postgres[@]}" pg_ctl -D "$PGDATA" -w \
    -o "-c listen_addresses='' -c unix_socket_directories=$socket_dir" start
  "${as_postgres[@]}" psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password -q \
    -h "$socket_dir" -U "$user" -d postgres --set user="$user" <<'SQL'
\set password `printf %s "$POSTGRES_PASSWORD"`
ALTER ROLE :"user" WITH PASSWORD :'password';
SQL
  stop_temporary
  trap - INT TERM
  rmdir "$socket_dir"
  echo "prefect-stack: superuser password applied from POSTGRES_PASSWORD"
fi
exec docker-entrypoint.sh "$@"
"""


def applying_superuser_password(server: ServiceSpec) -> ServiceSpec:
    """The postgres server spec, started through the script (its command passed on)."""
    assert server.command is not None, "the postgres server spec names its command"
    return dataclasses.replace(
        server, command=("bash", SCRIPT_PATH, *server.command),
        uploads=(*server.uploads, FileUpload(SCRIPT_PATH, SCRIPT)))
