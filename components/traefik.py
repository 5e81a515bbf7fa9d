"""Render Traefik v3 static and dynamic (file provider) configuration from the route model.

Why files and not docker labels: the label provider needs the Docker socket mounted into
the proxy (root on the host for whoever breaks into it), and labels force every routed
container to be replaced when a route changes. Files keep routing in one place, are
validated against Traefik's published JSON schemas in the tests, and only the proxy
container is replaced when they change.
"""

from __future__ import annotations

from typing import Any

import yaml

from components.config import ProxySettings
from components.routes import Route, ordered
from components.security_headers import HSTS_SECONDS, STS, security_headers
from components.spec import SecretText

STATIC_PATH = "/etc/traefik/traefik.yml"
DYNAMIC_PATH = "/etc/traefik/dynamic.yml"
RESOLVER = "letsencrypt"
DASHBOARD_PORT = 8080
PING_PORT = 8082
STAGING_CA = "https://acme-staging-v02.api.letsencrypt.org/directory"
# Re-send a request that never reached a replica (Traefik's default), and also an idempotent
# one the replica died while answering: its reset connection is a 502, retried with `status`
# (Traefik >= 3.7; POST and PATCH never are, they may have taken effect).
RETRY = {"attempts": 4, "initialInterval": "250ms", "status": ["502"]}


def static_config(proxy: ProxySettings) -> dict[str, Any]:
    entry_points: dict[str, Any] = {"web": {"address": ":80"},
                                    "ping": {"address": f":{PING_PORT}"}}
    if proxy.tls != "off":
        entry_points["web"]["http"] = {
            "redirections": {"entryPoint": {"to": "websecure", "scheme": "https"}}}
        entry_points["websecure"] = {"address": ":443"}
    if proxy.traefik.dashboard:
        entry_points["dashboard"] = {"address": f":{DASHBOARD_PORT}"}
    config: dict[str, Any] = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": entry_points,
        "ping": {"entryPoint": "ping"},
        "providers": {"file": {"filename": DYNAMIC_PATH, "watch": True}},
        "log": {"level": "INFO"},
        "accessLog": {},
    }
    if proxy.traefik.dashboard:
        config["api"] = {"dashboard": True}
    if proxy.tls == "acme":
        acme: dict[str, Any] = {"email": proxy.acme.email, "storage": "/letsencrypt/acme.json",
                                "httpChallenge": {"entryPoint": "web"}}
        if proxy.acme.staging:
            acme["caServer"] = STAGING_CA
        config["certificatesResolvers"] = {RESOLVER: {"acme": acme}}
    return config


def dynamic_config(routes: list[Route], proxy: ProxySettings, username: str,
                   password_key: str) -> dict[str, Any]:
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    middlewares: dict[str, Any] = {}
    common = _common_middlewares(proxy, middlewares)
    entry = ["web"] if proxy.tls == "off" else ["websecure"]
    tls: dict[str, Any] | None = None
    if proxy.tls == "acme":
        # Traefik asks the CA only for domains it finds in a Host rule or in tls.domains: our
        # rules match paths alone, so without this no certificate would ever be requested.
        tls = {"certResolver": RESOLVER, "domains": [{"main": proxy.domain}]}
    elif proxy.tls == "internal":
        tls = {}  # Traefik's default self-signed certificate
    needs_auth = any(r.auth for r in routes) or proxy.traefik.dashboard
    if needs_auth:
        middlewares["auth"] = {"basicAuth": {"users": [f"{username}:${{{password_key}|bcrypt}}"],
                                             "removeHeader": False}}

    for route in ordered(routes):
        name = route.name
        services[name] = {"loadBalancer": _load_balancer(route)}
        chain = list(common)
        if not route.is_fallback:
            middlewares[f"{name}-slash"] = {"redirectRegex": {
                "regex": f"^(https?://[^/]+{route.prefix})$", "replacement": "${1}/",
                "permanent": True}}
            chain.insert(0, f"{name}-slash")
        if route.upstreams:
            middlewares[f"{name}-retry"] = {"retry": RETRY}
            chain.append(f"{name}-retry")
        if route.strip_prefix and not route.is_fallback:
            middlewares[f"{name}-strip"] = {"stripPrefix": {"prefixes": [route.prefix]}}
            chain.append(f"{name}-strip")
        if route.content_security_policy:
            middlewares[f"{name}-csp"] = {"headers": {
                "contentSecurityPolicy": route.content_security_policy}}
            chain.append(f"{name}-csp")
        base = {"entryPoints": entry, "service": name}
        if tls is not None:
            base["tls"] = tls
        rule = "PathPrefix(`/`)" if route.is_fallback else \
            f"Path(`{route.prefix}`) || PathPrefix(`{route.prefix}/`)"
        priority = 1 if route.is_fallback else 1000 + len(route.prefix)
        routers[name] = {**base, "rule": rule, "priority": priority,
                         "middlewares": chain + (["auth"] if route.auth else [])}
    if proxy.traefik.dashboard:
        routers["dashboard"] = {"entryPoints": ["dashboard"], "service": "api@internal",
                                "rule": "PathPrefix(`/`)", "middlewares": ["auth"]}
    http: dict[str, Any] = {"routers": routers, "services": services}
    if middlewares:
        http["middlewares"] = middlewares
    return {"http": http}


def _load_balancer(route: Route) -> dict[str, Any]:
    """Each replica a server, health-checked, so a dead one leaves the rotation within 2 s
    (the `-retry` middleware re-sends what it had in flight)."""
    hosts = route.upstreams or (route.service,)
    balancer: dict[str, Any] = {"servers": [{"url": f"http://{h}:{route.port}"} for h in hosts]}
    if route.upstreams and route.health_path:
        balancer["healthCheck"] = {"path": route.health_path, "interval": "2s", "timeout": "2s"}
    return balancer


def _common_middlewares(proxy: ProxySettings, middlewares: dict[str, Any]) -> list[str]:
    names = []
    sent = security_headers(proxy)
    if sent:
        headers: dict[str, Any] = {
            "contentTypeNosniff": sent["X-Content-Type-Options"] == "nosniff",
            "customFrameOptionsValue": sent["X-Frame-Options"],
            "referrerPolicy": sent["Referrer-Policy"]}
        if STS in sent:  # Traefik's own option: sent on HTTPS responses only
            headers["stsSeconds"] = HSTS_SECONDS
        middlewares["security-headers"] = {"headers": headers}
        names.append("security-headers")
    if proxy.compression:
        middlewares["compress"] = {"compress": {}}
        names.append("compress")
    return names


def render(routes: list[Route], proxy: ProxySettings, username: str, password_key: str
           ) -> tuple[str, str | SecretText]:
    """(traefik.yml, dynamic.yml); the dynamic file is a SecretText when it holds auth."""
    header = "# Generated by prefect-stack from the stack config. Do not edit.\n"
    static = header + _dump(static_config(proxy))
    dynamic_data = dynamic_config(routes, proxy, username, password_key)
    dynamic = header + _dump(dynamic_data)
    has_auth = "auth" in dynamic_data["http"].get("middlewares", {})
    return static, (SecretText(dynamic) if has_auth else dynamic)


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)
