"""Request bodies of the backend API and their one canonical JSON encoding.

The flows build every POST body here and the journal stores :func:`encode`'s
text; the in-scan retry, the background sync and ``kiosk sync`` send that text
verbatim, so a replay carries the same bytes under the same Idempotency-Key
(``../shared/spec/backend-api.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kiosk.backend import strict_json
from kiosk.backend._wire import format_time

__all__ = [
    "MAX_REQUEST_BYTES",
    "Body",
    "cancel",
    "canonical",
    "charge",
    "encode",
    "receipt_check",
    "went_offline",
]

MAX_REQUEST_BYTES = 16 * 1024  # the backend answers 413 above this

Body = Mapping[str, Any] | str
"""A request body: built here, or the journal's encoded text."""


def receipt_check(
    token: str, *, venue: str, device: str, scanned_at: datetime, offline: bool = False
) -> dict[str, Any]:
    """POST /v1/receipts/check. *scanned_at* must be timezone-aware."""
    return {
        "token": token,
        "venue": venue,
        "device": device,
        "scanned_at": format_time(scanned_at),
        "offline": offline,
    }


def went_offline(check: Mapping[str, Any]) -> dict[str, Any]:
    """A receipt check body accepted offline: the same body marked ``offline``."""
    return dict(check, offline=True)


def charge(
    paycode: str, *, venue: str, device: str, service: str, amount_cents: int
) -> dict[str, Any]:
    """POST /v1/charges; *paycode* is the token or its 12 digits."""
    return {
        "paycode": paycode,
        "venue": venue,
        "device": device,
        "service": service,
        "amount_cents": amount_cents,
    }


def cancel(reason: str) -> dict[str, Any]:
    """POST /v1/transactions/{tx}/cancel."""
    return {"reason": reason[:200]}


def encode(body: Mapping[str, Any] | str) -> str:
    """The body's one canonical JSON text (sorted keys, no spaces, no NaN).

    Text already encoded is returned as is. Raises ValueError for a body the
    backend would refuse as too large, or that JSON cannot express.
    """
    if isinstance(body, str):
        text = body
    else:
        _require_text(body)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    size = len(text.encode())
    if size > MAX_REQUEST_BYTES:
        raise ValueError(f"request body of {size} bytes is over {MAX_REQUEST_BYTES}")
    return text


def _require_text(value: Any) -> None:
    """Refuse strings that are not Unicode text (lone surrogates: bytes that were not
    UTF-8, as sys.argv carries them from a Latin-1 terminal); the backend refuses them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("request body holds text that is not valid UTF-8") from None
    elif isinstance(value, Mapping):
        for item in value.values():
            _require_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _require_text(item)


def canonical(body: Body) -> tuple[str, Mapping[str, Any]]:
    """The canonical text to send and the mapping it encodes. Raises ValueError."""
    text = encode(body)
    if isinstance(body, str):
        doc = strict_json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("a request body must be a JSON object")
        return text, doc
    return text, body
