"""The cancel gate: ``[counter] cancel`` and the staff PIN decide, press by press."""

from __future__ import annotations

from pathlib import Path

from kiosk.clock import BootTime
from kiosk.config import CounterConfig
from kiosk.flows.cancel_gate import Allowed, Asking, CancelGate, Decision, Left, Refused
from kiosk.flows.pin_entry import LOCK_SECONDS
from kiosk.flows.pin_memory import PinMemory
from kiosk.journal import Journal
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


def test_the_pin_lock_out_outlives_a_restart_on_the_boot_time_clock(tmp_path: Path) -> None:
    cfg = CounterConfig(cancel="pin", pin_hash=PIN_HASH)
    boot = [BootTime("boot-1", 50.0)]
    with Journal.open(tmp_path / "journal.db") as journal:

        def restart() -> tuple[CancelGate, PinMemory]:
            return CancelGate(monotonic=Clock()), PinMemory(journal, lambda: boot[0])

        gate, memory = restart()
        asking = gate.request(cfg, memory)
        for _ in range(2):
            asking = gate.press(enter(gate, asking, "2468").entry, "down", long=False)  # type: ignore[union-attr]
        gate, memory = restart()  # two wrong tries survive a power cycle
        assert enter(gate, gate.request(cfg, memory), "2468") == Refused(
            PinLocked(int(LOCK_SECONDS))
        )
        boot[0] = BootTime("boot-1", 50.0 + 100)
        gate, memory = restart()  # a restart within the boot: the rest of the lock-out
        assert gate.request(cfg, memory) == Refused(PinLocked(int(LOCK_SECONDS) - 100))
        boot[0] = BootTime("boot-2", 3.0)
        gate, memory = restart()  # after a reboot: locked in full again, never unlocked
        assert gate.request(cfg, memory) == Refused(PinLocked(int(LOCK_SECONDS)))
        boot[0] = BootTime("boot-2", 3.0 + LOCK_SECONDS)
        gate, memory = restart()
        assert enter(gate, gate.request(cfg, memory), "1357") == Allowed()
