"""Monitoring as the program emits it: the exporter, Prometheus with its generated scrape
config, Grafana's provisioning files, and their routes behind the stack login."""

from __future__ import annotations

import json
import shutil
import subprocess

import pulumi
import pytest
import yaml
from harness import Evaluation, evaluate, planned, stack_file, template

from components import monitoring, traefik
from components.config import DEFAULT_EXPORTER_IMAGE
from components.spec import SecretText, StackPlan

HA = {"database": {"kind": "postgres"}, "redis": {"enabled": True},
      "server": {"replicas": 3, "basicAuth": {"enabled": True}}, "monitoring": {"enabled": True}}


@pytest.fixture(scope="module")
def prod() -> StackPlan:
    """The plan of the committed prod stack with its monitoring section turned on."""
    config, secrets = stack_file("Pulumi.prod.yaml")
    config["monitoring"] = {**config["monitoring"], "enabled": True}
    return planned(config, secrets)


def uploads(ev: Evaluation, container: str) -> dict[str, str]:
    return {u["file"]: u["content"] for u in ev.container(container).get("uploads", [])}


def planned_uploads(stack: StackPlan, service: str) -> dict[str, str]:
    """A service's files in the plan; one built from secrets stays its template."""
    return {u.path: template(u.content) for u in stack.service(service).uploads}


def env(stack: StackPlan, service: str) -> dict[str, str]:
    return {k: template(v) for k, v in stack.service(service).env.items()}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_monitoring_is_off_unless_enabled(stack):
    config, secrets = stack_file(f"Pulumi.{stack}.yaml")
    built = planned(config, secrets)
    assert not any(spec.name.endswith(monitoring.NAMES) for spec in built.services)
    assert "PREFECT_SERVER_METRICS_ENABLED" not in env(built, "prefect-server")


def test_prod_runs_exporter_prometheus_and_grafana_with_prefect_metrics_on(prod):
    names = {spec.name for spec in prod.services}
    assert {"prefect-exporter", "prometheus", "grafana"} <= names
    assert env(prod, "prefect-server")["PREFECT_SERVER_METRICS_ENABLED"] == "true"


def test_exporter_reads_the_prefect_api_inside_the_network_with_the_login(prod):
    exporter = env(prod, "prefect-exporter")
    assert exporter["PREFECT_API_URL"] == "http://prefect-server:4200/prefect/api"
    login = env(prod, "prefect-server")["PREFECT_SERVER_API_AUTH_STRING"]
    assert exporter["PREFECT_API_AUTH_STRING"] == login and login.startswith("admin:")
    assert exporter["METRICS_PORT"] == str(monitoring.EXPORTER_PORT)


def test_exporter_image_is_pinned_to_a_release():
    tag = DEFAULT_EXPORTER_IMAGE.rsplit(":", 1)[1]
    assert tag[0].isdigit() and tag.count(".") == 2


def test_scrape_config_targets_every_api_replica_by_name_with_the_stack_login():
    ev = evaluate(HA)
    config = yaml.safe_load(uploads(ev, "prefect-prometheus")[monitoring.PROMETHEUS_CONFIG])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    server = jobs["prefect-server"]
    replicas = sorted(n for n in ev.containers() if n.startswith("prefect-prefect-server-"))
    assert len(replicas) == 3
    assert server["static_configs"][0]["targets"] == [f"{n}:4200" for n in replicas]
    assert server["metrics_path"] == "/prefect/api/metrics"
    assert server["basic_auth"] == {"username": "admin",
                                    "password_file": monitoring.PREFECT_PASSWORD_FILE}
    password = next(u.content for u in planned(HA).service("prometheus").uploads
                    if u.path == monitoring.PREFECT_PASSWORD_FILE)
    assert password == SecretText("${basicAuthPassword}")
    assert jobs["prefect-exporter"]["static_configs"][0]["targets"] == ["prefect-exporter:8000"]
    assert jobs["prometheus"]["metrics_path"] == "/prometheus/metrics"
    # Grafana's datasource URL names prometheus: Docker resolves it by the container's alias
    assert "prometheus" in ev.container("prefect-prometheus")["networksAdvanced"][0]["aliases"]


def test_prometheus_serves_under_its_public_prefix(prod):
    command = prod.service("prometheus").command
    assert "--web.route-prefix=/prometheus" in command
    assert "--web.external-url=https://prefect.example.com/prometheus/" in command
    assert "--storage.tsdb.retention.time=15d" in command
    health = prod.service("prometheus").healthcheck.test
    assert health[-1] == "http://localhost:9090/prometheus/-/ready"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="needs Debian's promtool (./run-tests installs prometheus as root)")
