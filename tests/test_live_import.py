"""Prefect's documented docker-compose stack, imported and run for real.

`python -m components.importer` turns docs.prefect.io's compose file (PostgreSQL, Redis,
server, services, worker polling `local-pool`) into a stack file and a secrets script; the
stack is then run as the live suite runs every stack (tests/live/runner.py), with the secrets
the script sets. The only change to the imported config: the worker gets the test flow code
(the documented worker has none of its own).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live.gate import live_missing, require
from live.session import FLOW_DIR, Running, running_stack, stack_config
from test_importer import CORPUS, read_script

from components import importer
from components.dryrun import stack_file

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended


@pytest.fixture(scope="module")
def docs_stack(tmp_path_factory) -> Iterator[Running]:
    require(live_missing(), "the live suite")
    out = tmp_path_factory.mktemp("imported")
    rc = importer.main([str(CORPUS / "prefect-docs" / "compose.yml"), "--stack", "imported",
                        "--out", str(out)])
    assert rc == 0
    config, _ = stack_file(out / "Pulumi.imported.yaml")
    secrets = read_script(out / "set-secrets-imported.sh")
    config["workers"] = [{**w, "flowCode": {"hostPath": "./flows", "mountPath": FLOW_DIR}}
                         for w in config["workers"]]
    dev, _ = stack_config("dev")  # the live session runs a named stack: replace all of it
    overrides = {**{key: None for key in dev}, **config}
    with running_stack("dev", tmp_path_factory.mktemp("live-imported"), overrides,
                       secrets) as running:
        yield running
    assert running.stack.left_behind == []


def test_imported_docs_stack_serves_prefect_on_its_published_port_with_postgres(docs_stack):
    assert docs_stack.origin == "http://localhost:4200"
    status, body = docs_stack.get("/api/ready", auth=None)
    assert status == 200, body
    url = docs_stack.container("prefect-server").env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert url == "postgresql+asyncpg://prefect:prefect@postgres:5432/prefect"  # compose's


def test_imported_docs_worker_runs_a_flow_from_local_pool(docs_stack):
    assert docs_stack.pool == "local-pool"
    result = docs_stack.client("run", "local-pool", FLOW_DIR, "imported-docs")
    assert result["state"] == "COMPLETED", result
    assert any("hello, imported-docs" in line for line in result["logs"])
