"""HTTP serving for the reference backend: a WSGI adapter for ``App`` on waitress.

waitress owns the protocol: request parsing, keep-alive, a bounded pool of
worker threads (a request reaches a thread only once it has fully arrived, so
slow senders cost a socket, not a thread), a cap on open connections, idle
channel timeouts and header/body size limits. Here live only the adaptation
of a WSGI call to a ``Request``/``Reply``, JSON bodies for waitress's own
refusals, cutting connections (``pause()``, the ``drop_after_commit`` fault)
and optional TLS.

TLS: waitress has none, so ``HttpServer`` wraps its listening socket with an
``ssl.SSLContext`` (handshake not on connect) and its channels do the
handshake and the reads and writes of the non-blocking TLS socket inside
waitress's event loop. A client that stalls its handshake holds only its
socket until the channel timeout, like a slow plain-HTTP client.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

from refbackend.app import App
from refbackend.wire import MAX_BODY_BYTES, Reply, Request, error

__all__ = ["HttpServer", "ServerLimits"]

log = logging.getLogger("refbackend")

_STATUS_WORDS = {
    400: "bad_request",
    411: "length_required",
    413: "too_large",
    500: "internal",
    431: "headers_too_large",
    501: "not_implemented",
}
_JSON = "application/json; charset=utf-8"
StartResponse = Callable[..., Any]


class ServerLimits:
    """Bounds of the server: worker threads, open connections, idle time, header size.

    A connection that has not delivered a whole request costs a socket but no
    thread; it is closed after ``channel_timeout_s`` without progress, and a request
    whose headers and body are not all in ``request_read_timeout_s`` after its first
    byte is dropped however slowly it trickles (slow-loris). Past
    ``connection_limit`` open connections the server stops accepting until some
    close, so keep the limit below the process's open-file limit.
    """

    def __init__(
        self,
        *,
        threads: int = 8,
        connection_limit: int = 1000,
        channel_timeout_s: int = 30,
        max_header_bytes: int = 16 * 1024,
        request_read_timeout_s: int = 10,
    ) -> None:
        self.request_read_timeout_s = request_read_timeout_s
        self.threads = threads
        self.connection_limit = connection_limit
        self.channel_timeout_s = channel_timeout_s
        self.max_header_bytes = max_header_bytes


class _JsonErrorTask(ErrorTask):
    """waitress's refusals (bad framing, too large ...) as the contract's JSON error body."""

    def execute(self) -> None:
        err: Any = getattr(self.request, "error", None)  # waitress's Error of the request
        status = _STATUS_WORDS.get(err.code, "bad_request")
        if err.code == 413:
            message = f"request body over {MAX_BODY_BYTES // 1024} KiB"
        else:
            message = str(err.body)[:200] or str(err.reason)
        body = error(err.code, status, message).payload()
        self.status = f"{err.code} {err.reason}"
        headers: Any = self.response_headers
        headers.append(("Content-Type", _JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        log.info("%s - - %d (%s)", self.channel.addr[0], err.code, err.reason)


class _Channel(HTTPChannel):
    error_task_class = _JsonErrorTask
    read_started: float | None = None  # when the request being read got its first byte

    def received(self, data: bytes) -> bool:
        before = self.request
        done = bool(super().received(data))
        if self.request is None:
            self.read_started = None
        elif self.request is not before:
            self.read_started = time.time()
        return done


class _TlsChannel(_Channel):
    """A channel on a non-blocking TLS socket: handshake first, then drain TLS records."""

    _handshaken = False

    def handle_read(self) -> None:
        sock: Any = self.socket  # an ssl.SSLSocket
        if sock is None:
            return
        if not self._handshaken:
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError as exc:  # includes ssl.SSLError: not TLS, wrong CA, reset
                log.info("%s: TLS handshake failed: %s", self.addr[0], exc)
                self.handle_close()
                return
            self._handshaken = True
        while self.socket is not None:
            try:
                data = sock.recv(self.adj.recv_bytes)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError:
                self.handle_close()
                return
            if not data:
                self.handle_close()
                return
            self.last_activity = time.time()
            self.received(data)
            if not sock.pending():
                return

    def send(self, data: bytes, do_close: bool = True) -> int:
        if not self._handshaken:
            return 0
        try:
            return int(super().send(data, do_close))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0


class _Server(TcpWSGIServer):
    channel_class = _Channel
    request_read_timeout_s = 10.0

    def maintenance(self, now: int) -> None:  # waitress passes time.time()
        """Also close connections whose current request is read for too long."""
        super().maintenance(now)
        cutoff = now - self.request_read_timeout_s
        channels: Any = self.active_channels  # waitress's stubs omit it
        for channel in list(channels.values()):
            started = getattr(channel, "read_started", None)
            if started is not None and started < cutoff and not channel.requests:
                channel.will_close = True


class HttpServer:
    """``App`` served by waitress on an already bound socket; ``serve()`` runs the loop.

    Raises OSError when *host*:*port* cannot be bound. ``close()`` (any thread)
    closes the listening socket and every open connection, stops the workers and
    ends ``serve()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        app: App,
        *,
        limits: ServerLimits | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        limits = limits or ServerLimits()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128)
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        if tls is not None:
            sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        try:
            self._server: Any = _Server(  # Any: waitress's stubs omit its map and trigger
                _WsgiApp(app, self.drop_peer),
                _sock=sock,
                bind_socket=False,
                host=host,
                port=self.server_address[1],
                threads=limits.threads,
                connection_limit=limits.connection_limit,
                channel_timeout=limits.channel_timeout_s,
                cleanup_interval=max(
                    1, min(limits.channel_timeout_s, limits.request_read_timeout_s) // 3
                ),
                max_request_header_size=limits.max_header_bytes,
                max_request_body_size=MAX_BODY_BYTES + 1,  # waitress refuses from this size on
                backlog=128,
                recv_bytes=65536,
                ident="refbackend",
                asyncore_use_poll=True,
                expose_tracebacks=False,
                log_socket_errors=False,
            )
        except BaseException:
            sock.close()
            raise
        self._server.request_read_timeout_s = float(limits.request_read_timeout_s)
        if tls is not None:
            self._server.channel_class = _TlsChannel
        self._closed = threading.Event()

    def serve(self) -> None:
        """Run the event loop until ``close()``."""
        self._server.run()

    def close(self) -> None:
        """Stop listening and cut every connection, as a network failure would."""
        if self._closed.is_set():
            return
        self._closed.set()
        server = self._server
        done = threading.Event()

        def close_all() -> None:  # runs in the event loop's thread
            for channel in list(server._map.values()):
                sock = getattr(channel, "socket", None)
                if channel is not server and isinstance(sock, socket.socket):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    channel.close()
            server._map.clear()
            done.set()

        try:
            server.trigger.pull_trigger(close_all)
        except OSError:
            close_all()
        if not done.wait(5.0):
            log.warning("the server loop did not stop within 5 s")
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    def drop_peer(self, addr: str, port: int) -> None:
        """Cut the connection from *addr*:*port* without answering (fault injection)."""
        for _ in range(3):
            try:
                channels = list(self._server._map.values())
                break
            except RuntimeError:  # the loop changed the map meanwhile
                continue
        else:
            return
        for channel in channels:
            peer = getattr(channel, "addr", None)
            if isinstance(channel, HTTPChannel) and peer and tuple(peer[:2]) == (addr, port):
                sock = channel.socket
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


