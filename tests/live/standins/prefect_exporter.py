"""Stand-in for the `prefecthq/prometheus-prefect-exporter` image in the live tests.

The image is not on a package registry, so the live harness runs this instead: our own small
exporter with the image's interface (env METRICS_PORT, OFFSET_MINUTES, PREFECT_API_URL,
PREFECT_API_AUTH_STRING; Prometheus text on /metrics) and the two series the stack's
dashboard and tests read, each computed from the Prefect API on every scrape as the exporter
does: `prefect_info_flow_runs` (one sample per flow run started within OFFSET_MINUTES, labelled
with its state) and `prefect_work_queues_late_runs_count` (Late runs per work queue).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = os.environ["PREFECT_API_URL"].rstrip("/")
OFFSET = timedelta(minutes=int(os.environ.get("OFFSET_MINUTES", "3")))
PAGE = 200


def api(path: str, body: dict) -> list[dict]:
    """POST a filter to the Prefect API, every page of it."""
    found: list[dict] = []
    while True:
        request = urllib.request.Request(f"{API}{path}", method="POST",
                                         data=json.dumps({**body, "limit": PAGE,
                                                          "offset": len(found)}).encode(),
                                         headers={"Content-Type": "application/json"})
        auth = os.environ.get("PREFECT_API_AUTH_STRING")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.load(response)
        found += page
        if len(page) < PAGE:
            return found


def label(value: object) -> str:
    return json.dumps(str(value or ""))  # a quoted, escaped Prometheus label value


def metrics() -> str:
    since = (datetime.now(UTC) - OFFSET).isoformat()
    lines = ["# TYPE prefect_info_flow_runs gauge"]
    for run in api("/flow_runs/filter", {"flow_runs": {"start_time": {"after_": since}}}):
        state = (run.get("state") or {}).get("name") or run.get("state_name")
        lines.append(f"prefect_info_flow_runs{{flow_run_id={label(run['id'])},"
                     f"flow_run_name={label(run.get('name'))},state_name={label(state)}}} 1")
    late: dict[tuple[str, str], int] = {}
    for queue in api("/work_queues/filter", {}):
        late[(queue.get("work_pool_name") or "", queue["name"])] = 0
    for run in api("/flow_runs/filter", {"flow_runs": {"state": {"name": {"any_": ["Late"]}}}}):
        key = (run.get("work_pool_name") or "", run.get("work_queue_name") or "")
        late[key] = late.get(key, 0) + 1
    lines.append("# TYPE prefect_work_queues_late_runs_count gauge")
    lines += [f"prefect_work_queues_late_runs_count{{work_pool_name={label(pool)},"
              f"work_queue_name={label(queue)}}} {count}" for (pool, queue), count in late.items()]
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        try:
            body, status = metrics().encode(), 200
        except OSError as err:  # the API is unreachable: a failed scrape, as the exporter does
            body, status = f"prefect api: {err}\n".encode(), 503
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("METRICS_PORT", "8000"))),
                        Handler).serve_forever()
