"""Restarts, the signing key file, and the `kiosk backend` / `kiosk mint` commands."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image

from kiosk.cli import main
from refbackend import DEMO_VENUE, ReferenceBackend
from refbackend.errors import BackendError
from refbackend.keys import key_path_for

T = (2.0, 10.0)


def test_key_is_0600_and_reused_across_restarts(tmp_path):
    db = tmp_path / "b.db"
    with ReferenceBackend(db) as first:
        kid = first.kid
        client = first.create_client(DEMO_VENUE)
        _tx, token = first.mint_receipt(DEMO_VENUE, 6500)
    key_file = key_path_for(db)
    assert key_file == tmp_path / "b.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.stat().st_mode) == 0o600  # holds secret digests
    with ReferenceBackend(db) as second:
        assert second.kid == kid
        bearer = requests.post(
            f"{second.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=client,
            timeout=T,
        ).json()["access_token"]
        resp = requests.post(
            f"{second.url}/v1/receipts/check",
            json={
                "token": token,
                "venue": DEMO_VENUE,
                "device": "c",
                "scanned_at": "2026-11-24T09:15:02Z",
                "offline": False,
            },
            headers={
                "Authorization": f"Bearer {bearer}",
                "Idempotency-Key": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            },
            timeout=T,
        )
        assert resp.status_code == 200
        venues = second.create_venue("Toinen", "Tie 3")
        assert venues["id"] != DEMO_VENUE  # the demo venue was seeded once, not again


def test_key_readable_by_others_is_tightened(tmp_path):
    db = tmp_path / "b.db"
    with ReferenceBackend(db):
        pass
    os.chmod(key_path_for(db), 0o644)
    with ReferenceBackend(db):
        assert stat.S_IMODE(key_path_for(db).stat().st_mode) == 0o600


def test_damaged_key_or_database_is_a_clear_error(tmp_path):
    db = tmp_path / "b.db"
    key_path_for(db).write_text("not a key")
    with pytest.raises(BackendError, match="move it aside"):
        ReferenceBackend(db).start()
    other = tmp_path / "junk.db"
    other.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BackendError, match="cannot open the backend database"):
        ReferenceBackend(other).start()


def test_busy_port_is_a_clear_error_and_stop_is_repeatable(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        backend = ReferenceBackend(tmp_path / "b.db", port=taken.getsockname()[1])
        with pytest.raises(BackendError, match="cannot listen"):
            backend.start()
    backend.stop()
    backend.stop()
    running = ReferenceBackend(tmp_path / "c.db")
    running.start()
    with pytest.raises(RuntimeError):
        running.start()
    running.stop()
    running.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/.well-known/jwks.json", timeout=T)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "kiosk backend printed nothing in time"
    return proc.stdout.readline()


def test_kiosk_backend_serves_mints_and_stops_on_sigterm(tmp_path, capsys):
    db = tmp_path / "cli.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "backend", "--port", "0", "--db", str(db), "--dev"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = _read_line(proc, 20)
        match = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        png = tmp_path / "receipt.png"
        assert (
            main(["mint", "receipt", "--backend", url, "--amount", "5500", "--qr", str(png)]) == 0
        )
        token = capsys.readouterr().out.strip()
        assert token.count(".") == 2
        decoded = zxingcpp.read_barcodes(Image.open(png))
        assert [d.text for d in decoded] == [token]
        assert main(["mint", "paycode", "--backend", url]) == 0
        token_line, code_line = capsys.readouterr().out.splitlines()
        assert token_line.startswith("eyJ") and re.fullmatch(r"\d{12}", code_line)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert "POST /dev/receipts 200" in err
    assert token not in err  # tokens are never logged
    assert stat.S_IMODE(key_path_for(db).stat().st_mode) == 0o600


def test_kiosk_backend_refuses_a_public_host_without_the_flag(capsys):
    assert main(["backend", "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_kiosk_mint_explains_unreachable_and_non_dev_backends(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert main(["mint", "receipt", "--backend", f"http://127.0.0.1:{free}", "--timeout", "2"]) == 1
    assert "cannot reach the backend" in capsys.readouterr().err
    with ReferenceBackend(tmp_path / "p.db", dev=False) as backend:
        assert main(["mint", "paycode", "--backend", backend.url]) == 1
    assert "not a dev backend" in capsys.readouterr().err


def test_kiosk_mint_reports_a_refusal(refbackend, capsys):
    assert main(["mint", "receipt", "--backend", refbackend.url, "--venue", "ven_nowhere"]) == 1
    err = capsys.readouterr().err
    assert "the backend refused: 404 no venue 'ven_nowhere'" in err


def test_the_backend_imports_nothing_from_the_firmware(tmp_path):
    code = (
        "import sys, pathlib\n"
        "from refbackend import DEMO_VENUE, ReferenceBackend\n"
        f"with ReferenceBackend(pathlib.Path({str(tmp_path / 'i.db')!r})) as b:\n"
        "    b.mint_receipt(DEMO_VENUE, 6500); b.mint_paycode(100)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kiosk'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert out.stdout.strip() == "[]"
