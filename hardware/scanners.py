"""Text sources that push ``Scan`` / ``ScanFault`` events: serial, HID, stdin and a script twin.

``SerialScanner`` and ``HidScanner`` live in their own modules and are
re-exported here. ``StdinScanner`` reads lines typed into a terminal (or
piped in), ``ScriptScanner`` is the simulated twin used by ``kiosk demo`` and
tests: ``feed(text)`` produces a scan at once.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from hardware.hid_scanner import HidScanner
from hardware.reader_thread import ReaderThread
from hardware.serial_scanner import LineFramer, SerialScanner, check_line
from kiosk.events import Scan, ScanFault

__all__ = ["HidScanner", "ScriptScanner", "SerialScanner", "StdinScanner", "check_line"]

log = logging.getLogger(__name__)

_POLL = 0.2


class StdinScanner(ReaderThread):
    """Reads one code per line from *stream* (default ``sys.stdin``) on its own thread.

    Lines are checked like serial lines (``too_long``, ``binary``,
    ``not_utf8``). A stream with a file descriptor is polled so that ``stop``
    is never stuck behind a blocking read; end of input ends the thread.
    """

    def __init__(
        self,
        on_event: Callable[[Scan | ScanFault], None],
        *,
        stream: TextIO | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stdin
        self._on_event = on_event
        self._framer = LineFramer("stdin", line_timeout=3600.0)
        super().__init__("stdin-scanner", "stdin reader")
        self.finished = threading.Event()

    def _run(self) -> None:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        try:
            if fd is None:
                self._read_lines()
            else:
                self._read_fd(fd)
        finally:
            self.finished.set()

    def _read_lines(self) -> None:
        for line in self._stream:
            if self._stopping.is_set():
                return
            self._deliver(line.encode("utf-8", "surrogateescape"))
        self._deliver(b"\n")  # a last line without a newline still counts

    def _read_fd(self, fd: int) -> None:
        while not self._stopping.is_set():
            ready, _, _ = select.select([fd], [], [], _POLL)
            if not ready:
                continue
            data = os.read(fd, 4096)
            if not data:
                self._deliver(b"\n")
                return
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        for event in self._framer.feed(data, time.monotonic()):
            self._on_event(event)


class ScriptScanner:
    """The simulated scanner: ``feed(text)`` reports ``Scan(text, "script", now)`` at once."""

    def __init__(self, on_event: Callable[[Scan | ScanFault], None]) -> None:
        self._on_event = on_event

    def feed(self, text: str) -> None:
        """Report *text* as scanned now, on the caller's thread."""
        self._on_event(Scan(text, "script", time.monotonic()))

    def start(self) -> None:
        """Nothing to start."""

    def stop(self, timeout: float = 2.0) -> None:
        """Nothing to stop."""
