"""Token rules from the contract (section 1), with tokens built by hand in this file.

Each token is assembled here from the contract's claim table with
``cryptography`` alone (no signing code of the kiosk or of the backend), then
given to both verifiers: the kiosk's ``kiosk.tokens`` and the backend's
``refbackend.tokens``. Both must accept the valid ones and refuse the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import tokens as kiosk_tokens
from kiosk.errors import TokenError
from refbackend import tokens as backend_tokens
from refbackend.errors import TokenRefused

ISSUER = "urn:test:issuer"
KID = "test-key-1"
KEY = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()
IAT = 1_795_000_000  # 2026-11-18


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def jws(
    header: dict[str, Any] | str, payload: dict[str, Any] | str, key: Ed25519PrivateKey = KEY
) -> str:
    """header.payload.signature; a str header/payload is taken as the encoded segment."""
    head = header if isinstance(header, str) else segment(header)
    body = payload if isinstance(payload, str) else segment(payload)
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64(key.sign(signing_input))}"


def receipt_header(**extra: Any) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": KID, "typ": "smartum-receipt+jwt", **extra}


def paycode_header(**extra: Any) -> dict[str, Any]:
    return {"alg": "EdDSA", "kid": KID, "typ": "smartum-paycode+jwt", **extra}


def receipt_claims(**change: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "jti": "tx_R60D21hL60bj5N1v",
        "ven": "ven_demo0000000000",
        "vnm": "Hierontastudio Demo",
        "vad": "Esimerkkikatu 1, 00100 Helsinki",
        "amt": 6500,
        "cur": "EUR",
        "ben": "massage",
        "iat": IAT,
    }
    claims.update(change)
    return {k: v for k, v in claims.items() if v is not DROP}


def paycode_claims(**change: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "jti": "pc_a1B2c3D4e5F6g7H8",
        "ben": "massage",
        "iat": IAT,
        "exp": IAT + 300,
        "code": "123456789012",
    }
    claims.update(change)
    return {k: v for k, v in claims.items() if v is not DROP}


DROP = object()


def kiosk_verify(token: str) -> Any:
    keys = kiosk_tokens.KeySet({KID: KEY.public_key()})
    return kiosk_tokens.verify(token, keys, ISSUER, now=IAT + 10, clock_trusted=True)


def backend_verify(token: str) -> Any:
    keys = backend_tokens.TrustedKeys({KID: KEY.public_key()})
    return backend_tokens.verify(token, keys, ISSUER)


# --- accepted by both --------------------------------------------------------------------


def test_a_receipt_with_the_claims_of_the_table_is_accepted_by_both():
    token = jws(receipt_header(), receipt_claims())
    seen = kiosk_verify(token)
    proved = backend_verify(token)
    assert isinstance(seen, kiosk_tokens.Receipt)
    assert (seen.tx, seen.venue, seen.amount_cents, seen.benefit, seen.paid_at) == (
        "tx_R60D21hL60bj5N1v", "ven_demo0000000000", 6500, "massage", IAT,
    )  # fmt: skip
    assert isinstance(proved, backend_tokens.IssuedReceipt)
    assert (proved.tx, proved.venue, proved.amount_cents, proved.benefit, proved.paid_at) == (
        "tx_R60D21hL60bj5N1v", "ven_demo0000000000", 6500, "massage", IAT,
    )  # fmt: skip


def test_a_paycode_with_the_claims_of_the_table_is_accepted_by_both():
    token = jws(paycode_header(), paycode_claims(ben="exercise"))
    seen = kiosk_verify(token)
    proved = backend_verify(token)
    assert isinstance(seen, kiosk_tokens.Paycode)
    assert (seen.jti, seen.code, seen.benefit, seen.expires_at) == (
        "pc_a1B2c3D4e5F6g7H8", "123456789012", "exercise", IAT + 300,
    )  # fmt: skip
    assert isinstance(proved, backend_tokens.IssuedPaycode)
    assert (proved.jti, proved.code, proved.benefit, proved.expires_at) == (
        "pc_a1B2c3D4e5F6g7H8", "123456789012", "exercise", IAT + 300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        pytest.param(
            {"typ": "smartum-receipt+jwt", "kid": KID, "alg": "EdDSA"},
            receipt_claims(),
            id="header-members-in-another-order",
        ),
        pytest.param(
            receipt_header(jku="https://attacker.example/jwks.json", x5u="https://x.example/c"),
            receipt_claims(),
            id="jku-x5u-ignored",
        ),
        pytest.param(
            receipt_header(
                jwk={"kty": "OKP", "crv": "Ed25519", "x": b64(b"\x00" * 32), "kid": "other"}
            ),
            receipt_claims(),
            id="embedded-jwk-ignored",
        ),
        pytest.param(receipt_header(), receipt_claims(amt=1, ben="exercise"), id="one-cent"),
        pytest.param(receipt_header(), receipt_claims(iat=0), id="receipts-never-expire"),
    ],
)
def test_valid_variants_are_accepted_by_both(header, claims):
    token = jws(header, claims)
    assert kiosk_verify(token).tx == backend_verify(token).tx == claims["jti"]


def test_a_token_of_2048_bytes_is_accepted_by_both_and_one_over_is_refused():
    sized = {}
    for pad in range(1200, 1600):
        token = jws(receipt_header(), receipt_claims(vad="x" * pad))
        sized.setdefault(len(token), token)
    at_limit = max(n for n in sized if n <= 2048)
    over = min(n for n in sized if n > 2048)
    assert at_limit >= 2045
    assert kiosk_verify(sized[at_limit]).tx == backend_verify(sized[at_limit]).tx
    both_refuse(sized[over], "too_long")


# --- refused by both ---------------------------------------------------------------------


def both_refuse(token: str, reason: str | None = None) -> None:
    with pytest.raises(TokenError) as kiosk_err:
        kiosk_verify(token)
    with pytest.raises(TokenRefused) as backend_err:
        backend_verify(token)
    if reason is not None:
        assert (kiosk_err.value.reason, backend_err.value.reason) == (reason, reason)


def _hs256(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An HMAC token keyed with the public key bytes: the classic algorithm confusion."""
    secret = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


