"""The Content-Security-Policy the proxy sends with Prefect's UI (route of `server.basePath`).

Why: Prefect 3.8.8's v2 UI initialises Amplitude on every load, whatever
PREFECT_SERVER_ANALYTICS_ENABLED says, and Amplitude fetches its remote config from
sr-client-cfg.amplitude.com (field notes). `connect-src 'self'` makes the browser refuse that
fetch; the UI works on without it. The rest is what both of 3.8.8's UIs (v2, the default, and
v1 behind "Switch to V1 UI") were measured to need in Chromium, with everything else left
at `'self'` (README "Proxy, TLS and headers"):

- `script-src 'unsafe-eval'`: the flow-run graph (PixiJS) throws "Current environment does
  not allow unsafe-eval" from its renderer without it, and the graph stays empty. Scripts still
  load only from the stack's origin; no inline script is allowed.
- `worker-src blob:`: the same graph starts a web worker from a `blob:` URL.
- `style-src 'unsafe-inline'`: the v2 UI's components inject `<style>` elements.
- `font-src data:` (v1 UI's inline fonts), `img-src data:`.
- `connect-src 'self'`: the UI's API calls (same origin; `'self'` also covers same-origin
  `ws:`/`wss:` in CSP Level 3 browsers). The analytics host is not listed, which is the point.

`frame-ancestors 'self'` matches X-Frame-Options SAMEORIGIN; `object-src 'none'`,
`base-uri 'self'` and `form-action 'self'` close the usual injection paths.
"""

from __future__ import annotations

PREFECT_UI_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-eval'",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])


def prefect_ui_policy(security_headers: bool) -> str | None:
    """The policy for Prefect's route; none when the stack's security headers are off
    (`proxy.securityHeaders: false`, e.g. another proxy in front sets its own)."""
    return PREFECT_UI_POLICY if security_headers else None
