"""The one sender of datagrams to a Unix socket (sd_notify and journald use it): real sockets."""

from __future__ import annotations

import array
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.unix_datagram import DatagramSender, address


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "receiver.socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5.0)
    try:
        yield path, sock
    finally:
        sock.close()


def test_a_datagram_reaches_a_socket_named_by_its_path(
    receiver: tuple[str, socket.socket],
) -> None:
    path, sock = receiver
    sender = DatagramSender(timeout=1.0)
    sender.send(path, b"READY=1")
    sender.send(path, b"WATCHDOG=1")
    assert [sock.recv(100), sock.recv(100)] == [b"READY=1", b"WATCHDOG=1"]
    sender.close()
    sender.close()
    sender.send(path, b"STATUS=again")  # a closed sender opens a new socket
    assert sock.recv(100) == b"STATUS=again"


def test_an_at_name_is_in_the_abstract_namespace() -> None:
    name = f"kiosk-datagram-{os.getpid()}-{time.monotonic_ns()}"
    assert address("@" + name) == "\0" + name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        DatagramSender().send("@" + name, b"STATUS=abstract")
        assert sock.recv(100) == b"STATUS=abstract"
    finally:
        sock.close()


def test_descriptors_travel_with_the_datagram(
    receiver: tuple[str, socket.socket], tmp_path: Path
) -> None:
    path, sock = receiver
    passed = tmp_path / "entry"
    passed.write_bytes(b"MESSAGE=too large for one datagram\n")
    fd = os.open(passed, os.O_RDONLY)
    try:
        DatagramSender().send(path, b"", fds=[fd])
    finally:
        os.close(fd)
    data, ancillary, _, _ = sock.recvmsg(100, socket.CMSG_SPACE(array.array("i").itemsize))
    ((level, kind, raw),) = ancillary
    assert data == b"" and (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    (received,) = array.array("i", raw)
    with os.fdopen(received, "rb") as entry:
        assert entry.read() == b"MESSAGE=too large for one datagram\n"


@pytest.mark.parametrize("name", ["", "@", "run/notify", "notify"])
def test_a_name_that_is_neither_a_path_nor_at_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not an absolute path or @name"):
        address(name)
    with pytest.raises(ValueError, match="is not an absolute path or @name"):
        DatagramSender().send(name, b"x")


def test_a_missing_socket_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DatagramSender().send(str(tmp_path / "gone"), b"x")
