"""The contract's endpoints: OAuth token, JWKS and everything under ``/v1``.

A handler validates its request (raising ``ApiError`` for 400/403 answers
decided before any write) and returns either a finished ``Reply`` or the
``Work`` to run inside a database transaction that the application opens.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from refbackend import accounts, ledger
from refbackend.errors import TokenRefused
from refbackend.tokens import IssuedPaycode, IssuedReceipt, verify
from refbackend.wire import (
    ApiError,
    Reply,
    bad_request,
    error,
    new_id,
    parse_rfc3339,
    take,
)

if TYPE_CHECKING:
    from refbackend.app import App

__all__ = ["Call", "Work", "cancel", "charge", "check", "history", "jwks", "oauth_token", "venue"]

Work = Callable[[sqlite3.Connection], Reply]
_CODE = re.compile(r"[0-9]{12}")
_TX = re.compile(r"tx_[0-9A-Za-z]{16}")
MAX_TOKEN_FIELD = 8192  # longer than any token; longer ones are refused by verify() as too_long
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class Call:
    """An authenticated ``/v1`` call: who calls, path parameters, query and JSON body."""

    client: str
    venue: str
    params: dict[str, str]
    query: str
    body: dict[str, Any]


# --- public endpoints -------------------------------------------------------------------


def jwks(app: App) -> Reply:
    return Reply(200, app.keys.to_jwks(), (("Cache-Control", "max-age=3600"),))


def oauth_token(app: App, authorization: str | None, raw_body: bytes) -> Reply:
    """Client credentials grant: Basic auth, form body. 200, 400 or 401 ``invalid_client``."""
    try:
        form = parse_qs(raw_body.decode("ascii"), max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return error(400, "invalid_request", "body must be a form: grant_type=client_credentials")
    if form.get("grant_type") != ["client_credentials"]:
        return error(
            400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
        )
    credentials = _basic(authorization)
    if credentials is None:
        return error(401, "invalid_client", "send the client id and secret by HTTP Basic auth")
    client_id, secret = credentials
    now = app.clock()
    with app.store.write() as conn:
        if not accounts.authenticate_client(conn, client_id, secret):
            return error(401, "invalid_client", "unknown client or wrong secret")
        token = accounts.issue_access_token(conn, client_id, now, app.token_ttl_s)
    return Reply(
        200,
        {"access_token": token, "token_type": "Bearer", "expires_in": app.token_ttl_s},
        (("Cache-Control", "no-store"),),
    )


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or len(decoded) > 512:
        return None
    return unquote(client_id), unquote(secret)


# --- /v1 --------------------------------------------------------------------------------


def _own_venue(call: Call, ven: str) -> None:
    if ven != call.venue:
        raise ApiError(403, "wrong_venue", f"this client is bound to venue {call.venue}")


def venue(app: App, call: Call) -> Work:
    _own_venue(call, call.params["ven"])

    def work(conn: sqlite3.Connection) -> Reply:
        obj = accounts.venue_object(conn, call.venue)
        if obj is None:
            return error(404, "not_found", "the venue no longer exists")
        return Reply(200, obj)

    return work


def check(app: App, call: Call) -> Reply | Work:
    body = call.body
    token = take(body, "token", str, max_len=MAX_TOKEN_FIELD)
    ven = take(body, "venue", str, max_len=100)
    device = take(body, "device", str, max_len=64)
    scanned = take(body, "scanned_at", str, max_len=64)
    offline = take(body, "offline", bool)
    try:
        scanned_at = parse_rfc3339(scanned)
    except (ValueError, OverflowError) as exc:
        raise bad_request("field 'scanned_at' must be an RFC 3339 date-time") from exc
    _own_venue(call, ven)
    try:
        proved = verify(token, app.keys, app.issuer)
    except TokenRefused as err:
        return error(422, "invalid", f"the receipt is not valid ({err.reason})", reason=err.reason)
    if not isinstance(proved, IssuedReceipt):
        return error(422, "invalid", "that is a payment code, not a receipt", reason="not_receipt")
    receipt = proved
    now = app.clock()
    return lambda conn: ledger.check_receipt(
        conn,
        receipt,
        venue=ven,
        device=device,
        offline=offline,
        scanned_at=scanned_at,
        now=now,
    )


def charge(app: App, call: Call) -> Reply | Work:
    body = call.body
    paycode = take(body, "paycode", str, max_len=MAX_TOKEN_FIELD)
    ven = take(body, "venue", str, max_len=100)
    device = take(body, "device", str, max_len=64)
    service = take(body, "service", str, max_len=64)
    amount = take(body, "amount_cents", int)
    _own_venue(call, ven)
    jti: str | None = None
    code: str | None = None
    if _CODE.fullmatch(paycode):
        code = paycode
    else:
        try:
            proved = verify(paycode, app.keys, app.issuer)
        except TokenRefused as err:
            return error(
                422, "invalid", f"the payment code is not valid ({err.reason})", reason=err.reason
            )
        if not isinstance(proved, IssuedPaycode):
            return error(
                422, "invalid", "that is a receipt, not a payment code", reason="not_paycode"
            )
        jti = proved.jti
    now = app.clock()
    new_tx = new_id("tx_")
    return lambda conn: ledger.charge(
        conn,
        venue=ven,
        device=device,
        service=service,
        amount_cents=amount,
        paycode_jti=jti,
        code=code,
        now=now,
        new_tx=new_tx,
    )


def cancel(app: App, call: Call) -> Reply | Work:
    reason = take(call.body, "reason", str, max_len=500)
    tx = call.params["tx"]
    if not _TX.fullmatch(tx):
        return error(404, "not_found", f"no transaction {tx[:40]!r}")
    now = app.clock()
    return lambda conn: ledger.cancel(conn, venue=call.venue, tx=tx, reason=reason, now=now)


def history(app: App, call: Call) -> Work:
    _own_venue(call, call.params["ven"])
    try:
        query = parse_qs(call.query, keep_blank_values=True, max_num_fields=20)
    except ValueError as exc:
        raise bad_request("query string is not valid") from exc
    for name, values in query.items():
        if len(values) > 1:
            raise bad_request(f"query parameter {name!r} given twice")
    since = None
    if "since" in query:
        try:
            since = parse_rfc3339(query["since"][0])
        except (ValueError, OverflowError) as exc:
            raise bad_request("since must be an RFC 3339 date-time") from exc
    limit = DEFAULT_LIMIT
    if "limit" in query:
        text = query["limit"][0]
        if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= 500):
            raise bad_request("limit must be an integer from 1 to 500")
        limit = int(text)
    after = None
    if "cursor" in query:
        try:
            after = ledger.decode_cursor(query["cursor"][0])
        except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
            raise bad_request("cursor is not one this backend gave out") from exc
    return lambda conn: ledger.history(
        conn, venue=call.venue, since=since, limit=limit, after=after
    )
