"""The backend's answers as values: result objects and the strict decoding of each body.

Everything here is pure (no network). :mod:`kiosk.backend.client` moves bytes and
hands each answered ``(http status, parsed body)`` to a ``decode_*`` function,
which returns a documented result or raises :class:`BackendProtocolError` for
anything outside the contract (``../shared/spec/backend-api.md`` §2).

An accepting result (``checked``, ``charged``, ``cancelled``) is only built from
exactly the documented status code, status word and well-formed fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kiosk.errors import BackendProtocolError
from kiosk.tokens import TX_SHAPE
from kiosk.venue import Service
from kiosk.vocabulary import CancelStatus, ChargeStatus, CheckStatus, RequestKind, Word

__all__ = [
    "CancelResult",
    "ChargeResult",
    "CheckResult",
    "HistoryItem",
    "HistoryPage",
    "Venue",
    "decode_cancel",
    "decode_charge",
    "decode_check",
    "decode_history",
    "decode_token",
    "decode_venue",
    "format_time",
    "parse_time",
]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class CheckResult:
    """Answer to POST /v1/receipts/check; ``status`` is the backend's status word."""

    status: str  # checked | already_checked | cancelled | wrong_venue | invalid
    http_status: int
    tx: str | None = None
    amount_cents: int | None = None
    venue_name: str = ""
    paid_at: datetime | None = None
    checked_at: datetime | None = None
    checked_by: str | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class ChargeResult:
    """Answer to POST /v1/charges; ``status`` is the backend's status word."""

    status: str  # charged | insufficient_funds | paycode_used | paycode_expired
    #              | not_eligible | invalid
    http_status: int
    tx: str | None = None
    amount_cents: int | None = None
    charged_at: datetime | None = None
    service: str = ""
    balance_cents: int | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class CancelResult:
    """Answer to POST /v1/transactions/{tx}/cancel."""

    status: str  # cancelled | not_cancellable | not_found
    http_status: int
    tx: str | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Venue:
    """The studio this kiosk serves, with its services."""

    id: str
    name: str
    address: str
    services: tuple[Service, ...]


@dataclass(frozen=True)
class HistoryItem:
    """One transaction of the venue's history."""

    tx: str
    kind: str  # receipt | charge
    amount_cents: int
    status: str  # checked | charged | cancelled
    at: datetime
    device: str
    offline: bool
    conflict: bool


@dataclass(frozen=True)
class HistoryPage:
    """A page of history, newest first; ``next`` is the cursor of the next page."""

    items: tuple[HistoryItem, ...]
    next: str | None


# --- generic parsing -------------------------------------------------------------------------


def parse_time(value: object) -> datetime:
    """An RFC 3339 time (``Z`` accepted) as an aware UTC datetime. Raises ValueError."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 time")
    text = value.upper()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text).astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00
        raise ValueError("time out of range") from None
    # Outside 1970..2099 a time is nonsense, and near year 1 or 9999 local time overflows.
    if not 1970 <= when.year < 2100:
        raise ValueError("time out of range")
    return when


def format_time(value: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with ``Z``. Raises ValueError if naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Body:
    """Typed access to one answered body; every failure names the endpoint and field."""

    def __init__(self, where: str, doc: Mapping[str, Any]) -> None:
        self.where = where
        self.doc = doc

    def fail(self, what: str) -> BackendProtocolError:
        return BackendProtocolError(f"{self.where}: {what}")

    def has(self, name: str) -> bool:
        return self.doc.get(name) is not None

    def text(self, name: str, *, required: bool = True, empty_ok: bool = True) -> str:
        value = self.doc.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (not empty_ok and not value):
            raise self.fail(f"field {name!r} missing or not a string")
        return value

    def whole(self, name: str, *, minimum: int = 0) -> int:
        value = self.doc.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(f"field {name!r} missing or not a whole number >= {minimum}")
        return value

    def flag(self, name: str) -> bool:
        value = self.doc.get(name)
        if not isinstance(value, bool):
            raise self.fail(f"field {name!r} missing or not true/false")
        return value

    def time(self, name: str) -> datetime:
        try:
            return parse_time(self.doc.get(name))
        except ValueError:
            raise self.fail(f"field {name!r} missing or not an RFC 3339 time") from None

    def tx(self, name: str = "tx") -> str:
        value = self.doc.get(name)
        if not isinstance(value, str) or not TX_SHAPE.fullmatch(value):
            raise self.fail(f"field {name!r} missing or not a transaction id")
        return value

    def message(self) -> str:
        value = self.doc.get("message", "")
        return value[:500] if isinstance(value, str) else ""


def _status_word(b: _Body, http_status: int, allowed: Mapping[int, tuple[str, ...]]) -> str:
    word = b.doc.get("status")
    if not isinstance(word, str):
        raise b.fail(f"HTTP {http_status} without a status word")
    if word not in allowed.get(http_status, ()):
        raise b.fail(f"HTTP {http_status} with status {word[:40]!r} is not in the contract")
    return word


def _jws_claims(token: object) -> Mapping[str, Any]:
    """The unverified payload of a compact JWS, or {} if it is not one (cross-checks only)."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    segment = token.split(".")[1]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        claims = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


