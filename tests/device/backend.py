"""The reference backend on the host, reached by the VM over HTTPS with a test CA.

A CA made here signs a certificate for the guest's forwarded backend address (and
127.0.0.1). ``kiosk backend --dev --tls-cert --tls-key`` serves HTTPS with it
(``TLS_IN_BACKEND``); with ``TLS_IN_BACKEND = False`` the backend speaks plain HTTP on
loopback and :class:`TlsFront` terminates TLS in front of it instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# True: `kiosk backend --tls-cert FILE --tls-key FILE` serves HTTPS itself; False: TlsFront.
TLS_IN_BACKEND = True
VENUE = "ven_demo0000000000"


def make_ca(dir: Path, ips: list[str]) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for *ips*: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kiosk device test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ips[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = dir / "ca.pem", dir / "server.pem", dir / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


class TlsFront:
    """TLS on 127.0.0.1:<port>, each connection relayed to the plain backend port."""

    def __init__(self, cert: Path, key: Path, backend_port: int) -> None:
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(cert, key)
        self._backend_port = backend_port
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.port = 0

    def start(self, port: int = 0) -> None:
        sock = socket.create_server(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._thread = threading.Thread(target=self._accept, args=(sock,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every open connection: the backend looks down."""
        self._stopped.set()
        if self._listener is not None:
            # shutdown() wakes the accept() blocked in the other thread; close() alone
            # would leave it waiting and let one more connection through.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.close()
            self._conns.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if self._stopped.is_set():
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.settimeout(30)
            tls = self._ctx.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
            up = socket.create_connection(("127.0.0.1", self._backend_port), timeout=5)
            up.settimeout(None)
        except OSError:
            raw.close()
            return
        with self._lock:
            if self._stopped.is_set():
                tls.close()
                up.close()
                return
            self._conns.update((tls, up))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.close()

        t = threading.Thread(target=pump, args=(up, tls), daemon=True)
        t.start()
        pump(tls, up)
        t.join(timeout=5)
        with self._lock:
            self._conns.difference_update((tls, up))


class HttpsBackend:
    """`kiosk backend --dev` (state in *dir*) behind HTTPS for the guest.

    The harness itself uses :attr:`url` on loopback (dev endpoints, history); the guest
    reaches :attr:`https_port` through QEMU's forward. :meth:`down` makes HTTPS refuse
    connections (the backend's state stays), :meth:`up` brings it back on the same port.
    """

    def __init__(self, kiosk: Path, dir: Path, guest_ip: str) -> None:
        self.kiosk = kiosk
        self.dir = dir
        self.ca, self.cert, self.key = make_ca(dir, [guest_ip, "127.0.0.1"])
        self.proc: subprocess.Popen[str] | None = None
        self.front: TlsFront | None = None
        self.port = 0  # the backend process's own port
        self.https_port = 0
        self.http = requests.Session()
        self.client_id = ""
        self.client_secret = ""
        self._token = ""

    @property
    def url(self) -> str:
        """Where the harness talks to the backend (dev endpoints, history)."""
        return f"{'https' if TLS_IN_BACKEND else 'http'}://127.0.0.1:{self.port}"

    def _launch(self, port: int) -> None:
        argv = [str(self.kiosk), "backend", "--dev", "--db", str(self.dir / "backend.db"),
                "--port", str(port)]  # fmt: skip
        if TLS_IN_BACKEND:
            argv += ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        with (self.dir / "backend.log").open("a") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"serving https?://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"kiosk backend did not start: {line!r}; see {self.dir}/backend.log")
        self.port = int(m.group(1))

    def _terminate(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def start(self) -> None:
        self._launch(0)
        if TLS_IN_BACKEND:
            self.https_port = self.port
        else:
            self.up()

    def up(self) -> None:
        """HTTPS reachable again (after :meth:`down`), on the same port."""
        if TLS_IN_BACKEND:
            if self.proc is None:
                self._launch(self.https_port)
            return
        self.front = TlsFront(self.cert, self.key, self.port)
        self.front.start(self.https_port)
        self.https_port = self.front.port

    def down(self) -> None:
        """HTTPS refuses connections; the backend's state is kept."""
        if TLS_IN_BACKEND:
            self._terminate()
        elif self.front is not None:
            self.front.stop()
            self.front = None

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
            self.front = None
        self._terminate()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.http.post(self.url + path, json=body, timeout=10, verify=str(self.ca))
        resp.raise_for_status()
        answer: dict[str, Any] = resp.json()
        return answer

    def new_client(self) -> tuple[str, str]:
        answer = self._post("/dev/clients", {"venue": VENUE})
        self.client_id, self.client_secret = answer["client_id"], answer["client_secret"]
        return self.client_id, self.client_secret

    def mint_receipt(self, amount_cents: int) -> tuple[str, str]:
        answer = self._post("/dev/receipts", {"venue": VENUE, "amount_cents": amount_cents})
        return answer["tx"], answer["token"]

    def history(self) -> list[dict[str, Any]]:
        """Every transaction of the venue, as the backend records it (newest first)."""
        if not self._token:
            resp = self.http.post(
                self.url + "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
                timeout=10,
                verify=str(self.ca),
            )
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            resp = self.http.get(
                f"{self.url}/v1/venues/{VENUE}/transactions",
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=10,
                verify=str(self.ca),
            )
            if resp.status_code == 401:
                self._token = ""
                return self.history()
            resp.raise_for_status()
            page = resp.json()
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items

    def committed(self, tx: str, timeout: float) -> bool:
        """The backend's own database holds *tx* as checked, within *timeout*: read every
        few milliseconds, so a caller can act right after the kiosk's answer left."""
        deadline = time.monotonic() + timeout
        db = f"file:{self.dir / 'backend.db'}?mode=ro"
        while time.monotonic() < deadline:
            try:
                with contextlib.closing(sqlite3.connect(db, uri=True, timeout=1.0)) as conn:
                    row = conn.execute("SELECT state FROM transactions WHERE tx = ?", (tx,))
                    if (row.fetchone() or ("",))[0] == "checked":
                        return True
            except sqlite3.Error:
                pass  # not created yet, or locked for a moment
            time.sleep(0.005)
        return False

    def checked(self, txs: set[str], timeout: float) -> dict[str, list[dict[str, Any]]]:
        """History items of *txs* once each is checked (or at *timeout*), by tx."""
        deadline = time.monotonic() + timeout
        while True:
            by_tx: dict[str, list[dict[str, Any]]] = {}
            for item in self.history():
                if item["tx"] in txs:
                    by_tx.setdefault(item["tx"], []).append(item)
            done = all(any(i["status"] == "checked" for i in by_tx.get(tx, [])) for tx in txs)
            if done or time.monotonic() > deadline:
                return by_tx
            time.sleep(1)
