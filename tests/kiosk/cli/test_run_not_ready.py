"""`kiosk run` whose engine cannot open its journal never reports READY=1 and ends with an
error status, so that systemd and an update waiting for the service see the failure."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.journal import SCHEMA_VERSION, Journal
from kiosk.service import EXIT_NOT_READY

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 30.0


@pytest.fixture
def notify() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket standing in for systemd's notify socket (abstract namespace)."""
    name = f"kiosk-not-ready-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.2)
    try:
        yield "@" + name, sock
    finally:
        sock.close()


def run_until_exit(config: Path, notify_socket: str, sock: socket.socket) -> tuple[int, list[str]]:
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket, PYTHONPATH=str(ROOT))
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    messages: list[str] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages += sock.recv(4096).decode().splitlines()
            if "READY=1" in messages:
                break
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=WAIT_S)
    try:
        while True:
            messages += sock.recv(4096).decode().splitlines()
    except TimeoutError:
        pass
    assert "Traceback" not in err.decode("utf-8", "replace")
    return proc.returncode, messages


def test_a_journal_of_a_newer_schema_is_not_ready(
    kiosk_toml: Callable[..., Path], notify: tuple[str, socket.socket]
) -> None:
    config = kiosk_toml()
    path = Path(load_config(config).journal.path)
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")  # as a newer release left it
    conn.close()
    status, messages = run_until_exit(config, *notify)
    assert "READY=1" not in messages
    assert status == EXIT_NOT_READY
    assert any(m.startswith("STATUS=failed") and "newer" in m for m in messages), messages


def test_a_usable_journal_is_ready(
    kiosk_toml: Callable[..., Path], notify: tuple[str, socket.socket]
) -> None:
    status, messages = run_until_exit(kiosk_toml(), *notify)
    assert "READY=1" in messages
    assert status == 0  # stopped by SIGTERM once ready
