"""Prefect at `/` with no proxy, run for real: the dev stack with `server.basePath: /`,
`proxy.kind: none` and Prefect published on 127.0.0.1:4200 as `server.publicUrl`.

Unset, PREFECT_SERVER_UI_API_URL makes Prefect tell every browser that its API is at
http://0.0.0.0:4200/api (field notes). Here the UI, the Prefect client and a real browser
all reach the stack only through the public URL its outputs name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from live.browser import visit_ui
from live.gate import live_stack, require_browser
from live.session import FLOW_DIR, Running, stack_config

pytestmark = pytest.mark.live

PUBLIC_URL = "http://127.0.0.1:4200"


def root_overrides() -> dict:
    """Dev, with Prefect at the root and reached directly; the app API goes (its route
    needs a proxy)."""
    dev, _ = stack_config("dev")
    assert dev["server"]["publish"] == {"hostPort": 4200, "hostIp": "127.0.0.1"}
    return {"server": {**dev["server"], "basePath": "/", "publicUrl": PUBLIC_URL},
            "proxy": {"kind": "none"}, "api": None}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Running]:
    yield from live_stack("dev", tmp_path_factory.mktemp("live-root"), root_overrides())


def test_outputs_and_ui_settings_name_the_public_url_never_0_0_0_0(root):
    assert root.outputs["uiUrl"] == f"{PUBLIC_URL}/"
    assert root.outputs["apiUrl"] == f"{PUBLIC_URL}/api"
    status, body = root.get("/ui-settings")
    assert status == 200, body
    assert json.loads(body)["api_url"] == f"{PUBLIC_URL}/api"


@pytest.mark.parametrize("ui", ["/", "/v2/"])
def test_both_uis_are_served_at_the_root_with_assets_that_load(root, ui):
    status, body = root.get(ui)
    assert status == 200
    assets = sorted(set(re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', body.decode())))
    assert assets, f"{ui} references no script or style: {body[:500]!r}"
    for asset in assets:
        assert asset.startswith(ui.rstrip("/") + "/assets/"), asset
        assert root.get(asset)[0] == 200, asset


def test_flow_runs_to_completed_through_the_public_url(root):
    assert root.client_env["PREFECT_API_URL"] == f"{PUBLIC_URL}/api"
    result = root.client("run", root.pool, FLOW_DIR, "root-first")
    assert result["state"] == "COMPLETED", result
    assert any("hello, root-first" in line for line in result["logs"]), result


def test_ui_in_a_browser_shows_dashboard_and_flow_run_talking_only_to_the_public_url(root):
    require_browser()
    flow_run = root.client("run", root.pool, FLOW_DIR, "root-browser")
    visit = visit_ui(root.outputs["uiUrl"], root.origin, root.login, root.pool,
                     flow_run["id"], "hello, root-browser")
    assert visit.log.wrong == []  # e.g. http://0.0.0.0:4200/api/... if api_url were unset
    assert visit.logins == 0
    assert visit.failures_after_login == []
    api_calls = [r for r in visit.log.requests if r.split(" ", 1)[1].startswith(f"{PUBLIC_URL}/api/")]
    assert api_calls, "the UI made no API call through the public URL"
