"""Issuing tokens as the backend does: receipt and paycode JWS (reference backend,
tests, demo). The kiosk itself only verifies (:mod:`kiosk.tokens`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.token_shape import PAYCODE_TYP, RECEIPT_TYP

__all__ = ["sign_paycode", "sign_receipt"]


def _sign(claims: Mapping[str, Any], typ: str, key: Ed25519PrivateKey, kid: str) -> str:
    payload = json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=True).encode()
    return jwt.PyJWS().encode(
        payload, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ}, sort_headers=False
    )


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
    """A receipt JWS as the backend issues it."""
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
    ttl_s: int = 300,
    benefit: str = "massage",
) -> str:
    """A paycode JWS as the backend issues it."""
    claims = {
        "iss": issuer,
        "jti": jti,
        "ben": benefit,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "code": code,
    }
    return _sign(claims, PAYCODE_TYP, key, kid)
