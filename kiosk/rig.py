"""The simulated counter hardware, shared by ``kiosk demo``, ``kiosk selftest --simulate``
and the tests: luma's dummy 128x64 display and gpiozero's MockFactory pins.

A composition root (like :mod:`kiosk.service`): it may import :mod:`hardware`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiosk.config import Config, SignalsConfig

if TYPE_CHECKING:
    from hardware.display import Display
    from hardware.signals import Indicators
    from kiosk.counter import Counter
    from kiosk.views import Outcome, View

__all__ = ["SimulatedRig", "display_device", "pin_factory"]


def pin_factory() -> Any:
    """gpiozero's mock pins (PWM-capable, so a passive buzzer and RGB LEDs work)."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    return MockFactory(pin_class=MockPWMPin)


def display_device(rotate: int = 0) -> Any:
    """luma's dummy device, keeping the last image it was shown."""
    from luma.core.device import dummy

    return dummy(width=128, height=64, rotate=rotate, mode="1")


class SimulatedRig:
    """A display and indicators on simulated devices; ``close`` releases both."""

    def __init__(self, signals: SignalsConfig, *, rotate: int = 0) -> None:
        from hardware.display import Display
        from hardware.signals import Indicators

        self.factory = pin_factory()
        self.display: Display = Display(device=display_device(rotate))
        self.indicators: Indicators = Indicators(signals, pin_factory=self.factory)

    def counter(
        self,
        cfg: Config,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_view: Callable[[View], None] | None = None,
        has_buttons: bool = True,
        sync_interval: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Counter:
        """The same Counter ``kiosk run`` builds, wired to this rig (clock taken as synced)."""
        from kiosk.counter import Counter

        return Counter(
            cfg,
            display=self.display,
            indicators=self.indicators,
            has_buttons=has_buttons,
            clock_synced=lambda: True,
            on_outcome=on_outcome,
            on_view=on_view,
            sync_interval=sync_interval,
            monotonic=monotonic,
        )

    def close(self) -> None:
        self.indicators.close()
        self.display.close()
