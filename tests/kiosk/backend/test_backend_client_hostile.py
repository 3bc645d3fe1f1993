"""BackendClient against a server that answers nonsense: never an accept it did not get."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hostile_server import HostileServer, Received, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import tokens
from kiosk.backend import _wire
from kiosk.backend.bodies import encode
from kiosk.backend.client import BackendClient, CancelResult, CheckResult, Timeouts
from kiosk.config import Secret
from kiosk.errors import (
    BackendAuthError,
    BackendBusy,
    BackendError,
    BackendProtocolError,
    BackendUnreachable,
    ClientClosed,
    OutcomeUnknown,
)
from refbackend import tokens as signer

FAST = Timeouts(connect=0.5, read=0.5, total=1.0)
SECRET = "client-secret-value-123"
CHECK = "/v1/receipts/check"
CHARGE = "/v1/charges"
TX = "tx_R60D21hL60bj5N1v"
VENUE = "ven_demo0000000000"
RECEIPT = signer.sign_receipt(
    Ed25519PrivateKey.generate(), "k1", issuer="https://pay.test", tx=TX, venue=VENUE,
    venue_name="Hierontastudio Demo", venue_address="Esimerkkikatu 1", amount_cents=6500,
    paid_at=1_790_000_000,
)  # fmt: skip
CHECK_BODY = {
    "token": RECEIPT, "venue": VENUE, "device": "counter-1",
    "scanned_at": "2026-11-24T09:15:02Z", "offline": False,
}  # fmt: skip
CHECKED = {
    "status": "checked", "tx": TX, "amount_cents": 6500, "venue_name": "Hierontastudio Demo",
    "paid_at": "2026-11-24T09:14:00Z", "checked_at": "2026-11-24T09:15:02Z",
    "checked_by": "counter-1",
}  # fmt: skip
CHARGE_BODY = {
    "paycode": "123456789012", "venue": VENUE, "device": "counter-1",
    "service": "classic-60", "amount_cents": 6500,
}  # fmt: skip
CHARGED = {
    "status": "charged", "tx": TX, "amount_cents": 6500, "charged_at": "2026-11-24T09:15:02Z",
    "service": "classic-60",
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def make_client(url: str, session: requests.Session, timeouts: Timeouts = FAST) -> BackendClient:
    return BackendClient(
        url, client_id="kiosk-1", client_secret=Secret(SECRET), session=session, timeouts=timeouts
    )


@pytest.fixture
def client(server: HostileServer, session: requests.Session) -> Iterator[BackendClient]:
    with make_client(server.url, session) as c:
        yield c


def key() -> str:
    return str(uuid.uuid4())


def check(client: BackendClient) -> CheckResult:
    return client.check_receipt(key(), CHECK_BODY)


# --- what goes over the wire --------------------------------------------------------------


def test_sends_exact_headers_and_body_and_caches_the_token(client, server):
    server.on(CHECK, Reply(200, CHECKED))
    k = key()
    result = client.check_receipt(k, CHECK_BODY)
    assert result == CheckResult(
        "checked", 200, tx=TX, amount_cents=6500, venue_name="Hierontastudio Demo",
        paid_at=datetime(2026, 11, 24, 9, 14, tzinfo=UTC),
        checked_at=datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC), checked_by="counter-1",
    )  # fmt: skip
    (tok,) = server.requests_to("/oauth/token")
    assert tok.method == "POST"
    assert tok.headers["content-type"] == "application/x-www-form-urlencoded"
    assert tok.body == b"grant_type=client_credentials"
    basic = base64.b64encode(f"kiosk-1:{SECRET}".encode()).decode()
    assert tok.headers["authorization"] == f"Basic {basic}"
    (req,) = server.requests_to(CHECK)
    assert req.method == "POST"
    assert req.headers["authorization"] == "Bearer tok-1"
    assert req.headers["idempotency-key"] == k
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("smartum-kiosk/")
    assert req.json() == CHECK_BODY
    check(client)
    check(client)
    assert server.token_requests == 1  # cached


def test_same_body_is_sent_as_the_same_bytes(client, server):
    server.on(CHECK, Reply(200, CHECKED))
    k = key()
    client.check_receipt(k, CHECK_BODY)
    client.check_receipt(k, dict(reversed(CHECK_BODY.items())))
    first, second = server.requests_to(CHECK)
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == k


def test_jwks_is_fetched_without_credentials(client, server):
    server.on("/.well-known/jwks.json", Reply(200, {"keys": [good_jwk()]}))
    assert client.fetch_jwks()["keys"][0]["kid"] == "k1"
    (req,) = server.requests_to("/.well-known/jwks.json")
    assert "authorization" not in req.headers
    assert server.token_requests == 0


def good_jwk() -> dict[str, str]:
    return tokens.public_jwk("k1", Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    "doc",
    [{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "AAAA"}]}, {"keys": []},
     {"keys": "none"}, {"status": "invalid"}],
)  # fmt: skip
def test_bad_jwks_is_a_protocol_error(client, server, doc):
    server.on("/.well-known/jwks.json", Reply(200, doc))
    with pytest.raises(BackendProtocolError):
        client.fetch_jwks()


# --- malformed answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, json.dumps(CHECKED), content_type="text/html"),
        Reply(200, json.dumps(CHECKED), content_type=None),
        Reply(200, json.dumps(CHECKED)[:-10]),  # truncated JSON, honest length
        Reply(200, b"<html>captive portal</html>"),
        Reply(200, b""),
        Reply(200, json.dumps(CHECKED).encode("utf-16")),
        Reply(200, '{"status":"invalid","status":"checked","tx":"' + TX + '"}'),  # dup key
        Reply(200, json.dumps({**CHECKED, "amount_cents": float("nan")})),
        Reply(200, [CHECKED]),
        Reply(200, "[" * 100_000),  # nesting bomb within the cap
        Reply(200, {"status": "invalid", "message": "bad signature", "reason": "x"}),
        Reply(200, {**CHECKED, "status": "approved"}),
        Reply(200, {**CHECKED, "status": "CHECKED"}),
        Reply(200, {k: v for k, v in CHECKED.items() if k != "tx"}),
        Reply(200, {**CHECKED, "tx": "tx_other00000000000"}),
        Reply(200, {**CHECKED, "tx": "tx_AAAAAAAAAAAAAAAA"}),  # not the scanned receipt
        Reply(200, {**CHECKED, "amount_cents": 6500.0}),
        Reply(200, {**CHECKED, "amount_cents": 1}),  # not the scanned amount
        Reply(200, {**CHECKED, "amount_cents": True}),
        Reply(200, {**CHECKED, "checked_at": "yesterday"}),
        Reply(200, {**CHECKED, "checked_at": "2026-11-24T09:15:02"}),  # no zone
        Reply(201, CHECKED),
        Reply(204, b""),
        Reply(409, {**CHECKED}),  # accept word with a refusal code
        Reply(409, {"status": "already_checked", "tx": TX}),  # fields missing
        Reply(403, {"status": "forbidden"}),
        Reply(404, {"status": "not_found"}),
        Reply(400, {"status": "bad_request", "message": "missing field"}),
        Reply(413, b"too large", content_type="text/plain"),
        Reply(422, {"status": "idempotency_mismatch", "message": "different body"}),
        Reply(418, {"status": "teapot"}),
        Reply(200, CHECKED, headers={"Content-Encoding": "gzip"}),
        Reply(302, b"", headers={"Location": "http://[::1/x"}),
        Reply(200, CHECKED, headers={"Content-Length": "\u00b2"}, content_length=-1),
    ],
    ids=lambda r: f"{r.status}-{str(r.payload())[:40]}",
)
def test_answers_outside_the_contract_never_accept(client, server, reply, caplog):
    server.on(CHECK, reply)
    with caplog.at_level(logging.WARNING, "kiosk.backend"), pytest.raises(BackendProtocolError):
        check(client)
    assert any("outside the contract" in r.getMessage() for r in caplog.records)


def test_wrong_charge_answers_never_accept(client, server):
    cases: list[tuple[dict[str, Any], int]] = [
        (CHARGED, 200),  # accept word with the wrong code
        ({**CHARGED, "amount_cents": 7500}, 201),  # another amount than asked
        ({**CHARGED, "service": "hotstone-60"}, 201),
        ({**CHARGED, "charged_at": None}, 201),
        ({"status": "insufficient_funds"}, 402),  # balance missing
        ({"status": "paycode_used"}, 422),
    ]
    for doc, status in cases:
        server.on(CHARGE, Reply(status, doc))
        with pytest.raises(BackendProtocolError):
            client.charge(key(), CHARGE_BODY)


def test_idempotency_mismatch_is_logged_as_an_error(client, server, caplog):
    server.on(CHECK, Reply(422, {"status": "idempotency_mismatch", "message": "x"}))
    with caplog.at_level(logging.ERROR, "kiosk.backend"), pytest.raises(BackendProtocolError):
        check(client)
    assert any(r.levelno == logging.ERROR and "kiosk bug" in r.getMessage() for r in caplog.records)


def test_huge_declared_body_is_refused_without_reading_it(client, server):
    server.on(CHECK, Reply(200, b"{" * 1000, content_length=50_000_000))
    started = time.monotonic()
    with pytest.raises(BackendProtocolError, match="over the cap"):
        check(client)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("chunked", [True, False])
def test_huge_body_is_cut_at_the_cap(client, server, chunked):
    huge = b'{"status":"checked","pad":"' + b"x" * 2_000_000 + b'"}'
    # chunked, or no length at all (read until close): only the running count can stop it
    server.on(CHECK, Reply(200, huge, chunked=chunked, content_length=None if chunked else -1))
    with pytest.raises(BackendProtocolError, match="byte cap"):
        check(client)


# --- slow and broken transport --------------------------------------------------------------


def test_slow_loris_body_hits_the_total_deadline(server, session):
    server.on(CHECK, Reply(200, CHECKED, trickle=0.02))  # ~300 bytes: 6 s in all
    client = make_client(server.url, session, Timeouts(connect=0.5, read=0.3, total=0.4))
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="too slow"):
        check(client)
    assert time.monotonic() - started < 0.4 + 0.3 + 0.2


def test_slow_loris_headers_are_not_taken_as_an_answer(server, session):
    server.on(CHECK, Reply(200, CHECKED, trickle_head=0.004))  # ~100 header bytes: ~0.4 s
    client = make_client(server.url, session, Timeouts(connect=0.5, read=0.3, total=0.2))
    with pytest.raises(OutcomeUnknown, match="too slow"):
        check(client)


def test_read_timeout_is_outcome_unknown(server, session):
    server.on(CHECK, Reply(200, CHECKED, trickle_head=0.5))
    client = make_client(server.url, session, Timeouts(connect=0.5, read=0.2, total=2.0))
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        check(client)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    "reply",
    [
        Reply(close="before_body"),
        Reply(close="after_body"),
        Reply(close="after_body", reset=True),
        Reply(200, CHECKED, close="mid_body"),
        Reply(200, json.dumps(CHECKED)[:-10], content_length=len(json.dumps(CHECKED))),
    ],
    ids=["before-body", "after-body", "reset", "mid-body", "short-body"],
)
def test_dropped_connection_is_outcome_unknown(client, server, reply):
    server.on(CHECK, reply)
    with pytest.raises(OutcomeUnknown):
        check(client)
    assert server.requests_to(CHECK)  # it did reach the server


def test_refused_port_is_unreachable(session):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = make_client(f"http://127.0.0.1:{port}", session)
    started = time.monotonic()
    with pytest.raises(BackendUnreachable):
        check(client)
    assert time.monotonic() - started < 0.5


def test_unresolvable_host_is_unreachable(session):
    client = make_client("http://no-such-host.invalid", session)
    with pytest.raises(BackendUnreachable):
        check(client)


def test_redirect_to_another_host_is_not_followed(client, server):
    with HostileServer("127.0.0.2") as other:
        other.on(CHECK, Reply(200, CHECKED))
        for status in (301, 302, 307, 308):
            server.on(CHECK, Reply(status, b"", headers={"Location": other.url + CHECK}))
            with pytest.raises(BackendProtocolError, match="redirected"):
                check(client)
        assert other.received == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_outcome_unknown(client, server, status):
    server.on(
        CHECK, Reply(status, b"oops", content_type="text/plain", headers={"Retry-After": "7"})
    )
    with pytest.raises(OutcomeUnknown) as err:
        check(client)
    assert err.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("99999", 60.0), ("soon", None), (None, None), ("\u00b2", None)],
)
def test_rate_limit_is_backend_busy_with_retry_after(client, server, header, expected):
    headers = {"Retry-After": header} if header is not None else {}
    server.on(
        CHECK, Reply(429, {"status": "rate_limited", "message": "slow down"}, headers=headers)
    )
    with pytest.raises(BackendBusy) as err:  # processed nothing: not an unknown outcome
        check(client)
    assert not isinstance(err.value, OutcomeUnknown)
    assert err.value.retry_after == expected


def test_rate_limit_with_http_date(client, server):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    server.on(CHECK, Reply(429, b"", headers={"Retry-After": when}))
    with pytest.raises(BackendBusy) as err:
        check(client)
    assert err.value.retry_after is not None and 17 <= err.value.retry_after <= 20


def test_in_progress_is_outcome_unknown(client, server):
    server.on(CHECK, Reply(409, {"status": "in_progress", "message": "busy"},
                           headers={"Retry-After": "1"}))  # fmt: skip
    with pytest.raises(OutcomeUnknown) as err:
        check(client)
    assert err.value.retry_after == 1.0


# --- authentication -------------------------------------------------------------------------


def test_refused_token_is_refreshed_once_and_the_same_request_resent(client, server):
    expired = Reply(401, {"status": "invalid_token", "message": "expired"})
    server.on(CHECK, expired, Reply(200, CHECKED))
    k = key()
    assert client.check_receipt(k, CHECK_BODY).status == "checked"
    assert server.token_requests == 2
    first, second = server.requests_to(CHECK)
    assert first.headers["authorization"] == "Bearer tok-1"
    assert second.headers["authorization"] == "Bearer tok-2"
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == k
    assert first.body == second.body
    check(client)
    assert server.token_requests == 2  # the new token is kept


def test_token_refused_twice_is_an_auth_error(client, server):
    server.on(CHECK, Reply(401, {"status": "invalid_token", "message": "expired"}))
    with pytest.raises(BackendAuthError):
        check(client)
    assert server.token_requests == 2
    assert len(server.requests_to(CHECK)) == 2


def test_bad_client_credentials_say_what_to_check(client, server):
    server.on("/oauth/token", Reply(401, {"status": "invalid_client", "message": "no"}))
    with pytest.raises(BackendAuthError, match="client_id") as err:
        check(client)
    assert SECRET not in str(err.value)
    assert server.requests_to(CHECK) == []


@pytest.mark.parametrize(
    "reply",
    [Reply(500, b""), Reply(429, b""), Reply(close="after_body"),
     Reply(200, {"access_token": "t"}, trickle=0.1)],
)  # fmt: skip
def test_token_endpoint_failure_means_nothing_was_sent(server, session, reply):
    server.on("/oauth/token", reply)
    client = make_client(server.url, session, Timeouts(connect=0.5, read=0.3, total=0.3))
    # A 429 is a definite refusal to process (retry later); the others leave us unreachable.
    with pytest.raises(BackendBusy if reply.status == 429 else BackendUnreachable):
        check(client)
    assert server.requests_to(CHECK) == []


@pytest.mark.parametrize(
    "doc",
    [{"access_token": "", "token_type": "Bearer", "expires_in": 60},
     {"access_token": "t", "token_type": "mac", "expires_in": 60},
     {"access_token": "t", "token_type": "Bearer", "expires_in": "60"},
     {"access_token": "t\nX-Injected: 1", "token_type": "Bearer", "expires_in": 60}],
)  # fmt: skip
def test_malformed_token_answer_is_a_protocol_error(client, server, doc):
    server.on("/oauth/token", Reply(200, doc))
    with pytest.raises(BackendProtocolError):
        check(client)
    assert server.requests_to(CHECK) == []


def test_logs_hold_no_secret_and_no_token(server, session, caplog):
    bearer = "eyJhbGciOi.long-bearer-token-value.sig"
    server.on("/oauth/token", Reply(200, {"access_token": bearer, "token_type": "Bearer",
                                          "expires_in": 600}))  # fmt: skip
    server.on(CHECK, Reply(401, {"status": "invalid_token"}), Reply(200, CHECKED),
              Reply(500, b""), Reply(200, {"status": "weird"}))  # fmt: skip
    with caplog.at_level(logging.DEBUG), make_client(server.url, session) as client:
        for _ in range(3):
            with contextlib.suppress(BackendError):
                check(client)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TX in text  # tx ids are logged
    for secret in (SECRET, bearer, RECEIPT, RECEIPT[:60]):
        assert secret not in text


# --- lifecycle ------------------------------------------------------------------------------


def test_close_is_idempotent_and_use_after_close_raises(server, session):
    client = make_client(server.url, session)
    client.close()
    client.close()
    assert client.closed
    # a bug in the caller, not an outage: outside the BackendError tree, so it is
    # never recorded as "may have been delivered"
    with pytest.raises(ClientClosed, match="closed") as info:
        check(client)
    assert not isinstance(info.value, BackendError)
    with pytest.raises(ClientClosed):
        client.__enter__()
    assert server.received == []
    session.get(server.url + "/oauth/token", timeout=1)  # a given session stays the caller's


def test_journaled_text_is_sent_verbatim(client, server):
    server.on(CHECK, Reply(200, CHECKED))
    server.on(CHARGE, Reply(201, CHARGED))
    server.on(f"/v1/transactions/{TX}/cancel", Reply(200, {"status": "cancelled"}))
    assert client.check_receipt(key(), encode(CHECK_BODY)).status == "checked"
    assert client.charge(key(), encode(CHARGE_BODY)).status == "charged"
    assert client.cancel(TX, key(), encode({"reason": "x"})).status == "cancelled"
    sent = [r.body for r in server.received if r.path != "/oauth/token"]
    assert sent == [encode(b).encode() for b in (CHECK_BODY, CHARGE_BODY, {"reason": "x"})]
    with pytest.raises(ValueError):
        client.cancel("not-a-tx", key(), {"reason": "x"})
    with pytest.raises(ValueError):
        client.check_receipt(key(), "[1, 2]")  # journaled text is always an object
    for bad_key in ("short", "x" * 201, "key with\nnewline", "ключ-ключ-ключ"):
        with pytest.raises(ValueError):
            client.check_receipt(bad_key, CHECK_BODY)
    with pytest.raises(ValueError):
        client.check_receipt(key(), {**CHECK_BODY, "token": "x" * 20_000})


def test_unknown_cancel_is_a_value_and_other_404s_are_not(client, server):
    server.on(f"/v1/transactions/{TX}/cancel", Reply(404, {"status": "not_found"}))
    assert client.cancel(TX, key(), {"reason": "x"}).status == "not_found"
    other = {"status": "cancelled", "tx": "tx_AAAAAAAAAAAAAAAA"}
    server.on(f"/v1/transactions/{TX}/cancel", Reply(200, other))
    with pytest.raises(BackendProtocolError, match="another transaction"):
        client.cancel(TX, key(), {"reason": "x"})


def test_wrong_venue_on_get_is_an_auth_error(client, server):
    server.on(f"/v1/venues/{VENUE}", Reply(403, {"status": "wrong_venue", "message": "no"}))
    with pytest.raises(BackendAuthError, match=r"device\.venue"):
        client.get_venue(VENUE)


def test_history_sends_its_query_and_checks_items(client, server):
    item = {"tx": TX, "kind": "receipt", "amount_cents": 6500, "status": "checked",
            "at": "2026-11-24T09:15:02Z", "device": "counter-1", "offline": False,
            "conflict": True}  # fmt: skip
    path = f"/v1/venues/{VENUE}/transactions"
    server.on(path, Reply(200, {"items": [item], "next": "c2"}))
    since = datetime(2026, 11, 24, 11, 0, tzinfo=UTC) + timedelta(hours=2)
    page = client.history(VENUE, since=since, limit=2, cursor="c1")
    assert page.next == "c2" and page.items[0].conflict and page.items[0].tx == TX
    (req,) = server.requests_to(path)
    assert req.query == {"since": ["2026-11-24T13:00:00Z"], "limit": ["2"], "cursor": ["c1"]}
    server.on(path, Reply(200, {"items": [{**item, "kind": "refund"}], "next": None}))
    with pytest.raises(BackendProtocolError):
        client.history(VENUE)
    with pytest.raises(ValueError):
        client.history(VENUE, limit=501)


def test_callable_script_sees_the_request(client, server):
    def echo_tx(req: Received) -> Reply:
        return Reply(200, {**CHECKED, "checked_by": req.json()["device"]})

    server.on(CHECK, echo_tx)
    assert check(client).checked_by == "counter-1"


# --- TLS ------------------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the path of its certificate (the CA bundle)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test backend")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_path


def test_tls_is_verified_and_a_ca_bundle_can_be_given(tmp_path, session):
    ctx, cert = self_signed(tmp_path)
    with HostileServer(tls=ctx) as server:
        server.on(CHECK, Reply(200, CHECKED))
        untrusting = make_client(server.url, session)
        with pytest.raises(BackendUnreachable, match="TLS"):
            check(untrusting)
        assert server.received == []
        trusting = BackendClient(
            server.url, client_id="kiosk-1", client_secret=Secret(SECRET), session=session,
            timeouts=FAST, ca_bundle=str(cert),
        )  # fmt: skip
        assert check(trusting).status == "checked"


# --- any JSON at all ------------------------------------------------------------------------

_FIELDS = ["status", "tx", "amount_cents", "venue_name", "paid_at", "checked_at", "checked_by",
           "reason", "message", "charged_at", "service", "balance_cents", "items", "next", "id",
           "name", "address", "services", "access_token", "token_type", "expires_in"]  # fmt: skip
_WORDS = ["checked", "already_checked", "cancelled", "wrong_venue", "invalid", "charged",
          "insufficient_funds", "paycode_used", "paycode_expired", "not_eligible",
          "not_cancellable", "not_found", "in_progress"]  # fmt: skip
_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
    st.text(max_size=20), st.sampled_from([*_WORDS, TX, "2026-11-24T09:15:02Z", 6500]),
)  # fmt: skip
_json = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(_FIELDS), inner, max_size=4), max_leaves=8)  # fmt: skip
_docs = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), _json, max_size=9)
_codes = st.sampled_from([200, 201, 400, 402, 403, 404, 409, 410, 422, 500]) | st.integers(0, 999)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=_codes, doc=_docs, tx=st.sampled_from([TX, "tx_AAAAAAAAAAAAAAAA"]))
def test_decoders_accept_only_the_documented_success(status, doc, tx):
    if any(w == doc.get("status") for w in _WORDS) and "tx" not in doc:
        doc = {**doc, "tx": tx}
    for decode in (
        lambda: _wire.decode_check(status, doc, CHECK_BODY),
        lambda: _wire.decode_charge(status, doc, CHARGE_BODY),
        lambda: _wire.decode_cancel(status, doc, TX),
        lambda: _wire.decode_venue(doc, VENUE),
        lambda: _wire.decode_history(doc, VENUE),
        lambda: _wire.decode_token(doc),
    ):
        try:
            result = decode()
        except BackendProtocolError:
            continue
        accepted = getattr(result, "status", None)
        if accepted == "checked":
            assert (status, doc["status"], doc["tx"], doc["amount_cents"]) == (
                200, "checked", TX, 6500)  # fmt: skip
        elif accepted == "charged":
            assert (status, doc["status"], doc["amount_cents"], doc["service"]) == (
                201, "charged", 6500, "classic-60")  # fmt: skip
        elif accepted == "cancelled" and isinstance(result, CancelResult):
            assert (status, doc["status"], result.tx) == (200, "cancelled", TX)


# --- times no calendar can hold --------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T22:30:00Z",
        "0001-01-01T00:00:00+01:00",
        "2200-01-01T00:00:00Z",
    ],
)
def test_times_out_of_range_are_a_protocol_error_not_a_crash(client, server, when):
    # Such a time once escaped as OverflowError (not a backend error) and, shown in local
    # time, would have broken the result screen.
    already = {"status": "already_checked", "tx": TX, "checked_by": "counter-2"}
    server.on(CHECK, Reply(409, {**already, "checked_at": when}))
    with pytest.raises(BackendProtocolError, match="checked_at"):
        check(client)
