"""Datagrams to a Unix socket named by a path: sd_notify's ``NOTIFY_SOCKET`` and journald's
``/run/systemd/journal/socket`` (:mod:`kiosk.notify`, :mod:`kiosk.journald`).

A name is an absolute path, or ``@name`` for the Linux abstract namespace (systemd's
spelling; the kernel's address starts with a NUL byte instead).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Sequence

__all__ = ["DatagramSender", "address"]


def address(name: str) -> str:
    """The socket address of *name*: ``@name`` in the abstract namespace, or the absolute
    path itself. Raises ValueError for anything else (a relative path, nothing)."""
    if name.startswith("@") and len(name) > 1:
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    raise ValueError(f"{name!r} is not an absolute path or @name")


class DatagramSender:
    """One AF_UNIX datagram socket, opened at the first send, for sending to socket names.

    Any thread may send; sends are serialised by a lock. *timeout*: how long a send may
    block on a full receiver (None: as long as it takes).
    """

    def __init__(self, *, timeout: float | None = None) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def send(self, name: str, data: bytes, *, fds: Sequence[int] = ()) -> None:
        """*data* as one datagram to the socket *name*; *fds* passed along (SCM_RIGHTS).
        Raises OSError (e.g. EMSGSIZE: too large for one datagram) or ValueError (a bad
        name)."""
        to = address(name)
        with self._lock:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(self._timeout)
            if fds:
                rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))
                self._sock.sendmsg([data], [rights], 0, to)
            else:
                self._sock.sendto(data, to)

    def close(self) -> None:
        """Close the socket, if one was opened; a later send opens a new one."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
