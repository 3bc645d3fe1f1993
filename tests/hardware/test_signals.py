"""LED, buzzer and button behaviour on gpiozero's MockFactory (never real pins)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from hardware.signals import KINDS, PATTERNS, Buttons, Indicators
from kiosk.config import SignalsConfig
from kiosk.errors import HardwareError
from kiosk.events import Press

LED, BUZZER, R, G, B = 17, 18, 22, 23, 24
UP, DOWN, OK = 5, 6, 13
FAST = 0.1  # patterns at a tenth of their length where timing is not the point


class FrequencyPin(MockPWMPin):
    """A mock PWM pin that also keeps every frequency it was set to."""

    def __init__(self, factory: MockFactory, info: object) -> None:
        super().__init__(factory, info)
        self.frequencies: list[float | None] = []

    def _set_frequency(self, value: float | None) -> None:
        self.frequencies.append(value)
        super()._set_frequency(value)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    mock = MockFactory()
    yield mock
    mock.reset()


@pytest.fixture
def pwm_factory() -> Iterator[MockFactory]:
    mock = MockFactory(pin_class=FrequencyPin)
    yield mock
    mock.reset()


def states(factory: MockFactory, pin: int) -> list[object]:
    return [s.state for s in factory.pin(pin).states]


def assert_timeline(factory: MockFactory, pin: int, expected: list[tuple[float, object]]) -> None:
    """The pin went through exactly these states, each after its delay.

    gpiozero's assert_states_and_times zips the lists without comparing their
    lengths, so a pin that never changed would pass it: compare the states first.
    """
    assert states(factory, pin) == [state for _, state in expected]
    factory.pin(pin).assert_states_and_times(expected)


def play(ind: Indicators, kind: str) -> None:
    ind.signal(kind)
    assert ind.wait(5.0), f"{kind} did not finish"


def test_accepted_is_green_and_one_beep_with_its_timing(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        for pin in (LED, BUZZER):
            factory.pin(pin).clear_states()
        play(ind, "accepted")
    assert_timeline(factory, BUZZER, [(0.0, False), (0.0, True), (0.15, False)])
    assert_timeline(factory, LED, [(0.0, False), (0.0, True), (1.2, False)])


def test_offline_acceptance_beeps_twice(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        factory.pin(BUZZER).clear_states()
        play(ind, "accepted_offline")
    assert_timeline(
        factory, BUZZER, [(0.0, False), (0.0, True), (0.08, False), (0.08, True), (0.08, False)]
    )
    assert states(factory, LED) == [False, True, False]


def test_check_amount_is_amber_with_a_high_then_low_beep(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        for pin in (LED, BUZZER):
            factory.pin(pin).clear_states()
        play(ind, "check_amount")
    assert_timeline(
        factory, BUZZER, [(0.0, False), (0.0, True), (0.15, False), (0.1, True), (0.15, False)]
    )
    assert_timeline(factory, LED, [(0.0, False), (0.0, True), (1.6, False)])


def test_check_amount_sounds_high_then_low_in_amber(pwm_factory: MockFactory) -> None:
    with Indicators(
        SignalsConfig(rgb_pins=(R, G, B)), pin_factory=pwm_factory, time_scale=FAST
    ) as ind:
        play(ind, "check_amount")
        assert states(pwm_factory, R) == [0.0, 1.0, 0.0]
        assert states(pwm_factory, G) == [0.0, 0.5, 0.0]
        assert states(pwm_factory, B) == [0.0]
    cfg = SignalsConfig(buzzer_pin=BUZZER, buzzer_kind="passive")
    with Indicators(cfg, pin_factory=pwm_factory, time_scale=FAST) as ind:
        pin = pwm_factory.pin(BUZZER)
        pin.frequencies.clear()
        pin.clear_states()
        play(ind, "check_amount")
    assert [f for f in pin.frequencies if f] == [1760.0, 440.0]
    assert [s.state for s in pin.states] == [0.0, 0.5, 0.0, 0.5, 0.0]


def test_refusal_is_one_long_tone_and_no_green(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        factory.pin(BUZZER).clear_states()
        play(ind, "refused")
    assert_timeline(factory, BUZZER, [(0.0, False), (0.0, True), (0.6, False)])
    assert states(factory, LED) == [False]


def test_error_blinks_and_beeps_three_times(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory, time_scale=FAST) as ind:
        play(ind, "error")
    assert states(factory, LED) == [False, True, False, True, False, True, False]
    assert states(factory, BUZZER) == [False, True, False, True, False, True, False]


def test_scan_is_a_short_tick_without_light(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        factory.pin(BUZZER).clear_states()
        play(ind, "scan")
    assert_timeline(factory, BUZZER, [(0.0, False), (0.0, True), (0.04, False)])
    assert states(factory, LED) == [False]


def test_rgb_led_shows_green_amber_red(pwm_factory: MockFactory) -> None:
    cfg = SignalsConfig(rgb_pins=(R, G, B))
    with Indicators(cfg, pin_factory=pwm_factory, time_scale=FAST) as ind:
        play(ind, "accepted")
        assert states(pwm_factory, G) == [0.0, 1.0, 0.0]
        assert states(pwm_factory, R) == [0.0]
        play(ind, "accepted_offline")
        assert states(pwm_factory, R) == [0.0, 1.0, 0.0]
        assert states(pwm_factory, G)[-2:] == [0.5, 0.0]  # amber: red + half green
        play(ind, "refused")
        assert states(pwm_factory, R)[-2:] == [1.0, 0.0]
        assert states(pwm_factory, G)[-1] == 0.0 and states(pwm_factory, B) == [0.0]


def test_passive_buzzer_plays_distinct_tones(pwm_factory: MockFactory) -> None:
    cfg = SignalsConfig(buzzer_pin=BUZZER, buzzer_kind="passive")
    with Indicators(cfg, pin_factory=pwm_factory, time_scale=FAST) as ind:
        pin = pwm_factory.pin(BUZZER)
        pin.frequencies.clear()  # the PWM set-up frequency
        pin.clear_states()
        play(ind, "accepted")
        play(ind, "refused")
    assert [f for f in pin.frequencies if f] == [1760.0, 440.0]
    assert [s.state for s in pin.states] == [0.0, 0.5, 0.0, 0.5, 0.0]


def test_signal_returns_at_once_and_a_new_one_replaces_the_old(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    with Indicators(cfg, pin_factory=factory) as ind:
        started = time.monotonic()
        ind.signal("accepted")
        ind.signal("refused")  # the green of the acceptance must not linger
        assert time.monotonic() - started < 0.1
        assert ind.playing
        assert ind.wait(5.0)
    assert states(factory, LED)[-1] is False
    assert states(factory, BUZZER)[-1] is False


class StuckPin(MockPin):
    """A mock pin whose writes wait while ``held`` is set: a slow or stuck GPIO driver."""

    held = threading.Event()

    def _change_state(self, value: bool) -> bool:
        released = threading.Event()
        while StuckPin.held.is_set() and not released.wait(0.005):
            pass
        return bool(super()._change_state(value))


def test_a_signal_never_waits_for_the_pattern_it_replaces() -> None:
    """The scan tick is the first feedback of a scan: it is handed over at once even while
    the previous result's pattern is stuck writing a pin (no thread joined or started)."""
    factory = MockFactory(pin_class=StuckPin)
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    try:
        with Indicators(cfg, pin_factory=factory, time_scale=FAST) as ind:
            ind.signal("scan")
            assert ind.wait(5.0)  # the player is up
            StuckPin.held.set()
            ind.signal("accepted")  # its first pin write now hangs
            time.sleep(0.05)
            started = time.monotonic()
            for _ in range(20):
                ind.signal("scan")
            assert time.monotonic() - started < 0.05
            assert ind.playing
            StuckPin.held.clear()
            assert ind.wait(5.0)
        assert states(factory, LED)[-1] is False
        assert states(factory, BUZZER)[-1] is False
    finally:
        StuckPin.held.clear()
        factory.reset()


