"""The Prefect UI in a real browser: Debian's Chromium driven by Playwright from PyPI.

Playwright's own browser download (`playwright install`) cannot be reached from these
machines, so the browser is /usr/bin/chromium (./run-tests installs it as root). Every request
the page makes is recorded and checked against the stack's public origin and the UI's path;
an HTTP request off the origin is aborted in the browser (nothing leaves the machine) and
fails the test, as does a websocket opened anywhere else. What the page's
Content-Security-Policy refused (the browser's `securitypolicyviolation` events; such a
request never reaches the network, nor the abort above) and uncaught script errors are
recorded too: a policy too strict for the UI shows up there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from components.routes import within

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000  # for the UI to render API data; the live machine may be busy

# The v2 UI (Prefect 3.8.8's default) initialises Amplitude on load, whatever
# PREFECT_SERVER_ANALYTICS_ENABLED says, and Amplitude then fetches its remote config from
# this host (field notes). Behind the stack's proxy the UI's Content-Security-Policy
# (`connect-src 'self'`, components/csp.py) makes Chromium refuse it before sending: it is a
# CSP violation, never a request. Where no proxy sets the policy (proxy.kind none), the
# browser test aborts it so nothing leaves the machine, and reports it apart from wrong-host
# requests, so any other third-party host (an event upload) fails the test.
ANALYTICS_HOSTS = frozenset({"sr-client-cfg.amplitude.com", "sr-client-cfg.eu.amplitude.com"})
# The v2 UI's flow-run page swaps the favicon for `/<state>.svg`, an absolute path that
# ignores where the v2 UI is served (3.8.8, run-logs chunk; the files are in the v2 bundle,
# `<basePath>/v2/<state>.svg`): under a sub-path it leaves Prefect's path, at the root it is
# a 404 from the v1 UI. A favicon only; aborted and reported apart, like the analytics host.
STATE_FAVICON = re.compile(r"^/(?:scheduled|pending|running|completed|failed|cancelled|"
                           r"cancelling|crashed|paused)\.svg$")


# Reports each CSP refusal of the page to the test (Playwright binding), in every document.
CSP_LISTENER = ("document.addEventListener('securitypolicyviolation', e => "
                "window.prefectStackCspViolation(e.effectiveDirective, e.blockedURI));")


def _analytics_refused(violation: str) -> bool:
    directive, _, url = violation.partition(" ")
    return directive == "connect-src" and urlsplit(url).hostname in ANALYTICS_HOSTS


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"needs Debian's chromium at {CHROMIUM} (./run-tests installs it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs playwright (requirements-dev.txt)"
    return None


@dataclass
class RequestLog:
    """Every request a page made, judged against where the stack serves the UI."""

    origin: str  # scheme://host[:port] of the stack
    base_path: str  # the UI's path on that origin ("/" or "/prefect")
    requests: list[str] = field(default_factory=list)  # "METHOD url"
    analytics: list[str] = field(default_factory=list)  # aborted analytics requests
    favicons: list[str] = field(default_factory=list)  # aborted off-path state favicons
    wrong: list[str] = field(default_factory=list)  # off-origin or off-path: the failures
    failed_responses: list[str] = field(default_factory=list)  # "status url" with status >= 400
    challenges: list[str] = field(default_factory=list)  # responses asking for basic auth
    csp_violations: list[str] = field(default_factory=list)  # "directive url" the CSP refused
    page_errors: list[str] = field(default_factory=list)  # uncaught script errors

    def violation(self, directive: str, blocked: str) -> None:
        self.csp_violations.append(f"{directive} {blocked}")

    @property
    def analytics_blocked_by_csp(self) -> list[str]:
        """The analytics host's fetches the page's CSP refused (connect-src)."""
        return [v for v in self.csp_violations if _analytics_refused(v)]

    @property
    def unexpected_violations(self) -> list[str]:
        """Anything else the CSP refused: the policy stops the UI from working."""
        return [v for v in self.csp_violations if not _analytics_refused(v)]

    def judge(self, method: str, url: str) -> bool:
        """Record the request; True when it may go ahead (same origin, under the UI's path)."""
        self.requests.append(f"{method} {url}")
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            return True
        if parts.hostname in ANALYTICS_HOSTS:
            self.analytics.append(url)
            return False
        same_origin = f"{parts.scheme}://{parts.netloc}" == self.origin
        if same_origin and STATE_FAVICON.match(parts.path):
            self.favicons.append(url)
            return False
        if same_origin and within(parts.path, self.base_path):
            return True
        self.wrong.append(f"{method} {url}")
        return False

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
            context.set_default_timeout(WAIT_MS)

            def route(route, request) -> None:
                if log.judge(request.method, request.url):
                    route.continue_()
                else:
                    route.abort("blockedbyclient")

            context.route("**/*", route)
            context.expose_binding("prefectStackCspViolation",
                                   lambda _source, directive, blocked: log.violation(directive,
                                                                                     blocked))
            context.add_init_script(CSP_LISTENER)
            page = context.new_page()
            page.on("websocket", lambda ws: log.judge("WEBSOCKET", ws.url))
            page.on("pageerror", lambda error: log.page_errors.append(str(error)))
            page.on("response", lambda r: log.response(r.status, r.url, r.headers))
            yield page
        finally:
            browser.close()


@dataclass
class Visit:
    """What a user saw: how often the login form came up, and every request made."""

    log: RequestLog
    logins: int
    failures_after_login: list[str]  # "status url" of responses >= 400 once logged in


def visit_ui(ui_url: str, origin: str, login: str | None, pool: str, flow_run_id: str,
             log_line: str) -> Visit:
    """Open the UI as a new user: log in with the stack login if a form asks for it, wait for
    the dashboard to show the stack's work pool (data from the API), then open the flow run
    and wait for one of its log lines. Raises (Playwright's TimeoutError) if any never shows."""
    from playwright.sync_api import Error, expect

    log = RequestLog(origin, urlsplit(ui_url).path.rstrip("/") or "/")
    logins = 0
    with chromium_page(log) as page:
        try:
            page.goto(ui_url)
            password = page.get_by_placeholder("admin:pass")
            dashboard = page.get_by_text("Active Work Pools")
            expect(password.or_(dashboard)).to_be_visible(timeout=WAIT_MS)
            if password.is_visible():
                assert login is not None, "the UI asked for a login on a stack without auth"
                password.fill(login)
                page.get_by_role("button", name="Login").click()
                logins += 1
            expect(dashboard).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text(pool, exact=True).first).to_be_visible(timeout=WAIT_MS)
            before = len(log.failed_responses)
            app_root = page.url.split("/dashboard")[0]
            page.goto(f"{app_root}/runs/flow-run/{flow_run_id}")
            expect(page.get_by_text(log_line).first).to_be_visible(timeout=WAIT_MS)
        except (Error, AssertionError) as err:  # Playwright's expect raises AssertionError
            raise AssertionError(f"{err}\nrefused requests: {log.wrong}\nfailed responses: "
                                 f"{log.failed_responses}\nbasic-auth challenges: "
                                 f"{log.challenges}\nCSP violations: "
                                 f"{log.unexpected_violations}\nscript errors: "
                                 f"{log.page_errors}") from None
        if password.count():
            logins += 1  # asked again after a page load: the login did not stick
        return Visit(log, logins, log.failed_responses[before:])
