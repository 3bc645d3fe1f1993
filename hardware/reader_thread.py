"""The one background thread a scanner owns: started once, stopped with a bounded join."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from kiosk.errors import HardwareError


class ReaderThread(ABC):
    """Runs :meth:`_run` on a daemon thread until :meth:`stop` sets ``_stopping``."""

    def __init__(self, name: str, what: str) -> None:
        self._name = name  # thread name, e.g. "serial-scanner"
        self._what = what  # for messages, e.g. "serial scanner on /dev/ttyACM0"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"{self._what} already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading. Raises HardwareError if the thread does not end within *timeout*."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            raise HardwareError(f"{self._what} did not stop within {timeout} s")

    @abstractmethod
    def _run(self) -> None:
        """The reading loop; returns once ``_stopping`` is set."""
