"""A stand-in service for route tests: answers every GET on each port given as an argument
with JSON naming itself ($STANDIN), the port that answered and the path it received, so a
test sees exactly where the proxy sent a request and what it did to the path.

    python echo.py 9000 9001
"""

import http.server
import json
import os
import sys
import threading


class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"service": os.environ["STANDIN"], "port": self.server.server_port,
                           "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet: the runner keeps logs for failures only."""


servers = [http.server.ThreadingHTTPServer(("0.0.0.0", int(port)), Echo) for port in sys.argv[1:]]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