def test_generated_scrape_config_passes_promtool(tmp_path):
    ev = evaluate(HA)
    files = uploads(ev, "prefect-prometheus")
    password = tmp_path / "password"
    password.write_text(files[monitoring.PREFECT_PASSWORD_FILE])
    config = tmp_path / "prometheus.yml"
    config.write_text(files[monitoring.PROMETHEUS_CONFIG].replace(
        monitoring.PREFECT_PASSWORD_FILE, str(password)))
    result = subprocess.run(["promtool", "check", "config", str(config)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_monitoring_routes_are_behind_the_proxy_login(prod):
    caddyfile = planned_uploads(prod, "proxy")["/etc/caddy/Caddyfile"]
    for prefix, upstream in (("/prometheus", "prometheus:9090"), ("/grafana", "grafana:3000")):
        start = caddyfile.index(f"path {prefix} {prefix}/*")
        block = caddyfile[start:caddyfile.index(f"reverse_proxy {upstream}", start)]
        assert "basic_auth" in block, block
        assert "strip_prefix" not in block  # both serve their own sub-path


def test_grafana_datasource_points_at_prometheus_under_its_prefix(prod):
    files = planned_uploads(prod, "grafana")
    doc = yaml.safe_load(files["/etc/grafana/provisioning/datasources/prefect-stack.yaml"])
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert {"name", "type", "uid", "url", "access"} <= set(source)
    assert source["type"] == "prometheus" and source["access"] == "proxy"
    assert source["url"] == "http://prometheus:9090/prometheus"


def test_grafana_dashboard_is_provisioned_from_a_file_bound_to_the_datasource_uid(prod):
    files = planned_uploads(prod, "grafana")
    providers = yaml.safe_load(files["/etc/grafana/provisioning/dashboards/prefect-stack.yaml"])
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and {"name", "options"} <= set(provider)
    dashboards = [path for path in files if path.startswith(provider["options"]["path"] + "/")]
    assert dashboards == [f"{monitoring.DASHBOARD_DIR}/prefect.json"]
    text = files[dashboards[0]]
    assert "${" not in text  # import-time inputs stay unresolved under file provisioning
    dashboard = json.loads(text)
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    uid = yaml.safe_load(files["/etc/grafana/provisioning/datasources/prefect-stack.yaml"]
                         )["datasources"][0]["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"type", "title", "gridPos", "targets"} <= set(panel)
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid and t["expr"] for t in panel["targets"])
    home = env(prod, "grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboards[0]


def test_grafana_lets_the_stack_login_in_as_a_viewer_under_its_sub_path(prod):
    grafana = env(prod, "grafana")
    assert grafana["GF_SERVER_ROOT_URL"] == "https://prefect.example.com/grafana/"
    assert grafana["GF_SERVER_SERVE_FROM_SUB_PATH"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana["GF_AUTH_BASIC_ENABLED"] == "false"  # would re-check the proxy's header
    grafana_plan = planned(HA)
    admin = grafana_plan.service("grafana").env["GF_SECURITY_ADMIN_PASSWORD"]
    assert admin == SecretText("${grafanaAdminPassword}")
    assert next(s for s in grafana_plan.secrets if s.key == "grafanaAdminPassword").generatable
    health = prod.service("grafana").healthcheck.test
    assert health[-1] == "http://localhost:3000/grafana/api/health"


def test_grafana_can_be_left_out():
    built = planned({**HA, "monitoring": {"enabled": True, "grafana": {"enabled": False}}})
    names = {spec.name for spec in built.services}
    assert "grafana" not in names
    assert "prometheus" in names


def rejected(config) -> str:
    evaluation = Evaluation()
    with pytest.raises(pulumi.RunError) as err:
        evaluate(config, into=evaluation)
    assert evaluation.resources == []
    return str(err.value)


@pytest.mark.parametrize(("config", "key", "expected"), [
    ({"monitoring": {"enabled": True}, "proxy": {"kind": "none"},
      "server": {"publicUrl": "http://127.0.0.1:4200", "publish": {"hostPort": 4200}}},
     "monitoring.enabled", "set proxy.kind to caddy or traefik"),
    ({"monitoring": {"enabled": True}}, "monitoring.prometheus.prefix",
     "turn on server.basicAuth.enabled"),
    ({**HA, "target": {"kind": "kubernetes"}}, "monitoring.enabled",
     "the monitoring section is for Docker"),
    ({**HA, "services": [{"name": "grafana", "image": "grafana/grafana:12.2.1", "port": 3000,
                          "healthCheck": {"http": {"path": "/"}}}]},
     "services[0].name", "already used by monitoring"),
    ({**HA, "monitoring": {"enabled": True, "grafana": {"image": "grafana/grafana:latest"}}},
     "monitoring.grafana.image", "is not pinned"),
    ({**HA, "services": [{"name": "dash", "image": "nginx:1.27.3", "port": 80,
                          "healthCheck": {"http": {"path": "/"}}, "route": {"prefix": "/grafana"}}]},
     "monitoring.grafana.prefix", "already routed to dash by services[0].route"),
])
def test_bad_monitoring_config_is_refused_naming_the_key(config, key, expected):
    message = rejected(config)
    assert f"prefect-stack:{key}" in message and expected in message, message


def test_traefik_serves_the_monitoring_routes_behind_its_basic_auth():
    built = planned({**HA, "proxy": {"kind": "traefik"}})
    dynamic = yaml.safe_load(planned_uploads(built, "proxy")[traefik.DYNAMIC_PATH])
    routers = dynamic["http"]["routers"]
    for prefix, upstream in (("/prometheus", "prometheus:9090"), ("/grafana", "grafana:3000")):
        (router,) = [r for r in routers.values() if f"`{prefix}`" in r["rule"]]
        assert "auth" in router["middlewares"], router
        assert not any(m.endswith("-strip") for m in router["middlewares"])
        servers = dynamic["http"]["services"][router["service"]]["loadBalancer"]["servers"]
        assert servers == [{"url": f"http://{upstream}"}]
