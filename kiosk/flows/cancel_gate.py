"""Who may cancel the last transaction at the counter: ``[counter] cancel`` and the staff PIN.

The engine asks the gate when cancel-last is requested (long press on OK) and
hands it each button press while the PIN is being entered; the gate answers
what to do next. One gate per device: its :class:`PinLock` counts wrong PINs
across entries, on the engine's monotonic clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from kiosk.config import CounterConfig
from kiosk.flows.pin_entry import (
    CancelAccess,
    PinEntry,
    PinLock,
    PinStep,
    PinView,
    cancel_access,
    unavailable_view,
)
from kiosk.flows.pin_memory import PinMemory
from kiosk.staff_pin import verify_pin
from kiosk.views import CancelUnavailable

log = logging.getLogger("kiosk.cancel")

BUTTONS = ("up", "down", "ok")


@dataclass(frozen=True)
class Allowed:
    """Go on to confirm the cancel."""


@dataclass(frozen=True)
class Asking:
    """Keep entering the PIN; ``wrong`` when the last PIN was wrong."""

    entry: PinEntry
    wrong: bool = False


@dataclass(frozen=True)
class Refused:
    """Show *view* (cancel off, no PIN set up, locked) and go back to ready."""

    view: CancelUnavailable | PinView


@dataclass(frozen=True)
class Left:
    """The staff left the PIN entry."""


Decision = Allowed | Asking | Refused | Left


class CancelGate:
    """Decides, press by press, whether a cancel at the counter may go on."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.lock = PinLock(clock=monotonic)

    def request(self, counter: CounterConfig, memory: PinMemory | None = None) -> Decision:
        """Cancel-last was asked for. *memory* keeps the PIN lock across restarts."""
        if memory is not None:
            self.lock.remember(memory)
        access = cancel_access(counter.cancel, counter.pin_hash)
        unavailable = unavailable_view(access)
        if unavailable is not None:
            log.info("cancel at the counter refused: %s", access)
            return Refused(unavailable)
        if access == CancelAccess.OPEN:
            return Allowed()
        entry = PinEntry(lambda pin: verify_pin(pin, counter.pin_hash), self.lock)
        return Refused(entry.view()) if self.lock.locked else Asking(entry)

    def press(self, entry: PinEntry, button: str, *, long: bool) -> Decision:
        """One button press during the PIN entry."""
        if button not in BUTTONS:
            return Asking(entry)
        step = entry.press(button, long=long)
        match step:
            case PinStep.VERIFIED:
                log.info("staff PIN accepted for a cancel")
                return Allowed()
            case PinStep.BACK:
                return Left()
            case PinStep.LOCKED:
                log.warning("cancelling locked after wrong staff PINs")
                return Refused(entry.view())
            case PinStep.WRONG:
                log.warning("wrong staff PIN (%d tries left)", self.lock.tries_left)
                return Asking(entry, wrong=True)
            case PinStep.EDITING:
                return Asking(entry)
            case _:
                assert_never(step)
