"""Token rules of the backend contract, section 1: each attack is refused for its reason."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import tokens
from kiosk.errors import TokenError
from kiosk.tokens import BareCode, KeySet, Paycode, Receipt, Unrecognised, classify, verify

ISS = "https://reference.kiosk.invalid"
KEY = Ed25519PrivateKey.generate()
KID = tokens.kid_for(KEY.public_key())
KEYS = KeySet({KID: KEY.public_key()})
NOW = 1_790_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def receipt(**overrides: object) -> str:
    fields = dict(
        issuer=ISS,
        tx="tx_R60D21hL60bj5N1v",
        venue="ven_demo0000000000",
        venue_name="Hierontastudio Demo",
        venue_address="Esimerkkikatu 1",
        amount_cents=6500,
        paid_at=NOW - 3600,
    )
    fields.update(overrides)
    return tokens.sign_receipt(KEY, KID, **fields)  # type: ignore[arg-type]


def paycode(issued_at: int = NOW, ttl_s: int = 300) -> str:
    return tokens.sign_paycode(
        KEY,
        KID,
        issuer=ISS,
        jti="pc_0123456789abcdef",
        code="123456789012",
        issued_at=issued_at,
        ttl_s=ttl_s,
    )


def raw_token(header: dict[str, object], claims: dict[str, object], sig: bytes = b"x" * 64) -> str:
    return ".".join((b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(sig)))


def reason(text: str, clock_trusted: bool = True, now: int = NOW) -> str:
    result = classify(text, KEYS, ISS, now=now, clock_trusted=clock_trusted)
    assert isinstance(result, Unrecognised), result
    return result.reason


def test_valid_receipt() -> None:
    r = verify(receipt(), KEYS, ISS, now=NOW, clock_trusted=True)
    assert isinstance(r, Receipt)
    assert (r.tx, r.amount_cents, r.venue, r.currency) == (
        "tx_R60D21hL60bj5N1v",
        6500,
        "ven_demo0000000000",
        "EUR",
    )


def test_receipt_never_expires() -> None:
    old = receipt(paid_at=1_000_000)
    assert isinstance(classify(old, KEYS, ISS, now=NOW, clock_trusted=True), Receipt)


def test_valid_paycode_and_bare_code() -> None:
    p = classify(paycode(), KEYS, ISS, now=NOW, clock_trusted=True)
    assert isinstance(p, Paycode) and p.code == "123456789012"
    assert classify("123456789012", KEYS, ISS, now=NOW, clock_trusted=True) == BareCode(
        "123456789012"
    )
    assert classify("123456789012\r\n", KEYS, ISS, now=NOW, clock_trusted=True) == BareCode(
        "123456789012"
    )
    assert reason("12345678901") == "not_smartum"
    assert reason("１２３４５６７８９０１２") == "not_smartum"  # full-width digits


def test_expired_paycode_only_with_a_trusted_clock() -> None:
    token = paycode(issued_at=NOW - 1000)
    assert reason(token) == "expired"
    # No NTP sync yet: the kiosk does not judge time, the backend decides.
    assert isinstance(classify(token, KEYS, ISS, now=NOW, clock_trusted=False), Paycode)
    # Within the 60 s skew it is still valid.
    assert isinstance(
        classify(paycode(issued_at=NOW - 350), KEYS, ISS, now=NOW, clock_trusted=True), Paycode
    )


def test_tampered_payload_fails_signature() -> None:
    head, payload, sig = receipt().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["amt"] = 99999
    forged = ".".join((head, b64(json.dumps(claims).encode()), sig))
    assert reason(forged) == "bad_signature"


def test_signed_by_untrusted_key_with_trusted_kid() -> None:
    other = Ed25519PrivateKey.generate()
    forged = tokens.sign_receipt(
        other,
        KID,
        issuer=ISS,
        tx="tx_R60D21hL60bj5N1v",
        venue="ven_demo0000000000",
        venue_name="x",
        venue_address="y",
        amount_cents=100,
        paid_at=NOW,
    )
    assert reason(forged) == "bad_signature"


def test_unknown_kid() -> None:
    other = Ed25519PrivateKey.generate()
    forged = tokens.sign_receipt(
        other,
        "someone-else",
        issuer=ISS,
        tx="tx_R60D21hL60bj5N1v",
        venue="ven_demo0000000000",
        venue_name="x",
        venue_address="y",
        amount_cents=100,
        paid_at=NOW,
    )
    assert reason(forged) == "unknown_kid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "HS512", "RS256", "ES256"])
def test_other_algorithms_are_refused_before_any_key(alg: str) -> None:
    header = {"alg": alg, "kid": KID, "typ": tokens.RECEIPT_TYP}
    assert reason(raw_token(header, {"iss": ISS})) == "bad_alg"
    assert reason(raw_token(header, {"iss": ISS}, sig=b"")) == "bad_alg"


def test_hs256_with_public_key_bytes_as_secret() -> None:
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    forged = jwt.encode(
        {"iss": ISS, "jti": "tx_R60D21hL60bj5N1v"},
        public,
        algorithm="HS256",
        headers={"kid": KID, "typ": tokens.RECEIPT_TYP},
    )
    assert reason(forged) == "bad_alg"


@pytest.mark.parametrize("kid", ["../../etc/passwd", "http://evil/k", "' OR 1=1 --", "", 7])
def test_kid_injection_is_just_an_unknown_kid(kid: object) -> None:
    header = {"alg": "EdDSA", "kid": kid, "typ": tokens.RECEIPT_TYP}
    assert reason(raw_token(header, {"iss": ISS})) == "unknown_kid"


@pytest.mark.parametrize(
    "extra", [{"jku": "http://evil/jwks"}, {"jwk": {"kty": "OKP"}}, {"x5u": "http://evil/cert"}]
)
def test_key_location_headers_are_ignored_never_fetched(extra: dict[str, object]) -> None:
    other = Ed25519PrivateKey.generate()
    header = {"alg": "EdDSA", "kid": "attacker", "typ": tokens.RECEIPT_TYP, **extra}
    payload = b64(json.dumps({"iss": ISS}).encode())
    head = b64(json.dumps(header).encode())
    sig = b64(other.sign(f"{head}.{payload}".encode()))
    assert reason(f"{head}.{payload}.{sig}") == "unknown_kid"


def test_crit_header_is_malformed() -> None:
    header = {"alg": "EdDSA", "kid": KID, "typ": tokens.RECEIPT_TYP, "crit": ["exp"]}
    assert reason(raw_token(header, {"iss": ISS})) == "malformed"


def test_duplicate_json_keys_are_malformed() -> None:
    head = b64(
        b'{"alg":"none","alg":"EdDSA","kid":"%s","typ":"%s"}'
        % (KID.encode(), tokens.RECEIPT_TYP.encode())
    )
    token = f"{head}.{b64(b'{}')}.{b64(b'x' * 64)}"
    assert reason(token) == "malformed"


def test_wrong_typ_and_wrong_issuer() -> None:
    header = {"alg": "EdDSA", "kid": KID, "typ": "JWT"}
    assert reason(raw_token(header, {"iss": ISS})) == "bad_typ"
    assert reason(receipt(issuer="https://evil.example")) == "bad_iss"


def test_size_and_character_limits() -> None:
    big = receipt(venue_name="x" * 2000)
    assert len(big) > tokens.MAX_TOKEN_BYTES
    assert reason(big) == "too_long"
    token = receipt()
    assert reason(token[:10] + "ä" + token[11:]) == "not_ascii"
    with pytest.raises(TokenError) as info:
        verify("ä" * 3000, KEYS, ISS, now=NOW, clock_trusted=True)
    assert info.value.reason == "not_ascii"


@pytest.mark.parametrize(
    "claim,value",
    [
        ("amt", 0),
        ("amt", -5),
        ("amt", "6500"),
        ("amt", True),
        ("cur", "USD"),
        ("ben", "spa"),
        ("jti", "tx_short"),
        ("ven", "venue1"),
    ],
)
def test_bad_claims(claim: str, value: object) -> None:
    claims = {
        "iss": ISS,
        "jti": "tx_R60D21hL60bj5N1v",
        "ven": "ven_demo0000000000",
        "vnm": "n",
        "vad": "a",
        "amt": 100,
        "cur": "EUR",
        "ben": "massage",
        "iat": NOW,
    }
    claims[claim] = value
    token = jwt.api_jws.PyJWS().encode(
        json.dumps(claims).encode(),
        KEY,
        algorithm="EdDSA",
        headers={"kid": KID, "typ": tokens.RECEIPT_TYP},
    )
    assert reason(token) == "bad_claims"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "https://example.com/?a=b.c.d",
        "a.b",
        "eyJ.eyJ.",
        "....",
        "\x00\x01",
        "eyJhbGciOiJFZERTQSJ9.e30.!!",
    ],
)
def test_garbage_is_unrecognised_never_raises(text: str) -> None:
    assert isinstance(classify(text, KEYS, ISS, now=NOW, clock_trusted=True), Unrecognised)


def test_jwks_round_trip_and_bad_documents() -> None:
    doc = KEYS.to_jwks()
    assert doc["keys"][0]["kty"] == "OKP" and doc["keys"][0]["kid"] == KID
    assert KeySet.from_jwks(doc).kids() == [KID]
    for bad in (
        None,
        {},
        {"keys": "x"},
        {"keys": [1]},
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": "AAAA"}]},
    ):
        with pytest.raises(TokenError):
            KeySet.from_jwks(bad)
    # Keys of other types are ignored rather than trusted.
    assert len(KeySet.from_jwks({"keys": [{"kty": "RSA", "kid": "r", "n": "x"}]})) == 0
