"""Serial barcode scanners (USB-CDC ``/dev/ttyACM*``, RS-232) via pyserial, and line framing.

A code is the bytes up to CR, LF or CRLF (empty lines are ignored). Every
line is checked before it becomes a ``Scan``; a rejected one becomes a
``ScanFault`` and a log entry, never an exception:

- ``too_long``: more than 4096 bytes (the rest up to the next terminator is discarded);
- ``binary``: control characters other than TAB (NUL, ESC, DEL, C1 ...);
- ``not_utf8``: bytes that are not UTF-8;
- ``partial``: bytes with no terminator for ``line_timeout`` seconds are
  dropped (a scanner must be set to send a CR or LF suffix; a half line is
  never guessed to be a whole code). Only time in which the port was seen
  quiet counts: a reader held up by a busy CPU does not drop a line whose
  rest arrived meanwhile.

The port is opened for this reader alone (an exclusive lock): two readers of
one port would each take some of its bytes, splitting or losing codes, and
opening a port flushes its input. A second reader, such as ``kiosk selftest``
while the service runs, is refused and told the port is in use.

Unplugging (a read error, or the device node vanishing) gives
``ScanFault("unplugged")``; the port is then reopened with growing pauses
(0.2 s up to 5 s) and ``ScanFault("replugged")`` follows when it is back.
A port that cannot be opened at start is reported the same way. udev's
``/dev/kiosk-scanner`` symlink (``config/99-kiosk-scanner.rules``) keeps the
path stable across replugs.
"""

from __future__ import annotations

import errno
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from hardware.reader_thread import ReaderThread
from kiosk.events import Scan, ScanFault

__all__ = ["IN_USE", "MAX_LINE_BYTES", "LineFramer", "SerialScanner", "check_line"]

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4096
IN_USE = "in use by another program: only one may read a scanner"
_TERMINATOR = re.compile(rb"[\r\n]")
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # CR/LF never reach here; TAB is allowed
_C1 = re.compile("[\x80-\x9f]")
_BACKOFF_FIRST, _BACKOFF_MAX = 0.2, 5.0


def check_line(line: bytes) -> str | tuple[str, str]:
    """The text of one terminator-free line, or (reason, detail) if it must be rejected."""
    if len(line) > MAX_LINE_BYTES:
        return "too_long", f"{len(line)} bytes, at most {MAX_LINE_BYTES}"
    junk = _CONTROL.search(line)
    if junk:
        return "binary", f"control byte 0x{line[junk.start()]:02x} at {junk.start()}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "not_utf8", f"invalid byte at {exc.start} of {len(line)}"
    c1 = _C1.search(text)
    if c1:
        return "binary", f"control character U+{ord(c1.group()):04X}"
    return text


class LineFramer:
    """Turns a byte stream into Scan / ScanFault events for *source*. Not thread-safe."""

    def __init__(self, source: str, line_timeout: float) -> None:
        self.source = source
        self.line_timeout = line_timeout
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line, until its terminator
        self._last_at = 0.0

    def feed(self, data: bytes, now: float) -> list[Scan | ScanFault]:
        """Events for the complete lines that *data* finishes, in order."""
        events: list[Scan | ScanFault] = []
        if data:
            self._last_at = now
        pos = 0
        while pos < len(data):
            end = _TERMINATOR.search(data, pos)
            chunk = data[pos : end.start() if end else len(data)]
            if not self._discarding:
                self._buf += chunk
                if len(self._buf) > MAX_LINE_BYTES:
                    events.append(self._reject("too_long", f"over {MAX_LINE_BYTES} bytes", now))
                    self._buf.clear()
                    self._discarding = True
            if end is None:
                break
            if not self._discarding and self._buf:
                events.append(self._event(bytes(self._buf), now))
            self._buf.clear()
            self._discarding = False
            pos = end.end()
        return events

    def expire(self, now: float) -> ScanFault | None:
        """Drop a partial line idle for ``line_timeout``; a ScanFault("partial") if one was."""
        if not (self._buf or self._discarding) or now - self._last_at < self.line_timeout:
            return None
        size, was_discarding = len(self._buf), self._discarding
        self.reset()
        if was_discarding:
            return None  # already reported as too_long
        return self._reject(
            "partial", f"{size} bytes without CR/LF within {self.line_timeout} s", now
        )

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def _event(self, line: bytes, now: float) -> Scan | ScanFault:
        checked = check_line(line)
        if isinstance(checked, str):
            return Scan(checked, self.source, now)
        return self._reject(checked[0], checked[1], now)

    def _reject(self, reason: str, detail: str, now: float) -> ScanFault:
        log.warning("%s scanner: rejected input: %s (%s)", self.source, reason, detail)
        return ScanFault(self.source, reason, now, detail)


