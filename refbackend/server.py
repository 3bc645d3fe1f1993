"""``ReferenceBackend``: the project's own payment backend, served over real HTTP.

It owns its database, its signing key and a background server thread. Used as
a context manager by tests and ``kiosk demo``; ``kiosk backend`` runs
``serve_forever()``. ``pause()``/``resume()`` imitate the network going away
and coming back on the same port, with all state kept.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from refbackend import dev
from refbackend.app import App
from refbackend.errors import BackendError
from refbackend.faults import Faults
from refbackend.httpd import HttpServer, ServerLimits
from refbackend.keys import key_path_for, load_or_create
from refbackend.store import Store
from refbackend.wire import ApiError

__all__ = ["DEFAULT_ISSUER", "ReferenceBackend", "tls_context"]

log = logging.getLogger("refbackend")

DEFAULT_ISSUER = "urn:smartum-kiosk:reference-backend"
_JOIN_S = 5.0


class ReferenceBackend:
    """The reference payment backend on ``host:port`` (port 0: a free one), state in *db*.

    Lifecycle: ``start()`` opens the database and key and serves on a background
    thread; ``stop()`` (repeatable) ends it. Raises BackendError when the database,
    key or port cannot be used. The in-process methods (``create_client``,
    ``mint_receipt`` ...) run the same code as the ``/dev`` endpoints, may be
    called from any thread while started, and raise ValueError on bad arguments.
    """

    def __init__(
        self,
        db: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dev: bool = True,
        issuer: str = DEFAULT_ISSUER,
        clock: Callable[[], float] = time.time,
        token_ttl_s: int = 3600,
        rate_limit_per_s: float = 200.0,
        address_rate_limit_per_s: float | None = None,
        tls: ssl.SSLContext | None = None,
        dev_allow: tuple[str, ...] = (),
        limits: ServerLimits | None = None,
    ) -> None:
        self.db = Path(db)
        self.host = host
        self.issuer = issuer
        self.dev = dev
        self.faults = Faults()
        self._port = port
        self._clock = clock
        self._token_ttl_s = token_ttl_s
        self._rate = rate_limit_per_s
        self._address_rate = address_rate_limit_per_s
        self._tls = tls
        self._limits = limits
        try:
            self.dev_allow = tuple(ipaddress.ip_network(n, strict=False) for n in dev_allow)
        except ValueError as exc:
            raise ValueError(f"dev_allow: {exc}") from exc
        self._app: App | None = None
        self._store: Store | None = None
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._state = "new"  # new -> running <-> paused -> stopped

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> ReferenceBackend:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Open the database and key, seed the demo venue if empty, start serving."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"backend already {self._state}; make a new one")
            store = Store(self.db)
            try:
                key = load_or_create(key_path_for(self.db))
                self._app = App(
                    store,
                    key,
                    issuer=self.issuer,
                    clock=self._clock,
                    token_ttl_s=self._token_ttl_s,
                    rate_limit_per_s=self._rate,
                    address_rate_limit_per_s=self._address_rate,
                    dev_mode=self.dev,
                    dev_allow=self.dev_allow,
                    faults=self.faults,
                )
                self._listen()
            except BaseException:
                store.close()
                raise
            self._store = store
            self._state = "running"
            log.info("reference backend on %s (kid %s, db %s)", self.url, key.kid, self.db)

    def stop(self) -> None:
        """Stop serving and close the database. Safe to call again."""
        with self._lock:
            if self._state in ("new", "stopped"):
                self._state = "stopped"
                return
            if self._state == "running":
                self._unlisten()
            if self._store is not None:
                self._store.close()
            self._state = "stopped"

    def pause(self) -> None:
        """Stop listening and cut open connections (clients see refused connections)."""
        with self._lock:
            if self._state != "running":
                raise RuntimeError(f"cannot pause a backend that is {self._state}")
            self._unlisten()
            self._state = "paused"

    def resume(self) -> None:
        """Listen again on the same port after ``pause()``."""
        with self._lock:
            if self._state != "paused":
                raise RuntimeError(f"cannot resume a backend that is {self._state}")
            self._listen()
            self._state = "running"

    def serve_forever(self) -> None:
        """Start (if needed) and serve until SIGTERM or SIGINT; then stop. Main thread only."""
        if self._state == "new":
            self.start()
        stopping = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def _listen(self) -> None:
        assert self._app is not None
        try:
            server = HttpServer(
                self.host, self._port, self._app, limits=self._limits, tls=self._tls
            )
        except OSError as exc:
            raise BackendError(
                f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}; "
                "is another backend running there? choose another --port"
            ) from exc
        self._port = int(server.server_address[1])
        thread = threading.Thread(target=server.serve, name="refbackend-http", daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    def _unlisten(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.close()
        thread.join(_JOIN_S)
        if thread.is_alive():
            log.warning("thread %s did not end within %.0f s", thread.name, _JOIN_S)

    # --- facts --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self._port}"

    @property
    def kid(self) -> str:
        return self._require_app().key.kid

    @property
    def running(self) -> bool:
        return self._state == "running"

    def jwks(self) -> dict[str, Any]:
        """The public key set, as ``/.well-known/jwks.json`` serves it."""
        return self._require_app().keys.to_jwks()

    # --- in-process twins of the /dev endpoints -----------------------------------------

    def create_client(self, venue: str) -> tuple[str, str]:
        """A new API client bound to *venue*: (client_id, client_secret)."""
        return _plain(lambda: dev.create_client(self._require_app(), venue))

    def mint_receipt(
        self,
        venue: str,
        amount_cents: int,
        ben: str = "massage",
        paid_at: float | None = None,
    ) -> tuple[str, str]:
        """Record a payment to *venue* and return (tx, receipt token)."""
        app = self._require_app()
        return _plain(lambda: dev.mint_receipt(app, venue, amount_cents, ben, paid_at))

    def mint_paycode(
        self, balance_cents: int, ben: str = "massage", ttl_s: int = 300
    ) -> dict[str, str]:
        """Issue a paycode: ``{"jti", "code", "token"}``."""
        return _plain(lambda: dev.mint_paycode(self._require_app(), balance_cents, ben, ttl_s))

    def create_venue(
        self, name: str, address: str, services: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A new venue object (default services: the demo studio's)."""
        return _plain(lambda: dev.create_venue(self._require_app(), name, address, services))

    def _require_app(self) -> App:
        if self._app is None or self._state == "stopped":
            raise RuntimeError("the backend is not started")
        return self._app

    def __repr__(self) -> str:
        return f"ReferenceBackend({self.url}, {self._state})"


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or newer) for *cert* and *key* (PEM files).

    Raises BackendError when a file cannot be read or the two do not belong together.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        detail = exc.strerror or getattr(exc, "reason", None) or str(exc)
        raise BackendError(
            f"cannot use the TLS certificate {cert} with key {key}: {detail}; "
            "give a PEM certificate and its own unencrypted PEM private key"
        ) from exc
    return context


def _plain(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ApiError as err:
        body = err.reply.body or {}
        raise ValueError(str(body.get("message", err))) from err
