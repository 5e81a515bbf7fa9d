"""db-init creates databases without passing their template through PostgreSQL's shared
buffers (components/postgres_memory.py, README "Memory at rest"). The live proof, on the
emitted stack's PostgreSQL, is in tests/test_live.py (no template1 page in the buffer pool)."""

from __future__ import annotations

from harness import planned, stack_file, template


def init_sql(config: dict, secrets: dict) -> str:
    (upload,) = [u for u in planned(config, secrets).service("db-init").uploads
                 if u.path == "/docker-init/init.sql"]
    return template(upload.content)


def test_every_database_is_created_with_file_copy_when_the_server_has_the_clause():
    config, secrets = stack_file("Pulumi.prod.yaml")
    lines = init_sql(config, secrets).splitlines()
    creates = [line for line in lines if "CREATE DATABASE" in line]
    assert len(creates) == 2
    for name in ("prefect", "app"):
        (line,) = [c for c in creates if f"CREATE DATABASE {name} OWNER {name}'" in c]
        assert ("|| CASE WHEN current_setting('server_version_num')::int >= 150000 "
                "THEN ' STRATEGY FILE_COPY' ELSE '' END") in line
        assert line.endswith(f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = "
                             f"'{name}')\\gexec")

