"""``kiosk run``: build real hardware from the config, run the counter, stop cleanly.

The composition root (R1, R9): the only place that builds real drivers. It
starts components in dependency order — display, indicators, counter (journal
and engine), sources, buttons — tells systemd READY=1, pings the watchdog
only while everything is healthy, and on SIGTERM/SIGINT unwinds in reverse:
sources first, the scan in hand finishes, the display is left showing an
out-of-service screen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.counter import Counter
from kiosk.errors import HardwareError, KioskError
from kiosk.events import ScanFault
from kiosk.metrics import KioskMetrics, writer_for

log = logging.getLogger("kiosk.service")

STATUS_EVERY_S = 5.0
SOURCE_STALL_S = 10.0


class _Source:
    """A started input source with a health check for the watchdog."""

    def __init__(self, name: str, obj: Any, health: Callable[[float], str | None]) -> None:
        self.name, self.obj, self.health = name, obj, health


def build_source(
    cfg: Config, on_event: Callable[[Any], None], timed: Callable[[Any], Any] = lambda d: d
) -> _Source:
    """The configured scanner or camera, started. Raises HardwareError or DecoderError.

    *timed* wraps the camera's decoder (decode-time metrics)."""
    sc = cfg.scanner
    if sc.source == "serial":
        from hardware.serial_scanner import SerialScanner

        serial_scanner = SerialScanner(
            sc.port, baud=sc.baud, line_timeout=sc.line_timeout, on_event=on_event
        )
        serial_scanner.start()
        return _Source("serial", serial_scanner, lambda now: None)
    if sc.source in ("camera", "replay"):
        from hardware.camera import CameraReader, PiCameraSource, ReplaySource
        from kiosk.decode import make_decoder

        decoder = timed(make_decoder(sc.decoder))
        camera: Any
        if sc.source == "replay":
            try:
                camera = ReplaySource(Path(cfg.camera.replay_dir), fps=cfg.camera.fps, loop=True)
            except (OSError, ValueError) as exc:
                raise HardwareError(f"camera.replay_dir: {exc}") from exc
        else:
            camera = PiCameraSource(cfg.camera)
        reader = CameraReader(camera, decoder, on_event, idle_threshold=cfg.camera.idle_threshold)
        reader.start()

        def camera_health(now: float) -> str | None:
            last = reader.last_frame_at
            if last is None or now - last > SOURCE_STALL_S:
                return "camera delivers no frames"
            return None

        return _Source("camera", _Both(reader, camera), camera_health)
    if sc.source == "hid":
        from hardware.hid_scanner import HidScanner

        hid = HidScanner(sc.hid_device, layout=sc.hid_layout, on_event=on_event)
        hid.start()
        return _Source("hid", hid, lambda now: None)
    from hardware.scanners import StdinScanner

    stdin = StdinScanner(on_event=on_event)
    stdin.start()
    return _Source("stdin", stdin, lambda now: None)


class _Both:
    """Stops the camera reader, then closes the camera."""

    def __init__(self, reader: Any, camera: Any) -> None:
        self.reader, self.camera = reader, camera

    def stop(self, timeout: float = 2.0) -> None:
        try:
            self.reader.stop(timeout)
        finally:
            self.camera.close()


class _SourceSlot:
    """The input source; when it cannot be opened the kiosk keeps running and retries."""

    RETRY_S = 10.0

    def __init__(
        self,
        cfg: Config,
        on_event: Callable[[Any], None],
        timed: Callable[[Any], Any] = lambda d: d,
    ) -> None:
        self._cfg = cfg
        self._on_event = on_event
        self._timed = timed
        self.source: _Source | None = None
        self._next_try = 0.0
        self._failed = False

    def ensure(self, now: float) -> None:
        if self.source is not None or now < self._next_try:
            return
        self._next_try = now + self.RETRY_S
        try:
            self.source = build_source(self._cfg, self._on_event, self._timed)
        except KioskError as exc:
            log.error(
                "%s source unavailable (retrying every %.0f s): %s",
                self._cfg.scanner.source,
                self.RETRY_S,
                exc,
            )
            self._on_event(ScanFault(self._cfg.scanner.source, "unplugged", now, str(exc)))
            self._failed = True
            return
        if self._failed:
            self._on_event(ScanFault(self._cfg.scanner.source, "replugged", now))
            self._failed = False
        log.info("%s source started", self.source.name)

    def health(self, now: float) -> str | None:
        return None if self.source is None else self.source.health(now)

    def stop(self) -> None:
        if self.source is not None:
            self.source.obj.stop()
            self.source = None


