"""Staff PIN entry with up/down/OK: digits, submit, wrong tries and the lock-out."""

from __future__ import annotations

import pytest

from kiosk import staff_pin
from kiosk.flows.pin_entry import (
    CancelAccess,
    PinEntry,
    PinLock,
    PinStep,
    cancel_access,
    unavailable_view,
)
from kiosk.views import CancelUnavailable, PinLocked, PinPrompt, PinWrong


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Verifier:
    """Remembers every PIN it was asked about; right only for *pin*."""

    def __init__(self, pin: str) -> None:
        self.pin = pin
        self.asked: list[str] = []

    def __call__(self, pin: str) -> bool:
        self.asked.append(pin)
        return pin == self.pin


def enter(entry: PinEntry, pin: str, *, submit: bool = True) -> list[PinStep]:
    """Type *pin* with up/down (shortest way round) and OK; long OK submits."""
    steps: list[PinStep] = []
    for char in pin:
        target = int(char)
        ups = target  # each digit starts at 0
        button, count = ("up", ups) if ups <= 5 else ("down", 10 - ups)
        steps += [entry.press(button) for _ in range(count)]
        steps.append(entry.press("ok"))
    if submit and len(pin) < 8:
        steps.append(entry.press("ok", long=True))
    return steps


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_up_and_down_cycle_the_digit_and_ok_confirms_it(clock: FakeClock) -> None:
    entry = PinEntry(Verifier("1234"), PinLock(clock=clock))
    assert entry.view() == PinPrompt(entered=0, digit=0, min_digits=4)
    assert entry.press("down") is PinStep.EDITING
    assert entry.view() == PinPrompt(0, 9)
    entry.press("up")
    entry.press("up")
    assert entry.view() == PinPrompt(0, 1)
    entry.press("ok")
    assert entry.view() == PinPrompt(1, 0)
    assert entry.entered == 1


def test_the_right_pin_is_verified_once_with_exactly_its_digits(clock: FakeClock) -> None:
    verify = Verifier("9071")
    entry = PinEntry(verify, PinLock(clock=clock))
    steps = enter(entry, "9071")
    assert steps[-1] is PinStep.VERIFIED
    assert set(steps[:-1]) == {PinStep.EDITING}
    assert verify.asked == ["9071"]


def test_the_eighth_digit_submits_by_itself(clock: FakeClock) -> None:
    verify = Verifier("12345678")
    entry = PinEntry(verify, PinLock(clock=clock))
    steps = enter(entry, "12345678")
    assert steps[-1] is PinStep.VERIFIED and verify.asked == ["12345678"]


def test_long_ok_erases_before_four_digits_and_leaves_with_none(clock: FakeClock) -> None:
    verify = Verifier("1234")
    entry = PinEntry(verify, PinLock(clock=clock))
    enter(entry, "57", submit=False)
    assert entry.press("ok", long=True) is PinStep.EDITING
    assert entry.view() == PinPrompt(1, 7)  # back on the erased digit
    entry.press("ok", long=True)
    assert entry.view() == PinPrompt(0, 5)
    assert entry.press("ok", long=True) is PinStep.BACK
    assert verify.asked == []


def test_a_wrong_pin_shows_the_tries_left_and_the_next_press_starts_again(
    clock: FakeClock,
) -> None:
    verify = Verifier("1234")
    entry = PinEntry(verify, PinLock(clock=clock))
    assert enter(entry, "4321")[-1] is PinStep.WRONG
    assert entry.view() == PinWrong(tries_left=2)
    assert entry.press("up") is PinStep.EDITING  # only dismisses the message
    assert entry.view() == PinPrompt(0, 0)
    assert enter(entry, "1234")[-1] is PinStep.VERIFIED
    assert verify.asked == ["4321", "1234"]


def test_three_wrong_pins_lock_for_five_minutes_across_entries(clock: FakeClock) -> None:
    lock = PinLock(clock=clock)
    verify = Verifier("1234")
    first = PinEntry(verify, lock)
    assert enter(first, "0000")[-1] is PinStep.WRONG
    first.press("ok")
    assert enter(first, "1111")[-1] is PinStep.WRONG
    second = PinEntry(verify, lock)  # leaving and coming back does not reset the count
    assert second.view() == PinPrompt(0, 0)
    assert enter(second, "2222")[-1] is PinStep.LOCKED
    assert second.view() == PinLocked(seconds_left=300)
    clock.now += 299.5
    assert second.view() == PinLocked(seconds_left=1)
    # nothing is verified while locked, not even the right PIN
    assert set(enter(PinEntry(verify, lock), "1234")) == {PinStep.LOCKED}
    assert verify.asked == ["0000", "1111", "2222"]
    clock.now += 0.5
    assert lock.seconds_left() == 0 and lock.tries_left == 3
    third = PinEntry(verify, lock)
    assert third.view() == PinPrompt(0, 0)
    assert enter(third, "1234")[-1] is PinStep.VERIFIED


def test_a_right_pin_clears_earlier_wrong_tries(clock: FakeClock) -> None:
    lock = PinLock(clock=clock)
    entry = PinEntry(Verifier("1234"), lock)
    enter(entry, "9999")
    entry.press("ok")
    enter(entry, "1234")
    assert lock.tries_left == 3


def test_with_the_real_staff_pin_hash(clock: FakeClock) -> None:
    pin_hash = staff_pin.hash_pin("2580")
    lock = PinLock(clock=clock)
    entry = PinEntry(lambda pin: staff_pin.verify_pin(pin, pin_hash), lock)
    assert enter(entry, "2581")[-1] is PinStep.WRONG
    entry.press("ok")
    assert enter(entry, "2580")[-1] is PinStep.VERIFIED


def test_bad_arguments_raise(clock: FakeClock) -> None:
    entry = PinEntry(Verifier("1234"), PinLock(clock=clock))
    with pytest.raises(ValueError, match="up, down or ok"):
        entry.press("left")
    with pytest.raises(ValueError, match="max_tries"):
        PinLock(max_tries=0)


@pytest.mark.parametrize(
    ("mode", "pin_hash", "access", "view"),
    [
        ("open", "", CancelAccess.OPEN, None),
        ("pin", "$scrypt$...", CancelAccess.PIN, None),
        ("pin", "", CancelAccess.NO_PIN, CancelUnavailable("no_pin")),
        ("off", "$scrypt$...", CancelAccess.OFF, CancelUnavailable("off")),
    ],
)
def test_cancel_access_follows_the_counter_setting(
    mode: str, pin_hash: str, access: CancelAccess, view: CancelUnavailable | None
) -> None:
    assert cancel_access(mode, pin_hash) is access
    assert unavailable_view(access) == view


def test_unknown_cancel_mode_raises() -> None:
    with pytest.raises(ValueError, match="pin, off or open"):
        cancel_access("maybe", "")
