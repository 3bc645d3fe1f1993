"""One writer at a time per journal file in this process, served in the order they asked.

SQLite lets one connection write at a time; a writer that finds the file locked waits
in its busy handler, which polls with sleeps (1 ms growing to 100 ms, for up to the
5 s ``busy_timeout``). A connection that commits back to back (the engine accepting
receipts offline, each commit a flush of 5-50 ms on an SD card) lets go of the file
for microseconds between two commits, and a polling writer of another thread can miss
every gap until it fails with "database is locked": an upload's answer not recorded,
or a scan refused, while the counter is busy.

So every write transaction of the journal (``BEGIN IMMEDIATE`` ... ``COMMIT``, see
:func:`committed`) first takes the file's :class:`WriteLock`, shared by every
connection of this process to that file (:func:`write_lock`, keyed by its resolved
path). It is handed at release to the writer that has waited longest: first come,
first served, woken without polling. SQLite's busy timeout is then left to arbitrate
between processes: the service and a ``kiosk`` command run by a technician beside it.
Never hold it across network I/O.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiosk.errors import JournalError

__all__ = ["WRITE_WAIT_S", "WriteLock", "committed", "write_lock"]

# How long a writer waits for the writers queued before it. Each holds the lock for one
# transaction: milliseconds, up to the 5 s busy timeout when another process has the file.
# Past this a holder is stuck (or the disk stalls): the waiter gets a JournalError and its
# loop goes on, well before the service's watchdog takes a 30 s stall for a hung worker.
WRITE_WAIT_S = 15.0

_locks: weakref.WeakValueDictionary[str, WriteLock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


def write_lock(path: Path) -> WriteLock:
    """The write lock of the journal file at *path*, shared by this process's connections
    to it. Keyed by the resolved path, not the inode: a connection opened before the file
    existed (first start) and one opened after must find the same lock, and so must a
    journal made anew at the same path after a damaged one was moved aside."""
    key = str(Path(path).resolve())
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = WriteLock(str(path))
            _locks[key] = lock
        return lock


class WriteLock:
    """A first-in, first-out lock: :meth:`release` hands it to the longest waiter."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._guard = threading.Lock()
        self._owner: int | None = None  # thread id of the holder
        self._queue: deque[tuple[int, threading.Lock]] = deque()  # waiters, each on its gate

    def waiting(self) -> int:
        """Writers queued for the lock now."""
        with self._guard:
            return len(self._queue)

    def acquire(self, wait_s: float) -> None:
        """Take the lock, waiting at most *wait_s* for the writers queued before.

        Raises JournalError when the wait ends, or at once when this thread holds it
        already through another connection (it would wait for itself).
        """
        me = threading.get_ident()
        with self._guard:
            if self._owner is None and not self._queue:
                self._owner = me
                return
            if self._owner == me:
                raise JournalError(
                    f"journal {self.name}: the same thread is writing through another"
                    " connection; write through the connection whose transaction is open"
                )
            gate = threading.Lock()
            gate.acquire()
            self._queue.append((me, gate))
        try:
            handed = gate.acquire(timeout=max(wait_s, 0.0))
        except BaseException:  # interrupted while queued: never leave a dead waiter behind
            with self._guard:
                if self._owner == me:
                    self._hand_on()
                else:
                    self._queue.remove((me, gate))
            raise
        with self._guard:
            if handed or self._owner == me:  # handed over as the wait ended
                return
            self._queue.remove((me, gate))
        raise JournalError(
            f"journal {self.name}: another thread of this kiosk kept the journal's write"
            f" lock for over {wait_s:g} s (a stalled disk or a stuck worker); the write was"
            " not made. If this repeats, restart the kiosk service and check the disk"
        )

    def release(self) -> None:
        """Hand the lock to the longest waiter, or leave it free."""
        with self._guard:
            if self._owner != threading.get_ident():
                raise RuntimeError("journal write lock released by a thread not holding it")
            self._hand_on()

    def _hand_on(self) -> None:
        """With ``_guard`` held: the longest waiter owns the lock now, or nobody."""
        if self._queue:
            self._owner, gate = self._queue.popleft()
            gate.release()
        else:
            self._owner = None


@contextmanager
def committed(conn: sqlite3.Connection, lock: WriteLock, wait_s: float) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on *conn* with *lock* held throughout; rolled
    back when the body raises or the commit fails. Raises JournalError (the lock) and
    sqlite3 errors, which the caller translates."""
    lock.acquire(wait_s)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite already rolled back on SQLITE_FULL
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:  # a failed commit (I/O error) must not leave it open
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        lock.release()
