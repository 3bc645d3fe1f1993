"""What the engine is doing between events: one tagged dataclass per mode.

Each mode holds only its own fields; ``until`` is the monotonic time at which
the mode times out and the counter returns to :class:`Idle`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kiosk.flows.pin_entry import PinEntry
from kiosk.tokens import BareCode, Paycode
from kiosk.venue import Service
from kiosk.views import DayReport

__all__ = [
    "Alarmed",
    "CancelAsk",
    "Choosing",
    "Confirming",
    "Idle",
    "Mode",
    "PinAsk",
    "Report",
    "Showing",
    "Tech",
]


@dataclass(frozen=True)
class Idle:
    """Waiting for a scan; the ready screen is refreshed on every tick."""


@dataclass(frozen=True)
class Showing:
    """A result is on the screen until *until*."""

    until: float


@dataclass(frozen=True)
class Choosing:
    """The service menu for a payment code; ``selected`` indexes ``services``."""

    until: float
    code: Paycode | BareCode
    services: tuple[Service, ...]
    selected: int = 0

    @property
    def service(self) -> Service:
        return self.services[self.selected]

    def moved(self, step: int, until: float) -> Choosing:
        return replace(self, selected=(self.selected + step) % len(self.services), until=until)


@dataclass(frozen=True)
class Confirming:
    """Asking to confirm the charge of the chosen service."""

    until: float
    code: Paycode | BareCode
    services: tuple[Service, ...]
    selected: int

    @property
    def service(self) -> Service:
        return self.services[self.selected]


@dataclass(frozen=True)
class PinAsk:
    """The staff PIN is being entered before a cancel; ``entry`` holds the digits."""

    until: float
    entry: PinEntry


@dataclass(frozen=True)
class CancelAsk:
    """Asking whether to cancel the last transaction of the day."""

    until: float
    tx: str
    amount_cents: int


@dataclass(frozen=True)
class Tech:
    """The technician screen."""

    until: float


@dataclass(frozen=True)
class Report:
    """The staff's day report; up/down turn its pages."""

    until: float
    view: DayReport


@dataclass(frozen=True)
class Alarmed:
    """A fault on the screen; ``until`` may be infinite (scanner unplugged)."""

    until: float


Mode = Idle | Showing | Choosing | Confirming | PinAsk | CancelAsk | Tech | Report | Alarmed
