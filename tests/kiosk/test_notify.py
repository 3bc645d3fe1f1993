"""Notifier and Watchdog against a real NOTIFY_SOCKET datagram socket.

The end-to-end test at the bottom plays systemd's part (notify socket, watchdog
timer, SIGABRT on a missed ping, restart on failure) with a small supervisor,
because this machine has no systemd as PID 1 to run the unit itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.notify import Notifier, Watchdog


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # A short directory: AF_UNIX paths are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="kn-") as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5.0)
        try:
            yield sock, path
        finally:
            sock.close()


def _recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def _pending(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out = []
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(5.0)


def test_fallback_sender_delivers_ready_status_watchdog_stopping(notify_socket):
    sock, path = notify_socket
    with Notifier(environ={"NOTIFY_SOCKET": path}) as notifier:
        assert notifier.enabled
        notifier.ready("online, 0 pending")
        assert _recv(sock) == "READY=1\nSTATUS=online, 0 pending"
        notifier.status("offline,\n3 pending")
        assert _recv(sock) == "STATUS=offline, 3 pending"
        notifier.watchdog()
        assert _recv(sock) == "WATCHDOG=1"
        notifier.extend_timeout(2.5)
        assert _recv(sock) == "EXTEND_TIMEOUT_USEC=2500000"
        notifier.stopping()
        assert _recv(sock) == "STOPPING=1"


def test_systemd_python_sender_uses_process_environment(notify_socket, monkeypatch):
    pytest.importorskip("systemd.daemon", reason="systemd-python is in the systemd extra")
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier()
    notifier.ready("starting done")
    assert _recv(sock) == "READY=1\nSTATUS=starting done"
    notifier.watchdog()
    assert _recv(sock) == "WATCHDOG=1"


def test_abstract_namespace_socket():
    name = f"kiosk-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5.0)
    try:
        Notifier(environ={"NOTIFY_SOCKET": "@" + name}).status("abstract")
        assert _recv(sock) == "STATUS=abstract"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op():
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    notifier.ready("x")
    notifier.watchdog()
    notifier.close()
    notifier.close()


def test_unreachable_socket_is_logged_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="kiosk.notify"):
        notifier.watchdog()
        notifier.watchdog()
    assert [r.message for r in caplog.records].count(
        "cannot notify systemd (No such file or directory); the service may be restarted"
    ) == 1


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "15000000"}, 7.5),
        ({"WATCHDOG_USEC": "15000000", "WATCHDOG_PID": str(os.getpid())}, 7.5),
        ({"WATCHDOG_USEC": "15000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid(env, interval):
    assert Notifier(environ=env).watchdog_interval == interval


def test_watchdog_withholds_pings_while_camera_hangs_and_resumes(notify_socket, caplog):
    sock, path = notify_socket
    notifier = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    camera = {"last_frame": 0.0}
    now = 0.0

    def camera_alive() -> str | None:
        age = now - camera["last_frame"]
        return None if age < 3.0 else f"camera: no frame for {age:.0f} s"

    dog = Watchdog(notifier, [lambda: None, camera_alive])
    dog.tick(now)
    assert _recv(sock) == "WATCHDOG=1"
    now = 0.5
    dog.tick(now)  # interval (1 s) not elapsed yet
    assert _pending(sock) == []
    with caplog.at_level(logging.ERROR, logger="kiosk.notify"):
        for now in (1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 6.0):  # frames stop after t=0
            dog.tick(now)
            if now <= 2.0:
                assert _recv(sock) == "WATCHDOG=1"
                camera["last_frame"] = 0.0  # the camera hangs from here on
    assert _pending(sock) == []
    assert dog.problem == "camera: no frame for 6 s"
    withheld = [r.message for r in caplog.records if "withheld" in r.message]
    assert withheld == [
        "watchdog pings withheld: camera: no frame for 3 s (systemd will restart the service)"
    ]
    camera["last_frame"] = 6.5  # frames again
    now = 7.0
    dog.tick(now)
    assert _recv(sock) == "WATCHDOG=1"
    assert dog.problem is None


def test_a_check_that_raises_counts_as_unhealthy(notify_socket):
    sock, path = notify_socket
    notifier = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})

    def engine_alive() -> str | None:
        raise RuntimeError("boom")

    dog = Watchdog(notifier, [engine_alive])
    dog.tick(10.0)
    assert _pending(sock) == []
    assert dog.problem == "engine_alive raised RuntimeError"


def test_watchdog_does_nothing_without_watchdog_usec(notify_socket):
    sock, path = notify_socket
    calls = []
    dog = Watchdog(Notifier(environ={"NOTIFY_SOCKET": path}), [lambda: calls.append(1)])
    dog.tick(100.0)
    assert calls == []
    assert _pending(sock) == []


# --- end to end: a hung loop is restarted --------------------------------------------

_SERVICE = textwrap.dedent(
    """
    import signal, threading, time
    from kiosk.notify import Notifier, Watchdog

    last_frame = time.monotonic()
    hung = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *a: hung.set())   # "the camera hangs"

    def camera():  # delivers a frame every 50 ms until it hangs
        global last_frame
        while not hung.is_set():
            last_frame = time.monotonic()
            time.sleep(0.05)

    threading.Thread(target=camera, daemon=True).start()
    notifier = Notifier()
    dog = Watchdog(notifier, [lambda: None if time.monotonic() - last_frame < 0.5
                              else "camera: no frame"])
    notifier.ready("online, 0 pending")
    while True:          # the service loop keeps running; only the camera is stuck
        dog.tick(time.monotonic())
        time.sleep(0.02)
    """
)


class _Supervisor:
    """What systemd does for Type=notify, WatchdogSec=1, Restart=on-failure."""

    def __init__(self, sock: socket.socket, path: str, script: Path) -> None:
        self.sock, self.path, self.script = sock, path, script
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, NOTIFY_SOCKET=self.path, WATCHDOG_USEC="1000000")
        env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen([sys.executable, str(self.script)], env=env)

    def expect(self, message: str, within: float) -> None:
        self.sock.settimeout(within)
        assert _recv(self.sock).startswith(message)

    def watchdog_expired(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            while _recv(self.sock) != "WATCHDOG=1":
                pass
        except TimeoutError:
            return True
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def test_hung_camera_leads_to_watchdog_abort_and_restart(notify_socket, tmp_path):
    sock, path = notify_socket
    script = tmp_path / "service.py"
    script.write_text(_SERVICE)
    sup = _Supervisor(sock, path, script)
    try:
        sup.start()
        sup.expect("READY=1", within=20)
        for _ in range(3):
            assert not sup.watchdog_expired(timeout=1.0)
        assert sup.proc is not None
        sup.proc.send_signal(signal.SIGUSR1)  # hang the camera
        deadline = time.monotonic() + 5
        while not sup.watchdog_expired(timeout=1.0):  # pings already in flight drain first
            assert time.monotonic() < deadline, "pings did not stop after the camera hung"
        sup.proc.send_signal(signal.SIGABRT)  # WatchdogSignal= default
        assert sup.proc.wait(timeout=5) == -signal.SIGABRT  # a failure: Restart=on-failure
        sup.start()
        sup.expect("READY=1", within=20)
        assert not sup.watchdog_expired(timeout=1.0)
    finally:
        sup.stop()
