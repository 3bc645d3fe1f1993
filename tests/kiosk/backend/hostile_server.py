"""A small HTTP server on 127.0.0.1 that answers whatever a test scripts, however wrong.

Each path gets a queue of :class:`Reply` scripts (the last one repeats). A reply
may send any status, headers and bytes, trickle them, close the connection at a
chosen moment, or answer with a reset. Every request that arrived is recorded
(method, path, query, headers, body) for the test to assert on.

``/oauth/token`` answers good tokens ``tok-1``, ``tok-2``, ... unless scripted.
Given an ``ssl.SSLContext`` it serves HTTPS (handshake on the handler's thread).
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = "application/json"


@dataclass
class Reply:
    """What the server does with one request."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # declared length; default: the real one; -1: none
    chunked: bool = False  # send the body as one chunk, without a length
    trickle: float = 0.0  # seconds between single bytes of the body
    trickle_head: float = 0.0  # seconds between single bytes of status line and headers
    close: str = ""  # "before_body": close before reading the request body;
    #                  "after_body": read the request, close without an answer;
    #                  "mid_body": send headers and half the body, then close
    reset: bool = False  # close with a TCP reset instead of a FIN

    def payload(self) -> bytes:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode()
        if isinstance(self.body, str):
            return self.body.encode()
        return self.body


@dataclass(frozen=True)
class Received:
    """One request as the server read it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Script = Reply | Callable[[Received], Reply]


class HostileServer:
    """Threaded HTTP/1.1 server on loopback; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self._routes: dict[str, list[Script]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens = 0
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.tls = tls
        self._server = _Server((host, 0), _Handler, owner=self)
        self._serve = threading.Thread(target=self._server.serve_forever, args=(0.01,))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def on(self, path: str, *scripts: Script) -> None:
        """Answer requests to *path* with *scripts* in turn; the last one repeats."""
        with self._lock:
            self._routes[path] = list(scripts)

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    @property
    def token_requests(self) -> int:
        return len(self.requests_to("/oauth/token"))

    def __enter__(self) -> HostileServer:
        self._serve.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, cut open connections, join every thread (bounded)."""
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._threads)
        self._server.server_close()
        self._serve.join(timeout=2)
        for t in threads:
            t.join(timeout=2)
            assert not t.is_alive(), f"hostile server thread {t.name} did not stop"

    # --- used by the handler ---

    def _take(self, path: str) -> Script:
        """The script for the next request to *path*."""
        with self._lock:
            scripts = self._routes.get(path)
            if scripts:
                return scripts.pop(0) if len(scripts) > 1 else scripts[0]
        if path == "/oauth/token":
            return self._good_token
        return Reply(404, {"status": "not_found", "message": "no such path"})

    def _good_token(self, request: Received) -> Reply:
        with self._lock:
            self._tokens += 1
            token = f"tok-{self._tokens}"
        return Reply(body={"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopping; True if the server is stopping."""
        return self._stopping.wait(seconds)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, owner: HostileServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self.owner._lock:
            self.owner._conns.add(request)
            self.owner._threads.append(t)
        t.start()

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.owner.tls is not None:  # handshake later, on the handler's thread
            sock = self.owner.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what these tests do

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._conns.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5.0
    server: _Server

    def setup(self) -> None:
        if self.server.owner.tls is not None:
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        script = owner._take(split.path)
        body = b""
        if not (isinstance(script, Reply) and script.close == "before_body"):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        request = Received(self.command, split.path, parse_qs(split.query), headers, body)
        owner._record(request)
        reply = script(request) if callable(script) else script
        if reply.close in ("before_body", "after_body"):
            self._hang_up(reply.reset)
            return
        self._answer(reply)

    def _answer(self, reply: Reply) -> None:
        owner = self.server.owner
        payload = reply.payload()
        lines = [f"HTTP/1.1 {reply.status} Scripted"]
        if reply.content_type is not None:
            lines.append(f"Content-Type: {reply.content_type}")
        if reply.chunked:
            lines.append("Transfer-Encoding: chunked")
            payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        elif reply.content_length != -1:
            declared = len(payload) if reply.content_length is None else reply.content_length
            lines.append(f"Content-Length: {declared}")
        lines += [f"{k}: {v}" for k, v in reply.headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if not self._write(head, reply.trickle_head):
                return
            if reply.close == "mid_body":
                self.wfile.write(payload[: len(payload) // 2])
                self._hang_up(reply.reset)
                return
            if not self._write(payload, reply.trickle):
                return
        except OSError:
            self.close_connection = True
            return
        if reply.content_length is not None or owner._stopping.is_set():
            self.close_connection = True

    def _write(self, data: bytes, trickle: float) -> bool:
        if not trickle:
            self.wfile.write(data)
            return True
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            if self.server.owner._wait(trickle):
                self.close_connection = True
                return False
        return True

    def _hang_up(self, reset: bool) -> None:
        if reset:  # SO_LINGER 0: close() sends RST
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
