"""The kiosk's side of the payment backend's HTTP API: the one place that knows the wire.

Documented answers come back as values (:class:`CheckResult`, :class:`ChargeResult`,
:class:`CancelResult`, ...); exceptions are only for what the contract does not
describe, translated here from ``requests``/``urllib3`` with ``from``:

- :class:`BackendUnreachable` — nothing was delivered (DNS, refused, connect
  timeout, TLS handshake, or the access token could not be fetched): safe to go offline.
- :class:`OutcomeUnknown` — the request may have been delivered (read timeout,
  dropped connection, total deadline, 5xx, 409 ``in_progress``): resend the
  same key and body, after ``retry_after`` seconds if given.
- :class:`BackendBusy` — a 429: the backend processed nothing; send again after
  ``retry_after`` seconds if given (the request is not "maybe delivered").
- :class:`BackendAuthError` — client id/secret refused, or a fresh token refused.
- :class:`BackendProtocolError` — an answer outside the contract (redirect, wrong
  content type, bad or oversized JSON, undocumented status or field). After a POST
  the backend did receive the request, so its effect is unknown too.

One client is used by one thread at a time (the engine thread); calls are
serialised by a lock all the same. Nothing here logs secrets or whole tokens.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from kiosk.backend._exchange import Exchange, Timeouts, env_ca_bundle, own_session
from kiosk.backend._wire import (
    CancelResult,
    ChargeResult,
    CheckResult,
    HistoryItem,
    HistoryPage,
    Venue,
    decode_cancel,
    decode_charge,
    decode_check,
    decode_history,
    decode_token,
    decode_venue,
    format_time,
)
from kiosk.backend.bodies import Body
from kiosk.backend.bodies import canonical as _body
from kiosk.config import Config, Secret
from kiosk.errors import (
    BackendAuthError,
    BackendProtocolError,
    BackendUnreachable,
    ClientClosed,
    OutcomeUnknown,
    TokenError,
)
from kiosk.tokens import TX_SHAPE, KeySet

__all__ = [
    "BackendClient",
    "CancelResult",
    "ChargeResult",
    "CheckResult",
    "HistoryItem",
    "HistoryPage",
    "Timeouts",
    "Venue",
]

log = logging.getLogger("kiosk.backend")
_T = TypeVar("_T")
_KEY_SHAPE = re.compile(r"[\x21-\x7e]{8,200}")


class BackendClient:
    """Talks to the payment backend over HTTPS with the kiosk's OAuth client.

    The given ``session`` belongs to the caller (adapters, proxies and retries are
    its choice) and is not closed here; :meth:`from_config` builds one and owns it.
    Every call may raise the four BackendError subclasses of the module docstring,
    and ClientClosed after :meth:`close`; bad arguments raise ValueError.
    One thread at a time (normally the engine thread); a lock serialises calls.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: Secret,
        session: requests.Session,
        timeouts: Timeouts = Timeouts(),  # noqa: B008  (frozen)
        ca_bundle: str = "",
    ) -> None:
        self._client_id = client_id
        self._secret = client_secret
        self._session = session
        self._timeouts = timeouts
        self._ca_bundle = ca_bundle
        self._http = Exchange(base_url, session, timeouts, ca_bundle)
        self._owns_session = False
        self._closed = False
        self._lock = threading.RLock()
        self._access: str | None = None
        self._access_until = 0.0  # monotonic time after which the token is not used

    @classmethod
    def from_config(cls, cfg: Config) -> BackendClient:
        """A client for ``cfg.backend`` with its own session, closed by :meth:`close`."""
        b = cfg.backend
        client = cls(
            b.url,
            client_id=b.client_id,
            client_secret=cfg.client_secret,
            session=own_session(b.url),
            ca_bundle=b.ca_bundle or env_ca_bundle(),
            timeouts=Timeouts(
                b.connect_timeout,
                b.read_timeout,
                max(Timeouts.total, b.connect_timeout + b.read_timeout),
            ),
        )
        client._owns_session = True
        return client

    def fork(self) -> BackendClient:
        """Another client of the same backend and credentials with its own kept-alive
        session (closed by its :meth:`close`), for a second request in flight at once.

        It starts with this client's access token, so no new token is fetched."""
        with self._lock:
            self._check_open()
            twin = BackendClient(
                self._http.base_url,
                client_id=self._client_id,
                client_secret=self._secret,
                session=own_session(self._http.base_url),
                timeouts=self._timeouts,
                ca_bundle=self._ca_bundle,
            )
            twin._owns_session = True
            twin._access, twin._access_until = self._access, self._access_until
            return twin

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Forget the token and close the session if this client made it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._access = None
            if self._owns_session:
                self._session.close()

    def __enter__(self) -> BackendClient:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("backend client is closed; build a new one")

    # --- the API ----------------------------------------------------------------------------

    def fetch_jwks(self, *, within: float | None = None) -> dict[str, Any]:
        """GET /.well-known/jwks.json (no auth), checked to hold usable keys."""
        return self._guarded(self._jwks, within)

    def get_venue(self, venue: str) -> Venue:
        """GET /v1/venues/{venue}. 403 wrong_venue raises BackendAuthError."""
        path = f"/v1/venues/{quote(venue, safe='')}"
        return self._guarded(lambda d: decode_venue(self._get_json(path, None, d), venue))

    def check_receipt(
        self, idempotency_key: str, body: Body, *, within: float | None = None
    ) -> CheckResult:
        """POST /v1/receipts/check. Every documented answer is a CheckResult.

        *body* is built by :func:`kiosk.backend.bodies.receipt_check`, or its
        journaled text, which is sent verbatim. *within* (seconds) shortens the
        call's total deadline, token fetch included (a scan's budget).
        """
        text, doc = _body(body)
        result = self._post(
            "/v1/receipts/check",
            idempotency_key,
            text,
            lambda st, answer: decode_check(st, answer, doc),
            within=within,
        )
        log.info("receipt %s: %s", result.tx or "-", result.status)
        return result

    def charge(
        self, idempotency_key: str, body: Body, *, within: float | None = None
    ) -> ChargeResult:
        """POST /v1/charges. Every documented answer is a ChargeResult."""
        text, doc = _body(body)
        result = self._post(
            "/v1/charges",
            idempotency_key,
            text,
            lambda st, answer: decode_charge(st, answer, doc),
            within=within,
        )
        log.info("charge %s: %s", result.tx or "-", result.status)
        return result

    def cancel(
        self, tx: str, idempotency_key: str, body: Body, *, within: float | None = None
    ) -> CancelResult:
        """POST /v1/transactions/{tx}/cancel; 404 not_found is a value here."""
        if not isinstance(tx, str) or not TX_SHAPE.fullmatch(tx):
            raise ValueError(f"not a transaction id: {str(tx)[:40]!r}")
        text, _ = _body(body)
        result = self._post(
            f"/v1/transactions/{tx}/cancel",
            idempotency_key,
            text,
            lambda st, answer: decode_cancel(st, answer, tx),
            allow_404=True,
            within=within,
        )
        log.info("cancel %s: %s", tx, result.status)
        return result

    def history(
        self,
        venue: str,
        *,
        since: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """One page of GET /v1/venues/{venue}/transactions, newest first."""
        if not 1 <= limit <= 500:
            raise ValueError("limit must be 1..500")
        params: dict[str, str] = {"limit": str(limit)}
        if since is not None:
            params["since"] = format_time(since)
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/v1/venues/{quote(venue, safe='')}/transactions"
        return self._guarded(lambda d: decode_history(self._get_json(path, params, d), venue))

    def ping(self) -> None:
        """Reachability and credentials: fetch a fresh token and the key set. Raises."""
        self._guarded(lambda d: self._bearer(d, fresh=True))
        self.fetch_jwks()

    # --- requests ---------------------------------------------------------------------------

    def _jwks(self, deadline: float) -> dict[str, Any]:
        path = "/.well-known/jwks.json"
        doc = self._get_json(path, None, deadline, auth=False)
        try:
            keys = KeySet.from_jwks(doc)
        except TokenError as exc:
            raise BackendProtocolError(f"GET {path}: {exc}") from exc
        if not len(keys):
            raise BackendProtocolError(f"GET {path}: no Ed25519 signing key in the set")
        return doc

    def _post(
        self,
        path: str,
        key: str,
        text: str,
        decode: Callable[[int, dict[str, Any]], _T],
        *,
        allow_404: bool = False,
        within: float | None = None,
    ) -> _T:
        if not isinstance(key, str) or not _KEY_SHAPE.fullmatch(key):
            raise ValueError("Idempotency-Key must be 8..200 visible ASCII characters")
        data = text.encode()

        def call(deadline: float) -> _T:
            status, doc = self._v1("POST", path, deadline, data=data, key=key)
            if status == 404 and not allow_404:
                raise BackendProtocolError(
                    f"POST {path}: 404, endpoint not found; check backend.url"
                )
            return decode(status, doc)

        return self._guarded(call, within)

    def _get_json(
        self, path: str, params: Mapping[str, str] | None, deadline: float, *, auth: bool = True
    ) -> dict[str, Any]:
        if auth:
            status, doc = self._v1("GET", path, deadline, params=params)
        else:
            resp = self._http.send("GET", path, deadline, params=params)
            status, doc = self._http.answer("GET", path, resp, deadline)
        if status == 403 and doc.get("status") == "wrong_venue":
            raise BackendAuthError(
                f"GET {path}: this client is not bound to that venue; "
                "check device.venue and backend.client_id"
            )
        if status != 200:
            raise BackendProtocolError(f"GET {path}: HTTP {status} is not in the contract")
        return doc

    def _v1(
        self,
        method: str,
        path: str,
        deadline: float,
        *,
        data: bytes | None = None,
        key: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One authenticated exchange; a 401 gets one fresh token and one resend."""
        for fresh in (False, True):
            headers = {"Authorization": f"Bearer {self._bearer(deadline, fresh=fresh)}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if key is not None:
                headers["Idempotency-Key"] = key
            resp = self._http.send(
                method, path, deadline, headers=headers, data=data, params=params
            )
            if resp.status_code != 401:
                return self._http.answer(method, path, resp, deadline)
            resp.close()
            self._access = None
            log.info(
                "%s %s: access token refused (401)%s",
                method,
                path,
                "" if fresh else "; fetching a new one",
            )
        raise BackendAuthError(
            f"{method} {path}: the backend refused a freshly issued access token; "
            "check the backend's clock and configuration"
        )

    def _bearer(self, deadline: float, *, fresh: bool = False) -> str:
        """The cached access token, or a new one from POST /oauth/token."""
        if not fresh and self._access is not None and time.monotonic() < self._access_until:
            return self._access
        self._access = None
        try:
            resp = self._http.send(
                "POST",
                "/oauth/token",
                deadline,
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._secret.reveal()),
            )
            if resp.status_code == 401:
                resp.close()
                raise BackendAuthError(
                    f"the backend refused client_id {self._client_id!r}; check backend.client_id "
                    "and the secret in backend.client_secret_file"
                )
            status, doc = self._http.answer("POST", "/oauth/token", resp, deadline)
        except OutcomeUnknown as exc:  # only a token was asked for: nothing else was sent
            raise BackendUnreachable(f"cannot get an access token: {exc}") from exc
        if status != 200:
            raise BackendProtocolError(f"POST /oauth/token: HTTP {status} is not in the contract")
        token, expires_in = decode_token(doc)
        margin = min(30.0, expires_in / 10)
        self._access, self._access_until = token, time.monotonic() + expires_in - margin
        return token

    # --- one HTTP exchange ------------------------------------------------------------------

    def _guarded(self, call: Callable[[float], _T], within: float | None = None) -> _T:
        """Run *call* under the lock with this call's deadline (``Timeouts.total``, or
        *within* seconds if that is shorter); log contract breaches."""
        total = self._timeouts.total if within is None else min(self._timeouts.total, within)
        with self._lock:
            self._check_open()
            try:
                return call(time.monotonic() + total)
            except BackendProtocolError as exc:
                log.warning("backend answer outside the contract: %s", exc)
                raise