# --- endpoint decoders -----------------------------------------------------------------------

_CHECK: dict[int, tuple[str, ...]] = {
    200: (CheckStatus.CHECKED,),
    409: (CheckStatus.ALREADY_CHECKED,),
    410: (CheckStatus.CANCELLED,),
    403: (CheckStatus.WRONG_VENUE,),
    422: (CheckStatus.INVALID,),
}
_CHARGE: dict[int, tuple[str, ...]] = {
    201: (ChargeStatus.CHARGED,),
    402: (ChargeStatus.INSUFFICIENT_FUNDS,),
    409: (ChargeStatus.PAYCODE_USED,),
    410: (ChargeStatus.PAYCODE_EXPIRED,),
    422: (ChargeStatus.NOT_ELIGIBLE, ChargeStatus.INVALID),
}
_CANCEL: dict[int, tuple[str, ...]] = {
    200: (CancelStatus.CANCELLED,),
    409: (CancelStatus.NOT_CANCELLABLE,),
    404: (CancelStatus.NOT_FOUND,),
}
_HISTORY_KINDS = (RequestKind.RECEIPT, RequestKind.CHARGE)
_HISTORY_STATUSES = (Word.CHECKED, Word.CHARGED, Word.CANCELLED)


def decode_check(
    http_status: int, doc: Mapping[str, Any], request: Mapping[str, Any]
) -> CheckResult:
    """The result of a receipt check. Raises BackendProtocolError outside the contract."""
    b = _Body("POST /v1/receipts/check", doc)
    word = _status_word(b, http_status, _CHECK)
    msg = b.message()
    if word == CheckStatus.CHECKED:
        result = CheckResult(
            word,
            http_status,
            tx=b.tx(),
            amount_cents=b.whole("amount_cents", minimum=1),
            venue_name=b.text("venue_name"),
            paid_at=b.time("paid_at"),
            checked_at=b.time("checked_at"),
            checked_by=b.text("checked_by", empty_ok=False),
            message=msg,
        )
        claims = _jws_claims(request.get("token"))
        if "jti" in claims and claims["jti"] != result.tx:
            raise b.fail("checked a different transaction than the scanned receipt")
        if "amt" in claims and claims["amt"] != result.amount_cents:
            raise b.fail("checked amount differs from the scanned receipt")
        return result
    if word == CheckStatus.ALREADY_CHECKED:
        return CheckResult(
            word,
            http_status,
            tx=b.tx(),
            checked_at=b.time("checked_at"),
            checked_by=b.text("checked_by"),
            amount_cents=b.whole("amount_cents") if b.has("amount_cents") else None,
            message=msg,
        )
    if word == CheckStatus.WRONG_VENUE:
        return CheckResult(word, http_status, venue_name=b.text("venue_name"), message=msg)
    if word == CheckStatus.INVALID:
        return CheckResult(word, http_status, reason=b.text("reason"), message=msg)
    tx = b.tx() if b.has("tx") else None
    return CheckResult(word, http_status, tx=tx, message=msg)  # cancelled


