"""The response headers the Docker proxies send, as ingress-nginx `custom-headers` on Kubernetes.

Why: on Docker, Caddy's `header` block and Traefik's `security-headers` middleware send
components/security_headers.py's list on every route, and Prefect's route adds the
Content-Security-Policy of `components/csp.py` (carried on the route,
`Route.content_security_policy`). The same config on a cluster must not be less safe.

How: the Ingresses are written in ingress-nginx's annotation dialect (auth, rewrite), so the
headers use its `nginx.ingress.kubernetes.io/custom-headers: <namespace>/<ConfigMap>`
annotation (`more_set_headers` in each location; risk level Medium, allowed at the default
`annotations-risk-level` High). Snippet annotations are not used: `allow-snippet-annotations`
is false by default and their risk level, Critical, is refused by default. ingress-nginx
refuses a header name missing from its ConfigMap's `global-allowed-response-headers` by
answering 503 on the Ingress's paths: fail-closed, so the README lists `ALLOWED` for it.
Traefik's kubernetesIngressNginx provider reads the same annotation (it has no allow-list).
"""

from __future__ import annotations

import hashlib

from components.config import ProxySettings
from components.routes import Route
from components.security_headers import STS, security_headers

CSP = "Content-Security-Policy"
# Every header name this module may send: ingress-nginx's `global-allowed-response-headers`.
ALLOWED = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", STS, CSP)


def route_headers(route: Route, proxy: ProxySettings) -> dict[str, str]:
    """The headers of every response on `route`: the stack's, plus the route's policy."""
    headers = security_headers(proxy)
    if route.content_security_policy:
        headers[CSP] = route.content_security_policy
    return headers


def config_map_name(ingress: str, headers: dict[str, str]) -> str:
    """Named after its content: a changed header is a new ConfigMap and a changed annotation,
    so the controller re-reads it (an edited ConfigMap alone need not trigger a reload)."""
    digest = hashlib.sha256(repr(sorted(headers.items())).encode()).hexdigest()[:10]
    return f"{ingress}-headers-{digest}"
