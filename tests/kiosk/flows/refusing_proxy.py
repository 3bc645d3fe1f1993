"""A backend on 127.0.0.1 that refuses chosen requests for ever and passes the rest through.

:class:`RefusingProxy` forwards every HTTP request to a real backend (the
reference backend of the test) and relays its answer, except a request whose
``Idempotency-Key`` is in :attr:`RefusingProxy.refused`: that one gets a 500
without ever reaching the backend, however often it is sent. With
:attr:`RefusingProxy.down` set, every ``/v1`` request gets a 500 (a backend
failing as a whole). Every refusal is counted per key.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_RELAYED = ("content-type", "retry-after")


class RefusingProxy:
    """A threaded HTTP server in front of *upstream*; use as a context manager."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refused: set[str] = set()
        self.refusals: Counter[str] = Counter()
        self.down = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def refuse(self, *keys: str) -> None:
        with self._lock:
            self.refused.update(keys)

    def __enter__(self) -> RefusingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _refusal(self, path: str, key: str | None) -> bool:
        with self._lock:
            if self.down and path.startswith("/v1/"):
                self.refusals["*"] += 1
                return True
            if key is not None and key in self.refused:
                self.refusals[key] += 1
                return True
        return False

    def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = {k: v for k, v in resp.getheaders() if k.lower() in _RELAYED}
            return resp.status, kept, data
        finally:
            conn.close()


def _handler(proxy: RefusingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if proxy._refusal(self.path, self.headers.get("Idempotency-Key")):
                status, headers = 500, {"content-type": "application/json"}
                data = json.dumps({"status": "internal", "message": "refused"}).encode()
            else:
                passed = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "content-length")
                }
                status, headers, data = proxy._forward(self.command, self.path, passed, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Handler
