"""target.kind kubernetes, run for real without a cluster: the pods the Kubernetes plan emits
as processes (tests/live/kubernetes.py: NetworkPolicies as the bridges, Services as the DNS
names, Caddy configured from the Ingresses as the ingress controller), checked as a user:
Prefect through the Ingress under its sub-path with its own login, the app route stripped,
a flow deployed to the pool completing, PostgreSQL reachable only from the pods the data
policy admits."""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from harness import evaluate
from live.gate import live_missing, require
from live.kubernetes import FLOW_DIR, pods
from live.runner import LIVE_VENV, LiveStack
from live.session import Running, stack_outputs

from components import csp

pytestmark = [pytest.mark.live, pytest.mark.extended]  # long: ./run-tests -m extended

CONFIG: dict[str, Any] = {
    "target": {"kind": "kubernetes", "kubernetes": {"namespace": "prefect-live"}},
    "network": {"namePrefix": "prefect-live"},
    "database": {"kind": "postgres"},
    "server": {"image": "prefecthq/prefect:3.8.8-python3.12", "basePath": "/prefect",
               "basicAuth": {"enabled": True}},
    "workers": [{"name": "kube-pool", "queryIntervalSeconds": 1, "prefetchSeconds": 5}],
    "api": {"image": "python:3.12.8-slim", "port": 8000, "user": "65534",
            "command": ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0",
                        "--directory", "/tmp"],
            "healthCheck": {"http": {"path": "/"}},
            "route": {"prefix": "/api", "stripPrefix": True}},
    "proxy": {"kind": "caddy", "domain": "localhost", "tls": "internal"},
}


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Running]:
    require(live_missing(), "the live suite")
    workdir = tmp_path_factory.mktemp("live-kubernetes")
    evaluation = evaluate(CONFIG, stack="live")
    containers = pods(evaluation)
    outputs = stack_outputs(evaluation)
    stack = LiveStack(containers, workdir)
    try:
        stack.start()
        root_ca = (workdir / "volumes" / "ingress-data" / "caddy" / "pki" / "authorities"
                   / "local" / "root.crt")
        server = next(c for c in containers if "prefect-server" in c.aliases)
        login = server.env["PREFECT_SERVER_API_AUTH_STRING"]
        home = workdir / "client-home"
        home.mkdir()
        client_env = {"PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home),
                      "PREFECT_API_URL": outputs["apiUrl"],
                      "PREFECT_API_SSL_CERT_FILE": str(root_ca),
                      "PREFECT_API_AUTH_STRING": login}
        yield Running("kubernetes", stack, {c.name: c for c in containers},
                      ssl.create_default_context(cafile=str(root_ca)), login, client_env,
                      "kube-pool", "https://localhost", outputs)
    finally:
        stack.stop()
    assert stack.left_behind == [], "teardown must stop every process by PID"


def test_pods_run_with_the_emitted_user_and_scratch_directories(running):
    assert running.container("api").user == "65534:65534"
    server = running.container("prefect-server")
    assert server.env["HOME"] == "/home/prefect"
    assert server.env["PREFECT_SERVER_UI_STATIC_DIRECTORY"] == "/ui_build"
    assert {"/home/prefect", "/ui_build"} <= {m.target for m in server.mounts}


def test_prefect_is_ready_through_the_ingress_sub_path_and_its_login_guards_the_api(running):
    assert running.get("/prefect/api/ready", auth=None)[0] == 200
    assert running.get("/prefect/api/flows/filter", auth=None, method="POST", body=b"{}")[0] == 401
    assert running.get("/prefect/api/flows/filter", auth="admin:wrong", method="POST",
                       body=b"{}")[0] == 401
    assert running.get("/prefect/api/flows/filter", method="POST", body=b"{}")[0] == 200


def test_app_route_answers_with_the_prefix_stripped(running):
    status, body = running.get("/api/", auth=None)
    assert status == 200 and b"Directory listing for /" in body


def response_headers(running: Running, path: str) -> dict[str, str]:
    try:
        with urllib.request.urlopen(running.origin + path, context=running.ssl,
                                    timeout=30) as response:
            return dict(response.headers)
    except urllib.error.HTTPError as err:  # the headers of a 401 or 404 count the same
        return dict(err.headers)


def test_prefect_ui_is_served_with_the_csp_and_every_route_with_the_security_headers(running):
    """The Ingresses' custom-headers ConfigMaps, as the controller sends them."""
    prefect, app = response_headers(running, "/prefect/"), response_headers(running, "/api/")
    assert prefect["Content-Security-Policy"] == csp.PREFECT_UI_POLICY
    assert "Content-Security-Policy" not in app, "the policy would break the app"
    for sent in (prefect, app):
        assert sent["X-Content-Type-Options"] == "nosniff"
        assert sent["Strict-Transport-Security"] == "max-age=31536000"


def test_flow_deployed_to_the_pool_completes_through_the_ingress_with_auth(running):
    result = running.client("run", running.pool, FLOW_DIR, "kubernetes")
    assert result["state"] == "COMPLETED", result
    assert any("hello, kubernetes" in line for line in result["logs"]), result


def test_only_pods_the_policies_admit_share_a_bridge_with_the_server(running):
    controller = running.container("proxy")
    api = running.container("api")
    assert set(controller.networks) == {"from-ingress"}
    assert "app-zone" in api.networks and "from-ingress" in api.networks
    assert (LIVE_VENV / "bin" / "prefect").exists()


def test_only_pods_the_data_policy_admits_reach_postgresql(running):
    connect = ["/usr/bin/python3", "-c",
               "import socket; socket.create_connection(('postgres', 5432), timeout=3)"]
    server = running.stack.processes[running.container("prefect-server").name]
    api = running.stack.processes[running.container("api").name]
    assert server.exec(connect).returncode == 0
    refused = api.exec(connect)
    assert refused.returncode != 0, "the app API is not admitted to the data zone"
