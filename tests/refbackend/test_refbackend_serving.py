"""Serving: slow clients, HTTPS with a test CA, dev endpoints for an allowed network."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from refbackend import DEMO_VENUE, BackendError, ReferenceBackend, tls_context
from refbackend.wire import Request

ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = 300


def test_300_slow_clients_do_not_stop_a_normal_client(refbackend, demo_client):
    stalled: list[socket.socket] = []
    try:
        for i in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", refbackend.port), timeout=5)
            if i % 2:  # half a request line and headers
                sock.sendall(b"POST /v1/receipts/check HTTP/1.1\r\nHost: x\r\nContent-Le")
            else:  # complete headers, then only part of the promised body
                sock.sendall(
                    b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\ngrant"
                )
            stalled.append(sock)
        time.sleep(0.3)  # let the server take them all in
        started = time.monotonic()
        resp = requests.post(
            f"{refbackend.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=demo_client,
            timeout=(2.0, 2.0),
        )
        token = resp.json()["access_token"]
        venue = requests.get(
            f"{refbackend.url}/v1/venues/{DEMO_VENUE}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=(2.0, 2.0),
        )
        elapsed = time.monotonic() - started
        assert venue.status_code == 200
        assert elapsed < 2.0
        stalled[0].settimeout(0.2)  # the stalled ones are still open, not answered
        with pytest.raises(TimeoutError):
            stalled[0].recv(1)
    finally:
        for sock in stalled:
            sock.close()


# --- HTTPS ------------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("kiosk test CA"))
        .issuer_name(_name("kiosk test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_https_with_a_test_ca_answers_the_contract(tmp_path):
    ca, cert, key = _write_test_ca(tmp_path)
    with ReferenceBackend(tmp_path / "b.db", tls=tls_context(cert, key)) as backend:
        assert backend.url.startswith("https://127.0.0.1:")
        client_id, secret = backend.create_client(DEMO_VENUE)
        with requests.Session() as session:
            # verify= on each call: a REQUESTS_CA_BUNDLE in the environment outranks
            # Session.verify
            resp = session.post(
                f"{backend.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                verify=str(ca),
                timeout=5,
            )
            assert resp.status_code == 200
            bearer = {"Authorization": f"Bearer {resp.json()['access_token']}"}
            for _ in range(3):  # kept-alive TLS connection, several requests
                venue = session.get(
                    f"{backend.url}/v1/venues/{DEMO_VENUE}",
                    headers=bearer,
                    verify=str(ca),
                    timeout=5,
                )
                assert venue.json()["id"] == DEMO_VENUE
        too_large = _tls_exchange(
            backend.port,
            ca,
            b"POST /v1/charges HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n",
        )
        assert too_large.startswith(b"HTTP/1.1 413")
        assert too_large.endswith(b'{"status":"too_large","message":"request body over 16 KiB"}')
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{backend.url}/.well-known/jwks.json", timeout=5)  # CA not trusted
        plain = backend.url.replace("https://", "http://")
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{plain}/.well-known/jwks.json", timeout=5)
        resp = requests.get(f"{backend.url}/.well-known/jwks.json", verify=str(ca), timeout=5)
        assert resp.json() == backend.jwks()  # served on after the refused handshakes


def _tls_exchange(port: int, ca: Path, data: bytes) -> bytes:
    """Send *data* over a TLS connection trusting *ca*; everything answered until close."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_tls_files_that_do_not_fit_are_a_clear_error(tmp_path):
    _ca, cert, _key = _write_test_ca(tmp_path)
    with pytest.raises(BackendError, match="cannot use the TLS certificate"):
        tls_context(cert, cert)


def test_kiosk_backend_serves_https_with_tls_cert_and_key(tmp_path):
    ca, cert, key = _write_test_ca(tmp_path)
    argv = [sys.executable, "-m", "kiosk", "backend", "--port", "0", "--db", str(tmp_path / "c.db")]
    argv += ["--dev", "--tls-cert", str(cert), "--tls-key", str(key)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving (https://127\.0\.0\.1:\d+)", line)
        assert match, line
        resp = requests.post(
            f"{match.group(1)}/dev/receipts",
            json={"venue": DEMO_VENUE, "amount_cents": 6500},
            verify=str(ca),
            timeout=5,
        )
        assert resp.status_code == 200 and resp.json()["tx"].startswith("tx_")
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_kiosk_backend_refuses_half_a_tls_pair(tmp_path):
    _ca, cert, _key = _write_test_ca(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "backend", "--tls-cert", str(cert)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "--tls-cert and --tls-key go together" in out.stderr


# --- dev endpoints from an allowed network -----------------------------------------------


def _dev_request(addr: str) -> Request:
    body = b'{"venue": "ven_demo0000000000", "amount_cents": 6500}'
    return Request("POST", "/dev/receipts", "", {}, body, addr)


def test_dev_endpoints_answer_loopback_and_dev_allow_networks_only(tmp_path):
    with ReferenceBackend(tmp_path / "a.db") as default:
        app = default._require_app()
        assert app.handle(_dev_request("127.0.0.1")).code == 200
        assert app.handle(_dev_request("::ffff:127.0.0.1")).code == 200
        assert app.handle(_dev_request("10.0.2.2")).code == 403
    with ReferenceBackend(tmp_path / "b.db", dev_allow=("10.0.2.0/24",)) as allowing:
        app = allowing._require_app()
        assert app.handle(_dev_request("10.0.2.2")).code == 200
        assert app.handle(_dev_request("::ffff:10.0.2.15")).code == 200
        assert app.handle(_dev_request("10.0.3.2")).code == 403
        assert app.handle(_dev_request("192.168.1.5")).code == 403
    with pytest.raises(ValueError, match="dev_allow"):
        ReferenceBackend(tmp_path / "c.db", dev_allow=("not-a-network",))
