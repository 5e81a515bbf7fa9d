"""What the stack's PostgreSQL keeps resident at rest, and the statements that keep it small.

Measured on the live harness (README "Memory at rest"): PostgreSQL's PSS is its processes'
private memory plus every page of shared memory some live process has touched. The
checkpointer touches each buffer it writes and never lets go of it, so a page that passed
through shared buffers once stays counted in the checkpointer for as long as it stays in the
buffer pool.

`CREATE DATABASE` (PostgreSQL 15 and later) copies its template through shared buffers by
default (`STRATEGY WAL_LOG`): the template's pages and the new database's, plus their WAL,
all land in the buffer pool, written out by the checkpointer, for a database nobody has used
yet. `STRATEGY FILE_COPY` (every release before 15 did this) copies the files directly after
a checkpoint, leaving shared buffers alone: measured on PostgreSQL 15, two databases created
with WAL_LOG add 21 MiB to the server's PSS, with FILE_COPY nothing. It costs a checkpoint
per database created, which db-init does only for a database that does not exist yet.
"""

from __future__ import annotations

# server_version_num of the first release with CREATE DATABASE ... STRATEGY
STRATEGY_SINCE = 150000


def create_database_gexec(name: str, owner: str) -> str:
    """A psql `\\gexec` line creating `name` only if it is missing, with FILE_COPY when the
    server knows the clause. The server's own version decides (not the image tag, which may
    be a digest), so one init script serves every PostgreSQL the image setting may name."""
    return (f"SELECT 'CREATE DATABASE {name} OWNER {owner}' || CASE WHEN "
            f"current_setting('server_version_num')::int >= {STRATEGY_SINCE} "
            "THEN ' STRATEGY FILE_COPY' ELSE '' END WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{name}')\\gexec")
