"""journald's native protocol, for a system without systemd-python (stock Raspberry Pi OS).

systemd documents the protocol as stable ("Native Journal Protocol"): one datagram per
entry on the Unix socket ``/run/systemd/journal/socket``, each field ``NAME=value\\n``,
or for a value holding a newline ``NAME\\n``, its length as a 64-bit little-endian
integer, the bytes and ``\\n``. An entry too large for one datagram goes in a sealed
memfd whose descriptor is passed instead. :func:`send` has the signature of
``systemd.journal.send``, and :class:`NativeJournalHandler` sends the fields
``systemd.journal.JournalHandler`` sends, so ``journalctl KIOSK_TX=...`` works alike.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.unix_datagram import DatagramSender

__all__ = ["SOCKET", "NativeJournalHandler", "available", "encode", "send"]

SOCKET = "/run/systemd/journal/socket"

_sender = DatagramSender()


def available() -> bool:
    """True when journald's socket is there."""
    return os.path.exists(SOCKET)


def encode(fields: Mapping[str, object]) -> bytes:
    """One entry in the native protocol's wire format."""
    out = bytearray()
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
        key = name.encode("ascii")
        if b"\n" in data:
            out += key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key + b"=" + data + b"\n"
    return bytes(out)


def send(message: str, /, **fields: Any) -> None:
    """``MESSAGE=message`` and *fields* as one journal entry (raises OSError on failure)."""
    _send_datagram(encode({"MESSAGE": message, **fields}))


def _send_datagram(data: bytes) -> None:
    try:
        _sender.send(SOCKET, data)
    except OSError as exc:
        if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):  # too large for a datagram
            raise
        fd = os.memfd_create("journal-entry", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, data)
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals | fcntl.F_SEAL_SEAL)
            _sender.send(SOCKET, b"", fds=[fd])
        finally:
            os.close(fd)


_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class NativeJournalHandler(logging.Handler):
    """Log records as journal entries with the fields systemd's JournalHandler sends:
    MESSAGE, PRIORITY, LOGGER, THREAD_NAME, PROCESS_NAME, CODE_FILE/LINE/FUNC,
    EXCEPTION_TEXT, the record's own upper-case fields and the *defaults* (e.g.
    SYSLOG_IDENTIFIER). *sender_function* replaces :func:`send` (tests record fields)."""

    def __init__(self, *, sender_function: Callable[..., Any] = send, **defaults: str) -> None:
        super().__init__()
        self._send = sender_function
        self._defaults = defaults

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            fields: dict[str, Any] = dict(self._defaults)
            fields.update(
                PRIORITY=str(_PRIORITY.get(record.levelno, 6)),
                LOGGER=record.name,
                THREAD_NAME=record.threadName,
                PROCESS_NAME=record.processName,
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
            )
            if record.exc_text:
                fields["EXCEPTION_TEXT"] = record.exc_text
            elif record.exc_info:
                fields["EXCEPTION_TEXT"] = "".join(traceback.format_exception(*record.exc_info))
            for key, value in record.__dict__.items():
                if key.isupper() and value is not None:
                    fields[key] = value
            self._send(message, **fields)
        except Exception:
            self.handleError(record)
