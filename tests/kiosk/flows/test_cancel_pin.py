"""Cancel-last at the counter is staff-only: the staff PIN, entered with the buttons."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from kiosk.flows.pin_entry import LOCK_SECONDS
from kiosk.journal import Journal
from kiosk.staff_pin import hash_pin
from kiosk.views import (
    CancelConfirm,
    CancelUnavailable,
    PinLocked,
    PinPrompt,
    PinWrong,
    Ready,
    TechInfo,
)
from refbackend import DEMO_VENUE

PIN = "2468"
PIN_HASH = hash_pin(PIN)


def cancels(sim: Any) -> list[sqlite3.Row]:
    with Journal.open(sim.cfg.journal.path) as journal:
        return list(journal.conn.execute("SELECT * FROM requests WHERE kind = 'cancel'"))


def checked_receipt(sim: Any) -> str:
    tx, token = sim.backend.mint_receipt(DEMO_VENUE, 4000)
    assert sim.scan(token).word == "checked"
    return tx


def wait_for(sim: Any, expected: Any) -> None:
    """Until the screen shows exactly *expected* (earlier screens of its kind are skipped)."""
    deadline = time.monotonic() + 15.0
    while sim.wait_view(type(expected), timeout=deadline - time.monotonic()) != expected:
        pass


def enter_pin(sim: Any, pin: str) -> None:
    """Each digit: up as many times as its value, then OK; long OK submits."""
    for digit in pin:
        for _ in range(int(digit)):
            sim.press("up")
        sim.press("ok")
    sim.press("ok", long=True)


def test_the_staff_pin_opens_the_cancel(make_sim: Any) -> None:
    sim = make_sim(counter={"cancel": "pin", "pin_hash": PIN_HASH})
    tx = checked_receipt(sim)
    sim.press("ok", long=True)
    assert sim.wait_view(PinPrompt) == PinPrompt(0, 0, 4)
    enter_pin(sim, PIN)
    confirm = sim.wait_view(CancelConfirm)
    assert confirm.tx == tx
    sim.press("ok")
    outcome = sim.outcome()
    assert (outcome.word, outcome.kind, outcome.tx) == ("cancelled", "cancel", tx)
    assert [r["tx"] for r in cancels(sim)] == [tx]


def test_three_wrong_pins_lock_cancelling_for_five_minutes(make_sim: Any) -> None:
    sim = make_sim(counter={"cancel": "pin", "pin_hash": PIN_HASH})
    tx = checked_receipt(sim)
    sim.press("ok", long=True)
    sim.wait_view(PinPrompt)
    enter_pin(sim, "1111")
    assert sim.wait_view(PinWrong) == PinWrong(2)
    sim.press("ok")  # dismisses "wrong PIN"; the entry starts again
    enter_pin(sim, "1112")
    assert sim.wait_view(PinWrong) == PinWrong(1)
    sim.press("ok")
    enter_pin(sim, "1113")
    locked = sim.wait_view(PinLocked)
    assert LOCK_SECONDS - 2 <= locked.seconds_left <= LOCK_SECONDS
    # Locked: the right PIN is not even asked for, on this or a later try.
    sim.advance(LOCK_SECONDS - 10)
    sim.press("ok", long=True)
    assert 0 < sim.wait_view(PinLocked).seconds_left <= 10
    assert cancels(sim) == []
    sim.advance(11)
    sim.press("ok", long=True)
    sim.wait_view(PinPrompt)
    enter_pin(sim, PIN)
    assert sim.wait_view(CancelConfirm).tx == tx


def test_long_press_during_the_entry_erases_then_leaves(make_sim: Any) -> None:
    sim = make_sim(counter={"cancel": "pin", "pin_hash": PIN_HASH})
    checked_receipt(sim)
    sim.press("ok", long=True)
    sim.wait_view(PinPrompt)
    sim.press("up")
    sim.press("ok")
    wait_for(sim, PinPrompt(1, 0, 4))
    sim.press("ok", long=True)  # fewer than four digits: erases the last one
    wait_for(sim, PinPrompt(0, 1, 4))
    sim.press("ok", long=True)  # none left: back to ready
    sim.wait_view(Ready)
    sim.press("up", long=True)  # the technician screen: the engine left the PIN entry
    sim.wait_view(TechInfo)
    assert cancels(sim) == []


@pytest.mark.parametrize(
    ("counter", "reason"),
    [({"cancel": "pin"}, "no_pin"), ({"cancel": "off", "pin_hash": PIN_HASH}, "off")],
)
def test_cancel_unavailable_without_a_pin_or_when_off(
    make_sim: Any, counter: dict[str, str], reason: str
) -> None:
    sim = make_sim(counter=counter)
    checked_receipt(sim)
    sim.press("ok", long=True)
    assert sim.wait_view(CancelUnavailable) == CancelUnavailable(reason)
    sim.press("ok")  # the OK that confirmed a cancel before: nothing happens
    time.sleep(0.3)
    assert cancels(sim) == []


def test_the_default_asks_for_a_pin(make_sim: Any) -> None:
    sim = make_sim()  # [counter] cancel defaults to "pin"; no hash set up
    checked_receipt(sim)
    sim.press("ok", long=True)
    assert sim.wait_view(CancelUnavailable) == CancelUnavailable("no_pin")
