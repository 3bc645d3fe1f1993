"""Is the system clock trustworthy? Asked of the kernel, whatever NTP daemon runs.

``adjtimex(2)`` with no modes is a read-only query that any user may make; it
returns ``TIME_ERROR`` while the kernel's clock is not synchronised (no NTP
sync since boot, or sync lost). Paycode expiry is judged only when this says
yes; receipts never expire, so they do not depend on it.

A Pi has no real-time clock: after a reboot without NTP the wall clock can be
days behind or ahead. Intervals that guard money (how long ago the last sync
was) are therefore measured, within one boot, on the kernel's boot-time clock
(``CLOCK_BOOTTIME``: never set, counts suspend), tagged with the kernel's boot
id so that a reading from an earlier boot is never compared with this one.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk.libc import libc

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")

TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: modes then 19 longs/ints we do not read,
    # padded generously; only the return value of adjtimex matters here.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 512)]


def kernel_clock_synced() -> bool:
    """True when the kernel reports a synchronised clock (Linux); False if unknown."""
    lib = libc() if sys.platform.startswith("linux") else None
    if lib is None:
        return False
    try:
        tx = _Timex()
        state = lib.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    return state >= 0 and state != TIME_ERROR


ClockCheck = Callable[[], bool]


@dataclass(frozen=True)
class BootTime:
    """A reading of the boot-time clock: which boot, and seconds since it began."""

    boot_id: str
    seconds: float


BootClock = Callable[[], "BootTime | None"]


@functools.cache
def _boot_id(path: Path = BOOT_ID_PATH) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def boot_time() -> BootTime | None:
    """Now on the boot-time clock; None where the kernel gives no boot id (not Linux)."""
    boot = _boot_id()
    if not boot:
        return None
    clock_id = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return BootTime(boot, time.clock_gettime(clock_id))


@dataclass(frozen=True)
class Clocks:
    """One reading of what the kiosk knows of time: the wall clock, the boot-time clock
    (None where the kernel gives no boot id) and whether the wall clock is synchronised.
    What :func:`elapsed_since` needs to date an event."""

    wall: float
    boot: BootTime | None
    synced: bool

    def since(self, wall: float, boot: BootTime | None) -> float | None:
        """Seconds from an event seen at *wall* and *boot* to this reading (see
        :func:`elapsed_since`); None when they cannot be trusted."""
        return elapsed_since(
            wall, boot, now=self.wall, now_boot=self.boot, clock_synced=self.synced
        )


def read_clocks() -> Clocks:
    """The kernel's clocks now."""
    return Clocks(time.time(), boot_time(), kernel_clock_synced())


def elapsed_since(
    wall: float,
    boot: BootTime | None,
    *,
    now: float,
    now_boot: BootTime | None,
    clock_synced: bool,
) -> float | None:
    """Seconds from an event to now that no wall-clock jump can shorten; None if unknown.

    The event was seen at wall time *wall* and boot-time reading *boot*. In the
    same boot the boot-time clock answers. Otherwise the wall clock answers only
    while it is synchronised, and an event dated in the future is unknown (a
    clock that was or is wrong), never a negative age.
    """
    if boot is not None and now_boot is not None and boot.boot_id == now_boot.boot_id:
        age = now_boot.seconds - boot.seconds
        return age if age >= 0 else None
    if not clock_synced:
        return None
    age = now - wall
    return age if age >= 0 else None


def due(last: float, now: float, every: float) -> bool:
    """True when *every* seconds have passed since *last*, or *last* lies in the future
    (it was taken with a clock that was wrong, so it proves nothing)."""
    age = now - last
    return age < 0 or age >= every
