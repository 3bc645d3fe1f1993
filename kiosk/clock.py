"""Is the system clock trustworthy? Asked of the kernel, whatever NTP daemon runs.

``adjtimex(2)`` with no modes is a read-only query that any user may make; it
returns ``TIME_ERROR`` while the kernel's clock is not synchronised (no NTP
sync since boot, or sync lost). Paycode expiry is judged only when this says
yes; receipts never expire, so they do not depend on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: modes then 19 longs/ints we do not read,
    # padded generously; only the return value of adjtimex matters here.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 512)]


def kernel_clock_synced() -> bool:
    """True when the kernel reports a synchronised clock (Linux); False if unknown."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    return state >= 0 and state != TIME_ERROR


ClockCheck = Callable[[], bool]
