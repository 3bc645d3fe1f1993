"""journald's native protocol without systemd-python: real datagrams on a Unix socket."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import journald
from kiosk.logs import event, setup_logging


def parse(data: bytes) -> dict[str, str]:
    """The native protocol's wire format back into fields (as journald reads it)."""
    fields: dict[str, str] = {}
    while data:
        line, _, rest = data.partition(b"\n")
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields[name.decode()] = value.decode()
            data = rest
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            fields[line.decode()] = rest[8 : 8 + size].decode()
            assert rest[8 + size : 9 + size] == b"\n"
            data = rest[9 + size :]
    return fields


@pytest.fixture
def journal_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "journal.socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setattr(journald, "SOCKET", str(path))
    # Hide systemd-python, whether installed or not: the Lite case.
    monkeypatch.setitem(sys.modules, "systemd", None)
    monkeypatch.setitem(sys.modules, "systemd.journal", None)
    try:
        yield sock
    finally:
        sock.close()
        logging.getLogger().handlers.clear()


def test_multiline_values_use_the_length_prefixed_form():
    wire = journald.encode({"MESSAGE": "one\ntwo", "KIOSK_TX": "rcp_1"})
    assert wire == b"MESSAGE\n" + struct.pack("<Q", 7) + b"one\ntwo\nKIOSK_TX=rcp_1\n"
    assert parse(wire) == {"MESSAGE": "one\ntwo", "KIOSK_TX": "rcp_1"}


def test_events_reach_the_socket_with_structured_fields(journal_socket):
    setup_logging("info", journald=True, device="counter-1", venue="ven_1")
    event(
        logging.getLogger("kiosk.engine"),
        "checked",
        tx="rcp_9",
        outcome="checked",
        amount_cents=1500,
        level=logging.WARNING,
    )
    fields = parse(journal_socket.recv(65536))
    assert fields["MESSAGE"] == "checked"
    assert fields["KIOSK_TX"] == "rcp_9"
    assert fields["KIOSK_OUTCOME"] == "checked"
    assert fields["KIOSK_AMOUNT_CENTS"] == "1500"
    assert fields["KIOSK_DEVICE"] == "counter-1" and fields["KIOSK_VENUE"] == "ven_1"
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "kiosk"
    assert fields["LOGGER"] == "kiosk.engine"
    assert fields["CODE_FUNC"] == "test_events_reach_the_socket_with_structured_fields"
    assert all(name == name.upper() for name in fields)


def test_secrets_are_masked_and_tracebacks_sent(journal_socket):
    setup_logging("info", journald=True)
    token = "eyJhbGciOiJFUzI1NiJ9.eyJ0eCI6InJjcF8xIn0.c2lnbmF0dXJl"
    try:
        raise ValueError(f"cannot parse {token}")
    except ValueError:
        logging.getLogger("kiosk.decode").exception("decode failed")
    fields = parse(journal_socket.recv(65536))
    assert fields["PRIORITY"] == "3"
    assert "eyJ" not in repr(fields)
    assert "ValueError: cannot parse [token]" in fields["MESSAGE"]


def test_an_entry_larger_than_a_datagram_goes_in_a_sealed_memfd(journal_socket):
    big = "x" * (4 * 1024 * 1024)
    journald.send(big, KIOSK_TX="rcp_big")
    data, fds, _flags, _addr = socket.recv_fds(journal_socket, 1024, 1)
    assert data == b"" and len(fds) == 1
    with os.fdopen(fds[0], "rb") as f:
        fields = parse(os.pread(f.fileno(), len(big) + 4096, 0))  # journald reads it so
    assert fields["MESSAGE"] == big and fields["KIOSK_TX"] == "rcp_big"


def test_without_module_or_socket_stderr_is_used(tmp_path):
    probe = (
        "import logging, sys\n"
        "sys.modules['systemd'] = sys.modules['systemd.journal'] = None  # not installed\n"
        "from kiosk import journald\n"
        f"journald.SOCKET = {str(tmp_path / 'none')!r}\n"
        "from kiosk.logs import setup_logging\n"
        "setup_logging(journald=True)\n"
        "print(type(logging.getLogger().handlers[-1]).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "StreamHandler"
    assert "neither systemd-python nor journald's socket" in out.stderr