GOOD = jws(receipt_header(), receipt_claims())
HEAD, BODY, SIG = GOOD.split(".")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(f"{segment({'alg': 'none', 'typ': 'smartum-receipt+jwt'})}.{BODY}.",
                     "bad_alg", id="alg-none"),
        pytest.param(_hs256({"alg": "HS256", "kid": KID, "typ": "smartum-receipt+jwt"},
                            receipt_claims()), "bad_alg", id="alg-hs256-with-public-key"),
        pytest.param(jws({"alg": "RS256", "kid": KID, "typ": "smartum-receipt+jwt"},
                         receipt_claims()), "bad_alg", id="alg-rs256"),
        pytest.param(jws({"alg": "eddsa", "kid": KID, "typ": "smartum-receipt+jwt"},
                         receipt_claims()), "bad_alg", id="alg-not-exactly-EdDSA"),
        pytest.param(jws(receipt_header(typ="JWT"), receipt_claims()), "bad_typ", id="typ-jwt"),
        pytest.param(jws({"alg": "EdDSA", "kid": KID}, receipt_claims()), "bad_typ",
                     id="typ-missing"),
        pytest.param(jws(receipt_header(), receipt_claims(iss="urn:someone:else")), "bad_iss",
                     id="other-issuer"),
        pytest.param(jws(receipt_header(kid="unknown"), receipt_claims(), STRANGER),
                     "unknown_kid", id="unknown-kid"),
        pytest.param(jws(receipt_header(kid="unknown", jku="https://attacker.example/k"),
                         receipt_claims(), STRANGER), "unknown_kid", id="jku-never-fetched"),
        pytest.param(jws(receipt_header(), receipt_claims(), STRANGER), "bad_signature",
                     id="trusted-kid-wrong-key"),
        pytest.param(f"{HEAD}.{segment(receipt_claims(amt=650000))}.{SIG}", "bad_signature",
                     id="payload-changed"),
        pytest.param(jws(receipt_header(crit=["exp"], exp=IAT), receipt_claims()), "malformed",
                     id="crit-header"),
        pytest.param(GOOD + "ä", "not_ascii", id="not-ascii"),
        pytest.param(f"{HEAD}=.{BODY}.{SIG}", "malformed", id="padding"),
        pytest.param(f"{HEAD}.{BODY}", "malformed", id="two-parts"),
    ],
)  # fmt: skip
def test_header_and_framing_rules_refused_by_both(token, reason):
    both_refuse(token, reason)


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        pytest.param(receipt_header(), receipt_claims(amt=0), id="amt-zero"),
        pytest.param(receipt_header(), receipt_claims(amt=-100), id="amt-negative"),
        pytest.param(receipt_header(), receipt_claims(amt="6500"), id="amt-string"),
        pytest.param(receipt_header(), receipt_claims(amt=65.0), id="amt-float"),
        pytest.param(receipt_header(), receipt_claims(amt=True), id="amt-bool"),
        pytest.param(receipt_header(), receipt_claims(cur="USD"), id="cur-usd"),
        pytest.param(receipt_header(), receipt_claims(ben="hotstone"), id="ben-unknown"),
        pytest.param(receipt_header(), receipt_claims(jti="tx_short"), id="jti-shape"),
        pytest.param(receipt_header(), receipt_claims(jti="pc_a1B2c3D4e5F6g7H8"),
                     id="receipt-with-paycode-id"),
        pytest.param(receipt_header(), receipt_claims(ven=DROP), id="ven-missing"),
        pytest.param(receipt_header(), receipt_claims(iat="2026-11-24"), id="iat-text"),
        pytest.param(paycode_header(), paycode_claims(code="12345678901"), id="code-11-digits"),
        pytest.param(paycode_header(), paycode_claims(code=123456789012), id="code-number"),
        pytest.param(paycode_header(), paycode_claims(exp=DROP), id="exp-missing"),
        pytest.param(paycode_header(), paycode_claims(exp=IAT), id="exp-not-after-iat"),
        pytest.param(paycode_header(), paycode_claims(jti="tx_R60D21hL60bj5N1v"),
                     id="paycode-with-tx-id"),
        pytest.param(paycode_header(), receipt_claims(), id="receipt-claims-as-paycode"),
    ],
)  # fmt: skip
def test_claims_outside_the_table_are_refused_by_both(header, claims):
    both_refuse(jws(header, claims), "bad_claims")


def test_duplicate_members_are_refused_by_both():
    text = json.dumps(receipt_claims(), separators=(",", ":"))
    duplicated = text[:-1] + ',"amt":1}'  # "amt" twice: which one would count?
    both_refuse(jws(receipt_header(), b64(duplicated.encode())), "malformed")
