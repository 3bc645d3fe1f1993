"""The engine: the one thread that turns scans and presses into outcomes on the screen.

Sources push events into a bounded inbox (:meth:`Engine.submit`); the engine
thread is the inbox's only consumer and the only thread that touches its
journal connection, its backend client, the display and the indicators, but
for two moments when it cannot: a full inbox beeps from the submitting thread
(indicators serialise their patterns), and the still-charging screen is drawn
by a timer while the engine waits for a charge (:mod:`kiosk.flows.notice`). It
handles one scan at a time; what happens to events that queued up while it
was busy (verified codes first, junk dropped with the error beep) is
:mod:`kiosk.flows.inbox`'s policy. What the counter is
doing between events is a :mod:`~kiosk.flows.modes` value; what a payment code
leads to is decided by :func:`kiosk.flows.payment.start`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import assert_never

from kiosk.errors import HardwareError, JournalError, JournalFull, KioskError
from kiosk.events import Event, Press, Scan, ScanFault
from kiosk.flows import cancel_gate, cancel_last, inbox, modes, payment, tech
from kiosk.flows.context import FlowContext
from kiosk.flows.notice import DelayedView
from kiosk.flows.outcomes import UNREADABLE_KIND, refusal
from kiosk.flows.pin_memory import PinMemory
from kiosk.flows.presenter import Presenter, ready_view
from kiosk.flows.receipt import check_receipt
from kiosk.flows.repeats import RepeatFilter
from kiosk.flows.startup import start_up
from kiosk.flows.tech import TECH_SCREEN_S, UnpluggedSources, tech_info
from kiosk.flows.wiring import EngineSettings, Screen, Signals
from kiosk.journal.flush import WalFlusher
from kiosk.tokens import BareCode, Paycode, Receipt, Scanned, Unrecognised
from kiosk.venue import Service
from kiosk.views import Alarm, Checking, ConfirmCharge, Outcome, ServiceMenu, StillCharging
from kiosk.vocabulary import RequestKind, Signal, Word
from kiosk.worker import Worker

log = logging.getLogger("kiosk.engine")

MENU_TIMEOUT_S = 60.0
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
        on_answered: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("kiosk-engine", monotonic=monotonic)
        self._open_context = open_context
        # on_answered(at): a scan that arrived at *at* (monotonic) has its result shown.
        self._out = Presenter(screen, signals, on_outcome, on_answered)
        self._settings = settings
        self._now = monotonic
        self.inbox: queue.Queue[Event] = queue.Queue(maxsize=INBOX_SIZE)
        self._submitting = threading.Lock()
        self._mode: modes.Mode = modes.Idle()
        self._repeats = RepeatFilter(dict(settings.repeat_windows), settings.default_repeat_window)
        self._last_activity = 0.0
        self._ctx: FlowContext | None = None
        self._flusher: WalFlusher | None = None  # flushes answers after their result is shown
        self._broken: KioskError | None = None  # journal or client could not be opened
        self._sources = UnpluggedSources(settings.sources)
        self._damaged = threading.Event()  # the journal failed a check: reopen (mends it)
        self._gate = cancel_gate.CancelGate(monotonic=monotonic)  # one PIN lock per device
        self.pending = 0
        self.started = threading.Event()

    # --- any thread ------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> bool:
        """Finish the scan in hand, then stop. Returns False if the thread outlived *timeout*."""
        return super().stop(timeout)

    def submit(self, event: Event) -> None:
        """Hand an event to the engine (any thread, never blocks, never raises queue.Full).

        When the inbox is full, one event is dropped by :func:`inbox.victim` (junk
        first, never a code in favour of junk), logged, and the error beep asks the
        staff to scan again. The lock keeps two sources from racing for the one
        free place.
        """
        with self._submitting:
            while True:
                try:
                    self.inbox.put_nowait(event)
                    return
                except queue.Full:
                    dropped = inbox.make_room(self.inbox, event)
                    if dropped is not None:
                        log.warning("inbox full: dropped a %s", inbox.describe(dropped))
                        self._out.signal(Signal.ERROR)
                        if dropped is event:
                            return

    def journal_damaged(self) -> None:
        """The journal failed its check (any thread): reopen it, which mends it."""
        self._damaged.set()

    @property
    def broken(self) -> KioskError | None:
        """Why the engine could not open its journal or backend client at start, or None
        (read after :attr:`started` is set)."""
        return self._broken

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
            self._out.show(Alarm("journal", str(exc)[:60]))
            self.started.set()
            return
        self._ctx, self._broken = ctx, None
        self._flusher = WalFlusher(ctx.journal.path)
        self._flusher.start()
        try:
            self._start(ctx)
        finally:
            self.started.set()

    def _start(self, ctx: FlowContext) -> None:
        self._last_activity = self._now()
        self.pending, alarm = start_up(ctx)
        if alarm is None:
            self._show_ready()
        else:
            self._show_alarm(alarm)

    def _teardown(self) -> None:
        self.started.set()
        if self._flusher is not None:
            self._flusher.stop()  # flushes once more
            self._flusher = None
        if self._ctx is not None:
            self._ctx.journal.close()
            self._ctx.client.close()

    def _reopen(self) -> None:
        """Close the journal and client, then open them again as at start."""
        self._damaged.clear()
        if self._ctx is not None:
            log.error("journal damaged: reopening it to mend it")
            self._teardown()
            self._ctx = None
        self._setup()

    def _step(self) -> None:
        if self._damaged.is_set():
            self._reopen()
        ctx = self._ctx
        if ctx is None:  # no journal: every event is answered with the error signal
            try:
                self.inbox.get(timeout=1.0)
                self._out.signal(Signal.ERROR)
            except queue.Empty:
                pass
            return
        try:
            first = self.inbox.get(timeout=0.5)
        except queue.Empty:
            self._tick()
            return
        batch = inbox.take(self.inbox, first, ctx.classify)  # a lone scan is verified after
        for dropped in batch.dropped:  # its first feedback, in _handle_scan
            log.warning("busy: dropped a %s in favour of a newer or verified scan",
                        inbox.describe(dropped))  # fmt: skip
        for event in batch.handle:
            try:
                self._handle(ctx, event, batch.scanned.get(id(event)))
            except JournalFull as exc:
                log.error("%s", exc)
                self._show_alarm(Alarm("disk_full", str(exc)))
            except JournalError as exc:
                log.error("journal: %s", exc)
                self._show_alarm(Alarm("journal", str(exc)))
            except Exception:
                log.exception("unexpected error while handling %s", type(event).__name__)
                self._show_alarm(Alarm("error", "internal error; see the log"))
        if batch.dropped:
            # after the results: the staff scans the dropped code again
            self._out.signal(Signal.ERROR)
        try:
            self.pending = ctx.journal.pending_count()
        except JournalError as exc:
            log.error("journal: %s", exc)

    def _tick(self) -> None:
        now = self._now()
        mode = self._mode
        if isinstance(mode, modes.Idle):
            self._show_ready(refresh=True)
        elif now >= mode.until:
            self._show_ready()
        idle = now - self._last_activity
        try:
            self._out.dim(idle >= self._settings.dim_after)
        except HardwareError as exc:
            log.warning("display: %s", exc)

    def _handle(self, ctx: FlowContext, event: Event, scanned: Scanned | None = None) -> None:
        self._last_activity = self._now()
        self._out.dim(False)
        if isinstance(event, Scan):
            self._handle_scan(ctx, event, scanned)
        elif isinstance(event, Press):
            self._handle_press(ctx, event)
        elif isinstance(event, ScanFault):
            self._handle_fault(ctx, event)
        else:
            assert_never(event)

    def _handle_scan(self, ctx: FlowContext, scan: Scan, scanned: Scanned | None) -> None:
        if self._repeats.is_repeat(scan):
            log.debug("repeat of a recent scan ignored")
            return
        self._out.scan_arrived(scan.at)
        self._out.signal(Signal.SCAN)
        self._out.show(Checking(RequestKind.RECEIPT))
        if scanned is None:
            scanned = ctx.classify(scan.text)
        match scanned:
            case Receipt():
                self._present(check_receipt(ctx, scanned))
            case Paycode() | BareCode():
                self._start_payment(ctx, scanned)
            case Unrecognised():
                word, kind = refusal(scanned)
                log.info("scan refused: %s", scanned.reason)
                self._present(ctx.record(Outcome(word, kind, reason=scanned.reason)))
            case _:
                assert_never(scanned)

    def _start_payment(self, ctx: FlowContext, code: Paycode | BareCode) -> None:
        decision = payment.start(ctx, code, has_buttons=self._settings.has_buttons)
        if isinstance(decision, Outcome):
            self._present(decision)
        elif isinstance(decision, payment.Resend):
            self._out.show(Checking(RequestKind.CHARGE))
            with self._still_charging(ctx, decision.request.amount_cents):
                outcome = payment.send_charge(ctx, decision.request, decision.service_name)
            self._present(outcome)
        elif isinstance(decision, payment.Choose):
            self._out.scan_arrived(None)  # the menu answers it; the charge waits for a person
            self._mode = modes.Choosing(self._menu_until(), code, decision.services)
            self._out.show(ServiceMenu(decision.services, 0))
        elif isinstance(decision, payment.ChargeWith):
            self._charge(ctx, code, decision.service)
        else:
            assert_never(decision)

    def _charge(self, ctx: FlowContext, code: Paycode | BareCode, service: Service) -> None:
        self._out.show(Checking(RequestKind.CHARGE))
        with self._still_charging(ctx, service.price_cents):
            outcome = payment.charge(ctx, code, service)
        self._present(outcome)

    def _still_charging(self, ctx: FlowContext, amount_cents: int | None) -> DelayedView:
        """Shows StillCharging once the scan budget has passed without the charge's answer."""
        return DelayedView(ctx.cfg.backend.scan_budget, self._out.show, StillCharging(amount_cents))

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
                self._out.show(ServiceMenu(mode.services, self._mode.selected))
            elif not mode.service.eligible:
                self._charge(ctx, mode.code, mode.service)
            else:
                until = self._menu_until()
                self._mode = modes.Confirming(until, mode.code, mode.services, mode.selected)
                self._out.show(ConfirmCharge(mode.service))
        elif isinstance(mode, modes.Confirming):
            if ok:
                self._charge(ctx, mode.code, mode.service)
            else:
                until = self._menu_until()
                self._mode = modes.Choosing(until, mode.code, mode.services, mode.selected)
                self._out.show(ServiceMenu(mode.services, mode.selected))
        elif isinstance(mode, modes.PinAsk):
            self._after_gate(ctx, self._gate.press(mode.entry, press.button, long=press.long))
        elif isinstance(mode, modes.CancelAsk):
            if ok:
                self._out.show(Checking(RequestKind.CANCEL))
                self._present(payment.cancel(ctx, mode.tx, "cancelled at the counter"))
            else:
                self._show_ready()
        elif isinstance(mode, modes.Report) and not press.long and press.button != "ok":
            self._show_report(tech.turned(mode.view, press.button))
        elif press.long and press.button == "ok":
            memory = PinMemory(ctx.journal, ctx.boot)  # the lock-out outlives a power cycle
            self._after_gate(ctx, self._gate.request(ctx.cfg.counter, memory))
        elif press.long and press.button == "down":
            self._show_report(tech.day_report(ctx))
        elif press.long and self._settings.tech_info is not None:
            self._mode = modes.Tech(self._now() + TECH_SCREEN_S)
            self._out.show(tech_info(ctx, self._settings.tech_info()))
        else:
            self._show_ready()

    def _show_report(self, view: tech.DayReport) -> None:
        self._mode = modes.Report(self._now() + tech.REPORT_S, view)
        self._out.show(view)

    def _after_gate(self, ctx: FlowContext, decision: cancel_gate.Decision) -> None:
        """Cancel-last goes on only as ``[counter] cancel`` allows (staff PIN by default)."""
        now = self._now()
        step = cancel_last.after_gate(
            ctx,
            decision,
            menu_until=now + MENU_TIMEOUT_S,
            result_until=now + self._settings.result_seconds,
        )
        match step:
            case cancel_last.Ask(mode, view, signal):
                self._mode = mode
                self._out.show(view)
                if signal is not None:
                    self._out.signal(signal)
            case Outcome():
                self._present(step)
            case cancel_last.BackToReady():
                self._show_ready()
            case _:
                assert_never(step)

    def _handle_fault(self, ctx: FlowContext, fault: ScanFault) -> None:
        if fault.reason == "unplugged":
            others_read = self._sources.unplugged(fault.source)
            # Another source still reads codes: an alarm for a while, not until replugged.
            self._show_alarm(
                Alarm("scanner", fault.detail), until=None if others_read else float("inf")
            )
        elif fault.reason == "replugged":
            self._sources.replugged(fault.source)
            self._show_ready()
        else:
            log.warning("unreadable scan from %s: %s", fault.source, fault.reason)
            self._present(ctx.record(Outcome(Word.INVALID, UNREADABLE_KIND, reason=fault.reason)))

    # --- presentation ----------------------------------------------------------------------

    def _present(self, outcome: Outcome) -> None:
        self._mode = modes.Showing(self._now() + self._settings.result_seconds)
        self._out.result(outcome)
        if self._flusher is not None:
            self._flusher.request()  # the answer behind it was committed without a flush

    def _show_alarm(self, alarm: Alarm, until: float | None = None) -> None:
        self._mode = modes.Alarmed(until if until is not None else self._now() + ALARM_S)
        self._out.alarm(alarm)

    def _show_ready(self, refresh: bool = False) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        self._mode = modes.Idle()
        view = ready_view(ctx, pending=self.pending, idle_seconds=self._now() - self._last_activity)
        self._out.show(view, unless_shown=refresh)
