"""Fault injection and rate limiting for the reference backend.

``Faults`` lets tests and the demo make the backend misbehave in the ways a
real network and a real service do; ``RateLimiter`` is the backend's own
per-client token bucket behind the contract's 429 answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Faults", "RateLimiter"]


@dataclass
class Faults:
    """Counters of faults to inject into the next ``/v1`` requests; safe to set from any thread.

    - ``drop_after_commit``: the next N POSTs under ``/v1`` are processed and committed,
      then the connection is closed without a response.
    - ``error_500``: the next N ``/v1`` requests answer 500 without processing.
    - ``rate_limit``: the next N ``/v1`` requests answer 429 with ``Retry-After: 1``.
    - ``delay_s``: every ``/v1`` request sleeps this long before answering (a POST
      sleeps after claiming its idempotency key, so it is seen as in progress).
    - ``garbage``: the next N ``/v1`` requests answer 200 with a body that is not JSON.

    ``delaying`` is set whenever a request begins its ``delay_s`` sleep, so a test
    can wait for "the first request is now in progress" instead of sleeping.
    """

    drop_after_commit: int = 0
    error_500: int = 0
    rate_limit: int = 0
    delay_s: float = 0.0
    garbage: int = 0
    delaying: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, name: str) -> bool:
        """Consume one unit of the counter *name*; True when the fault applies now."""
        with self._lock:
            left = getattr(self, name)
            if left <= 0:
                return False
            setattr(self, name, left - 1)
            return True

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self.drop_after_commit = self.error_500 = self.rate_limit = self.garbage = 0
            self.delay_s = 0.0
            self.delaying.clear()


class RateLimiter:
    """A token bucket per caller: ``rate`` requests per second, bursts up to ``rate``.

    ``allow(who)`` returns 0.0 when the request may go ahead, otherwise the
    seconds to wait (for ``Retry-After``). Any thread may call it.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate_limit_per_s must be > 0")
        self._rate = rate
        self._burst = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, who: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            if len(self._buckets) > 10_000:  # bounded memory under a flood of callers
                self._buckets.clear()
            return (1.0 - tokens) / self._rate
