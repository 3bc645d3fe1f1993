"""Make the journal's commits durable after the fact: one flush of its write-ahead log.

A commit made with ``synchronous=NORMAL`` (:meth:`kiosk.journal.Journal.transaction`
with ``durable=False``) is written to the log but not flushed: it survives the
process being killed, not a power cut. :func:`flush_wal` flushes the log file, so
every commit written so far is on the disk; :class:`WalFlusher` does that on a
thread of its own right after the result is shown, so the customer never waits
for it. The next durable commit (``synchronous=FULL``) flushes the log too.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from kiosk.errors import JournalError
from kiosk.worker import Worker

log = logging.getLogger("kiosk.journal")

__all__ = ["WalFlusher", "flush_wal"]


def flush_wal(path: Path) -> bool:
    """Flush the write-ahead log of the journal at *path* to the disk (any thread).

    Returns False when there is no log (the journal was closed and checkpointed, so
    its file holds every commit). Raises JournalError when the flush fails.
    """
    wal = Path(f"{path}-wal")
    try:
        fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise JournalError(f"cannot open {wal} to flush it: {exc.strerror}") from exc
    try:
        os.fdatasync(fd)
    except OSError as exc:
        raise JournalError(f"flushing {wal} failed: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return True


class WalFlusher(Worker):
    """Flushes the journal's log on its own thread whenever :meth:`request` is called.

    Requests made while a flush runs are served by one more flush; :meth:`stop`
    flushes once more before the thread ends, and :attr:`flushes` counts the
    flushes done (for tests and the benchmarks).
    """

    def __init__(self, path: Path) -> None:
        super().__init__("kiosk-flush")
        self._path = path
        self._cond = threading.Condition()
        self._asked = 0  # requests so far
        self._done = 0  # requests that a finished flush covered
        self.flushes = 0

    def request(self) -> None:
        """Flush soon (any thread, never blocks)."""
        with self._cond:
            self._asked += 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every flush requested so far is done; False after *timeout* s."""
        with self._cond:
            target = self._asked
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def _interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _step(self) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._asked > self._done or self.stopping, 1.0):
                return
            covered = self._asked
        if covered > self._done:
            self._flush(covered)

    def _teardown(self) -> None:
        with self._cond:
            covered = self._asked
        self._flush(covered)

    def _flush(self, covered: int) -> None:
        try:
            if flush_wal(self._path):
                self.flushes += 1
        except JournalError as exc:  # the next durable commit flushes the log as well
            log.error("%s", exc)
        with self._cond:
            self._done = max(self._done, covered)
            self._cond.notify_all()
