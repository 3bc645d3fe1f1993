"""Wire shapes of the reference backend: requests, replies, errors, JSON and time fields.

Everything here is pure. ``ApiError`` is raised for answers that are decided
before anything is written (bad requests, authentication, routing); documented
outcomes of a business operation are returned as ``Reply`` values.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ApiError",
    "Reply",
    "Request",
    "bad_request",
    "error",
    "new_id",
    "parse_json_object",
    "parse_rfc3339",
    "rfc3339",
    "take",
]

MAX_BODY_BYTES = 16 * 1024
MAX_TEXT = 500
_BASE62 = string.digits + string.ascii_letters
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class Request:
    """One HTTP request as the application sees it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-case
    body: bytes
    client_addr: str


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status code, JSON body (or raw bytes) and extra headers."""

    code: int
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    raw: bytes | None = None
    content_type: str = "application/json"
    drop: bool = field(default=False)  # close the connection without answering

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


def error(code: int, status: str, message: str, **extra: Any) -> Reply:
    """An error answer: ``{"status", "message"}`` plus the contract's extra fields."""
    headers: tuple[tuple[str, str], ...] = ()
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers = (("Retry-After", str(retry_after)),)
    if code == 401:
        scheme = "Basic" if status == "invalid_client" else "Bearer"
        headers += (("WWW-Authenticate", f'{scheme} error="{status}"'),)
    return Reply(code, {"status": status, "message": message, **extra}, headers)


class ApiError(Exception):
    """A documented error answer decided before any write; ``.reply`` is what is sent."""

    def __init__(self, code: int, status: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code} {status}: {message}")
        self.reply = error(code, status, message, **extra)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object. Raises ApiError 400."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request(f"body is not valid JSON ({type(exc).__name__})") from exc
    if not isinstance(value, dict):
        raise bad_request("body must be a JSON object")
    try:  # a \udXXX escape decodes to a lone surrogate: not text, cannot be stored
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad_request("body has a string that is not valid Unicode text") from exc
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def take(
    body: dict[str, Any],
    name: str,
    kind: type,
    *,
    required: bool = True,
    default: Any = None,
    max_len: int = MAX_TEXT,
    min_value: int | None = None,
    max_value: int | None = None,
) -> Any:
    """Field *name* of *body*, checked for type and bounds. Raises ApiError 400."""
    if name not in body or (body[name] is None and not required):
        if required:
            raise bad_request(f"field {name!r} is missing")
        return default
    value = body[name]
    wrong_bool = kind is int and isinstance(value, bool)
    if not isinstance(value, kind) or wrong_bool:
        raise bad_request(f"field {name!r} must be {_kind_word(kind)}")
    if isinstance(value, str) and not 0 < len(value) <= max_len:
        raise bad_request(f"field {name!r} must be 1..{max_len} characters")
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (
            (min_value is not None and value < min_value)
            or (max_value is not None and value > max_value)
        )
    ):
        raise bad_request(f"field {name!r} must be in {min_value}..{max_value}")
    return value


def _kind_word(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__
    )


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 UTC with ``Z``, second precision."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """RFC 3339 date-time (any offset) to unix seconds. Raises ValueError."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time")
    normalised = text.upper().replace("Z", "+00:00")
    if "." in normalised:  # datetime takes at most 6 fraction digits
        head, rest = normalised.split(".", 1)
        digits = re.match(r"\d+", rest)
        assert digits is not None
        normalised = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    return datetime.fromisoformat(normalised).timestamp()


def new_id(prefix: str, length: int = 16) -> str:
    """A random id such as ``tx_R60D21hL60bj5N1v``."""
    return prefix + "".join(secrets.choice(_BASE62) for _ in range(length))
