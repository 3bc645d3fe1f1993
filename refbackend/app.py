"""The reference backend's request pipeline, independent of the HTTP server.

``App.handle(request)`` always returns a ``Reply`` (it never raises): routing,
injected faults, rate limiting, bearer authentication, idempotency, then the
endpoint itself inside a database transaction. Any thread may call it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from refbackend import accounts, api, dev
from refbackend.faults import Faults, RateLimiter
from refbackend.idempotency import Idempotency, fingerprint, parse_key
from refbackend.keys import SigningKey
from refbackend.store import Store
from refbackend.tokens import TrustedKeys
from refbackend.wire import ApiError, Reply, Request, error, parse_json_object

__all__ = ["App"]

log = logging.getLogger("refbackend")

Handler = Callable[["App", api.Call], "Reply | api.Work"]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


_V1 = (
    _Route("GET", re.compile(r"/v1/venues/(?P<ven>[^/]+)"), api.venue),
    _Route("GET", re.compile(r"/v1/venues/(?P<ven>[^/]+)/transactions"), api.history),
    _Route("POST", re.compile(r"/v1/receipts/check"), api.check),
    _Route("POST", re.compile(r"/v1/charges"), api.charge),
    _Route("POST", re.compile(r"/v1/transactions/(?P<tx>[^/]+)/cancel"), api.cancel),
)
ADDRESS_RATE_FACTOR = 20  # the per-address bound, in multiples of the per-client rate
_GARBAGE = b"<html><body>502 Bad Gateway (injected)</body></html>"


class App:
    """Everything the backend knows and does, for one database and one signing key."""

    def __init__(
        self,
        store: Store,
        key: SigningKey,
        *,
        issuer: str,
        clock: Callable[[], float],
        token_ttl_s: int,
        rate_limit_per_s: float,
        dev_mode: bool,
        address_rate_limit_per_s: float | None = None,
        faults: Faults,
        dev_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
    ) -> None:
        self.store = store
        self.key = key
        self.keys = TrustedKeys({key.kid: key.public})
        self.issuer = issuer
        self.clock = clock
        self.token_ttl_s = token_ttl_s
        self.dev_mode = dev_mode
        self.dev_allow = dev_allow
        self.faults = faults
        # Per authenticated client: one kiosk's burst cannot starve another's. Per address
        # (before authentication) only a coarse bound, far above a studio's traffic, so that
        # a guest behind the studio's NAT cannot make its kiosks' requests answer 429.
        self.limiter = RateLimiter(rate_limit_per_s)
        self.address_limiter = RateLimiter(
            address_rate_limit_per_s or rate_limit_per_s * ADDRESS_RATE_FACTOR
        )
        self.idempotency = Idempotency(store, clock)
        with store.write() as conn:
            if accounts.seed_demo(conn):
                log.info("seeded demo venue %s", accounts.DEMO_VENUE)

    def handle(self, req: Request) -> Reply:
        """The answer to *req*; unexpected failures become a logged 500."""
        try:
            return self._route(req)
        except ApiError as err:
            return err.reply
        except Exception:
            log.exception("internal error on %s %s", req.method, req.path)
            return error(500, "internal", "the backend failed; retry with the same key")

    def _route(self, req: Request) -> Reply:
        if req.path.startswith("/v1/"):
            return self._v1(req)
        if req.path == "/oauth/token":
            if req.method != "POST":
                raise ApiError(405, "method_not_allowed", "use POST")
            limited = self._rate_limited(self.address_limiter, req.client_addr)
            if limited is not None:
                return limited
            return api.oauth_token(self, req.headers.get("authorization"), req.body)
        if req.path == "/.well-known/jwks.json":
            if req.method != "GET":
                raise ApiError(405, "method_not_allowed", "use GET")
            return api.jwks(self)
        if req.path.startswith("/dev/") and self.dev_mode:
            if not dev.is_allowed(req.client_addr, self.dev_allow):
                raise ApiError(
                    403, "forbidden", "dev endpoints answer loopback (or --dev-allow) clients only"
                )
            return dev.handle(self, req.method, req.path, parse_json_object(req.body))
        raise ApiError(404, "not_found", f"no endpoint {req.path[:100]}")

    # --- /v1 ----------------------------------------------------------------------------

    def _v1(self, req: Request) -> Reply:
        if self.faults.take("error_500"):
            return error(500, "internal", "injected server error")
        if self.faults.take("rate_limit"):
            return error(429, "rate_limited", "too many requests; retry later", retry_after=1)
        if self.faults.take("garbage"):
            return Reply(200, raw=_GARBAGE, content_type="text/html")
        limited = self._rate_limited(self.address_limiter, req.client_addr)
        if limited is not None:
            return limited
        client, venue = self._authenticate(req.headers.get("authorization"))
        limited = self._rate_limited(self.limiter, client)
        if limited is not None:
            return limited
        route, params = self._match(req)
        if req.method == "GET":
            call = api.Call(client, venue, params, req.query, {})
            prepared = route.handler(self, call)
            self._delay()
            if isinstance(prepared, Reply):
                return prepared
            with self.store.read() as conn:
                return prepared(conn)
        key = parse_key(req.headers.get("idempotency-key"))
        body = parse_json_object(req.body)
        call = api.Call(client, venue, params, req.query, body)
        replay = self.idempotency.claim(client, key, fingerprint(req.method, req.path, body))
        if replay is not None:
            self._delay()
            return replay
        self._delay()
        reply = self._run_claimed(route, call, key)
        if self.faults.take("drop_after_commit"):
            return Reply(reply.code, drop=True)
        return reply

    def _run_claimed(self, route: _Route, call: api.Call, key: str) -> Reply:
        try:
            try:
                prepared = route.handler(self, call)
            except ApiError as err:
                prepared = err.reply
            if isinstance(prepared, Reply):
                with self.store.write() as conn:
                    self.idempotency.finish(conn, call.client, key, prepared)
                return prepared
            with self.store.write() as conn:
                reply = prepared(conn)
                self.idempotency.finish(conn, call.client, key, reply)
            return reply
        except BaseException:
            self.idempotency.abandon(call.client, key)
            raise

    def _rate_limited(self, limiter: RateLimiter, who: str) -> Reply | None:
        """429 with Retry-After when *who* is over its request rate, else None."""
        wait = limiter.allow(who)
        if wait <= 0:
            return None
        return error(
            429, "rate_limited", "too many requests; retry later",
            retry_after=max(1, round(wait + 0.5)),
        )  # fmt: skip

    def _authenticate(self, authorization: str | None) -> tuple[str, str]:
        if not authorization or authorization[:7].lower() != "bearer ":
            raise ApiError(401, "invalid_token", "send Authorization: Bearer <access token>")
        token = authorization[7:].strip()
        if not token or len(token) > 512:
            raise ApiError(401, "invalid_token", "the access token is not valid")
        with self.store.read() as conn:
            found = accounts.bearer_client(conn, token, self.clock())
        if found is None:
            raise ApiError(401, "invalid_token", "the access token is unknown or expired")
        return found

    def _match(self, req: Request) -> tuple[_Route, dict[str, str]]:
        allowed = []
        for route in _V1:
            m = route.pattern.fullmatch(req.path)
            if m is None:
                continue
            if route.method == req.method:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed", f"use {', '.join(allowed)}")
        raise ApiError(404, "not_found", f"no endpoint {req.path[:100]}")

    def _delay(self) -> None:
        delay = self.faults.delay_s
        if delay > 0:
            self.faults.delaying.set()
            time.sleep(delay)

    def describe(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "kid": self.key.kid, "dev": self.dev_mode}
