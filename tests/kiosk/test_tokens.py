"""Token rules of the backend contract, section 1: each attack is refused for its reason."""

from __future__ import annotations

import base64
import importlib.util
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kiosk import tokens
from kiosk.errors import TokenError
from kiosk.journal import Journal
from kiosk.tokens import BareCode, KeySet, Paycode, Receipt, Unrecognised, classify, verify
from kiosk.vocabulary import TokenKind
from refbackend import tokens as signer

ISS = "https://reference.kiosk.invalid"
KEY = Ed25519PrivateKey.generate()
KID = signer.kid_for(KEY.public_key())
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
    return signer.sign_receipt(KEY, KID, **fields)  # type: ignore[arg-type]


def paycode(issued_at: int = NOW, ttl_s: int = 300) -> str:
    return signer.sign_paycode(
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
    forged = signer.sign_receipt(
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


def test_a_failure_after_the_typ_names_the_kind_the_token_claimed() -> None:
    head, payload, _sig = paycode().split(".")
    forged = ".".join((head, payload, b64(b"y" * 64)))
    result = classify(forged, KEYS, ISS, now=NOW, clock_trusted=True)
    assert result == Unrecognised("bad_signature", "signature does not match", TokenKind.PAYCODE)
    untrusted = classify(receipt(), KeySet(), ISS, now=NOW, clock_trusted=True)
    assert isinstance(untrusted, Unrecognised) and untrusted.kind is TokenKind.RECEIPT
    bad_typ = raw_token({"alg": "EdDSA", "typ": "voucher+jwt", "kid": KID}, {"iss": ISS})
    result = classify(bad_typ, KEYS, ISS, now=NOW, clock_trusted=True)
    assert isinstance(result, Unrecognised) and (result.reason, result.kind) == ("bad_typ", None)


def test_unknown_kid() -> None:
    other = Ed25519PrivateKey.generate()
    forged = signer.sign_receipt(
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


# --- payload bombs, nested encodings, claims the fuzzing found ----------------------------------


def signed_payload(payload: bytes, typ: str = tokens.RECEIPT_TYP, key: object = KEY) -> str:
    """A token whose payload bytes the trusted key really signed: it reaches the claim parser."""
    head = b64(json.dumps({"alg": "EdDSA", "kid": KID, "typ": typ}).encode())
    body = b64(payload)
    return f"{head}.{body}.{b64(key.sign(f'{head}.{body}'.encode()))}"  # type: ignore[attr-defined]


def receipt_claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
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
    claims.update(overrides)
    return claims


def claims_with(raw_amt: bytes) -> bytes:
    return json.dumps(receipt_claims(amt=0)).encode().replace(b'"amt": 0', b'"amt": ' + raw_amt)


@pytest.mark.parametrize(
    ("name", "payload", "why"),
    [
        ("deep array", b"[" * 1000, "malformed"),
        ("deep object", b'{"a":' * 150 + b"1" + b"}" * 150, "bad_iss"),
        ("1200-digit amount", claims_with(b"9" * 1200), "bad_claims"),
        ("1e999 amount", claims_with(b"1e999"), "bad_claims"),
        ("-1e999 amount", claims_with(b"-1e999"), "bad_claims"),
        ("Infinity literal", claims_with(b"Infinity"), "malformed"),
        ("NaN literal", claims_with(b"NaN"), "malformed"),
        ("float amount", claims_with(b"100.0"), "bad_claims"),
        ("120 extra keys", json.dumps({f"k{i}": 0 for i in range(120)}).encode(), "bad_iss"),
        ("duplicate amount", claims_with(b'1, "amt": 999999'), "malformed"),
        ("top-level array", b"[1, 2]", "malformed"),
        ("not UTF-8", b'{"iss": "\xff"}', "malformed"),
        ("over 2048 bytes", json.dumps(receipt_claims(vnm="x" * 1500)).encode(), "too_long"),
    ],
)
def test_json_bombs_in_a_signed_payload(name: str, payload: bytes, why: str) -> None:
    token = signed_payload(payload)
    started = time.perf_counter()
    assert reason(token) == why, name
    assert time.perf_counter() - started < 0.05
    # The same bomb without the trusted signature never gets as far as the claims.
    head, body, _ = token.split(".")
    unsigned = f"{head}.{body}.{b64(bytes(64))}"
    assert reason(unsigned) in {"bad_signature", "too_long"}


@pytest.mark.parametrize(
    ("ben", "iat"),
    [([], NOW), ({"a": 1}, NOW), ("massage", 10**20), ("massage", -1), ("massage", 2**63)],
)
def test_claims_of_the_wrong_shape_are_bad_claims_not_a_crash(ben: object, iat: int) -> None:
    # A list benefit once raised TypeError (unhashable) out of classify; a time past year
    # 9999 once passed verification and broke the screen's date formatting.
    assert reason(signed_payload(json.dumps(receipt_claims(ben=ben, iat=iat)).encode())) == (
        "bad_claims"
    )
    paycode_claims = {
        "iss": ISS,
        "jti": "pc_0123456789abcdef",
        "ben": ben,
        "iat": iat,
        "exp": iat + 300,
        "code": "123456789012",
    }
    token = signed_payload(json.dumps(paycode_claims).encode(), tokens.PAYCODE_TYP)
    assert reason(token, clock_trusted=False) == "bad_claims"


def test_nested_base64_is_never_unwrapped() -> None:
    token = receipt()
    head, body, sig = token.split(".")
    whole_std = base64.b64encode(token.encode()).decode()
    whole_url = b64(token.encode())
    assert reason(whole_std) == "not_smartum"
    assert reason(whole_url) == "not_smartum"
    assert reason(b64(whole_std.encode())) == "not_smartum"
    assert reason(f"{b64(head.encode())}.{body}.{sig}") == "malformed"
    assert reason(f"{head}.{b64(body.encode())}.{sig}") == "bad_signature"
    assert reason(f"{head}.{body}.{b64(sig.encode())}") == "bad_signature"
    # A claim holding a base64-encoded receipt is a string of the wrong form, never unwrapped.
    inner = json.dumps(receipt_claims(jti=b64(token.encode())[:40])).encode()
    assert reason(signed_payload(inner)) == "bad_claims"


def test_paycode_with_a_long_expiry_needs_the_issuers_signature() -> None:
    genuine = paycode(issued_at=NOW - 1000)  # expired
    head, body, sig = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["exp"] = NOW + 10 * 365 * 86400
    longer = b64(json.dumps(claims).encode())
    assert reason(genuine) == "expired"
    assert reason(f"{head}.{longer}.{sig}") == "bad_signature"  # old signature kept
    attacker = Ed25519PrivateKey.generate()
    resigned = signer.sign_paycode(
        attacker,
        KID,  # claims to be the trusted key
        issuer=ISS,
        jti=claims["jti"],
        code=claims["code"],
        issued_at=claims["iat"],
        ttl_s=claims["exp"] - claims["iat"],
    )
    assert reason(resigned) == "bad_signature"
    own_kid = signer.sign_paycode(
        attacker,
        signer.kid_for(attacker.public_key()),
        issuer=ISS,
        jti=claims["jti"],
        code=claims["code"],
        issued_at=claims["iat"],
        ttl_s=claims["exp"] - claims["iat"],
    )
    assert reason(own_kid) == "unknown_kid"
    # Even the issuer's own key cannot make a time past 2100 acceptable.
    absurd = {**claims, "exp": 10**12}
    assert reason(signed_payload(json.dumps(absurd).encode(), tokens.PAYCODE_TYP)) == "bad_claims"


# --- the same attacks through a running counter -------------------------------------------------


def _flow_fixtures() -> Any:
    """The simulated counter of tests/kiosk/flows/conftest.py (make_sim), reused here."""
    path = Path(__file__).resolve().parent / "flows" / "conftest.py"
    spec = importlib.util.spec_from_file_location("kiosk_flow_fixtures_tokens", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_sim = _flow_fixtures().make_sim


def backend_check(backend: Any, venue: str, token: str) -> str:
    """Check *token* at the backend as a kiosk of *venue* would; the status word."""
    import requests

    from kiosk.backend.client import BackendClient
    from kiosk.config import Secret

    client_id, secret = backend.create_client(venue)
    with BackendClient(
        backend.url, client_id=client_id, client_secret=Secret(secret), session=requests.Session()
    ) as client:
        body = {
            "token": token,
            "venue": venue,
            "device": "counter-9",
            "scanned_at": "2026-11-26T10:00:00Z",
            "offline": False,
        }
        return str(client.check_receipt(str(uuid.uuid4()), body).status)


def test_receipt_for_another_venue_through_the_counter(make_sim: Any) -> None:
    sim = make_sim()
    other = sim.backend.create_venue("Toinen Studio", "Muualla 2")
    tx, token = sim.backend.mint_receipt(other["id"], 5000)
    keys, issuer = sim.counter.keys.keys, sim.cfg.backend.issuer
    genuine = classify(token, keys, issuer, now=time.time(), clock_trusted=True)
    assert isinstance(genuine, Receipt) and genuine.venue == other["id"]  # real, just not ours
    outcome = sim.scan(token)
    assert (outcome.word, outcome.tx, outcome.venue_name) == ("wrong_venue", tx, "Toinen Studio")
    # Rewriting the venue to ours breaks the signature, whether re-signed or not.
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["ven"] = sim.cfg.device.venue
    moved = f"{head}.{b64(json.dumps(claims).encode())}.{sig}"
    attacker = Ed25519PrivateKey.generate()
    resigned = signer.sign_receipt(
        attacker,
        sim.backend.kid,
        issuer=issuer,
        tx=tx,
        venue=sim.cfg.device.venue,
        venue_name="Hierontastudio Demo",
        venue_address="x",
        amount_cents=5000,
        paid_at=claims["iat"],
    )
    for forged in (moved, resigned):
        refused = sim.scan(forged)
        assert (refused.word, refused.reason) == ("invalid", "bad_signature")
    with Journal.open(sim.cfg.journal.path) as journal:
        assert journal.last_request_for("receipt", tx) is None  # nothing was sent
    # The receipt is still unused at the backend: its own studio can check it.
    assert backend_check(sim.backend, other["id"], token) == "checked"


def test_resigned_paycode_with_a_long_expiry_is_never_charged(make_sim: Any) -> None:
    sim = make_sim(buttons=False)
    minted = sim.backend.mint_paycode(50_000)
    head, body, sig = minted["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    attacker = Ed25519PrivateKey.generate()
    forged = [
        f"{head}.{b64(json.dumps({**claims, 'exp': claims['exp'] + 10**8}).encode())}.{sig}",
        signer.sign_paycode(
            attacker,
            sim.backend.kid,
            issuer=sim.cfg.backend.issuer,
            jti=claims["jti"],
            code=claims["code"],
            issued_at=claims["iat"],
            ttl_s=10**8,
        ),
    ]
    for text in forged:
        refused = sim.scan(text)
        assert (refused.word, refused.reason) == ("invalid", "bad_signature")
    with Journal.open(sim.cfg.journal.path) as journal:
        assert journal.open_requests() == []
        assert journal.conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
    # The genuine code was never touched: it still charges, once.
    charged = sim.scan(minted["token"])
    assert charged.word == "charged", charged
