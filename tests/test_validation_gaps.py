"""Configs that Docker would refuse halfway through `pulumi up` (or that break production
rules) are refused up front, naming the key: container names after replica expansion,
reserved volumes in setup jobs, every published host port, production host ports."""

from __future__ import annotations

import pulumi
import pytest
from harness import Evaluation, evaluate, planned

from components.spec import replica_names

API = {"image": "ghcr.io/acme/api:1.0.0", "port": 8000, "healthCheck": {"http": {"path": "/"}}}


def service(name: str, **extra) -> dict:
    return {"name": name, "image": "nginx:1.27.3", "port": 80,
            "healthCheck": {"http": {"path": "/"}}, **extra}


def rejected(config: dict) -> list[str]:
    """The problem lines of the error, nothing registered."""
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(config, {}, into=evaluation)
    assert evaluation.resources == []
    return [line.strip()[2:] for line in str(err.value).splitlines() if line.strip().startswith("- ")]


def test_a_name_equal_to_a_replicas_container_name_is_refused():
    problems = rejected({"api": {**API, "replicas": 2}, "services": [service("api-1")]})
    assert problems == [
        "prefect-stack:services[0].name: container name `prefect-api-1` is also a replica of "
        "`api` (api.name: 2 replicas are named api-1 ... api-2); rename one of them"]


def test_worker_replicas_colliding_with_a_service_name_are_refused():
    problems = rejected({"workers": [{"name": "etl", "replicas": 3}],
                         "services": [service("worker-etl-2")]})
    assert len(problems) == 1
    assert problems[0].startswith("prefect-stack:services[0].name: container name "
                                  "`prefect-worker-etl-2` is also a replica of `worker-etl`")


def test_distinct_names_with_replicas_are_accepted():
    plan = planned({"api": {**API, "replicas": 2}, "services": [service("api-one")]})
    names = {n for s in plan.services for n in replica_names(plan.prefix, s.name, s.replicas)}
    assert {"prefect-api-1", "prefect-api-2", "prefect-api-one"} <= names


def test_a_setup_job_mounting_a_reserved_volume_is_refused():
    problems = rejected({"setupJobs": [{"name": "seed", "image": "app:1.0.0", "command": ["true"],
                                        "volumes": [{"name": "prefect-data",
                                                     "mountPath": "/data"}]}]})
    assert problems == ["prefect-stack:setupJobs[0].volumes[0].name: volume name "
                        "`prefect-data` is reserved by the stack"]


def test_traefik_dashboard_port_counts_in_the_host_port_collision_check():
    problems = rejected({
        "proxy": {"kind": "traefik", "traefik": {"dashboard": True}},
        "server": {"basicAuth": {"enabled": True}},
        "services": [service("admin", ports=[{"container": 80, "host": 8080}])]})
    assert problems == ["prefect-stack:services[0].ports[0].host: host port 8080 is already "
                        "published by proxy.traefik.dashboard"]


def test_a_service_port_on_the_proxys_host_port_is_refused():
    problems = rejected({"services": [service("web", ports=[{"container": 80, "host": 80,
                                                             "hostIp": "0.0.0.0"}])]})
    assert problems == ["prefect-stack:services[0].ports[0].host: host port 80 is already "
                        "published by proxy.httpPort"]


def test_a_production_service_publishing_a_host_port_is_refused():
    problems = rejected({"production": True,
                         "services": [service("web", ports=[{"container": 80, "host": 8081}])]})
    assert "prefect-stack:services[0].ports: production stacks publish only the proxy's ports; " \
           "give the service a route instead" in problems
