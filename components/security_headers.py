"""The security headers every proxy sends on every route with `proxy.securityHeaders`: one
list for Caddy (`header` block), Traefik (headers middleware) and Kubernetes (ingress-nginx
`custom-headers`), so the same config is equally safe wherever it deploys. Prefect's route
adds its Content-Security-Policy (components/csp.py) on top."""

from __future__ import annotations

from components.config import ProxySettings

HSTS_SECONDS = 31536000  # a year: browsers keep to HTTPS for the stack's domain that long
STS = "Strict-Transport-Security"


def security_headers(proxy: ProxySettings) -> dict[str, str]:
    """Header name -> value, in the order the proxies send them; HSTS only with TLS (over
    plain HTTP it would lock browsers out of a stack that has no certificate)."""
    if not proxy.security_headers:
        return {}
    headers = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
               "Referrer-Policy": "strict-origin-when-cross-origin"}
    if proxy.tls != "off":
        headers[STS] = f"max-age={HSTS_SECONDS}"
    return headers
