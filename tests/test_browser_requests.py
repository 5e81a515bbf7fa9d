"""How the live browser test judges a request (tests/live/browser.py), without a browser: what
passes, what fails the test, and the two Prefect UI requests it aborts and reports apart."""

from __future__ import annotations

import pytest
from live.browser import RequestLog


@pytest.mark.parametrize(("origin", "base", "url"), [
    ("https://localhost", "/prefect", "https://localhost/prefect/v2/assets/index.js"),
    ("https://localhost", "/prefect", "https://localhost/prefect"),
    ("https://localhost", "/prefect", "data:image/png;base64,AAAA"),
    ("http://127.0.0.1:4200", "/", "http://127.0.0.1:4200/api/flow_runs/filter"),
])
def test_requests_on_the_stack_origin_under_prefects_path_go_ahead(origin, base, url):
    log = RequestLog(origin, base)
    assert log.judge("GET", url)
    assert log.wrong == [] and log.analytics == [] and log.favicons == []


@pytest.mark.parametrize(("origin", "base", "url"), [
    ("https://localhost", "/prefect", "https://localhost/prefecture/x"),  # not a segment
    ("https://localhost", "/prefect", "https://localhost/api/flows"),  # outside Prefect
    ("https://localhost", "/prefect", "http://localhost/prefect/api"),  # other scheme
    ("https://localhost", "/prefect", "https://localhost:8443/prefect/api"),  # other port
    ("http://127.0.0.1:4200", "/", "http://0.0.0.0:4200/api/health"),  # Prefect's fallback
    ("http://127.0.0.1:4200", "/", "https://api2.amplitude.com/2/httpapi"),  # event upload
])
def test_requests_off_the_origin_or_outside_prefects_path_are_refused_as_wrong(origin, base,
                                                                                url):
    log = RequestLog(origin, base)
    assert not log.judge("GET", url)
    assert log.wrong == [f"GET {url}"]


def test_the_v2_uis_analytics_config_and_state_favicon_are_refused_but_reported_apart():
    log = RequestLog("https://localhost", "/prefect")
    config = "https://sr-client-cfg.amplitude.com/config/key?config_group=browser"
    favicon = "https://localhost/completed.svg"
    assert not log.judge("GET", config)
    assert not log.judge("GET", favicon)
    assert (log.analytics, log.favicons, log.wrong) == ([config], [favicon], [])


def test_error_responses_and_basic_auth_challenges_are_recorded():
    log = RequestLog("https://localhost", "/prefect")
    log.response(200, "https://localhost/prefect/", {"content-type": "text/html"})
    log.response(401, "https://localhost/prefect/", {"WWW-Authenticate": 'Basic realm="x"'})
    assert log.failed_responses == ["401 https://localhost/prefect/"]
    assert log.challenges == ["401 https://localhost/prefect/"]


def test_csp_refusals_of_the_analytics_host_are_told_apart_from_refusals_the_ui_needs():
    log = RequestLog("https://localhost", "/prefect")
    config = "https://sr-client-cfg.amplitude.com/config/key?config_group=browser"
    log.violation("connect-src", config)
    log.violation("connect-src", "https://api2.amplitude.com/2/httpapi")  # an upload: not it
    log.violation("script-src", "eval")
    log.violation("worker-src", "blob")
    assert log.analytics_blocked_by_csp == [f"connect-src {config}"]
    assert log.unexpected_violations == ["connect-src https://api2.amplitude.com/2/httpapi",
                                         "script-src eval", "worker-src blob"]
