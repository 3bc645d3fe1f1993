"""Cancel-last at the counter: the screen that follows each answer of the PIN gate."""

from __future__ import annotations

from typing import Any

from kiosk.flows import cancel_gate, cancel_last, modes
from kiosk.flows.pin_entry import PinEntry, PinLock
from kiosk.views import CancelUnavailable

CTX: Any = None  # only an allowed cancel reads the journal


def entry() -> PinEntry:
    return PinEntry(lambda pin: pin == "1234", PinLock(clock=lambda: 0.0))


def test_asking_shows_the_pin_entry_until_the_menu_timeout() -> None:
    e = entry()
    step = cancel_last.after_gate(CTX, cancel_gate.Asking(e), menu_until=60.0, result_until=4.0)
    assert step == cancel_last.Ask(modes.PinAsk(60.0, e), e.view(), None)


def test_a_wrong_pin_sounds_refused() -> None:
    e = entry()
    step = cancel_last.after_gate(
        CTX, cancel_gate.Asking(e, wrong=True), menu_until=60.0, result_until=4.0
    )
    assert isinstance(step, cancel_last.Ask) and step.signal == "refused"


def test_refused_shows_why_for_the_result_time() -> None:
    view = CancelUnavailable("off")
    step = cancel_last.after_gate(CTX, cancel_gate.Refused(view), menu_until=60.0, result_until=4.0)
    assert step == cancel_last.Ask(modes.Showing(4.0), view, "refused")


def test_leaving_goes_back_to_ready() -> None:
    step = cancel_last.after_gate(CTX, cancel_gate.Left(), menu_until=60.0, result_until=4.0)
    assert step == cancel_last.BackToReady()
