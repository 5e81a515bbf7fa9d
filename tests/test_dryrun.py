"""The mock-engine recorder reads dependencies by resource type, not by name alone."""

from __future__ import annotations

from harness import evaluate

from components.dryrun import emitted_containers


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
