"""The counter: engine, sync worker and presentation wired together from a Config.

Used by ``kiosk run`` (real hardware, built in :mod:`kiosk.service`) and by
``kiosk demo`` (simulated hardware): both run exactly this code. The caller
passes the display and indicators (R1); sources are attached with
``counter.submit`` as their ``on_event``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from kiosk import __version__
from kiosk.clock import kernel_clock_synced
from kiosk.config import Config
from kiosk.errors import HardwareError
from kiosk.flows.context import FlowContext, KeyStore, VenueCache, default_client, open_context
from kiosk.flows.engine import Engine
from kiosk.flows.health import Reachability
from kiosk.flows.sync_worker import SyncWorker
from kiosk.flows.wiring import EngineSettings
from kiosk.source_kinds import event_source
from kiosk.views import Checking, Outcome, OutOfService, TechInfo, View

if TYPE_CHECKING:
    from kiosk.backend.client import BackendClient

log = logging.getLogger("kiosk.counter")


class Panel(Protocol):
    def show(self, image: Any) -> None: ...
    def dim(self, dimmed: bool) -> None: ...


class PanelScreen:
    """The engine's screen on the panel: renders each view in the configured language and
    hands the finished frame to the display (the engine's presenter decides what to show)."""

    def __init__(
        self, display: Panel, lang: str, *, on_view: Callable[[View], None] | None = None
    ) -> None:
        self._display = display
        self._lang = lang
        self._on_view = on_view
        self.last_view: View | None = None
        # The "checking" screens never change: drawn once, they are the first feedback
        # of every scan and are shown without drawing again.
        self._drawn: dict[Checking, Any] = {}

    def show(self, view: View) -> None:
        from kiosk import screens

        self.last_view = view
        if isinstance(view, Checking):
            image = self._drawn.get(view)
            if image is None:
                image = self._drawn[view] = screens.render(view, self._lang)
        else:
            image = screens.render(view, self._lang)
        self._display.show(image)
        if self._on_view is not None:
            self._on_view(view)

    def dim(self, dimmed: bool) -> None:
        self._display.dim(dimmed)


class Counter:
    """Owns the engine and sync threads; start() then stop() (idempotent)."""

    def __init__(
        self,
        cfg: Config,
        *,
        display: Panel,
        indicators: Any,
        has_buttons: bool,
        client_factory: Callable[[Config], BackendClient] = default_client,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        clock_synced: Callable[[], bool] = kernel_clock_synced,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_answered: Callable[[float], None] | None = None,
        on_view: Callable[[View], None] | None = None,
        sync_interval: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self._client_factory = client_factory
        self._clock = clock
        self._monotonic = monotonic
        self._clock_synced = clock_synced
        self.keys = KeyStore()
        self.venue = VenueCache()
        self.health = Reachability()
        self.screen = PanelScreen(display, cfg.display.language, on_view=on_view)
        self.sync = SyncWorker(
            lambda: self.open_context(recover=False),
            interval=sync_interval,
            monotonic=monotonic,
            on_damaged=lambda: self.engine.journal_damaged(),
        )
        settings = EngineSettings(
            result_seconds=cfg.display.result_seconds,
            dim_after=cfg.display.dim_after,
            has_buttons=has_buttons,
            repeat_windows=(("camera", cfg.scanner.repeat_window_camera),),
            default_repeat_window=cfg.scanner.repeat_window_scanner,
            sources=tuple(event_source(name) for name in cfg.scanner.sources),
            tech_info=self.tech_info,
        )
        self.engine = Engine(
            self.open_context,
            screen=self.screen,
            signals=indicators,
            settings=settings,
            on_outcome=on_outcome,
            on_answered=on_answered,
            monotonic=monotonic,
        )
        self._started = False

    def open_context(self, recover: bool = True) -> FlowContext:
        """A journal connection and backend client for the calling thread.

        Only the engine opens with *recover* (mends a damaged journal); the
        sync worker waits for it.
        """
        return open_context(
            self.cfg,
            client_factory=self._client_factory,
            keys=self.keys,
            venue=self.venue,
            health=self.health,
            clock=self._clock,
            monotonic=self._monotonic,
            clock_synced=self._clock_synced,
            wake_sync=self.sync.wake,
            recover=recover,
        )

    def submit(self, event: Any) -> None:
        self.engine.submit(event)

    def start(self, timeout: float = 10.0) -> None:
        """Start the engine (journal opened, ready screen shown), then the sync worker."""
        self.engine.start()
        self.engine.started.wait(timeout)
        self.sync.start()
        self._started = True

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the scan in hand, stop both threads, leave an out-of-service screen."""
        if not self._started:
            return
        self._started = False
        self.engine.stop(timeout)
        self.sync.stop(timeout / 2)
        try:
            self.screen.show(OutOfService())
        except HardwareError as exc:
            log.warning("display: %s", exc)

    def healthy(self, now: float, max_stall: float = 30.0) -> str | None:
        """None while every worker's loop turns; else what is wrong (for the watchdog).

        *now* is on the counter's monotonic clock.
        """
        if self.engine.heartbeat is None:
            return "engine loop stalled"
        for worker in (self.engine, self.sync):
            problem = worker.stalled(now, max_stall)
            if problem is not None:
                return problem
        return None

    def status_text(self) -> str:
        state = "online" if self.engine.online else "offline"
        return f"{state}, {self.engine.pending} pending upload(s)"

    def tech_info(self) -> TechInfo:
        return TechInfo(
            device_id=self.cfg.device.id,
            ip_address=local_ip(self.cfg.backend.url),
            version=__version__,
            pending=self.engine.pending,
            online=self.engine.online,
            venue=self.venue.name or self.cfg.device.venue,
            quarantined=self.sync.quarantined,
        )


def local_ip(url: str) -> str:
    """The address this kiosk uses towards the backend (no packet is sent)."""
    host = urlsplit(url).hostname or "192.0.2.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host if host != "localhost" else "127.0.0.1", 9))
            return str(s.getsockname()[0])
    except OSError:
        return "-"
