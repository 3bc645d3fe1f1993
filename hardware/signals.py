"""LED, buzzer and buttons on GPIO, through gpiozero (pins from ``[signals]``).

``Indicators.signal(kind)`` hands a short light-and-sound pattern to the one
background thread that plays them and returns at once, so it never delays the
next scan (no thread is started or joined, no pin written, on the caller's
thread); a new signal replaces the one still playing. The patterns are meant to be told apart
without looking at the screen:

=================  =========================  ================================
kind               light (RGB / single LED)   sound
=================  =========================  ================================
scan               —                          tick (40 ms)
accepted           green 1.2 s / on 1.2 s     one beep (150 ms, high)
accepted_offline   amber 1.2 s / on 1.2 s     two short beeps (80 ms, high)
check_amount       amber 1.6 s / on 1.6 s     high then low beep (150 ms each)
refused            red 1.5 s / off            one long low tone (600 ms)
error              red blinking / blinking    three beeps (150 ms, middle)
=================  =========================  ================================

``Buttons`` turns up/down/ok presses into :class:`kiosk.events.Press`;
holding ok for ``long_press`` seconds gives one ``Press("ok", long=True)``
instead of a short press. Callbacks run on gpiozero's threads and only call
``on_event`` (which must not block: the engine's inbox ``put_nowait``).

A pin of -1 means "not fitted". Tests pass ``pin_factory=MockFactory()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.config import SignalsConfig
from kiosk.errors import HardwareError
from kiosk.events import Press
from kiosk.worker import Worker

log = logging.getLogger(__name__)

Color = tuple[float, float, float]
OFF: Color = (0.0, 0.0, 0.0)
GREEN: Color = (0.0, 1.0, 0.0)
AMBER: Color = (1.0, 0.5, 0.0)
RED: Color = (1.0, 0.0, 0.0)

HIGH, MIDDLE, LOW = 1760.0, 880.0, 440.0  # Hz, for a passive (tonal) buzzer
JOIN_TIMEOUT = 1.0


@dataclass(frozen=True)
class Step:
    """Hold this light and sound for ``seconds``; ``led`` is the single-LED state."""

    seconds: float
    color: Color = OFF
    led: bool = False
    tone: float | None = None


PATTERNS: dict[str, tuple[Step, ...]] = {
    "scan": (Step(0.04, tone=HIGH),),
    "accepted": (Step(0.15, GREEN, True, HIGH), Step(1.05, GREEN, True)),
    "accepted_offline": (
        Step(0.08, AMBER, True, HIGH),
        Step(0.08, AMBER, True),
        Step(0.08, AMBER, True, HIGH),
        Step(0.96, AMBER, True),
    ),
    # checked, but the amount matches no service: "ding-dong" so the staff looks up
    "check_amount": (
        Step(0.15, AMBER, True, HIGH),
        Step(0.1, AMBER, True),
        Step(0.15, AMBER, True, LOW),
        Step(1.2, AMBER, True),
    ),
    "refused": (Step(0.6, RED, False, LOW), Step(0.9, RED, False)),
    "error": (
        Step(0.15, RED, True, MIDDLE),
        Step(0.15, OFF, False),
        Step(0.15, RED, True, MIDDLE),
        Step(0.15, OFF, False),
        Step(0.15, RED, True, MIDDLE),
        Step(0.15, OFF, False),
    ),
}
KINDS = tuple(PATTERNS)


def _fitted(pin: int) -> bool:
    return pin >= 0


def _gpio_error(what: str, exc: Exception) -> HardwareError:
    return HardwareError(
        f"{what}: {exc}; check the [signals] pin numbers (BCM), that no other program "
        "uses them, and that the kiosk user is in the gpio group"
    )


class _Player(Worker):
    """The one thread that plays patterns, for the life of the Indicators that own it.

    :meth:`play` hands it the next pattern and returns at once: the caller (the
    engine, with a scan in hand) never waits for a thread to end or to start, nor
    for a pin write of the pattern it replaces. A pattern replaced mid-way goes
    straight on to the new one; one played to its end switches everything off.
    """

    def __init__(self, apply: Callable[[Step], None], scale: float):
        super().__init__("indicators")
        self._apply = apply
        self._scale = scale
        self._cond = threading.Condition()
        self._next: tuple[Step, ...] | None = None  # the pattern to play next
        self._busy = False  # a pattern is playing or waits to be played

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy

    def play(self, steps: tuple[Step, ...]) -> None:
        """Play *steps* instead of what plays now (any thread, never blocks on a pin)."""
        with self._cond:
            self._next = steps
            self._busy = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no pattern plays or waits; False after *timeout* s."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout)

    def _interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _replaced(self) -> bool:
        return self._next is not None or self.stopping

    def _step(self) -> None:
        with self._cond:
            if not self._cond.wait_for(self._replaced, 1.0) or self.stopping:
                return
            steps, self._next = self._next, None
        assert steps is not None
        try:
            for step in steps:
                self._apply(step)
                with self._cond:
                    if self._cond.wait_for(self._replaced, step.seconds * self._scale):
                        return  # the next pattern (or the teardown) takes over the pins
            self._apply(Step(0.0))
        except Exception:  # a failing pin must not kill the engine; it is logged
            log.exception("indicators: pattern failed")
        finally:
            with self._cond:
                if self._next is None:
                    self._busy = False
                    self._cond.notify_all()

    def _teardown(self) -> None:
        try:
            self._apply(Step(0.0))
        except Exception:
            log.exception("indicators: could not switch off")
        finally:
            with self._cond:
                self._busy = False
                self._next = None
                self._cond.notify_all()


class Indicators:
    """LED (single or RGB) and buzzer (active or passive) patterns; see the module table.

    Raises HardwareError when a pin cannot be claimed. ``time_scale`` stretches
    or shrinks every pattern (tests). Engine thread only.
    """

    def __init__(
        self, cfg: SignalsConfig, *, pin_factory: object | None = None, time_scale: float = 1.0
    ) -> None:
        self._devices: list[Any] = []
        self._led: Any = None
        self._rgb: Any = None
        self._buzzer: Any = None
        self._tonal: Any = None
        self._scale = time_scale
        self._player: _Player | None = None
        self._lock = threading.Lock()
        self._closed = False
        if cfg.rgb_pins and len(cfg.rgb_pins) != 3:
            raise ValueError("[signals] rgb_pins needs three pins: red, green, blue")
        if not (cfg.rgb_pins or _fitted(cfg.led_pin) or _fitted(cfg.buzzer_pin)):
            return  # nothing fitted: gpiozero (some MB of memory) is not even imported
        from gpiozero import LED, RGBLED, Buzzer, TonalBuzzer
        from gpiozero.tones import Tone

        try:
            if cfg.rgb_pins:
                red, green, blue = cfg.rgb_pins
                self._rgb = self._own(RGBLED(red, green, blue, pin_factory=pin_factory))
            elif _fitted(cfg.led_pin):
                self._led = self._own(LED(cfg.led_pin, pin_factory=pin_factory))
            if _fitted(cfg.buzzer_pin) and cfg.buzzer_kind == "passive":
                self._tonal = self._own(
                    TonalBuzzer(
                        cfg.buzzer_pin,
                        mid_tone=Tone(frequency=MIDDLE),
                        octaves=2,
                        pin_factory=pin_factory,
                    )
                )
            elif _fitted(cfg.buzzer_pin):
                self._buzzer = self._own(Buzzer(cfg.buzzer_pin, pin_factory=pin_factory))
        except (ValueError, TypeError):
            self.close()
            raise
        except Exception as exc:  # gpiozero's GPIOZeroError tree and OSError
            self.close()
            raise _gpio_error("cannot set up LED/buzzer", exc) from exc

    def _own(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def playing(self) -> bool:
        """True while a pattern is still running."""
        player = self._player
        return player is not None and player.busy

    def signal(self, kind: str) -> None:
        """Start pattern *kind* (see ``KINDS``) and return at once; replaces a running one.

        Raises ValueError for an unknown kind, HardwareError after close.
        """
        if kind not in PATTERNS:
            raise ValueError(f"unknown signal {kind!r}; use one of {', '.join(KINDS)}")
        with self._lock:
            if self._closed:
                raise HardwareError("indicators are closed")
            if self._player is None:  # started once, on the first signal
                self._player = _Player(self._apply, self._scale)
                self._player.start()
            self._player.play(PATTERNS[kind])

    def wait(self, timeout: float) -> bool:
        """Wait up to *timeout* seconds for the running pattern to end; True if it did."""
        player = self._player
        if player is None:
            return True
        return player.wait_idle(timeout)

    def _apply(self, step: Step) -> None:
        if self._rgb is not None:
            self._rgb.color = step.color
        if self._led is not None:
            self._led.value = step.led
        if self._buzzer is not None:
            self._buzzer.value = step.tone is not None
        if self._tonal is not None:
            if step.tone is None:
                self._tonal.stop()
            else:
                self._tonal.play(step.tone)

    def close(self) -> None:
        """Stop any pattern, switch everything off and release the pins. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._player is not None:
                self._player.stop(JOIN_TIMEOUT)
            for device in reversed(self._devices):
                try:
                    device.close()
                except Exception:
                    log.exception("indicators: could not release %r", device)
            self._devices.clear()

    def __enter__(self) -> Indicators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Buttons:
    """Up/down/ok push buttons (to ground, internal pull-up) as Press events.

    Raises HardwareError when a pin cannot be claimed. ``on_event`` is called on
    gpiozero's callback threads and must return quickly.
    """

    BOUNCE = 0.02

    def __init__(
        self,
        cfg: SignalsConfig,
        *,
        on_event: Callable[[Press], None],
        pin_factory: object | None = None,
    ) -> None:
        from gpiozero import Button

        self._on_event = on_event
        self._buttons: dict[str, Any] = {}
        self._held: set[str] = set()
        self._closed = False
        pins = {"up": cfg.button_up, "down": cfg.button_down, "ok": cfg.button_ok}
        try:
            for name, pin in pins.items():
                if not _fitted(pin):
                    continue
                button = Button(
                    pin,
                    pull_up=True,
                    bounce_time=self.BOUNCE,
                    hold_time=cfg.long_press,
                    pin_factory=pin_factory,
                )
                self._buttons[name] = button
                if name == "ok":  # short press on release, long press when held
                    button.when_pressed = lambda n=name: self._held.discard(n)
                    button.when_held = lambda n=name: self._hold(n)
                    button.when_released = lambda n=name: self._release(n)
                else:
                    button.when_pressed = lambda n=name: self._emit(n, long=False)
        except Exception as exc:
            self.close()
            raise _gpio_error("cannot set up buttons", exc) from exc

    @property
    def fitted(self) -> tuple[str, ...]:
        """Names of the buttons that are wired."""
        return tuple(self._buttons)

    @property
    def closed(self) -> bool:
        return self._closed

    def _hold(self, name: str) -> None:
        self._held.add(name)
        self._emit(name, long=True)

    def _release(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            return
        self._emit(name, long=False)

    def _emit(self, name: str, *, long: bool) -> None:
        try:
            self._on_event(Press(name, time.monotonic(), long=long))
        except Exception:  # the callback thread must survive a failing consumer
            log.exception("buttons: event consumer failed for %s", name)

    def close(self) -> None:
        """Release the pins; no more events after this returns. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for button in self._buttons.values():
            try:
                button.close()
            except Exception:
                log.exception("buttons: could not release %r", button)
        self._buttons.clear()

    def __enter__(self) -> Buttons:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
