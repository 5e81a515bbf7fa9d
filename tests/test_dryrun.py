"""The mock-engine recorder: dependencies read by resource type, not by name alone; a failed
evaluation reported once, not once per Output it failed."""

from __future__ import annotations

import asyncio
import gc
import logging

import pulumi
from harness import evaluate

from components.dryrun import FakeDaemon, emitted_containers


def test_a_service_named_like_a_network_or_volume_gets_only_its_real_dependencies():
    """`<prefix>-app` is both the `app` network and a service named `app`; Pulumi tells them
    apart by type, and so must the recorder (a name match made a false dependency cycle)."""
    config = {"services": [
        {"name": "app", "image": "busybox:1.37.0", "healthCheck": {"command": ["CMD", "true"]},
         "dependsOn": ["data"], "volumes": [{"name": "data", "mountPath": "/data"}]},
        {"name": "data", "image": "busybox:1.37.0", "healthCheck": {"command": ["CMD", "true"]}}]}
    containers = {c.name: c for c in emitted_containers(evaluate(config))}
    assert containers["prefect-app"].depends_on == ("prefect-data",)
    assert containers["prefect-data"].depends_on == ()
    names = list(containers)
    assert names.index("prefect-data") < names.index("prefect-app")


def failed_evaluation() -> str:
    """The error's message only: nothing here keeps its traceback (and so its futures)."""
    try:
        evaluate({"database": {"kind": "postgres"}},
                 daemon=FakeDaemon(exit_codes={"prefect-db-init": 1}))
    except pulumi.RunError as error:
        return str(error)
    return "no error"


def test_a_failed_evaluation_is_raised_once_not_logged_again_for_every_output_it_failed(caplog):
    """Its error sits in every Output built on the failed job; asyncio would log each copy as
    "never retrieved" when collected (a traceback each), while other errors still show."""
    assert "setup job `db-init` failed" in failed_evaluation()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        # a fresh evaluation (options are never cached) makes the SDK drop the failed one's
        evaluate({"workers": []}, daemon=FakeDaemon())  # Outputs
        gc.collect()
        assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
        unrelated = asyncio.get_event_loop().create_future()
        unrelated.set_exception(RuntimeError("not raised by any evaluation"))
        del unrelated
        gc.collect()
    assert [r for r in caplog.records if "never retrieved" in r.getMessage()]
