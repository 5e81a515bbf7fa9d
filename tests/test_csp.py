"""The Content-Security-Policy on Prefect's UI (components/csp.py): on Prefect's route only, in
both proxies, off with the stack's security headers. The browser side (the UI works under it,
the analytics fetch is refused) is the live browser test in tests/test_live.py."""

from __future__ import annotations

import pytest

from components import caddy, csp, plan, traefik
from components.config import StackConfig


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in policy.split("; ")}


def test_the_ui_may_connect_only_to_its_own_origin():
    """What stops the v2 UI's Amplitude config fetch: no host but the stack's own."""
    policy = directives(csp.PREFECT_UI_POLICY)
    assert policy["connect-src"] == ["'self'"] and policy["default-src"] == ["'self'"]
    assert not [s for sources in policy.values() for s in sources
                if s not in ("'self'", "'none'", "'unsafe-eval'", "'unsafe-inline'", "data:",
                             "blob:")], "a host in the policy"
    assert "'unsafe-inline'" not in policy["script-src"]


@pytest.mark.parametrize("config", [{}, {"server": {"basePath": "/"}, "api": None}])
def test_only_prefects_route_carries_the_policy(config):
    routes = plan.declared_routes(StackConfig.model_validate(config))
    prefect = [r for r in routes if r.source == "server.basePath"]
    assert [r.content_security_policy for r in prefect] == [csp.PREFECT_UI_POLICY]
    assert all(r.content_security_policy is None for r in routes if r not in prefect)


def test_security_headers_off_sends_no_policy():
    cfg = StackConfig.model_validate({"proxy": {"securityHeaders": False}})
    assert all(r.content_security_policy is None for r in plan.declared_routes(cfg))


def test_caddy_and_traefik_send_it_on_prefects_route():
    cfg = StackConfig.model_validate({})
    routes = plan.declared_routes(cfg)
    caddyfile = caddy.render_caddyfile(routes, cfg.proxy, "admin", "pw")
    block = caddyfile.split("handle @prefect-server-prefect {")[1].split("}")[0]
    assert f'header Content-Security-Policy "{csp.PREFECT_UI_POLICY}"' in block
    assert caddyfile.count("Content-Security-Policy") == 1
    http = traefik.dynamic_config(routes, cfg.proxy, "admin", "pw")["http"]
    chain = http["routers"]["prefect-server-prefect"]["middlewares"]
    (name,) = [m for m in chain if "contentSecurityPolicy" in
               http["middlewares"][m].get("headers", {})]
    assert http["middlewares"][name]["headers"]["contentSecurityPolicy"] == csp.PREFECT_UI_POLICY
    assert all(name not in r["middlewares"] for n, r in http["routers"].items()
               if n != "prefect-server-prefect")