def _display(cfg: Config) -> Any:
    from hardware.display import Display, make_device

    try:
        device = make_device(cfg.display)
    except HardwareError as exc:
        log.error("display unavailable, running without it: %s", exc)
        device = make_device(replace(cfg.display, driver="none"))
    return Display(device=device, contrast=cfg.display.contrast)


def _indicators(cfg: Config) -> Any:
    from hardware.signals import Indicators

    try:
        return Indicators(cfg.signals)
    except Exception as exc:  # gpiozero raises many kinds; run without them
        log.error("LED/buzzer unavailable, running without them: %s", exc)
        return Indicators(replace(cfg.signals, led_pin=-1, rgb_pins=(), buzzer_pin=-1))


def run(cfg: Config, *, stop: threading.Event | None = None) -> int:
    """Run the kiosk until SIGTERM/SIGINT (or *stop* is set). Returns the exit status.

    A missing display, LED, buzzer or scanner does not stop the kiosk: it logs
    the fault, shows what it can, and retries the scanner, so that systemd
    never has to restart it in a loop.
    """
    from hardware.signals import Buttons
    from kiosk.notify import Notifier, Watchdog

    stop = stop or threading.Event()
    _install_signal_handlers(stop)
    notifier = Notifier()
    with ExitStack() as stack:
        display = _display(cfg)
        stack.callback(display.close)
        indicators = _indicators(cfg)
        stack.callback(indicators.close)
        s = cfg.signals
        has_buttons = min(s.button_up, s.button_down, s.button_ok) >= 0
        metrics = KioskMetrics.from_config(cfg)
        counter = Counter(
            cfg,
            display=display,
            indicators=indicators,
            has_buttons=has_buttons,
            on_outcome=metrics.scan_finished,
        )
        writer = writer_for(cfg.metrics, metrics, lambda: counter.engine.online)
        stack.callback(writer.stop)  # after the counter's stop: the last write sees its last scan
        stack.callback(counter.stop)
        counter.start()
        writer.start()
        slot = _SourceSlot(cfg, metrics.watch_scans(counter.submit), metrics.timed_decoder)
        stack.callback(slot.stop)
        slot.ensure(time.monotonic())
        if s.button_ok >= 0:
            try:
                buttons = Buttons(cfg.signals, on_event=counter.submit)
                stack.callback(buttons.close)
            except Exception as exc:  # run without buttons
                log.error("buttons unavailable: %s", exc)

        watchdog = Watchdog(
            notifier,
            [lambda: counter.healthy(time.monotonic()), lambda: slot.health(time.monotonic())],
        )
        _return_freed_memory()
        notifier.ready(counter.status_text())
        log.info(
            "kiosk %s ready: source %s, venue %s",
            cfg.device.id,
            cfg.scanner.source,
            cfg.device.venue,
        )
        last_status = ""
        next_status = 0.0
        while not stop.is_set():
            now = time.monotonic()
            slot.ensure(now)
            watchdog.tick(now)
            if now >= next_status:
                text = counter.status_text()
                if text != last_status:
                    notifier.status(text)
                    last_status = text
                next_status = now + STATUS_EVERY_S
            stop.wait(1.0)
        notifier.stopping()
        log.info("stopping: finishing the scan in hand")
    return 0


def _return_freed_memory() -> None:
    """Give the memory freed while importing and starting back to the system (glibc).

    Start-up allocates and frees many small objects; without a trim the freed
    pages stay in the process's heap and count in its RSS all day.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