def test_close_stops_a_running_pattern_and_switches_off(factory: MockFactory) -> None:
    cfg = SignalsConfig(led_pin=LED, buzzer_pin=BUZZER)
    ind = Indicators(cfg, pin_factory=factory)
    ind.signal("accepted")
    started = time.monotonic()
    ind.close()
    ind.close()
    assert time.monotonic() - started < 0.5
    assert ind.closed and not ind.playing
    assert states(factory, LED)[-1] is False
    with pytest.raises(HardwareError, match="closed"):
        ind.signal("accepted")


def test_unknown_kind_and_nothing_fitted(factory: MockFactory) -> None:
    with Indicators(SignalsConfig(), pin_factory=factory, time_scale=FAST) as ind:
        for kind in KINDS:
            play(ind, kind)
        with pytest.raises(ValueError, match="accepted_offline"):
            ind.signal("party")
    assert set(KINDS) == {
        "scan",
        "accepted",
        "accepted_offline",
        "check_amount",
        "refused",
        "error",
    }
    assert set(PATTERNS) == set(KINDS)


def test_pin_conflicts_are_hardware_errors(factory: MockFactory) -> None:
    with pytest.raises(HardwareError, match=r"\[signals\]"):
        Indicators(SignalsConfig(led_pin=LED, buzzer_pin=LED), pin_factory=factory)
    with pytest.raises(ValueError, match="three pins"):
        Indicators(SignalsConfig(rgb_pins=(R, G)), pin_factory=factory)


