"""HTTP framing for the reference backend on the standard library's threading server.

Only framing lives here: reading a bounded body, turning it into a
``Request``, writing the ``Reply``, and answering every malformed request
with a JSON error instead of the library's HTML page. One log line per request.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from refbackend.app import App
from refbackend.wire import MAX_BODY_BYTES, Reply, Request, error

__all__ = ["HttpServer"]

log = logging.getLogger("refbackend")

IDLE_TIMEOUT_S = 30.0
_STATUS_WORDS = {
    400: "bad_request",
    408: "timeout",
    411: "length_required",
    413: "too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
    505: "http_version_not_supported",
}


class HttpServer(ThreadingHTTPServer):
    """A threading HTTP server for one ``App`` that can drop all its live connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: bursts of kiosks (and tests) connect at once

    def __init__(self, host: str, port: int, app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def track(self, conn: socket.socket, live: bool) -> None:
        with self._conn_lock:
            if live:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def drop_connections(self) -> None:
        """Cut every open connection, as a network failure would. Any thread."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: HttpServer
    protocol_version = "HTTP/1.1"
    server_version = "kiosk-refbackend/1"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True  # headers and body are separate writes

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the peer vanished while we flushed
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
            if body is None:
                return
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=split.path,
                query=split.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client_addr=str(self.client_address[0]),
            )
            reply = self.server.app.handle(request)
            if reply.drop:
                self._log(reply.code, started, "dropped before answering")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(reply, started)
        except (OSError, ValueError) as exc:  # peer went away, timeout, or unusable request
            self.close_connection = True
            log.info("%s %s: connection ended: %s", self.client_address[0], self.command, exc)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a framing error (connection closed)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(411, "send the body with Content-Length; chunked bodies are refused")
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            if self.command in ("POST", "PUT", "PATCH"):
                self._refuse(411, "Content-Length is required")
                return None
            return b""
        text = lengths[0].strip()
        if len(set(lengths)) > 1 or not (text.isascii() and text.isdigit()) or len(text) > 12:
            self._refuse(400, "Content-Length is not a single non-negative integer")
            return None
        length = int(text)
        if length > MAX_BODY_BYTES:
            self._refuse(413, f"request body over {MAX_BODY_BYTES // 1024} KiB")
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _refuse(self, code: int, message: str) -> None:
        """Answer a framing error and close: the unread body makes the connection unusable."""
        self.close_connection = True
        reply = error(code, _STATUS_WORDS.get(code, "bad_request"), message)
        self._send(reply, time.monotonic(), close=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The library's own refusals (bad request line, huge headers ...) as JSON errors."""
        self.close_connection = True
        if not str(getattr(self, "request_version", "")).startswith("HTTP/1."):
            self.request_version = "HTTP/1.0"  # answer garbage with a status line, not HTTP/0.9
        reply = error(code, _STATUS_WORDS.get(code, "bad_request"), message or "bad request")
        with contextlib.suppress(OSError):
            self._send(reply, time.monotonic(), close=True)

    def _send(self, reply: Reply, started: float, *, close: bool = False) -> None:
        payload = reply.payload()
        self.send_response_only(reply.code)
        self.send_header("Date", self.date_time_string())
        self.send_header("Server", self.server_version)
        content_type = reply.content_type
        if content_type == "application/json":
            content_type += "; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if close or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()
        self._log(reply.code, started, "")

    def _log(self, code: int, started: float, note: str) -> None:
        raw = getattr(self, "path", None)
        path = urlsplit(raw).path[:120] if isinstance(raw, str) else "-"
        log.info(
            "%s %s %s %d %.1fms%s",
            self.client_address[0],
            self.command or "-",
            path,
            code,
            (time.monotonic() - started) * 1000,
            f" ({note})" if note else "",
        )

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)
