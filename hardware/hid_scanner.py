"""Keyboard-wedge (HID) barcode scanners through evdev (extra ``hid``).

The device is grabbed exclusively so the typed codes never reach a console or
another program. Key events go through ``hardware.keymaps.KeyParser`` for the
configured layout; Enter ends a code. Lines are checked like serial lines
(``too_long``, ``binary``) and keys typed without an Enter for
``line_timeout`` seconds are dropped with ``ScanFault("partial")``. A vanished
device gives ``ScanFault("unplugged")``, is reopened with growing pauses and
gives ``ScanFault("replugged")`` when back.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Any

from hardware.keymaps import KeyParser
from hardware.reader_thread import ReaderThread
from hardware.serial_scanner import check_line
from kiosk.errors import DeviceNotFound
from kiosk.events import Scan, ScanFault

__all__ = ["HidScanner"]

log = logging.getLogger(__name__)

EV_KEY = 1
_POLL = 0.1
_BACKOFF_FIRST, _BACKOFF_MAX = 0.2, 5.0


def _import_evdev() -> Any:
    try:
        import evdev  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DeviceNotFound(
            "evdev is not installed; install the kiosk with the 'hid' extra "
            "(pip install 'smartum-kiosk[hid]') or use [scanner] source = \"serial\""
        ) from exc
    return evdev


class HidScanner(ReaderThread):
    """Reads codes typed by a keyboard-wedge scanner at *device* (an event node path).

    *evdev_module* is the evdev module or a stand-in with ``InputDevice``;
    imported on ``start`` by default (raises DeviceNotFound if missing).
    ``on_event`` is called on the reader thread and must only enqueue.
    """

    def __init__(
        self,
        device: str,
        *,
        layout: str = "us",
        on_event: Callable[[Scan | ScanFault], None],
        evdev_module: object | None = None,
        line_timeout: float = 0.5,
    ) -> None:
        self.device = device
        self._parser = KeyParser(layout)
        self._on_event = on_event
        self._evdev: Any = evdev_module
        self._line_timeout = line_timeout
        super().__init__("hid-scanner", f"HID scanner on {device}")
        self._down = False
        self._last_key_at = 0.0
        self.connected = False
        self.last_seen_at: float | None = None

    def start(self) -> None:
        """Start the reader thread. Raises DeviceNotFound when evdev is not installed."""
        if self._evdev is None:
            self._evdev = _import_evdev()
        super().start()

    def _run(self) -> None:
        dev: Any = None
        backoff = _BACKOFF_FIRST
        try:
            while not self._stopping.is_set():
                if dev is None:
                    dev = self._open()
                    if dev is None:
                        self._stopping.wait(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX)
                        continue
                    backoff = _BACKOFF_FIRST
                try:
                    ready, _, _ = select.select([dev.fd], [], [], _POLL)
                    events = list(dev.read()) if ready else []
                except BlockingIOError:
                    events = []
                except OSError as exc:
                    _release(dev)
                    dev = None
                    self._went_away(f"read failed: {exc}")
                    continue
                self._handle(events, time.monotonic())
        finally:
            if dev is not None:
                _release(dev)
            self.connected = False

    def _handle(self, events: list[Any], now: float) -> None:
        for event in events:
            if event.type != EV_KEY:
                continue
            self._last_key_at = now
            self.last_seen_at = now
            line = self._parser.feed(event.code, event.value)
            if line:
                checked = check_line(line.encode("utf-8"))
                if isinstance(checked, str):
                    self._on_event(Scan(checked, "hid", now))
                else:
                    log.warning("HID scanner: rejected input: %s (%s)", *checked)
                    self._on_event(ScanFault("hid", checked[0], now, checked[1]))
        if self._parser.pending and now - self._last_key_at >= self._line_timeout:
            self._parser.reset()
            log.warning("HID scanner: keys without Enter dropped")
            self._on_event(ScanFault("hid", "partial", now, "no Enter after the typed keys"))

    def _open(self) -> Any:
        try:
            dev = self._evdev.InputDevice(self.device)
            dev.grab()
        except OSError as exc:
            hint = " (add the kiosk user to the 'input' group)" if exc.errno == 13 else ""
            self._went_away(f"cannot open {self.device}: {exc}{hint}")
            return None
        self.connected = True
        self._parser.reset()
        if self._down:
            self._down = False
            log.info("HID scanner on %s is back", self.device)
            self._on_event(ScanFault("hid", "replugged", time.monotonic()))
        return dev

    def _went_away(self, detail: str) -> None:
        self.connected = False
        if not self._down:
            self._down = True
            log.error("HID scanner: %s; retrying until it returns", detail)
            self._on_event(ScanFault("hid", "unplugged", time.monotonic(), detail))


def _release(dev: Any) -> None:
    for action in (dev.ungrab, dev.close):
        try:
            action()
        except OSError as exc:  # the device may already be gone
            log.debug("releasing HID device: %s", exc)
