"""The engine: the one thread that turns scans and presses into outcomes on the screen.

Sources push events into a bounded inbox (:meth:`Engine.submit`); the engine
thread is the inbox's only consumer and the only thread that touches its
journal connection, its backend client, the display and the indicators. It
handles one scan at a time; scans that queued up while it was busy are
dropped in favour of the newest one (presses are kept).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, assert_never

from kiosk.errors import HardwareError, JournalError, JournalFull, KioskError
from kiosk.events import Event, Press, Scan, ScanFault
from kiosk.flows import payment
from kiosk.flows.context import UNKNOWN_KID_REFRESH_S, FlowContext
from kiosk.flows.receipt import check_receipt
from kiosk.flows.repeats import RepeatFilter
from kiosk.tokens import BareCode, Paycode, Receipt, Scanned, Unrecognised, classify
from kiosk.views import (
    Alarm,
    CancelConfirm,
    Checking,
    ConfirmCharge,
    Outcome,
    Ready,
    Result,
    Service,
    ServiceMenu,
    TechInfo,
    View,
)
from kiosk.vocabulary import RequestKind, TokenKind, Word

log = logging.getLogger("kiosk.engine")

MENU_TIMEOUT_S = 60.0
INBOX_SIZE = 32


class Screen(Protocol):
    def show(self, view: View) -> None: ...
    def dim(self, dimmed: bool) -> None: ...


class Signals(Protocol):
    def signal(self, kind: str) -> None: ...


@dataclass
class _Mode:
    name: str = "ready"  # ready | result | menu | confirm | cancel_confirm | tech | alarm
    until: float = 0.0
    code: Paycode | BareCode | None = None
    services: tuple[Service, ...] = ()
    selected: int = 0
    tx: str = ""
    amount: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineSettings:
    result_seconds: float = 4.0
    dim_after: float = 300.0
    has_buttons: bool = False
    repeat_windows: tuple[tuple[str, float], ...] = (("camera", 5.0),)
    default_repeat_window: float = 3.0
    tech_info: Callable[[], TechInfo] | None = None


def _refusal(scanned: Unrecognised) -> tuple[Word, RequestKind]:
    """The outcome of a scan that is no usable token: an expired paycode, else invalid."""
    kind = scanned.kind
    match kind:
        case TokenKind.PAYCODE if scanned.reason == "expired":
            return Word.PAYCODE_EXPIRED, RequestKind.CHARGE
        case TokenKind.PAYCODE | TokenKind.RECEIPT | None:
            return Word.INVALID, RequestKind.RECEIPT
        case _:
            assert_never(kind)


class Engine:
    """Owns the engine thread; ``start``/``stop`` are called by the service or the demo."""

    def __init__(
        self,
        open_context: Callable[[], FlowContext],
        *,
        screen: Screen,
        signals: Signals,
        settings: EngineSettings,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._open_context = open_context
        self._screen = screen
        self._signals = signals
        self._settings = settings
        self._on_outcome = on_outcome
        self.inbox: queue.Queue[Event] = queue.Queue(maxsize=INBOX_SIZE)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._mode = _Mode()
        self._repeats = RepeatFilter(dict(settings.repeat_windows), settings.default_repeat_window)
        self._last_view: View | None = None
        self._last_activity = 0.0
        self._dimmed = False
        self._ctx: FlowContext | None = None
        self.heartbeat: float | None = None
        self.pending = 0
        self.started = threading.Event()

    # --- lifecycle (any thread) ------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kiosk-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Finish the scan in hand, then stop. Returns False if the thread outlived *timeout*."""
        self._stopping.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("engine did not stop within %.1f s", timeout)
            return False
        return True

    def submit(self, event: Event) -> None:
        """Hand an event to the engine (any thread, never blocks)."""
        try:
            self.inbox.put_nowait(event)
        except queue.Full:
            try:
                dropped = self.inbox.get_nowait()
                log.warning("inbox full: dropped the oldest event (%s)", type(dropped).__name__)
            except queue.Empty:
                pass
            self.inbox.put_nowait(event)

    @property
    def online(self) -> bool:
        return self._ctx is not None and not self._ctx.health.offline

    # --- engine thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            ctx = self._open_context()
        except KioskError as exc:
            log.error("journal or backend client unavailable: %s", exc)
            self._alarm_loop(exc)
            return
        self._ctx = ctx
        try:
            self._resume(ctx)
            self._last_activity = ctx.monotonic()
            try:
                ctx.keys.load(ctx.journal)
                ctx.venue.load(ctx.journal)
                if len(ctx.keys.keys) == 0:
                    ctx.keys.refresh(ctx.client, ctx.journal, now=ctx.clock())
                self.pending = ctx.journal.pending_count()
            except JournalError as exc:  # a full disk at start must not end the engine
                log.error("journal: %s", exc)
                self._show_alarm("journal", str(exc))
            else:
                if ctx.journal.moved_aside is not None:
                    self._show_alarm("journal", f"moved aside: {ctx.journal.moved_aside.name}")
                else:
                    self._show_ready()
            self.started.set()
            self._loop(ctx)
        finally:
            self.started.set()
            ctx.journal.close()
            ctx.client.close()

    def _resume(self, ctx: FlowContext) -> None:
        """Requests left pending by an earlier run may have reached the backend: resend only."""
        try:
            left = ctx.journal.distrust_unanswered()
        except JournalError as exc:
            log.error("journal: cannot mark requests of the last run: %s", exc)
            return
        if left:
            log.info("%d request(s) of the last run may have been sent: resend as is", left)

    def _alarm_loop(self, exc: KioskError) -> None:
        self._show(Alarm("journal", str(exc)[:60]))
        self.started.set()
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            try:
                self.inbox.get(timeout=1.0)
                self._signal("error")
            except queue.Empty:
                pass

    def _loop(self, ctx: FlowContext) -> None:
        while not self._stopping.is_set():
            self.heartbeat = ctx.monotonic()
            try:
                first = self.inbox.get(timeout=0.5)
            except queue.Empty:
                self._tick(ctx)
                continue
            for event in self._newest(first):
                try:
                    self._handle(ctx, event)
                except JournalFull as exc:
                    log.error("%s", exc)
                    self._show_alarm("disk_full", str(exc))
                except JournalError as exc:
                    log.error("journal: %s", exc)
                    self._show_alarm("journal", str(exc))
                except Exception:
                    log.exception("unexpected error while handling %s", type(event).__name__)
                    self._show_alarm("error", "internal error; see the log")
            try:
                self.pending = ctx.journal.pending_count()
            except JournalError as exc:
                log.error("journal: %s", exc)

    def _newest(self, first: Event) -> list[Event]:
        """Presses and faults in order, then only the newest scan."""
        events = [first]
        while True:
            try:
                events.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        scans = [e for e in events if isinstance(e, Scan)]
        for stale in scans[:-1]:
            log.info("skipped a stale scan from %s", stale.source)
        return [e for e in events if not isinstance(e, Scan)] + scans[-1:]

    def _tick(self, ctx: FlowContext) -> None:
        now = ctx.monotonic()
        mode = self._mode
        if mode.name in ("result", "menu", "confirm", "cancel_confirm", "tech", "alarm") and (
            now >= mode.until
        ):
            self._show_ready()
        elif mode.name == "ready":
            self._show_ready(refresh=True)
        idle = now - self._last_activity
        if (idle >= self._settings.dim_after) != self._dimmed:
            self._dimmed = not self._dimmed
            try:
                self._screen.dim(self._dimmed)
            except HardwareError as exc:
                log.warning("display: %s", exc)

    def _handle(self, ctx: FlowContext, event: Event) -> None:
        self._last_activity = ctx.monotonic()
        if self._dimmed:
            self._dimmed = False
            self._screen.dim(False)
        if isinstance(event, Scan):
            self._handle_scan(ctx, event)
        elif isinstance(event, Press):
            self._handle_press(ctx, event)
        elif isinstance(event, ScanFault):
            self._handle_fault(ctx, event)

    def _handle_scan(self, ctx: FlowContext, scan: Scan) -> None:
        if self._repeats.is_repeat(scan):
            log.debug("repeat of a recent scan ignored")
            return
        self._signal("scan")
        self._show(Checking(RequestKind.RECEIPT))
        scanned = self._classify(ctx, scan.text)
        if isinstance(scanned, Receipt):
            self._present(ctx, check_receipt(ctx, scanned))
        elif isinstance(scanned, Paycode | BareCode):
            self._start_payment(ctx, scanned)
        else:
            word, kind = _refusal(scanned)
            log.info("scan refused: %s", scanned.reason)
            self._present(ctx, ctx.record(Outcome(word, kind, reason=scanned.reason)))

    def _classify(self, ctx: FlowContext, text: str) -> Scanned:
        issuer = ctx.cfg.backend.issuer

        def run() -> Scanned:
            return classify(
                text, ctx.keys.keys, issuer, now=ctx.clock(), clock_trusted=ctx.clock_synced()
            )

        scanned = run()
        if isinstance(scanned, Unrecognised) and scanned.reason == "unknown_kid":
            # A key rotated since the last fetch? Ask again, at most once a minute.
            ctx.keys.refresh(
                ctx.client, ctx.journal, now=ctx.clock(), min_age=UNKNOWN_KID_REFRESH_S
            )
            scanned = run()
        return scanned

    def _start_payment(self, ctx: FlowContext, code: Paycode | BareCode) -> None:
        pending = payment.open_charge(ctx, code)
        if pending is not None:
            self._show(Checking(RequestKind.CHARGE))
            service = payment.service_named(ctx, str(pending.body.get("service")))
            name = service.name if service else str(pending.body.get("service"))
            self._present(ctx, payment.send_charge(ctx, pending, name))
            return
        if ctx.health.offline and not self._reachable(ctx):
            self._present(
                ctx, ctx.record(Outcome(Word.NEEDS_NETWORK, RequestKind.CHARGE, reason="offline"))
            )
            return
        if not ctx.venue.services:
            ctx.venue.refresh(ctx.client, ctx.journal, ctx.cfg.device.venue, now=ctx.clock())
        services = ctx.venue.services
        if not services:
            self._present(
                ctx,
                ctx.record(Outcome(Word.NEEDS_NETWORK, RequestKind.CHARGE, reason="no_services")),
            )
            return
        if self._settings.has_buttons:
            self._mode = _Mode(
                "menu", ctx.monotonic() + MENU_TIMEOUT_S, code=code, services=services
            )
            self._show(ServiceMenu(services, 0))
            return
        default = payment.service_named(ctx, ctx.cfg.device.default_service)
        if default is None:
            self._present(
                ctx,
                ctx.record(Outcome(Word.INVALID, RequestKind.CHARGE, reason="no_default_service")),
            )
            return
        self._charge(ctx, code, default)

    def _reachable(self, ctx: FlowContext) -> bool:
        """After an outage, a cheap probe: charges need the network, so ask it now."""
        try:
            ctx.client.fetch_jwks()
        except KioskError:
            return False
        ctx.health.success()
        return True

    def _charge(self, ctx: FlowContext, code: Paycode | BareCode, service: Service) -> None:
        self._show(Checking(RequestKind.CHARGE))
        self._present(ctx, payment.charge(ctx, code, service))

    def _handle_press(self, ctx: FlowContext, press: Press) -> None:
        mode = self._mode
        if mode.name == "menu" and mode.code is not None:
            if press.long:
                self._show_ready()
            elif press.button in ("up", "down"):
                step = 1 if press.button == "down" else -1
                mode.selected = (mode.selected + step) % len(mode.services)
                mode.until = ctx.monotonic() + MENU_TIMEOUT_S
                self._show(ServiceMenu(mode.services, mode.selected))
            elif not mode.services[mode.selected].eligible:
                self._charge(ctx, mode.code, mode.services[mode.selected])
            else:
                service = mode.services[mode.selected]
                self._mode = _Mode(
                    "confirm",
                    ctx.monotonic() + MENU_TIMEOUT_S,
                    code=mode.code,
                    services=mode.services,
                    selected=mode.selected,
                )
                self._show(ConfirmCharge(service))
        elif mode.name == "confirm" and mode.code is not None:
            if press.button == "ok" and not press.long:
                self._charge(ctx, mode.code, mode.services[mode.selected])
            else:
                self._mode = _Mode(
                    "menu",
                    ctx.monotonic() + MENU_TIMEOUT_S,
                    code=mode.code,
                    services=mode.services,
                    selected=mode.selected,
                )
                self._show(ServiceMenu(mode.services, mode.selected))
        elif mode.name == "cancel_confirm":
            if press.button == "ok" and not press.long:
                self._show(Checking(RequestKind.CANCEL))
                self._present(ctx, payment.cancel(ctx, mode.tx, "cancelled at the counter"))
            else:
                self._show_ready()
        elif press.long and press.button == "ok":
            self._offer_cancel(ctx)
        elif press.long and self._settings.tech_info is not None:
            self._mode = _Mode("tech", ctx.monotonic() + 30.0)
            self._show(self._settings.tech_info())
        else:
            self._show_ready()

    def _offer_cancel(self, ctx: FlowContext) -> None:
        last = ctx.journal.last_accepted(since=payment.start_of_day(ctx))
        if last is None or last.tx is None:
            self._present(
                ctx, Outcome(Word.INVALID, RequestKind.CANCEL, reason="nothing_to_cancel")
            )
            return
        at = datetime.fromtimestamp(last.at, ctx.tz)
        self._mode = _Mode(
            "cancel_confirm",
            ctx.monotonic() + MENU_TIMEOUT_S,
            tx=last.tx,
            amount=last.amount_cents or 0,
        )
        self._show(CancelConfirm(last.tx, last.amount_cents or 0, at))

    def _handle_fault(self, ctx: FlowContext, fault: ScanFault) -> None:
        if fault.reason == "unplugged":
            self._show_alarm("scanner", fault.detail, until=float("inf"))
        elif fault.reason == "replugged":
            self._show_ready()
        else:
            log.warning("unreadable scan from %s: %s", fault.source, fault.reason)
            self._present(
                ctx, ctx.record(Outcome(Word.INVALID, RequestKind.RECEIPT, reason=fault.reason))
            )

    # --- presentation ----------------------------------------------------------------------

    def _present(self, ctx: FlowContext, outcome: Outcome) -> None:
        self._mode = _Mode("result", ctx.monotonic() + self._settings.result_seconds)
        self._show(Result(outcome))
        if outcome.word == Word.CHECKED_OFFLINE:
            self._signal("accepted_offline")
        elif outcome.accepted:
            self._signal("accepted")
        else:
            self._signal("refused")
        log.info("outcome %s tx=%s reason=%s", outcome.word, outcome.tx, outcome.reason)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def _show_alarm(self, kind: str, detail: str, until: float | None = None) -> None:
        now = time.monotonic()
        self._mode = _Mode("alarm", until if until is not None else now + 30.0)
        self._show(Alarm(kind, detail[:60]))
        self._signal("error")

    def _show_ready(self, refresh: bool = False) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        self._mode = _Mode("ready")
        idle = ctx.monotonic() - self._last_activity
        now = datetime.fromtimestamp(ctx.clock(), ctx.tz).replace(second=0, microsecond=0)
        view = Ready(
            now=now,
            offline=ctx.health.offline,
            clock_warning=not ctx.clock_synced(),
            pending=self.pending,
            idle_seconds=float(int(idle // 60) * 60),
        )
        if not refresh or view != self._last_view:
            self._show(view)

    def _show(self, view: View) -> None:
        self._last_view = view
        try:
            self._screen.show(view)
        except HardwareError as exc:
            log.warning("display: %s", exc)

    def _signal(self, kind: str) -> None:
        try:
            self._signals.signal(kind)
        except HardwareError as exc:
            log.warning("indicators: %s", exc)
