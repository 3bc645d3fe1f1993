"""``kiosk run``: build real hardware from the config, run the counter, stop cleanly.

The composition root (R1, R9): the only place that builds real drivers. It
starts components in dependency order — display, indicators, counter (journal
and engine), sources, buttons — tells systemd READY=1, pings the watchdog
only while everything is healthy, and on SIGTERM/SIGINT unwinds in reverse:
sources first, the scan in hand finishes, the display is left showing an
out-of-service screen.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from kiosk.config import Config
from kiosk.counter import Counter
from kiosk.errors import HardwareError, KioskError
from kiosk.events import ScanFault
from kiosk.libc import return_freed_memory
from kiosk.metrics import KioskMetrics, writer_for
from kiosk.source_kinds import SourceKind, event_source
from kiosk.source_states import SourceReport
from kiosk.sources import RunningSource, spec

log = logging.getLogger("kiosk.service")

STATUS_EVERY_S = 5.0
START_WAIT_S = 60.0  # beyond Counter.start's own wait, within systemd's TimeoutStartSec
EXIT_NOT_READY = 3  # the engine could not open its journal (or backend client): no READY=1


def build_source(
    cfg: Config,
    on_event: Callable[[Any], None],
    timed: Callable[[Any], Any] = lambda d: d,
    kind: SourceKind | None = None,
) -> RunningSource:
    """Source *kind* (default: the first of ``[scanner] source``), started by its builder
    (:func:`kiosk.sources.spec`). Raises HardwareError or DecoderError. *timed* wraps the
    camera's decoder (decode-time metrics)."""
    kind = SourceKind(kind or cfg.scanner.source)
    return spec(kind).build(cfg, on_event, timed)


class _SourceSlot:
    """One configured source; when it cannot be opened the kiosk keeps running and retries."""

    RETRY_S = 10.0

    def __init__(
        self,
        cfg: Config,
        on_event: Callable[[Any], None],
        timed: Callable[[Any], Any] = lambda d: d,
        kind: SourceKind | None = None,
    ) -> None:
        self._cfg = cfg
        self.name = SourceKind(kind or cfg.scanner.source)
        self._on_event = on_event
        self._timed = timed
        self.source: RunningSource | None = None
        self._next_try = 0.0
        self._failed = False
        self._error = ""

    def ensure(self, now: float) -> None:
        if self.source is not None or now < self._next_try:
            return
        self._next_try = now + self.RETRY_S
        events = event_source(self.name)
        try:
            self.source = build_source(self._cfg, self._on_event, self._timed, self.name)
        except KioskError as exc:
            log.error(
                "%s source unavailable (retrying every %.0f s): %s", self.name, self.RETRY_S, exc
            )
            self._on_event(ScanFault(events, "unplugged", now, str(exc)))
            self._failed, self._error = True, str(exc)
            return
        if self._failed:
            self._on_event(ScanFault(events, "replugged", now))
            self._failed, self._error = False, ""
        log.info("%s source started", self.name)

    def health(self, now: float) -> str | None:
        return None if self.source is None else self.source.health(now)

    def problem(self, now: float) -> str | None:
        """None while the source can read codes; else why not."""
        if self.source is None:
            return self._error or "not started"
        return self.source.problem(now)

    def stop(self) -> None:
        if self.source is not None:
            self.source.stop()
            self.source = None


class SourceSlots:
    """Every configured source, each in its own slot, all feeding the same *on_event*.

    One source failing (a scanner unplugged, a camera that cannot be opened)
    never stops the others; each one is retried on its own.
    """

    def __init__(
        self,
        cfg: Config,
        on_event: Callable[[Any], None],
        timed: Callable[[Any], Any] = lambda d: d,
    ) -> None:
        self.slots = [_SourceSlot(cfg, on_event, timed, kind) for kind in cfg.scanner.sources]

    def ensure(self, now: float) -> None:
        for slot in self.slots:
            slot.ensure(now)

    def health(self, now: float) -> str | None:
        problems = [p for p in (slot.health(now) for slot in self.slots) if p is not None]
        return "; ".join(problems) or None

    def states(self, now: float) -> list[dict[str, Any]]:
        """``[{"name", "ok", "detail"}]``, one per source, in the configured order."""
        out = []
        for slot in self.slots:
            problem = slot.problem(now)
            out.append({"name": slot.name, "ok": problem is None, "detail": problem or ""})
        return out

    def stop(self) -> None:
        for slot in reversed(self.slots):
            try:
                slot.stop()
            except Exception as exc:  # one source failing to stop must not keep the others
                log.warning("%s source did not stop cleanly: %s", slot.name, exc)


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
    never has to restart it in a loop. A journal that cannot be opened (a newer
    schema, a read-only or foreign file) does: the kiosk then never reports
    READY=1 and ends with :data:`EXIT_NOT_READY`, so that systemd and an update
    waiting for the service see the failure.
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
            on_answered=metrics.scan_answered,
        )
        writer = writer_for(cfg.metrics, metrics, lambda: counter.engine.online)
        stack.callback(writer.stop)  # after the counter's stop: the last write sees its last scan
        stack.callback(counter.stop)
        counter.start()
        if not counter.engine.started.wait(START_WAIT_S):  # a large journal's check
            log.warning("the engine is still opening its journal")
        broken = counter.engine.broken
        if broken is not None:
            # No READY=1: systemd (and an update waiting for it) must see that this kiosk
            # cannot work, rather than a service that only beeps errors.
            log.error("kiosk cannot start: %s; not reporting ready", broken)
            notifier.status(f"failed: {broken}")
            return EXIT_NOT_READY
        writer.start()
        sources = SourceSlots(cfg, counter.submit, metrics.timed_decoder)
        stack.callback(sources.stop)
        sources.ensure(time.monotonic())
        reporter = SourceReport(cfg)
        stack.callback(reporter.close)
        if s.button_ok >= 0:
            try:
                buttons = Buttons(cfg.signals, on_event=counter.submit)
                stack.callback(buttons.close)
            except Exception as exc:  # run without buttons
                log.error("buttons unavailable: %s", exc)

        watchdog = Watchdog(
            notifier,
            [lambda: counter.healthy(time.monotonic()), lambda: sources.health(time.monotonic())],
        )
        return_freed_memory()  # start-up allocated and freed a great deal
        notifier.ready(counter.status_text())
        log.info(
            "kiosk %s ready: source %s, venue %s",
            cfg.device.id,
            ", ".join(cfg.scanner.sources),
            cfg.device.venue,
        )
        last_status = ""
        next_status = 0.0
        while not stop.is_set():
            now = time.monotonic()
            sources.ensure(now)
            reporter.report(sources.states(now))
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


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