class _WsgiApp:
    """WSGI callable: environ -> ``Request`` -> ``App.handle`` -> response; one log line."""

    def __init__(self, app: App, drop: Callable[[str, int], None]) -> None:
        self._app = app
        self._drop = drop

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method = str(environ.get("REQUEST_METHOD", ""))
        path = str(environ.get("PATH_INFO", ""))
        addr = str(environ.get("REMOTE_ADDR", ""))
        reply = self._reply(environ, method, path, addr)
        if reply.drop:
            self._drop(addr, int(environ.get("REMOTE_PORT") or 0))
            _log(addr, method, path, reply.code, started, "dropped before answering")
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        payload = reply.payload()
        content_type = reply.content_type
        if content_type == "application/json":
            content_type = _JSON
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        headers += list(reply.headers)
        start_response(f"{reply.code} {_reason(reply.code)}", headers)
        _log(addr, method, path, reply.code, started, "")
        return [payload] if method != "HEAD" else []

    def _reply(self, environ: dict[str, Any], method: str, path: str, addr: str) -> Reply:
        length_text = environ.get("CONTENT_LENGTH")
        if not length_text:
            if method in ("POST", "PUT", "PATCH"):
                return error(411, "length_required", "Content-Length is required")
            body = b""
        else:
            length = int(length_text)  # waitress accepted it: digits, within the body limit
            if length > MAX_BODY_BYTES:
                return error(413, "too_large", f"request body over {MAX_BODY_BYTES // 1024} KiB")
            body = environ["wsgi.input"].read(length)
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        request = Request(
            method=method,
            path=path,
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            body=body,
            client_addr=addr,
        )
        return self._app.handle(request)


def _reason(code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Status"


def _log(addr: str, method: str, path: str, code: int, started: float, note: str) -> None:
    log.info(
        "%s %s %s %d %.1fms%s",
        addr,
        method or "-",
        path[:120] or "-",
        code,
        (time.monotonic() - started) * 1000,
        f" ({note})" if note else "",
    )
