"""Telling systemd how the service is doing: READY, STATUS, WATCHDOG, STOPPING.

:class:`Notifier` sends sd_notify(3) messages. It uses systemd-python
(``systemd.daemon.notify``) when that is installed and the process environment is
used; otherwise, or when an explicit *environ* is given, it writes the datagram to
``NOTIFY_SOCKET`` itself (a path, or ``@name`` for the abstract namespace). With
no ``NOTIFY_SOCKET`` (not started by systemd) every call does nothing.

:class:`Watchdog` pings ``WATCHDOG=1`` only while every health check passes, so a
hung camera or a stuck engine stops the pings and systemd restarts the service
(``WatchdogSec=`` in ``systemd/kiosk.service``).

Sending never raises: a failed notification is logged once and reported as
``False``; if the manager stops hearing pings it restarts the service, which is
the right outcome for a broken notify socket too.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kiosk.unix_datagram import DatagramSender, address

__all__ = ["Notifier", "Watchdog"]

log = logging.getLogger("kiosk.notify")

_SEND_TIMEOUT = 1.0  # seconds; the manager's queue is never legitimately full for long


class Notifier:
    """sd_notify sender. Any thread may call it; sends are serialised by a lock."""

    def __init__(self, *, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._use_library = environ is None
        self.watchdog_interval: float | None = _watchdog_interval(env)
        self._lock = threading.Lock()
        self._sender = DatagramSender(timeout=_SEND_TIMEOUT)
        self._failed = False
        self._closed = False

    @property
    def enabled(self) -> bool:
        """True when started by systemd with a notify socket."""
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """READY=1: config, journal, display and scanner are up."""
        self._send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> None:
        """STATUS=text, shown by ``systemctl status kiosk``."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """WATCHDOG=1: the service loop is alive and healthy."""
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """STOPPING=1: shutdown has begun (SIGTERM received)."""
        self._send("STOPPING=1")

    def extend_timeout(self, seconds: float) -> None:
        """EXTEND_TIMEOUT_USEC: ask for more time to start or stop (slow camera)."""
        self._send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        """Close the socket, if one was opened. Safe to call repeatedly."""
        with self._lock:
            self._closed = True
            self._sender.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: str) -> bool:
        if self._address is None:
            return False
        with self._lock:
            if self._closed:
                return False
            try:
                sent = self._send_locked(message)
            except OSError as exc:
                sent = False
                if not self._failed:
                    log.warning(
                        "cannot notify systemd (%s); the service may be restarted", exc.strerror
                    )
            self._failed = not sent
            return sent

    def _send_locked(self, message: str) -> bool:
        if self._use_library:
            daemon = _systemd_daemon()
            if daemon is not None:
                return bool(daemon.notify(message))
        assert self._address is not None
        self._sender.send(self._address, message.encode("utf-8"))
        return True


class Watchdog:
    """Pings the systemd watchdog only while every check reports healthy.

    Each check returns ``None`` when healthy or a short problem text ("camera: no
    frame for 9 s"). A check that raises counts as unhealthy. Service-loop thread only.
    """

    def __init__(self, notifier: Notifier, checks: Sequence[Callable[[], str | None]]) -> None:
        self._notifier = notifier
        self._checks = tuple(checks)
        self._last_ping: float | None = None
        self._next_check = float("-inf")
        self._problem: str | None = None

    @property
    def problem(self) -> str | None:
        """The problem that currently withholds pings, or None when healthy."""
        return self._problem

    def tick(self, now: float) -> None:
        """Ping if the interval has elapsed and all checks pass. *now*: time.monotonic()."""
        interval = self._notifier.watchdog_interval
        if interval is None:
            return
        if self._last_ping is not None and now - self._last_ping < interval:
            return
        if now < self._next_check:
            return
        problem = self._first_problem()
        if problem is not None:
            if self._problem is None:  # once per unhealthy spell, not on every re-check
                log.error("watchdog pings withheld: %s (systemd will restart the service)", problem)
            self._problem = problem
            # Re-check soon, but not on every loop turn: checks may read clocks or stats.
            self._next_check = now + min(1.0, interval / 4)
            return
        if self._problem is not None:
            log.warning("healthy again, watchdog pings resumed (was: %s)", self._problem)
            self._problem = None
        self._notifier.watchdog()
        self._last_ping = now

    def _first_problem(self) -> str | None:
        for check in self._checks:
            try:
                problem = check()
            except Exception as exc:  # a broken check must not kill the loop; it fails closed
                problem = f"{getattr(check, '__name__', 'check')} raised {type(exc).__name__}"
            if problem is not None:
                return problem
        return None


def _socket_address(value: str) -> str | None:
    """*value* if it names a socket (kiosk.unix_datagram.address), else None."""
    if not value:
        return None
    try:
        address(value)
    except ValueError:
        log.warning("ignoring NOTIFY_SOCKET %r: not an absolute path or @name", value)
        return None
    return value


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process (e.g. our parent)
    return usec / 2 / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _systemd_daemon() -> Any:
    try:  # Debian python3-systemd, or systemd-python
        return importlib.import_module("systemd.daemon")
    except ImportError:
        return None
