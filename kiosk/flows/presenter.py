"""What the counter shows and sounds: the display and the indicators, driven by the engine.

A display or indicator that fails is logged, never raised: the scan in hand
goes on without the picture or the beep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from kiosk.errors import HardwareError
from kiosk.flows.context import FlowContext
from kiosk.flows.wiring import Screen, Signals
from kiosk.logs import event
from kiosk.views import Alarm, Outcome, Ready, Result, View
from kiosk.vocabulary import Signal, meaning

log = logging.getLogger("kiosk.engine")


def outcome_signal(outcome: Outcome) -> Signal:
    """The indicator pattern that goes with *outcome* (the word's, when it is accepted)."""
    match = outcome.amount_match
    if match is not None and not match.matched:
        return Signal.CHECK_AMOUNT  # checked all the same: the staff looks at the amount
    return meaning(outcome.word).signal if outcome.accepted else Signal.REFUSED


def ready_view(ctx: FlowContext, *, pending: int, idle_seconds: float) -> Ready:
    """The ready screen: wall-clock minute, offline and clock warnings, uploads waiting."""
    now = datetime.fromtimestamp(ctx.clock(), ctx.tz).replace(second=0, microsecond=0)
    return Ready(
        now=now,
        offline=ctx.health.offline,
        clock_warning=not ctx.clock_synced(),
        pending=pending,
        idle_seconds=float(int(idle_seconds // 60) * 60),
    )


class Presenter:
    """The engine's screen and signals; remembers the last view to skip redrawing it."""

    def __init__(
        self,
        screen: Screen,
        signals: Signals,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_answered: Callable[[float], None] | None = None,
    ) -> None:
        self._screen = screen
        self._signals = signals
        self._on_outcome = on_outcome
        self._on_answered = on_answered
        self._scan_at: float | None = None
        self._last_view: View | None = None
        self._dimmed = False

    def show(self, view: View, *, unless_shown: bool = False) -> None:
        """Draw *view*; with *unless_shown*, only if it differs from the view on screen."""
        if unless_shown and view == self._last_view:
            return
        self._last_view = view
        try:
            self._screen.show(view)
        except HardwareError as exc:
            log.warning("display: %s", exc)

    def signal(self, kind: str) -> None:
        try:
            self._signals.signal(kind)
        except HardwareError as exc:
            log.warning("indicators: %s", exc)

    def dim(self, dimmed: bool) -> None:
        """Dim or wake the display unless it is so already; a display error is raised."""
        if dimmed != self._dimmed:
            self._dimmed = dimmed
            self._screen.dim(dimmed)

    def scan_arrived(self, at: float | None) -> None:
        """The scan being handled arrived at *at* (monotonic; None: its result will not
        follow it directly, e.g. a service menu comes first). The next result reports it
        to ``on_answered``."""
        self._scan_at = at

    def result(self, outcome: Outcome) -> None:
        """Show and sound *outcome*, log it and hand it to the outcome listener."""
        self.show(Result(outcome))
        self.signal(outcome_signal(outcome))
        # One journal entry per outcome, with the fields a chain searches its central
        # journal by (KIOSK_TX, KIOSK_OUTCOME, ...; kiosk.logs).
        event(
            log,
            f"outcome {outcome.word}",
            tx=outcome.tx,
            outcome=outcome.word,
            kind=outcome.kind,
            reason=outcome.reason or None,
            amount_cents=outcome.amount_cents,
        )
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        at, self._scan_at = self._scan_at, None
        if at is not None and self._on_answered is not None:
            self._on_answered(at)

    def alarm(self, alarm: Alarm) -> None:
        """Show *alarm* (its technical detail cut to 60 characters) and sound the error."""
        self.show(replace(alarm, detail=alarm.detail[:60]))
        self.signal(Signal.ERROR)