# -- buttons ---------------------------------------------------------------------------


@pytest.fixture
def presses() -> queue.Queue[Press]:
    return queue.Queue()


def button_cfg(long_press: float = 0.5) -> SignalsConfig:
    return SignalsConfig(button_up=UP, button_down=DOWN, button_ok=OK, long_press=long_press)


def press(factory: MockFactory, pin: int) -> None:
    factory.pin(pin).drive_low()
    factory.pin(pin).drive_high()


def test_up_and_down_give_presses_at_once(
    factory: MockFactory, presses: queue.Queue[Press]
) -> None:
    with Buttons(button_cfg(), on_event=presses.put_nowait, pin_factory=factory) as buttons:
        assert buttons.fitted == ("up", "down", "ok")
        before = time.monotonic()
        press(factory, UP)
        press(factory, DOWN)
        first, second = presses.get(timeout=1), presses.get(timeout=1)
    assert (first.button, first.long, second.button, second.long) == ("up", False, "down", False)
    assert before <= first.at <= second.at <= time.monotonic()


def test_ok_short_press_is_reported_on_release(
    factory: MockFactory, presses: queue.Queue[Press]
) -> None:
    with Buttons(button_cfg(), on_event=presses.put_nowait, pin_factory=factory):
        factory.pin(OK).drive_low()
        assert presses.empty()
        factory.pin(OK).drive_high()
        event = presses.get(timeout=1)
    assert (event.button, event.long) == ("ok", False)
    assert presses.empty()


def test_ok_held_gives_one_long_press_and_no_short_one(
    factory: MockFactory, presses: queue.Queue[Press]
) -> None:
    with Buttons(button_cfg(0.5), on_event=presses.put_nowait, pin_factory=factory):
        down = time.monotonic()
        factory.pin(OK).drive_low()
        event = presses.get(timeout=3)
        assert (event.button, event.long) == ("ok", True)
        assert event.at - down >= 0.45
        factory.pin(OK).drive_high()
        with pytest.raises(queue.Empty):
            presses.get(timeout=0.3)
        press(factory, OK)  # the next short press is short again
        assert presses.get(timeout=1).long is False


def test_absent_buttons_and_a_failing_consumer(factory: MockFactory) -> None:
    seen: list[Press] = []

    def flaky(event: Press) -> None:
        seen.append(event)
        raise RuntimeError("consumer broke")

    cfg = SignalsConfig(button_ok=OK, long_press=0.5)
    buttons = Buttons(cfg, on_event=flaky, pin_factory=factory)
    assert buttons.fitted == ("ok",)
    press(factory, OK)
    press(factory, OK)
    assert [e.button for e in seen] == ["ok", "ok"]
    buttons.close()
    buttons.close()
    assert buttons.closed


def test_no_events_after_close(factory: MockFactory, presses: queue.Queue[Press]) -> None:
    buttons = Buttons(button_cfg(), on_event=presses.put_nowait, pin_factory=factory)
    buttons.close()
    factory.pin(UP).drive_low()
    assert presses.empty()
