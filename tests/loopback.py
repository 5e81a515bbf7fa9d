"""Local upstreams for the real proxies (Caddy, Traefik) on loopback: each answers with what
it was told to say, the path it received and the Authorization header it got, and echoes one
websocket frame; one marked `dying` dies on its next request as a killed process does."""

from __future__ import annotations

import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(BaseHTTPRequestHandler):
    """Answers like tests/live/standins/echo.py (the route's service and port, the path it
    received) plus the Authorization header it got; echoes one websocket frame. Once its
    server is `dying`, it dies on the next request as a killed process does: the connection
    is reset after the request was sent, and nothing listens any more."""

    def do_GET(self) -> None:
        if getattr(self.server, "dying", False):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()  # RST
            self.close_connection = True
            threading.Thread(target=stop, args=(self.server,), daemon=True).start()
            return
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.wfile.write(self.rfile.read(5))
            self.wfile.flush()
            self.close_connection = True
            return
        body = json.dumps({**self.server.answer, "path": self.path,
                           "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def serving(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """`server` answering from a thread of its own. Its loop polls for shutdown every 0.05 s
    (the default 0.5 s would be paid at every stop)."""
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def upstream(host: str, port: int, answer: dict) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Upstream)
    server.answer = answer
    return serving(server)


def websocket_echo(sock: socket.socket, path: str) -> tuple[str, bytes]:
    """A websocket upgrade on `path` over a connected socket, then one tiny frame: the status
    line, and what came back (the upstream echoes it), empty when the upgrade was refused."""
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head and (chunk := sock.recv(1024)):
        head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode()
    if " 101 " not in status_line:
        return status_line, b""
    sock.sendall(b"hello")
    echoed = head.split(b"\r\n\r\n", 1)[1]
    while len(echoed) < 5 and (chunk := sock.recv(1024)):
        echoed += chunk
    return status_line, echoed
