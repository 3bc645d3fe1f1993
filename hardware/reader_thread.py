"""The one background thread a scanner owns: started once, stopped with a bounded join.

Runs on the kiosk's :class:`~kiosk.worker.Worker` base: an exception the reading
loop did not expect is logged and the loop restarted after a pause, instead of
the scanner going silent.
"""

from __future__ import annotations

from abc import abstractmethod

from kiosk.errors import HardwareError
from kiosk.worker import Worker


class ReaderThread(Worker):
    """Runs :meth:`_run` on a daemon thread until :meth:`stop` sets ``_stopping``."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(name)
        self._name = name  # thread name, e.g. "serial-scanner"
        self._what = what  # for messages, e.g. "serial scanner on /dev/ttyACM0"

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"{self._what} already started")
        super().start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop reading. Raises HardwareError if the thread does not end within *timeout*."""
        if not super().stop(timeout):
            raise HardwareError(f"{self._what} did not stop within {timeout} s")
        return True

    def _step(self) -> None:
        self._run()
        self._stopping.set()  # the source ended by itself (end of input): the reader is done

    @abstractmethod
    def _run(self) -> None:
        """The reading loop; returns once ``_stopping`` is set (or the input ended)."""