def decode_charge(
    http_status: int, doc: Mapping[str, Any], request: Mapping[str, Any]
) -> ChargeResult:
    """The result of a charge. Raises BackendProtocolError outside the contract."""
    b = _Body("POST /v1/charges", doc)
    word = _status_word(b, http_status, _CHARGE)
    msg = b.message()
    if word == ChargeStatus.CHARGED:
        result = ChargeResult(
            word,
            http_status,
            tx=b.tx(),
            amount_cents=b.whole("amount_cents", minimum=1),
            charged_at=b.time("charged_at"),
            service=b.text("service", empty_ok=False),
            message=msg,
        )
        if "amount_cents" in request and request["amount_cents"] != result.amount_cents:
            raise b.fail("charged amount differs from the requested amount")
        if "service" in request and request["service"] != result.service:
            raise b.fail("charged service differs from the requested service")
        return result
    if word == ChargeStatus.INSUFFICIENT_FUNDS:
        return ChargeResult(word, http_status, balance_cents=b.whole("balance_cents"), message=msg)
    if word == ChargeStatus.INVALID:
        return ChargeResult(word, http_status, reason=b.text("reason"), message=msg)
    return ChargeResult(word, http_status, reason=b.text("reason", required=False), message=msg)


def decode_cancel(http_status: int, doc: Mapping[str, Any], tx: str) -> CancelResult:
    """The result of a cancel of *tx*. Raises BackendProtocolError outside the contract."""
    b = _Body(f"POST /v1/transactions/{tx}/cancel", doc)
    word = _status_word(b, http_status, _CANCEL)
    answered = b.tx() if b.has("tx") else tx
    if answered != tx:
        raise b.fail(f"answer names another transaction {answered}")
    reason = b.text("reason", required=word == CancelStatus.NOT_CANCELLABLE)
    return CancelResult(word, http_status, tx=tx, reason=reason, message=b.message())


def decode_token(doc: Mapping[str, Any]) -> tuple[str, float]:
    """``(access_token, expires_in seconds)`` from a 200 of POST /oauth/token."""
    b = _Body("POST /oauth/token", doc)
    token = b.text("access_token", empty_ok=False)
    if len(token) > 4096 or not token.isascii() or not token.isprintable():
        raise b.fail("access_token is not a usable bearer token")
    if b.text("token_type").lower() != "bearer":
        raise b.fail("token_type is not Bearer")
    return token, float(b.whole("expires_in", minimum=1))


def decode_venue(doc: Mapping[str, Any], venue: str) -> Venue:
    """A 200 of GET /v1/venues/{venue}."""
    b = _Body(f"GET /v1/venues/{venue}", doc)
    if b.text("id") != venue:
        raise b.fail("answer describes another venue")
    raw = doc.get("services")
    if not isinstance(raw, list):
        raise b.fail("field 'services' missing or not a list")
    services = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise b.fail("a service is not an object")
        s = _Body(b.where + " service", entry)
        services.append(
            Service(
                id=s.text("id", empty_ok=False),
                name=s.text("name"),
                price_cents=s.whole("price_cents"),
                benefit=s.text("benefit"),
                eligible=s.flag("eligible"),
            )
        )
    return Venue(venue, b.text("name"), b.text("address"), tuple(services))


def decode_history(doc: Mapping[str, Any], venue: str) -> HistoryPage:
    """A 200 of GET /v1/venues/{venue}/transactions."""
    b = _Body(f"GET /v1/venues/{venue}/transactions", doc)
    raw = doc.get("items")
    if not isinstance(raw, list):
        raise b.fail("field 'items' missing or not a list")
    items: list[HistoryItem] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise b.fail("a history item is not an object")
        i = _Body(b.where + " item", entry)
        kind, status = i.text("kind"), i.text("status")
        if kind not in _HISTORY_KINDS or status not in _HISTORY_STATUSES:
            raise i.fail(f"unknown kind/status {kind[:20]!r}/{status[:20]!r}")
        item = HistoryItem(
            i.tx(), kind, i.whole("amount_cents"), status, i.time("at"), i.text("device"),
            offline=i.flag("offline"), conflict=i.flag("conflict"),
        )  # fmt: skip
        items.append(item)
    cursor = doc.get("next")
    if cursor is not None and (not isinstance(cursor, str) or not cursor):
        raise b.fail("field 'next' is neither a cursor nor null")
    return HistoryPage(tuple(items), cursor)
