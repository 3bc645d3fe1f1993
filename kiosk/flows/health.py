"""Is the backend reachable? Judged from the last few calls, shared by engine and sync."""

from __future__ import annotations

import threading
from collections import deque


class Reachability:
    """Offline when 2 of the last 5 calls failed, or the last call got no answer in time.

    Thread-safe: the engine and the sync worker both report. A success after
    an outage clears the history, so the kiosk is back online at once.
    """

    def __init__(self, window: int = 5, threshold: int = 2) -> None:
        self._calls: deque[bool] = deque(maxlen=window)
        self._threshold = threshold
        self._last_timed_out = False
        self._lock = threading.Lock()

    def success(self) -> None:
        with self._lock:
            if self._offline_locked():
                self._calls.clear()
            self._calls.append(True)
            self._last_timed_out = False

    def failure(self, *, timed_out: bool = False) -> None:
        with self._lock:
            self._calls.append(False)
            self._last_timed_out = timed_out

    @property
    def offline(self) -> bool:
        with self._lock:
            return self._offline_locked()

    def _offline_locked(self) -> bool:
        failures = sum(1 for ok in self._calls if not ok)
        return failures >= self._threshold or self._last_timed_out
