"""One way to run a background thread: start, supervised loop, heartbeat, bounded stop.

A leaf module (imports nothing of the kiosk), so the hardware readers and the
signal player use it as well as the engine and the sync worker.

A :class:`Worker` runs :meth:`Worker._step` until :meth:`Worker.stop` is called.
Before every step it records a heartbeat (monotonic time) that the watchdog
reads (:meth:`Worker.stalled`). An exception a step did not expect is logged
with its traceback and the loop goes on after a bounded, growing pause, so a
bug in one scan or one upload never ends the thread silently. ``stop`` sets
the stop event, calls :meth:`Worker._interrupt` so a blocking wait returns, and
joins with a limit; a thread that did not end is logged by name and reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_ERROR_PAUSE_S", "Worker", "error_pause"]

log = logging.getLogger("kiosk.worker")

MAX_ERROR_PAUSE_S = 30.0


def error_pause(failures: int) -> float:
    """Seconds to pause after the *failures*-th unexpected error in a row (0.5 s doubling)."""
    return min(0.5 * 2 ** max(failures - 1, 0), MAX_ERROR_PAUSE_S)


class Worker:
    """A named daemon thread; subclasses implement :meth:`_step` (and maybe the hooks).

    ``start`` and ``stop`` may be called from any thread; ``stop`` is idempotent
    and safe before ``start``. ``monotonic`` is the clock of the heartbeat.
    """

    def __init__(self, name: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat: float | None = None
        self.unexpected_errors = 0  # steps that raised, over the thread's life

    # --- any thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (once; a second call does nothing)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the loop to end and join for *timeout* s; False (and logged) if it did not end."""
        self._stopping.set()
        self._interrupt()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.error("%s did not stop within %.1f s", self.name, timeout)
            return False
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end by itself; True if it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def stalled(self, now: float, max_stall: float) -> str | None:
        """None while the loop turns; else why not (for the watchdog). *now* is monotonic."""
        if self._thread is None:
            return None  # never started: nothing to watch
        if not self._thread.is_alive() and not self.stopping:
            return f"{self.name} thread ended"
        beat = self.heartbeat
        if beat is None or now - beat > max_stall:
            return f"{self.name} loop stalled"
        return None

    # --- the worker's thread ---------------------------------------------------------------

    def beat(self) -> None:
        """Record that the loop is alive (called before every step; long steps may call it)."""
        self.heartbeat = self._monotonic()

    def _main(self) -> None:
        failures = 0
        try:
            self._setup()
            while not self._stopping.is_set():
                self.beat()
                try:
                    self._step()
                except Exception:
                    failures += 1
                    self.unexpected_errors += 1
                    pause = error_pause(failures)
                    log.exception("%s: unexpected error; continuing in %.1f s", self.name, pause)
                    self._stopping.wait(pause)
                else:
                    failures = 0
        except Exception:
            log.exception("%s: cannot run", self.name)
        finally:
            self._teardown()

    def _setup(self) -> None:
        """Runs once on the thread before the loop; an exception ends the thread (logged)."""

    def _step(self) -> None:
        """One turn of the loop; should return within a few seconds (or call :meth:`beat`)."""
        raise NotImplementedError

    def _teardown(self) -> None:
        """Runs once on the thread after the loop, whatever happened."""

    def _interrupt(self) -> None:
        """Wake a step that waits, so that :meth:`stop` is quick (called on stop)."""
