"""The engine: the one thread that turns scans and presses into outcomes on the screen.

Sources push events into a bounded inbox (:meth:`Engine.submit`); the engine
thread is the inbox's only consumer and the only thread that touches its
journal connection, its backend client, the display and the indicators. It
handles one scan at a time; scans that queued up while it was busy are
dropped in favour of the newest one (presses are kept). What the counter is
doing between events is a :mod:`~kiosk.flows.modes` value; what a payment code
leads to is decided by :func:`kiosk.flows.payment.start`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import assert_never

from kiosk.errors import HardwareError, JournalError, JournalFull, KioskError
from kiosk.events import Event, Press, Scan, ScanFault
from kiosk.flows import modes, payment
from kiosk.flows.context import FlowContext
from kiosk.flows.outcomes import refusal
from kiosk.flows.receipt import check_receipt
from kiosk.flows.repeats import RepeatFilter
from kiosk.flows.wiring import EngineSettings, Screen, Signals
from kiosk.tokens import BareCode, Paycode, Receipt
from kiosk.venue import Service
from kiosk.views import (
    Alarm,
    CancelConfirm,
    Checking,
    ConfirmCharge,
    Outcome,
    Ready,
    Result,
    ServiceMenu,
    View,
)
from kiosk.vocabulary import RequestKind, Word
from kiosk.worker import Worker

log = logging.getLogger("kiosk.engine")

MENU_TIMEOUT_S = 60.0
TECH_SCREEN_S = 30.0
ALARM_S = 30.0
INBOX_SIZE = 32


class Engine(Worker):
    """Owns the engine thread; ``start``/``stop`` are called by the counter.

    ``monotonic`` is the clock of timeouts, heartbeats and repeat windows; the
    flow context of the thread uses the same one.
    """

    def __init__(
        self,
        open_context: Callable[[], FlowContext],
        *,
        screen: Screen,
        signals: Signals,
        settings: EngineSettings,
        on_outcome: Callable[[Outcome], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("kiosk-engine", monotonic=monotonic)
        self._open_context = open_context
        self._screen = screen
        self._signals = signals
        self._settings = settings
        self._on_outcome = on_outcome
        self._now = monotonic
        self.inbox: queue.Queue[Event] = queue.Queue(maxsize=INBOX_SIZE)
        self._submitting = threading.Lock()
        self._mode: modes.Mode = modes.Idle()
        self._repeats = RepeatFilter(dict(settings.repeat_windows), settings.default_repeat_window)
        self._last_view: View | None = None
        self._last_activity = 0.0
        self._dimmed = False
        self._ctx: FlowContext | None = None
        self._broken: KioskError | None = None  # journal or client could not be opened
        self.pending = 0
        self.started = threading.Event()

    # --- any thread ------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> bool:
        """Finish the scan in hand, then stop. Returns False if the thread outlived *timeout*."""
        return super().stop(timeout)

    def submit(self, event: Event) -> None:
        """Hand an event to the engine (any thread, never blocks, never raises queue.Full).

        When the inbox is full the oldest event is dropped; the lock keeps two
        sources from racing for the one free place.
        """
        with self._submitting:
            while True:
                try:
                    self.inbox.put_nowait(event)
                    return
                except queue.Full:
                    try:
                        dropped = self.inbox.get_nowait()
                    except queue.Empty:
                        continue
                    log.warning("inbox full: dropped the oldest event (%s)", type(dropped).__name__)

    @property
    def online(self) -> bool:
        return self._ctx is not None and not self._ctx.health.offline

    # --- engine thread ---------------------------------------------------------------------

    def _setup(self) -> None:
        try:
            ctx = self._open_context()
        except KioskError as exc:
            log.error("journal or backend client unavailable: %s", exc)
            self._broken = exc
            self._show(Alarm("journal", str(exc)[:60]))
            self.started.set()
            return
        self._ctx = ctx
        try:
            self._start(ctx)
        finally:
            self.started.set()

    def _start(self, ctx: FlowContext) -> None:
        self._resume(ctx)
        try:
            ctx.journal.defer_checkpoints()  # the sync worker copies the log, not a scan
        except JournalError as exc:
            log.warning("journal: %s", exc)
        self._last_activity = self._now()
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

    def _teardown(self) -> None:
        self.started.set()
        if self._ctx is not None:
            self._ctx.journal.close()
            self._ctx.client.close()

    def _resume(self, ctx: FlowContext) -> None:
        """Requests left pending by an earlier run may have reached the backend: resend only."""
        try:
            left = ctx.journal.distrust_unanswered()
        except JournalError as exc:
            log.error("journal: cannot mark requests of the last run: %s", exc)
            return
        if left:
            log.info("%d request(s) of the last run may have been sent: resend as is", left)

    def _step(self) -> None:
        ctx = self._ctx
        if ctx is None:  # no journal: every event is answered with the error signal
            try:
                self.inbox.get(timeout=1.0)
                self._signal("error")
            except queue.Empty:
                pass
            return
        try:
            first = self.inbox.get(timeout=0.5)
        except queue.Empty:
            self._tick()
            return
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

    def _tick(self) -> None:
        now = self._now()
        mode = self._mode
        if isinstance(mode, modes.Idle):
            self._show_ready(refresh=True)
        elif now >= mode.until:
            self._show_ready()
        idle = now - self._last_activity
        if (idle >= self._settings.dim_after) != self._dimmed:
            self._dimmed = not self._dimmed
            try:
                self._screen.dim(self._dimmed)
            except HardwareError as exc:
                log.warning("display: %s", exc)

    def _handle(self, ctx: FlowContext, event: Event) -> None:
        self._last_activity = self._now()
        if self._dimmed:
            self._dimmed = False
            self._screen.dim(False)
        if isinstance(event, Scan):
            self._handle_scan(ctx, event)
        elif isinstance(event, Press):
            self._handle_press(ctx, event)
        elif isinstance(event, ScanFault):
            self._handle_fault(ctx, event)
        else:
            assert_never(event)

    def _handle_scan(self, ctx: FlowContext, scan: Scan) -> None:
        if self._repeats.is_repeat(scan):
            log.debug("repeat of a recent scan ignored")
            return
        self._signal("scan")
        self._show(Checking(RequestKind.RECEIPT))
        scanned = ctx.classify(scan.text)
        if isinstance(scanned, Receipt):
            self._present(check_receipt(ctx, scanned))
        elif isinstance(scanned, Paycode | BareCode):
            self._start_payment(ctx, scanned)
        else:
            word, kind = refusal(scanned)
            log.info("scan refused: %s", scanned.reason)
            self._present(ctx.record(Outcome(word, kind, reason=scanned.reason)))

    def _start_payment(self, ctx: FlowContext, code: Paycode | BareCode) -> None:
        decision = payment.start(ctx, code, has_buttons=self._settings.has_buttons)
        if isinstance(decision, Outcome):
            self._present(decision)
        elif isinstance(decision, payment.Resend):
            self._show(Checking(RequestKind.CHARGE))
            self._present(payment.send_charge(ctx, decision.request, decision.service_name))
        elif isinstance(decision, payment.Choose):
            self._mode = modes.Choosing(self._menu_until(), code, decision.services)
            self._show(ServiceMenu(decision.services, 0))
        elif isinstance(decision, payment.ChargeWith):
            self._charge(ctx, code, decision.service)
        else:
            assert_never(decision)

    def _charge(self, ctx: FlowContext, code: Paycode | BareCode, service: Service) -> None:
        self._show(Checking(RequestKind.CHARGE))
        self._present(payment.charge(ctx, code, service))

    def _menu_until(self) -> float:
        return self._now() + MENU_TIMEOUT_S

    def _handle_press(self, ctx: FlowContext, press: Press) -> None:
        mode = self._mode
        ok = press.button == "ok" and not press.long
        if isinstance(mode, modes.Choosing):
            if press.long:
                self._show_ready()
            elif press.button in ("up", "down"):
                self._mode = mode.moved(1 if press.button == "down" else -1, self._menu_until())
                self._show(ServiceMenu(mode.services, self._mode.selected))
            elif not mode.service.eligible:
                self._charge(ctx, mode.code, mode.service)
            else:
                until = self._menu_until()
                self._mode = modes.Confirming(until, mode.code, mode.services, mode.selected)
                self._show(ConfirmCharge(mode.service))
        elif isinstance(mode, modes.Confirming):
            if ok:
                self._charge(ctx, mode.code, mode.service)
            else:
                until = self._menu_until()
                self._mode = modes.Choosing(until, mode.code, mode.services, mode.selected)
                self._show(ServiceMenu(mode.services, mode.selected))
        elif isinstance(mode, modes.CancelAsk):
            if ok:
                self._show(Checking(RequestKind.CANCEL))
                self._present(payment.cancel(ctx, mode.tx, "cancelled at the counter"))
            else:
                self._show_ready()
        elif press.long and press.button == "ok":
            self._offer_cancel(ctx)
        elif press.long and self._settings.tech_info is not None:
            self._mode = modes.Tech(self._now() + TECH_SCREEN_S)
            self._show(self._settings.tech_info())
        else:
            self._show_ready()

    def _offer_cancel(self, ctx: FlowContext) -> None:
        last = ctx.journal.last_accepted(since=payment.start_of_day(ctx))
        if last is None or last.tx is None:
            self._present(Outcome(Word.INVALID, RequestKind.CANCEL, reason="nothing_to_cancel"))
            return
        at = datetime.fromtimestamp(last.at, ctx.tz)
        amount = last.amount_cents or 0
        self._mode = modes.CancelAsk(self._menu_until(), last.tx, amount)
        self._show(CancelConfirm(last.tx, amount, at))

    def _handle_fault(self, ctx: FlowContext, fault: ScanFault) -> None:
        if fault.reason == "unplugged":
            self._show_alarm("scanner", fault.detail, until=float("inf"))
        elif fault.reason == "replugged":
            self._show_ready()
        else:
            log.warning("unreadable scan from %s: %s", fault.source, fault.reason)
            self._present(
                ctx.record(Outcome(Word.INVALID, RequestKind.RECEIPT, reason=fault.reason))
            )

    # --- presentation ----------------------------------------------------------------------

    def _present(self, outcome: Outcome) -> None:
        self._mode = modes.Showing(self._now() + self._settings.result_seconds)
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
        self._mode = modes.Alarmed(until if until is not None else self._now() + ALARM_S)
        self._show(Alarm(kind, detail[:60]))
        self._signal("error")

    def _show_ready(self, refresh: bool = False) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        self._mode = modes.Idle()
        idle = self._now() - self._last_activity
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
