"""SmartumPay tokens: classify scanned text, verify receipt and paycode JWS.

The firmware's side of the token rules of the backend contract (section 1). It
only verifies: issuing tokens is the backend's (the reference backend's
``refbackend.tokens`` is the one signer, independent of this code, so that each
is tested against the other).

- ``alg`` must be exactly ``EdDSA``; anything else is refused before any key
  is looked at. ``kid`` only selects among trusted keys; ``jku``/``jwk``/``x5u``
  are ignored and never fetched; any ``crit`` header is malformed.
- ``typ`` is one of the two token types and ``iss`` the configured issuer.
- Tokens over 2048 bytes or not ASCII are malformed.
- Receipts never expire; paycodes expire at ``exp`` plus 60 s of skew, judged
  only when the caller says its clock is trustworthy.

Pure functions: no I/O, the clock is passed in. Signature checks go through
PyJWT with the algorithm list pinned to EdDSA.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk.backend import strict_json
from kiosk.errors import TokenError
from kiosk.token_shape import (
    BENEFITS,
    CODE_SHAPE,
    JWS_SHAPE,
    MAX_TOKEN_BYTES,
    PAYCODE_ID_SHAPE,
    PAYCODE_TYP,
    RECEIPT_TYP,
    TX_SHAPE,
    VENUE_SHAPE,
    looks_like_jws,
    stripped,
)
from kiosk.vocabulary import TokenKind

__all__ = [
    "MAX_TOKEN_BYTES",
    "PAYCODE_TYP",
    "RECEIPT_TYP",
    "BareCode",
    "KeySet",
    "Paycode",
    "Receipt",
    "Scanned",
    "Token",
    "Unrecognised",
    "Verified",
    "classify",
    "verify",
]

EXPIRY_SKEW_S = 60

_KID_SHAPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Time claims beyond 2100-01-01 (or before 1970) are nonsense and overflow datetime on screens.
_TIME_LIMIT = 4_102_444_800


@dataclass(frozen=True)
class Receipt:
    """A verified receipt: proof that the customer already paid."""

    tx: str
    venue: str
    venue_name: str
    venue_address: str
    amount_cents: int
    currency: str
    benefit: str
    paid_at: int
    issuer: str
    token: str


@dataclass(frozen=True)
class Paycode:
    """A verified one-time payment code the studio may charge."""

    jti: str
    code: str
    benefit: str
    issued_at: int
    expires_at: int
    issuer: str
    token: str


@dataclass(frozen=True)
class BareCode:
    """A paycode typed or read as its 12 digits; only the backend can judge it."""

    code: str


@dataclass(frozen=True)
class Unrecognised:
    """Scanned text that is not a usable SmartumPay token, with a short reason word.

    ``reason`` is ``not_smartum`` for text that is not a token at all, and for a
    token-shaped text one of ``too_long``, ``not_ascii``, ``malformed``,
    ``bad_alg``, ``bad_typ``, ``bad_iss``, ``unknown_kid``, ``bad_signature``,
    ``bad_claims``, ``expired``.
    """

    reason: str
    detail: str = ""
    kind: TokenKind | None = None  # what the token claimed to be, when that was known


Token = Receipt | Paycode
"""A verified token: one class per :class:`~kiosk.vocabulary.TokenKind`."""

Verified = Token | BareCode
"""What the counter can act on: a verified token or a paycode's bare digits."""

Scanned = Verified | Unrecognised
"""What a scanned text is (:func:`classify`)."""


