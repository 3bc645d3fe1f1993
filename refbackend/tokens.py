"""Issuer-side tokens: sign and verify receipts and paycodes (backend contract, section 1).

The one issuer-side signer (:func:`sign_receipt`, :func:`sign_paycode`,
:func:`kid_for`): the reference backend issues tokens with it (``/dev``
endpoints, so also ``kiosk mint`` and ``kiosk demo``), and the tests sign with
it. The firmware only verifies (``kiosk.tokens``) and imports nothing from here.
Verification is the backend's own implementation of the token rules,
independent of the firmware's, so that each is tested against the other and
against tokens built by hand from the contract:

- compact JWS, Ed25519, header ``alg`` exactly ``EdDSA`` (anything else is
  refused before a key is chosen); ``kid`` only selects among trusted keys;
  ``jku``/``jwk``/``x5u`` are ignored, never fetched; any ``crit`` is refused;
- ``typ`` is ``smartum-receipt+jwt`` or ``smartum-paycode+jwt`` and ``iss``
  the configured issuer;
- more than 2048 bytes or non-ASCII text is malformed;
- the claims of each type are those of the contract's table. Paycode expiry is
  not judged here: the backend's ledger decides it from its own records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from refbackend.errors import TokenRefused
from refbackend.vocabulary import TokenType

__all__ = [
    "BENEFITS",
    "MAX_TOKEN_BYTES",
    "PAYCODE_TYP",
    "RECEIPT_TYP",
    "IssuedPaycode",
    "IssuedReceipt",
    "TrustedKeys",
    "kid_for",
    "sign_paycode",
    "sign_receipt",
    "verify",
]

RECEIPT_TYP = TokenType.RECEIPT.value
PAYCODE_TYP = TokenType.PAYCODE.value
MAX_TOKEN_BYTES = 2048
PAYCODE_TTL_S = 300
BENEFITS = frozenset({"massage", "exercise"})
MAX_AMOUNT = 10_000_000
_LATEST_TIME = 4_102_444_800  # 2100-01-01: later (or negative) times are nonsense

_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_TX = re.compile(r"tx_[0-9A-Za-z]{16}")
_PC = re.compile(r"pc_[0-9A-Za-z]{16}")
_VEN = re.compile(r"ven_[0-9A-Za-z]{1,64}")
_DIGITS12 = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class IssuedReceipt:
    """A receipt whose signature and claims this backend accepts."""

    tx: str
    venue: str
    venue_name: str
    amount_cents: int
    benefit: str
    paid_at: int


@dataclass(frozen=True)
class IssuedPaycode:
    """A paycode whose signature and claims this backend accepts."""

    jti: str
    code: str
    benefit: str
    issued_at: int
    expires_at: int


class TrustedKeys:
    """The Ed25519 public keys this backend verifies with, by ``kid``."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def get(self, kid: object) -> Ed25519PublicKey | None:
        return self._keys.get(kid) if isinstance(kid, str) else None

    def to_jwks(self) -> dict[str, Any]:
        """The set as ``/.well-known/jwks.json`` serves it."""
        return {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": _b64(_raw(key)), "use": "sig"}
                for kid, key in self._keys.items()
            ]
        }


def kid_for(key: Ed25519PublicKey) -> str:
    """Key id: the first 16 characters of the RFC 7638 thumbprint of the public key."""
    members = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64(_raw(key))}, separators=(",", ":")
    )
    return _b64(hashlib.sha256(members.encode()).digest())[:16]


# --- signing ----------------------------------------------------------------------------


def sign_receipt(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    issuer: str,
    tx: str,
    venue: str,
    venue_name: str,
    venue_address: str,
    amount_cents: int,
    paid_at: int,
    benefit: str = "massage",
) -> str:
    """The receipt of a payment, as a compact JWS."""
    claims = {
        "iss": issuer,
        "jti": tx,
        "ven": venue,
        "vnm": venue_name,
        "vad": venue_address,
        "amt": amount_cents,
        "cur": "EUR",
        "ben": benefit,
        "iat": paid_at,
    }
    return _sign(claims, RECEIPT_TYP, key, kid)


