"""The live harness's Grafana stand-in (tests/live/standins/grafana.py) on the files and env
the program emits for Grafana: it takes them as Grafana does and refuses what Grafana
refuses, so the live monitoring test cannot pass on provisioning Grafana would reject."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from live.standins import grafana

from components import monitoring
from components.config import StackConfig

HA = {"database": {"kind": "postgres"}, "redis": {"enabled": True},
      "server": {"replicas": 2, "basicAuth": {"enabled": True}}, "monitoring": {"enabled": True}}
DATASOURCES = "datasources/prefect-stack.yaml"


@pytest.fixture
def emitted(tmp_path, monkeypatch) -> Path:
    """Grafana's emitted uploads staged under tmp_path (the provider's dashboard path with
    them) and its env set, the admin password being `secret`; returns the provisioning dir."""
    spec = monitoring.grafana_spec(StackConfig.model_validate(HA))
    here = str(tmp_path / monitoring.DASHBOARD_DIR.lstrip("/"))
    for upload in spec.uploads:
        staged = tmp_path / upload.path.lstrip("/")
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(str(upload.content).replace(monitoring.DASHBOARD_DIR, here))
    for name, value in spec.env.items():
        monkeypatch.setenv(name, value.replace(monitoring.DASHBOARD_DIR, here)
                           if isinstance(value, str) else "secret")
    monkeypatch.setenv("GF_PATHS_PROVISIONING", str(tmp_path / "etc/grafana/provisioning"))
    monkeypatch.setenv("GF_PATHS_DATA", str(tmp_path / "data"))
    return tmp_path / "etc/grafana/provisioning"


def edit_yaml(path: Path, change) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))


def call(server: grafana.Grafana, path: str, auth: str | None = None,
         query: dict | None = None) -> tuple[int, object]:
    headers = {"authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    status, answer, _ = server.handle("POST" if query else "GET", path, headers,
                                      json.dumps(query).encode() if query else b"")
    return status, answer


def test_emitted_provisioning_loads_with_the_dashboard_listed_under_the_sub_path(emitted):
    server = grafana.Grafana()
    assert list(server.datasources) == [monitoring.DATASOURCE_UID]
    status, found = call(server, "/grafana/api/search", auth="admin:the-proxy-login")
    assert status == 200  # basic auth is off: the proxy's header is ignored, anonymous viewer
    assert [(d["uid"], d["url"], d["folderTitle"]) for d in found] == [
        (monitoring.DASHBOARD_UID, f"/grafana/d/{monitoring.DASHBOARD_UID}/prefect", "Prefect")]
    assert call(server, "/grafana/api/dashboards/home")[1]["dashboard"]["uid"] == (
        monitoring.DASHBOARD_UID)
    assert call(server, "/grafana/api/datasources")[0] == 403  # viewers do not list them


@pytest.mark.parametrize("change", [
    lambda d: d["datasources"].append({**d["datasources"][0], "uid": "other", "name": "Other"}),
    lambda d: d["datasources"][0].pop("type"),
    lambda d: d["datasources"][0].update(access="browser"),
])
def test_an_invalid_datasource_file_stops_the_start(emitted, change):
    edit_yaml(emitted / DATASOURCES, change)
    with pytest.raises(grafana.RefusedError):
        grafana.Grafana()


def test_a_dashboard_file_that_is_not_json_is_skipped(emitted, capsys):
    provider = yaml.safe_load((emitted / "dashboards/prefect-stack.yaml").read_text())
    dashboard = Path(provider["providers"][0]["options"]["path"]) / "prefect.json"
    dashboard.write_text(dashboard.read_text()[:-2])
    assert grafana.Grafana().dashboards == {}
    assert f"failed to load dashboard from {dashboard}" in capsys.readouterr().out


def test_panel_queries_fail_on_an_unknown_datasource_uid_or_a_bad_datasource_url(emitted):
    target = {"refId": "A", "expr": "up"}
    server = grafana.Grafana()
    status, answer = call(server, "/grafana/api/ds/query",
                          query={"queries": [{**target, "datasource": {"uid": "${DS_PROM}"}}]})
    assert status == 404, answer
    edit_yaml(emitted / DATASOURCES, lambda d: d["datasources"][0].update(url="prometheus:9090"))
    _, answer = call(grafana.Grafana(), "/grafana/api/ds/query", query={"queries": [
        {**target, "datasource": {"uid": monitoring.DATASOURCE_UID}}]})
    assert "invalid data source URL" in answer["results"]["A"]["error"]


def test_sign_in_follows_the_basic_and_anonymous_settings(emitted, monkeypatch):
    monkeypatch.setenv("GF_AUTH_BASIC_ENABLED", "true")
    server = grafana.Grafana()
    assert call(server, "/grafana/api/search", auth="admin:the-proxy-login")[0] == 401
    assert call(server, "/grafana/api/datasources", auth="admin:secret")[0] == 200
    monkeypatch.setenv("GF_AUTH_ANONYMOUS_ENABLED", "false")
    server = grafana.Grafana()
    assert call(server, "/grafana/api/search")[0] == 401
    assert call(server, "/grafana/api/health")[0] == 200  # health stays open


def test_the_admin_password_is_set_when_the_database_is_created_and_read_from_a_file(
        emitted, monkeypatch, tmp_path):
    monkeypatch.setenv("GF_AUTH_BASIC_ENABLED", "true")
    grafana.Grafana()
    monkeypatch.setenv("GF_SECURITY_ADMIN_PASSWORD", "changed")
    assert call(grafana.Grafana(), "/grafana/api/datasources", auth="admin:secret")[0] == 200
    (tmp_path / "password").write_text("from-file\n")
    monkeypatch.setenv("GF_SECURITY_ADMIN_PASSWORD__FILE", str(tmp_path / "password"))
    with pytest.raises(grafana.RefusedError, match="exclusive"):
        grafana.Grafana()
    monkeypatch.delenv("GF_SECURITY_ADMIN_PASSWORD")
    monkeypatch.setenv("GF_PATHS_DATA", str(tmp_path / "fresh"))
    assert call(grafana.Grafana(), "/grafana/api/datasources", auth="admin:from-file")[0] == 200


def test_form_sign_in_works_only_while_the_login_form_is_enabled(emitted, monkeypatch):
    def login(password: str) -> int:
        body = json.dumps({"user": "admin", "password": password}).encode()
        return grafana.Grafana().handle("POST", "/grafana/login", {}, body)[0]
    assert login("secret") == 401  # as emitted: the proxy's login is the only one
    monkeypatch.setenv("GF_AUTH_DISABLE_LOGIN_FORM", "false")
    assert (login("secret"), login("wrong")) == (200, 401)


def test_the_sub_path_is_served_only_when_serve_from_sub_path_is_on(emitted, monkeypatch):
    assert call(grafana.Grafana(), "/grafana/api/health")[0] == 200
    monkeypatch.setenv("GF_SERVER_SERVE_FROM_SUB_PATH", "false")
    assert call(grafana.Grafana(), "/grafana/api/health")[0] == 404
