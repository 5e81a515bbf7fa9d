"""The Prefect UI in a real browser: Debian's Chromium driven by Playwright from PyPI.

Playwright's own browser download (`playwright install`) cannot be reached from these
machines, so the browser is /usr/bin/chromium (./run-tests installs it as root). Every request
the page makes is recorded and checked against the stack's public origin and the UI's path;
an HTTP request off the origin is aborted in the browser (nothing leaves the machine) and
fails the test, as does a websocket opened anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")

# The v2 UI (Prefect 3.8.8's default) initialises Amplitude on load, whatever
# PREFECT_SERVER_ANALYTICS_ENABLED says, and Amplitude then fetches its remote config from
# this host (field notes). The stack serves the UI as Prefect ships it and cannot stop that;
# the browser test aborts it so nothing leaves the machine, and reports it apart from
# wrong-host requests so a new third-party host still fails the test.
ANALYTICS_HOSTS = frozenset({"sr-client-cfg.amplitude.com", "sr-client-cfg.eu.amplitude.com"})


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"needs Debian's chromium at {CHROMIUM} (./run-tests installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs playwright (requirements-dev.txt)"
    return None


def within(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it, whole segments only."""
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


@dataclass
class RequestLog:
    """Every request a page made, judged against where the stack serves the UI."""

    origin: str  # scheme://host[:port] of the stack
    base_path: str  # the UI's path on that origin ("/" or "/prefect")
    requests: list[str] = field(default_factory=list)  # "METHOD url"
    analytics: list[str] = field(default_factory=list)  # aborted analytics requests
    wrong: list[str] = field(default_factory=list)  # off-origin or off-path: the failures
    failed_responses: list[str] = field(default_factory=list)  # "status url" with status >= 400
    challenges: list[str] = field(default_factory=list)  # responses asking for basic auth

    def judge(self, method: str, url: str) -> bool:
        """Record the request; True when it may go ahead (same origin, under the UI's path)."""
        self.requests.append(f"{method} {url}")
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            return True
        if parts.hostname in ANALYTICS_HOSTS:
            self.analytics.append(url)
            return False
        if f"{parts.scheme}://{parts.netloc}" != self.origin or not within(parts.path,
                                                                            self.base_path):
            self.wrong.append(f"{method} {url}")
            return False
        return True

    def response(self, status: int, url: str, headers: dict[str, str]) -> None:
        if status >= 400:
            self.failed_responses.append(f"{status} {url}")
        if "www-authenticate" in {k.lower() for k in headers}:
            self.challenges.append(f"{status} {url}")


@contextmanager
def chromium_page(log: RequestLog) -> Iterator[object]:
    """A fresh headless Chromium page (no stored login, no HTTP credentials) whose every
    request and websocket is judged by `log`; HTTP requests it refuses are aborted."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(ignore_https_errors=True)
            context.set_default_timeout(30_000)

            def route(route, request) -> None:
                if log.judge(request.method, request.url):
                    route.continue_()
                else:
                    route.abort("blockedbyclient")

            context.route("**/*", route)
            page = context.new_page()
            page.on("websocket", lambda ws: log.judge("WEBSOCKET", ws.url))
            page.on("response", lambda r: log.response(r.status, r.url, r.headers))
            yield page
        finally:
            browser.close()