class KeySet:
    """Trusted Ed25519 verification keys by ``kid``; built from a JWKS document."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey] | None = None) -> None:
        self._keys: dict[str, Ed25519PublicKey] = dict(keys or {})

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        """Build from a parsed JWKS. Raises TokenError("malformed") on any bad entry."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise TokenError("malformed", "JWKS must be an object with a 'keys' list")
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in document["keys"]:
            if not isinstance(entry, dict):
                raise TokenError("malformed", "JWKS key entry is not an object")
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                continue  # not a key type tokens can use; ignore rather than trust
            kid, x = entry.get("kid"), entry.get("x")
            if not isinstance(kid, str) or not _KID_SHAPE.fullmatch(kid) or not isinstance(x, str):
                raise TokenError("malformed", "JWKS key without a usable kid or x")
            try:
                raw = _b64decode(x)
                keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
            except (ValueError, TypeError) as exc:
                raise TokenError("malformed", f"JWKS key {kid!r} is not Ed25519") from exc
        return cls(keys)

    def to_jwks(self) -> dict[str, Any]:
        """The set as a JWKS document (public keys only)."""
        return {"keys": [public_jwk(kid, key) for kid, key in sorted(self._keys.items())]}

    def get(self, kid: str) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={self.kids()!r})"


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """One JWKS entry for *key*."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": _b64encode(raw), "use": "sig"}


def classify(text: str, keys: KeySet, issuer: str, *, now: float, clock_trusted: bool) -> Scanned:
    """Say what a scanned text is. Never raises; failures become Unrecognised."""
    text = stripped(text)
    if CODE_SHAPE.fullmatch(text):
        return BareCode(text)
    if not looks_like_jws(text):
        return Unrecognised("not_smartum")
    try:
        return verify(text, keys, issuer, now=now, clock_trusted=clock_trusted)
    except TokenError as err:
        return Unrecognised(err.reason, err.detail, err.kind)


def verify(token: str, keys: KeySet, issuer: str, *, now: float, clock_trusted: bool) -> Token:
    """Verify a receipt or paycode JWS. Raises TokenError with a reason word."""
    if not token.isascii():
        raise TokenError("not_ascii", "token contains non-ASCII characters")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("too_long", f"token is {len(token)} bytes, limit {MAX_TOKEN_BYTES}")
    if not JWS_SHAPE.fullmatch(token):
        raise TokenError("malformed", "not three base64url parts")
    header = _strict_json(token.split(".", 1)[0], "header")
    if header.get("alg") != "EdDSA":
        raise TokenError("bad_alg", "only EdDSA tokens are accepted")
    if "crit" in header:
        raise TokenError("malformed", "critical header extensions are not supported")
    kind = _kind_of(header.get("typ"))
    try:
        return _verified(token, header, kind, keys, issuer, now=now, clock_trusted=clock_trusted)
    except TokenError as err:
        if err.kind is None:  # the failure names the kind the token claimed to be
            err.kind = kind
        raise


def _verified(
    token: str,
    header: dict[str, Any],
    kind: TokenKind,
    keys: KeySet,
    issuer: str,
    *,
    now: float,
    clock_trusted: bool,
) -> Token:
    """The token of *kind* once its key, signature and claims are checked."""
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenError("unknown_kid", "signed by a key this kiosk does not trust")
    try:
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=["EdDSA"])
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature", "signature does not match") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", type(exc).__name__) from exc
    claims = _strict_json(token.split(".")[1], "payload")
    del decoded  # PyJWT proved the signature; claims were parsed strictly above
    if claims.get("iss") != issuer:
        raise TokenError("bad_iss", "issued by someone else")
    match kind:
        case TokenKind.RECEIPT:
            return _receipt(claims, token)
        case TokenKind.PAYCODE:
            paycode = _paycode(claims, token)
            if clock_trusted and now > paycode.expires_at + EXPIRY_SKEW_S:
                raise TokenError(
                    "expired", "payment code has expired; ask for a new one", kind=kind
                )
            return paycode
        case _:
            assert_never(kind)


def typ_of(kind: TokenKind) -> str:
    """The JWS ``typ`` of a token of *kind*."""
    match kind:
        case TokenKind.RECEIPT:
            return RECEIPT_TYP
        case TokenKind.PAYCODE:
            return PAYCODE_TYP
        case _:
            assert_never(kind)


def _kind_of(typ: object) -> TokenKind:
    """The token kind named by a JWS ``typ``; any other typ is ``bad_typ``."""
    for kind in TokenKind:
        if typ == typ_of(kind):
            return kind
    raise TokenError("bad_typ", "not a SmartumPay receipt or payment code")


def _receipt(c: dict[str, Any], token: str) -> Receipt:
    _require(c, "jti", str, TX_SHAPE)
    _require(c, "ven", str, VENUE_SHAPE)
    _require(c, "vnm", str)
    _require(c, "vad", str)
    _require(c, "amt", int)
    _require_time(c, "iat")
    if c["amt"] <= 0 or c["amt"] > 10_000_000:
        raise TokenError("bad_claims", "amount out of range")
    if c.get("cur") != "EUR":
        raise TokenError("bad_claims", "currency must be EUR")
    _require_benefit(c)
    return Receipt(
        tx=c["jti"],
        venue=c["ven"],
        venue_name=c["vnm"][:200],
        venue_address=c["vad"][:200],
        amount_cents=c["amt"],
        currency="EUR",
        benefit=c["ben"],
        paid_at=c["iat"],
        issuer=c["iss"],
        token=token,
    )


def _paycode(c: dict[str, Any], token: str) -> Paycode:
    _require(c, "jti", str, PAYCODE_ID_SHAPE)
    _require(c, "code", str, CODE_SHAPE)
    _require_time(c, "iat")
    _require_time(c, "exp")
    _require_benefit(c)
    if c["exp"] <= c["iat"]:
        raise TokenError("bad_claims", "expiry before issue time")
    return Paycode(
        jti=c["jti"],
        code=c["code"],
        benefit=c["ben"],
        issued_at=c["iat"],
        expires_at=c["exp"],
        issuer=c["iss"],
        token=token,
    )


def _require(
    c: dict[str, Any], name: str, kind: type, shape: re.Pattern[str] | None = None
) -> None:
    value = c.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TokenError("bad_claims", f"claim {name!r} missing or of the wrong type")
    if shape is not None and not shape.fullmatch(str(value)):
        raise TokenError("bad_claims", f"claim {name!r} has the wrong form")


def _require_time(c: dict[str, Any], name: str) -> None:
    _require(c, name, int)
    if not 0 <= c[name] < _TIME_LIMIT:
        raise TokenError("bad_claims", f"claim {name!r} is not a plausible time")


def _require_benefit(c: dict[str, Any]) -> None:
    # isinstance first: a list or object claim is unhashable and must not reach the set lookup
    if not isinstance(c.get("ben"), str) or c["ben"] not in BENEFITS:
        raise TokenError("bad_claims", "unknown benefit")


def _strict_json(segment: str, what: str) -> dict[str, Any]:
    """Decode one base64url JSON segment, refusing duplicate keys and non-objects."""
    try:
        raw = _b64decode(segment)
        value = strict_json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise TokenError("malformed", f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed", f"{what} is not a JSON object")
    return value


def _b64decode(segment: str) -> bytes:
    if "=" in segment:
        raise ValueError("padding is not allowed")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def trusted(items: Iterable[tuple[str, Ed25519PublicKey]]) -> KeySet:
    """A KeySet from (kid, key) pairs."""
    return KeySet(dict(items))