def sign_paycode(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    issuer: str,
    jti: str,
    code: str,
    issued_at: int,
    ttl_s: int = PAYCODE_TTL_S,
    benefit: str = "massage",
) -> str:
    """A one-time payment code, as a compact JWS."""
    claims = {
        "iss": issuer,
        "jti": jti,
        "ben": benefit,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "code": code,
    }
    return _sign(claims, PAYCODE_TYP, key, kid)


def _sign(claims: dict[str, Any], typ: str, key: Ed25519PrivateKey, kid: str) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})


# --- verification -----------------------------------------------------------------------


def verify(token: str, keys: TrustedKeys, issuer: str) -> IssuedReceipt | IssuedPaycode:
    """The receipt or paycode *token* proves. Raises TokenRefused with the reason word."""
    if not token.isascii():
        raise TokenRefused("not_ascii", "the token has characters outside ASCII")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRefused("too_long", f"the token is over {MAX_TOKEN_BYTES} bytes")
    if not _COMPACT.fullmatch(token):
        raise TokenRefused("malformed", "not a compact JWS of three base64url parts")
    header_part, payload_part, _ = token.split(".")
    header = _json_object(header_part, "header")
    if header.get("alg") != "EdDSA":
        raise TokenRefused("bad_alg", "only EdDSA signatures are accepted")
    if "crit" in header:
        raise TokenRefused("malformed", "critical header parameters are not understood")
    typ = _token_type(header.get("typ"))
    key = keys.get(header.get("kid"))
    if key is None:
        raise TokenRefused("unknown_kid", "not signed by a key of this backend")
    try:
        jwt.api_jws.PyJWS(algorithms=["EdDSA"]).decode_complete(
            token, key=key, algorithms=["EdDSA"]
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenRefused("bad_signature", "the signature does not match") from exc
    except jwt.PyJWTError as exc:
        raise TokenRefused("malformed", type(exc).__name__) from exc
    claims = _json_object(payload_part, "payload")
    if claims.get("iss") != issuer:
        raise TokenRefused("bad_iss", "issued by someone else")
    match typ:
        case TokenType.RECEIPT:
            return _receipt(claims)
        case TokenType.PAYCODE:
            return _paycode(claims)
        case _:
            assert_never(typ)


def _token_type(typ: object) -> TokenType:
    if isinstance(typ, str):
        try:
            return TokenType(typ)
        except ValueError:
            pass
    raise TokenRefused("bad_typ", "neither a receipt nor a payment code")


def _receipt(c: dict[str, Any]) -> IssuedReceipt:
    tx = _text(c, "jti", _TX)
    venue = _text(c, "ven", _VEN)
    venue_name = _text(c, "vnm")
    _text(c, "vad")
    amount = _integer(c, "amt", 1, MAX_AMOUNT)
    if c.get("cur") != "EUR":
        raise TokenRefused("bad_claims", "cur must be EUR")
    return IssuedReceipt(tx, venue, venue_name[:200], amount, _benefit(c), _time(c, "iat"))


def _paycode(c: dict[str, Any]) -> IssuedPaycode:
    jti = _text(c, "jti", _PC)
    code = _text(c, "code", _DIGITS12)
    issued, expires = _time(c, "iat"), _time(c, "exp")
    if expires <= issued:
        raise TokenRefused("bad_claims", "exp is not after iat")
    return IssuedPaycode(jti, code, _benefit(c), issued, expires)


def _text(c: dict[str, Any], name: str, shape: re.Pattern[str] | None = None) -> str:
    value = c.get(name)
    if not isinstance(value, str) or not value or (shape and not shape.fullmatch(value)):
        raise TokenRefused("bad_claims", f"claim {name!r} is missing or malformed")
    return value


def _integer(c: dict[str, Any], name: str, low: int, high: int) -> int:
    value = c.get(name)
    if type(value) is not int or not low <= value <= high:
        raise TokenRefused("bad_claims", f"claim {name!r} must be an integer in {low}..{high}")
    return value


def _time(c: dict[str, Any], name: str) -> int:
    return _integer(c, name, 0, _LATEST_TIME - 1)


def _benefit(c: dict[str, Any]) -> str:
    value = c.get("ben")
    if not isinstance(value, str) or value not in BENEFITS:
        raise TokenRefused("bad_claims", f"claim 'ben' must be one of {sorted(BENEFITS)}")
    return value


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw, object_pairs_hook=_unique, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise TokenRefused("malformed", f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenRefused("malformed", f"the {what} is not a JSON object")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a member name repeats")
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
