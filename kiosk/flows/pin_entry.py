"""Entering the staff PIN for a cancel with the up/down/OK buttons.

Pure and single-threaded (the engine's thread): no display, no hash. Buttons:

- up / down: change the digit being edited (9 wraps to 0 and back);
- OK: confirm that digit and edit the next one; the eighth digit submits;
- long OK: submit once at least four digits are confirmed; with fewer it erases
  the last confirmed digit, and with none it leaves the entry (``BACK``).

A submitted PIN goes to the ``verify`` function passed in (for example
``lambda pin: staff_pin.verify_pin(pin, cfg.counter.pin_hash)``). Wrong tries
are counted by a :class:`PinLock` that outlives one entry: three wrong PINs lock
cancelling for five minutes, measured on the monotonic clock, and kept across
restarts by :meth:`PinLock.remember` (:mod:`kiosk.flows.pin_memory`).

    lock = PinLock()                        # one per device
    entry = PinEntry(verify, lock)
    step = entry.press("ok", long=True)     # -> PinStep.VERIFIED, WRONG, ...
    display.show(render(entry.view()))

:func:`cancel_access` says what the ``[counter] cancel`` setting allows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from kiosk.flows.pin_memory import PinMemory
from kiosk.views import CancelUnavailable, PinLocked, PinPrompt, PinWrong

MIN_DIGITS, MAX_DIGITS = 4, 8
MAX_TRIES = 3
LOCK_SECONDS = 300.0

PinView = PinPrompt | PinWrong | PinLocked


class PinStep(StrEnum):
    """What one button press led to."""

    EDITING = "editing"  # still entering digits
    VERIFIED = "verified"  # the PIN was right: go on to confirm the cancel
    WRONG = "wrong"  # wrong PIN, tries left: the entry starts again after the next press
    LOCKED = "locked"  # too many wrong PINs (now or before): nothing is accepted
    BACK = "back"  # the staff left the entry


class CancelAccess(StrEnum):
    """What ``[counter] cancel`` allows on the device."""

    OPEN = "open"  # cancel without a PIN
    PIN = "pin"  # ask for the staff PIN first
    OFF = "off"  # cancelling on the device is off
    NO_PIN = "no_pin"  # a PIN is required but none is set up


def cancel_access(mode: str, pin_hash: str) -> CancelAccess:
    """What *mode* (``pin``, ``off`` or ``open``) and *pin_hash* allow. Raises ValueError."""
    if mode == "open":
        return CancelAccess.OPEN
    if mode == "off":
        return CancelAccess.OFF
    if mode == "pin":
        return CancelAccess.PIN if pin_hash else CancelAccess.NO_PIN
    raise ValueError(f"unknown [counter] cancel mode {mode!r}; use pin, off or open")


def unavailable_view(access: CancelAccess) -> CancelUnavailable | None:
    """The screen for an *access* that refuses cancelling, or None when it may go on."""
    if access in (CancelAccess.OFF, CancelAccess.NO_PIN):
        return CancelUnavailable(access.value)
    return None


class PinLock:
    """Wrong tries and the lock-out they cause, shared by every entry on the device."""

    def __init__(
        self,
        *,
        max_tries: int = MAX_TRIES,
        lock_seconds: float = LOCK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_tries < 1 or lock_seconds <= 0:
            raise ValueError("max_tries must be at least 1 and lock_seconds above 0")
        self._max_tries = max_tries
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._wrong = 0
        self._until: float | None = None
        self._memory: PinMemory | None = None

    def remember(self, memory: PinMemory) -> None:
        """Keep the state in *memory* from now on; the first one given is read first (a
        later one, such as the reopened journal's, only takes the writes)."""
        if self._memory is not None:
            self._memory = memory
            return
        restored = memory.restore(self._lock_seconds)
        self._wrong = max(self._wrong, restored.wrong)
        if restored.locked_s is not None:
            until = self._clock() + restored.locked_s
            self._until = until if self._until is None else max(self._until, until)
        self._memory = memory
        self._save()

    def _save(self) -> None:
        if self._memory is not None:
            left = None if self._until is None else max(self._until - self._clock(), 0.0)
            self._memory.save(self._wrong, left)

    def seconds_left(self) -> float:
        """Seconds until cancelling is allowed again; 0 when it is not locked."""
        if self._until is None:
            return 0.0
        left = self._until - self._clock()
        if left <= 0:
            self._until = None
            self._wrong = 0
            self._save()
            return 0.0
        return left

    @property
    def locked(self) -> bool:
        return self.seconds_left() > 0

    @property
    def tries_left(self) -> int:
        return 0 if self.locked else self._max_tries - self._wrong

    def record(self, right: bool) -> None:
        """Count one submitted PIN; a right one clears the wrong tries."""
        if right:
            self._wrong = 0
        else:
            self._wrong += 1
            if self._wrong >= self._max_tries:
                self._until = self._clock() + self._lock_seconds
        self._save()


class PinEntry:
    """One PIN entry: digits from button presses, judged by *verify* through *lock*."""

    def __init__(self, verify: Callable[[str], bool], lock: PinLock) -> None:
        self._verify = verify
        self._lock = lock
        self._digits: list[int] = []
        self._digit = 0
        self._wrong_shown = False

    @property
    def entered(self) -> int:
        """How many digits are confirmed."""
        return len(self._digits)

    def press(self, button: str, *, long: bool = False) -> PinStep:
        """Apply one press of ``up``, ``down`` or ``ok``. Raises ValueError for others."""
        if button not in ("up", "down", "ok"):
            raise ValueError(f"unknown button {button!r}; use up, down or ok")
        if self._lock.locked:
            return PinStep.LOCKED
        if self._wrong_shown:  # the press that dismisses "wrong PIN" only starts again
            self._wrong_shown = False
            return PinStep.EDITING
        if button == "up":
            self._digit = (self._digit + 1) % 10
        elif button == "down":
            self._digit = (self._digit - 1) % 10
        elif not long:
            self._digits.append(self._digit)
            self._digit = 0
            if len(self._digits) == MAX_DIGITS:
                return self._submit()
        elif len(self._digits) >= MIN_DIGITS:
            return self._submit()
        elif self._digits:
            self._digit = self._digits.pop()
        else:
            return PinStep.BACK
        return PinStep.EDITING

    def _submit(self) -> PinStep:
        pin = "".join(str(d) for d in self._digits)
        self._digits.clear()
        self._digit = 0
        right = self._verify(pin)
        self._lock.record(right)
        if right:
            return PinStep.VERIFIED
        if self._lock.locked:
            return PinStep.LOCKED
        self._wrong_shown = True
        return PinStep.WRONG

    def view(self) -> PinView:
        """What the screen shows now."""
        left = self._lock.seconds_left()
        if left > 0:
            return PinLocked(int(-(-left // 1)))  # whole seconds, rounded up
        if self._wrong_shown:
            return PinWrong(self._lock.tries_left)
        return PinPrompt(len(self._digits), self._digit, MIN_DIGITS)