def _default_factory(port: str, **kwargs: Any) -> Any:
    import serial

    return serial.serial_for_url(port, **kwargs)


class SerialScanner(ReaderThread):
    """Reads codes from a serial port on its own thread; faults become ScanFault events.

    *port* is a device path or a pyserial URL. *serial_factory(port, baudrate=,
    timeout=, exclusive=)* opens it (default ``serial.serial_for_url``). ``on_event`` is
    called on the reader thread and must only enqueue.
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 9600,
        line_timeout: float = 0.5,
        on_event: Callable[[Scan | ScanFault], None],
        serial_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self._framer = LineFramer("serial", line_timeout)
        self._on_event = on_event
        self._factory = serial_factory or _default_factory
        self._poll = min(0.1, line_timeout / 2)
        super().__init__("serial-scanner", f"serial scanner on {port}")
        self._down = False  # an "unplugged" fault was sent and no "replugged" yet
        self.connected = False
        self.last_seen_at: float | None = None

    def _run(self) -> None:
        port: Any = None
        backoff = _BACKOFF_FIRST
        try:
            while not self._stopping.is_set():
                if port is None:
                    port = self._open()
                    if port is None:
                        self._stopping.wait(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                        continue
                    backoff = _BACKOFF_FIRST
                quiet_since = time.monotonic()  # an empty read: nothing came up to here
                try:
                    data = port.read(port.in_waiting or 1)
                except Exception as exc:  # pyserial raises SerialException/OSError/TypeError
                    _close_quietly(port)
                    port = None
                    self._went_away(f"read failed: {exc}")
                    continue
                if data:
                    now = time.monotonic()
                    self.last_seen_at = now
                    for event in self._framer.feed(data, now):
                        self._on_event(event)
                    continue
                # Not the time after the read: the thread may have waited for the CPU
                # since, while the rest of the line arrived.
                fault = self._framer.expire(quiet_since)
                if fault is not None:
                    self._on_event(fault)
        finally:
            if port is not None:
                _close_quietly(port)
            self.connected = False

    def _open(self) -> Any:
        try:
            port = self._factory(self.port, baudrate=self.baud, timeout=self._poll, exclusive=True)
        except Exception as exc:
            self._went_away(f"cannot open {self.port}: {_hint(exc)}")
            return None
        self.connected = True
        if self._down:
            self._down = False
            log.info("serial scanner on %s is back", self.port)
            self._on_event(ScanFault("serial", "replugged", time.monotonic()))
        return port

    def _went_away(self, detail: str) -> None:
        self.connected = False
        self._framer.reset()
        if not self._down:
            self._down = True
            log.error("serial scanner: %s; retrying until it returns", detail)
            self._on_event(ScanFault("serial", "unplugged", time.monotonic(), detail))


def _hint(exc: BaseException) -> str:
    text = str(exc)
    if getattr(exc, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
        return f"{text} ({IN_USE})"
    if "Permission denied" in text or isinstance(exc, PermissionError):
        return f"{text} (add the kiosk user to the 'dialout' group)"
    if "No such file" in text or isinstance(exc, FileNotFoundError):
        return f"{text} (scanner unplugged or wrong [scanner] port)"
    return text


def _close_quietly(port: Any) -> None:
    try:
        port.close()
    except Exception as exc:  # closing a vanished device may fail; nothing left to do
        log.debug("closing serial port: %s", exc)
