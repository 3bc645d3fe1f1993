"""Limits and hostile input over HTTP: sizes, framing, bad JSON, wrong fields, 429, faults."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
import requests

from refbackend import DEMO_VENUE, ReferenceBackend
from refbackend.httpd import ServerLimits

T = (2.0, 10.0)


def _raw(backend: ReferenceBackend, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", backend.port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _post_raw_body(api, body: bytes) -> requests.Response:
    headers = api.headers(str(uuid.uuid4())) | {"Content-Type": "application/json"}
    return api.session.post(f"{api.url}/v1/receipts/check", data=body, headers=headers, timeout=T)


def test_body_over_16_kib_is_413_and_16_kib_is_fine(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    body = (
        f'{{"token":"{token}","venue":"{DEMO_VENUE}","device":"c",'
        '"scanned_at":"2026-11-24T09:15:02Z","offline":false,"pad":"'
    )
    exact = body + "x" * (16 * 1024 - len(body) - 2) + '"}'
    assert len(exact) == 16 * 1024
    assert _post_raw_body(api, exact.encode()).status_code == 200  # unknown field ignored
    resp = _post_raw_body(api, b"{" + b" " * (16 * 1024) + b"}")
    assert resp.status_code == 413
    assert resp.json()["status"] == "too_large"
    assert resp.headers["Connection"] == "close"


def test_huge_content_length_is_413_without_reading(refbackend):
    answer = _raw(
        refbackend, b"POST /v1/charges HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"status":"too_large"' in answer


def test_missing_length_is_411_and_a_chunked_body_is_read_within_the_limit(api, refbackend):
    resp = api.session.post(
        f"{api.url}/v1/charges",
        data=iter([b"{}"]),
        headers=api.headers(str(uuid.uuid4())),
        timeout=T,
    )
    assert resp.status_code == 400  # decoded by the server, then judged: fields missing
    assert resp.json()["status"] == "bad_request"
    big = iter([b"{" + b" " * 8192, b" " * 8192, b" " * 8192 + b"}"])
    resp = api.session.post(
        f"{api.url}/v1/charges", data=big, headers=api.headers(str(uuid.uuid4())), timeout=T
    )
    assert resp.status_code == 413
    assert resp.json()["status"] == "too_large"
    answer = _raw(refbackend, b"POST /v1/charges HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411")
    answer = _raw(refbackend, b"POST /v1/charges HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b'"token"',
        b"\xff\xfe{}",
        b'{"token": NaN}',
        b'{"a": 1, "a": 2}',
        b"[" * 15000 + b"]" * 1000,
        b'{"amount_cents": ' + b"9" * 5000 + b"}",
        b'{"token": "x", "venue": "v", "device": "d", "scanned_at": 1e400, "offline": false}',
    ],
)
def test_malformed_json_is_400(api, raw):
    resp = _post_raw_body(api, raw)
    assert resp.status_code == 400
    assert resp.json()["status"] == "bad_request"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token", None),
        ("token", 5),
        ("venue", ["ven_demo0000000000"]),
        ("device", ""),
        ("scanned_at", "yesterday"),
        ("scanned_at", 1795000000),
        ("offline", "false"),
        ("offline", 0),
    ],
)
def test_missing_or_wrongly_typed_check_fields_are_400(api, refbackend, field, value):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    body = {
        "token": token,
        "venue": DEMO_VENUE,
        "device": "c",
        "scanned_at": "2026-11-24T09:15:02Z",
        "offline": False,
    }
    if value is None:
        del body[field]
    else:
        body[field] = value
    resp = api.post("/v1/receipts/check", body)
    assert resp.status_code == 400
    assert resp.json()["status"] == "bad_request"
    assert field in resp.json()["message"]


@pytest.mark.parametrize("amount", ["6500", 6500.0, True, None, [6500]])
def test_wrongly_typed_amount_is_400(api, refbackend, amount):
    body = {
        "paycode": "123456789012",
        "venue": DEMO_VENUE,
        "device": "c",
        "service": "classic-60",
        "amount_cents": amount,
    }
    resp = api.post("/v1/charges", body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["status"] == "bad_request"


def test_hostile_requests_get_json_errors_and_the_server_lives_on(refbackend):
    garbage = _raw(refbackend, b"GARBAGE\r\n\r\n")
    assert garbage.split(b" ")[1] == b"400"
    assert garbage.endswith(b'"status":"bad_request","message":"Start line is invalid"}')
    huge_header = b"GET /v1/x HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"
    answer = _raw(refbackend, huge_header)
    assert answer.split(b" ")[1] == b"431"
    assert b'"status":"headers_too_large"' in answer
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: %s\r\n" % (i, b"v" * 90) for i in range(200))
    assert _raw(refbackend, many + b"\r\n").split(b" ")[1] == b"431"
    auth = b"GET /v1/venues/x HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"
    assert _raw(refbackend, auth).startswith(b"HTTP/1.1 401")
    brew = _raw(refbackend, b"BREW /v1/charges HTTP/1.1\r\n\r\n")
    assert brew.startswith(b"HTTP/1.1 401") and b'"status":"invalid_token"' in brew
    resp = requests.get(f"{refbackend.url}/.well-known/jwks.json", timeout=T)
    assert resp.status_code == 200


def test_unknown_path_is_404_and_wrong_method_is_405(api):
    assert api.get("/v1/nothing").status_code == 404
    assert api.get("/v1/charges").status_code == 405
    assert requests.get(f"{api.url}/oauth/token", timeout=T).status_code == 405
    assert requests.get(f"{api.url}/", timeout=T).json()["status"] == "not_found"


def test_injected_faults_answer_without_processing(api, refbackend):
    faults = refbackend.faults
    faults.error_500 = 2
    assert [api.get(f"/v1/venues/{DEMO_VENUE}").status_code for _ in range(3)] == [500, 500, 200]
    faults.rate_limit = 1
    resp = api.get(f"/v1/venues/{DEMO_VENUE}")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    faults.garbage = 1
    resp = api.get(f"/v1/venues/{DEMO_VENUE}")
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    paycode = refbackend.mint_paycode(10000)
    faults.error_500 = 1
    assert api.charge(paycode["code"]).status_code == 500
    assert api.charge(paycode["code"]).status_code == 201  # the 500 charged nothing


def _bearer(backend: ReferenceBackend, client: tuple[str, str]) -> dict[str, str]:
    resp = requests.post(
        f"{backend.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
        timeout=T,
    )
    assert resp.status_code == 200
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    with ReferenceBackend(tmp_path / "r.db", rate_limit_per_s=2.0) as backend:
        url = f"{backend.url}/v1/venues/{DEMO_VENUE}"
        auth = _bearer(backend, backend.create_client(DEMO_VENUE))
        codes = [requests.get(url, headers=auth, timeout=T) for _ in range(4)]
        assert [r.status_code for r in codes[:2]] == [200, 200]
        assert codes[3].status_code == 429
        assert codes[3].json()["status"] == "rate_limited"
        assert int(codes[3].headers["Retry-After"]) >= 1


def test_pause_refuses_connections_and_resume_keeps_port_and_state(api, refbackend):
    _tx, token = refbackend.mint_receipt(DEMO_VENUE, 6500)
    assert api.check(token).status_code == 200
    port = refbackend.port
    refbackend.pause()
    with pytest.raises(requests.ConnectionError):
        api.check(token)
    refbackend.resume()
    assert refbackend.port == port
    assert api.check(token).status_code == 409  # same token, same database


def test_token_endpoint_is_rate_limited_per_address(tmp_path):
    with ReferenceBackend(
        tmp_path / "r.db", rate_limit_per_s=2.0, address_rate_limit_per_s=2.0
    ) as backend:
        client = backend.create_client(DEMO_VENUE)
        answers = [
            requests.post(
                f"{backend.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client[0], "wrong secret"),
                timeout=T,
            )
            for _ in range(4)
        ]
        assert [r.status_code for r in answers[:2]] == [401, 401]
        assert answers[3].status_code == 429
        assert answers[3].json()["status"] == "rate_limited"
        assert int(answers[3].headers["Retry-After"]) >= 1


def test_guest_flood_from_the_same_address_does_not_limit_an_authenticated_kiosk(tmp_path):
    """The per-client limit applies after authentication; one address only has a coarse bound."""
    with ReferenceBackend(tmp_path / "r.db", rate_limit_per_s=2.0) as backend:
        url = f"{backend.url}/v1/venues/{DEMO_VENUE}"
        kiosk = _bearer(backend, backend.create_client(DEMO_VENUE))
        with requests.Session() as guest:
            flood = [guest.get(url, timeout=T).status_code for _ in range(20)]
        assert set(flood) == {401}  # the guest is refused, not counted against the kiosk
        assert requests.get(url, headers=kiosk, timeout=T).status_code == 200
        other = _bearer(backend, backend.create_client(DEMO_VENUE))
        busy = [requests.get(url, headers=kiosk, timeout=T).status_code for _ in range(4)]
        assert 429 in busy  # the kiosk's own rate is limited
        assert requests.get(url, headers=other, timeout=T).status_code == 200  # not its neighbour's


def test_request_trickled_slowly_is_dropped_after_the_read_time(tmp_path):
    limits = ServerLimits(channel_timeout_s=30, request_read_timeout_s=2)
    with ReferenceBackend(tmp_path / "r.db", limits=limits) as backend:
        head = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nX-Pad: "
        with socket.create_connection(("127.0.0.1", backend.port), timeout=5) as sock:
            start = time.monotonic()
            sock.sendall(head)
            closed_after = None
            while time.monotonic() - start < 12:
                time.sleep(0.3)
                try:
                    sock.sendall(b"a")  # progress every 0.3 s: never idle
                    sock.settimeout(0.01)
                    if sock.recv(1) == b"":
                        closed_after = time.monotonic() - start
                        break
                except TimeoutError:
                    continue
                except OSError:
                    closed_after = time.monotonic() - start
                    break
                finally:
                    sock.settimeout(5)
        assert closed_after is not None and closed_after < 6
        assert requests.get(f"{backend.url}/.well-known/jwks.json", timeout=T).status_code == 200
