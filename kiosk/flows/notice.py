"""A view shown after a delay unless the work it announces finishes first.

The engine thread draws every screen itself, except this one: while it waits
for a slow charge it cannot draw, so a timer thread shows the waiting screen
for it. The lock orders the two: once the engine has left the ``with`` block,
the timer never draws again, so the result can never be overwritten.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from kiosk.views import View


class DelayedView:
    """``with DelayedView(seconds, show, view):`` -- *show(view)* once after *seconds*."""

    def __init__(self, seconds: float, show: Callable[[View], None], view: View) -> None:
        self._show = show
        self._view = view
        self._lock = threading.Lock()
        self._done = False
        self.shown = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.name = "kiosk-delayed-view"
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.shown = True
            self._show(self._view)

    def __enter__(self) -> DelayedView:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:  # waits for a show in progress, then forbids the next one
            self._done = True
        self._timer.cancel()
        self._timer.join()
