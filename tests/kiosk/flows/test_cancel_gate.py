"""The cancel gate: ``[counter] cancel`` and the staff PIN decide, press by press."""

from __future__ import annotations

from kiosk.config import CounterConfig
from kiosk.flows.cancel_gate import Allowed, Asking, CancelGate, Decision, Left, Refused
from kiosk.flows.pin_entry import LOCK_SECONDS
from kiosk.staff_pin import hash_pin
from kiosk.views import CancelUnavailable, PinLocked, PinWrong

PIN_HASH = hash_pin("1357")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def enter(gate: CancelGate, decision: Decision, pin: str) -> Decision:
    assert isinstance(decision, Asking), decision
    for digit in pin:
        for _ in range(int(digit)):
            decision = gate.press(decision.entry, "up", long=False)
        decision = gate.press(decision.entry, "ok", long=False)  # type: ignore[union-attr]
    return gate.press(decision.entry, "ok", long=True)  # type: ignore[union-attr]


def test_the_setting_decides_before_any_pin() -> None:
    gate = CancelGate(monotonic=Clock())
    assert gate.request(CounterConfig(cancel="open")) == Allowed()
    assert gate.request(CounterConfig(cancel="off", pin_hash=PIN_HASH)) == Refused(
        CancelUnavailable("off")
    )
    assert gate.request(CounterConfig(cancel="pin")) == Refused(CancelUnavailable("no_pin"))
    assert isinstance(gate.request(CounterConfig(cancel="pin", pin_hash=PIN_HASH)), Asking)


def test_right_pin_allows_wrong_pins_lock_on_the_monotonic_clock() -> None:
    clock = Clock()
    gate = CancelGate(monotonic=clock)
    cfg = CounterConfig(cancel="pin", pin_hash=PIN_HASH)
    assert enter(gate, gate.request(cfg), "1357") == Allowed()
    asking = gate.request(cfg)
    for tries_left in (2, 1):
        wrong = enter(gate, asking, "2468")
        assert isinstance(wrong, Asking) and wrong.wrong
        assert wrong.entry.view() == PinWrong(tries_left)
        asking = gate.press(wrong.entry, "down", long=False)  # dismisses "wrong PIN"
    locked = enter(gate, asking, "2468")
    assert locked == Refused(PinLocked(int(LOCK_SECONDS)))
    clock.now += LOCK_SECONDS - 1
    assert gate.request(cfg) == Refused(PinLocked(1))
    clock.now += 1
    assert enter(gate, gate.request(cfg), "1357") == Allowed()


def test_other_buttons_are_ignored_and_a_long_ok_with_no_digit_leaves() -> None:
    gate = CancelGate(monotonic=Clock())
    asking = gate.request(CounterConfig(cancel="pin", pin_hash=PIN_HASH))
    assert isinstance(asking, Asking)
    assert gate.press(asking.entry, "menu", long=False) == Asking(asking.entry)
    assert gate.press(asking.entry, "ok", long=True) == Left()
